"""`podman run --rm --network none busybox true` with ocipy and with runc, side by side in one run.

    .venv/bin/python bench/podman.py [-n 20] [-w 3] [--ocipy PATH] [--runc /usr/sbin/runc] [--json FILE] [--check]

Needs root and the engines (scripts/engines). One private Podman (its own containers.conf, --root, --runroot, CNI
dir and tmp dir in a temp dir, as the engine tests use: tests/engines/enginectl.py) with a busybox image made from
busybox-static; every iteration runs the same command once with `--runtime <ocipy>` and once with
`--runtime <runc>`, alternating which goes first, so drift on the machine hits both alike. The figure is the median
wall time (spawn to exit of the podman client) in ms after W unmeasured warm-ups. Podman's own work (storage,
conmon, cleanup) is in both figures; the difference is the runtime's create/start/delete. Target: ocipy within
1.5x of runc (--check exits 1 when missed). The private Podman is removed at the end (its mounts detached).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "engines"))

from enginectl import Podman, build_busybox_tar, engine_runtime, private_dir, remove_tree

TARGET = 1.5


def once(pm: Podman, runtime: str) -> float:
    argv = pm.argv("run", "--rm", "--network", "none", pm.image, "true", runtime=runtime)
    t0 = time.perf_counter()
    p = subprocess.run(
        argv, env=pm.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False
    )
    elapsed = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=int(os.environ.get("BENCH_N", "20")), help="measured iterations")
    ap.add_argument("-w", "--warmup", type=int, default=3, help="unmeasured warm-up iterations")
    ap.add_argument("--ocipy", default=None, help="ocipy command (default: a fresh -IS launcher of this checkout)")
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--json", default=None, help="also write the medians and raw samples to this file")
    ap.add_argument("--check", action="store_true", help=f"exit 1 when ocipy is slower than {TARGET}x runc")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/podman.py needs root")
    for tool in ("podman", "conmon", args.runc):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (scripts/engines)")

    work = private_dir("ocipy-bench-podman-")
    pm = None
    try:
        if args.ocipy:
            ocipy = args.ocipy
        else:
            os.environ.pop("ENGINES_RUNTIME", None)
            ocipy = engine_runtime(work)
        pm = Podman(work / "podman", ocipy)
        pm.setup(build_busybox_tar(work))
        runtimes = {"ocipy": ocipy, "runc": args.runc}
        samples: dict[str, list[float]] = {"ocipy": [], "runc": []}
        for i in range(args.warmup + args.n):
            order = ["ocipy", "runc"] if i % 2 == 0 else ["runc", "ocipy"]
            for name in order:
                ms = once(pm, runtimes[name])
                if i >= args.warmup:
                    samples[name].append(ms)
        med = {k: statistics.median(v) for k, v in samples.items()}
        ratio = med["ocipy"] / med["runc"]
        print(f"podman run --rm --network none busybox true  (median of {args.n}, after {args.warmup} warm-ups)")
        print(f"  {'runtime':8} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
        for k in ("runc", "ocipy"):
            print(f"  {k:8} {med[k]:10.1f} {min(samples[k]):8.1f} {max(samples[k]):8.1f}")
        verdict = "ok" if ratio <= TARGET else "MISSED"
        print(f"  ocipy/runc = {ratio:.2f}x  (target <= {TARGET}x: {verdict})")
        if args.json:
            Path(args.json).write_text(json.dumps({"median_ms": med, "ratio": ratio, "samples_ms": samples}, indent=2))
        return 1 if args.check and ratio > TARGET else 0
    finally:
        if pm is not None:
            pm.cleanup()
        remove_tree(work)


if __name__ == "__main__":
    sys.exit(main())
