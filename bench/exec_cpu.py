"""`exec` and `exec --detach` CPU with every process the runtime starts counted, ocipy vs runc 1.5.1, in one run.

    .venv/bin/python bench/exec_cpu.py [-n 21] [--gap MS] [--runc CMD ...]

bench/containers.py reads CPU from wait4 of the command: for `exec --detach` that leaves out whatever the runtime
did not wait for. runc 1.5.1's detached `runc init` (a Go program: the namespace joins, the process setup, then the
execve of the process) is never waited for by `runc exec -d`, so its CPU is missing from runc's figure there, while
ocipy's stage-0 init is waited for and counted. Here the benchmark is a child subreaper (prctl
PR_SET_CHILD_SUBREAPER): a detached process is re-parented to it and reaped, and the CPU figure is the growth of
RUSAGE_CHILDREN over the command and everything it started (the exec'd `/bin/true` included, for every runtime, as
the CRI shim counts it in bench/cri_exec.py). Wall: spawn to the command's own exit.

Each command starts after --gap ms idle (default bench/containers.py's EXEC_GAP): the first cgroup.procs write after
~20 ms without one waits for an RCU grace period, so without a pause the figure depends on what ran just before and on
how early the runtime writes. `--gap 0` runs them back to back (who goes first rotates).

Needs root. One `sleep` container per runtime (the busybox bundle of bench/containers.py), removed at the end.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import containers  # noqa: E402  (the bundle and the launcher of bench/containers.py)

PR_SET_CHILD_SUBREAPER = 36


def children_cpu_ms() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * 1000


def timed(argv: list[str], gap: float) -> tuple[float, float]:
    """(wall ms to the command's exit, CPU ms of it and of everything it started, once all of that is reaped)."""
    time.sleep(gap)
    cpu0 = children_cpu_ms()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    os.waitpid(proc.pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    proc.returncode = 0
    while True:  # the detached ones, re-parented to us
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    return wall, children_cpu_ms() - cpu0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=21, help="measured iterations (after 2 warm-ups)")
    ap.add_argument("--gap", type=float, default=containers.EXEC_GAP * 1000, help="idle ms before each command")
    ap.add_argument("--runc", action="append", default=None, help="another runtime command line (repeatable)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocipy-exec-cpu-"))
    bundle = work / "bundle"
    subprocess.run([str(containers.PROJECT / "scripts" / "make-rootfs"), str(bundle / "rootfs")], check=True)
    cfg = containers.bundle_config()
    cfg["process"]["args"] = ["sleep", "100000"]
    (bundle / "config.json").write_text(json.dumps(cfg))
    runtimes = {"ocipy": containers.default_ocipy(work)}
    for i, line in enumerate(args.runc or [str(containers.CACHE / "bin" / "runc-1.5.1")]):
        runtimes[f"runc{i}"] = shlex.split(line)
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    started: list[tuple[list[str], Path, str]] = []
    try:
        for name, argv in runtimes.items():
            root = work / f"{name}-root"
            cid = f"exec-cpu-{name}"  # ids differ: two ocipys would share the cgroup path of one
            subprocess.run([*argv, "--root", str(root), "run", "-d", "--bundle", str(bundle), cid], check=True)
            started.append((argv, root, cid))
        # only now: the sleepers' inits must not be re-parented to us (we would wait for them)
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        names = list(runtimes)
        for i in range(args.n + 2):
            # who goes first rotates: the first cgroup.procs write after a pause waits for an RCU grace period
            # (cgroup_threadgroup_rwsem), one close behind it does not
            for name in names[i % len(names) :] + names[: i % len(names)]:
                argv, root = runtimes[name], str(work / f"{name}-root")
                verbs = (("exec", []), ("exec -d", ["--detach"]))
                for verb, extra in verbs if i % 2 else verbs[::-1]:
                    sample = timed(
                        [*argv, "--root", root, "exec", *extra, f"exec-cpu-{name}", "/bin/true"], args.gap / 1000
                    )
                    if i >= 2:
                        rows.setdefault((verb, name), []).append(sample)
    finally:
        for argv, root, cid in started:
            subprocess.run([*argv, "--root", str(root), "delete", "--force", cid], check=False)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    ref = next(n for n in runtimes if n != "ocipy")
    print(
        f"wall ms (CPU ms, every process the runtime started), medians of {args.n}, {args.gap:g} ms idle before each; "
        f"ratio ocipy/{ref}"
    )
    for verb in ("exec", "exec -d"):
        cells, med = [], {}
        for name in runtimes:
            samples = rows[(verb, name)]
            med[name] = (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
            cells.append(f"{name} {med[name][0]:.1f} ({med[name][1]:.1f})")
        wall_x, cpu_x = (med["ocipy"][k] / med[ref][k] for k in (0, 1))
        print(f"{verb:8} " + "  ".join(cells) + f"  wall {wall_x:.2f}x  CPU {cpu_x:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
