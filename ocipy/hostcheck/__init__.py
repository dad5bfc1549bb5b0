"""The probes of `ocipy check`: what this host can give a container, each answered live by the call `create` itself
makes (seccomp: the libseccomp `create` loads; LSMs: `lsm.active()`; block-IO weights: the files `cgroups/v1.py`
and `v2.py` write), so check and create cannot disagree. Probes only read files, load a library or make harmless
system calls (invalid arguments that tell ENOSYS apart from "exists").

A probe returns {name: item}; `item` is one line of the report. The sections: `kernel.py` (versions, namespaces,
kernel features), `cgroups.py` (layout, controllers, drivers), `security.py` (seccomp, LSMs), `rootless.py`
(subordinate ids, map helpers, runtime dir). The verb, its order and summary: ocipy/operations/check.py.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from ..cgroups import layout as layout_mod
from ..posixlite import read_text

NR = {"pidfd_open": 434, "clone3": 435, "openat2": 437, "mount_setattr": 442, "open_tree": 428}


def read(path: str) -> str | None:
    text = read_text(path)
    return None if text is None else text.strip()


_libc: Any = None


def syscall_errno(nr: int, *args: int) -> int:
    """0 when the call succeeded (the result is closed if it looks like an fd), else errno."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    rc = _libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    if rc < 0:
        return int(ctypes.get_errno())
    if nr in (NR["pidfd_open"], NR["openat2"]) and rc > 2:
        os.close(int(rc))
    return 0


def item(ok: bool, detail: str, meaning: str, needed: bool = False) -> dict[str, Any]:
    """One line of the report. `needed`: a default Podman or Kubernetes container cannot run without it."""
    return {"available": ok, "detail": detail, "meaning": meaning, "needed": needed}


def layout() -> layout_mod.Layout | OSError:
    """The host's cgroup layout, or why it cannot be read."""
    try:
        return layout_mod.detect()
    except OSError as exc:
        return exc
