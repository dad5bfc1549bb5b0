"""`ocipy checkpoint ID`: dump a running container with CRIU (the work is in ocipy/criu/dump.py)."""

from __future__ import annotations

from typing import Any


def main(args: Any) -> int:
    from ocipy.criu import dump

    return dump.checkpoint(args)
