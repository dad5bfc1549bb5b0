"""Kubernetes' path to a runtime: a CRI client (the kubelet's side) asks a private containerd 1.6 (CRI plugin on)
for pods and containers; containerd's runc v2 shim calls the binary the RuntimeClass handler names. Every scenario
runs against the handler `ocipy` and the handler `runc` (runc 1.5.1), so the expectations are checked against the
reference. The scenarios follow critest's categories: sandboxes (CNI, host network), shared namespaces, lifecycle
with grace periods, ExecSync, logs, stats, resource updates, security context, cgroup limits, restarts."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from criclient import Ns, pb
from cririg import SUBNET, process_cgroup

pytestmark = [pytest.mark.engines, pytest.mark.timeout(240)]

LOOP = "trap 'exit 3' TERM; touch /tmp/ready; while :; do sleep 0.1; done"
STUBBORN = "trap '' TERM; touch /tmp/ready; while :; do sleep 0.1; done"
RUNNING = pb.CONTAINER_RUNNING
EXITED = pb.CONTAINER_EXITED


def ns_inode(pid: int, ns: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{ns}").st_ino


def pause_pid(cri: Any, pod: Any) -> int:
    return int(json.loads(cri.pod_status(pod, verbose=True).info["info"])["pid"])


def cap_bits(status_text: str, field: str) -> int:
    m = re.search(rf"^{field}:\s*([0-9a-f]+)$", status_text, re.MULTILINE)
    assert m, status_text
    return int(m.group(1), 16)


def status_field(status_text: str, field: str) -> str:
    m = re.search(rf"^{field}:\s*(.*)$", status_text, re.MULTILINE)
    assert m, status_text
    return m.group(1).strip()


def runtime_state_dir(rig: Any, handler: str, cid: str) -> Path:
    return rig.work / f"{handler}-root" / "k8s.io" / cid


# ------------------------------------------------------------------------------------------------------------------
# sandboxes
# ------------------------------------------------------------------------------------------------------------------


def test_runtime_ready(cri: Any) -> None:
    conditions = {c.type: c.status for c in cri.rt.Status(pb.StatusRequest(), timeout=30).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}


def test_pod_with_cni(cri: Any, rig: Any, handler: str) -> None:
    pod = cri.run_pod(handler)
    try:
        st = cri.pod_status(pod).status
        assert st.state == pb.SANDBOX_READY
        assert st.runtime_handler == handler
        assert ipaddress.ip_address(st.network.ip) in ipaddress.ip_network(SUBNET)
        assert runtime_state_dir(rig, handler, pod.id).exists(), "the pod's sandbox did not run on the handler"
        ppid = pause_pid(cri, pod)
        assert ns_inode(ppid, "net") != rig.netns_inode()
        cid = cri.run(pod, "web", ["sh", "-c", LOOP])
        assert runtime_state_dir(rig, handler, cid).exists()
        assert cri.sh(cid, "hostname").strip() == pod.config.hostname
        assert f"inet {st.network.ip}/24" in cri.sh(cid, "ip addr show eth0")
        netns_path = next(
            n["path"]
            for n in json.loads(cri.pod_status(pod, verbose=True).info["info"])["runtimeSpec"]["linux"]["namespaces"]
            if n["type"] == "network"
        )
        assert os.path.exists(netns_path)
        cri.stop_pod(pod)
        assert cri.pod_status(pod).status.state == pb.SANDBOX_NOTREADY
        assert cri.status(cid).status.state == EXITED
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{ppid}/ns/net"):  # the pause process is gone (a reaped pid has no ns files)
            assert time.monotonic() < deadline, "the pod's pause process outlived StopPodSandbox"
            time.sleep(0.05)
        cri.remove_pod(pod)
        assert pod.id not in {p.id for p in cri.list_pods()}
        assert not cri.list(pod)
        assert not os.path.exists(netns_path), "the pod's network namespace was left"
        assert not runtime_state_dir(rig, handler, cid).exists(), "runtime state was left"
    finally:
        if pod.id in cri.pods:
            cri.remove_pod(pod)


def test_pod_host_network(cri: Any, rig: Any, pods: Any) -> None:
    pod = pods(host_network=True)
    st = cri.pod_status(pod).status
    assert st.state == pb.SANDBOX_READY
    assert st.network.ip == ""
    cid = cri.run(pod, "hostnet", ["sh", "-c", LOOP])
    pid = cri.pid(cid)
    # "the node's network" is the one containerd runs in: the rig's private netns, never the host's
    assert ns_inode(pid, "net") == rig.netns_inode()
    assert ns_inode(pid, "uts") == ns_inode(rig.pid(), "uts")
    assert "ocipycri0" in cri.sh(cid, "ip link") or "lo" in cri.sh(cid, "ip link")


def test_shared_namespaces(cri: Any, pods: Any) -> None:
    pod = pods()
    ppid = pause_pid(cri, pod)
    a, b = (cri.run(pod, n, ["sh", "-c", LOOP]) for n in ("a", "b"))
    pa, pb_ = cri.pid(a), cri.pid(b)
    for ns in ("net", "ipc", "uts"):
        assert ns_inode(pa, ns) == ns_inode(ppid, ns) == ns_inode(pb_, ns), ns
    assert len({ns_inode(p, "pid") for p in (ppid, pa, pb_)}) == 3, "pid: CONTAINER gives each its own"
    assert "trap" in cri.sh(a, "cat /proc/1/cmdline"), "pid 1 is not the container's own process"
    # IPC really shared: a POSIX message queue made in a is seen by b
    cri.sh(a, ": > /dev/mqueue/ocipy-q")
    assert "ocipy-q" in cri.sh(b, "ls /dev/mqueue")

    shared = pods(pid=Ns.POD)
    sppid = pause_pid(cri, shared)
    c = cri.run(
        shared,
        "c",
        ["sh", "-c", LOOP],
        security=pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(network=Ns.POD, pid=Ns.POD, ipc=Ns.POD)
        ),
    )
    assert ns_inode(cri.pid(c), "pid") == ns_inode(sppid, "pid")
    ps = cri.sh(c, "ps -o pid,args")
    assert re.search(r"^\s*1\s+/pause\s*$", ps, re.MULTILINE), ps


# ------------------------------------------------------------------------------------------------------------------
# containers: lifecycle
# ------------------------------------------------------------------------------------------------------------------


def test_stop_with_grace_period(cri: Any, pods: Any) -> None:
    pod = pods()
    polite = cri.run(pod, "polite", ["sh", "-c", LOOP])
    stubborn = cri.run(pod, "stubborn", ["sh", "-c", STUBBORN])
    assert cri.status(polite).status.state == RUNNING
    for cid in (polite, stubborn):  # the shells have set their traps
        deadline = time.monotonic() + 20
        while cri.exec_sync(cid, ["test", "-e", "/tmp/ready"]).exit_code != 0:
            assert time.monotonic() < deadline, "the container never got ready"
            time.sleep(0.1)

    t = time.monotonic()
    cri.stop(polite, timeout=20)
    assert time.monotonic() - t < 10, "a container that exits on SIGTERM waited for the grace period"
    st = cri.status(polite).status
    assert (st.state, st.exit_code) == (EXITED, 3)

    t = time.monotonic()
    cri.stop(stubborn, timeout=2)
    took = time.monotonic() - t
    assert 1.8 <= took < 15, took
    st = cri.status(stubborn).status
    assert (st.state, st.exit_code) == (EXITED, 137)

    cri.stop(polite, timeout=1)  # idempotent
    for cid in (polite, stubborn):
        cri.remove(cid)
        cri.remove(cid)  # idempotent
    assert not cri.list(pod)


def test_exit_and_restart(cri: Any, pods: Any) -> None:
    """What the kubelet does for restartPolicy Always: the exited container stays listed with its exit code, a new
    attempt of the same name is created and started in the same pod."""
    pod = pods()
    first = cri.run(pod, "app", ["sh", "-c", "echo run; exit 7"])
    st = cri.wait_state(first, EXITED)
    assert st.exit_code == 7
    # (not finished_at >= started_at: containerd stamps started_at when the runtime's `start` returns, and a process
    # this short may be reaped before that)
    assert st.finished_at > st.created_at and st.started_at > st.created_at
    assert st.reason == "Error"
    second = cri.run(pod, "app", ["sh", "-c", LOOP], attempt=1)
    listed = {c.id: (c.state, c.metadata.attempt) for c in cri.list(pod)}
    assert listed == {first: (EXITED, 0), second: (RUNNING, 1)}
    exited = cri.rt.ListContainers(
        pb.ListContainersRequest(
            filter=pb.ContainerFilter(pod_sandbox_id=pod.id, state=pb.ContainerStateValue(state=EXITED))
        ),
        timeout=30,
    ).containers
    assert [c.id for c in exited] == [first]
    cri.remove(first)
    assert cri.pod_status(pod).status.state == pb.SANDBOX_READY
    assert cri.status(second).status.state == RUNNING
    ok = cri.run(pod, "ok", ["true"])
    st = cri.wait_state(ok, EXITED)
    assert (st.exit_code, st.reason) == (0, "Completed")


# ------------------------------------------------------------------------------------------------------------------
# ExecSync, logs, stats, update
# ------------------------------------------------------------------------------------------------------------------


def test_exec_sync(cri: Any, pods: Any) -> None:
    pod = pods()
    cid = cri.run(pod, "exec", ["sh", "-c", LOOP])
    r = cri.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (r.exit_code, r.stdout, r.stderr) == (7, b"out\n", b"err\n")
    r = cri.exec_sync(cid, ["true"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, b"", b"")
    r = cri.exec_sync(cid, ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"])
    assert r.exit_code == 0 and r.stdout == b"x" * 300000
    t = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        cri.exec_sync(cid, ["sleep", "30"], timeout=1)
    assert "timeout" in (err.value.details() or "").lower()
    assert time.monotonic() - t < 20
    deadline = time.monotonic() + 10
    while "sleep 30" in cri.sh(cid, "ps -o args"):
        assert time.monotonic() < deadline, "the timed-out exec's process was left running"
        time.sleep(0.2)
    assert cri.status(cid).status.state == RUNNING


def test_exec_sync_missing_binary(cri: Any, pods: Any) -> None:
    pod = pods()
    cid = cri.run(pod, "exec", ["sh", "-c", LOOP])
    with pytest.raises(grpc.RpcError) as err:
        cri.exec_sync(cid, ["/no/such/binary"])
    assert "no such file" in (err.value.details() or "").lower() or "not found" in (err.value.details() or "")
    assert cri.status(cid).status.state == RUNNING


LOG_LINE = re.compile(r"^(\S+) (stdout|stderr) ([FP]) (.*)$")


def test_logs_in_cri_format(cri: Any, pods: Any) -> None:
    pod = pods()
    cid = cri.run(pod, "logger", ["sh", "-c", "echo out1; echo err1 >&2; echo out2; printf partial"])
    st = cri.wait_state(cid, EXITED)
    assert st.log_path == str(cri.log_path(pod, "logger"))
    deadline = time.monotonic() + 10
    while True:
        lines = Path(st.log_path).read_text().splitlines()
        if len(lines) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    parsed = []
    for line in lines:
        m = LOG_LINE.match(line)
        assert m, f"not a CRI log line: {line!r}"
        datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", m.group(1)))
        parsed.append(m.groups()[1:])
    assert sorted(parsed) == sorted(
        [("stdout", "F", "out1"), ("stderr", "F", "err1"), ("stdout", "F", "out2"), ("stdout", "P", "partial")]
    ), lines
    assert [p for p in parsed if p[0] == "stdout"] == [
        ("stdout", "F", "out1"),
        ("stdout", "F", "out2"),
        ("stdout", "P", "partial"),
    ]


def test_container_stats(cri: Any, pods: Any) -> None:
    pod = pods()
    cid = cri.run(pod, "busy", ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; " + LOOP])
    time.sleep(1)
    s = cri.stats(cid)
    assert s.attributes.id == cid
    assert s.attributes.metadata.name == "busy"
    assert s.cpu.timestamp > 0 and s.cpu.usage_core_nano_seconds.value > 1_000_000
    assert s.memory.timestamp > 0 and s.memory.working_set_bytes.value > 0
    assert s.writable_layer.fs_id.mountpoint


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    root = Path("/sys/fs/cgroup") / controller
    return (root / process_cgroup(pid, controller).lstrip("/") / name).read_text().strip()


def test_limits_under_pod_cgroup_parent(cri: Any, rig: Any, pods: Any) -> None:
    pod = pods()
    parent = pod.config.linux.cgroup_parent
    res = pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=50000, cpu_shares=512)
    cid = cri.run(pod, "limited", ["sh", "-c", LOOP], resources=res)
    pid = cri.pid(cid)
    for controller in ("memory", "cpu", "pids"):
        assert process_cgroup(pid, controller).startswith(parent + "/"), controller
    assert process_cgroup(pause_pid(cri, pod), "memory").startswith(parent + "/")
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert _cgroup_file(pid, "cpu", "cpu.cfs_period_us") == "100000"
    assert _cgroup_file(pid, "cpu", "cpu.shares") == "512"
    # the limit is enforced: a process that grows past it is OOM-killed
    oom = cri.run(
        pod, "oom", ["sh", "-c", "tail /dev/zero"], resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20)
    )
    st = cri.wait_state(oom, EXITED, timeout=60)
    assert (st.exit_code, st.reason) == (137, "OOMKilled")


def test_update_container_resources(cri: Any, pods: Any) -> None:
    pod = pods()
    cid = cri.run(
        pod,
        "grow",
        ["sh", "-c", LOOP],
        resources=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=50000),
    )
    pid = cri.pid(cid)
    cri.update(
        cid,
        pb.LinuxContainerResources(memory_limit_in_bytes=128 << 20, cpu_period=100000, cpu_quota=20000, cpu_shares=256),
    )
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(128 << 20)
    assert _cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "20000"
    assert _cgroup_file(pid, "cpu", "cpu.shares") == "256"
    assert cri.status(cid).status.state == RUNNING


# ------------------------------------------------------------------------------------------------------------------
# security context
# ------------------------------------------------------------------------------------------------------------------


def _sc(**kw: Any) -> Any:
    return pb.LinuxContainerSecurityContext(
        namespace_options=pb.NamespaceOption(network=Ns.POD, pid=Ns.CONTAINER, ipc=Ns.POD), **kw
    )


CAP_NET_ADMIN = 12
CAP_MKNOD = 27
CAP_CHOWN = 0


def test_security_context(cri: Any, pods: Any) -> None:
    pod = pods()

    def proc_status(**kw: Any) -> tuple[str, str]:
        cid = cri.run(pod, "sc-" + os.urandom(3).hex(), ["sh", "-c", LOOP], security=_sc(**kw))
        return cid, cri.sh(cid, "cat /proc/self/status")

    cid = cri.run(
        pod,
        "user",
        ["sh", "-c", LOOP],
        security=_sc(run_as_user=pb.Int64Value(value=1000), run_as_group=pb.Int64Value(value=2000)),
    )
    assert cri.sh(cid, "id -u; id -g").split() == ["1000", "2000"]
    with open(f"/proc/{cri.pid(cid)}/status") as f:
        text = f.read()
    assert status_field(text, "Uid").split()[0] == "1000" and status_field(text, "Gid").split()[0] == "2000"

    cid = cri.run(pod, "ro", ["sh", "-c", LOOP], security=_sc(readonly_rootfs=True))
    r = cri.exec_sync(cid, ["touch", "/newfile"])
    assert r.exit_code != 0 and b"Read-only file system" in r.stderr, r
    assert cri.exec_sync(cid, ["sh", "-c", "echo x > /dev/shm/x"]).exit_code == 0  # the pod's shm stays writable

    _, default = proc_status()
    _, caps = proc_status(capabilities=pb.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["MKNOD"]))
    assert not cap_bits(default, "CapEff") >> CAP_NET_ADMIN & 1
    assert cap_bits(default, "CapEff") >> CAP_MKNOD & 1
    assert cap_bits(caps, "CapEff") >> CAP_NET_ADMIN & 1
    assert not cap_bits(caps, "CapEff") >> CAP_MKNOD & 1
    assert not cap_bits(caps, "CapBnd") >> CAP_MKNOD & 1
    _, none = proc_status(capabilities=pb.Capability(drop_capabilities=["ALL"]))
    assert cap_bits(none, "CapEff") == 0 and cap_bits(none, "CapBnd") == 0

    _, rd = proc_status(seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault))
    assert status_field(rd, "Seccomp") == "2"
    _, unconfined = proc_status(seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined))
    assert status_field(unconfined, "Seccomp") == "0"

    _, nnp = proc_status(no_new_privs=True)
    assert status_field(nnp, "NoNewPrivs") == "1"
    assert status_field(default, "NoNewPrivs") == "0"

    cid, _ = proc_status(masked_paths=["/proc/kcore", "/proc/timer_list", "/proc/scsi"], readonly_paths=["/proc/sys"])
    assert cri.sh(cid, "wc -c < /proc/timer_list").strip() == "0"
    assert cri.sh(cid, "ls -A /proc/scsi 2>/dev/null | wc -l").strip() == "0"
    r = cri.exec_sync(cid, ["sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid"])
    assert r.exit_code != 0 and b"Read-only file system" in r.stderr, r
    cid, _ = proc_status(masked_paths=[], readonly_paths=[])
    assert int(cri.sh(cid, "wc -c < /proc/timer_list").strip()) > 0


def test_privileged(cri: Any, pods: Any) -> None:
    pod = pods(privileged=True)
    cid = cri.run(pod, "priv", ["sh", "-c", LOOP], security=_sc(privileged=True))
    text = cri.sh(cid, "cat /proc/self/status")
    with open("/proc/self/status") as f:
        host = f.read()
    assert cap_bits(text, "CapEff") == cap_bits(host, "CapBnd")
    assert status_field(text, "Seccomp") == "0"
    mounts = cri.sh(cid, "cat /proc/mounts")
    # containerd mounts /sys read-only in a pod network namespace, privileged or not; the cgroup controllers rw
    assert re.search(r"^cgroup /sys/fs/cgroup/memory cgroup rw", mounts, re.MULTILINE), mounts
    assert cri.sh(cid, "test -c /dev/kmsg && echo host-devices").strip() == "host-devices"
    assert int(cri.sh(cid, "wc -c < /proc/timer_list").strip()) > 0  # nothing masked


# ------------------------------------------------------------------------------------------------------------------
# a shared pid namespace: the shim's `kill --all` after the main process exits
# ------------------------------------------------------------------------------------------------------------------


def _cgroup_procs(rel: str) -> list[int]:
    path = Path("/sys/fs/cgroup/memory") / rel.lstrip("/") / "cgroup.procs"
    try:
        return [int(x) for x in path.read_text().split()]
    except FileNotFoundError:
        return []


def test_kill_all_when_main_exits_in_shared_pid_namespace(cri: Any, rig: Any, pods: Any) -> None:
    """In a pod sharing one pid namespace the container's processes outlive its main process (they are re-parented
    to the pod's pause, not killed with a namespace init). When the main process exits, the runc v2 shim calls
    `kill --all ID 9` on the stopped container; the runtime must kill what is left in the container's cgroup."""
    pod = pods(pid=Ns.POD)
    cid = cri.run(
        pod,
        "leaver",
        ["sh", "-c", "sleep 1000 & sleep 1000 & echo started; sleep 1; exit 5"],
        security=_sc_pid_pod(),
    )
    spec = json.loads(cri.status(cid, verbose=True).info["info"])["runtimeSpec"]
    cgroup = spec["linux"]["cgroupsPath"]
    assert len(_cgroup_procs(cgroup)) >= 3
    st = cri.wait_state(cid, EXITED)
    assert st.exit_code == 5
    deadline = time.monotonic() + 10
    while _cgroup_procs(cgroup):
        assert time.monotonic() < deadline, f"processes left in the exited container's cgroup: {_cgroup_procs(cgroup)}"
        time.sleep(0.1)
    ps = cri.sh(cri.run(pod, "peek", ["sh", "-c", LOOP], security=_sc_pid_pod()), "ps -o args")
    assert "sleep 1000" not in ps, ps
    log = rig.log.read_text()
    assert not [line for line in log.splitlines() if cid in line and "killall failed" in line], (
        "the shim's kill --all failed"
    )
    cri.remove(cid)

    # StopContainer of such a container: the shim signals the main process only; what it started must go too
    cid = cri.run(pod, "stopped", ["sh", "-c", "sleep 1000 & " + LOOP], security=_sc_pid_pod())
    cgroup = json.loads(cri.status(cid, verbose=True).info["info"])["runtimeSpec"]["linux"]["cgroupsPath"]
    deadline = time.monotonic() + 10
    while len(_cgroup_procs(cgroup)) < 2:
        assert time.monotonic() < deadline, "the background sleep never started"
        time.sleep(0.1)
    cri.stop(cid, timeout=2)
    assert cri.status(cid).status.state == EXITED
    deadline = time.monotonic() + 10
    while _cgroup_procs(cgroup):
        assert time.monotonic() < deadline, f"StopContainer left processes: {_cgroup_procs(cgroup)}"
        time.sleep(0.1)


def _sc_pid_pod() -> Any:
    return pb.LinuxContainerSecurityContext(
        namespace_options=pb.NamespaceOption(network=Ns.POD, pid=Ns.POD, ipc=Ns.POD)
    )
