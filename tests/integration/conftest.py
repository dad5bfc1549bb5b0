"""Shared fixtures for integration tests: a busybox root filesystem per test, and a check that nothing a test did
left a mount on the host under its temp dir."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _load(name: str, file: str) -> None:
    """A file of tests/integration under a unique module name (other test dirs have helper modules too): helpers.py
    as `ocipy_it_helpers` (its fixtures are registered here for every test module) and leftovers.py as
    `ocipy_leftovers` (the leftover probes of the fault-injection, OS-error and create-fuzz tests)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)


_load("ocipy_it_helpers", "helpers.py")
_load("ocipy_leftovers", "leftovers.py")
from ocipy_it_helpers import bundle, host_mounts_guard, open_bundle, procs, rt  # noqa: F401  (fixtures)

MAKE_ROOTFS = Path(__file__).resolve().parents[2] / "scripts" / "make-rootfs"


def host_mounts_under(path: Path) -> list[str]:
    """Mount points of this (the host's) mount namespace at or below path."""
    prefix = str(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


@pytest.fixture(scope="session")
def busybox_rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    base = tmp_path_factory.mktemp("rootfs-template")
    dest = base / "rootfs"
    subprocess.run([str(MAKE_ROOTFS), str(dest)], check=True, capture_output=True)
    return dest


@pytest.fixture
def busybox_rootfs(busybox_rootfs_template: Path, tmp_path: Path) -> Iterator[Path]:
    """A fresh busybox rootfs in the test's tmp dir (tests may change it); removed afterwards, and the test fails if
    a mount below its tmp dir is still visible on the host."""
    dest = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs_template, dest, symlinks=True)
    yield dest
    leaked = host_mounts_under(tmp_path)
    for point in sorted(leaked, reverse=True):  # never delete files through a leaked mount: detach it first
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    if not host_mounts_under(tmp_path):
        shutil.rmtree(dest, ignore_errors=True)
    assert not leaked, f"mounts leaked onto the host: {leaked}"


@pytest.fixture
def userns_rootfs(busybox_rootfs_template: Path) -> Iterator[Path]:
    """A rootfs owned by host uid/gid 100000 (container root under the map below) in a directory every user can
    traverse (pytest's own tmp dirs are 0700 root, closed to a mapped root)."""
    base = Path(tempfile.mkdtemp(prefix="ocipy-userns-"))
    base.chmod(0o755)
    dest = base / "rootfs"
    shutil.copytree(busybox_rootfs_template, dest, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, 100000, 100000)
    yield dest
    leaked = host_mounts_under(base)
    if not leaked:
        shutil.rmtree(base, ignore_errors=True)
    assert not leaked
