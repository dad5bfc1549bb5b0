"""The shape of the code, checked: thin verbs (no `ocipy.operations.X` imports another `ocipy.operations.Y`; what
verbs share lives in named modules outside operations/), and the lower layers never import a verb."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

OCIPY = Path(__file__).resolve().parents[2] / "ocipy"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports (relative imports resolved), wherever the import statement stands."""
    package = ".".join(path.relative_to(OCIPY.parent).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.add(arg.value)
    return out


VERBS = sorted(p for p in (OCIPY / "operations").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", VERBS, ids=lambda p: p.stem)
def test_no_verb_imports_another(path: Path) -> None:
    own = f"ocipy.operations.{path.stem}"
    verbs = {f"ocipy.operations.{p.stem}" for p in VERBS}
    others = {m for m in imported_modules(path) if m in verbs and m != own}
    assert not others, f"{own} imports {sorted(others)}: move what they share to a module outside operations/"


def test_nothing_below_the_cli_imports_a_verb() -> None:
    bad = []
    for path in sorted(OCIPY.rglob("*.py")):
        rel = path.relative_to(OCIPY)
        if rel.parts[0] == "operations" or rel.name in ("cli.py", "__main__.py"):
            continue
        verbs = {m for m in imported_modules(path) if m.startswith("ocipy.operations.")}
        if verbs:
            bad.append(f"{rel}: {sorted(verbs)}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports() -> None:
    # the test above must be able to fail: a relative sibling import and an absolute one are both found
    run = imported_modules(OCIPY / "operations" / "run.py")
    assert "ocipy.creator" in run and "ocipy.lifecycle" in run
