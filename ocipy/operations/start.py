"""`ocipy start ID`: release a created container's init through the exec fifo, with the start hooks around it."""

from __future__ import annotations

import errno

from .. import errors
from .. import posixlite as px
from ..errors import OcipyError
from ..signals import SIGKILL
from ..state import REFUSED, RUNNING
from ..store import Container, Store
from .kill import signal_init

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_STOPPED_MSG = REFUSED["start/stopped"]


def run_recorded_hooks(c: Container, kind: str) -> None:
    """Run the `kind` hooks create recorded in the private state, through the lead's `ocipy.hooks`.

    `ocipy.hooks` is imported only when there are hooks to run, so a hook-less start/delete never pays for it. It
    raises for the kinds that fail the operation (startContainer, poststart) and only warns for poststop.
    """
    hooks = c.read_state().hooks.get(kind)
    if not hooks:
        return
    try:
        mod = __import__("ocipy.hooks", fromlist=["run_hooks"])
    except ImportError:
        errors.warning(f"{kind} hooks recorded but ocipy.hooks is not available: skipped")
        return
    # poststart: the state as `start` left it, "running" with the init's pid, even when a short process has
    # already exited by the time the hook runs (config.md: called after the user-specified process is started)
    state = c.read_state().oci(RUNNING) if kind == "poststart" else c.oci_state()
    mod.run_hooks(kind, hooks, state, pid=c.pid)


def _destroy(c: Container) -> None:
    """Stop and destroy a container whose poststart hook failed: kill its processes, remove its cgroups, run the
    poststop hooks (a failure there is a warning), remove its state. The container then no longer exists."""
    import time

    from .. import procfs

    signal_init(c, SIGKILL)
    cgroup = c.cgroup()
    cgroup.kill(SIGKILL)
    if cgroup.is_frozen():
        cgroup.freeze(False)
    procfs.wait_gone(c.pid, c.starttime, 10.0)
    for _ in range(1000):  # the cgroup empties a moment after the init is gone
        if not cgroup.pids():
            break
        time.sleep(0.002)
    try:
        cgroup.remove()
    except OcipyError as exc:
        errors.warning(f"poststart failed: removing the cgroups: {exc}")
    try:
        run_recorded_hooks(c, "poststop")
    except Exception as exc:  # noqa: BLE001 -- runtime.md: a failing poststop hook is a warning
        errors.warning(f"poststop hooks: {exc}")
    c.remove()


def main(args: Any) -> int:
    c = Store.from_args(args).open_locked(args.container_id)
    try:
        c.status().require("start")
        if c.read_state().private.get("no_process"):
            # runtime.md: start MUST generate an error when process was not set; the container is stopped, so a
            # delete then removes it
            signal_init(c, SIGKILL)
            raise OcipyError("/process: the container has no process to start (config.json had none at create)")
        try:
            run_recorded_hooks(c, "startContainer")
        except OcipyError:
            # runtime.md: a failing startContainer hook stops the container; delete does the rest
            signal_init(c, SIGKILL)
            raise
        try:
            fd = px.open(c.fifo_path, px.O_WRONLY | px.O_NONBLOCK | px.O_CLOEXEC | px.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nobody holds the read end: the init is gone
                raise OcipyError(_STOPPED_MSG) from None
            if exc.errno == errno.ENOENT:  # someone else started it meanwhile
                c.status().require("start")
            raise OcipyError(f"open {c.fifo_path}: {exc.strerror}") from None
        errors.debug(f"start {c.id}: writing the exec fifo {c.fifo_path}: the init execs the process")
        try:
            px.write(fd, b"0")
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader closed between our open and write
                raise OcipyError(_STOPPED_MSG) from None
            raise
        finally:
            px.close(fd)
        try:
            px.unlink(c.fifo_path)
        except FileNotFoundError:
            pass
        errors.debug(f"started {c.id} (pid {c.pid})")
        try:
            run_recorded_hooks(c, "poststart")
        except OcipyError:
            # runtime.md lifecycle step 9: a failing poststart hook is an error; the container is stopped and the
            # lifecycle continues at step 12: destroyed (what create made goes), then the poststop hooks (13)
            _destroy(c)
            raise
    finally:
        c.close()
    return 0
