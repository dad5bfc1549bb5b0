"""200 containers created and deleted, eight at a time: ocipy vs runc side by side (issue 15: within 1.5x of
runc 1.5.1's total).

    .venv/bin/python bench/churn.py [-n 200] [-j 8] [-r 3] [--ocipy "CMD"] [--runc CMD ...] [--state-dir /run]

Needs root. The bundle is bench/containers.py's (busybox rootfs, `runc spec` config, /bin/true). Each round runs,
for every runtime in turn, `-n` cycles of `create --bundle B ID` then `delete --force ID` on `-j` worker threads
sharing one state root, and records the total wall time and the CPU time (user+sys from `os.wait4`) of all those
commands. Rounds alternate the runtimes so drift on the machine hits each alike; the table shows the medians over
rounds and the ratios against the first --runc (runc 1.5.1 by default). State roots live under --state-dir (default
/run, where runc's /run/runc and ocipy's /run/ocipy are).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from containers import CACHE, PROJECT, BenchError, bundle_config, default_ocipy, runc_version  # noqa: E402


def one(argv: list[str], env: dict[str, str], err: Path) -> float:
    """Run a command to its end; its CPU ms. A failure raises with its stderr."""
    with open(err, "wb") as f:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, f.fileno(), 2)])
        _pid, status, usage = os.wait4(pid, 0)
    if status:
        raise BenchError(f"`{' '.join(argv)}` failed ({status}): {err.read_text(errors='replace').strip()}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def churn(argv: list[str], root: Path, bundle: Path, n: int, jobs: int, env: dict[str, str], tag: str) -> tuple:
    """(wall s, CPU s, create CPU ms median, delete CPU ms median) of n create+delete cycles on `jobs` threads."""
    ids = iter(range(n))
    lock = threading.Lock()
    cpu_create: list[float] = []
    cpu_delete: list[float] = []
    failures: list[BaseException] = []

    def worker(w: int) -> None:
        err = root.parent / f"{tag}-{w}.stderr"
        while not failures:
            with lock:
                i = next(ids, None)
            if i is None:
                return
            cid = f"churn-{tag}-{i}-{os.getpid()}"  # the cgroup path derives from the id: unique per run
            try:
                c = one([*argv, "--root", str(root), "create", "--bundle", str(bundle), cid], env, err)
                d = one([*argv, "--root", str(root), "delete", "--force", cid], env, err)
            except BaseException as exc:  # noqa: BLE001 -- reported after the others stop
                failures.append(exc)
                return
            with lock:
                cpu_create.append(c)
                cpu_delete.append(d)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(jobs)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise BenchError(f"{tag}: {failures[0]}")
    total = (sum(cpu_create) + sum(cpu_delete)) / 1000
    return wall, total, statistics.median(cpu_create), statistics.median(cpu_delete)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="containers per round and runtime")
    ap.add_argument("-j", type=int, default=8, help="at a time")
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("--ocipy", default=None, help="command line for ocipy (default: a fresh -IS launcher)")
    ap.add_argument("--runc", action="append", default=None, help="a runc command line (repeatable)")
    ap.add_argument(
        "--state-dir", default="/run", help="where the state roots are made (default /run, as the runtimes')"
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/churn.py needs root", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET")}
    runcs = args.runc or [
        str(p) for p in (CACHE / "bin" / "runc-1.5.1", Path(shutil.which("runc") or "/usr/sbin/runc")) if p.exists()
    ]
    work = Path(tempfile.mkdtemp(prefix="ocipy-churn-"))
    state = Path(tempfile.mkdtemp(prefix="ocipy-churn-", dir=args.state_dir))
    runtimes: list[tuple[str, list[str]]] = []
    results: dict[str, list[tuple]] = {}
    try:
        bundle = work / "bundle"
        bundle.mkdir()
        subprocess.run([str(PROJECT / "scripts" / "make-rootfs"), str(bundle / "rootfs")], check=True, timeout=120)
        (bundle / "config.json").write_text(json.dumps(bundle_config(), indent=2))
        runtimes = [("ocipy", shlex.split(args.ocipy) if args.ocipy else default_ocipy(work))]
        runtimes += [(f"runc{k}", shlex.split(r)) for k, r in enumerate(runcs)]
        print(f"ocipy: {' '.join(runtimes[0][1])}")
        for (name, _), r in zip(runtimes[1:], runcs):
            print(f"{name}: {r} ({runc_version(r)})")
        print(
            f"{args.n} containers (create, delete --force) {args.j} at a time, {args.rounds} rounds; state in {state}"
        )
        results = {name: [] for name, _ in runtimes}
        for rnd in range(args.rounds):
            for name, argv in runtimes:
                root = state / name
                results[name].append(churn(argv, root, bundle, args.n, args.j, env, f"{name}{rnd}"))
                print(
                    f"  round {rnd + 1} {name}: {results[name][-1][0]:.2f} s wall, {results[name][-1][1]:.2f} s CPU",
                    flush=True,
                )
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for name, argv in runtimes:
            root = state / name
            for cid in sorted(p.name for p in root.iterdir()) if root.is_dir() else ():
                subprocess.run(
                    [*argv, "--root", str(root), "delete", "--force", cid], check=False, capture_output=True, timeout=60
                )
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    base = runtimes[1][0]
    med = {name: [statistics.median(r[k] for r in rs) for k in range(4)] for name, rs in results.items()}
    print(f"\nmedians over {args.rounds} rounds; ratios against {base}")
    print(f"{'':8}{'wall s':>9}{'CPU s':>9}{'create CPU ms':>15}{'delete CPU ms':>15}{'wall x':>8}{'CPU x':>7}")
    for name, m in med.items():
        print(
            f"{name:8}{m[0]:9.2f}{m[1]:9.2f}{m[2]:15.1f}{m[3]:15.1f}"
            f"{m[0] / med[base][0]:7.2f}x{m[1] / med[base][1]:6.2f}x"
        )
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "j": args.j, "medians": med, "rounds": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
