"""Driving CRIU as runc does: `criu swrk 3`, one request over a SOCK_SEQPACKET socketpair, answers and notifications
back (docs/checkpoint.md says why RPC rather than CRIU's command line).

The child's fds: 0-2 as the caller says (restore gives CRIU the stdio it hands to the restored process, through
`inherit_fd`), 3 the RPC socket, 4... any extra fds (an external network namespace). Fds named *inside* the request
(`images_dir_fd`, `work_dir_fd`, `status_fd`) are ours: CRIU opens them as /proc/<our pid>/fd/N (the socket's peer).
"""

from __future__ import annotations

import array
import contextlib
import os
import shutil
import socket
from collections.abc import Callable
from typing import Any, Self

from ocipy.criu import messages as m
from ocipy.criu import wire
from ocipy.errors import OcipyError, os_reason

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_RECV_SIZE = 1 << 20
_MAX_FDS = 16

# notify handler: (script, pid, fds received with it) -> None; raise OcipyError to make CRIU abort
Notify = Callable[[str, int, list[int]], None]


class CriuFailed(OcipyError):
    """CRIU said no (or died). `reason` is its own words; the caller adds which log to read."""

    def __init__(self, reason: str, errno_: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errno = errno_


def find_criu(name: str | None) -> str:
    """The criu binary: `--criu PATH` (a path, or a name looked up on PATH, then the usual sbin dirs)."""
    name = name or "criu"
    if "/" in name:
        if os.access(name, os.X_OK) and os.path.isfile(name):
            return os.path.abspath(name)
        raise OcipyError(f"criu {name}: not found or not executable (install CRIU >= 3.11, or pass --criu PATH)")
    search = os.pathsep.join(p for p in (os.environ.get("PATH", ""), DEFAULT_PATH) if p)
    found = shutil.which(name, path=search)
    if found is None:
        raise OcipyError(f"criu: {name!r} not found on PATH ({search}); install CRIU >= 3.11 or pass --criu PATH")
    return found


def child_env() -> dict[str, str]:
    """CRIU runs iptables-restore, tar and ip by name: give it a PATH even when our caller gave none."""
    env = dict(os.environ)
    path = env.get("PATH", "")
    env["PATH"] = f"{path}:{DEFAULT_PATH}" if path else DEFAULT_PATH
    return env


class Session:
    """One `criu swrk` process and its socket. Use as a context manager: the process is always waited for.
    `extra_fds` become fds 4, 5, ... in CRIU."""

    def __init__(self, criu: str, stdio: tuple[int, int, int] = (0, 1, 2), extra_fds: list[int] | None = None) -> None:
        self.criu = criu
        self.stdio = stdio
        self.extra_fds = list(extra_fds or [])
        self.pid = 0
        self.sock: socket.socket | None = None
        self.status: int | None = None

    def __enter__(self) -> Self:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sources = [*self.stdio, theirs.fileno(), *self.extra_fds]
            # dup every source above the targets first, so no dup2 overwrites a source not yet placed
            temps = [_dup_high(fd, 64 + len(sources)) for fd in sources]
            try:
                actions = [(os.POSIX_SPAWN_DUP2, tmp, target) for target, tmp in enumerate(temps)]
                self.pid = os.posix_spawn(self.criu, [self.criu, "swrk", "3"], child_env(), file_actions=actions)
            except OSError as exc:
                raise OcipyError(f"criu {self.criu}: {os_reason(exc)}") from None
            finally:
                for tmp in temps:
                    os.close(tmp)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # so a CRIU that dies gives us EOF, never a hang
        self.sock = ours
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            self.sock.close()
            self.sock = None
        self.wait()

    def wait(self) -> int | None:
        if self.pid and self.status is None:
            while True:
                try:
                    _, status = os.waitpid(self.pid, 0)
                except ChildProcessError:
                    status = 0
                except InterruptedError:
                    continue
                break
            self.status = status
        return self.status

    def _send(self, message: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.send(wire.encode(m.REQ, message))

    def _recv(self) -> tuple[dict[str, Any] | None, list[int]]:
        assert self.sock is not None
        fds = array.array("i")
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(_RECV_SIZE, socket.CMSG_SPACE(_MAX_FDS * fds.itemsize))
        except ConnectionResetError:
            return None, []
        for level, ctype, cdata in anc:
            if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
                usable = len(cdata) - len(cdata) % fds.itemsize
                fds.frombytes(cdata[:usable])
        if not data:
            return None, list(fds)
        return wire.decode(m.RESP, data), list(fds)

    def call(self, request: dict[str, Any], notify: Notify | None = None) -> dict[str, Any]:
        """Send one request; answer notifications with `notify`; return CRIU's final answer or raise CriuFailed."""
        self._send(request)
        failure: OcipyError | None = None
        while True:
            resp, fds = self._recv()
            if resp is None:
                for fd in fds:
                    os.close(fd)
                if failure is not None:
                    raise failure
                status = self.wait()
                raise CriuFailed(f"criu exited ({_describe_status(status)}) without an answer")
            rtype = resp.get("type", m.EMPTY)
            if rtype == m.NOTIFY and resp.get("success", False):
                note = resp.get("notify") or {}
                ok = True
                if failure is None:
                    try:
                        if notify is not None:
                            notify(note.get("script", ""), int(note.get("pid", 0)), fds)
                    except OcipyError as exc:
                        failure, ok = exc, False
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                self._send({"type": m.NOTIFY, "notify_success": ok})
                continue
            for fd in fds:
                os.close(fd)
            if failure is not None:
                raise failure
            if not resp.get("success", False):
                raise CriuFailed(resp.get("cr_errmsg") or "", int(resp.get("cr_errno", 0) or 0))
            return resp


def _dup_high(fd: int, minimum: int) -> int:
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, minimum)
    except OSError as exc:
        raise OcipyError(f"fd {fd}: {os_reason(exc)}") from None


def _describe_status(status: int | None) -> str:
    if status is None:
        return "status unknown"
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _quick_call(criu: str, request: dict[str, Any]) -> dict[str, Any]:
    """A request that needs no stdio (VERSION, FEATURE_CHECK): CRIU's fds 0-2 on /dev/null."""
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        with Session(criu, stdio=(null, null, null)) as s:
            return s.call(request)
    finally:
        os.close(null)


def version(criu: str) -> tuple[int, int, int]:
    """(major, minor, sublevel) through the VERSION request (CRIU >= 3.0)."""
    v = _quick_call(criu, {"type": m.VERSION}).get("version") or {}
    return int(v.get("major_number", 0)), int(v.get("minor_number", 0)), int(v.get("sublevel", 0) or 0)


def features(criu: str, wanted: dict[str, bool]) -> dict[str, bool]:
    got = _quick_call(criu, {"type": m.FEATURE_CHECK, "features": wanted}).get("features") or {}
    return {k: bool(got.get(k, False)) for k in wanted}
