"""`pip install .` into a fresh virtual environment, then the installed `ocipy` command on the upstream examples.

The command is the console script pip writes: it must name its interpreter by absolute path (callers run it with
no PATH), build the C parts through cffi, and answer --version, spec and validate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT.parent / "shared" / "runtime-spec" / "schema" / "test" / "config"
# Upstream "good" examples written for spec 0.5.0-dev: ocipy runs configs of 1.0.0 to 1.3.x only, so for these
# `validate` must name /ociVersion and nothing else.
TOO_OLD = {"spec-example.json", "zos-example.json"}


@pytest.fixture(scope="module")
def ocipy_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(PROJECT)],
        check=True,
        capture_output=True,
        timeout=600,
        cwd=str(venv.parent),
    )
    yield venv / "bin" / "ocipy"
    shutil.rmtree(venv, ignore_errors=True)


def run(ocipy: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # no PATH at all, like Podman's start/kill/delete calls
    return subprocess.run([str(ocipy), *args], check=False, capture_output=True, text=True, env={}, cwd=cwd, timeout=60)


def test_script_names_its_interpreter_by_absolute_path(ocipy_bin: Path) -> None:
    first = ocipy_bin.read_text().splitlines()[0]
    assert first.startswith("#!/"), first
    assert os.access(first[2:].split()[0], os.X_OK)


def test_version(ocipy_bin: Path) -> None:
    res = run(ocipy_bin, "--version")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "ocipy version 0.1.0"
    assert lines[1].startswith("commit: ")
    assert lines[2] == "spec: 1.3.0"


def test_the_extension_was_built(ocipy_bin: Path) -> None:
    python = ocipy_bin.read_text().splitlines()[0][2:].split()[0]
    res = subprocess.run(
        [python, "-c", "import ocipy._shim as s; print(s.init_size())"],
        check=False,
        capture_output=True,
        text=True,
        env={},
        cwd="/",
    )
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) > 10_000


def test_spec_then_validate(ocipy_bin: Path, tmp_path: Path) -> None:
    assert run(ocipy_bin, "spec", "--bundle", str(tmp_path)).returncode == 0
    (tmp_path / "rootfs").mkdir()
    res = run(ocipy_bin, "validate", "--bundle", str(tmp_path))
    assert res.returncode == 0, res.stderr


def _bundle_for(example: Path, tmp_path: Path) -> Path:
    bundle = tmp_path / example.stem
    bundle.mkdir()
    shutil.copy(example, bundle / "config.json")
    try:
        root = json.loads(example.read_text()).get("root", {}).get("path")
    except (ValueError, AttributeError):
        root = None
    if isinstance(root, str) and not os.path.isabs(root):
        (bundle / root).mkdir(parents=True, exist_ok=True)
    return bundle


def _examples(kind: str) -> list[Path]:
    return sorted((EXAMPLES / kind).glob("*.json")) if EXAMPLES.is_dir() else []


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"runtime-spec examples not found at {EXAMPLES}")
@pytest.mark.parametrize("example", _examples("good"), ids=lambda p: p.name)
def test_validate_good_examples(ocipy_bin: Path, tmp_path: Path, example: Path) -> None:
    res = run(ocipy_bin, "validate", "--bundle", str(_bundle_for(example, tmp_path)))
    if example.name in TOO_OLD:
        assert res.returncode == 1
        assert [line.split(": ")[1] for line in res.stderr.splitlines()] == ["/ociVersion"], res.stderr
    else:
        assert res.returncode == 0, res.stderr


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"runtime-spec examples not found at {EXAMPLES}")
@pytest.mark.parametrize("example", _examples("bad"), ids=lambda p: p.name)
def test_validate_bad_examples(ocipy_bin: Path, tmp_path: Path, example: Path) -> None:
    res = run(ocipy_bin, "validate", "--bundle", str(_bundle_for(example, tmp_path)))
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines, "a bad bundle must name its problems"
    for line in lines:
        assert line.startswith("config.json: "), line
        rest = line.removeprefix("config.json: ")
        # every problem names its field; only a document that is not JSON at all has none to name
        assert rest.startswith(("/", "invalid json")), f"no field path in {line!r}"
    assert "Traceback" not in res.stderr
