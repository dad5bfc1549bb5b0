"""ocipy vs runc on the lifecycle verbs callers run constantly, for a container that does not exist.

    .venv/bin/python bench/lifecycle.py [-n 50]

Each command runs N times (after 5 warm-ups) with a private temp state root; the figure is the median wall time of
spawn-to-exit in ms. ocipy is measured through three launchers, because the launcher is most of the cost:
  launcher  -- the proposed /usr/local/bin/ocipy: `#!<venv python> -IS`, the project on sys.path by hand
  pip       -- what pip generates for a console script (`import re`, full `site` with the venv's .pth files)
  -m        -- `python -m ocipy`
and `python -IS -c pass` shows the interpreter's own floor. ocipy's .pyc files go to a temp pycache prefix (an
installed package has them compiled at install time), so no run pays for compiling.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

LAUNCHER = """#!{python} -IS
import sys
sys.pycache_prefix = {pycache!r}  # bench only: keep .pyc out of the tree (an install compiles them)
sys.path.insert(0, {project!r})
from ocipy.cli import main
sys.exit(main())
"""

PIP_LAUNCHER = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from ocipy.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def time_once(argv: list[str], env: dict[str, str]) -> float:
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(
            argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        )
        os.waitpid(pid, 0)
        return (time.perf_counter_ns() - t0) / 1e6
    finally:
        os.close(devnull)


def median_ms(argv: list[str], env: dict[str, str], n: int) -> float:
    for _ in range(5):
        time_once(argv, env)
    return statistics.median(time_once(argv, env) for _ in range(n))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=50, help="runs per command (default 50)")
    ns = ap.parse_args()
    runc = shutil.which("runc") or "/usr/sbin/runc"
    tmp = Path(tempfile.mkdtemp(prefix="ocipy-bench-"))
    try:
        pycache = tmp / "pycache"
        launcher = tmp / "ocipy"
        launcher.write_text(LAUNCHER.format(python=PYTHON, pycache=str(pycache), project=str(PROJECT)))
        pip_launcher = tmp / "ocipy-pip"
        pip_launcher.write_text(PIP_LAUNCHER.format(python=PYTHON))
        for f in (launcher, pip_launcher):
            f.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"PYTHONPATH": str(PROJECT), "PYTHONPYCACHEPREFIX": str(pycache)}
        runc_root, ocipy_root = str(tmp / "runc-root"), str(tmp / "ocipy-root")

        print(f"median of {ns.n} runs, ms (runc: {runc}; python: {PYTHON})")
        floor = median_ms([PYTHON, "-IS", "-c", "pass"], env, ns.n)
        print(f"{'python -IS -c pass (interpreter floor)':44s} {floor:7.2f}")
        header = f"{'command':22s} {'runc':>7s} {'launcher':>9s} {'pip':>7s} {'-m':>7s}  {'launcher/runc':>13s} {'pip/runc':>8s}"
        print(header)
        for verb in (["state", "nope"], ["kill", "nope", "9"], ["delete", "nope"], ["delete", "--force", "nope"]):
            r = median_ms([runc, "--root", runc_root, *verb], env, ns.n)
            lau = median_ms([str(launcher), "--root", ocipy_root, *verb], env, ns.n)
            pip = median_ms([str(pip_launcher), "--root", ocipy_root, *verb], env, ns.n)
            mod = median_ms([PYTHON, "-m", "ocipy", "--root", ocipy_root, *verb], env, ns.n)
            print(f"{' '.join(verb):22s} {r:7.2f} {lau:9.2f} {pip:7.2f} {mod:7.2f}  {lau / r:13.2f} {pip / r:8.2f}")
        print(
            f"interpreter floor / runc state: {floor / median_ms([runc, '--root', runc_root, 'state', 'x'], env, ns.n):.2f}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
