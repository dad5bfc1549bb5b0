"""Which cgroup hierarchies this host has, read from the mount table (never assumed).

- **v1**: only `cgroup` (v1) mounts with controllers;
- **v2** (unified): one `cgroup2` mount and no v1 controller hierarchy;
- **hybrid**: v1 controller hierarchies plus a `cgroup2` hierarchy holding whatever controllers v1 does not bind
  (on this machine: hugetlb only, at /sys/fs/cgroup/unified).

Named v1 hierarchies without controllers (`name=systemd`) are listed but hold no resources. The controllers of the
v2 hierarchy come from its root `cgroup.controllers`. A controller mounted more than once (bind mounts) counts at
its first mount point (below /sys/fs/cgroup when there is one).
"""

from __future__ import annotations

import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions

from ocipy import posixlite as px

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
    from collections.abc import Callable  # `collections` costs ~1.5 ms: annotations only
    from dataclasses import dataclass, field
else:
    from ocipy.records import dataclass, field

V1_CONTROLLERS = frozenset(
    {
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "net_prio",
        "blkio",
        "perf_event",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    }
)

V1, V2, HYBRID, NONE = "v1", "v2", "hybrid", "none"


@dataclass(frozen=True)
class Hierarchy:
    mountpoint: str
    version: int  # 1 or 2
    controllers: frozenset[str]  # v1: from the mount options; v2: the root's cgroup.controllers
    name: str = ""  # v1 `name=` option (systemd), "" otherwise
    root: str = "/"  # the cgroup the mount shows (field 4 of mountinfo): "/" unless inside a cgroup namespace

    @property
    def key(self) -> str:
        """The v1 record key: the controllers joined (`cpu,cpuacct`) or `name=X`; `unified` for v2."""
        if self.version == 2:
            return "unified"
        return ",".join(sorted(self.controllers)) if self.controllers else f"name={self.name}"


@dataclass
class Layout:
    mode: str
    v1: dict[str, Hierarchy] = field(default_factory=dict)  # controller -> hierarchy
    named: dict[str, Hierarchy] = field(default_factory=dict)  # name= -> hierarchy
    v2: Hierarchy | None = None

    @property
    def v2_controllers(self) -> frozenset[str]:
        return self.v2.controllers if self.v2 else frozenset()

    def v1_hierarchies(self) -> list[Hierarchy]:
        """Each v1 controller hierarchy once, sorted by mount point."""
        seen: dict[str, Hierarchy] = {}
        for h in self.v1.values():
            seen.setdefault(h.mountpoint, h)
        return [seen[k] for k in sorted(seen)]

    def where(self, controller: str) -> str | None:
        """ "v1", "v2" or None: where `controller` can be used on this host (v1 wins on a hybrid host, as the
        kernel lets a controller be bound to one hierarchy only)."""
        if controller in self.v1:
            return V1
        if controller in self.v2_controllers:
            return V2
        return None


