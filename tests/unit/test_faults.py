"""The fault-injection hook (ocipy/faults.py): stdlib only, inert when unset, kills at a named or numbered step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import sys
from ocipy.faults import point
for name in ("a.one", "a.two", "a.three"):
    point(name)
    print(name, flush=True)
"""


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("OCIPY_FAULT")}
    full.update(env, PYTHONPATH=str(PROJECT))
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT], check=False, env=full, capture_output=True, text=True, timeout=30
    )


def test_unset_is_inert() -> None:
    out = _run({})
    assert out.returncode == 0 and out.stdout.split() == ["a.one", "a.two", "a.three"]


def test_kills_at_a_named_step() -> None:
    out = _run({"OCIPY_FAULT": "a.two"})
    assert out.returncode == -signal.SIGKILL
    assert out.stdout.split() == ["a.one"]


def test_kills_at_the_nth_step_and_traces(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    out = _run({"OCIPY_FAULT": "3", "OCIPY_FAULT_TRACE": str(trace)})
    assert out.returncode == -signal.SIGKILL
    assert out.stdout.split() == ["a.one", "a.two"]
    assert trace.read_text().split() == ["a.one", "a.two", "a.three"]


def test_imports_only_the_stdlib_shim() -> None:
    code = "import sys, ocipy.faults; print(sorted(m for m in sys.modules if m.startswith('ocipy')))"
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={"PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == "['ocipy', 'ocipy.faults', 'ocipy.posixlite']"


def test_lifecycle_verbs_call_it() -> None:
    # the hook is wired where a crash matters: every verb that makes or removes something (wherever its steps live)
    text = "\n".join(p.read_text() for p in (PROJECT / "ocipy").rglob("*.py"))
    for step in (
        "create.journal",
        "create.cgroups",
        "create.pid-recorded",
        "create.state",
        "delete.cgroups",
        "run.created",
        "exec.spawned",
    ):
        assert f'"{step}"' in text, step
