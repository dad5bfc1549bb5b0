"""ocipy-init driven by hand-built plans: real namespaces, mounts and the sync protocol, checked from inside.

Every test builds a plan with ocipy.planfmt.Plan, starts the init from its sealed memfd through ocipy._shim.spawn,
plays the caller's side of the sync socket, and reads what the container printed on its stdout pipe. Every process
started is killed by pid and reaped; the init's mounts live in its own mount namespace (made rslave first) and
vanish with it, which the busybox_rootfs fixture checks on the host.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import socket
import stat
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocipy import planfmt as pf
from ocipy.planfmt import Plan

_shim = pytest.importorskip("ocipy._shim", reason="the cffi extension ocipy._shim_c is not built")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: real namespaces and mounts"),
]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_NOATIME = 1024
MS_STRICTATIME = 1 << 24
MOUNT_ATTR_NOSUID = 0x2

RLIMIT_NOFILE = 7
CAP_NET_BIND_SERVICE = 10
CAP_CHOWN = 0

SYNC_FD = 10  # where the init finds its sync socket and plan (above any preserved fds the test maps)
PLAN_FD = 11
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Msg:
    type: int
    op: int
    err: int
    pid: int
    detail: str
    fds: list[int]


class Init:
    """One ocipy-init run: spawn, the caller's side of the sync protocol, output, cleanup."""

    def __init__(self, plan: Plan | bytes, extra_fds: list[tuple[int, int]] | None = None) -> None:
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        plan_fd = os.memfd_create("plan", os.MFD_CLOEXEC)
        os.write(plan_fd, plan if isinstance(plan, bytes) else plan.encode())
        os.lseek(plan_fd, 0, os.SEEK_SET)
        self.out_r, out_w = os.pipe()
        null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        exe = _shim.init_memfd()
        fdmap = [(null, 0), (out_w, 1), (out_w, 2), (child.fileno(), SYNC_FD), (plan_fd, PLAN_FD)]
        fdmap += extra_fds or []
        try:
            self.stage0, self.pidfd = _shim.spawn(exe, ["ocipy-init", str(SYNC_FD), str(PLAN_FD)], fdmap)
        finally:
            for fd in (exe, plan_fd, out_w, null):
                os.close(fd)
            child.close()
        self.pids = [self.stage0]
        self.status: dict[int, int] = {}
        self.init_pid = self.stage0  # the container init once MSG_PID came
        self.synced: list[Msg] = []  # MSG_HOOKS / MSG_SYNC seen by drive()

    def recv(self, timeout: float = 20.0) -> Msg | None:
        self.sock.settimeout(timeout)
        data, fds, _flags, _addr = socket.recv_fds(self.sock, pf.SYNC_MSG.size, 4)
        if not data:
            return None
        t, op, err, pid, detail = pf.SYNC_MSG.unpack(data)
        return Msg(t, op, err, pid, detail.split(b"\0", 1)[0].decode(), fds)

    def ack(self, err: int = 0) -> None:
        self.sock.send(pf.SYNC_MSG.pack(pf.MSG_ACK, -1, err, 0, b""))

    def drive(
        self, usermap: tuple[str, str] | None = None, until: int = pf.MSG_CREATED, sync_err: int = 0
    ) -> Msg | None:
        """Answer the init until `until`, an error or EOF; returns that message (None = EOF)."""
        while True:
            m = self.recv()
            if m is None or m.type in (until, pf.MSG_ERROR):
                return m
            if m.type == pf.MSG_PID:
                self.pids.append(m.pid)
                self.init_pid = m.pid
                self.ack()  # stage 0 lets the child go on once its pid is recorded
            elif m.type == pf.MSG_USERMAP:
                assert usermap is not None, "unexpected MSG_USERMAP"
                Path(f"/proc/{m.pid}/uid_map").write_text(usermap[0])
                Path(f"/proc/{m.pid}/gid_map").write_text(usermap[1])
                self.ack()
            elif m.type in (pf.MSG_HOOKS, pf.MSG_SYNC):
                self.synced.append(m)
                self.ack(sync_err if m.type == pf.MSG_SYNC else 0)
            else:
                raise AssertionError(f"unexpected message {m}")

    def wait(self, pid: int, timeout: float = 20.0) -> int:
        if pid in self.status:
            return self.status[pid]
        deadline = time.monotonic() + timeout
        while True:
            got, st = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                self.status[pid] = st
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"pid {pid} did not exit")
            time.sleep(0.01)

    def output(self, timeout: float = 20.0) -> str:
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("container output did not end")
            r, _, _ = select.select([self.out_r], [], [], left)
            if not r:
                continue
            data = os.read(self.out_r, 65536)
            if not data:
                return b"".join(chunks).decode(errors="replace")
            chunks.append(data)

    def close(self) -> None:
        for pid in self.pids:
            if pid not in self.status:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    self.wait(pid, timeout=10)
                except ChildProcessError:
                    pass
        self.sock.close()
        for m in self.synced:
            for fd in m.fds:
                os.close(fd)
        os.close(self.out_r)
        os.close(self.pidfd)


