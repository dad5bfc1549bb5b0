"""Where a container's cgroups go: `linux.cgroupsPath` resolved against the host layout.

- absent: `/ocipy/<id>` in every hierarchy (a parent of its own keeps containers together and out of the way of the
  caller's cgroup; runc uses `<own cgroup>/<id>`);
- absolute (`/a/b`): that path below each hierarchy's mount point;
- relative (`a/b`): as runc -- below the runtime's own cgroup in each v1 hierarchy, next to it (below its parent) in
  the unified hierarchy, where a cgroup with processes cannot have children with controllers;
- `slice:prefix:name` is the systemd driver's form, only with `--systemd-cgroup` (ocipy/cgroups/systemd.py: systemd
  makes the cgroup, a transient scope unit); the parsing and slice expansion are here.

Names are cleaned like runc's CleanPath (`../../x` becomes `/x`), so a path can never leave the hierarchy; the
hierarchy root itself, empty components and NUL are refused.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms per create): see ocipy/records.py
    from dataclasses import dataclass, field
else:
    from ocipy.records import dataclass, field

from ocipy import posixlite as px

from . import CgroupError
from .layout import Layout, parse_proc_cgroup

DEFAULT_PARENT = "/ocipy"
POINTER = "/linux/cgroupsPath"
SYSTEMD_RUNNING_MARK = "/run/systemd/system"


@dataclass
class Target:
    """The resolved cgroup dirs: `v1` controller (or `name=X`) -> dir, `v2` dir or None, `path` as configured."""

    path: str
    v1: dict[str, str] = field(default_factory=dict)
    v2: str | None = None

    def dirs(self) -> list[str]:
        out = [self.v2] if self.v2 else []
        for d in self.v1.values():
            if d not in out:
                out.append(d)
        return out


def clean(path: str) -> str:
    """runc's CleanPath: lexical clean; a relative path is cleaned as if it were absolute, so `..` cannot climb."""
    if "\0" in path:
        raise CgroupError(POINTER, "contains a NUL byte")
    if not path:
        return ""
    if path.startswith("/"):
        return px.normpath(path) if path != "/" else "/"
    return relpath(px.normpath("/" + path), "/")


def relpath(path: str, start: str) -> str:
    """relpath (of posixpath) for a path under `start` or equal to it (what the cgroup code asks); anything else goes to
    posixpath itself (it imports `os`: ~1.2 ms of every create)."""
    if not path or not start or path[:2] == "//" or start[:2] == "//":
        import posixpath as real  # empty (an error) or a leading "//" (kept by normpath): posixpath's own answers

        return real.relpath(path, start)
    p, s = px.normpath(path), px.normpath(start).rstrip("/")
    if p == (s or "/"):
        return "."
    if p.startswith(s + "/"):
        return p[len(s) + 1 :]
    import posixpath as real

    return real.relpath(path, start)


def _check(rel: str) -> None:
    for part in rel.strip("/").split("/"):
        if part in ("", ".", ".."):
            raise CgroupError(POINTER, f"{rel!r}: must name a cgroup below the hierarchy root")
        if len(part.encode()) > 255:
            raise CgroupError(POINTER, f"{part[:32]}...: cgroup name too long")


def parse_systemd(value: str) -> tuple[str, str, str]:
    """`slice:prefix:name` -> its three parts (the slice defaults to system.slice)."""
    parts = value.split(":")
    if len(parts) != 3:
        raise CgroupError(POINTER, f"{value!r}: expected slice:prefix:name with --systemd-cgroup")
    slice_, prefix, name = parts
    slice_ = slice_ or "system.slice"
    if not slice_.endswith(".slice") or "/" in slice_:
        raise CgroupError(POINTER, f"{slice_!r}: not a systemd slice name")
    if not name or "/" in name or "/" in prefix:
        raise CgroupError(POINTER, f"{value!r}: prefix and name must be plain names, name non-empty")
    return slice_, prefix, name


def expand_slice(slice_: str) -> str:
    """systemd's slice nesting: `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root."""
    if slice_ == "-.slice":
        return "/"
    base = slice_[: -len(".slice")]
    if not base or base.startswith("-") or base.endswith("-") or "--" in base:
        raise CgroupError(POINTER, f"{slice_!r}: invalid slice name")
    out, acc = [], ""
    for comp in base.split("-"):
        acc = f"{acc}-{comp}" if acc else comp
        out.append(f"{acc}.slice")
    return "/" + "/".join(out)


def systemd_unit_path(value: str) -> str:
    slice_, prefix, name = parse_systemd(value)
    unit = name if name.endswith(".slice") else f"{prefix + '-' if prefix else ''}{name}.scope"
    return px.join(expand_slice(slice_), unit)


def systemd_running() -> bool:
    """sd_booted(3): systemd is PID 1 when /run/systemd/system exists."""
    return px.isdir(SYSTEMD_RUNNING_MARK)


def _within(mountpoint: str, mount_root: str, cgpath: str) -> str:
    """The directory of cgroup `cgpath` (as /proc/self/cgroup names it) in a hierarchy mounted at `mountpoint`
    showing `mount_root`."""
    rel = cgpath
    if mount_root not in ("", "/") and (cgpath == mount_root or cgpath.startswith(mount_root.rstrip("/") + "/")):
        rel = cgpath[len(mount_root.rstrip("/")) :] or "/"
    return px.join(mountpoint, rel.lstrip("/"))


def resolve(
    cgroups_path: str | None,
    cid: str,
    layout: Layout,
    *,
    systemd: bool = False,
    own_cgroup_text: str | None = None,
) -> Target:
    """The cgroup dirs for a container (the cgroupfs driver). `own_cgroup_text`: /proc/self/cgroup (tests pass
    one). `systemd`: the directories of the systemd driver's scope (ocipy/cgroups/systemd.py makes them)."""
    if systemd:
        # the scope's directories as the systemd driver will have them (create's recovery journal plans them)
        from .systemd import target_of, unit_of

        slice_, unit, value = unit_of(cgroups_path, cid)
        return target_of(layout, slice_, unit, value)
    if layout.mode == "none":
        raise CgroupError(POINTER, "no cgroup hierarchy is mounted on this host")
    rel = clean(cgroups_path) if cgroups_path else f"{DEFAULT_PARENT}/{cid}"
    if rel in ("", "/"):
        raise CgroupError(POINTER, f"{cgroups_path!r}: must name a cgroup below the hierarchy root")
    _check(rel)
    target = Target(rel)
    own_v1: dict[str, str] = {}
    own_v2: str | None = "/"
    if not rel.startswith("/"):
        if own_cgroup_text is None:
            with open("/proc/self/cgroup") as f:
                own_cgroup_text = f.read()
        own_v1, own_v2 = parse_proc_cgroup(own_cgroup_text)
    for h in layout.v1_hierarchies() + list(layout.named.values()):
        if rel.startswith("/"):
            d = px.join(h.mountpoint, rel.lstrip("/"))
        else:
            key = next(iter(sorted(h.controllers)), f"name={h.name}")
            d = px.join(_within(h.mountpoint, h.root, own_v1.get(key, "/")), rel)
        keys = sorted(h.controllers) if h.controllers else [f"name={h.name}"]
        for k in keys:
            target.v1[k] = d
    if layout.v2 is not None:
        h2 = layout.v2
        if rel.startswith("/"):
            target.v2 = px.join(h2.mountpoint, rel.lstrip("/"))
        else:
            parent = px.dirname((own_v2 or "/").rstrip("/")) or "/"
            target.v2 = px.join(_within(h2.mountpoint, h2.root, parent), rel)
    return target
