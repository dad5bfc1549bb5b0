"""What a container's config makes external to CRIU, worked out for a dump and for a restore (pure but for reads).

CRIU dumps everything it can rebuild by itself (tmpfs contents, proc, sysfs, devpts, mqueue, a network namespace of
the container's own, seccomp filters and no_new_privs, the pty pair behind the console). It must be told about what
comes from outside the container, and at restore where to find it again:

- bind mounts of the config: key = the destination, found again at the (possibly new) config's source;
- nodes bound from the host's devtmpfs: masked files (ocipy binds /dev/null over them) and devices a user
  namespace cannot mknod: key = the mount point, named `/dev/<node>`, found again at the host's `/dev/<node>`;
- the container's cgroup directories bound on its /sys/fs/cgroup (no cgroup namespace): key = the mount point,
  found again at the *new* container's cgroup directory of the same hierarchy;
- a network or pid namespace the config joins by path: `net[<inode>]:extRootNetNS` at dump, the namespace file
  handed over as an inherited fd at restore; other joined namespaces are joined again (`join_ns`).

The dump writes what it told CRIU into `ocipy-externals.json` in the image directory, so the restore knows each
external's kind without guessing from names (the image directory travels with Podman's --export tarballs).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from typing import Any

from ocipy import fastjson
from ocipy.cgroups.layout import unescape
from ocipy.namespaces import PROC_NAMES

EXTERNALS_FILE = "ocipy-externals.json"
DESCRIPTORS_FILE = "descriptors.json"  # runc's name and format: the init's fds 0-2 as /proc/PID/fd shows them
CGROUP_FS = frozenset({"cgroup", "cgroup2"})
EXT_NS_KEYS = {"network": "extRootNetNS", "pid": "extRootPidNS"}
# the kinds CRIU joins again at restore (join_ns), config type -> CRIU's name (the /proc/PID/ns name)
CRIU_NS_NAMES = {kind: PROC_NAMES[kind] for kind in ("network", "pid", "ipc", "uts", "mount", "user")}


class MountEntry:
    """One line of /proc/PID/mountinfo."""

    __slots__ = ("fstype", "mount_id", "parent", "point", "root", "source", "super_opts")

    def __init__(self, mount_id: int, parent: int, root: str, point: str, fstype: str, source: str, opts: str) -> None:
        self.mount_id = mount_id
        self.parent = parent
        self.root = root
        self.point = point
        self.fstype = fstype
        self.source = source
        self.super_opts = opts


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        f = left.split()
        r = right.split()
        if len(f) < 5 or len(r) < 3:
            continue
        entries.append(MountEntry(int(f[0]), int(f[1]), unescape(f[3]), unescape(f[4]), r[0], unescape(r[1]), r[2]))
    return entries


def clean(path: str) -> str:
    out = posixpath.normpath("/" + path)
    return "/" + out.lstrip("/") if out != "/" else "/"


def _options(mount: dict[str, Any]) -> list[str]:
    return [str(o) for o in mount.get("options") or []]


def is_bind(mount: dict[str, Any]) -> bool:
    opts = _options(mount)
    return "bind" in opts or "rbind" in opts or mount.get("type") == "bind"


def _namespaces(document: dict[str, Any]) -> list[dict[str, Any]]:
    linux = document.get("linux") or {}
    return [ns for ns in linux.get("namespaces") or [] if isinstance(ns, dict)]


def new_namespaces(document: dict[str, Any]) -> set[str]:
    return {str(ns.get("type")) for ns in _namespaces(document) if not ns.get("path")}


def joined_namespaces(document: dict[str, Any]) -> dict[str, str]:
    return {str(ns.get("type")): str(ns["path"]) for ns in _namespaces(document) if ns.get("path")}


def _cgroup_hierarchy(entry: MountEntry) -> str:
    """The hierarchy a cgroup mount shows: its controllers (`cpu,cpuacct`, `name=systemd`), or "" for cgroup2."""
    if entry.fstype == "cgroup2":
        return ""
    skip = {"rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "nodiratime", "strictatime", "xattr"}
    skip |= {"noprefix", "clone_children", "cpuset_v2_mode", "none", "favordynmods", "memory_localevents"}
    names = [o for o in entry.super_opts.split(",") if o and o not in skip and ("=" not in o or o.startswith("name="))]
    return ",".join(names)


class DumpPlan:
    def __init__(self) -> None:
        self.ext_mnt: list[tuple[str, str]] = []
        self.external: list[str] = []
        self.record: list[dict[str, str]] = []

    def add(self, key: str, name: str, kind: str, **extra: str) -> None:
        if any(k == key for k, _ in self.ext_mnt):
            return
        self.ext_mnt.append((key, name))
        self.record.append({"key": key, "name": name, "kind": kind, **extra})


def for_dump(document: dict[str, Any], mounts: list[MountEntry]) -> DumpPlan:
    """The external mounts and namespaces of a running container (`mounts`: its /proc/PID/mountinfo)."""
    plan = DumpPlan()
    for m in document.get("mounts") or []:
        if isinstance(m, dict) and m.get("destination") and is_bind(m):
            dest = clean(str(m["destination"]))
            plan.add(dest, dest, "bind")
    has_cgroupns = "cgroup" in new_namespaces(document)
    for e in mounts:
        if e.point == "/":
            continue
        if e.fstype == "devtmpfs":
            node = clean(posixpath.join("/dev", e.root.lstrip("/")))
            plan.add(e.point, node, "dev")
        elif e.fstype in CGROUP_FS and not has_cgroupns and e.root != "/":
            plan.add(e.point, e.point, "cgroup", hierarchy=_cgroup_hierarchy(e), root=e.root)
    for kind, path in sorted(joined_namespaces(document).items()):
        if kind in EXT_NS_KEYS:
            ino = os.stat(path).st_ino
            plan.external.append(f"{CRIU_NS_NAMES[kind]}[{ino}]:{EXT_NS_KEYS[kind]}")
    return plan


def write_record(images_fd: int, plan: DumpPlan, descriptors: list[str], stdio: list[dict[str, Any]]) -> None:
    for name, payload in (
        (EXTERNALS_FILE, {"version": 1, "mounts": plan.record, "stdio": stdio}),
        (DESCRIPTORS_FILE, descriptors),
    ):
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600, dir_fd=images_fd
        )
        with open(fd, "wb") as f:
            f.write(fastjson.dumps(payload).encode())


def read_json(images_fd: int, name: str) -> Any:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=images_fd)
    except FileNotFoundError:
        return None
    with open(fd, "rb") as f:
        try:
            return fastjson.loads(f.read())
        except ValueError:
            return None


def _cgroup_dir_for(hierarchy: str, record: dict[str, Any] | None) -> str | None:
    if not isinstance(record, dict):
        return None
    if hierarchy == "":
        v2 = record.get("v2")
        return v2 if isinstance(v2, str) else None
    v1 = record.get("v1")
    if not isinstance(v1, dict):
        return None
    for ctrl in hierarchy.split(","):
        d = v1.get(ctrl)
        if isinstance(d, str):
            return d
    return None


def _host_cgroup_mount(hierarchy: str, host_mounts: list[MountEntry]) -> str | None:
    for e in host_mounts:
        if e.fstype in CGROUP_FS and e.root == "/" and _cgroup_hierarchy(e) == hierarchy:
            return e.point
    return None


def for_restore(
    document: dict[str, Any],
    bundle: str,
    recorded: list[dict[str, str]] | None,
    cgroup_record: dict[str, Any] | None,
    host_mounts: list[MountEntry],
) -> list[tuple[str, str]]:
    """ext_mnt pairs (name in the image -> host path now) for a restore with this config and these cgroups."""
    pairs: list[tuple[str, str]] = []
    sources: dict[str, str] = {}
    for m in document.get("mounts") or []:
        if isinstance(m, dict) and m.get("destination") and is_bind(m) and m.get("source"):
            src = str(m["source"])
            sources[clean(str(m["destination"]))] = src if src.startswith("/") else posixpath.join(bundle, src)
    if recorded is None:  # an image without ocipy's record (runc's): the config's binds and /dev/null, as runc does
        recorded = [{"name": d, "kind": "bind"} for d in sources]
        recorded.append({"name": "/dev/null", "kind": "dev"})
    seen: set[str] = set()
    for r in recorded:
        name, kind = str(r.get("name", "")), r.get("kind")
        if not name or name in seen:
            continue
        seen.add(name)
        if kind == "bind":
            if name in sources:
                pairs.append((name, sources[name]))
        elif kind == "dev":
            pairs.append((name, name))
        elif kind == "cgroup":
            hierarchy, root = str(r.get("hierarchy", "")), str(r.get("root", "/"))
            d = _cgroup_dir_for(hierarchy, cgroup_record)
            if d is None:
                base = _host_cgroup_mount(hierarchy, host_mounts)
                d = posixpath.join(base, root.lstrip("/")) if base else None
            if d is not None:
                pairs.append((name, d))
    return pairs


def external_stdio(pid: int, mounts: list[MountEntry]) -> list[dict[str, Any]]:
    """The init's fds 0-2 that are files on a mount outside its mount namespace (the caller's /dev/null, a log file
    of the host): CRIU cannot reopen them by path, so they are external (`file[<mnt_id>:<inode>]`, both hex, CRIU's
    own key) and a restore hands in its own fd of the same number, as runc does for pipes."""
    inside = {e.mount_id for e in mounts}
    out: list[dict[str, Any]] = []
    for fd in range(3):
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
            mnt_id = int(info["mnt_id"].strip())
        except (OSError, KeyError, ValueError):
            continue
        import stat as st_mod

        if mnt_id in inside or not (st_mod.S_ISREG(st.st_mode) or st_mod.S_ISCHR(st.st_mode)):
            continue
        if st_mod.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in (4, 5, 136):
            continue  # a terminal: --shell-job's business
        key = f"file[{mnt_id:x}:{st.st_ino:x}]"
        null = st_mod.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
        writable = int(info.get("flags", "0").strip() or "0", 8) & (os.O_WRONLY | os.O_RDWR) != 0
        path = ""
        if not null:
            with contextlib.suppress(OSError):
                path = os.readlink(f"/proc/{pid}/fd/{fd}")
        flags = int(info.get("flags", "0").strip() or "0", 8) & (os.O_ACCMODE | os.O_APPEND)
        entry = {"fd": fd, "key": key, "null": null, "writable": writable, "path": path, "flags": flags}
        same = [e for e in out if e["key"] == key]
        if not same:
            out.append(entry)
        elif writable and not same[0]["writable"]:
            # one open file stands for every fd with this key: a writable one, so stdout keeps working
            out[out.index(same[0])] = entry
    return out


def descriptors_of(pid: int) -> list[str]:
    out = []
    for fd in range(3):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            out.append("")
    return out
