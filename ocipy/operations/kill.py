"""`ocipy kill [--all] ID [SIGNAL]`: signal the init through a pidfd (or, with --all, every process in the
container's cgroup through its driver)."""

from .. import procfs  # not lifecycle: kill needs only the pidfd signal (~50 us of imports less)
from ..errors import OcipyError
from ..signals import SIGTERM, parse_signal
from ..store import STOPPED, Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def main(args: "Any") -> int:
    c = Store.from_args(args).open_locked(args.container_id)
    try:
        sig = SIGTERM if args.signal is None else parse_signal(args.signal)
        status = c.status()
        if status == STOPPED and args.all:
            # The runc v2 shim calls `kill --all ID 9` when the init of a container without a pid namespace of
            # its own (a pod sharing one) has exited: what the init left in the cgroup goes, and, as in runc,
            # a stopped container is no error for --all (there may be nothing left).
            if c.cgroup().populated():
                c.cgroup().kill(sig)
            return 0
        status.require("kill")
        if args.all and c.cgroup().kill(sig):
            return 0
        if not procfs.signal(c.pid, c.starttime, sig):
            raise OcipyError("container not running")
    finally:
        c.close()
    return 0
