"""`pip install .` into a fresh virtual environment, then the installed `ocipy` command on the upstream examples;
and the built artifacts: the sdist and the abi3 wheel, each installed into fresh virtual environments of every
CPython 3.11+ this machine has (Debian's, pyenv's).

The command is launcher/ocipy, which pip installs from the wheel's scripts (no console-script entry point): run with
no PATH, it starts the interpreter installed beside it with -I -S (fast, deaf to PYTHON* variables and to .pth files,
as the launcher scripts/setup writes: issue 15), and answers --version, spec and validate; the C parts are built
through cffi.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
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


def _pythons() -> dict[str, str]:
    """CPython 3.11+ interpreters on this machine, by version (the first found for each)."""
    found: dict[str, str] = {}
    candidates = [
        sys.executable,
        "/usr/bin/python3",
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3"))),
    ]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    for py in candidates:
        if not os.access(py, os.X_OK):
            continue
        res = subprocess.run(
            [py, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"],
            capture_output=True,
            text=True,
            check=False,
        )
        parts = res.stdout.split()
        if res.returncode == 0 and parts[1] == "cpython" and tuple(map(int, parts[0].split("."))) >= (3, 11):
            found.setdefault(parts[0], py)
    return found


PYTHONS = _pythons()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, built from this checkout, and the wheel, built from that sdist (as a packager would)."""
    out = tmp_path_factory.mktemp("dist")
    venv = out / "buildenv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = str(venv / "bin" / "pip")
    subprocess.run([pip, "install", "-q", "build"], check=True, capture_output=True, timeout=600)
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "build", "-o", str(out), str(PROJECT)],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    sdists, wheels = list(out.glob("ocipy-*.tar.gz")), list(out.glob("ocipy-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    yield {"sdist": sdists[0], "wheel": wheels[0]}
    shutil.rmtree(out, ignore_errors=True)


def test_wheel_is_abi3_and_carries_license_and_commit(artifacts: dict[str, Path]) -> None:
    wheel = artifacts["wheel"]
    assert wheel.name.endswith("-cp311-abi3-linux_x86_64.whl") or "-cp311-abi3-" in wheel.name, wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "ocipy/_shim_c.abi3.so" in names, [n for n in names if n.endswith(".so")]
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert "License-Expression: Apache-2.0" in meta
        assert "Tag: cp311-abi3-" in z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
        assert len(z.read("ocipy/COMMIT").decode().strip()) in (0, 40)


def test_sdist_has_what_a_build_needs(artifacts: dict[str, Path]) -> None:
    with tarfile.open(artifacts["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in (
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "setup.py",
        "shim/build_shim.py",
        "shim/spawn.c",
        "shim/spawn.h",
        "shim/plan.h",
        "shim/init/main.c",
        "shim/init/init.h",
        "ocipy/cli.py",
    ):
        assert need in names, need


@pytest.mark.parametrize("version", sorted(PYTHONS))
@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_installs_and_runs_on_each_python(artifacts: dict[str, Path], kind: str, version: str, tmp_path: Path) -> None:
    if kind == "sdist" and version != min(PYTHONS):
        pytest.skip("the sdist is built on one interpreter; the abi3 wheel is what covers the others")
    venv = tmp_path / "venv"
    subprocess.run([PYTHONS[version], "-m", "venv", str(venv)], check=True)
    res = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(artifacts[kind])],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=str(tmp_path),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = run(venv / "bin" / "ocipy", "--version")
    assert out.returncode == 0, out.stderr
    assert_isolated(venv / "bin" / "ocipy", tmp_path)
    lines = out.stdout.splitlines()
    assert lines[0] == "ocipy version 0.1.0"
    assert lines[3].startswith(f"python: cpython {version}.")
    features = run(venv / "bin" / "ocipy", "features")
    assert features.returncode == 0, features.stderr
    assert json.loads(features.stdout)["linux"]["netDevices"] == {"enabled": True}
    shim = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", "import ocipy._shim as s; print(s.init_size())"],
        check=False,
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert shim.returncode == 0 and int(shim.stdout) > 10_000, shim.stderr


def test_pythons_found() -> None:
    # say which interpreters were covered (and that the abi3 wheel's range was): 3.11 at least
    assert "3.11" in PYTHONS, PYTHONS


def run(ocipy: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # no PATH at all, like Podman's start/kill/delete calls
    return subprocess.run([str(ocipy), *args], check=False, capture_output=True, text=True, env={}, cwd=cwd, timeout=60)


def test_script_names_its_interpreter_by_absolute_path(ocipy_bin: Path) -> None:
    first = ocipy_bin.read_text().splitlines()[0]
    assert first == "#!/bin/sh", first  # launcher/ocipy, not pip's console script (which runs site.py, imports re)
    assert os.access(first[2:].split()[0], os.X_OK)


def assert_isolated(ocipy: Path, tmp_path: Path) -> None:
    """The installed command runs its own ocipy with -I -S: PYTHONPATH (with a sitecustomize and a fake ocipy),
    PYTHONVERBOSE and a .pth file in site-packages change nothing; through a symlink elsewhere too."""
    planted = tmp_path / "planted"
    (planted / "ocipy").mkdir(parents=True)
    marker = tmp_path / "ran"
    hook = f"open({str(marker)!r}, 'a').write('x')\n"
    (planted / "sitecustomize.py").write_text(hook)
    (planted / "ocipy" / "__init__.py").write_text(hook)
    site_packages = next((ocipy.parent.parent / "lib").glob("python3.*/site-packages"))
    pth = site_packages / "zz_ocipy_probe.pth"
    pth.write_text(f"import builtins; {hook}")
    link = tmp_path / "bin" / "ocipy"
    link.parent.mkdir()
    link.symlink_to(ocipy)
    try:
        env = {"PYTHONPATH": str(planted), "PYTHONVERBOSE": "1", "PYTHONSTARTUP": str(planted / "sitecustomize.py")}
        for command in (ocipy, link):
            res = subprocess.run(
                [str(command), "--version"], check=False, capture_output=True, text=True, env=env, timeout=60
            )
            assert res.returncode == 0, res.stderr
            assert res.stdout.startswith("ocipy version 0.1.0\n"), res.stdout
            assert "import " not in res.stderr, res.stderr[:2000]  # PYTHONVERBOSE was ignored
        assert not marker.exists(), "a PYTHONPATH module or a .pth file ran"
    finally:
        pth.unlink()


def test_command_is_isolated(ocipy_bin: Path, tmp_path: Path) -> None:
    assert_isolated(ocipy_bin, tmp_path)


def test_version(ocipy_bin: Path) -> None:
    res = run(ocipy_bin, "--version")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "ocipy version 0.1.0"
    assert lines[1].startswith("commit: ")
    assert lines[2] == "spec: 1.3.0"


def test_the_extension_was_built(ocipy_bin: Path) -> None:
    python = str(ocipy_bin.parent / "python")
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
