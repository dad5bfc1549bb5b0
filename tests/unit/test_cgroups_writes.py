"""cgroup v2 writes against a throw-away directory tree standing in for /sys/fs/cgroup (files are plain files, so
each write replaces the content: the last write per file is what is checked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocipy.cgroups import CgroupError, devices, layout, manager, paths, v2
from ocipy.cgroups.driver import driver_for

FILES = [
    "cgroup.procs",
    "cgroup.controllers",
    "cgroup.subtree_control",
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "memory.current",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "hugetlb.2MB.rsvd.max",
    "hugetlb.1GB.max",
    "rdma.max",
    "cgroup.max.depth",
]
ALL = "cpuset cpu io memory hugetlb pids rdma"


def mkcg(d: Path, controllers: str = ALL) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        (d / f).write_text("")
    (d / "cgroup.controllers").write_text(controllers)
    return d


@pytest.fixture
def tree(tmp_path: Path) -> tuple[layout.Layout, Path]:
    root = mkcg(tmp_path / "cg")
    lay = layout.Layout(layout.V2, v2=layout.Hierarchy(str(root), 2, frozenset(ALL.split())))
    return lay, root


def rd(p: Path, name: str) -> str:
    return (p / name).read_text()


def test_conversions() -> None:
    assert v2.shares_to_weight(2) == 1 and v2.shares_to_weight(262144) == 10000 and v2.shares_to_weight(1024) == 39
    assert v2.blkio_weight_to_io(10) == 1 and v2.blkio_weight_to_io(1000) == 10000
    assert v2.swap_value(200, 100) == 100 and v2.swap_value(0, -1) == -1 and v2.swap_value(-1, 100) == -1
    with pytest.raises(CgroupError, match="needs a memory limit"):
        v2.swap_value(100, 0)
    with pytest.raises(CgroupError, match=">= the memory limit"):
        v2.swap_value(50, 100)


def test_memory_cpu_pids_io(tree: tuple[layout.Layout, Path]) -> None:
    _, root = tree
    d = mkcg(root / "c")
    rec = {"v1": {}, "v2": str(d)}
    res = {
        "memory": {"limit": 100, "reservation": 50, "swap": 300},
        "cpu": {"shares": 1024, "quota": 5000, "period": 10000, "burst": 100, "idle": 1, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 10}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
        "rdma": {"mlx": {"hcaHandles": 2}},
        "unified": {"cgroup.max.depth": "3"},
    }
    manager.apply(tree[0], rec, res)
    assert rd(d, "memory.max") == "100" and rd(d, "memory.low") == "50" and rd(d, "memory.swap.max") == "200"
    assert rd(d, "cpu.weight") == "39" and rd(d, "cpu.max") == "5000 10000" and rd(d, "cpu.max.burst") == "100"
    assert rd(d, "cpu.idle") == "1" and rd(d, "cpuset.cpus") == "0-1" and rd(d, "cpuset.mems") == "0"
    assert rd(d, "pids.max") == "max"
    assert rd(d, "io.max") == "8:0 rbps=10"
    assert rd(d, "io.weight") == f"default {v2.blkio_weight_to_io(500)}"
    assert rd(d, "hugetlb.2MB.max") == "2097152" and rd(d, "hugetlb.2MB.rsvd.max") == "2097152"
    assert rd(d, "rdma.max") == "mlx hca_handle=2 hca_object=max"
    assert rd(d, "cgroup.max.depth") == "3"


def test_memory_equal_swap_disables_swap_and_max(tree: tuple[layout.Layout, Path]) -> None:
    d = mkcg(tree[1] / "c")
    v2.memory(str(d), {"limit": 100, "swap": 100})
    assert rd(d, "memory.swap.max") == "0"
    v2.memory(str(d), {"limit": -1})
    assert rd(d, "memory.max") == "max" and rd(d, "memory.swap.max") == "max"
    v2.cpu(str(d), {"quota": -1, "period": 100000})
    assert rd(d, "cpu.max") == "max 100000"


@pytest.mark.parametrize(
    ("res", "pointer"),
    [
        ({"memory": {"swappiness": 10}}, "/linux/resources/memory/swappiness"),
        ({"memory": {"disableOOMKiller": True}}, "/linux/resources/memory/disableOOMKiller"),
        ({"memory": {"kernelTCP": 10}}, "/linux/resources/memory/kernelTCP"),
        ({"cpu": {"realtimeRuntime": 10}}, "/linux/resources/cpu/realtimeRuntime"),
        ({"cpu": {"shares": 1}}, "/linux/resources/cpu/shares"),
        ({"blockIO": {"leafWeight": 10}}, "/linux/resources/blockIO/leafWeight"),
        ({"hugepageLimits": [{"pageSize": "4MB", "limit": 1}]}, "/linux/resources/hugepageLimits/0/pageSize"),
        ({"network": {"classID": 1}}, "/linux/resources/network/classID"),
        ({"unified": {"bad/key": "1"}}, "/linux/resources/unified/bad~1key"),
        ({"unified": {"misc.max": "1"}}, "/linux/resources/unified/misc.max"),
        ({"memory": {"limit": "lots"}}, "/linux/resources/memory/limit"),
    ],
)
def test_what_v2_cannot_honour_names_the_field(tree: tuple[layout.Layout, Path], res: dict, pointer: str) -> None:
    d = mkcg(tree[1] / "c")
    with pytest.raises(CgroupError) as err:
        manager.apply(tree[0], {"v1": {}, "v2": str(d)}, res)
    assert err.value.pointer == pointer


def test_controller_missing_in_cgroup(tree: tuple[layout.Layout, Path]) -> None:
    d = mkcg(tree[1] / "c", controllers="hugetlb")
    with pytest.raises(CgroupError, match="memory controller is not available") as err:
        manager.apply(tree[0], {"v1": {}, "v2": str(d)}, {"memory": {"limit": 1}})
    assert err.value.pointer == "/linux/resources/memory"


def test_enable_controllers_in_ancestors(tree: tuple[layout.Layout, Path]) -> None:
    lay, root = tree
    mkcg(root / "ocipy")
    leaf = str(root / "ocipy" / "web")
    manager.enable_v2_controllers(lay, leaf, {"hugetlb"}, want_all=False)
    assert rd(root, "cgroup.subtree_control") == "+hugetlb"
    assert rd(root / "ocipy", "cgroup.subtree_control") == "+hugetlb"
    with pytest.raises(CgroupError, match="not on this host's cgroup v2 hierarchy"):
        manager.enable_v2_controllers(lay, leaf, {"misc"}, want_all=False)


def test_create_and_remove_in_tree(tree: tuple[layout.Layout, Path]) -> None:
    lay, root = tree
    target = paths.Target("/ocipy/a", v2=str(root / "ocipy" / "a"))
    rec = manager.create(lay, target, {})
    assert rec == {"v1": {}, "path": "/ocipy/a", "v2": str(root / "ocipy" / "a")}
    assert driver_for(rec).procs_files() == [str(root / "ocipy" / "a" / "cgroup.procs")]
    (root / "ocipy" / "a" / "sub" / "deeper").mkdir(parents=True)
    driver_for(rec).remove()
    assert not (root / "ocipy" / "a").exists() and (root / "ocipy").exists()


def test_create_failure_removes_what_it_made(tree: tuple[layout.Layout, Path]) -> None:
    lay, root = tree
    target = paths.Target("/x/y", v2=str(root / "x" / "y"))
    with pytest.raises(CgroupError):
        manager.create(lay, target, {"network": {"classID": 3}})
    assert not (root / "x").exists()


def test_device_program_shape() -> None:
    rules = devices.effective_rules(
        [{"allow": False, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    )
    assert devices.Rule(True, "c", 1, 3, "rwm") not in rules  # the config named /dev/null: no default for it
    assert devices.Rule(True, "c", 1, 5, "rwm") in rules
    prog = devices.build_program(rules)
    assert len(prog) % 8 == 0
    # the final rule tried is the first listed (deny everything): the program ends right after it
    assert prog[-16:] == devices._ins(0xB7, 0, imm=0) + devices._ins(0x95)
    assert devices.Rule(False, "a", -1, -1, "rwm").v1_line() == "a"
    assert devices.Rule(True, "c", 136, -1, "rw").v1_line() == "c 136:* rw"
    partial = devices.parse_rules([{"allow": True, "type": "a", "access": "r"}])
    assert [r.type for r in partial] == ["c", "b"]
    with pytest.raises(CgroupError, match="access"):
        devices.parse_rules([{"allow": True, "access": "x"}])
