"""The lifecycle steps after create, shared by the verbs: start, signal, kill-and-wait, destroy, delete.

runtime.md's lifecycle as functions of a locked `store.Container`: `start` (steps 7-9: startContainer hooks, the
exec fifo, poststart), `signal_init` (kill), `kill_and_wait` + `destroy` (steps 11-13: what create made goes, then
the poststop hooks) and `delete` (both). `ocipy/operations/{start,kill,delete,run}.py` and the checkpoint verb call
them; no verb imports another.

On the lifecycle path: stdlib, posixlite and the shim only (`ocipy.hooks` is imported only for a container that has
hooks to run).
"""

import time
from _signal import SIGKILL  # type: ignore[import-not-found]  # the interpreter loaded it: no `signals` import

from . import errors, procfs
from . import posixlite as px
from .errors import OcipyError, os_reason
from .faults import point
from .state import KILL_TIMEOUT, REFUSED, RUNNING, STOPPED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .store import Container

_STOPPED_MSG = REFUSED["start/stopped"]


def signal_init(c: "Container", sig: int) -> bool:
    """Signal the init if it is still the recorded process; False when it is gone."""
    return procfs.signal(c.pid, c.starttime, sig)


def run_recorded_hooks(c: "Container", kind: str) -> None:
    """Run the `kind` hooks create recorded in the private state, through `ocipy.hooks`.

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
    if kind == "startContainer" and any(h.get("env") is None for h in hooks):
        # as runc: a startContainer hook (run in the container) without `env` gets the container process's env
        env = _process_env(c)
        hooks = [h if h.get("env") is not None else {**h, "env": env} for h in hooks]
    mod.run_hooks(kind, hooks, state, pid=c.pid)


def _process_env(c: "Container") -> list[str]:
    """process.env of the config as create saw it (the state directory's copy), [] if none."""
    from . import fastjson
    from .store import CONFIG_FILE

    raw = c.read_file(CONFIG_FILE)
    try:
        doc = fastjson.loads(raw) if raw else {}
    except ValueError:
        return []
    env = (doc.get("process") or {}).get("env") if isinstance(doc, dict) else None
    return [e for e in env if isinstance(e, str)] if isinstance(env, list) else []


def wait_cgroup_empty(c: "Container", timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while c.cgroup().populated() and time.monotonic() < deadline:
        time.sleep(0.002)


def kill_and_wait(c: "Container") -> None:
    """SIGKILL the init and the rest of its cgroup, thaw so the kill lands, and wait until the init is gone."""
    cgroup = c.cgroup()
    was_frozen = cgroup.is_frozen()
    signal_init(c, SIGKILL)
    # with a cgroup recorded, also processes outside the init's pid namespace (or left behind) go
    cgroup.kill(SIGKILL)
    if was_frozen:
        # v1 freezer holds even SIGKILLed tasks: thaw after the signal is queued so they die at once
        cgroup.freeze(False)
    if not procfs.wait_gone(c.pid, c.starttime, KILL_TIMEOUT):
        raise OcipyError(f"container init (pid {c.pid}) did not exit after SIGKILL")


def destroy(c: "Container") -> None:
    """Steps 12-13 for a container whose init is gone: its cgroups, then the poststop hooks (a failure there is a
    warning), then its state directory. The container no longer exists afterwards."""
    cgroup = c.cgroup()
    if cgroup.populated():
        # the init is gone but something it left in the cgroup is not: it must go for the cgroup to go
        cgroup.kill(SIGKILL)
        wait_cgroup_empty(c, 2.0)
    try:
        cgroup.remove()
    except OcipyError as exc:
        errors.warning(f"removing the cgroups: {exc}")
    point("delete.cgroups")
    errors.debug("cgroups removed")
    try:
        run_recorded_hooks(c, "poststop")
    except Exception as exc:  # noqa: BLE001 -- runtime.md: a failing poststop hook is a warning, delete goes on
        errors.warning(f"poststop hooks: {exc}")
    point("delete.poststop")
    c.remove()
    errors.debug(f"state dir of {c.id} removed")


def delete(c: "Container", force: bool) -> None:
    """`delete [--force]` of a locked container dir (runtime.md: only a stopped one unless forced)."""
    if c.journal() is not None:
        # half-made: a create that died (we hold its lock now) left it; undo what its journal names
        errors.debug(f"delete {c.id}: half-made, undoing what its create recorded")
        c.undo_create()
        return
    status = c.status()
    if not force:
        status.require("delete", c.id)
    errors.debug(f"delete {c.id}: status {status}")
    if status != STOPPED:
        errors.debug(f"killing pid {c.pid} and its cgroup (SIGKILL), waiting for it")
        kill_and_wait(c)
        point("delete.killed")
        wait_cgroup_empty(c, 2.0)
    destroy(c)


def _release_fifo(c: "Container") -> None:
    """Open the exec fifo write-only and non-blocking (ENXIO: the init is gone), write one byte, remove it."""
    try:
        fd = px.open(c.fifo_path, px.O_WRONLY | px.O_NONBLOCK | px.O_CLOEXEC | px.O_NOFOLLOW)
    except OSError as exc:
        import errno  # failure paths only: `errno` is ~0.06 ms of every lifecycle verb

        if exc.errno == errno.ENXIO:  # nobody holds the read end: the init is gone
            raise OcipyError(_STOPPED_MSG) from None
        if isinstance(exc, FileNotFoundError):  # someone else started it meanwhile
            c.status().require("start")
        raise OcipyError(f"open {c.fifo_path}: {os_reason(exc)}") from None
    errors.debug(f"start {c.id}: writing the exec fifo {c.fifo_path}: the init execs the process")
    try:
        px.write(fd, b"0")
    except BrokenPipeError:  # the reader closed between our open and write
        raise OcipyError(_STOPPED_MSG) from None
    finally:
        px.close(fd)
    try:
        px.unlink(c.fifo_path)
    except FileNotFoundError:
        pass


def start(c: "Container") -> None:
    """Steps 7-9: the startContainer hooks, release the init through the exec fifo, the poststart hooks."""
    c.status().require("start")
    if c.read_state().private.get("no_process"):
        # runtime.md: start MUST generate an error when process was not set; the container is stopped, so a delete
        # then removes it
        signal_init(c, SIGKILL)
        raise OcipyError("/process: the container has no process to start (config.json had none at create)")
    try:
        run_recorded_hooks(c, "startContainer")
    except OcipyError:
        # runtime.md: a failing startContainer hook stops the container; delete does the rest
        signal_init(c, SIGKILL)
        raise
    _release_fifo(c)
    errors.debug(f"started {c.id} (pid {c.pid})")
    try:
        run_recorded_hooks(c, "poststart")
    except OcipyError:
        # runtime.md lifecycle step 9: a failing poststart hook is an error; the container is stopped and the
        # lifecycle continues at step 12: destroyed (what create made goes), then the poststop hooks (13)
        signal_init(c, SIGKILL)
        cgroup = c.cgroup()
        cgroup.kill(SIGKILL)
        if cgroup.is_frozen():
            cgroup.freeze(False)
        procfs.wait_gone(c.pid, c.starttime, KILL_TIMEOUT)
        destroy(c)
        raise
