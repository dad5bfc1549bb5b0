"""The store's writes and removals (split from ocipy/store.py, whose methods call these): a new container directory
(undoing a half-made one in its way), the atomic replace of a container's files, undoing a half-made container,
removing a directory. The verbs that only read and signal (state, list, kill, pause, resume, start) never load this
module: it is ~30% of the store's code (~40 us of each of them at start-up).

Layout and rules: docs/contracts.md ("State store", "Recovery"). Stdlib only.
"""

import time

from . import posixlite as px
from . import procfs
from .errors import OcipyError
from .state import KILL_TIMEOUT
from .store import Container, _os_error, validate_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .store import Store


def create_dir(st: "Store", cid: str) -> Container:
    """Make `<root>/<id>` (0700) and return it locked; EEXIST -> `container with given ID already exists`,
    unless what is there is a half-made container whose create is gone: that is undone first (recovery)."""
    validate_id(cid)
    path = px.join(st.root, cid)
    try:
        if not px.isdir(st.root):  # the usual case: the root exists, and create does without `os` (~1.2 ms)
            import os

            os.makedirs(st.root, mode=0o700, exist_ok=True)
    except OSError as exc:
        from .rootless import explain_root_error

        raise OcipyError(explain_root_error(st.root, exc, st.root_given)) from None
    try:
        for _ in range(3):
            try:
                px.mkdir(path, 0o700)
                break
            except FileExistsError:
                _recover(st, cid)
        else:
            raise OcipyError("container with given ID already exists")
    except PermissionError as exc:
        from .rootless import explain_root_error

        raise OcipyError(explain_root_error(st.root, exc, st.root_given)) from None
    except OSError as exc:
        raise _os_error(path, exc) from None
    c = Container(st, cid, st._open_fd(cid))
    c.lock()
    return c


def _recover(st: "Store", cid: str) -> None:
    """An existing `<root>/<id>`: undo it when it is a half-made container nobody works on, else EEXIST."""
    try:
        old = st.open(cid)
    except OcipyError:
        return  # gone meanwhile: mkdir again
    try:
        if not old.try_lock() or old.journal() is None:
            raise OcipyError("container with given ID already exists")
        old.undo_create()
    finally:
        old.close()


def write_file(c: "Container", name: str, data: bytes) -> None:
    """Atomically replace a file of the container dir: temp file, rename (so a reader, and whoever comes after a
    killed command, sees the old file or the new one, never a torn one). An OS error names the file.

    No fsync, as runc (issue 15: the file's fsync cost ~0.5 ms of wall time per record, five in a create, and an
    fsync'd file's blocks made its unlink at delete ~3x slower on a disk-backed /run). It protects only against a
    power cut, which takes every process and cgroup a record names with it; what it can leave is an old record
    (naming what is gone) or, for a file's first write, a missing or empty one, which `read_state` reads as a
    create that recorded nothing: delete and the next create remove the directory (docs/contracts.md)."""
    tmp = f".{name}.{px.getpid()}.tmp"
    try:
        fd = px.open(tmp, px.O_WRONLY | px.O_CREAT | px.O_TRUNC | px.O_CLOEXEC | px.O_NOFOLLOW, 0o600, dir_fd=c.fd)
        try:
            try:
                view = memoryview(data)
                while view:  # a short write (a nearly full disk) is not the end
                    view = view[px.write(fd, view) :]
            finally:
                px.close(fd)  # may report a deferred write error (NFS)
            px.rename(tmp, name, src_dir_fd=c.fd, dst_dir_fd=c.fd)
        except BaseException:
            try:
                px.unlink(tmp, dir_fd=c.fd)  # whatever failed, no temp file stays
            except OSError:
                pass
            raise
    except OSError as exc:  # ENOSPC, EDQUOT, EROFS, EIO ...: the file and the reason
        raise _os_error(px.join(c.dir, name), exc) from None


def remove(c: "Container") -> None:
    """Remove everything in the directory, then the directory itself."""
    _clear_dir(c.fd)
    try:
        px.rmdir(c.dir)
    except FileNotFoundError:
        pass
    c._state = None


def undo_create(c: "Container") -> None:
    """Undo what an uncommitted create made, whatever instant it died at, then remove the directory. The caller
    holds the lock (so that create is gone). Order: processes (the recorded init, everything in the owned
    cgroups: the init joins them before it forks), then the cgroups (owned, then planned: rmdir only takes
    empty ones, and nothing is killed in a planned one), then the directory (fifo and state with it). Net
    devices and mounts live in the init's namespaces and go with its last process."""
    journal = c.journal() or {}
    cgroup = c.cgroup()
    init = procfs.pidfd_open(c.pid, c.starttime) if c.pid > 0 else None
    try:
        if init is not None:
            procfs.send_signal(init, 9)
        deadline = time.monotonic() + KILL_TIMEOUT
        while cgroup.populated() and time.monotonic() < deadline:
            cgroup.kill(9)
            time.sleep(0.002)
        if init is not None and not procfs.wait_exit(init, max(0.0, deadline - time.monotonic())):
            raise OcipyError(f"container init (pid {c.pid}) did not exit after SIGKILL")
    finally:
        if init is not None:
            px.close(init)
    cgroup.remove()
    from .cgroups.driver import driver_for

    planned = journal.get("cgroup")
    for d in reversed(driver_for(planned).dirs() if isinstance(planned, dict) else []):
        try:
            px.rmdir(d)
        except OSError:
            pass  # not made, or not empty: then not ours
    c.remove()


def _clear_dir(dirfd: int) -> None:
    for name in px.listdir(dirfd):
        try:
            px.unlink(name, dir_fd=dirfd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            sub = px.open(
                name,
                px.O_RDONLY | px.O_DIRECTORY | px.O_NOFOLLOW | px.O_CLOEXEC,
                dir_fd=dirfd,
            )
            try:
                _clear_dir(sub)
            finally:
                px.close(sub)
            px.rmdir(name, dir_fd=dirfd)
