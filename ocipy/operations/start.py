"""`ocipy start ID`: release a created container's init through the exec fifo, with the start hooks around it
(ocipy/lifecycle.py `start`)."""

from .. import lifecycle
from ..store import Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def main(args: "Any") -> int:
    c = Store.from_args(args).open_locked(args.container_id)
    try:
        lifecycle.start(c)
    finally:
        c.close()
    return 0
