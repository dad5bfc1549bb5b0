"""Idmapped bind mounts (`idmap`/`ridmap`): with the container's user namespace, or with mappings of their own
(`uidMappings`/`gidMappings` on the mount: a user namespace made for them), with or without a container user
namespace, as runc 1.5.1 does them (its tests/integration/idmap.bats scenarios)."""

from __future__ import annotations

import os
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


def test_idmap_without_mappings_or_a_user_namespace_is_refused(rt, bundle, host_dir):
    """config.md: no uidMappings/gidMappings and no user namespace MUST be an error."""
    bundle.add_mount(destination="/mapped", type="bind", source=str(host_dir), options=["bind", "idmap"])
    rt.run(bundle).fails("/mounts/7/options/1: ", "no uidMappings/gidMappings")
    assert rt.state_dirs() == []


def test_idmap_without_mappings_takes_a_joined_user_namespace(rt, open_bundle, host_dir, procs):
    """runc: an idmap mount without mappings in a container that joins a user namespace is idmapped with that
    one. Joined: container 0 = host 0, container 1 = host 1000. On-disk 1 is unmapped through a plain bind, and
    is container uid 1 through the idmapped mount (on-disk 1 -> host 1000 -> container 1)."""
    holder = procs.spawn(["unshare", "--user", "--setgroups=allow", "sleep", "1000"])
    h.wait_ns_differs(holder.pid, "user")
    Path(f"/proc/{holder.pid}/uid_map").write_text("0 0 1\n1 1000 1\n")
    Path(f"/proc/{holder.pid}/gid_map").write_text("0 0 1\n1 1000 1\n")
    os.chown(host_dir / "f", 1, 1)
    bundle = open_bundle
    bundle.set_namespace("user", f"/proc/{holder.pid}/ns/user")
    bundle.linux["uidMappings"] = [
        {"containerID": 0, "hostID": 0, "size": 1},
        {"containerID": 1, "hostID": 1000, "size": 1},
    ]
    bundle.linux["gidMappings"] = [
        {"containerID": 0, "hostID": 0, "size": 1},
        {"containerID": 1, "hostID": 1000, "size": 1},
    ]
    for m in bundle.config["mounts"]:
        if m["type"] == "devpts":  # gid 5 is not mapped in that namespace
            m["options"] = [o for o in m["options"] if o != "gid=5"]
    bundle.add_mount(destination="/plain", type="bind", source=str(host_dir), options=["bind"])
    bundle.add_mount(destination="/mapped", type="bind", source=str(host_dir), options=["bind", "idmap"])
    bundle.sh("stat -c '%u %g' /plain/f /mapped/f")
    assert rt.run(bundle).ok().out.split("\n")[:2] == ["65534 65534", "1 1"]
    assert holder.poll() is None


# -- mappings of the mount's own --------------------------------------------------------------------------------------


def _maps(uid: str, gid: str | None = None) -> dict:
    """`{"uidMappings": [...], "gidMappings": [...]}` from "ctr:host:size" texts (gid: same as uid)."""

    def one(text: str) -> list[dict]:
        c, h_, n = (int(x) for x in text.split(":"))
        return [{"containerID": c, "hostID": h_, "size": n}]

    return {"uidMappings": one(uid), "gidMappings": one(gid or uid)}


def _nothing_left(cid: str) -> None:
    """No helper process (a clone of the runtime holding a user namespace) outlives the runtime."""
    assert h.cmdline_pids(cid) == [], [h.cmdline(p) for p in h.cmdline_pids(cid)]


@pytest.mark.parametrize("options", [["bind"], ["bind", "idmap"]])
def test_own_mappings_without_a_user_namespace(rt, bundle, host_dir, options):
    """On-disk 1000 is the mount's container id 1000, host id 0: the container's root. A file root creates
    through the mount is 1000's on disk; one owned by host root (unmapped in the mount) is the overflow id.
    runc takes mappings without `idmap` as `idmap` (config.md: they SHOULD come with it)."""
    os.chown(host_dir, 1000, 1000)
    os.chown(host_dir / "f", 1000, 1000)
    (host_dir / "root-owned").write_text("")
    bundle.add_mount(destination="/mapped", type="bind", source=str(host_dir), options=options, **_maps("1000:0:1"))
    bundle.sh("stat -c '%u %g' /mapped/f /mapped/root-owned; touch /mapped/new && stat -c '%u %g' /mapped/new")
    cid = rt.new_id("idmap")
    out = rt.run(bundle, cid=cid).ok().out.split("\n")
    assert out[:3] == ["0 0", "65534 65534", "0 0"], out
    st = (host_dir / "new").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000), "made by container root through the mount: 1000 on disk"
    _nothing_left(cid)


