"""`ocipy create`: from a validated bundle to an init waiting, fully set up, for `start` (ocipy/creator.py)."""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`: it imports `re` and `contextlib`

from ocipy import creator

if TYPE_CHECKING:
    import argparse  # annotations only: importing argparse costs ~7 ms


def main(args: argparse.Namespace) -> int:
    created = creator.create(args)
    created.launch.release()
    return 0
