"""Start the cgroup write lock's RCU grace period early, for a process that is about to join a container's cgroups
(`exec` and `create`: docs/cgroups.md, "Verbs"). Stdlib and posixlite only (exec is a Kubernetes probe); create's
keep=True uses the shim.
"""

from __future__ import annotations

from ocipy import posixlite as px

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_native = False  # a start(keep=True) thread may be running


def start(record: dict[str, Any], keep: bool = False) -> None:
    """Have the kernel start now the wait that the init's cgroup join would start later, and go on meanwhile.

    Every write to a cgroup.procs file takes the kernel's global cgroup_threadgroup_rwsem for writing. When none came
    in the last ~20 ms (an exec probe every few seconds: always), that first waits for an RCU grace period, 6-16 ms
    here, and the init's join, ~5 ms of Python later, waited the whole of it (so does runc's, on hosts where it
    cannot use CLONE_INTO_CGROUP). A thread moves this process into the cgroup it is already in, which takes the
    lock and moves nothing; the init's write then finds the grace period over or under way. `record`: the
    container's cgroup record (ocipy/cgroups/driver.py). It writes only into the unified hierarchy's cgroup.procs
    that lists this process, so nothing can move. Best effort: any failure leaves the wait where it was.

    `keep` (create): the grace period over, the lock stays in its no-wait state for about one more grace period only,
    and create's init may join later than that. So the write is made by a native thread (shim/graceperiod.c) that
    writes again every 3 ms (these writes do not wait) until `stop()`, which create calls once the init has joined;
    being native, it never needs the GIL, and this thread does not wait for it to start."""
    procs = _own_procs_files(record)
    if not procs:
        return
    if keep:
        _start_native(procs)
        return
    import _thread  # builtin, unlike `threading`

    ready = _thread.allocate_lock()
    ready.acquire()

    def move_into_own_cgroup() -> None:
        try:
            fd = _open_own_procs(procs)
        finally:
            ready.release()  # the write below releases the GIL as soon as it enters the kernel
        if fd is None:
            return
        try:
            px.write(fd, b"0")  # 0: the writer's own process
        except OSError:
            pass
        finally:
            px.close(fd)

    try:
        _thread.start_new_thread(move_into_own_cgroup, ())
    except RuntimeError:  # no thread to be had (a pids limit reached): the exec goes on without
        return
    # a new thread waits for the GIL, up to the 5 ms switch interval while this one works: let it reach the write
    ready.acquire()


def _own_procs_files(record: dict[str, Any]) -> list[str]:
    """Where the unified hierarchy's cgroup.procs listing this process may be, from the container's record: its
    `v2` directory is the mount point followed by the container's cgroup path."""
    v2, path = record.get("v2"), record.get("path")
    if not (isinstance(v2, str) and isinstance(path, str) and v2.startswith("/")):
        return []
    own = next((line[3:] for line in (px.read_text("/proc/self/cgroup") or "").splitlines() if line[:3] == "0::"), "")
    if not own.startswith("/"):
        return []
    if path.startswith("/") and v2.endswith(path):  # cgroupfs: the mount point is v2 less the cgroupsPath
        mount = v2[: len(v2) - len(path)]
    else:
        # the systemd driver's `slice:prefix:name` (or a relative cgroupsPath): systemd chose the directory below
        # the mount point, which is v2's highest ancestor that is a cgroup directory
        mount = next(
            (v2[:i] for i in range(1, len(v2)) if v2[i] == "/" and px.exists(v2[:i] + "/cgroup.controllers")), ""
        )
        if not mount:
            return []
    # In a container without a cgroup namespace whose cgroup mount is its own subtree of the host's (systemd-nspawn
    # on a hybrid host), /proc/self/cgroup names host paths: our cgroup is then a tail of that path. Our whole path
    # first; _open_own_procs keeps only a file that lists us.
    return [px.join(mount + own[i:], "cgroup.procs") for i in range(len(own)) if own[i] == "/"]


def _open_own_procs(files: list[str]) -> int | None:
    """The first of `files` that lists this process (so a write of 0 moves nothing), opened for writing; else None."""
    pid = str(px.getpid())
    for procs in files:
        try:
            if pid in (px.read_text(procs) or "").split():
                return px.open(procs, px.O_WRONLY | px.O_CLOEXEC)
        except OSError:
            pass  # not there (not the mount point), or not ours to write
    return None


def _start_native(procs: list[str]) -> None:
    global _native
    from ocipy import _shim

    fd = _open_own_procs(procs)
    if fd is None:
        return
    if _shim.grace_start(fd):
        _native = True
    else:
        px.close(fd)  # no thread to be had: the init's join waits as it would have


def stop() -> None:
    """End start(keep=True)'s rewrites (the joining process is in: the lock may go back to its fast state)."""
    global _native
    if _native:
        from ocipy import _shim

        _shim.grace_stop()
        _native = False
