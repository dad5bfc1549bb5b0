"""This host's real v2 hierarchy (/sys/fs/cgroup/unified, holding only hugetlb): cgroup.procs, cgroup.freeze,
cgroup.kill, hugetlb limits and the eBPF device program."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()

U = "/sys/fs/cgroup/unified"
needs_unified = pytest.mark.skipif(not os.path.exists(f"{U}/cgroup.controllers"), reason=f"needs a v2 hierarchy at {U}")


def udir(cid: str) -> Path:
    return Path(U, "ocipy", cid)


def drop_v1_controller(rt: Any, cid: str, controller: str) -> str:
    """Make the stored record forget a v1 controller, so the verbs fall back to the unified cgroup. Returns that
    controller's directory: `delete` no longer knows it, so the test removes it itself."""
    path = Path(rt.root) / cid / "state.json"
    st = json.loads(path.read_text())
    dropped: str = st["ocipy"]["cgroup"]["v1"].pop(controller)
    path.write_text(json.dumps(st))
    return dropped


@needs_unified
def test_init_joins_unified_cgroup(rt: Any, bundle: Any) -> None:
    cid, _ = rt.create_ok(bundle.args("sleep", "1000"))
    pid = rt.pid(cid)
    assert f"0::/ocipy/{cid}\n" in Path(f"/proc/{pid}/cgroup").read_text()
    assert str(pid) in (udir(cid) / "cgroup.procs").read_text().split()


@needs_unified
def test_cgroup_freeze(rt: Any, bundle: Any) -> None:
    cid, _ = rt.create_ok(bundle.args("sleep", "1000"))
    rt.start(cid).ok()
    hidden = drop_v1_controller(rt, cid, "freezer")
    try:
        rt.call("pause", cid).ok()
        assert (udir(cid) / "cgroup.freeze").read_text().strip() == "1"
        assert "frozen 1" in (udir(cid) / "cgroup.events").read_text().splitlines()
        assert rt.status(cid) == "paused"
        rt.call("resume", cid).ok()
        assert "frozen 0" in (udir(cid) / "cgroup.events").read_text().splitlines()
        assert rt.status(cid) == "running"
    finally:
        rt.delete(cid, "--force")
        h.wait_until(lambda: not Path(hidden, "cgroup.procs").read_text().split(), 5)
        Path(hidden).rmdir()


@needs_unified
def test_cgroup_kill_all(rt: Any, bundle: Any) -> None:
    bundle.sh("sleep 1000 & sleep 1000 & sleep 1000")
    bundle.drop_namespace("pid")  # no pid namespace: only the cgroup can find the children
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert h.wait_until(lambda: len((udir(cid) / "cgroup.procs").read_text().split()) == 3)
    pids = [int(p) for p in (udir(cid) / "cgroup.procs").read_text().split()]
    for p in pids:
        rt.track_pid(p)
    rt.kill(cid, "--all", "KILL").ok()
    assert h.wait_until(lambda: not any(h.pid_alive(p) for p in pids))
    assert "populated 0" in (udir(cid) / "cgroup.events").read_text().splitlines()
    rt.delete(cid).ok()
    assert not udir(cid).exists()


def _sizes() -> list[str]:
    out = []
    for n in os.listdir("/sys/kernel/mm/hugepages"):
        kb = int(n.split("-")[1].rstrip("kB"))
        out.append(f"{kb // (1 << 20)}GB" if kb % (1 << 20) == 0 else f"{kb // 1024}MB")
    return sorted(out)


