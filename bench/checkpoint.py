"""checkpoint and restore times, ocipy beside runc 1.5.1, on the same container (same bundle, same CRIU 4.2).

    .venv/bin/python bench/checkpoint.py [-n 10]

The container is a busybox shell looping on `sleep 0.1` (`runc spec` config, terminal off, stdio /dev/null). Each
round: `run -d`, then timed `checkpoint --image-path D` (the container is dumped and removed), then timed
`restore -d --image-path D` (running again), then `delete -f`. Figures are the median and the minimum wall time in
ms of each command, spawn to exit, and the part CRIU itself spent (the last time stamp of dump.log/restore.log).
CRIU comes from $OCIPY_CACHE/bin (scripts/refs), put first on PATH for both runtimes. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy"))
RUNC = CACHE / "bin" / "runc-1.5.1"
CRIU = CACHE / "bin" / "criu"


def timed(argv: list[str], env: dict[str, str], errfile: Path | None) -> float:
    """Spawn to exit. stdio on /dev/null and a named file, never a pipe (a detached container would hold it open)
    nor an O_TMPFILE (CRIU reopens a container's stdio file through /proc with its flags: tempfile's O_NOFOLLOW)."""
    with open(errfile or os.devnull, "wb") as err:
        t0 = time.perf_counter_ns()
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, check=False)
        # (a pipe on stdout would be held open by the detached container)
        ms = (time.perf_counter_ns() - t0) / 1e6
    if p.returncode != 0:
        said = errfile.read_text(errors="replace").strip() if errfile else ""
        raise SystemExit(f"{' '.join(argv)}: exit {p.returncode}: {said}")
    return ms


def criu_ms(log: Path) -> float:
    """CRIU's own time: the last `(SS.ssssss)` stamp of its log."""
    stamps = re.findall(r"^\((\d+\.\d+)\)", log.read_text(errors="replace"), re.MULTILINE)
    return float(stamps[-1]) * 1000 if stamps else float("nan")


def make_bundle(base: Path) -> Path:
    bundle = base / "bundle"
    bundle.mkdir()
    subprocess.run([str(PROJECT / "scripts" / "make-rootfs"), str(bundle / "rootfs")], check=True, capture_output=True)
    subprocess.run([str(RUNC), "spec"], cwd=bundle, check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "while :; do sleep 0.1; done"]
    (bundle / "config.json").write_text(json.dumps(cfg, indent=2))
    return bundle


def bench(
    name: str, runtime: list[str], bundle: Path, base: Path, n: int, env: dict[str, str], flags: tuple[str, ...] = ()
) -> dict[str, list[float]]:
    root = base / f"state-{name}"
    out: dict[str, list[float]] = {"checkpoint": [], "restore": [], "criu dump": [], "criu restore": []}
    for i in range(n + 1):  # the first round warms caches and is not counted
        cid = f"bench-{name}-{i}"
        images = base / f"img-{name}-{i}"
        rt = [*runtime, "--root", str(root)]
        timed([*rt, "run", "-d", "--bundle", str(bundle), cid], env, None)  # the container's stdio: /dev/null
        time.sleep(0.2)
        try:
            ck = timed([*rt, "checkpoint", *flags, "--image-path", str(images), cid], env, base / "checkpoint.err")
            rs = timed(
                [*rt, "restore", "-d", *flags, "--bundle", str(bundle), "--image-path", str(images), cid],
                env,
                base / "restore.err",
            )
        finally:
            subprocess.run(
                [*rt, "delete", "-f", cid], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
            )
        if i:
            out["checkpoint"].append(ck)
            out["restore"].append(rs)
            out["criu dump"].append(criu_ms(images / "dump.log"))
            out["criu restore"].append(criu_ms(images / "restore.log"))
        shutil.rmtree(images, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    for tool in (RUNC, CRIU):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} is missing: run scripts/refs")
    env = {**os.environ, "PATH": f"{CRIU.parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    base = Path(tempfile.mkdtemp(prefix="ocipy-bench-cr-"))
    try:
        launcher = base / "ocipy"
        subprocess.run([sys.executable, "-m", "ocipy.launcher", str(launcher)], check=True, cwd=PROJECT)
        bundle = make_bundle(base)
        results = {
            "ocipy": bench("ocipy", [str(launcher)], bundle, base, args.n, env),
            # what runc always does: CRIU makes the network namespace but dumps/restores none of its contents
            "ocipy empty-ns": bench("ocipy-e", [str(launcher)], bundle, base, args.n, env, ("--empty-ns", "network")),
            "runc 1.5.1": bench("runc", [str(RUNC)], bundle, base, args.n, env),
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"checkpoint/restore of a busybox sleep loop, CRIU 4.2, {args.n} rounds: median (min) ms")
    print("ocipy empty-ns: with --empty-ns network, runc's default (no dump of the container's own netns)")
    print(f"{'':16}" + "".join(f"{rt:>20}" for rt in results))
    for key in ("checkpoint", "criu dump", "restore", "criu restore"):
        cells = [f"{statistics.median(v[key]):8.1f} ({min(v[key]):6.1f})" for v in results.values()]
        print(f"{key:16}" + "".join(f"{c:>20}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
