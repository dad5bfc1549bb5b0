"""`_shim.spawn` starts the child in this process's memory until it execs (CLONE_VM | CLONE_VFORK, shim/spawn.c): a
fork would leave every page of the interpreter write-protected, and each page the caller wrote afterwards would cost
it a copy-on-write fault (~1 ms of a create's CPU)."""

from __future__ import annotations

import os
import resource

from ocipy import _shim

PAGE = os.sysconf("SC_PAGE_SIZE")
PAGES = 1024


def _write_every_page(buf: bytearray, value: int) -> None:
    for off in range(0, len(buf), PAGE):
        buf[off] = value


def test_the_caller_takes_no_copy_on_write_faults() -> None:
    buf = bytearray(PAGES * PAGE)
    _write_every_page(buf, 1)  # every page present and private before the spawn
    fd = os.open("/bin/true", os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid, pidfd = _shim.spawn(fd, ["true"], [(0, 0), (1, 1), (2, 2)])
    finally:
        os.close(fd)
    os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    _write_every_page(buf, 2)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < PAGES // 4, f"{faults} page faults writing {PAGES} pages after the spawn"


def test_a_failure_before_exec_is_reported() -> None:
    fd = os.open("/bin/true", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _shim.spawn(fd, ["true"], [(987654, 0)])  # no such fd to map
        except OSError as exc:
            assert exc.errno == 9  # EBADF, from the child
        else:
            raise AssertionError("spawn of an unmappable fd succeeded")
    finally:
        os.close(fd)
