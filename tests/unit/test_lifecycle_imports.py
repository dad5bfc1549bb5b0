"""The lifecycle verbs stay on the stdlib: the real command, `python -X importtime`, and a list of what must not load.

Heavy imports (pydantic, jsonschema, pyroute2, the models, the planner) would cost 60-200 ms on commands runc does in
~3 ms; `argparse`, `typing` and `re` (~3-7 ms each) are kept off the plain paths of these verbs too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "pydantic",
    "pydantic_core",
    "jsonschema",
    "pyroute2",
    "typing_extensions",
    "ocipy.spec",
    "ocipy.plan",
    "ocipy.bundle",
}
# what the fast path also avoids: a regression here costs milliseconds, not a design rule
SLOW_STDLIB = {"argparse", "typing", "re", "json", "os"}  # os: ~1 ms (ocipy/posixlite.py)

VERBS = {
    "state": ["state", "nope"],
    "kill": ["kill", "nope", "9"],
    "delete": ["delete", "nope"],
    "start": ["start", "nope"],
    "pause": ["pause", "nope"],
    "resume": ["resume", "nope"],
    "list": ["list"],
    "ps": ["ps", "nope"],
    "exec": ["exec", "nope", "/bin/true"],  # a real exec's imports: tests/integration/test_exec.py
}


_ENTRY = "import sys; sys.argv[0] = 'ocipy'; from ocipy.cli import entry; entry()"


def imported(argv: list[str], root: Path, site: bool = True) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    out = subprocess.run(
        # `-c` as the launcher does (ocipy/launcher.py): `-m` would import runpy, and with it `os`
        [sys.executable, *([] if site else ["-S"]), "-X", "importtime", "-c", _ENTRY, "--root", str(root), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    names = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names, out


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_lifecycle_verb_imports_no_heavy_modules(verb: str, tmp_path: Path) -> None:
    names, out = imported(VERBS[verb], tmp_path)
    assert "ocipy.cli" in names, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    bad = {n for n in names if n in FORBIDDEN or n.split(".")[0] in FORBIDDEN or n.startswith(("ocipy.spec.",))}
    assert not bad, f"{verb} imported {sorted(bad)}"


@pytest.mark.parametrize("verb", ["state", "kill", "delete", "start", "pause", "resume"])
def test_missing_container_path_avoids_slow_stdlib(verb: str, tmp_path: Path) -> None:
    # without `site`: an editable install's .pth finder imports `re` and `pathlib` before ocipy runs at all
    names, out = imported(VERBS[verb], tmp_path, site=False)
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == "ocipy: container does not exist"
    slow = SLOW_STDLIB & names
    assert not slow, f"{verb} of a missing container imported {sorted(slow)}"
