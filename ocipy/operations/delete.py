"""`ocipy delete [--force] ID`: remove a stopped container; `--force` kills it first, in any state
(ocipy/lifecycle.py `delete`)."""

from .. import lifecycle
from ..errors import OcipyError
from ..faults import point
from ..store import Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def main(args: "Any") -> int:
    force = bool(getattr(args, "force", False))
    try:
        c = Store.from_args(args).open(args.container_id)
    except OcipyError as exc:
        if force and exc.message == "container does not exist":
            return 0
        raise
    try:
        c.lock()
        point("delete.locked")
        lifecycle.delete(c, force)
    finally:
        c.close()
    return 0
