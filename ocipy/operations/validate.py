"""`ocipy validate [--bundle DIR]`: report every problem of a bundle's config.json, one per line."""

from __future__ import annotations

import argparse
import sys

from ocipy.bundle import CONFIG_NAME, validate_bundle


def main(args: argparse.Namespace) -> int:
    bundle = getattr(args, "bundle", None) or "."
    problems = validate_bundle(bundle)
    for pointer, message in problems:
        where = f"{CONFIG_NAME}: {pointer}: " if pointer else f"{CONFIG_NAME}: "
        print(where + message, file=sys.stderr)
    if problems:
        return 1
    print(f"bundle {bundle} is valid")
    return 0
