"""Run ocipy-init with a plan and drive its sync protocol (shim/plan.h).

Used by create (a whole container), by hooks that must run inside the container's namespaces, and later by exec.
Stdlib, planfmt and the shim only, so `start` can use it without paying for validation.
"""

from __future__ import annotations

import _socket  # not `socket`: its import converts every constant to an enum (~8 ms per exec)
import errno
import posix as os  # not `os` (~1 ms on every exec: os.environ and _collections_abc); the same functions
import select
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # `signal` would make enums of its constants too (`enum`, ~1.5 ms per exec): its C half
    import signal as _signal
else:
    import _signal
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
    # `collections.abc` imports the `collections` package (~1.3 ms): annotations only
    from collections.abc import Callable, Iterator, Mapping
    from dataclasses import dataclass, field
else:
    from ocipy.records import dataclass, field

from ocipy import _shim, errors, planfmt
from ocipy.errors import InitError, OcipyError, os_reason
from ocipy.faults import point


@dataclass
class Message:
    type: int
    op: int
    err: int
    pid: int
    detail: str
    fds: list[int] = field(default_factory=list)  # passed with the message (SCM_RIGHTS); the receiver owns them


def report_warnings(plan: planfmt.Plan) -> None:
    """The planner's warnings: config.md says a capability that cannot be granted MUST be logged as a warning (runc
    prints it where it logs, stderr without --log); the others stay in --log (stderr is the container's here)."""
    for pointer, message in getattr(plan, "warnings", ()):
        warn = errors.warning if pointer.startswith("/process/capabilities") else errors.quiet_warning
        warn(f"{pointer}: {message}")


def debug_plan(plan: planfmt.Plan) -> None:
    """--debug: the plan the init executes, op by op, each with the config field it comes from."""
    lines = plan.describe()
    errors.debug(f"plan: {len(lines)} ops for ocipy-init")
    for i, line in enumerate(lines):
        errors.debug(f"plan op {i}: {line}")


_MSG_WORDS = {
    planfmt.MSG_ERROR: "error",
    planfmt.MSG_USERMAP: "user namespace made: id maps wanted",
    planfmt.MSG_PID: "container process exists",
    planfmt.MSG_HOOKS: "namespaces and mounts set up: create hooks may run",
    planfmt.MSG_CREATED: "set up: waiting on the exec fifo for start",
    planfmt.MSG_SYNC: "sync",
}


def describe_message(msg: Message) -> str:
    """One message of the init, in words (for --debug)."""
    words = _MSG_WORDS.get(msg.type, f"message {msg.type}")
    parts = [words, f"after op {msg.op}" if msg.op >= 0 else "", f"pid {msg.pid}" if msg.pid > 0 else ""]
    if msg.fds:
        parts.append(f"{len(msg.fds)} fd(s)")
    if msg.detail:
        parts.append(msg.detail)
    return ", ".join(p for p in parts if p)


# short names of the messages, for fault-injection step names
_MSG_NAMES = {
    planfmt.MSG_ERROR: "error",
    planfmt.MSG_USERMAP: "usermap",
    planfmt.MSG_PID: "pid",
    planfmt.MSG_HOOKS: "hooks",
    planfmt.MSG_CREATED: "created",
    planfmt.MSG_SYNC: "sync",
}
# the messages after which the init waits for MSG_ACK (shim/plan.h)
# MSG_PID too: stage 0 lets the container init go on only once the caller has recorded it (docs/contracts.md)
_AWAITS_ACK = frozenset({planfmt.MSG_USERMAP, planfmt.MSG_PID, planfmt.MSG_HOOKS, planfmt.MSG_SYNC})
_FD_SIZE = 4  # a C int in SCM_RIGHTS
if TYPE_CHECKING:  # a handler of one message: the fds to send back with its MSG_ACK (or None)
    Handler = Callable[[Message], "list[int] | None"]


