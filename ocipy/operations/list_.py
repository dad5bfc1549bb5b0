"""`ocipy list [--format table|json] [--quiet]`: every container under the root, with its derived status."""

import sys

from .. import posixlite as px
from ..errors import OcipyError
from ..store import Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_owners: dict[int, str] = {}


def _owner(uid: int) -> str:
    # as runc: the user owning the container's state dir, `#UID` when it has no name; one NSS lookup per uid (each
    # tries nscd's socket and reads nsswitch.conf and /etc/passwd), not one per container
    if uid not in _owners:
        import pwd

        try:
            _owners[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _owners[uid] = f"#{uid}"
    return _owners[uid]


def _table(rows: list[list[str]]) -> str:
    """Go's tabwriter as runc sets it up (minwidth 12, padding 3); the last column is not padded."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1] + "\n" for r in rows)


def main(args: "Any") -> int:
    fmt = args.format or "table"
    if fmt not in ("table", "json"):
        raise OcipyError(f"invalid format option: {fmt}")
    store = Store.from_args(args)
    states: list[dict[str, Any]] = []
    for cid in store.ids():
        # no lock: a slow create must not stall list; state.json is replaced atomically
        try:
            c = store.open(cid)
        except OcipyError:
            continue  # deleted meanwhile
        try:
            state = c.oci_state()
            state["owner"] = _owner(px.fstat(c.fd).st_uid)
        except OcipyError:
            continue
        finally:
            c.close()
        states.append(state)
    if args.quiet:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
    elif fmt == "json":
        from .. import fastjson as json

        # runc prints `null` for no containers (a nil Go slice); callers take that or `[]`
        sys.stdout.write(json.dumps(states or None) + "\n")
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]] for s in states]
        sys.stdout.write(_table(rows))
    return 0
