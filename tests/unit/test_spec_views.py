"""The planner reads the config through typed views: ocipy/spec/views.py (generated from the models) and
`ocipy.plan.base.opt`, so mypy catches a misspelt field instead of the planner reading None."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from ocipy.spec import schemagen

PROJECT = Path(__file__).resolve().parents[2]


def test_views_module_is_fresh() -> None:
    assert (PROJECT / "ocipy" / "spec" / "views.py").read_text() == schemagen.render_views(), (
        "ocipy/spec/views.py is stale: run python -m ocipy.spec.schemagen"
    )


def test_the_planner_reads_the_config_only_through_opt() -> None:
    """No untyped reads (`getattr(obj, "name")`, `_get(obj, "name")`) left in the planner's sections."""
    untyped = []
    for path in sorted((PROJECT / "ocipy" / "plan").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_get", "getattr"):
                untyped.append(f"{path.name}:{node.lineno}")
    allowed = {"base.py", "__init__.py"}  # opt() itself, the lazy exports
    assert [u for u in untyped if u.split(":")[0] not in allowed] == []


MISSPELT = """
from ocipy.plan.base import opt
from ocipy.spec import views
def cwd(p: views.Process | None) -> str | None:
    return opt(p).{field}
"""


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
@pytest.mark.parametrize(("field", "ok"), [("cwd", True), ("cwdd", False)])
def test_mypy_catches_a_misspelt_field(field: str, ok: bool) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file=", "--strict", "--follow-imports=silent", "--no-incremental"]
        + ["-c", MISSPELT.format(field=field)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert out.returncode == 0, out.stdout
    else:
        assert out.returncode == 1
        assert '"Process" has no attribute "cwdd"' in out.stdout
