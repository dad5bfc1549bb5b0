"""Reading and writing cgroup files with errors that name the config field."""

from __future__ import annotations

import errno
import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` imports `re` and `contextlib` (~5 ms per create): annotations only
    from typing import Any

from ocipy import posixlite as px
from ocipy.errors import os_reason
from ocipy.posixlite import read_text

from . import CgroupError

R = "/linux/resources"


def write(directory: str, fname: str, value: str, pointer: str) -> None:
    path = px.join(directory, fname)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise CgroupError(pointer, f"{path}: not supported by this kernel or hierarchy (no such file)") from None
        raise CgroupError(pointer, f"{path}: {os_reason(exc)}") from None
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        msg = os_reason(exc)
        if exc.errno in (errno.EPERM, errno.EACCES):
            msg += " (this host's root lacks CAP_SYS_RESOURCE: some limits cannot be raised)"
        raise CgroupError(pointer, f"{path}: write {value.strip()!r}: {msg}") from None
    finally:
        os.close(fd)


def read(directory: str | None, fname: str) -> str | None:
    """A cgroup file's text; None when it cannot be read (or there is no directory)."""
    return read_text(px.join(directory, fname)) if directory else None


def read_int(directory: str, fname: str) -> int | None:
    text = read(directory, fname)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        return None


def exists(directory: str, fname: str) -> bool:
    return px.exists(px.join(directory, fname))


def get_int(obj: dict[str, Any], key: str, pointer: str, *, minimum: int | None = None) -> int | None:
    """An optional integer field (bool is not an integer); `minimum` checked when given."""
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise CgroupError(f"{pointer}/{key}", f"{v!r}: must be an integer")
    if minimum is not None and v < minimum:
        raise CgroupError(f"{pointer}/{key}", f"{v}: must be at least {minimum}")
    return v


def get_obj(res: dict[str, Any], key: str, pointer: str = R) -> dict[str, Any]:
    v = res.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise CgroupError(f"{pointer}/{key}", "must be an object")
    return v


def get_list(obj: dict[str, Any], key: str, pointer: str) -> list[Any]:
    v = obj.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise CgroupError(f"{pointer}/{key}", "must be an array")
    return v


def hugepage_limits(d: str, limits: list[Any], limit_file: str) -> None:
    """hugepageLimits as `hugetlb.SIZE.<limit_file>` (v1: limit_in_bytes, v2: max), and the reservation limit
    beside it when the kernel has one (`hugetlb.SIZE.rsvd.<limit_file>`, 5.7+)."""
    for i, h in enumerate(limits):
        p = f"{R}/hugepageLimits/{i}"
        size = h.get("pageSize") if isinstance(h, dict) else None
        if not isinstance(size, str) or not exists(d, f"hugetlb.{size}.{limit_file}"):
            raise CgroupError(f"{p}/pageSize", f"{size!r}: this host has no such huge page size")
        limit = get_int(h, "limit", p, minimum=0) or 0
        write(d, f"hugetlb.{size}.{limit_file}", str(limit), f"{p}/limit")
        if exists(d, f"hugetlb.{size}.rsvd.{limit_file}"):
            write(d, f"hugetlb.{size}.rsvd.{limit_file}", str(limit), f"{p}/limit")