@pytest.fixture
def runs() -> Iterator[list[Init]]:
    started: list[Init] = []
    yield started
    for run in started:
        run.close()


def start(runs: list[Init], plan: Plan | bytes, extra_fds: list[tuple[int, int]] | None = None) -> Init:
    run = Init(plan, extra_fds)
    runs.append(run)
    return run


def wait_for_state(pid: int, state: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"State:\t{state}" in Path(f"/proc/{pid}/status").read_text():
            return True
        time.sleep(0.01)
    return False


def exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


# --- plan building blocks -------------------------------------------------------------------------------------------


def stage0(p: Plan, flags: int = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID) -> None:
    p.op(pf.OP_UNSHARE, "/linux/namespaces", a=[flags])
    p.op(pf.OP_CLONE, "/linux/namespaces", a=[0])


def rootfs_and_dev(p: Plan, rootfs: Path, fifo: Path | None = None, mknod: bool = True) -> None:
    p.op(pf.OP_MOUNT_PROPAGATION, "/linux/rootfsPropagation", s=["/"], a=[MS_REC | MS_SLAVE])
    p.op(pf.OP_BIND_ROOT, "/root/path", s=[str(rootfs)])
    if fifo is not None:
        p.op(pf.OP_OPEN_FIFO, "", s=[str(fifo)])
    p.op(
        pf.OP_MOUNT,
        "/mounts/0",
        s=["proc", "/proc", "proc"],
        a=[MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, 0, 0, pf.MNTF_MKDIR | pf.MNTF_PROC],
    )
    p.op(
        pf.OP_MOUNT,
        "/mounts/1",
        s=["tmpfs", "/dev", "tmpfs", "mode=755,size=65536k"],
        a=[MS_NOSUID | MS_STRICTATIME, 0, 0, 0, pf.MNTF_MKDIR],
    )
    p.op(
        pf.OP_MOUNT,
        "/mounts/2",
        s=["devpts", "/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620"],
        a=[MS_NOSUID | MS_NOEXEC, 0, 0, 0, pf.MNTF_MKDIR],
    )
    if mknod:
        for name, minor in (("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)):
            p.op(
                pf.OP_MKNOD,
                "/linux/devices",
                s=[None, f"/dev/{name}"],
                a=[stat.S_IFCHR | 0o666, os.makedev(1, minor), -1, -1],
            )
    for target, link in (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("pts/ptmx", "/dev/ptmx")):
        p.op(pf.OP_SYMLINK, "", s=[target, link])


def exec_sh(p: Plan, script: str, env: list[str] | None = None) -> None:
    args = ["sh", "-c", script]
    env = env if env is not None else [f"PATH={PATH}", "HOME=/root"]
    p.op(pf.OP_EXEC, "/process/args", s=[p.strv(args), p.strv(env)], a=[len(args), len(env)])


def fields(out: str) -> dict[str, str]:
    res = {}
    for line in out.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.isidentifier():
            res[k] = v.strip()
    return res


def mountinfo_points(text: str) -> dict[str, str]:
    """mount point -> "per-mount options - fstype" from mountinfo lines."""
    res = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 6 and " - " in line:
            fstype = line.split(" - ", 1)[1].split()[0]
            res[parts[4]] = f"{parts[5]} {fstype}"
    return res


def release(fifo: Path) -> None:
    """What `start` does: open the fifo for writing without blocking, write "0", remove it."""
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    fifo.unlink()


ALLOW_ALL_BPF = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)  # BPF_RET|BPF_K SECCOMP_RET_ALLOW

CONTAINER_SCRIPT = """
echo host=$(hostname)
echo domain=$(cat /proc/sys/kernel/domainname)
echo uid=$(id -u) gid=$(id -g)
echo groups="$(id -G)"
echo oom=$(cat /proc/self/oom_score_adj)
echo nofile=$(ulimit -n)
echo pid1=$$
echo capeff=$(grep CapEff /proc/self/status | cut -f2)
echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)
echo seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2)
echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)
echo fds="$(ls /proc/self/fd | tr '\\n' ' ')"
echo timer_list=$(wc -c < /proc/timer_list)
echo driver=$(ls -A /proc/driver | wc -l)
echo devnull=$(stat -c %t:%T /dev/null)
echo ptmx=$(readlink /dev/ptmx)
echo cwd=$(pwd)
echo MOUNTS
cat /proc/self/mountinfo
"""


def full_plan(rootfs: Path, fifo: Path, extra: Path) -> Plan:
    p = Plan()
    stage0(p)
    rootfs_and_dev(p, rootfs, fifo)
    p.op(
        pf.OP_MOUNT,
        "/mounts/3",
        s=[str(extra), "/data", None],
        a=[MS_BIND | MS_REC, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, MS_PRIVATE, 0, pf.MNTF_MKDIR],
    )
    p.op(pf.OP_OPEN_DEVNULL, "/linux/maskedPaths")  # the host's, before the root switch
    p.op(pf.OP_PIVOT_ROOT, "/root")
    p.op(pf.OP_MASK_PATH, "/linux/maskedPaths/0", s=[None, "/proc/timer_list"])
    p.op(pf.OP_MASK_PATH, "/linux/maskedPaths/0", s=[None, "/proc/kcore"])  # absent on some kernels: skipped
    p.op(pf.OP_MASK_PATH, "/linux/maskedPaths/1", s=[None, "/proc/driver"])
    p.op(pf.OP_MASK_PATH, "/linux/maskedPaths/2", s=[None, "/proc/no-such-thing"])
    p.op(pf.OP_SYSCTL, "/linux/sysctl/kernel.domainname", s=["kernel.domainname", "example.org"])
    p.op(pf.OP_READONLY_PATH, "/linux/readonlyPaths/0", s=[None, "/proc/sys"])
    p.op(pf.OP_SETHOSTNAME, "/hostname", s=["ocipy-test"])
    p.op(pf.OP_WRITE_PROC, "/process/oomScoreAdj", s=["/proc/self/oom_score_adj", "100"])
    p.op(pf.OP_SETRLIMIT, "/process/rlimits/0", a=[RLIMIT_NOFILE, 1024, 1024])
    p.op(pf.OP_SYNC_HOOKS, "/hooks")
    p.op(pf.OP_CHDIR, "/process/cwd", s=["/tmp"])
    p.op(pf.OP_FIND_EXEC, "/process/args/0", s=["sh", PATH])
    keep = (1 << CAP_NET_BIND_SERVICE) | (1 << CAP_CHOWN)
    p.op(pf.OP_CAP_BOUNDING, "/process/capabilities/bounding", a=[keep])
    p.op(pf.OP_SETGROUPS, "/process/user/additionalGids", s=[p.strv(["1000", "2000"])], a=[2])
    p.op(pf.OP_SETGID, "/process/user/gid", a=[1000])
    p.op(pf.OP_SETUID, "/process/user/uid", a=[1000])
    nb = 1 << CAP_NET_BIND_SERVICE
    p.op(pf.OP_CAPSET, "/process/capabilities", a=[nb, nb, nb, nb])
    p.op(pf.OP_NO_NEW_PRIVS, "/process/noNewPrivileges")
    p.op(pf.OP_SECCOMP, "/linux/seccomp", s=[p.blob(ALLOW_ALL_BPF)], a=[len(ALLOW_ALL_BPF), 0, 0])
    p.op(pf.OP_CLOSE_FDS, "", a=[1])
    p.op(pf.OP_SIGNAL_CREATED, "")
    p.op(pf.OP_WAIT_START, "")
    exec_sh(p, CONTAINER_SCRIPT)
    return p


# --- tests ------------------------------------------------------------------------------------------------------------


def test_full_create_start_exec(busybox_rootfs: Path, tmp_path: Path, runs: list[Init]) -> None:
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo, 0o600)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "hello").write_text("hi")
    preserved_r, preserved_w = os.pipe()
    try:
        run = start(runs, full_plan(busybox_rootfs, fifo, extra), extra_fds=[(preserved_w, 3)])
    finally:
        os.close(preserved_w)
    hooks = run.recv()
    assert hooks is not None and hooks.type == pf.MSG_PID, hooks
    run.pids.append(hooks.pid)
    run.init_pid = hooks.pid
    run.ack()
    assert exit_code(run.wait(run.stage0)) == 0  # stage 0 leaves once the clone it reported is acknowledged
    m = run.recv()
    assert m is not None and m.type == pf.MSG_HOOKS and m.pid == run.init_pid, m
    run.ack()
    m = run.drive()
    assert m is not None and m.type == pf.MSG_CREATED and m.pid == run.init_pid, m

    # created: the init waits for start; the fifo is held open for reading by it
    assert wait_for_state(run.init_pid, "S")
    assert fifo.exists()
    release(fifo)
    out = run.output()
    assert exit_code(run.wait(run.init_pid)) == 0, out
    assert run.recv() is None  # exec closed the sync socket: EOF
    os.close(preserved_r)

    f = fields(out)
    assert f["host"] == "ocipy-test", out
    assert f["domain"] == "example.org"
    assert f["uid"] == "1000 gid=1000"
    assert f["groups"].split() == ["1000", "2000"]
    assert f["oom"] == "100"
    assert f["nofile"] == "1024"
    assert f["pid1"] == "1"
    assert int(f["capeff"], 16) == 1 << CAP_NET_BIND_SERVICE  # via the ambient set across a non-root exec
    assert int(f["capbnd"], 16) == (1 << CAP_NET_BIND_SERVICE) | (1 << CAP_CHOWN)
    assert f["seccomp"] == "2"
    assert f["nnp"] == "1"
    # stdio, the one preserved fd (3), and ls's own directory fd: nothing else reached the container
    assert set(f["fds"].split()) <= {"0", "1", "2", "3", "4"}, f["fds"]
    assert f["timer_list"] == "0", out
    assert f["driver"] == "0"
    assert f["devnull"] == "1:3"
    assert f["ptmx"] == "pts/ptmx"
    assert f["cwd"] == "/tmp"

    mounts = mountinfo_points(out.split("MOUNTS", 1)[1])
    assert mounts["/proc"].endswith(" proc")
    assert mounts["/dev"].endswith(" tmpfs")
    assert mounts["/dev/pts"].endswith(" devpts")
    assert mounts["/proc/timer_list"].endswith(" devtmpfs")  # the host's verified /dev/null
    assert mounts["/proc/driver"].startswith("ro,") and mounts["/proc/driver"].endswith(" tmpfs")
    assert mounts["/proc/sys"].startswith("ro,")
    assert mounts["/data"].startswith("ro,nosuid")
    assert not any(p.startswith(str(tmp_path)) for p in mounts), "the old root is still visible"
    assert not fifo.exists()


