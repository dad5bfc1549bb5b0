"""/proc/PID/stat parsing and pidfd helpers. Stdlib only.

A pid alone is not an identity: pids are reused. A process is "ours" when /proc/PID/stat shows the start time
(field 22, clock ticks since boot) recorded at create, and signals go through a pidfd opened and then re-checked, so
a recycled pid is never hit.
"""

from . import posixlite as px


class Stat:
    """The two fields of /proc/PID/stat ocipy needs. (No NamedTuple: `typing` is too slow to import here.)"""

    __slots__ = ("starttime", "state")

    def __init__(self, state: str, starttime: int) -> None:
        self.state = state  # R, S, D, Z, X, T, t, ...
        self.starttime = starttime


def read_stat(pid: int) -> Stat | None:
    """The state letter and start time of `pid`, or None when there is no such process."""
    if pid <= 0:
        return None
    # raw reads, not open(): an io object and its four extra syscalls are a tenth of this function (every verb calls
    # it to derive the status)
    try:
        fd = px.open(f"/proc/{pid}/stat", px.O_RDONLY | px.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        data = px.read_all(fd)
    except ProcessLookupError:  # exited between the open and the read
        return None
    finally:
        px.close(fd)
    # comm (field 2) may hold spaces and parentheses: fields resume after the LAST ')'
    end = data.rfind(b")")
    if end < 0:
        return None
    fields = data[end + 2 :].split()
    # fields[0] is field 3 (state); field 22 (starttime) is fields[19]
    if len(fields) < 20:
        return None
    return Stat(fields[0].decode("ascii", "replace"), int(fields[19]))


def starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: what `create` records so later commands can tell the init from a reused pid."""
    st = read_stat(pid)
    return None if st is None else st.starttime


def is_alive(pid: int, starttime: int | None) -> bool:
    """True when `pid` exists, is not a zombie or dead, and (when given) started at `starttime`."""
    st = read_stat(pid)
    if st is None or st.state in ("Z", "X", "x"):
        return False
    return starttime is None or st.starttime == starttime


def pidfd_open(pid: int, starttime: int | None) -> int | None:
    """A pidfd for `pid` if it is still the process that started at `starttime`; None when it is gone."""
    if pid <= 0:
        return None
    try:
        fd = px.pidfd_open(pid)
    except ProcessLookupError:
        return None
    # the check after opening pins the identity: the fd cannot follow a recycled pid
    if not is_alive(pid, starttime):
        px.close(fd)
        return None
    return fd


def send_signal(pidfd: int, sig: int) -> bool:
    """Signal through a pidfd; False when the process has already exited."""
    # `_signal` is the C half of `signal`; importing `signal` itself pulls in enum (~2 ms) for nothing
    _signal = __import__("_signal")
    try:
        _signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return False
    return True


def signal(pid: int, starttime: int | None, sig: int) -> bool:
    """Signal `pid` if it is still the process that started at `starttime` (through a pidfd); False when it is gone."""
    fd = pidfd_open(pid, starttime)
    if fd is None:
        return False
    try:
        return send_signal(fd, sig)
    finally:
        px.close(fd)


def wait_exit(pidfd: int, timeout: float) -> bool:
    """Wait until the process behind `pidfd` has exited (a zombie counts); False on timeout."""
    import select

    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def wait_gone(pid: int, starttime: int | None, timeout: float) -> bool:
    """Wait for the process to exit, by pidfd when possible; True once it is gone."""
    fd = pidfd_open(pid, starttime)
    if fd is None:
        return True
    try:
        if wait_exit(fd, timeout):
            return True
    finally:
        px.close(fd)
    return not is_alive(pid, starttime)
