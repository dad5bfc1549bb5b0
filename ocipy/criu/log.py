"""CRIU's own words for a failure: the first error its log records (dump.log, restore.log in the work directory)."""

from __future__ import annotations

import re

# "(00.012345) Error (criu/mount.c:1234): mnt: No external mount for /foo" -> "mnt: No external mount for /foo"
# (this module is imported only when something failed)
_ERROR = re.compile(r"^(?:\(\s*[\d.]+\)\s*)?(?:\d+:\s*)?Error\s*\(([^)]*)\):\s*(.*)$")
_GENERIC = ("Dumping FAILED", "Restoring FAILED", "Pre-dumping FAILED")
# errors CRIU logs and then carries on from: its fd limit (no CAP_SYS_RESOURCE here), its tun probe (kerndat)
_NOISE = ("rlimit: Can't setup RLIMIT_NOFILE", "tun: Unable to create tun")


def first_error(path: str, limit: int = 1 << 22) -> str | None:
    """The first specific `Error (...)` line of a CRIU log, without its time stamp and source position."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
    except OSError:
        return None
    fallback = None
    for raw in data.decode("utf-8", "replace").splitlines():
        m = _ERROR.match(raw.strip())
        if not m:
            continue
        text = m.group(2).strip().rstrip(".")
        if not text:
            continue
        if any(n in text for n in _NOISE):
            continue
        if any(g in text for g in _GENERIC):
            fallback = fallback or text
            continue
        return text
    return fallback


def strip_prefix(line: str) -> str:
    """A CRIU log or stderr line without its time stamp and `Error (file:line):` prefix."""
    m = _ERROR.match(line.strip())
    return m.group(2).strip() if m else line.strip()