def test_user_namespace_usermap(userns_rootfs: Path, runs: list[Init]) -> None:
    busybox_rootfs = userns_rootfs
    p = Plan()
    p.op(pf.OP_UNSHARE, "/linux/namespaces", a=[CLONE_NEWUSER])
    p.op(pf.OP_SYNC_USERMAP, "/linux/uidMappings")
    stage0(p, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS)
    rootfs_and_dev(p, busybox_rootfs, mknod=False)
    # mknod is denied in a user namespace: bind the host's device instead
    p.op(pf.OP_BIND_DEV, "/linux/devices/0", s=["/dev/null", "/dev/null"])
    # asking for noatime on a relatime mount: the atime mode is locked in a user namespace, so the first remount
    # fails with EPERM and the init retries keeping the locked flags
    p.op(
        pf.OP_MOUNT,
        "/mounts/3",
        s=["/sys/fs/cgroup", "/data", None],
        a=[MS_BIND | MS_REC, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOATIME, 0, MOUNT_ATTR_NOSUID, pf.MNTF_MKDIR],
    )
    p.op(pf.OP_PIVOT_ROOT, "/root")
    p.op(pf.OP_SETHOSTNAME, "/hostname", s=["userns"])
    p.op(pf.OP_FIND_EXEC, "/process/args/0", s=["sh", None])
    exec_sh(
        p,
        "echo uid=$(id -u); echo map=$(cat /proc/self/uid_map); echo gmap=$(cat /proc/self/gid_map);"
        "echo host=$(hostname); echo null=$(stat -c %t:%T /dev/null); echo x > /dev/null && echo write=ok;"
        "echo data=$(grep ' /data ' /proc/self/mountinfo | cut -d' ' -f6)",
    )
    run = start(runs, p)
    m = run.drive(usermap=("0 100000 65536\n", "0 100000 65536\n"), until=pf.MSG_CREATED)
    assert m is None, m  # no MSG_CREATED in this plan: EOF after the exec
    out = run.output()
    assert exit_code(run.wait(run.init_pid)) == 0, out
    f = fields(out)
    assert f["uid"] == "0"
    assert f["map"].split() == ["0", "100000", "65536"]
    assert f["gmap"].split() == ["0", "100000", "65536"]
    assert f["host"] == "userns"
    assert f["null"] == "1:3"
    assert f["write"] == "ok"
    assert f["data"] == "ro,nosuid,relatime", out


