"""The systemd cgroup driver's cost: ocipy vs runc 1.5.1, both with --systemd-cgroup, inside the systemd rig.

    .venv/bin/python bench/systemd.py [-n 20]

Needs root, the rig (tests/systemd/rig.py, built by scripts/systemd-rig) and runc 1.5.1 (scripts/refs, under
$OCIPY_CACHE). Boots the rig with runc's build bound in read-only, then runs bench/containers.py inside it with
both runtimes given `--systemd-cgroup` (each container a transient scope unit made over D-Bus: StartTransientUnit,
the job's JobRemoved, StopUnit at delete). Same bundle, alternating runtimes, medians (bench/containers.py says what
each row times). The cgroupfs figures are bench/containers.py's on the host (runc's cgroupfs driver cannot make
its default cgroup in the rig, whose cgroup namespace root is read-only).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "systemd"))

from rig import Rig, build


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/systemd.py needs root", file=sys.stderr)
        return 2
    runc = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy")) / "bin" / "runc-1.5.1"
    if not runc.exists():
        print(f"{runc} is missing: scripts/refs builds it", file=sys.stderr)
        return 2
    runc = runc.resolve()
    with Rig(build(), binds_ro=[str(runc.parent)]) as rig:
        rig.install_ocipy()
        py = f"{PROJECT}/.venv/bin/python"
        cmd = [py, "bench/containers.py", "-n", str(args.n), "--ocipy", "/usr/local/bin/ocipy --systemd-cgroup",
               "--runc", f"{runc} --systemd-cgroup"]  # fmt: skip
        out = rig.run(cmd, check=False, timeout=1800)
        print(out.stdout, out.stderr, flush=True)
        if out.returncode not in (0, 1):
            return out.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
