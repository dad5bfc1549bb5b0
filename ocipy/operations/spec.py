"""`ocipy spec [--rootless] [--bundle DIR]`: write a runc-style example config.json."""

from __future__ import annotations

import argparse
import json
import os

from ocipy.errors import OcipyError, os_reason
from ocipy.spec.default import default_config

CONFIG_NAME = "config.json"


def main(args: argparse.Namespace) -> int:
    bundle = getattr(args, "bundle", None) or "."
    rootless = bool(getattr(args, "rootless_spec", False))
    if not os.path.isdir(bundle):
        raise OcipyError(
            f"bundle {bundle}: not a directory" if os.path.exists(bundle) else f"bundle {bundle}: no such directory"
        )
    path = os.path.join(bundle, CONFIG_NAME)
    # Tabs, as runc writes it; the trailing newline keeps editors and diffs quiet.
    text = json.dumps(default_config(rootless), indent="\t") + "\n"
    try:
        # O_EXCL: never overwrite, even if the file appears between a check and the write.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise OcipyError(f"file {path} exists, remove it first") from None
    except OSError as exc:
        raise OcipyError(f"create {path}: {os_reason(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise OcipyError(f"write {path}: {os_reason(exc)}") from None
    return 0