def test_symlink_destination_stays_in_root(busybox_rootfs: Path, tmp_path: Path, runs: list[Init]) -> None:
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    (busybox_rootfs / "escape").symlink_to(host_dir)  # absolute: points at the host dir from the host's view
    (busybox_rootfs / "up").symlink_to("../../../../../../../../" + str(host_dir).lstrip("/"))
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "file").write_text("secret")
    p = Plan()
    stage0(p, CLONE_NEWNS | CLONE_NEWPID)
    rootfs_and_dev(p, busybox_rootfs)
    p.op(pf.OP_MOUNT, "/mounts/3", s=["tmpfs", "/escape", "tmpfs", None], a=[0, 0, 0, 0, pf.MNTF_MKDIR])
    p.op(pf.OP_MOUNT, "/mounts/4", s=[str(secret), "/up/sub", None], a=[MS_BIND | MS_REC, 0, 0, 0, pf.MNTF_MKDIR])
    p.op(pf.OP_PIVOT_ROOT, "/root")
    p.op(pf.OP_FIND_EXEC, "/process/args/0", s=["sh", None])
    exec_sh(p, "echo pwned > /escape/file; ls /up/sub; cat /proc/self/mountinfo")
    run = start(runs, p)
    assert run.drive() is None
    out = run.output()
    assert exit_code(run.wait(run.init_pid)) == 0, out
    inside = str(host_dir)
    mounts = mountinfo_points(out)
    assert mounts[inside].endswith(" tmpfs"), out  # the symlink was followed inside the root only
    assert f"{inside}/sub" in mounts
    assert list(host_dir.iterdir()) == [], "the host directory behind the symlink was touched"
    assert (busybox_rootfs / inside.lstrip("/")).is_dir()  # created beneath the root instead
    assert "file" in out.split()  # the bind reached /up/sub, inside the tmpfs inside the root


