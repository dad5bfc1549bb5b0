"""Start the cgroup write lock's RCU grace period early, for a process that is about to join a container's cgroups
(`exec`: docs/cgroups.md, "Verbs"). Stdlib and posixlite only: exec is a Kubernetes probe.
"""

from __future__ import annotations

from ocipy import posixlite as px

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_KEEP_EVERY = 0.003  # s: below the shortest grace period seen here (~6 ms), which is how long the fast state lasts
_KEEP_AT_MOST = 40  # rewrites (~0.2 s with the GIL waits): a create whose init never joins does not loop on
_stop: Any = None  # start(keep=True)'s lock: released by stop()


def start(record: dict[str, Any], keep: bool = False) -> None:
    """Have the kernel start now the wait that the init's cgroup join would start later, and go on meanwhile.

    Every write to a cgroup.procs file takes the kernel's global cgroup_threadgroup_rwsem for writing. When none came
    in the last ~20 ms (an exec probe every few seconds: always), that first waits for an RCU grace period, 6-16 ms
    here, and the init's join, ~5 ms of Python later, waited the whole of it (so does runc's, on hosts where it
    cannot use CLONE_INTO_CGROUP). A thread moves this process into the cgroup it is already in, which takes the
    lock and moves nothing; the init's write then finds the grace period over or under way. `record`: the
    container's cgroup record (ocipy/cgroups/driver.py). It writes only into the unified hierarchy's cgroup.procs
    that lists this process, so nothing can move. Best effort: any failure leaves the wait where it was.

    `keep` (create): the grace period over, the lock stays in its slow, no-wait state for about one more grace period
    only, and create's init joins ~10 ms of Python later, often after that. So the thread writes again every
    _KEEP_EVERY (these writes find the grace period over and do not wait) until `stop()`, which create calls once the
    init has joined."""
    global _stop
    v2, path = record.get("v2"), record.get("path")
    if not (isinstance(v2, str) and isinstance(path, str) and path.startswith("/") and v2.endswith(path)):
        return  # the hierarchy's mount point is v2 less the absolute cgroupsPath; unknown otherwise
    own = next((line[3:] for line in (px.read_text("/proc/self/cgroup") or "").splitlines() if line[:3] == "0::"), "")
    if not own.startswith("/"):
        return
    procs = px.join(v2[: len(v2) - len(path)] + own, "cgroup.procs")
    import _thread  # builtin, unlike `threading`

    ready = _thread.allocate_lock()
    ready.acquire()
    stop = None
    if keep:
        stop = _stop = _thread.allocate_lock()
        stop.acquire()

    def move_into_own_cgroup() -> None:
        try:
            if str(px.getpid()) not in (px.read_text(procs) or "").split():
                return  # not the cgroup we are in (a mount point that is not where the record says)
            fd = px.open(procs, px.O_WRONLY | px.O_CLOEXEC)
        except OSError:
            return
        finally:
            ready.release()  # the write below releases the GIL as soon as it enters the kernel
        try:
            px.write(fd, b"0")  # 0: the writer's own process
            for _ in range(_KEEP_AT_MOST):
                if stop is None or stop.acquire(timeout=_KEEP_EVERY):  # the sleep releases the GIL
                    break
                px.write(fd, b"0")
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


def stop() -> None:
    """End start(keep=True)'s rewrites (the joining process is in: the fast state may come back)."""
    global _stop
    if _stop is not None:
        _stop.release()
        _stop = None