@needs_unified
def test_hugetlb_limits_on_v2(rt: Any, bundle: Any) -> None:
    if "hugetlb" not in Path(U, "cgroup.controllers").read_text().split():
        pytest.skip("no hugetlb on the v2 hierarchy")
    limits = [{"pageSize": s, "limit": (i + 1) * 1 << 30} for i, s in enumerate(_sizes())]
    bundle.args("sleep", "1000")
    bundle.linux["resources"] = {"hugepageLimits": limits}
    cid, _ = rt.create_ok(bundle)
    for lim in limits:
        assert (udir(cid) / f"hugetlb.{lim['pageSize']}.max").read_text().strip() == str(lim["limit"])
        rsvd = udir(cid) / f"hugetlb.{lim['pageSize']}.rsvd.max"
        if rsvd.exists():
            assert rsvd.read_text().strip() == str(lim["limit"])
    assert "hugetlb" in Path(U, "ocipy", "cgroup.subtree_control").read_text().split()


@needs_unified
def test_hugetlb_unknown_size_names_the_field(rt: Any, bundle: Any) -> None:
    bundle.linux["resources"] = {"hugepageLimits": [{"pageSize": "2MB", "limit": 0}, {"pageSize": "4MB", "limit": 1}]}
    cid, res = rt.create(bundle)
    res.fails("/linux/resources/hugepageLimits/1/pageSize", "4MB")
    assert not udir(cid).exists()


@needs_unified
def test_unified_keys_on_hybrid(rt: Any, bundle: Any) -> None:
    bundle.args("sleep", "1000")
    bundle.linux["resources"] = {"unified": {"cgroup.max.descendants": "5", "hugetlb.2MB.max": "2097152"}}
    cid, _ = rt.create_ok(bundle)
    assert (udir(cid) / "cgroup.max.descendants").read_text().strip() == "5"
    assert (udir(cid) / "hugetlb.2MB.max").read_text().strip() == "2097152"
    bundle.linux["resources"] = {"unified": {"memory.max": "1000000"}}
    _, res = rt.create(bundle)
    res.fails("/linux/resources/unified/memory.max")


def _bpf_program_ids(d: Path) -> list[int]:
    sys.path.insert(0, str(h.PROJECT))
    from ocipy.cgroups import devices

    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return devices.query_programs(fd)
    finally:
        os.close(fd)


@needs_unified
def test_device_program_denies_null(rt: Any, bundle: Any) -> None:
    """With the v1 devices cgroup opened up from the host, only the eBPF program on the unified cgroup denies."""
    bundle.linux["resources"] = {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        ]
    }
    bundle.sh(
        "while [ ! -e /go ]; do sleep 0.05; done; cat /dev/null > /out 2>&1; echo null=$? >> /out; "
        "head -c1 /dev/zero | wc -c >> /out; touch /done; sleep 1000"
    )
    cid, _ = rt.create_ok(bundle)
    assert len(_bpf_program_ids(udir(cid))) == 1
    v1dev = Path("/sys/fs/cgroup/devices/ocipy", cid)
    (v1dev / "devices.allow").write_text("a")
    assert "a *:* rwm" in (v1dev / "devices.list").read_text()
    rt.start(cid).ok()
    (bundle.rootfs / "go").write_text("")
    assert h.wait_until(lambda: (bundle.rootfs / "done").exists())
    out = (bundle.rootfs / "out").read_text()
    assert "Operation not permitted" in out and "null=1" in out and "\n1\n" in out


@needs_unified
def test_no_device_rules_no_program(rt: Any, bundle: Any) -> None:
    cid, _ = rt.create_ok(bundle.args("sleep", "1000"))
    assert _bpf_program_ids(udir(cid)) == []
    time.sleep(0)


@needs_unified
def test_refused_device_program_names_the_verifier() -> None:
    """bpf(2) through the shim: a refused program is loaded again with the verifier's log, whose line is the detail."""
    sys.path.insert(0, str(h.PROJECT))
    from ocipy.cgroups import devices

    no_exit = b"\xb7\x00\x00\x00\x01\x00\x00\x00"  # r0 = 1, and no exit
    with pytest.raises(OSError) as info:
        devices.load_program(no_exit)
    assert info.value.errno == errno.EINVAL
    assert "verifier: last insn is not an exit" in str(info.value)
    os.close(devices.load_program(devices.build_program([devices.Rule(True, "a", -1, -1, "rwm")])))
