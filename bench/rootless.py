"""Rootless `podman run --rm busybox true` with ocipy and with runc 1.5.1, side by side in one run.

    .venv/bin/python bench/rootless.py [-n 20] [-w 3] [--network none|slirp4netns] [--runc PATH] [--json FILE]

Run as root: it makes a throw-away unprivileged user (tests/rootless/rootlessctl.py: subordinate ids,
XDG_RUNTIME_DIR, its own Podman store with the busybox image), then times, as that user, the same `podman run`
with `--runtime <ocipy>` (a fresh -IS launcher of this checkout) and `--runtime <runc 1.5.1>`
($OCIPY_CACHE/bin/runc-1.5.1, built by scripts/refs), alternating which goes first. The figure is the median wall
time (spawn to exit of the podman client) after W unmeasured warm-ups; Podman's own work (storage, conmon, its user
namespace) is in both. The bare interpreter's start-up (`python3 -IS -c pass`) is timed in the same run as the floor
every ocipy call pays. The user, its store, processes and ids are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "rootless"))

from rootlessctl import IMAGE, RootlessUser

CACHE = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy"))


def once(user: RootlessUser, argv: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
                       **user.popen_kwargs())  # type: ignore[arg-type]  # fmt: skip
    elapsed = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=int(os.environ.get("BENCH_N", "20")), help="measured iterations")
    ap.add_argument("-w", "--warmup", type=int, default=3, help="unmeasured warm-up iterations")
    ap.add_argument("--network", default="none", help="none (default) or slirp4netns")
    ap.add_argument("--runc", default=str(CACHE / "bin" / "runc-1.5.1"))
    ap.add_argument("--json", default=None, help="also write the medians and raw samples to this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/rootless.py needs root (it creates and removes its own unprivileged user)")
    if not os.access(args.runc, os.X_OK):
        raise SystemExit(f"{args.runc} is missing (scripts/refs builds runc 1.5.1)")
    user = RootlessUser.create()
    try:
        if args.network != "none":
            user.grant_tun()
        user.import_busybox()
        runtimes = {"ocipy": user.runtime, "runc": args.runc}
        argvs = {
            k: user.podman_argv("run", "--rm", "--network", args.network, IMAGE, "true", runtime=rt)
            for k, rt in runtimes.items()
        }
        argvs["python3 -IS"] = [sys.executable, "-IS", "-c", "pass"]
        samples: dict[str, list[float]] = {k: [] for k in argvs}
        for i in range(args.warmup + args.n):
            order = list(argvs) if i % 2 == 0 else list(reversed(argvs))
            for name in order:
                ms = once(user, argvs[name])
                if i >= args.warmup:
                    samples[name].append(ms)
        med = {k: statistics.median(v) for k, v in samples.items()}
        ratio = med["ocipy"] / med["runc"]
        print(f"rootless podman run --rm --network {args.network} busybox true "
              f"(median of {args.n}, after {args.warmup} warm-ups, user {user.name})")  # fmt: skip
        print(f"  {'runtime':12} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
        for k in ("runc", "ocipy", "python3 -IS"):
            print(f"  {k:12} {med[k]:10.1f} {min(samples[k]):8.1f} {max(samples[k]):8.1f}")
        print(f"  ocipy/runc = {ratio:.2f}x")
        if args.json:
            Path(args.json).write_text(json.dumps({"median_ms": med, "ratio": ratio, "samples_ms": samples}, indent=2))
        return 0
    finally:
        user.destroy()


if __name__ == "__main__":
    sys.exit(main())
