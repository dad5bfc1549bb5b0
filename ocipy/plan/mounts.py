"""The config's mounts: bind, filesystem and sysfs mounts, the checks on /proc destinations, locked flags in a user
namespace and idmapped mounts (cgroup mounts: ocipy/plan/cgroupmounts.py)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`), `collections.abc` ~1.3 ms: annotations only
    from collections.abc import Sequence

    from ocipy.spec import views

from ocipy import lsm
from ocipy import mountopts as mo
from ocipy import posixlite as px
from ocipy.plan.base import PlanError, _clean, opt, pointer
from ocipy.plan.cgroupmounts import CgroupMountsSection
from ocipy.planfmt import (
    MNTF_COPYUP,
    MNTF_IDMAP,
    MNTF_IDMAP_REC,
    MNTF_MKDIR,
    MNTF_MKFILE,
    MNTF_PROC,
    MNTF_TMPFS_MODE,
    MNTF_TREE,
    OP_SYNC,
    SYNC_MOUNT_TREES,
    mount_attrs,
)

# Files under /proc something may be mounted over (lxcfs and friends), as runc allows (CVE-2019-19921).
PROC_MOUNT_ALLOWED = frozenset(
    {
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/proc/loadavg",
        "/proc/slabinfo",
        "/proc/pressure",
        "/proc/net/dev",
        "/proc/sys/kernel/ns_last_pid",
    }
)

ATIME_FLAGS = mo.MS_NOATIME | mo.MS_NODIRATIME | mo.MS_RELATIME | mo.MS_STRICTATIME
ATIME_NAMES = {mo.MS_NOATIME: "noatime", mo.MS_NODIRATIME: "nodiratime", mo.MS_RELATIME: "relatime"}
LOCKED_NAMES = {
    mo.MS_RDONLY: ("rw", "ro"),
    mo.MS_NOSUID: ("suid", "nosuid"),
    mo.MS_NODEV: ("dev", "nodev"),
    mo.MS_NOEXEC: ("exec", "noexec"),
}


def _map_text(mappings: Sequence[views.IDMapping]) -> str:
    """/proc/PID/uid_map text of the mappings."""
    return "".join(f"{opt(m).container_id or 0} {opt(m).host_id or 0} {opt(m).size or 0}\n" for m in mappings)


class MountsSection(CgroupMountsSection):
    def sysfs_needs_bind(self) -> bool:
        """sysfs can be mounted only in a network namespace owned by the mounting user namespace (runc's rule)."""
        if not self.unprivileged_userns or "network" in self.ns.new:
            return False
        if "user" in self.ns.new:
            return True  # the network namespace is older than the user namespace: never owned by it
        joined = self.ns.joined.get("network")
        return joined is None or not self.host.netns_owned(joined[1])

    # -- mounts

    def mount(self, i: int, m: views.Mount) -> None:
        ptr = pointer("mounts", i)
        dest = opt(m).destination
        if not dest or not dest.startswith("/"):
            raise PlanError(ptr + "/destination", f"{dest!r} must be an absolute path")
        dest = _clean(dest)
        if dest == "/":
            raise PlanError(ptr + "/destination", "mounting over the container's root is not supported")
        fstype = opt(m).type or None
        source = opt(m).source
        opts = mo.parse(opt(m).options)
        bind = opts.bind or fstype == "bind"
        if opts.tmpcopyup and (fstype != "tmpfs" or bind):
            raise PlanError(pointer("mounts", i, "options", opts.where["tmpcopyup"]), "tmpcopyup is for tmpfs mounts")
        if bind and opts.data:
            # the kernel ignores filesystem data on a bind mount: an option ocipy does not know would be dropped
            k = opts.data_where[0]
            raise PlanError(pointer("mounts", i, "options", k), f"unknown option {opts.data[0]!r} for a bind mount")
        self.check_proc_dest(ptr, dest, fstype, source, bind)
        self.mount_dests.add(dest)
        # mappings without idmap/ridmap: idmap, as runc (config.md: they SHOULD come with one of the two)
        idmap = opts.idmap or opt(m).uid_mappings is not None or opt(m).gid_mappings is not None
        userns = self.check_idmap(i, m, opts, bind) if idmap else None
        if bind:
            self.bind_mount(ptr, dest, source, opts, idmap, userns)
        elif fstype == "cgroup":
            self.cgroup_mount(ptr, dest, opts)
        elif fstype == "sysfs" and self.sysfs_needs_bind():
            self.sysfs_rbind(ptr, dest, opts)
        else:
            self.fs_mount(ptr, dest, fstype, source, opts)

    def sysfs_rbind(self, ptr: str, dest: str, opts: mo.MountOptions) -> None:
        """sysfs needs a network namespace owned by our user namespace: show the host's /sys instead, with the asked
        flags applied to every mount beneath it."""
        rec = mount_attrs(opts.attr_set | mo.flags_to_attrs(opts.flags & mo.MNT_FLAGS), opts.attr_clr)
        self.mount_op(
            ptr,
            f"rbind /sys on {dest} (no network namespace for sysfs)",
            source="/sys",
            dest=dest,
            flags=mo.MS_BIND | mo.MS_REC,
            propagation=opts.propagation,
            attrs=rec,
            mntf=MNTF_MKDIR | MNTF_PROC,
        )

    def bind_mount(
        self,
        ptr: str,
        dest: str,
        source: str | None,
        opts: mo.MountOptions,
        idmap: bool = False,
        userns: tuple[str, str] | str | None = None,
    ) -> None:
        if not source:
            raise PlanError(ptr + "/source", "a bind mount needs a source")
        if not source.startswith("/"):
            source = px.join(self.bundle, source)
        mnt_flags = opts.flags & mo.MNT_FLAGS
        flags = mo.MS_BIND | (opts.flags & mo.MS_REC)
        remount = mo.MS_REMOUNT | mo.MS_BIND | mnt_flags if mnt_flags else 0
        if self.unprivileged_userns:
            self.check_locked(ptr, source, opts)
        mntf = MNTF_MKDIR if self.host.is_dir(source) else MNTF_MKFILE
        if idmap:
            mntf |= MNTF_IDMAP | (MNTF_IDMAP_REC if opts.ridmap else 0)
            if "user" not in self.ns.new and not self.trees_synced:
                # no OP_SYNC_USERMAP to bring the trees: the runtime makes them here, before the first is used
                self.op(OP_SYNC, ptr, a=(SYNC_MOUNT_TREES,), what="idmapped mount trees from the runtime")
                self.trees_synced = True
        elif "user" in self.ns.new and self.host_uid == 0 and not self.host.in_userns:
            # resolved as the runtime, before the user namespace: the runtime clones the source and the init
            # attaches the copy (runc's mount-fd handling); a source under a root-only host directory works
            mntf |= MNTF_TREE
        if dest == "/dev":
            self.dev_bind = True
        kind = "rbind" if flags & mo.MS_REC else "bind"
        index = self.mount_op(
            ptr,
            f"{kind} {source} on {dest}",
            source=source,
            dest=dest,
            flags=flags,
            remount=remount,
            propagation=opts.propagation,
            attrs=mount_attrs(opts.attr_set, opts.attr_clr),
            mntf=mntf,
        )
        if userns is not None:
            self.plan.idmap_userns[index] = userns

    def fs_mount(self, ptr: str, dest: str, fstype: str | None, source: str | None, opts: mo.MountOptions) -> None:
        if not fstype:
            raise PlanError(ptr + "/type", "a type is needed unless the options hold bind or rbind")
        flags = opts.flags
        if dest == "/dev" and flags & mo.MS_RDONLY:
            # devices and the console go into /dev first; it becomes read-only after (as runc does)
            flags &= ~mo.MS_RDONLY
            self.dev_ro.append(ptr)
        mntf = MNTF_MKDIR | (MNTF_PROC if fstype in ("proc", "sysfs") else 0)
        if fstype == "tmpfs":
            if not any(d.startswith("mode=") for d in opts.data):
                mntf |= MNTF_TMPFS_MODE  # an existing mount point keeps its mode (runc)
            if opts.tmpcopyup:
                mntf |= MNTF_COPYUP
        self.mount_op(
            ptr,
            f"{fstype} on {dest}",
            source=source,
            dest=dest,
            fstype=fstype,
            data=lsm.with_context(opts.data_string, fstype, self.mount_label),
            flags=flags,
            propagation=opts.propagation,
            attrs=mount_attrs(opts.attr_set, opts.attr_clr),
            mntf=mntf,
        )

    def check_locked(self, ptr: str, source: str, opts: mo.MountOptions) -> None:
        """In a user namespace the flags a bind's source mount carries (ro, nosuid, nodev, noexec) are locked: they
        are kept (shim/init/mount.c re-applies them), and an option asking to clear one is an error, as runc's
        "cannot clear locked flags"."""
        locked = self.host.locked_flags(source)
        if locked < 0:
            return
        for flag, (clear, keep) in LOCKED_NAMES.items():
            if locked & flag and clear in opts.where:
                raise PlanError(
                    pointer("mounts", int(ptr.rsplit("/", 1)[1]), "options", opts.where[clear]),
                    f"{clear}: {source} is mounted {keep} and a user namespace cannot clear that (locked flag)",
                )
        # an asked atime mode must be the one the source has (runc: "cannot change locked atime flags")
        asked = opts.flags & ATIME_FLAGS
        if asked and asked != locked & ATIME_FLAGS:
            names = [n for n in ("noatime", "nodiratime", "relatime", "strictatime") if n in opts.where]
            have = ",".join(name for flag, name in ATIME_NAMES.items() if locked & flag) or "strictatime"
            raise PlanError(
                pointer("mounts", int(ptr.rsplit("/", 1)[1]), "options", min(opts.where[n] for n in names)),
                f"{'/'.join(names)}: {source} is mounted {have} and a user namespace cannot change it (locked flag)",
            )

    def check_proc_dest(self, ptr: str, dest: str, fstype: str | None, source: str | None, bind: bool) -> None:
        """Nothing but procfs on /proc, and only a few files beneath it may be covered (CVE-2019-19921)."""
        if dest != "/proc" and not dest.startswith("/proc/"):
            return
        from_proc = bind and source is not None and (source == "/proc" or source.startswith("/proc/"))
        if (fstype == "proc" and not bind) or from_proc:
            return
        if dest != "/proc" and dest in PROC_MOUNT_ALLOWED:
            return
        raise PlanError(ptr + "/destination", f"{dest} cannot be mounted because it is inside /proc")

    def check_idmap(self, i: int, m: views.Mount, opts: mo.MountOptions, bind: bool) -> tuple[str, str] | str | None:
        """An idmapped mount as config.md and runc 1.5.1 have it; returns the user namespace it is idmapped with:
        its own mappings' texts, a joined user namespace's path, or None for the container's new one."""
        ptr = pointer("mounts", i)
        uids, gids = opt(m).uid_mappings, opt(m).gid_mappings
        option = next(
            (pointer("mounts", i, "options", opts.where[o]) for o in ("idmap", "ridmap") if o in opts.where), None
        )
        if not bind:
            raise PlanError(ptr + "/options", "idmapped mounts are only supported on bind mounts")
        if self.host_uid != 0:
            # runc: "not supported for rootless containers"; the kernel idmaps a mount only for a caller privileged
            # over its filesystem's user namespace, and the runtime would clone the source in the host's namespace
            raise PlanError(
                option or ptr + "/uidMappings",
                "idmapped mounts are not supported for rootless containers (the runtime is not root)",
            )
        if uids is not None or gids is not None:
            # config.md: each MUST be specified along with the other (runc: "must have both")
            if gids is None:
                raise PlanError(ptr + "/gidMappings", "must be given with uidMappings for an idmapped mount")
            if uids is None:
                raise PlanError(ptr + "/uidMappings", "must be given with gidMappings for an idmapped mount")
            for key, maps in (("uidMappings", uids), ("gidMappings", gids)):
                if not maps:
                    raise PlanError(f"{ptr}/{key}", "is empty: an idmapped mount needs at least one mapping")
            return _map_text(uids), _map_text(gids)
        if "user" in self.ns.new:
            return None
        joined = self.ns.joined.get("user")
        if joined is not None:
            return joined[1]  # runc: the joined user namespace's mappings
        # config.md: no mappings and no user namespace MUST be an error
        raise PlanError(
            option or ptr + "/options",
            "idmap with no uidMappings/gidMappings takes the container's user namespace, and it has none",
        )
