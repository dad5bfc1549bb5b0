"""`ocipy events [--stats] [--interval D] ID`: container statistics as runc prints them.

`--stats`: one `{"type":"stats","id":ID,"data":{...}}` line and exit. Otherwise a stats line every interval (Go
duration, default 5s) and an `{"type":"oom","id":ID}` line whenever the cgroup's OOM-kill count grows, until the
container stops.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ..errors import OcipyError
from ..store import STOPPED, Store

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration for the usual forms: `5s`, `100ms`, `1m30s`, `1.5s`."""
    s = text.strip()
    if not s:
        raise OcipyError(f"invalid duration {text!r}")
    total, i = 0.0, 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        num, unit = s[i:j], s[j:k]
        if not num or unit not in _UNITS:
            raise OcipyError(f"invalid duration {text!r}")
        try:
            total += float(num) * _UNITS[unit]
        except ValueError:
            raise OcipyError(f"invalid duration {text!r}") from None
        i = k
    if total <= 0:
        raise OcipyError("duration interval must be greater than 0")
    return total


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main(args: Any) -> int:
    cid = args.container_id
    interval = 0.0 if getattr(args, "stats", False) else parse_duration(getattr(args, "interval", None) or "5s")
    c = Store.from_args(args).open(cid)
    try:
        c.read_state()
        c.status().require("read_events")
        cgroup = c.cgroup()
        if getattr(args, "stats", False):
            _emit({"type": "stats", "id": cid, "data": cgroup.stats()})
            return 0
        ooms = cgroup.oom_kills()
        from ocipy.foreground import collect_from_now

        collect_from_now()  # a stream that may last days (cli.entry's GC policy)
        while c.status() != STOPPED:
            n = cgroup.oom_kills()
            if n > ooms:
                _emit({"type": "oom", "id": cid})
            ooms = n
            _emit({"type": "stats", "id": cid, "data": cgroup.stats()})
            time.sleep(interval)
    finally:
        c.close()
    return 0