@dataclass
class Launch:
    """One ocipy-init run. `extra` maps fds of this process onto fd numbers in the child (stdio, preserved fds)."""

    plan: planfmt.Plan
    extra: list[tuple[int, int]] = field(default_factory=list)
    pid0: int = 0  # the init as spawned (stage 0)
    pidfd0: int = -1
    pid: int = 0  # the process reported by MSG_PID (the container init / the joined process)
    pidfd: int = -1
    trace: bool = False  # --debug: the init sends MSG_TRACE after each op (until seccomp or created)
    _sock: _socket.socket | None = None

    def start(self) -> None:
        """Spawn the init. The sync and plan fds are numbered after every fd in `extra` so none collides."""
        top = max([dst for _, dst in self.extra] + [2]) + 1
        parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        self._sock = parent
        plan_fd = os.memfd_create("ocipy-plan", os.MFD_CLOEXEC)
        exec_fd = -1
        try:
            os.write(plan_fd, self.plan.encode())
            os.lseek(plan_fd, 0, 0)  # SEEK_SET
            exec_fd = _shim.init_memfd()
            fdmap = [*self.extra, (child.fileno(), top), (plan_fd, top + 1)]
            argv = ["ocipy-init", str(top), str(top + 1)] + (["trace"] if self.trace else [])
            self.pid0, self.pidfd0 = _shim.spawn(exec_fd, argv, fdmap)
        finally:
            child.close()
            os.close(plan_fd)
            if exec_fd >= 0:
                os.close(exec_fd)

    def messages(self) -> Iterator[Message]:
        """Messages from the init until EOF (the exec happened, or every sender exited)."""
        assert self._sock is not None
        while True:
            try:
                raw, fds = self.recv_with_fds()
            except ConnectionResetError:
                return
            if not raw:
                return
            if len(raw) != planfmt.SYNC_MSG.size:
                for fd in fds:
                    os.close(fd)
                raise OcipyError("ocipy-init sent a malformed message")
            mtype, op, err, pid, detail = planfmt.SYNC_MSG.unpack(raw)
            msg = Message(mtype, op, err, pid, detail.split(b"\0", 1)[0].decode(errors="replace"), fds)
            if mtype == planfmt.MSG_PID:
                self.pid = pid
                self.pidfd = os.pidfd_open(pid)
            yield msg
            if mtype == planfmt.MSG_PID:
                self._reap0()  # stage 0 exits once acked (the caller acks before it asks for the next message)

    def recv_with_fds(self, max_fds: int = 4) -> tuple[bytes, list[int]]:
        """One sync message and the fds passed with it (MSG_SYNC of OP_SECCOMP carries the listener fd)."""
        assert self._sock is not None
        raw, ancdata, _flags, _addr = self._sock.recvmsg(
            planfmt.SYNC_MSG.size, _socket.CMSG_LEN(max_fds * _FD_SIZE), _socket.MSG_CMSG_CLOEXEC
        )
        fds: list[int] = []
        for level, kind, data in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                whole = len(data) - len(data) % _FD_SIZE
                fds += [
                    int.from_bytes(data[i : i + _FD_SIZE], sys.byteorder, signed=True)
                    for i in range(0, whole, _FD_SIZE)
                ]
        return raw, fds

    def ack(self, ok: bool = True, fds: list[int] | None = None) -> None:
        """Let the init go on; `fds` travel with the message (SCM_RIGHTS), e.g. idmapped mount trees."""
        assert self._sock is not None
        data = planfmt.SYNC_MSG.pack(planfmt.MSG_ACK, -1, 0 if ok else errno.ECANCELED, 0, b"")
        if fds:
            rights = b"".join(fd.to_bytes(_FD_SIZE, sys.byteorder, signed=True) for fd in fds)
            self._sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        else:
            self._sock.send(data)

    def drive(self, handlers: Mapping[int, Handler] | None = None, until: int = -1, trace: str = "") -> bool:
        """The one loop over the init's messages (create, exec, hooks). MSG_ERROR is raised as the one line
        `describe_error` makes; any other message goes to its handler, if any; a message the init waits on (USERMAP,
        HOOKS, SYNC) is answered with MSG_ACK after its handler, carrying the fds the handler returns (closed once
        sent). Fds that came with a message are closed after its handler. True once `until` arrived, False at EOF.
        `trace`: the verb, for the fault-injection step names (`create.got-pid`, ocipy/faults.py)."""
        for msg in self.messages():
            if msg.type == planfmt.MSG_TRACE:  # --debug only: an op done; no reply, no fault-injection point
                name = planfmt.NAMES.get(self.plan.ops[msg.op].code, "?") if 0 <= msg.op < len(self.plan.ops) else "?"
                errors.debug(f"init: op {msg.op} done: {name} {self.plan.field_of(msg.op) or '-'}")
                continue
            if trace:
                point(f"{trace}.got-{_MSG_NAMES.get(msg.type, msg.type)}")
            if errors.debug_enabled():
                errors.debug(f"init: {describe_message(msg)}")
            if msg.type == planfmt.MSG_ERROR:
                for fd in msg.fds:
                    os.close(fd)
                raise self.init_error(msg)
            handler = (handlers or {}).get(msg.type)
            try:
                reply = handler(msg) if handler is not None else None
            finally:
                for fd in msg.fds:
                    os.close(fd)
            if msg.type in _AWAITS_ACK:
                try:
                    self.ack(fds=reply)
                finally:
                    for fd in reply or ():
                        os.close(fd)
            if msg.type == until:
                return True
        return False

    def init_error(self, msg: Message) -> InitError:
        """The init's MSG_ERROR as an InitError carrying the op, the errno and the field, worded by `describe_error`."""
        pointer = (self.plan.field_of(msg.op) or "") if msg.op >= 0 else ""
        return InitError(self.describe_error(msg), msg.op, msg.err, pointer, msg.detail)

    def describe_error(self, msg: Message) -> str:
        """One line naming the config field: `/mounts/3 (proc on /proc): mount: operation not permitted`."""
        reason = os_reason(msg.err) if msg.err else "failed"
        if msg.op < 0:
            return f"ocipy-init: {msg.detail or 'failed'}: {reason}"
        field_ = self.plan.field_of(msg.op) or "runtime"
        what = self.plan.what[msg.op] if msg.op < len(self.plan.what) else ""
        head = f"{field_} ({what})" if what else field_
        if msg.detail.startswith(("executable file not found", "no such file or directory")):
            return f"{head}: {msg.detail}"
        return f"{head}: {msg.detail}: {reason}" if msg.detail else f"{head}: {reason}"

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _reap0(self) -> None:
        if self.pid0 > 0:
            try:
                os.waitpid(self.pid0, 0)
            except ChildProcessError:
                pass
            self.pid0 = 0
        if self.pidfd0 >= 0:
            os.close(self.pidfd0)
            self.pidfd0 = -1

    def abort(self) -> None:
        """Kill and reap whatever this launch started: both the stage-0 process and the reported one."""
        self.close()
        for pidfd in (self.pidfd, self.pidfd0):
            if pidfd >= 0:
                try:
                    _signal.pidfd_send_signal(pidfd, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid in (self.pid, self.pid0):
            if pid > 0:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        self.release()

    def release(self) -> None:
        """Forget the processes without touching them (they belong to the caller's subreaper from now on)."""
        for pidfd in (self.pidfd, self.pidfd0):
            if pidfd >= 0:
                os.close(pidfd)
        self.pidfd = self.pidfd0 = -1
        self.pid0 = 0

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the reported process to exit; its wait status, or None on timeout."""
        if self.pidfd >= 0:
            ready, _, _ = select.select([self.pidfd], [], [], timeout)
            if not ready:
                return None
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        return status


def exit_code(status: int) -> int:
    """A wait status as a shell exit code: the status, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def write_id_maps(pid: int, uid_maps: str, gid_maps: str) -> None:
    """Write /proc/PID/{uid_map,gid_map} for the init's new user namespace.

    Root (in the initial user namespace, or uid 0 of a rootless engine's namespace) writes them directly and
    setgroups stays allowed. An unprivileged caller (euid != 0) may map only its own id directly, and must deny
    setgroups first (the kernel's rule since 3.19; runc does the same for a single gid); any other map goes through
    the setuid helpers newuidmap/newgidmap (uidmap package), which check /etc/subuid and /etc/subgid."""
    unprivileged = os.geteuid() != 0
    for name, text, own in (("uid_map", uid_maps, os.geteuid()), ("gid_map", gid_maps, os.getegid())):
        if not text:
            continue
        pointer = "/linux/uidMappings" if name == "uid_map" else "/linux/gidMappings"
        if unprivileged and not _maps_only(text, own):
            _run_map_helper("newuidmap" if name == "uid_map" else "newgidmap", pid, text, pointer)
            continue
        if unprivileged and name == "gid_map":
            _write_proc(pid, "setgroups", "deny", "/linux/gidMappings")
        _write_proc(pid, name, text, pointer)


def _maps_only(text: str, host_id: int) -> bool:
    """The map is one line mapping exactly `host_id` (what an unprivileged process may write itself)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and len(lines[0]) == 3 and lines[0][1:] == [str(host_id), "1"]


def _write_proc(pid: int, name: str, text: str, pointer: str) -> None:
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise OcipyError(f"{pointer}: write {name}: {os_reason(exc)}") from None


def _run_map_helper(helper: str, pid: int, text: str, pointer: str) -> None:
    import shutil
    import subprocess

    path = shutil.which(helper, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        raise OcipyError(
            f"{pointer}: mapping ids other than your own needs {helper} (Debian package uidmap); it is not installed"
        )
    argv = [path, str(pid)] + text.split()
    p = subprocess.run(argv, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        why = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        raise OcipyError(f"{pointer}: {helper}: {why} (ranges come from /etc/sub{helper[3:6]})")