def unescape(s: str) -> str:
    """A mountinfo field with its octal escapes (\\040 for a space, ...) decoded; criu/externals.py reads it too."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1 : i + 4].isdigit():
            out.append(chr(int(s[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _read_controllers(mountpoint: str) -> frozenset[str]:
    try:
        with open(px.join(mountpoint, "cgroup.controllers")) as f:
            return frozenset(f.read().split())
    except OSError:
        return frozenset()


def parse_mountinfo(text: str, read_controllers: Callable[[str], frozenset[str]] = _read_controllers) -> Layout:
    """The layout a /proc/self/mountinfo text describes. `read_controllers(mountpoint)` gives a v2 mount's
    controllers (tests pass a fake)."""
    v1: dict[str, Hierarchy] = {}
    named: dict[str, Hierarchy] = {}
    v2: Hierarchy | None = None

    def better(new: str, old: str) -> bool:
        # prefer the conventional place when a hierarchy is mounted twice
        return new.startswith("/sys/fs/cgroup") and not old.startswith("/sys/fs/cgroup")

    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        parts, fs = pre.split(), post.split()
        if len(parts) < 5 or len(fs) < 2:
            continue
        fstype = fs[0]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        root, mnt = unescape(parts[3]), unescape(parts[4])
        if fstype == "cgroup2":
            if v2 is None or better(mnt, v2.mountpoint):
                v2 = Hierarchy(mnt, 2, read_controllers(mnt), root=root)
            continue
        opts = fs[2].split(",") if len(fs) > 2 else []
        ctrls = frozenset(o for o in opts if o in V1_CONTROLLERS)
        name = next((o[5:] for o in opts if o.startswith("name=")), "")
        h = Hierarchy(mnt, 1, ctrls, name=name, root=root)
        if ctrls:
            for c in ctrls:
                if c not in v1 or better(mnt, v1[c].mountpoint):
                    v1[c] = h
        elif name and (name not in named or better(mnt, named[name].mountpoint)):
            named[name] = h
    if v1 and v2 is not None:
        mode = HYBRID
    elif v1:
        mode = V1
    elif v2 is not None:
        mode = V2
    else:
        mode = NONE
    return Layout(mode, v1, named, v2)


_CACHED: Layout | None = None


def detect(refresh: bool = False) -> Layout:
    """This host's layout (cached for the process)."""
    global _CACHED
    if _CACHED is None or refresh:
        with open("/proc/self/mountinfo") as f:
            _CACHED = parse_mountinfo(f.read())
    return _CACHED


def parse_proc_cgroup(text: str) -> tuple[dict[str, str], str | None]:
    """/proc/PID/cgroup -> ({v1 controller or name=X: path}, v2 path or None)."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in text.splitlines():
        hid, _, rest = line.partition(":")
        ctrls, _, path = rest.partition(":")
        if hid == "0" and ctrls == "":
            v2 = path
            continue
        for c in ctrls.split(","):
            if c:
                v1[c] = path
    return v1, v2


@dataclass(frozen=True)
class CgroupHierarchy:
    """One cgroup mount under /sys/fs/cgroup on the host."""

    name: str  # directory under /sys/fs/cgroup ("cpu,cpuacct", "unified"); "" = mounted on /sys/fs/cgroup itself
    fstype: str  # "cgroup" (v1) or "cgroup2"
    options: str  # the v1 options naming the hierarchy ("cpu,cpuacct", "name=systemd"); "" for cgroup2


def mounted_hierarchies() -> tuple[CgroupHierarchy, ...]:
    """The cgroup mounts directly under /sys/fs/cgroup, as the planner's host facts (the container's cgroup mount)."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return ()
    for line in lines:
        pre, _, post = line.partition(" - ")
        parts, fs = pre.split(), post.split()
        if len(parts) < 5 or len(fs) < 3 or fs[0] not in ("cgroup", "cgroup2"):
            continue
        mnt = parts[4].replace("\\040", " ")
        if mnt == "/sys/fs/cgroup":
            name = ""
        elif mnt.startswith("/sys/fs/cgroup/") and "/" not in mnt[len("/sys/fs/cgroup/") :]:
            name = mnt[len("/sys/fs/cgroup/") :]
        else:
            continue
        opts = ""
        if fs[0] == "cgroup":
            opts = ",".join(o for o in fs[2].split(",") if o in V1_CONTROLLERS or o.startswith("name="))
        found.append(CgroupHierarchy(name, fs[0], opts))
    return tuple(found)


def weight_files(lay: Layout) -> list[str] | None:
    """The blockIO weight files this host's hierarchies offer (`ocipy check`); None without a blkio/io controller."""
    if "blkio" in lay.v1:
        d = lay.v1["blkio"].mountpoint
        return [f for f in ("blkio.weight", "blkio.bfq.weight") if px.exists(px.join(d, f))]
    if lay.v2 is None or "io" not in lay.v2_controllers:
        return None
    d = lay.v2.mountpoint
    # the root cgroup has no io.weight: look one level down where a container cgroup would be
    try:
        subs = sorted(e for e in os.listdir(d) if px.isdir(px.join(d, e)))
    except OSError:
        subs = []
    files: list[str] = []
    for sub in [d, *(px.join(d, e) for e in subs)]:
        files = [f for f in ("io.weight", "io.bfq.weight") if px.exists(px.join(sub, f))]
        if files:
            break
    return files
