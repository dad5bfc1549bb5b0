"""`ocipy restore ID`: bring a container back from a CRIU checkpoint (the work is in ocipy/criu/restore.py)."""

from __future__ import annotations

from typing import Any


def main(args: Any) -> int:
    from ocipy.criu import restore

    return restore.restore(args)
