"""`ocipy delete [--force] ID`: remove a stopped container; `--force` kills it first, in any state."""

from __future__ import annotations

import time

from .. import errors, procfs
from ..errors import OcipyError
from ..faults import point
from ..signals import SIGKILL
from ..store import CREATED, STOPPED, Container, Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KILL_TIMEOUT = 10.0  # seconds to wait for a SIGKILLed init to exit


def _wait_cgroup_empty(c: Container, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while c.cgroup_pids() and time.monotonic() < deadline:
        time.sleep(0.002)


def kill_and_wait(c: Container) -> None:
    """SIGKILL the init and the rest of its cgroup, thaw so the kill lands, and wait until the init is gone."""
    from .kill import signal_all, signal_init

    was_frozen = c.is_frozen()
    signal_init(c, SIGKILL)
    # with a cgroup recorded, also processes outside the init's pid namespace (or left behind) go
    signal_all(c, SIGKILL)
    if was_frozen:
        # v1 freezer holds even SIGKILLed tasks: thaw after the signal is queued so they die at once
        c.set_frozen(False)
    if not procfs.wait_gone(c.pid, c.starttime, KILL_TIMEOUT):
        raise OcipyError(f"container init (pid {c.pid}) did not exit after SIGKILL")


def _run_poststop(c: Container) -> None:
    hooks = c.private.get("hooks")
    if isinstance(hooks, dict) and hooks.get("poststop"):  # the start module only for containers that have some
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
            # half-made: a create that died (we hold its lock) left it; undo what its journal names
            c.undo_create()
            return 0
        status = c.status()
        if status not in (STOPPED, CREATED) and not getattr(args, "force", False):
            raise OcipyError(f"cannot delete container {cid} that is not stopped: {status}")
        if status != STOPPED:
            kill_and_wait(c)
            point("delete.killed")
            _wait_cgroup_empty(c, 2.0)
        elif c.cgroup_pids():
            # the init is gone but something it left in the cgroup is not: it must go for the cgroup to go
            from .kill import signal_all

            signal_all(c, SIGKILL)
            _wait_cgroup_empty(c, 2.0)
        c.remove_cgroups()
        point("delete.cgroups")
        try:
            _run_poststop(c)
        except Exception as exc:  # noqa: BLE001 -- runtime.md: a failing poststop hook is a warning, delete goes on
            errors.warning(f"poststop hooks: {exc}")
        point("delete.poststop")
        c.remove()
    finally:
        c.close()
    return 0