def test_proc_on_symlink_refused(busybox_rootfs: Path, tmp_path: Path, runs: list[Init]) -> None:
    (busybox_rootfs / "proc").rmdir()
    (busybox_rootfs / "proc").symlink_to("/tmp")
    p = Plan()
    stage0(p, CLONE_NEWNS | CLONE_NEWPID)
    rootfs_and_dev(p, busybox_rootfs)
    run = start(runs, p)
    m = run.drive()
    assert m is not None and m.type == pf.MSG_ERROR, m
    assert p.ops[m.op][0] == pf.OP_MOUNT and p.field_of(m.op) == "/mounts/0"
    assert m.err == errno.ELOOP and m.detail == "/proc"
    assert exit_code(run.wait(run.init_pid)) == 1


def test_mount_error_reports_op_and_errno(busybox_rootfs: Path, tmp_path: Path, runs: list[Init]) -> None:
    missing = tmp_path / "no-such-source"
    p = Plan()
    stage0(p, CLONE_NEWNS | CLONE_NEWPID)
    rootfs_and_dev(p, busybox_rootfs)
    bad = p.op(pf.OP_MOUNT, "/mounts/7", s=[str(missing), "/mnt/x", None], a=[MS_BIND | MS_REC, 0, 0, 0, pf.MNTF_MKDIR])
    p.op(pf.OP_PIVOT_ROOT, "/root")
    exec_sh(p, "echo should-not-run")
    run = start(runs, p)
    m = run.drive()
    assert m is not None and m.type == pf.MSG_ERROR, m
    assert (m.op, m.err, m.detail) == (bad, errno.ENOENT, str(missing))
    assert p.field_of(m.op) == "/mounts/7"
    assert run.recv() is None  # reported once, then gone
    assert exit_code(run.wait(run.init_pid)) == 1
    assert exit_code(run.wait(run.stage0)) == 0
    assert run.output() == ""
    for pid in run.pids:
        assert not os.path.exists(f"/proc/{pid}"), "a process was left behind"


def test_stage0_error_no_clone(runs: list[Init]) -> None:
    p = Plan()
    p.op(pf.OP_SETNS, "/linux/namespaces/0", s=["/no/such/ns"], a=[0])
    run = start(runs, p)
    m = run.drive()
    assert m is not None and (m.type, m.op, m.err, m.detail) == (pf.MSG_ERROR, 0, errno.ENOENT, "/no/such/ns")
    assert exit_code(run.wait(run.stage0)) == 1


@pytest.mark.parametrize(
    ("name", "err", "detail"),
    [
        ("no-such-cmd", errno.ENOENT, "executable file not found in $PATH: no-such-cmd"),
        ("/bin/no-such-cmd", errno.ENOENT, "no such file or directory: /bin/no-such-cmd"),
        ("/etc/passwd", errno.EACCES, "permission denied: /etc/passwd"),
        ("passwd", errno.EACCES, "permission denied: passwd"),
    ],
)
def test_find_exec_failures(busybox_rootfs: Path, runs: list[Init], name: str, err: int, detail: str) -> None:
    p = Plan()
    stage0(p, CLONE_NEWNS | CLONE_NEWPID)
    rootfs_and_dev(p, busybox_rootfs)
    p.op(pf.OP_PIVOT_ROOT, "/root")
    idx = p.op(pf.OP_FIND_EXEC, "/process/args/0", s=[name, "/bin:/etc"])
    p.op(pf.OP_SIGNAL_CREATED, "")
    run = start(runs, p)
    m = run.drive()
    assert m is not None and m.type == pf.MSG_ERROR, m
    assert (m.op, m.err, m.detail) == (idx, err, detail)
    assert exit_code(run.wait(run.init_pid)) == 1


