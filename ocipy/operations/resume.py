"""`ocipy resume ID`: thaw a paused container's cgroup."""

from ..store import Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def main(args: "Any") -> int:
    c = Store.from_args(args).open_locked(args.container_id)
    try:
        c.status().require("resume")
        c.freeze(False)
    finally:
        c.close()
    return 0
