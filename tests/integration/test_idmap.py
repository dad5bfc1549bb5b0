"""Idmapped bind mounts (`idmap`/`ridmap`) in a container with its own user namespace."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A host directory owned by host root, with a file; world-traversable so an unmapped container reaches it."""
    d = Path(tempfile.mkdtemp(prefix="ocipy-it-idmap-"))
    try:
        d.chmod(0o755)
        (d / "f").write_text("hi\n")
        (d / "sub").mkdir()  # a mount point for the ridmap tests
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _userns(bundle, *mountpoints: str) -> None:
    bundle.set_namespace("user")
    for m in mountpoints:  # made on the host: the rootfs belongs to host root, unmapped inside
        (bundle.rootfs / m).mkdir()
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def test_idmapped_bind_shows_host_root_as_container_root(rt, open_bundle, host_dir):
    bundle = open_bundle
    _userns(bundle, "plain", "mapped")
    bundle.add_mount(destination="/plain", type="bind", source=str(host_dir), options=["bind"])
    bundle.add_mount(destination="/mapped", type="bind", source=str(host_dir), options=["bind", "idmap"])
    bundle.sh("stat -c '%u %g' /plain/f /mapped/f; touch /mapped/new && stat -c '%u' /mapped/new")
    out = rt.run(bundle).ok().out.split("\n")
    assert out[0] == "65534 65534", out  # without idmap: host root is unmapped inside
    assert out[1] == "0 0", out  # through the idmapped mount: it is the container's root
    assert out[2] == "0", out
    assert (host_dir / "new").stat().st_uid == 0, "a file made by container root through idmap is host root's"


@pytest.mark.parametrize(("option", "want"), [("ridmap", "0"), ("idmap", "65534")])
def test_ridmap_maps_submounts_and_idmap_does_not(rt, open_bundle, host_dir, option, want):
    sub = host_dir / "sub"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "ocipy-it-idmap", str(sub)], check=True)
    try:
        (sub / "g").write_text("deep\n")
        bundle = open_bundle
        _userns(bundle, "mapped")
        bundle.add_mount(destination="/mapped", type="bind", source=str(host_dir), options=["rbind", option])
        bundle.sh("stat -c '%u' /mapped/sub/g")
        assert rt.run(bundle).ok().out.strip() == want
    finally:
        subprocess.run(["umount", str(sub)], check=True)


def test_idmap_without_a_user_namespace_is_refused(rt, bundle, host_dir):
    bundle.add_mount(destination="/mapped", type="bind", source=str(host_dir), options=["bind", "idmap"])
    rt.run(bundle).fails("idmap needs a new user namespace")
    assert rt.state_dirs() == []
