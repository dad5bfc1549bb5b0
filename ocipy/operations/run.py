"""`ocipy run`: create, start, and (unless --detach) wait for the process, forward signals, exit with its status,
and delete the container (unless --keep), as runc does."""

from __future__ import annotations

import contextlib
import copy
import signal

from ocipy import errors
from ocipy.errors import OcipyError
from ocipy.faults import point
from ocipy.launch import exit_code

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse  # annotations only: importing argparse costs ~7 ms

# Signals a foreground run passes on to the container process instead of dying from them.
FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGCONT,
    signal.SIGALRM,
)


def main(args: argparse.Namespace) -> int:
    from ocipy.operations import create as create_op
    from ocipy.operations import delete as delete_op
    from ocipy.operations import start as start_op

    detach = bool(getattr(args, "detach", False))
    created = create_op.create(args)
    point("run.created")
    launch = created.launch
    pidfd = launch.pidfd

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(pidfd, signum)

    if not detach:
        for sig in FORWARDED:
            signal.signal(sig, forward)
    try:
        start_op.main(args)
    except OcipyError:
        launch.abort()
        _delete(delete_op, args)
        raise
    point("run.started")
    if detach:
        launch.release()
        return 0
    errors.debug(f"run: waiting for pid {launch.pid}, forwarding signals")
    status = launch.wait()
    code = exit_code(status) if status is not None else 1
    point("run.exited")
    errors.debug(f"run: the process exited with status {code}")
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    if not getattr(args, "keep", False):
        errors.debug(f"run: deleting {args.container_id}")
        _delete(delete_op, args)
    return code


def _delete(delete_op: object, args: argparse.Namespace) -> None:
    ns = copy.copy(args)  # argparse.Namespace or cli.Args alike
    ns.force = True
    with contextlib.suppress(OcipyError):
        delete_op.main(ns)  # type: ignore[attr-defined]
