"""A process in the foreground: signals passed on to it, and the pty proxied when the caller gave no console
socket (`run`, `exec`, foreground `restore`)."""

from __future__ import annotations

import gc
import posix as os  # not `os` (~1 ms on every foreground exec); the same functions
import select

TYPE_CHECKING = False
if TYPE_CHECKING:  # `signal` makes enums of its constants (`enum`, ~1.5 ms on every exec): its C half
    import signal as _signal
else:
    import _signal

from ocipy.errors import OcipyError
from ocipy.launch import Launch, exit_code

if TYPE_CHECKING:
    import socket

# Signals a foreground run passes on to the container process instead of dying from them.
FORWARDED = (
    _signal.SIGINT,
    _signal.SIGTERM,
    _signal.SIGHUP,
    _signal.SIGQUIT,
    _signal.SIGUSR1,
    _signal.SIGUSR2,
    _signal.SIGWINCH,
    _signal.SIGCONT,
    _signal.SIGALRM,
)

_pending: list[int] = []  # signals that came before the process existed
_master = -1  # the proxied pty master (SIGWINCH resizes it)


def receive_master(sock: socket.socket) -> int:
    import socket

    try:
        _msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1, socket.MSG_CMSG_CLOEXEC)
    finally:
        sock.close()
    if not fds:
        raise OcipyError("the pty master did not arrive")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]


def forward_signals(launch: Launch, proxied: bool) -> None:
    def forward(signum: int, _frame: object) -> None:
        if signum == _signal.SIGWINCH and proxied:
            if _master >= 0:
                _copy_winsize(0, _master)
            return
        if launch.pidfd < 0:
            _pending.append(signum)
            return
        _send(launch.pidfd, signum)

    for sig in FORWARDED:
        _signal.signal(sig, forward)


def _send(pidfd: int, signum: int) -> None:
    try:
        _signal.pidfd_send_signal(pidfd, signum)
    except OSError:  # ProcessLookupError too: the process is gone
        pass


def flush_pending(launch: Launch) -> None:
    while _pending:
        _send(launch.pidfd, _pending.pop(0))


def restore_signals() -> None:
    for sig in FORWARDED:
        _signal.signal(sig, _signal.SIG_DFL)


def collect_from_now() -> None:
    """The cyclic collector back on for a wait that may last days (cli.entry's GC policy), for what is made from
    now on. Everything allocated while it was off (the command's modules and work, ~4,500 objects for an exec) is
    frozen first: the first allocation after a plain gc.enable() walked all of it (~0.3 ms of an exec's ~17 ms of
    CPU, more for `run`), for objects that live until exit anyway (reference counting still frees them)."""
    gc.freeze()
    gc.enable()


def wait(launch: Launch, master: int, failure: int) -> int:
    """Proxy the pty master (when there is one) until the process exits; its exit code (`failure` when unknown)."""
    global _master
    _master = master
    collect_from_now()  # the command's work is done
    try:
        if master >= 0:
            _proxy(master, launch.pidfd)
        status = launch.wait()
    finally:
        restore_signals()
        if master >= 0:
            _master = -1
            os.close(master)
    return exit_code(status) if status is not None else failure


def _copy_winsize(src: int, dst: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _proxy(master: int, pidfd: int) -> None:
    """Copy our stdin to the pty master and the master to our stdout until the process exits (runc does this for a
    foreground `exec -t` without a console socket). Our terminal, when stdin is one, is in raw mode meanwhile."""
    import contextlib  # a terminal only
    import termios
    import tty

    saved = None
    if os.isatty(0):
        _copy_winsize(0, master)
        with contextlib.suppress(termios.error):
            saved = termios.tcgetattr(0)
            tty.setraw(0)
    try:
        os.set_blocking(master, False)
        watch = [master, pidfd, 0]
        exited = False
        while True:
            try:
                ready, _, _ = select.select(watch, [], [], 0.05 if exited else None)
            except InterruptedError:
                continue
            if exited and not ready:
                return  # the process is gone and the master has nothing more to say
            if pidfd in ready:
                exited = True
                watch.remove(pidfd)
            if master in ready and not _pump(master, 1):
                return
            if 0 in ready and not _pump(0, master):
                watch.remove(0)  # stdin closed: keep showing the output
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _pump(src: int, dst: int) -> bool:
    """Move one read of `src` to `dst`; False at EOF (a pty master reports EIO once every peer is closed)."""
    try:
        data = os.read(src, 65536)
    except BlockingIOError:
        return True
    except OSError:
        return False
    if not data:
        return False
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(dst, view) :]
        except BlockingIOError:
            select.select([], [dst], [])
        except OSError:
            return True  # the reader went away; keep draining the other side
    return True
