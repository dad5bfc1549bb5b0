"""The systemd rig (tests/systemd/rig.py) as a session fixture: built by scripts/systemd-rig on first use (cached in
$OCIPY_CACHE), booted once per session, stopped by pid and cleaned at the end. Tests run ocipy inside it with
`--systemd-cgroup`, as a service of that systemd would."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _load(name: str, file: str) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


rigmod = _load("ocipy_systemd_rig", "rig.py")
PROJECT = rigmod.PROJECT
MAKE_ROOTFS = PROJECT / "scripts" / "make-rootfs"
OCIPY = rigmod.OCIPY


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first test may build the rig (mmdebstrap, 1-3 minutes when scripts/setup has not): more than the suite's
    120 s default timeout."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.timeout(900))


@pytest.fixture(scope="session")
def rig() -> Iterator[Any]:
    if os.geteuid() != 0:
        pytest.skip("the systemd rig needs root")
    missing = rigmod.missing_tools()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/setup installs them)")
    rootfs = rigmod.build()
    r = rigmod.Rig(rootfs)
    r.start()
    try:
        r.install_ocipy()
        yield r
    finally:
        r.stop()


class Bundles:
    """Busybox bundles in the rig's shared dir (the same path on the host and inside)."""

    def __init__(self, rig: Any) -> None:
        self.rig = rig
        self.template = rig.share / "rootfs-template"
        subprocess.run([str(MAKE_ROOTFS), str(self.template)], check=True, capture_output=True)
        self.n = itertools.count()

    def make(
        self, args: list[str], resources: dict[str, Any] | None = None, cgroups_path: str | None = None, **linux: Any
    ) -> Path:
        d = self.rig.share / f"bundle{next(self.n)}"
        d.mkdir()
        subprocess.run(["cp", "-a", str(self.template), str(d / "rootfs")], check=True)
        subprocess.run([sys.executable, "-m", "ocipy", "spec", "--bundle", str(d)], check=True, cwd=PROJECT)
        cfg = json.loads((d / "config.json").read_text())
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = args
        if resources is not None:
            cfg["linux"]["resources"] = resources
        if cgroups_path is not None:
            cfg["linux"]["cgroupsPath"] = cgroups_path
        cfg["linux"].update(linux)
        (d / "config.json").write_text(json.dumps(cfg))
        return d


@pytest.fixture(scope="session")
def bundles(rig: Any) -> Bundles:
    return Bundles(rig)


@pytest.fixture
def ocipy(rig: Any) -> Any:
    """ocipy inside the rig: ocipy(*args, check=True) -> CompletedProcess."""

    def call(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return rig.ocipy(*args, check=check)  # type: ignore[no-any-return]

    return call
