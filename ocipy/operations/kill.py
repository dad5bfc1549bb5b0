"""`ocipy kill [--all] ID [SIGNAL]`: signal the init (or every process in the container's cgroup) through pidfds."""

from __future__ import annotations

from .. import posixlite as px
from .. import procfs
from ..errors import OcipyError
from ..signals import SIGKILL, SIGTERM, parse_signal
from ..store import STOPPED, Container, Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def signal_init(c: Container, sig: int) -> bool:
    """Signal the init if it is still the recorded process; False when it is gone."""
    fd = procfs.pidfd_open(c.pid, c.starttime)
    if fd is None:
        return False
    try:
        return procfs.send_signal(fd, sig)
    finally:
        px.close(fd)


def signal_all(c: Container, sig: int) -> bool:
    """Signal every process in the container's cgroup; False when no cgroup is recorded.

    A running container is frozen meanwhile (when a freezer is recorded), so nothing forks past the signal and no
    listed pid can exit and be reused before it is signalled.
    """
    if c.cgroup_pids() is None:
        return False
    if sig == SIGKILL:
        # cgroup v2 kills the whole subtree at once (frozen or not, no pid races); the loop below still covers v1
        cg = c.private.get("cgroup")
        v2 = cg.get("v2") if isinstance(cg, dict) else None
        if isinstance(v2, str):
            try:
                with open(px.join(v2, "cgroup.kill"), "w") as f:
                    f.write("1")
            except OSError:
                pass
    freeze = c.has_freezer() and not c.is_frozen()
    if freeze:
        c.set_frozen(True)
    try:
        for pid in c.cgroup_pids() or []:
            try:
                fd = px.pidfd_open(pid)
            except ProcessLookupError:
                continue
            try:
                procfs.send_signal(fd, sig)
            finally:
                px.close(fd)
    finally:
        if freeze:
            c.set_frozen(False)
    return True


def main(args: Any) -> int:
    c = Store.from_args(args).open_locked(args.container_id)
    try:
        sig = SIGTERM if args.signal is None else parse_signal(args.signal)
        if c.status() == STOPPED:
            if args.all:
                # The runc v2 shim calls `kill --all ID 9` when the init of a container without a pid namespace of
                # its own (a pod sharing one) has exited: what the init left in the cgroup goes, and, as in runc,
                # a stopped container is no error for --all (there may be nothing left).
                if c.cgroup_pids():
                    signal_all(c, sig)
                return 0
            raise OcipyError("container not running")
        if args.all and signal_all(c, sig):
            return 0
        if not signal_init(c, sig):
            raise OcipyError("container not running")
    finally:
        c.close()
    return 0
