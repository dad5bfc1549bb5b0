"""`ocipy delete [--force] ID`: remove a stopped container; `--force` kills it first, in any state."""

from __future__ import annotations

import time

from .. import errors, procfs
from ..errors import OcipyError
from ..faults import point
from ..signals import SIGKILL
from ..store import STOPPED, Container, Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KILL_TIMEOUT = 10.0  # seconds to wait for a SIGKILLed init to exit


def _wait_cgroup_empty(c: Container, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while c.cgroup().pids() and time.monotonic() < deadline:
        time.sleep(0.002)


def kill_and_wait(c: Container) -> None:
    """SIGKILL the init and the rest of its cgroup, thaw so the kill lands, and wait until the init is gone."""
    from .kill import signal_init

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


def _run_poststop(c: Container) -> None:
    if c.read_state().hooks.get("poststop"):  # the start module only for containers that have some
        from .start import run_recorded_hooks

        run_recorded_hooks(c, "poststop")


def main(args: Any) -> int:
    cid = args.container_id
    try:
        c = Store.from_args(args).open(cid)
    except OcipyError as exc:
        if getattr(args, "force", False) and exc.message == "container does not exist":
            return 0
        raise
    try:
        c.lock()
        point("delete.locked")
        if c.journal() is not None:
            # half-made: a create that died (we hold its lock now) left it; undo what its journal names
            errors.debug(f"delete {cid}: half-made, undoing what its create recorded")
            c.undo_create()
            return 0
        status = c.status()
        if not getattr(args, "force", False):
            status.require("delete", cid)
        errors.debug(f"delete {cid}: status {status}")
        if status != STOPPED:
            errors.debug(f"killing pid {c.pid} and its cgroup (SIGKILL), waiting for it")
            kill_and_wait(c)
            point("delete.killed")
            _wait_cgroup_empty(c, 2.0)
        elif c.cgroup().pids():
            # the init is gone but something it left in the cgroup is not: it must go for the cgroup to go
            c.cgroup().kill(SIGKILL)
            _wait_cgroup_empty(c, 2.0)
        c.cgroup().remove()
        point("delete.cgroups")
        errors.debug("cgroups removed")
        try:
            _run_poststop(c)
        except Exception as exc:  # noqa: BLE001 -- runtime.md: a failing poststop hook is a warning, delete goes on
            errors.warning(f"poststop hooks: {exc}")
        point("delete.poststop")
        c.remove()
        errors.debug(f"state dir of {cid} removed")
    finally:
        c.close()
    return 0