def test_own_mappings_differ_for_uids_and_gids_and_per_mount(rt, bundle, host_dir):
    """runc's "multiple idmap mounts (different mappings) [no userns]": two mounts of one directory, each with its
    own uid and gid maps; one helper user namespace per distinct mapping."""
    os.chown(host_dir / "f", 100, 211)
    bundle.add_mount(
        destination="/a", type="bind", source=str(host_dir), options=["bind"], **_maps("100:1100:3", "200:1900:50")
    )
    bundle.add_mount(
        destination="/b", type="bind", source=str(host_dir), options=["bind"], **_maps("100:2100:3", "200:2900:50")
    )
    bundle.add_mount(
        destination="/c", type="bind", source=str(host_dir), options=["bind"], **_maps("100:1100:3", "200:1900:50")
    )
    bundle.sh("stat -c '%u=%g' /a/f /b/f /c/f")
    assert rt.run(bundle).ok().out.split() == ["1100=1911", "2100=2911", "1100=1911"]


def test_own_mappings_in_a_container_with_its_own_user_namespace(rt, open_bundle, host_dir):
    """runc's "[userns]" case: the mount's maps go to host ids, the container's map takes those to container ids.
    On-disk 1000 -> host 100000 -> container root; container root writes on-disk 1000."""
    bundle = open_bundle
    _userns(bundle, "mapped")
    os.chown(host_dir, 1000, 1000)
    os.chown(host_dir / "f", 1000, 1000)
    bundle.add_mount(
        destination="/mapped", type="bind", source=str(host_dir), options=["bind", "idmap"], **_maps("1000:100000:1")
    )
    bundle.sh("stat -c '%u %g' /mapped/f; touch /mapped/new && stat -c '%u %g' /mapped/new")
    cid = rt.new_id("idmap")
    assert rt.run(bundle, cid=cid).ok().out.split("\n")[:2] == ["0 0", "0 0"]
    st = (host_dir / "new").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    _nothing_left(cid)


def test_own_mappings_with_ridmap_map_submounts_too(rt, bundle, host_dir):
    sub = host_dir / "sub"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "ocipy-it-idmap", str(sub)], check=True)
    try:
        (sub / "g").write_text("deep\n")
        os.chown(sub / "g", 5, 5)
        for option, want in (("ridmap", "0"), ("idmap", "5")):
            bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/mapped"]
            bundle.add_mount(
                destination="/mapped", type="bind", source=str(host_dir), options=["rbind", option], **_maps("5:0:1")
            )
            bundle.sh("stat -c '%u' /mapped/sub/g")
            assert rt.run(bundle).ok().out.strip() == want, option
    finally:
        subprocess.run(["umount", str(sub)], check=True)


@pytest.mark.parametrize(
    ("mount", "phrases"),
    [
        # config.md: uidMappings MUST be specified along with gidMappings (runc: "must have both")
        (
            {"uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]},
            ["/mounts/7/gidMappings: ", "with uidMappings"],
        ),
        (
            {"gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]},
            ["/mounts/7/uidMappings: ", "with gidMappings"],
        ),
        ({"uidMappings": [], "gidMappings": []}, ["/mounts/7/uidMappings: ", "empty"]),
        # the kernel refuses overlapping ranges in uid_map: the helper namespace's error, named
        (
            {
                "uidMappings": [
                    {"containerID": 0, "hostID": 0, "size": 10},
                    {"containerID": 5, "hostID": 100, "size": 1},
                ],
                "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}],
            },
            ["/mounts/7/uidMappings: ", "uid_map", "invalid argument"],
        ),
        # an idmapped mount is a bind mount
        (
            {"type": "tmpfs", "source": "tmpfs", "options": ["idmap"], **_maps("0:0:1")},
            ["/mounts/7/options: ", "bind mounts"],
        ),
    ],
    ids=["uid-only", "gid-only", "empty", "overlapping", "tmpfs"],
)
def test_bad_mount_mappings_are_one_line_naming_the_field(rt, bundle, host_dir, mount, phrases):
    m = {"destination": "/mapped", "type": "bind", "source": str(host_dir), "options": ["bind"], **mount}
    bundle.add_mount(**m)
    bundle.args("true")
    cid = rt.new_id("idmap")
    res = rt.run(bundle, cid=cid).fails(*phrases)
    assert len(res.err.strip().splitlines()) == 1, res.describe()
    assert rt.state_dirs() == []
    _nothing_left(cid)


def test_filesystem_that_cannot_be_idmapped_says_so(rt, bundle):
    """sysfs has no idmapped mounts: the kernel's EINVAL, with the hint runc gives, naming the mount."""
    bundle.add_mount(destination="/mapped", type="bind", source="/sys/kernel", options=["bind"], **_maps("0:0:1"))
    bundle.args("true")
    cid = rt.new_id("idmap")
    res = rt.run(bundle, cid=cid).fails("/mounts/7 (idmapped /sys/kernel): ", "invalid argument", "may not support")
    assert len(res.err.strip().splitlines()) == 1, res.describe()
    assert rt.state_dirs() == []
    _nothing_left(cid)
