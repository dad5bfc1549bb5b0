"""`--pidfd-socket PATH` (create, run, exec; runc 1.2+): hand a pidfd of the container's process to a listener.

runc's protocol: the runtime connects (SOCK_STREAM) to PATH before it starts anything, so a bad path fails the
command early; once the process exists, one message goes over that connection carrying a pidfd of it (SCM_RIGHTS),
with the payload `standard` for the container's init (create, run) or `setns` for an exec'd process; then the
connection is closed. runc's init sends its own pidfd; ocipy's parent sends one it opened on the same process (the
pid the init reported, checked by pidfd_open before the init may exec anything), which is the same kernel object.
"""

from __future__ import annotations

import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

from .errors import OcipyError, os_reason


def connect(path: str | None) -> socket.socket | None:
    """The connection to PATH, or None when no --pidfd-socket was given."""
    if not path:
        return None
    from .handoff import connect_unix

    return connect_unix(path, "pidfd socket")


def send(sock: socket.socket, pid: int, pidfd: int, kind: str) -> None:
    """Send a pidfd of `pid` (`pidfd` when the caller holds one, else a new one) with the payload `kind`."""
    import socket

    own = -1
    try:
        if pidfd < 0:
            own = pidfd = os.pidfd_open(pid)
        socket.send_fds(sock, [kind.encode()], [pidfd])
    except OSError as exc:
        raise OcipyError(f"pidfd socket: {os_reason(exc)}") from None
    finally:
        if own >= 0:
            os.close(own)
        sock.close()
