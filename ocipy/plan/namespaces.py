"""linux.namespaces, the id mappings a user namespace needs, the uts and time fields; stage 0 (joins, unshares, the
clone into stage 1)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`), `collections.abc` ~1 ms: annotations only
    from collections.abc import Mapping, Sequence
    from typing import Any

    from ocipy.spec import views

from ocipy.namespaces import CLONE_FLAGS
from ocipy.plan.base import PlanError, Section, _items, opt, pointer
from ocipy.planfmt import (
    OP_CLONE,
    OP_JOIN_CGROUP,
    OP_OPEN_FIFO,
    OP_SETNS,
    OP_SYNC_USERMAP,
    OP_TIMENS_OFFSETS,
    OP_UNSHARE,
)

NAMESPACES = CLONE_FLAGS  # linux.namespaces type -> CLONE_NEW* (the table: ocipy/namespaces.py)
CLONE_NEWTIME = CLONE_FLAGS["time"]
CLONE_NEWNS = CLONE_FLAGS["mount"]
CLONE_NEWCGROUP = CLONE_FLAGS["cgroup"]
CLONE_NEWUTS = CLONE_FLAGS["uts"]
CLONE_NEWIPC = CLONE_FLAGS["ipc"]
CLONE_NEWUSER = CLONE_FLAGS["user"]
CLONE_NEWPID = CLONE_FLAGS["pid"]
CLONE_NEWNET = CLONE_FLAGS["network"]


def _mapped(ident: int, mappings: Sequence[views.IDMapping] | None) -> bool:
    for m in mappings or ():
        start = int(opt(m).container_id or 0)
        if start <= ident < start + int(opt(m).size or 0):
            return True
    return False


class NamespacesSection(Section):
    # -- validation that needs the whole config

    def read_namespaces(self) -> None:
        for i, ns in enumerate(opt(self.linux).namespaces or ()):
            kind = opt(ns).type
            if kind not in NAMESPACES:
                raise PlanError(pointer("linux", "namespaces", i, "type"), f"unknown namespace type {kind!r}")
            if self.ns.has(kind):
                raise PlanError(pointer("linux", "namespaces", i), f"duplicate {kind} namespace")
            path = opt(ns).path
            if path:
                self.ns.joined[kind] = (i, path)
            else:
                self.ns.new[kind] = i

    def check_config(self) -> None:
        linux, user = self.linux, opt(self.process).user
        uid_maps, gid_maps = opt(linux).uid_mappings, opt(linux).gid_mappings
        if "user" in self.ns.new:
            if not uid_maps:
                raise PlanError("/linux/uidMappings", "a new user namespace needs uidMappings")
            if not gid_maps:
                raise PlanError("/linux/gidMappings", "a new user namespace needs gidMappings")
            if not _mapped(int(opt(user).uid or 0), uid_maps):
                raise PlanError("/process/user/uid", "the uid is not mapped in the user namespace")
            if not _mapped(int(opt(user).gid or 0), gid_maps):
                raise PlanError("/process/user/gid", "the gid is not mapped in the user namespace")
            for i, gid in enumerate(opt(user).additional_gids or ()):
                if not _mapped(int(gid), gid_maps):
                    raise PlanError(pointer("process", "user", "additionalGids", i), "gid not mapped")
        elif not self.in_userns:
            if uid_maps:
                raise PlanError("/linux/uidMappings", "uid mappings need a user namespace")
            if gid_maps:
                raise PlanError("/linux/gidMappings", "gid mappings need a user namespace")
            if self.host_uid != 0:
                raise PlanError("/linux/namespaces", "running as a non-root user needs a user namespace")
        spec = opt(self.spec)
        for name, ptr, value in (
            ("hostname", "/hostname", spec.hostname),
            ("domainname", "/domainname", spec.domainname),
        ):
            if value and not self.ns.has("uts"):
                raise PlanError(ptr, f"setting the {name} needs a uts namespace")
        if opt(linux).time_offsets is not None and "time" not in self.ns.new:
            raise PlanError("/linux/timeOffsets", "time offsets need a new time namespace")

    # -- stage 0: in the caller's namespaces

    def stage0(self) -> None:
        # Opened before any namespace change: in a new user namespace the init would no longer be the host root
        # that owns the state directory. The stage-1 init inherits the fd; stage 0 drops it when it exits.
        self.op(OP_OPEN_FIFO, "", s=(self.fifo,), what="exec fifo")
        for path in self.cgroup_procs:
            self.op(OP_JOIN_CGROUP, "/linux/cgroupsPath", s=(path,), what="join the container's cgroup")
        # A joined user namespace first (it owns the others we may join), the mount namespace last (the paths
        # of the other namespace files are looked up in the caller's mount namespace).
        joins = sorted(self.ns.joined.items(), key=lambda kv: (kv[0] != "user", kv[0] == "mount", kv[1][0]))
        for kind, (i, path) in joins:
            self.op(OP_SETNS, pointer("linux", "namespaces", i), s=(path,), a=(NAMESPACES[kind],), what=f"join {kind}")
        if "user" in self.ns.new:
            self.op(
                OP_UNSHARE, pointer("linux", "namespaces", self.ns.new["user"]), a=(CLONE_NEWUSER,), what="new user"
            )
            self.op(OP_SYNC_USERMAP, "/linux/uidMappings", what="write the id maps")
        others = [k for k in NAMESPACES if k in self.ns.new and k != "user"]
        if others:
            flags = 0
            for k in others:
                flags |= NAMESPACES[k]
            self.op(OP_UNSHARE, "/linux/namespaces", a=(flags,), what="new " + ", ".join(others))
        offsets = opt(self.linux).time_offsets
        if offsets is not None:
            self.op(OP_TIMENS_OFFSETS, "/linux/timeOffsets", s=(self.timens_text(offsets),), what="clock offsets")
        self.op(OP_CLONE, "", a=(0,), what="fork the container init")

    @staticmethod
    def timens_text(offsets: views.TimeOffsets | Mapping[str, Any]) -> str:
        lines = []
        entries = dict(_items(offsets))
        for clock in entries:
            if clock not in ("monotonic", "boottime"):
                raise PlanError(pointer("linux", "timeOffsets", clock), "unknown clock (monotonic or boottime)")
        for clock in ("monotonic", "boottime"):
            if clock in entries:
                value = entries[clock]
                if isinstance(value, dict):
                    secs, nsecs = value.get("secs"), value.get("nanosecs")
                else:
                    secs, nsecs = opt(value).secs, opt(value).nanosecs
                lines.append(f"{clock} {int(secs or 0)} {int(nsecs or 0)}\n")
        return "".join(lines)
