"""Layout detection from sample mount tables, and cgroupsPath resolution (no root needed)."""

from __future__ import annotations

import pytest

from ocipy.cgroups import CgroupError, layout, paths

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1 = """\
25 18 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
27 25 0:24 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
28 25 0:25 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
29 25 0:26 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
30 99 0:26 / /mnt/other\\040place rw - cgroup cgroup rw,pids
"""
V2 = """\
22 1 0:21 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""


def ctrls(text: str):  # type: ignore[no-untyped-def]
    return lambda mnt: frozenset(text.split())


def test_hybrid() -> None:
    lay = layout.parse_mountinfo(HYBRID, ctrls("hugetlb"))
    assert lay.mode == layout.HYBRID
    assert set(lay.v1) == {"cpu", "cpuacct", "memory", "freezer"}
    assert lay.v2 is not None and lay.v2.mountpoint == "/sys/fs/cgroup/unified"
    assert lay.v2_controllers == {"hugetlb"}
    assert lay.where("memory") == "v1" and lay.where("hugetlb") == "v2" and lay.where("rdma") is None
    assert set(lay.named) == {"systemd"}


def test_v1_comounted_and_bind_mounts() -> None:
    lay = layout.parse_mountinfo(V1, ctrls(""))
    assert lay.mode == layout.V1 and lay.v2 is None
    assert lay.v1["cpu"] is lay.v1["cpuacct"]
    assert lay.v1["cpu"].key == "cpu,cpuacct"
    assert lay.v1["pids"].mountpoint == "/sys/fs/cgroup/pids"  # the conventional mount wins over /mnt
    assert [h.mountpoint for h in lay.v1_hierarchies()] == [
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/net_cls,net_prio",
        "/sys/fs/cgroup/pids",
    ]


def test_v2() -> None:
    lay = layout.parse_mountinfo(V2, ctrls("cpuset cpu io memory pids"))
    assert lay.mode == layout.V2 and not lay.v1
    assert lay.where("memory") == "v2" and lay.where("io") == "v2"


def test_none() -> None:
    assert layout.parse_mountinfo("1 0 0:1 / / rw - ext4 /dev/vda rw\n").mode == layout.NONE


def test_proc_cgroup() -> None:
    v1, v2 = layout.parse_proc_cgroup("9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/d\n")
    assert v1 == {"name=systemd": "/", "memory": "/a/b", "cpu": "/c", "cpuacct": "/c"} and v2 == "/d"


OWN = "4:memory:/sess/1\n1:cpu:/\n3:freezer:/\n0::/svc/me\n"


def test_default_path() -> None:
    lay = layout.parse_mountinfo(HYBRID, ctrls("hugetlb"))
    t = paths.resolve(None, "web", lay)
    assert t.path == "/ocipy/web"
    assert t.v1["memory"] == "/sys/fs/cgroup/memory/ocipy/web"
    assert t.v1["name=systemd"] == "/sys/fs/cgroup/systemd/ocipy/web"
    assert t.v2 == "/sys/fs/cgroup/unified/ocipy/web"


def test_absolute_and_escape() -> None:
    lay = layout.parse_mountinfo(HYBRID, ctrls("hugetlb"))
    assert paths.resolve("/a/b/../c", "x", lay).v1["cpu"] == "/sys/fs/cgroup/cpu/a/c"
    assert paths.resolve("/../../../x", "x", lay).v1["cpu"] == "/sys/fs/cgroup/cpu/x"


def test_relative_like_runc() -> None:
    lay = layout.parse_mountinfo(HYBRID, ctrls("hugetlb"))
    t = paths.resolve("../../x/y", "id", lay, own_cgroup_text=OWN)
    assert t.path == "x/y"
    assert t.v1["memory"] == "/sys/fs/cgroup/memory/sess/1/x/y"  # below our own v1 cgroup
    assert t.v1["cpu"] == "/sys/fs/cgroup/cpu/x/y"
    assert t.v2 == "/sys/fs/cgroup/unified/svc/x/y"  # next to our own v2 cgroup


@pytest.mark.parametrize("bad", ["/", "/..", "..", "a/../..", "a\0b"])
def test_root_and_nul_refused(bad: str) -> None:
    lay = layout.parse_mountinfo(HYBRID, ctrls("hugetlb"))
    with pytest.raises(CgroupError) as err:
        paths.resolve(bad, "id", lay, own_cgroup_text=OWN)
    assert err.value.pointer == "/linux/cgroupsPath"


def test_systemd_form(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocipy.cgroups import systemd

    lay = layout.parse_mountinfo(HYBRID, ctrls("hugetlb"))
    assert paths.expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert paths.systemd_unit_path("machine.slice:libpod:abc") == "/machine.slice/libpod-abc.scope"
    assert paths.systemd_unit_path(":runc:abc") == "/system.slice/runc-abc.scope"
    assert systemd.unit_of(None, "x") == ("system.slice", "ocipy-x.scope", "system.slice:ocipy:x")
    assert systemd.unit_of("a-b.slice:p:n", "x")[:2] == ("a-b.slice", "p-n.scope")
    t = systemd.target_of(lay, "a-b.slice", "p-n.scope", "a-b.slice:p:n")
    assert t.v1["memory"] == "/sys/fs/cgroup/memory/a.slice/a-b.slice/p-n.scope"
    assert t.v1["name=systemd"] == "/sys/fs/cgroup/systemd/a.slice/a-b.slice/p-n.scope"
    assert t.v2 == "/sys/fs/cgroup/unified/a.slice/a-b.slice/p-n.scope"
    monkeypatch.setattr(systemd, "SYSTEMD_RUNNING_MARK", "/nonexistent/ocipy")
    monkeypatch.setattr(systemd, "systemd_running", lambda: False)
    with pytest.raises(CgroupError, match="systemd is not running"):
        systemd.create(lay, "system.slice:ocipy:x", "x", {})
    with pytest.raises(CgroupError, match="slice:prefix:name"):
        systemd.create(lay, "/plain/path", "x", {})
    with pytest.raises(CgroupError, match="invalid slice"):
        paths.expand_slice("a--b.slice")
    with pytest.raises(CgroupError, match="must not end in .slice"):
        systemd.unit_of("system.slice:p:x.slice", "x")
