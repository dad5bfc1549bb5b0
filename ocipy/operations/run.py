"""`ocipy run`: create, start, and (unless --detach) wait for the process, forward signals, exit with its status,
and delete the container (unless --keep), as runc does."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # `signal` makes enums of its constants (`enum`, ~1.5 ms per run): its C half, as exec
    import signal as _signal
else:
    import _signal

from ocipy import creator, errors, foreground, lifecycle
from ocipy.errors import OcipyError, os_reason
from ocipy.faults import point
from ocipy.launch import exit_code
from ocipy.store import Store

if TYPE_CHECKING:
    import argparse  # annotations only: importing argparse costs ~7 ms


def main(args: argparse.Namespace) -> int:
    detach = bool(getattr(args, "detach", False))
    if not detach and not getattr(args, "console_socket", None):
        args.allocate_console = True  # a terminal is then ocipy's to allocate and proxy (ocipy/ptyproxy.py)
    created = creator.create(args)
    point("run.created")
    launch = created.launch
    pidfd = launch.pidfd
    master = -1
    console_parent = getattr(args, "console_parent", None)
    if console_parent is not None:
        from ocipy import ptyproxy

        try:
            master = ptyproxy.receive_master(console_parent)
            ptyproxy.copy_window_size(0, master)  # before start: the process may ask for it at once
        except OSError as exc:
            launch.abort()
            _delete(args)
            raise OcipyError(f"/process/terminal: receiving the pty: {os_reason(exc)}") from None
        finally:
            console_parent.close()

    def forward(signum: int, _frame: object) -> None:
        try:
            _signal.pidfd_send_signal(pidfd, signum)
        except OSError:  # ProcessLookupError too: the process is gone
            pass

    if not detach:
        for sig in foreground.FORWARDED:
            if not (master >= 0 and sig == _signal.SIGWINCH):  # with a pty its size is what changes
                _signal.signal(sig, forward)
    try:
        _start(args)
    except OcipyError:
        if master >= 0:
            os.close(master)
        launch.abort()
        _delete(args)
        raise
    point("run.started")
    if detach:
        launch.release()
        return 0
    errors.debug(f"run: waiting for pid {launch.pid}, forwarding signals")
    foreground.collect_from_now()  # the work is done; a wait may last days (cli.entry's GC policy)
    if master >= 0:
        try:
            ptyproxy.proxy(master, pidfd)
        finally:
            os.close(master)
    status = launch.wait()
    code = exit_code(status) if status is not None else 1
    point("run.exited")
    errors.debug(f"run: the process exited with status {code}")
    for sig in foreground.FORWARDED:
        _signal.signal(sig, _signal.SIG_DFL)
    if not getattr(args, "keep", False):
        errors.debug(f"run: deleting {args.container_id}")
        _delete(args)
    return code


def _start(args: argparse.Namespace) -> None:
    c = Store.from_args(args).open_locked(args.container_id)
    try:
        lifecycle.start(c)
    finally:
        c.close()


def _delete(args: argparse.Namespace) -> None:
    """`delete --force`, whatever state the container is in; an error here is not the run's."""
    try:  # not contextlib.suppress: contextlib brings collections and functools (~3 ms of every run)
        c = Store.from_args(args).open(args.container_id)
        try:
            c.lock()
            lifecycle.delete(c, force=True)
        finally:
            c.close()
    except OcipyError:
        pass