def test_console_socket(busybox_rootfs: Path, runs: list[Init]) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    p = Plan()
    stage0(p, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS)
    rootfs_and_dev(p, busybox_rootfs)
    p.op(pf.OP_PIVOT_ROOT, "/root")
    p.op(pf.OP_CONSOLE, "/process/terminal", a=[5, 40, 100])
    p.op(pf.OP_FIND_EXEC, "/process/args/0", s=["sh", None])
    p.op(pf.OP_CLOSE_FDS, "", a=[0])
    exec_sh(
        p,
        "stty size; tty; echo ctty=$(cat /proc/self/stat | cut -d' ' -f7); "
        "grep ' /dev/console ' /proc/self/mountinfo | cut -d' ' -f5; echo hello-console",
    )
    try:
        run = start(runs, p, extra_fds=[(theirs.fileno(), 5)])
    finally:
        theirs.close()
    m = run.recv()
    assert m is not None and m.type == pf.MSG_PID, m
    run.ack()  # the clone goes on once its pid is acknowledged
    try:
        ours.settimeout(20)
        msg, fds, _flags, _addr = socket.recv_fds(ours, 64, 2)
        assert msg == b"/dev/ptmx"
        assert len(fds) == 1
        master = fds[0]
        assert ours.recv(64) == b""  # exactly one message, then the socket was closed
        chunks = []
        while True:
            r, _, _ = select.select([master], [], [], 20)
            assert r, "no console output"
            try:
                data = os.read(master, 4096)
            except OSError as e:  # EIO: every peer is closed
                assert e.errno == errno.EIO
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
    finally:
        ours.close()
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    assert exit_code(run.wait(run.init_pid)) == 0, text
    lines = text.splitlines()
    assert lines[0] == "40 100"
    assert lines[1].startswith("/dev/pts/")
    assert lines[2] != "ctty=0"
    assert "/dev/console" in lines[3]
    assert lines[4] == "hello-console"
    assert run.output() == ""  # nothing went to the original stdout


def created_init(rootfs: Path, tmp_path: Path, runs: list[Init]) -> tuple[Init, Path]:
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo, 0o600)
    p = Plan()
    stage0(p)
    rootfs_and_dev(p, rootfs, fifo)
    p.op(pf.OP_PIVOT_ROOT, "/root")
    p.op(pf.OP_SETHOSTNAME, "/hostname", s=["waiting"])
    p.op(pf.OP_FIND_EXEC, "/process/args/0", s=["sh", None])
    p.op(pf.OP_CLOSE_FDS, "", a=[0])
    p.op(pf.OP_SIGNAL_CREATED, "")
    p.op(pf.OP_WAIT_START, "")
    exec_sh(p, "echo started")
    run = start(runs, p)
    m = run.drive()
    assert m is not None and m.type == pf.MSG_CREATED, m
    return run, fifo


def test_created_init_dies_on_sigterm(busybox_rootfs: Path, tmp_path: Path, runs: list[Init]) -> None:
    run, fifo = created_init(busybox_rootfs, tmp_path, runs)
    os.kill(run.init_pid, signal.SIGTERM)
    assert exit_code(run.wait(run.init_pid)) == 128 + signal.SIGTERM
    with pytest.raises(OSError) as e:  # what `start` sees once the init is gone
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert e.value.errno == errno.ENXIO


def test_created_init_bad_start_byte(busybox_rootfs: Path, tmp_path: Path, runs: list[Init]) -> None:
    run, fifo = created_init(busybox_rootfs, tmp_path, runs)
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"x")
    os.close(fd)
    assert exit_code(run.wait(run.init_pid)) == 1
    assert run.output() == ""


def test_waiting_init_is_small_and_sealed(
    busybox_rootfs: Path, tmp_path: Path, runs: list[Init], record_property: pytest.RecordProperty
) -> None:
    run, fifo = created_init(busybox_rootfs, tmp_path, runs)
    status = Path(f"/proc/{run.init_pid}/status").read_text()
    rss_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    record_property("init_rss_kib", rss_kib)
    record_property("init_binary_bytes", _shim.init_size())
    print(f"\nwaiting ocipy-init: VmRSS {rss_kib} KiB, binary {_shim.init_size()} bytes")
    assert rss_kib < 1536

    exe = f"/proc/{run.init_pid}/exe"
    assert os.readlink(exe).startswith("/memfd:ocipy-init")
    with pytest.raises(OSError) as e:
        fd = os.open(exe, os.O_WRONLY)
        try:
            os.write(fd, b"\x7fELF")
        finally:
            os.close(fd)
    assert e.value.errno in (errno.ETXTBSY, errno.EPERM, errno.EACCES)
    fd = os.open(exe, os.O_RDONLY)
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    finally:
        os.close(fd)
    want = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
    assert seals & want == want

    release(fifo)
    assert run.output() == "started\n"
    assert exit_code(run.wait(run.init_pid)) == 0


