"""Namespaces of real containers, checked from inside with busybox (runtime-spec config-linux.md "Namespaces")."""

from __future__ import annotations

import os
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()

# spec type -> /proc/PID/ns name
NS_FILES = {
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "cgroup": "cgroup",
    "user": "user",
    "time": "time",
}


def test_new_pid_namespace_makes_the_process_pid_1(rt, bundle):
    out = rt.probe(bundle, "echo $$; readlink /proc/self/ns/pid; ls /proc | grep -c '^[0-9]'")
    pid, link, nprocs = out.split()
    assert pid == "1"
    assert link != os.readlink("/proc/self/ns/pid")
    # only the shell and the ls/grep it started are visible
    assert int(nprocs) <= 4, out


@pytest.mark.parametrize("ns_type", ["pid", "network", "ipc", "uts", "mount", "cgroup"])
def test_listed_namespace_is_new(rt, bundle, ns_type):
    bundle.set_namespace(ns_type)
    f = NS_FILES[ns_type]
    inside = rt.probe(bundle, f"readlink /proc/self/ns/{f}").strip()
    assert inside.startswith(f"{f}:[")
    assert inside != os.readlink(f"/proc/self/ns/{f}")


@pytest.mark.parametrize("ns_type", ["network", "ipc", "cgroup"])
def test_absent_namespace_is_shared_with_the_host(rt, bundle, ns_type):
    bundle.drop_namespace(ns_type)
    f = NS_FILES[ns_type]
    inside = rt.probe(bundle, f"readlink /proc/self/ns/{f}").strip()
    assert inside == os.readlink(f"/proc/self/ns/{f}")


def test_uts_namespace_hostname_does_not_leak_to_host(rt, bundle):
    host_before = os.uname().nodename
    bundle.config["hostname"] = "it-uts-box"
    out = rt.probe(bundle, "hostname; cat /proc/sys/kernel/hostname")
    assert out.split() == ["it-uts-box", "it-uts-box"]
    assert os.uname().nodename == host_before


def test_network_namespace_has_only_loopback(rt, bundle):
    out = rt.probe(bundle, "ls /sys/class/net; echo --; tail -n +3 /proc/net/dev | cut -d: -f1")
    sys_part, proc_part = out.split("--")
    assert sys_part.split() == ["lo"]
    assert [x.strip() for x in proc_part.split()] == ["lo"]


def test_mount_namespace_mounts_do_not_reach_the_host(rt, bundle, tmp_path):
    before = h.host_mounts()
    bundle.add_mount(destination="/mnt/scratch", type="tmpfs", source="tmpfs", options=["size=1m"])
    out = rt.probe(bundle, "readlink /proc/self/ns/mnt; grep -c ' /mnt/scratch ' /proc/self/mountinfo")
    link, count = out.split()
    assert link != os.readlink("/proc/self/ns/mnt")
    assert count == "1"
    assert h.host_mounts() == before


def test_cgroup_namespace_roots_the_container_cgroup(rt, bundle):
    bundle.set_namespace("cgroup")
    out = rt.probe(bundle, "cat /proc/self/cgroup")
    lines = [line for line in out.splitlines() if line]
    assert lines, out
    for line in lines:
        _hier, _controllers, path = line.split(":", 2)
        assert path == "/", f"cgroup path seen inside a cgroup namespace should be /: {line!r}\n{out}"


def test_user_namespace_maps_ids(rt, open_bundle):
    bundle = open_bundle
    bundle.set_namespace("user")
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    # the rootfs belongs to host root, unmapped inside: world-readable busybox still runs
    bundle.sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; stat -c %u /bin/busybox")
    cid, res = rt.create_ok(bundle)
    pid = rt.pid(cid)
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
    assert Path(f"/proc/{pid}/gid_map").read_text().split() == ["0", "200000", "65536"]
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    status = Path(f"/proc/{pid}/status").read_text()
    # seen from the host, the waiting init's ids are the mapped ones (0 -> 100000 / 200000)
    assert h.status_field(status, "Uid").split()[0] == "100000"
    assert h.status_field(status, "Gid").split()[0] == "200000"
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped")
    lines = res.out.split("\n")
    assert lines[0] == "0" and lines[1] == "0", res.out
    assert lines[2].split() == ["0", "100000", "65536"], res.out
    assert lines[3].split() == ["0", "200000", "65536"], res.out
    assert lines[4] == "65534", res.out


