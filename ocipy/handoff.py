"""What the runtime hands its caller, and what it takes from it: the pid file, the console socket (the pty master
goes there), the seccomp listener (sent to listenerPath), systemd's LISTEN_FDS and the fds kept open
(`--preserve-fds`). Used by create, exec and restore.
"""

from __future__ import annotations

from ocipy import posixlite as px  # not `os` (~1 ms: exec, a Kubernetes probe, imports this module)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Any

from ocipy.errors import OcipyError, os_reason


def listen_fds() -> int:
    """systemd socket activation: LISTEN_FDS counts only when LISTEN_PID is this process."""
    if px.getenv("LISTEN_PID") != str(px.getpid()):
        return 0
    try:
        return max(0, int(px.getenv("LISTEN_FDS", "0")))
    except ValueError:
        return 0


def write_pid_file(path: str, pid: int) -> None:
    """The decimal pid with no newline, atomically (containerd and runtime-tools read the raw bytes)."""
    path = px.abspath(path)
    parent, _, name = path.rpartition("/")  # absolute and normalised: "/x" gives ("", "x")
    tmp = f"{parent}/.{name}.{px.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        px.rename(tmp, path)
    except OSError as exc:
        try:
            px.unlink(tmp)
        except OSError:
            pass
        raise OcipyError(f"pid file {path}: {os_reason(exc)}") from None


def connect_console(path: str) -> socket.socket:
    """The caller's --console-socket, connected: the init sends the pty master there (SCM_RIGHTS)."""
    return connect_unix(path, "console socket")


def connect_unix(path: str, what: str) -> socket.socket:
    """A stream connection to the caller's AF_UNIX socket at `path` (`what`: its name in the error line)."""
    import socket  # here: `socket` costs ~8 ms at import

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise OcipyError(f"{what} {path}: {os_reason(exc)}") from None
    return sock


def check_fds(fdmap: list[tuple[int, int]]) -> None:
    """Every fd the child is to inherit is open (--preserve-fds counts fds the caller must have passed)."""
    for src, _ in fdmap:
        try:
            px.fstat(src)
        except OSError:
            raise OcipyError(f"--preserve-fds: fd {src} is not open") from None


SECCOMP_LISTENER_TIMEOUT = 10.0


def send_seccomp_listener(spec: Any, state: dict[str, Any], pid: int, fd: int) -> None:
    """config-linux.md "The Container Process State": one connection to listenerPath, one JSON document with the
    seccomp listener fd (SCM_RIGHTS, named in `fds`), then close. A failure fails create."""
    import json
    import socket

    seccomp = spec.linux.seccomp if spec.linux is not None else None
    path = seccomp.listener_path if seccomp is not None else None
    if seccomp is None or not path:
        raise OcipyError("/linux/seccomp/listenerPath: the init sent a seccomp listener but no listenerPath is set")
    oci_state = {k: state[k] for k in ("ociVersion", "id", "status", "pid", "bundle", "annotations") if k in state}
    doc: dict[str, Any] = {"ociVersion": spec.oci_version, "fds": ["seccompFd"], "pid": pid, "state": oci_state}
    if seccomp.listener_metadata:
        doc["metadata"] = seccomp.listener_metadata
    payload = json.dumps(doc).encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(SECCOMP_LISTENER_TIMEOUT)
        sock.connect(path)
        sent = socket.send_fds(sock, [payload], [fd])
        if sent < len(payload):
            sock.sendall(payload[sent:])  # the fd went with the first part, as the spec requires
    except OSError as exc:
        reason = os_reason(exc)
        raise OcipyError(f"/linux/seccomp/listenerPath: {path}: {reason}") from None
    finally:
        sock.close()