def test_corrupt_plans_rejected(runs: list[Init]) -> None:
    p = Plan()
    p.op(pf.OP_SETHOSTNAME, "/hostname", s=["x"])
    good = p.encode()
    bad_offset = bytearray(good)
    struct.pack_into("<I", bad_offset, pf.HEADER.size + 8, 9999)  # s[0] far outside the string table
    no_nul = bytearray(good)
    no_nul[-1] = ord("y")
    cases = [b"NOTAPLAN" + good[8:], good[:-1], bytes(bad_offset), bytes(no_nul)]
    for data in cases:
        run = start(runs, data)
        m = run.drive()
        assert m is not None and (m.type, m.op, m.err) == (pf.MSG_ERROR, -1, errno.EINVAL), (data, m)
        assert m.detail.startswith("plan")
        assert exit_code(run.wait(run.stage0)) == 1


def test_spawn_maps_fds_with_overlaps(tmp_path: Path) -> None:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    out_r, out_w = os.pipe()
    os.dup2(w1, 50)
    os.dup2(w2, 51)
    os.close(w1)
    os.close(w2)
    exe = os.open("/bin/busybox", os.O_PATH | os.O_CLOEXEC)
    try:
        pid, pidfd = _shim.spawn(
            exe,
            ["sh", "-c", "echo A >&50; echo B >&51; ls /proc/self/fd | tr '\\n' ' '"],
            [(out_w, 1), (out_w, 2), (51, 50), (50, 51)],  # swapped: each source is another's destination
        )
    finally:
        for fd in (exe, out_w, 50, 51):
            os.close(fd)
    try:
        _, status = os.waitpid(pid, 0)
        assert exit_code(status) == 0, os.read(out_r, 1000)
        assert os.read(r2, 100) == b"A\n"
        assert os.read(r1, 100) == b"B\n"
        listing = os.read(out_r, 1000).decode().split()
        # exactly the mapped fds, plus the one ls opened for /proc/self/fd (the lowest free: 0)
        assert set(listing) == {"0", "1", "2", "50", "51"}, listing
    finally:
        os.close(pidfd)
        for fd in (r1, r2, out_r):
            os.close(fd)


def test_spawn_reports_exec_failure(tmp_path: Path) -> None:
    plain = tmp_path / "not-executable"
    plain.write_bytes(b"\x7fELF junk")
    fd = os.open(plain, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError) as e:
            _shim.spawn(fd, ["x"], [])
        assert e.value.errno == errno.EACCES
    finally:
        os.close(fd)
    with pytest.raises(OSError) as e:
        _shim.spawn(1023, ["x"], [])  # not an open fd
    assert e.value.errno == errno.EBADF
    with pytest.raises(OSError) as e:
        _shim.spawn(0, ["x"], [(1023, 3)])  # a source that is not open
    assert e.value.errno == errno.EBADF


def test_init_memfd_is_sealed() -> None:
    fd = _shim.init_memfd()
    try:
        assert os.fstat(fd).st_size == _shim.init_size()
        with pytest.raises(PermissionError):
            os.write(fd, b"x")
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
        assert os.pread(fd, 4, 0) == b"\x7fELF"
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(fd)


CLONE_NEWTIME = 0x00000080
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SCHED_BATCH = 3
ADDR_NO_RANDOMIZE = 0x0040000
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")


