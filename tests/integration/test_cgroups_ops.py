"""The cgroup verbs callers use: ps, update, events, kill --all, pause/resume, and removal at delete (sub-cgroups
included, 50 containers leave nothing), plus cgroupsPath handling."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()

CG = "/sys/fs/cgroup"
needs_ocipy = pytest.mark.skipif(not h.IS_OCIPY, reason="ocipy's cgroup layout (/ocipy/<id>)")


def hierarchies() -> list[str]:
    return sorted(os.path.join(CG, d) for d in os.listdir(CG) if os.path.isdir(os.path.join(CG, d)))


def all_cgroup_dirs() -> set[str]:
    """Every cgroup below each hierarchy's /ocipy (the rest of the host's tree changes under other users)."""
    out = set()
    for top in hierarchies():
        for dirpath, _dirs, _files in os.walk(os.path.join(top, "ocipy")):
            out.add(dirpath)
    return out


def running(rt: Any, bundle: Any, script: str = "sleep 1000 & sleep 1000", **res: Any) -> str:
    bundle.sh(script)
    if res:
        bundle.linux["resources"] = res
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    return str(cid)


@needs_ocipy
def test_ps_json_and_table(rt: Any, bundle: Any) -> None:
    cid = running(rt, bundle)
    assert h.wait_until(lambda: len(json.loads(rt.call("ps", "--format", "json", cid).ok().out)) == 2)
    pids = json.loads(rt.call("ps", "--format", "json", cid).ok().out)
    assert rt.pid(cid) in pids
    table = rt.call("ps", cid).ok().out.splitlines()
    assert table[0].split()[1] == "PID"
    assert sorted(int(line.split()[1]) for line in table[1:]) == sorted(pids)
    custom = rt.call("ps", cid, "-o", "pid,comm").ok().out.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 3
    rt.call("ps", "--format", "yaml", cid).fails("invalid format")


@needs_ocipy
def test_update_from_file_stdin_and_flags(rt: Any, bundle: Any, tmp_path: Path) -> None:
    cid = running(rt, bundle, memory={"limit": 64 << 20}, pids={"limit": 100})
    mem = Path(CG, "memory", "ocipy", cid)
    f = tmp_path / "res.json"
    f.write_text(json.dumps({"memory": {"limit": 96 << 20}, "cpu": {"shares": 300}}))
    rt.call("update", "--resources", str(f), cid).ok()
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(96 << 20)
    assert Path(CG, "cpu", "ocipy", cid, "cpu.shares").read_text().strip() == "300"
    rt.call("update", "--resources", "-", cid, input=json.dumps({"pids": {"limit": 55}}).encode()).ok()
    assert Path(CG, "pids", "ocipy", cid, "pids.max").read_text().strip() == "55"
    rt.call(
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        "--pids-limit",
        "77",
        "--cpuset-cpus",
        "0",
        "--memory-reservation",
        "32m",
        "--blkio-weight",
        "400",
        cid,
    ).ok()
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(128 << 20)
    assert (mem / "memory.memsw.limit_in_bytes").read_text().strip() == str(256 << 20)
    assert (mem / "memory.soft_limit_in_bytes").read_text().strip() == str(32 << 20)
    assert Path(CG, "cpu", "ocipy", cid, "cpu.cfs_quota_us").read_text().strip() == "20000"
    assert Path(CG, "pids", "ocipy", cid, "pids.max").read_text().strip() == "77"
    assert Path(CG, "cpuset", "ocipy", cid, "cpuset.cpus").read_text().strip() == "0"
    # lowering memory+swap below the new limit: ordered so the kernel accepts it
    rt.call("update", "--memory", "32m", "--memory-swap", "48m", cid).ok()
    assert (mem / "memory.memsw.limit_in_bytes").read_text().strip() == str(48 << 20)
    rt.call("update", "--memory", "lots", cid).fails("--memory")
    rt.call("update", "--resources", "-", cid, input=b"[1]").fails("must be a JSON object")
    rt.call("update", "--resources", "-", cid, input=b'{"memory": {"swappiness": 300}}').fails(
        "/linux/resources/memory/swappiness"
    )


@needs_ocipy
def test_update_check_before_update(rt: Any, bundle: Any) -> None:
    cid = running(rt, bundle, "head -c 8388608 /dev/zero > /dev/shm/x; sleep 1000", memory={"limit": 64 << 20})
    usage = Path(CG, "memory", "ocipy", cid, "memory.usage_in_bytes")
    assert h.wait_until(lambda: int(usage.read_text()) > 8 << 20)
    body = json.dumps({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}}).encode()
    rt.call("update", "-r", "-", cid, input=body).fails("checkBeforeUpdate", "/linux/resources/memory/limit")


@needs_ocipy
def test_events_stats(rt: Any, bundle: Any) -> None:
    # hugetlb is on the unified hierarchy of this hybrid host, enabled for a container that asks for it
    hugepages = [{"pageSize": "2MB", "limit": 1 << 30}]
    cid = running(rt, bundle, memory={"limit": 64 << 20}, pids={"limit": 50}, hugepageLimits=hugepages)
    out = rt.call("events", "--stats", cid).ok().out
    ev = json.loads(out)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert set(data) >= {"cpu", "memory", "pids", "blkio", "hugetlb", "cpuset"}
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert data["pids"]["limit"] == 50 and data["pids"]["current"] >= 2
    assert data["cpu"]["usage"]["total"] > 0
    assert "2MB" in data["hugetlb"]


@needs_ocipy
def test_events_stream_ends_with_container(rt: Any, bundle: Any) -> None:
    cid = running(rt, bundle, "sleep 0.5")
    out = rt.call("events", "--interval", "100ms", cid, timeout=10).ok().out.splitlines()
    assert len(out) >= 2 and all(json.loads(line)["type"] == "stats" for line in out)
    rt.call("events", "--interval", "bogus", cid).fails("invalid duration")


@needs_ocipy
def test_kill_all_and_delete_removes_sub_cgroups(rt: Any, bundle: Any) -> None:
    bundle.drop_namespace("pid")
    cid = running(rt, bundle, "sleep 1000 & sleep 1000 & sleep 1000")
    # the container (here: the host for it) makes sub-cgroups and moves a process into one
    sub = Path(CG, "memory", "ocipy", cid, "a", "b")
    sub.mkdir(parents=True)
    Path(CG, "pids", "ocipy", cid, "x").mkdir()
    pids = [int(p) for p in Path(CG, "memory", "ocipy", cid, "cgroup.procs").read_text().split()]
    assert len(pids) == 3
    for p in pids:
        rt.track_pid(p)
    (sub / "cgroup.procs").write_text(str(pids[-1]))
    listed = json.loads(rt.call("ps", "-f", "json", cid).ok().out)
    assert sorted(listed) == sorted(pids)
    rt.kill(cid, "--all", "KILL").ok()
    assert h.wait_until(lambda: not any(h.pid_alive(p) for p in pids))
    rt.delete(cid).ok()
    assert h.cgroup_dirs_named(cid) == []


def test_kill_all_of_a_stopped_container_ends_what_its_init_left(rt: Any, bundle: Any) -> None:
    """The runc v2 shim's call after the init of a container without a pid namespace of its own (a Kubernetes pod
    sharing one) exited: `kill --all ID 9` succeeds and kills what the init left in the container's cgroup."""
    bundle.drop_namespace("pid")
    cid = running(rt, bundle, "sleep 1003 & sleep 1003 & touch /tmp/ready; sleep 0.5")
    assert h.wait_until(lambda: len(h.cmdline_pids("sleep\x001003")) == 2, 5)
    left = h.cmdline_pids("sleep\x001003")
    for p in left:
        rt.track_pid(p)
    assert rt.wait_status(cid, "stopped")
    assert all(h.pid_alive(p) for p in left), "the leftovers died with the init: nothing to test"
    rt.kill(cid, "--all", "KILL").ok()
    assert h.wait_until(lambda: not any(h.pid_alive(p) for p in left), 10), "kill --all left processes running"
    rt.kill(cid, "--all", "KILL").ok()  # nothing left: still no error
    rt.delete(cid).ok()


