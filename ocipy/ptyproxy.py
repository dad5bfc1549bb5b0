"""Foreground `run` with `process.terminal` and no --console-socket: ocipy takes the pty master itself and proxies it
to the caller's stdin/stdout, as runc does (the README's `spec` then `run` flow).

The caller's terminal (when stdin is one) goes to raw mode for the run, so keys (^C, ^Z) reach the container's
terminal, and comes back as it was; its window size is copied to the pty at the start and on every SIGWINCH.
Stdlib only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
from collections.abc import Iterator

WINSZ = struct.Struct("HHHH")


def receive_master(sock: socket.socket) -> int:
    """The pty master the init sent on the console socket (one message, SCM_RIGHTS)."""
    _msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError(errno.EBADMSG, "no pty master on the console socket")
    return fds[0]


def copy_window_size(src: int, master: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, WINSZ.pack(0, 0, 0, 0))
        if WINSZ.unpack(size)[:2] != (0, 0):
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """fd in raw mode for the block, when it is a terminal; restored afterwards whatever happens."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        import tty

        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except InterruptedError:
            continue


def proxy(master: int, pidfd: int, stdin: int = 0, stdout: int = 1) -> None:
    """Copy stdin to the master and the master to stdout until the process of `pidfd` has exited and the master has
    nothing left to read."""
    old = signal.signal(signal.SIGWINCH, lambda _s, _f: copy_window_size(stdin, master))
    copy_window_size(stdin, master)
    inputs = [master, pidfd]
    with contextlib.suppress(OSError):
        os.fstat(stdin)
        inputs.append(stdin)
    exited = False
    try:
        with raw_terminal(stdin):
            while True:
                try:
                    ready, _, _ = select.select(inputs, [], [], 0.05 if exited else None)
                except InterruptedError:
                    continue
                if exited and master not in ready:
                    return  # the process is gone and its output is drained
                if pidfd in ready:
                    exited = True
                    inputs = [master]
                if master in ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError as exc:
                        if exc.errno != errno.EIO:  # EIO: no slave is open any more
                            raise
                        data = b""
                    if not data:
                        if exited:
                            return
                        inputs = [i for i in inputs if i != master]
                        continue
                    _write_all(stdout, data)
                if stdin in ready:
                    data = os.read(stdin, 65536)
                    if not data:
                        inputs = [i for i in inputs if i != stdin]  # EOF: the container keeps its terminal
                    else:
                        _write_all(master, data)
    finally:
        signal.signal(signal.SIGWINCH, old)
