"""A container's freezer: where it is in a driver record, whether it is frozen, freezing and thawing.

Its own small module because the status is derived on every read and needs the freezer of every live container
(`paused` comes before `created` and `running`, as in runc): `state`, `list` and `kill` read it here without loading
the driver module (~0.3 ms, a third of a lifecycle verb's own work). Every driver in `driver.DRIVERS` keeps the
cgroupfs record layout (`{"v1": {"freezer": dir, ...}, "v2": dir}`) and freezes through these files; a test checks
that none overrides `is_frozen` or `freeze`, so the status and the driver cannot disagree.

Stdlib and posixlite only.
"""

import time

from .. import posixlite as px
from ..errors import OcipyError, os_reason

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def where(record: "Any") -> tuple[int, str] | None:
    """(1, the v1 freezer dir) or (2, the unified cgroup dir); None without a freezer (or without a record)."""
    if not isinstance(record, dict):
        return None
    v1 = record.get("v1")
    if isinstance(v1, dict) and isinstance(v1.get("freezer"), str):
        return 1, v1["freezer"]
    if isinstance(record.get("v2"), str):
        return 2, record["v2"]
    return None


def is_frozen(record: "Any") -> bool:
    fz = where(record)
    if fz is None:
        return False
    version, path = fz
    if version == 1:
        if (px.read_text(px.join(path, "freezer.state")) or "").strip() != "FROZEN":
            return False
        # FROZEN is also what a cgroup whose parent is frozen reads: paused only if it was frozen itself (runc's
        # reading too; a kernel without the file: frozen)
        return (px.read_text(px.join(path, "freezer.self_freezing")) or "1").strip() != "0"
    return (px.read_text(px.join(path, "cgroup.freeze")) or "").strip() == "1"


def write_text(path: str, text: str) -> None:
    """A cgroup file written in binary, in one write (px.read_text says why not text mode)."""
    fd = px.open(path, px.O_WRONLY | px.O_TRUNC | px.O_CLOEXEC)  # O_TRUNC: nothing to cgroupfs, a plain file's reset
    try:
        px.write(fd, text.encode("ascii"))
    finally:
        px.close(fd)


def freeze(record: "Any", frozen: bool, timeout: float = 2.0) -> None:
    """Freeze or thaw, and wait until the kernel says it is done."""
    fz = where(record)
    if fz is None:
        raise OcipyError("container has no cgroup to freeze")
    version, path = fz
    deadline = time.monotonic() + timeout
    try:
        if version == 1:
            want = "FROZEN" if frozen else "THAWED"
            state_file = px.join(path, "freezer.state")
            write_text(state_file, want)
            # v1 may sit in FREEZING while tasks are in uninterruptible sleep: write again until it settles
            while (px.read_text(state_file) or "").strip() != want:
                if time.monotonic() > deadline:
                    if frozen:
                        write_text(state_file, "THAWED")
                    raise OcipyError(f"{state_file}: did not reach {want}")
                time.sleep(0.001)
                write_text(state_file, want)
        else:
            write_text(px.join(path, "cgroup.freeze"), "1" if frozen else "0")
            events = px.join(path, "cgroup.events")
            want_line = "frozen 1" if frozen else "frozen 0"
            while want_line not in (px.read_text(events) or "").splitlines():
                if time.monotonic() > deadline:
                    raise OcipyError(f"{events}: did not reach {want_line!r}")
                time.sleep(0.001)
    except OSError as exc:
        raise OcipyError(f"{'freeze' if frozen else 'thaw'} {path}: {os_reason(exc)}") from None