@needs_ocipy
def test_pause_resume_running(rt: Any, bundle: Any) -> None:
    cid = running(rt, bundle)
    rt.call("pause", cid).ok()
    assert rt.status(cid) == "paused"
    rt.call("pause", cid).fails("container not running")
    rt.call("resume", cid).ok()
    rt.call("resume", cid).fails("container not paused")
    rt.call("pause", cid).ok()
    rt.delete(cid, "--force").ok()
    assert h.cgroup_dirs_named(cid) == []


def test_pause_a_created_container(rt: Any, bundle: Any) -> None:
    """runc 1.5.1 pauses a created container: it reads `paused` (the freezer before the exec fifo), start refuses it,
    resume makes it `created` again, and start then runs it. Runs against runc too (OCIPY_IT_RUNTIME)."""
    bundle.sh("sleep 1000")
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    rt.call("pause", cid).ok()
    assert rt.status(cid) == "paused"
    assert rt.state(cid)["pid"] == pid
    assert any(c["id"] == cid and c["status"] == "paused" for c in json.loads(rt.list("--format", "json").ok().out))
    rt.call("pause", cid).fails("container not running")
    rt.start(cid).fails("cannot start a container in the paused state")
    rt.delete(cid).fails(f"cannot delete container {cid} that is not stopped: paused")
    rt.call("resume", cid).ok()
    assert rt.status(cid) == "created"
    rt.call("resume", cid).fails("container not paused")
    rt.start(cid).ok()
    assert rt.status(cid) == "running"
    rt.delete(cid, "--force").ok()
    assert h.wait_until(lambda: not h.pid_alive(pid), 5)
    assert rt.state_dirs() == []


