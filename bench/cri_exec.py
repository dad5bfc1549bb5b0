"""The cost of a liveness probe through Kubernetes' path: N CRI ExecSync calls (`true`) into one running container,
handler `ocipy` vs handler `runc` (runc 1.5.1), side by side in one run.

    .venv/bin/python bench/cri_exec.py [-n 100] [--rounds 10] [--cmd true] [--json FILE]

Needs root and the engines (scripts/engines); uses the CRI suite's private containerd (tests/cri/cririg.py: its
own netns, paths and images, removed at the end). One pod per handler, one `sleep` container in each; the N calls
per handler are made in R rounds, alternating which handler goes first, so drift hits both alike.

Figures, per handler:
- wall: the client's time from sending each ExecSync to its reply (containerd, the shim, the runtime's `exec`, the
  process, the shim's reaping and reply), total and median per call;
- runtime CPU: user+sys of the runtime and everything it starts, read as the growth of the pod's shim's
  cutime+cstime (/proc/PID/stat fields 16-17). The runc v2 shim forks the runtime for every exec and reaps it (and,
  as child subreaper, the exec'd process and any helper the runtime leaves), so their whole CPU time, however many
  processes deep, lands there once each is reaped; nothing else is reaped by that shim while the benchmark runs.
  Resolution: one clock tick (10 ms) over the whole batch. The exec'd `true` is in both figures (~1 ms per call).
- shim CPU: the shim's own utime+stime growth (its ttrpc work and I/O copying; the same program for both handlers);
- containerd CPU: containerd's own utime+stime growth over the handler's calls (the CRI server; also the same code).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "cri"))

import cririg  # (puts tests/engines on sys.path too)

TICK = os.sysconf("SC_CLK_TCK")


def proc_times(pid: int) -> tuple[float, float]:
    """(own utime+stime, reaped children's cutime+cstime) of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the comm field: state is fields[0], so utime (stat field 14) is fields[11]
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / TICK, (cutime + cstime) / TICK


def shim_of(pod_id: str) -> int:
    for pid in cririg.pids_mentioning(pod_id):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("containerd-shim"):
            return pid
    raise SystemExit(f"no shim found for pod {pod_id}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="ExecSync calls per handler")
    ap.add_argument("--rounds", type=int, default=10, help="alternations between the handlers")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured calls per handler first")
    ap.add_argument("--cmd", default="true", help="the probe command (default: true)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/cri_exec.py needs root")
    if not cririg.RUNC_REF.exists():
        raise SystemExit(f"runc 1.5.1 is not built at {cririg.RUNC_REF} (scripts/refs)")
    import criclient

    handlers = ("ocipy", "runc")
    work = cririg.private_dir("ocipy-cri-bench-")
    rig = None
    cri = None
    try:
        rig = cririg.make_rig(work)
        cri = criclient.Cri(rig.sock, rig.logs, rig.cgroup_parent)
        target = {}
        for h in handlers:
            pod = cri.run_pod(h)
            cid = cri.run(pod, "probed", ["sleep", "100000"])
            target[h] = (cid, shim_of(pod.id))
        cmd = args.cmd.split()
        samples: dict[str, list[float]] = {h: [] for h in handlers}
        cpu = {h: {"runtime": 0.0, "shim": 0.0, "containerd": 0.0} for h in handlers}
        for h in handlers:
            for _ in range(args.warmup):
                assert cri.exec_sync(target[h][0], cmd).exit_code == 0
        per_round = [args.n // args.rounds + (1 if i < args.n % args.rounds else 0) for i in range(args.rounds)]
        for r, count in enumerate(per_round):
            for h in handlers if r % 2 == 0 else reversed(handlers):
                cid, shim = target[h]
                own0, kids0 = proc_times(shim)
                cd0, _ = proc_times(rig.pid())
                for _ in range(count):
                    t0 = time.perf_counter()
                    res = cri.exec_sync(cid, cmd)
                    samples[h].append(time.perf_counter() - t0)
                    if res.exit_code != 0:
                        raise SystemExit(f"{h}: {cmd} exited {res.exit_code}: {res.stderr!r}")
                own1, kids1 = proc_times(shim)
                cd1, _ = proc_times(rig.pid())
                cpu[h]["runtime"] += kids1 - kids0
                cpu[h]["shim"] += own1 - own0
                cpu[h]["containerd"] += cd1 - cd0
        report = {
            h: {
                "calls": len(samples[h]),
                "wall_total_s": sum(samples[h]),
                "wall_median_ms": statistics.median(samples[h]) * 1000,
                "runtime_cpu_s": cpu[h]["runtime"],
                "shim_cpu_s": cpu[h]["shim"],
                "containerd_cpu_s": cpu[h]["containerd"],
            }
            for h in handlers
        }
        o, rc = report["ocipy"], report["runc"]
        print(f"CRI ExecSync {cmd} x{args.n} into one running container (containerd 1.6 CRI, runc v2 shim)")
        print(f"{'':34}{'ocipy':>12}{'runc 1.5.1':>12}{'ratio':>8}")
        rows = [
            ("wall, total (s)", "wall_total_s", "{:.2f}"),
            ("wall, median per call (ms)", "wall_median_ms", "{:.1f}"),
            ("runtime + children CPU (s)", "runtime_cpu_s", "{:.2f}"),
            ("shim's own CPU (s)", "shim_cpu_s", "{:.2f}"),
            ("containerd's own CPU (s)", "containerd_cpu_s", "{:.2f}"),
        ]
        for label, key, fmt in rows:
            ratio = f"{o[key] / rc[key]:.2f}x" if rc[key] else "-"
            print(f"{label:34}{fmt.format(o[key]):>12}{fmt.format(rc[key]):>12}{ratio:>8}")
        print(
            "runtime + children CPU per call (ms): "
            f"ocipy {o['runtime_cpu_s'] / o['calls'] * 1000:.1f}, runc {rc['runtime_cpu_s'] / rc['calls'] * 1000:.1f}"
        )
        if args.json:
            Path(args.json).write_text(json.dumps({"report": report, "samples_s": samples}, indent=1))
    finally:
        leftovers = rig.stop(cri) if rig is not None else []
        if cri is not None:
            cri.close()
        if leftovers:
            print(f"left behind: {leftovers}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