@pytest.fixture
def pids_cgroup() -> Iterator[Path]:
    if not (PIDS_CGROUP / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 pids hierarchy at /sys/fs/cgroup/pids")
    cg = Path(tempfile.mkdtemp(prefix="ocipy-init-test-", dir=PIDS_CGROUP))
    yield cg
    for _ in range(100):
        try:
            cg.rmdir()
            break
        except OSError:
            time.sleep(0.05)


def test_more_process_and_fs_ops(busybox_rootfs: Path, runs: list[Init], pids_cgroup: Path) -> None:
    """chroot instead of pivot_root, a time namespace, OP_SYNC, a seccomp listener fd, and the small process ops."""
    p = Plan()
    p.op(pf.OP_SETNS, "/linux/namespaces/0", s=["/proc/self/ns/ipc"], a=[CLONE_NEWIPC])
    p.op(pf.OP_UNSHARE, "/linux/namespaces", a=[CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWTIME])
    p.op(pf.OP_TIMENS_OFFSETS, "/linux/timeOffsets", s=["monotonic 86400 0\nboottime 86400 0\n"])
    p.op(pf.OP_CLONE, "/linux/namespaces", a=[0])
    p.op(pf.OP_JOIN_CGROUP, "/linux/cgroupsPath", s=[str(pids_cgroup / "cgroup.procs")])
    rootfs_and_dev(p, busybox_rootfs)
    p.op(
        pf.OP_MKNOD,
        "/linux/devices/9",
        s=[None, "/dev/null"],
        a=[stat.S_IFCHR | 0o600, os.makedev(1, 3), 0, 0],
    )
    p.op(pf.OP_MKDIR, "/x", s=[None, "/a/b/c"], a=[0o711])
    sync = p.op(pf.OP_SYNC, "/x")
    p.op(pf.OP_CHROOT, "/root")
    p.op(pf.OP_REMOUNT_ROOT_RO, "/root/readonly")
    p.op(pf.OP_SETDOMAINNAME, "/domainname", s=["dom.example"])
    p.op(pf.OP_UMASK, "/process/user/umask", a=[0o027])
    p.op(pf.OP_SETSID, "")
    p.op(pf.OP_PERSONALITY, "/linux/personality", a=[ADDR_NO_RANDOMIZE])
    p.op(pf.OP_SCHEDULER, "/process/scheduler", s=["0 0 0"], a=[SCHED_BATCH, 5, 0, 0])
    p.op(pf.OP_IOPRIO, "/process/ioPriority", a=[(2 << 13) | 7])
    p.op(pf.OP_CPU_AFFINITY, "/process/execCPUAffinity/final", s=["0"])
    p.op(pf.OP_NEW_KEYRING, "/process", s=["ocipy-test-keyring"])
    p.op(pf.OP_NO_NEW_PRIVS, "/process/noNewPrivileges")
    listener = p.op(
        pf.OP_SECCOMP,
        "/linux/seccomp",
        s=[p.blob(ALLOW_ALL_BPF)],
        a=[len(ALLOW_ALL_BPF), SECCOMP_FILTER_FLAG_NEW_LISTENER, 1],
    )
    p.op(pf.OP_FIND_EXEC, "/process/args/0", s=["sh", None])
    exec_sh(
        p,
        "echo uptime=$(cut -d. -f1 /proc/uptime); echo domain=$(cat /proc/sys/kernel/domainname);"
        "echo umask=$(umask); echo persona=$(cat /proc/self/personality);"
        "echo nice=$(cut -d' ' -f19 /proc/self/stat) policy=$(cut -d' ' -f41 /proc/self/stat);"
        "echo cpus=$(grep Cpus_allowed_list /proc/self/status | cut -f2);"
        "echo sid=$(cut -d' ' -f6 /proc/self/stat);"
        "echo keyring=$(grep -c ocipy-test-keyring /proc/keys);"
        "echo null=$(stat -c '%a %t:%T' /dev/null); echo dir=$(stat -c %a /a/b/c);"
        "touch /rofile 2>/dev/null && echo rw=yes || echo rw=no; echo cgroup=$(grep pids /proc/self/cgroup)",
    )
    run = start(runs, p)
    assert run.drive() is None
    out = run.output()
    assert exit_code(run.wait(run.init_pid)) == 0, out
    assert [m.op for m in run.synced] == [sync, listener]
    assert len(run.synced[1].fds) == 1  # the seccomp notification listener
    f = fields(out)
    assert int(f["uptime"]) >= 86400, out
    assert f["domain"] == "dom.example"
    assert f["umask"] == "0027"
    assert int(f["persona"], 16) == ADDR_NO_RANDOMIZE
    assert f["nice"] == "5 policy=3"
    assert f["cpus"] == "0"
    assert f["sid"] == "1"
    assert f["keyring"] == "1"
    assert f["null"] == "600 1:3"
    assert f["dir"] == "711"
    assert f["rw"] == "no"
    assert f["cgroup"].endswith(pids_cgroup.name), f["cgroup"]


def test_sync_refused_exits_quietly(busybox_rootfs: Path, runs: list[Init]) -> None:
    p = Plan()
    p.op(pf.OP_SYNC, "/x")
    p.op(pf.OP_SETHOSTNAME, "/hostname", s=["never"])
    run = start(runs, p)
    assert run.drive(sync_err=errno.ECANCELED) is None  # no MSG_ERROR: the caller asked it to stop
    assert exit_code(run.wait(run.stage0)) == 1


def test_chdir_outside_root_refused(busybox_rootfs: Path, tmp_path: Path, runs: list[Init]) -> None:
    """CVE-2024-21626: a leaked host directory fd used as the working directory is caught."""
    leaked = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    p = Plan()
    stage0(p, CLONE_NEWNS | CLONE_NEWPID)
    rootfs_and_dev(p, busybox_rootfs)
    p.op(pf.OP_PIVOT_ROOT, "/root")
    idx = p.op(pf.OP_CHDIR, "/process/cwd", s=["/proc/self/fd/7"])
    exec_sh(p, "pwd")
    try:
        run = start(runs, p, extra_fds=[(leaked, 7)])
    finally:
        os.close(leaked)
    m = run.drive()
    assert m is not None and (m.type, m.op, m.err) == (pf.MSG_ERROR, idx, errno.EPERM), m
    assert "outside the container root" in m.detail