def test_kill_and_delete_of_a_paused_created_container(rt: Any, bundle: Any) -> None:
    bundle.sh("sleep 1000")
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    rt.call("pause", cid).ok()
    rt.kill(cid, "KILL").ok()  # queued: a v1 freezer holds even SIGKILL until the thaw
    rt.delete(cid, "--force").ok()
    assert h.wait_until(lambda: not h.pid_alive(pid), 5)
    assert rt.state_dirs() == []
    if h.IS_OCIPY:
        assert h.cgroup_dirs_named(cid) == []


@needs_ocipy
def test_fifty_containers_leave_no_cgroup(rt: Any, bundle: Any) -> None:
    bundle.args("sleep", "1000")
    bundle.linux["resources"] = {
        "memory": {"limit": 32 << 20},
        "pids": {"limit": 20},
        "cpu": {"shares": 100},
        "devices": [{"allow": False, "access": "rwm"}],
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
    }
    warm, _ = rt.create_ok(bundle)  # makes the shared /ocipy parents
    rt.delete(warm, "--force").ok()
    before = all_cgroup_dirs()
    cids = []
    for i in range(50):
        cid, _ = rt.create_ok(bundle, cid=f"it-fifty-{uuid.uuid4().hex[:6]}-{i}")
        cids.append(cid)
        if i % 2:
            rt.start(cid).ok()
    during = all_cgroup_dirs() - before
    assert len([d for d in during if d.endswith(cids[0])]) == len(hierarchies())
    for cid in cids:
        rt.delete(cid, "--force").ok()
    # other users of this host may create containers meanwhile: only ours must be gone
    ours = {warm, *cids}
    assert sorted(d for d in all_cgroup_dirs() - before if set(d.split("/")) & ours) == []
    assert [d for d in h.cgroup_dirs_named("it-fifty-") if os.path.basename(d) in ours] == []


@needs_ocipy
def test_failed_create_leaves_no_cgroup(rt: Any, bundle: Any) -> None:
    bundle.args("/no/such/program")
    bundle.linux["resources"] = {"memory": {"limit": 32 << 20}}
    cid, res = rt.create(bundle)
    res.fails("no such file")
    assert h.cgroup_dirs_named(cid) == []


@needs_ocipy
def test_cgroups_path_absolute_and_escape(rt: Any, bundle: Any) -> None:
    name = f"ocipy-it-{uuid.uuid4().hex[:8]}"
    bundle.args("sleep", "1000")
    bundle.linux["cgroupsPath"] = f"/../../{name}/c"
    try:
        cid, _ = rt.create_ok(bundle)
        pid = rt.pid(cid)
        assert f"memory:/{name}/c\n" in Path(f"/proc/{pid}/cgroup").read_text()
        assert os.path.isdir(f"{CG}/unified/{name}/c")
        rt.delete(cid, "--force").ok()
        assert not os.path.exists(f"{CG}/memory/{name}/c")
    finally:
        for top in hierarchies():
            d = os.path.join(top, name)
            for dirpath, _d, _f in os.walk(d, topdown=False):
                os.rmdir(dirpath)


@needs_ocipy
def test_cgroups_path_root_refused(rt: Any, bundle: Any) -> None:
    for bad in ("/", "/..", "a/../.."):
        bundle.linux["cgroupsPath"] = bad
        rt.create(bundle)[1].fails("/linux/cgroupsPath", "below the hierarchy root")


@needs_ocipy
def test_cgroup_busy_existing_refused(rt: Any, bundle: Any) -> None:
    a = running(rt, bundle)
    bundle.linux["cgroupsPath"] = f"/ocipy/{a}"
    rt.create(bundle)[1].fails("/linux/cgroupsPath", "not empty")
    assert Path(CG, "memory", "ocipy", a).is_dir()


@needs_ocipy
def test_systemd_cgroup_without_systemd(rt: Any, bundle: Any) -> None:
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here")
    bundle.linux["cgroupsPath"] = "system.slice:ocipy:x1"
    bundle.write()
    # global flags go before the verb (Runtime.call puts --root first)
    rt.call("--systemd-cgroup", "create", "--bundle", str(bundle.path), rt.new_id("sd")).fails(
        "/linux/cgroupsPath", "systemd is not running"
    )
    bundle.linux["cgroupsPath"] = "bad-form"
    bundle.write()
    rt.call("--systemd-cgroup", "create", "--bundle", str(bundle.path), rt.new_id("sd")).fails("slice:prefix:name")