def test_time_namespace_applies_offsets(rt, bundle):
    h.needs_newer_than_runc_1_1("time namespaces")
    offset = 10 * 86400
    bundle.set_namespace("time")
    bundle.linux["timeOffsets"] = {
        "boottime": {"secs": offset, "nanosecs": 0},
        "monotonic": {"secs": 3600, "nanosecs": 0},
    }
    host_before = float(Path("/proc/uptime").read_text().split()[0])
    out = rt.probe(bundle, "readlink /proc/self/ns/time; cat /proc/uptime")
    link, uptime, _idle = out.split()
    host_after = float(Path("/proc/uptime").read_text().split()[0])
    assert link != os.readlink("/proc/self/ns/time")
    inside = float(uptime)
    assert host_before + offset - 1 <= inside <= host_after + offset + 1, (host_before, inside, host_after)


# -- joining existing namespaces by path --------------------------------------------------------------------

JOIN_CASES = {
    # spec type: (unshare flags, needs --fork)
    "network": (["--net"], False),
    "uts": (["--uts"], False),
    "ipc": (["--ipc"], False),
    "pid": (["--pid", "--mount-proc"], True),
    "user": (["--user"], False),  # maps written below, setgroups left allowed (as Podman's pause process has it)
}


def _user_ns_holder(procs, setgroups: str):
    holder = procs.spawn(["unshare", "--user", f"--setgroups={setgroups}", "sleep", "1000"])
    h.wait_ns_differs(holder.pid, "user")
    Path(f"/proc/{holder.pid}/uid_map").write_text("0 0 1\n")
    Path(f"/proc/{holder.pid}/gid_map").write_text("0 0 1\n")
    return holder


def _join_user_config(bundle) -> None:
    # callers (Podman) repeat the joined namespace's mappings (0 -> host 0 here); the runtime must not write them
    # again (a user namespace's maps can be written once)
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    for m in bundle.config["mounts"]:
        if m["type"] == "devpts":  # gid 5 is not mapped in that namespace
            m["options"] = [o for o in m["options"] if o != "gid=5"]


@pytest.mark.parametrize("ns_type", list(JOIN_CASES))
def test_join_existing_namespace_by_path(rt, bundle, procs, ns_type):
    flags, fork = JOIN_CASES[ns_type]
    f = NS_FILES[ns_type]
    if ns_type == "user":
        holder = _user_ns_holder(procs, "allow")
        target = holder.pid
    else:
        holder = procs.spawn(["unshare", *flags, *(["--fork"] if fork else []), "sleep", "1000"])
        target = h.ns_child(holder) if fork else holder.pid
    want = h.wait_ns_differs(target, f)
    bundle.set_namespace(ns_type, f"/proc/{target}/ns/{f}")
    if ns_type == "uts":
        bundle.config.pop("hostname", None)
    if ns_type == "user":
        _join_user_config(bundle)
    script = f"readlink /proc/self/ns/{f}"
    if ns_type == "pid":
        script += "; echo $$; cat /proc/1/comm"
    out = rt.probe(bundle, script).split()
    assert out[0] == want, f"container's {f} namespace {out[0]} is not the joined {want}"
    if ns_type == "pid":
        assert out[1] != "1", "joined a pid namespace: the container cannot be its pid 1"
        assert out[2] == "sleep", out
    assert holder.poll() is None, "the namespace holder must survive the container"


def test_join_user_namespace_with_setgroups_denied(rt, bundle, procs):
    """`unshare --map-root-user` denies setgroups; with no additionalGids the runtime must not need it."""
    holder = _user_ns_holder(procs, "deny")
    bundle.set_namespace("user", f"/proc/{holder.pid}/ns/user")
    _join_user_config(bundle)
    out = rt.probe(bundle, "readlink /proc/self/ns/user; id -u")
    assert out.split() == [os.readlink(f"/proc/{holder.pid}/ns/user"), "0"]
