"""`ocipy check [--format text|json]`: what this host can give a container, probed live, for an operator.

Each item says whether the facility is there (`available`), what was seen (`detail`), what it means for containers
run by ocipy here (`meaning`), and whether a default Podman or Kubernetes container needs it (`needed`). The probes
live in ocipy/hostcheck/ and call what `create` calls, so check and create cannot disagree. Exit status 1 when an
item that is `needed` is missing, after the whole report.

Layout (other issues add lines here): `SECTIONS` lists the sections in order; each is a function returning
{name: item}. The cgroup drivers are in `hostcheck.cgroups.drivers` (the systemd driver's line is the systemd
issue's), checkpoint tooling in `checkpoint()` (the criu issue's), rootless prerequisites in
`hostcheck.rootless.rootless` (the rootless issue's).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from ..errors import os_reason
from ..hostcheck import item, read
from ..hostcheck.cgroups import cgroups, drivers
from ..hostcheck.kernel import kernel, namespaces, versions
from ..hostcheck.rootless import rootless
from ..hostcheck.security import security

# the state root `--root` names (set by main), else the default
_root: str | None = None


def state() -> dict[str, Any]:
    from ..store import default_root

    root = os.path.abspath(_root) if _root else default_root()
    # create makes the root (and its parents) and a directory per container in it: try exactly that, and undo it
    where = root
    while not os.path.isdir(where):
        where = os.path.dirname(where)
    try:
        import tempfile

        os.rmdir(tempfile.mkdtemp(prefix=".ocipy-check-", dir=where))
        ok, why = True, ""
    except OSError as exc:
        ok, why = False, f"; {where}: {os_reason(exc)}"
    detail = f"{root} exists" if where == root else f"{root} (made by the first create)"
    fs, depth = "", -1
    for line in (read("/proc/self/mounts") or "").splitlines():
        parts = line.split()
        holds = len(parts) > 2 and (root == parts[1] or root.startswith(parts[1].rstrip("/") + "/"))
        if holds and len(parts[1]) >= depth:  # the deepest mount point holding the root (the last when stacked)
            fs, depth = parts[2], len(parts[1])
    return {
        "root": item(
            ok,
            detail + (f" on {fs}" if fs else "") + why,
            "container state lives here (--root changes it); it should be a tmpfs, as runc's /run/runc"
            if ok
            else "create fails: the state root cannot be written",
            needed=True,
        )
    }


def checkpoint() -> dict[str, Any]:
    """Checkpoint/restore tooling: criu found, its version, `criu check`, pre-dump and lazy pages (ocipy/criu/probe.py)."""
    from ..criu import probe

    return {name: item(ok, detail, meaning) for name, (ok, detail, meaning) in probe.report().items()}


SECTIONS: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
    ("versions", "versions", versions),
    ("state", "state", state),
    ("namespaces", "namespaces", namespaces),
    ("cgroups", "cgroups", cgroups),
    ("drivers", "cgroup drivers", drivers),
    ("security", "security", security),
    ("kernel", "kernel features", kernel),
    ("rootless", "rootless prerequisites", rootless),
    ("checkpoint", "checkpoint/restore", checkpoint),
]


def report() -> dict[str, Any]:
    rep: dict[str, Any] = {key: probe() for key, _, probe in SECTIONS}
    found = [it for sec in rep.values() for it in sec.values()]
    missing = sorted(f"{key}.{name}" for key, sec in rep.items() for name, it in sec.items() if not it["available"])
    needed = sorted(
        f"{key}.{name}" for key, sec in rep.items() for name, it in sec.items() if it["needed"] and not it["available"]
    )
    rep["summary"] = {
        "ok": sum(1 for it in found if it["available"]),
        "unavailable": missing,
        "needed_missing": needed,
        "text": summary_text(len(found) - len(missing), missing, needed),
    }
    return rep


def summary_text(ok: int, missing: list[str], needed: list[str]) -> str:
    head = f"{ok} ok, {len(missing)} unavailable"
    if needed:
        return f"{head}; a default Podman or Kubernetes container cannot run here: missing {', '.join(needed)}"
    return f"{head}; a default Podman or Kubernetes container can run here"


def _text(rep: dict[str, Any]) -> str:
    lines: list[str] = []
    for key, title, _ in SECTIONS:
        lines.append(title)
        for name, it in rep[key].items():
            mark = "ok " if it["available"] else ("NO!" if it["needed"] else "no ")
            lines.append(f"  {mark} {name:<20} {it['detail']}")
            lines.append(f"       {'':<20} -> {it['meaning']}")
        lines.append("")
    lines.append(f"summary: {rep['summary']['text']}")
    return "\n".join(lines) + "\n"


def main(args: Any) -> int:
    fmt = getattr(args, "format", None) or "text"
    if fmt not in ("text", "json"):
        from ..errors import OcipyError

        raise OcipyError(f"invalid format option: {fmt}")
    global _root
    _root = getattr(args, "root", None)
    rep = report()
    sys.stdout.write(json.dumps(rep, indent=2) + "\n" if fmt == "json" else _text(rep))
    return 1 if rep["summary"]["needed_missing"] else 0
