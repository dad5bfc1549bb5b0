"""bench/containers.py's exec rows count what a runtime leaves running: a process orphaned while the bench is the
child subreaper is re-parented to it, and its CPU is added to the command's (docs/benchmarks.md, "How the exec rows
are counted"). Each check runs in a fresh interpreter: reap_orphans waits for every child of its process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

# a shell that leaves a child burning ~0.3 s of CPU and exits at once (as `runc exec -d` leaves its `runc init`)
CHECK = """
import json, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
import containers
subreaper = sys.argv[2] == "on"
containers.set_subreaper(subreaper)
proc = subprocess.Popen(["/bin/sh", "-c", "i=0; (while [ $i -lt 100000 ]; do i=$((i+1)); done) & exit 0"])
_pid, _status, usage = os.wait4(proc.pid, 0)
proc.returncode = 0
own = (usage.ru_utime + usage.ru_stime) * 1000
left = containers.reap_orphans()
containers.set_subreaper(False)
print(json.dumps({"own": own, "left": left, "again": containers.reap_orphans()}))
"""


def _check(subreaper: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHECK, str(BENCH), subreaper], check=True, capture_output=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_orphans_are_reaped_and_counted() -> None:
    got = _check("on")
    assert got["left"] > 20 * max(got["own"], 1.0)  # the worker's CPU, which wait4 of the shell did not include
    assert got["again"] == 0.0  # nothing of ours is left


def test_without_the_subreaper_nothing_comes_back() -> None:
    got = _check("off")
    assert got["left"] == 0.0  # the worker went to init: the old figure, the runtime's own CPU only
