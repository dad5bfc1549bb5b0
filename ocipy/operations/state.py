"""`ocipy state ID`: the OCI state as JSON, status derived now (never read from disk)."""

import sys

from ..store import Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def main(args: "Any") -> int:
    # no lock: state.json is replaced atomically, and a read must not wait behind a slow create
    c = Store.from_args(args).open(args.container_id)
    try:
        state = c.oci_state()
    finally:
        c.close()
    from .. import fastjson as json

    # runc pretty-prints with two spaces (json.MarshalIndent)
    sys.stdout.write(json.dumps(state, indent=2) + "\n")
    return 0
