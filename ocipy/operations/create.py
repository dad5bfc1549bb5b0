"""`ocipy create`: from a validated bundle to an init waiting, fully set up, for `start` (ocipy/creator.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocipy import creator

if TYPE_CHECKING:
    import argparse  # annotations only: importing argparse costs ~7 ms


def main(args: argparse.Namespace) -> int:
    created = creator.create(args)
    created.launch.release()
    return 0
