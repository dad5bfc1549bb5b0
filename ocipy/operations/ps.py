"""`ocipy ps [--format table|json] ID [ps options...]`: the processes in the container's cgroup.

json: a JSON array of host pids (what containerd's `ctr task ps` reads). table: the host's `ps` (default `-ef`),
its header and the lines whose PID column is one of the container's, as runc prints them.
"""

import os
import sys

from ..errors import OcipyError, os_reason
from ..store import STOPPED, Store

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PS_PATHS = ("/usr/bin/ps", "/bin/ps")  # absolute: Podman calls runtimes without PATH


def container_pids(args: "Any") -> list[int]:
    c = Store.from_args(args).open(args.container_id)
    try:
        c.read_state()
        pids = c.cgroup().pids()
        if pids is None:
            # no cgroup recorded: the init alone, and a warning saying why its children cannot be listed
            pids = [c.pid] if c.status() != STOPPED else []
            from ocipy import errors
            from ocipy.rootless import no_cgroup_message

            errors.warning(no_cgroup_message("list processes from", c.read_state().private) + ": the init process only")
        return pids
    finally:
        c.close()


def _pid_column(header: str) -> int:
    for i, name in enumerate(header.split()):
        if name == "PID":
            return i
    raise OcipyError("ps: no PID column in the ps output (give options that print one)")


def main(args: "Any") -> int:
    fmt = getattr(args, "format", None) or "table"
    if fmt not in ("table", "json"):
        raise OcipyError(f"invalid format option: {fmt}")
    pids = container_pids(args)
    if fmt == "json":
        sys.stdout.write("[" + ",".join(str(p) for p in pids) + "]\n")
        return 0
    import subprocess

    ps = next((p for p in PS_PATHS if os.access(p, os.X_OK)), "ps")
    opts = list(getattr(args, "ps_options", None) or []) or ["-ef"]
    try:
        out = subprocess.run([ps, *opts], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise OcipyError(f"ps: {os_reason(exc)}") from None
    if out.returncode != 0:
        raise OcipyError(f"ps: {(out.stderr or out.stdout).strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    col = _pid_column(lines[0])
    wanted = set(pids)
    keep = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            keep.append(line)
    sys.stdout.write("\n".join(keep) + "\n")
    return 0
