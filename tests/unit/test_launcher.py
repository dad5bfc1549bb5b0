"""The `ocipy` launcher callers run: absolute interpreter, -IS, and deaf to the caller's Python environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def make(tmp_path: Path) -> Path:
    target = tmp_path / "ocipy"
    subprocess.run([sys.executable, "-m", "ocipy.launcher", str(target)], check=True)
    return target


def test_launcher_runs_with_no_environment(tmp_path: Path) -> None:
    launcher = make(tmp_path)
    first = launcher.read_text().splitlines()[0]
    assert first == f"#!{sys.executable} -IS"
    assert os.access(launcher, os.X_OK)
    res = subprocess.run([str(launcher), "--version"], check=False, capture_output=True, text=True, env={}, cwd="/")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ocipy version ")


def test_a_hostile_pythonpath_is_ignored(tmp_path: Path) -> None:
    """The runtime runs as root: PYTHONPATH/PYTHONSTARTUP from a caller must not choose the code that runs."""
    evil = tmp_path / "evil"
    (evil / "ocipy").mkdir(parents=True)
    (evil / "ocipy" / "__init__.py").write_text("raise SystemExit('hijacked')\n")
    (evil / "sitecustomize.py").write_text("raise SystemExit('hijacked')\n")
    launcher = make(tmp_path)
    env = {"PYTHONPATH": str(evil), "PYTHONSTARTUP": str(evil / "sitecustomize.py"), "PYTHONHOME": str(evil)}
    res = subprocess.run([str(launcher), "--version"], check=False, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "hijacked" not in res.stdout + res.stderr


def test_installed_command_is_deaf_to_python_variables(tmp_path: Path) -> None:
    # the command pip installs (launcher/ocipy): a PYTHONPATH shadowing a dependency (pydantic, loaded by validate)
    # must not change what it runs
    script = Path(sys.executable).parent / "ocipy"
    if not script.exists():
        pytest.skip(f"no installed command at {script}")
    for dep in ("pydantic", "pydantic_core"):
        evil = tmp_path / "evil" / dep
        evil.mkdir(parents=True)
        (evil / "__init__.py").write_text(f"raise SystemExit('shadowed {dep} was imported')\n")
    bundle = tmp_path / "b"
    (bundle / "rootfs").mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(evil.parent), "PYTHONWARNINGS": "error"}
    assert subprocess.run([str(script), "spec", "--bundle", str(bundle)], env=env, check=False).returncode == 0
    res = subprocess.run(
        [str(script), "validate", "--bundle", str(bundle)], env=env, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    assert "shadowed" not in res.stderr


@pytest.mark.parametrize("which", ["generated", "installed"])
def test_the_collector_is_off_before_ocipy_is_imported(tmp_path: Path, which: str) -> None:
    # cli.entry's GC policy: the collector would only walk the modules a short command imports (create: ~3 ms of
    # CPU), so both launchers turn it off before the first ocipy import
    text = (make(tmp_path) if which == "generated" else Path(__file__).parents[2] / "launcher" / "ocipy").read_text()
    head, sep, _ = text.partition("from ocipy import boot")  # the first ocipy import (ocipy/boot.py)
    assert sep, "the launcher no longer imports ocipy.boot"
    head = head.rstrip().removesuffix("try:")  # the installed one imports inside a try
    probe = head + "\nimport gc\nprint(gc.isenabled(), 'ocipy.cli' in sys.modules)\n"
    res = subprocess.run([sys.executable, "-IS", "-c", probe], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "False"]
