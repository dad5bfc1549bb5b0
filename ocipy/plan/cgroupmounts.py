"""Mounts of type cgroup: a cgroup2 mount, one mount per v1 hierarchy under a tmpfs, or binds of the container's own
cgroup directories when it has no cgroup namespace."""

from __future__ import annotations

from ocipy import mountopts as mo
from ocipy import posixlite as px
from ocipy.cgroups.layout import CgroupHierarchy
from ocipy.plan.base import Section
from ocipy.planfmt import MNTF_MKDIR, OP_SYMLINK, mount_attrs

TYPE_CHECKING = False
if TYPE_CHECKING:  # `collections.abc` imports the `collections` package (~1.3 ms per create): annotations only
    from collections.abc import Sequence


class CgroupMountsSection(Section):
    def cgroup_mount(self, ptr: str, dest: str, opts: mo.MountOptions) -> None:
        mnt_flags = opts.flags & mo.MNT_FLAGS
        attrs = mount_attrs(opts.attr_set, opts.attr_clr)
        cgroups = self.host.cgroups
        own = self._own_cgroup_dirs(cgroups)
        if "cgroup" not in self.ns.new and own:
            # Without a cgroup namespace a fresh cgroup mount would show the host's whole tree from its root:
            # like runc, show each hierarchy through a bind of the container's own cgroup directory.
            self._cgroup_binds(ptr, dest, opts, cgroups, own)
            return
        if "cgroup" not in self.ns.new:
            # No cgroup of its own is known: the host's hierarchies, every mount beneath with the asked flags.
            rec = mount_attrs(opts.attr_set | mo.flags_to_attrs(mnt_flags), opts.attr_clr)
            self.mount_op(
                ptr,
                f"rbind /sys/fs/cgroup on {dest}",
                source="/sys/fs/cgroup",
                dest=dest,
                flags=mo.MS_BIND | mo.MS_REC,
                propagation=opts.propagation,
                attrs=rec,
                mntf=MNTF_MKDIR,
            )
            return
        if not cgroups or any(h.name == "" and h.fstype == "cgroup2" for h in cgroups):
            self.mount_op(
                ptr,
                f"cgroup2 on {dest}",
                source="cgroup",
                dest=dest,
                fstype="cgroup2",
                flags=opts.flags,
                propagation=opts.propagation,
                attrs=attrs,
                mntf=MNTF_MKDIR,
            )
            return
        # v1 or hybrid host: a tmpfs holding one mount per hierarchy, each rooted at our cgroup by the namespace
        self._hierarchies_tmpfs(ptr, dest, opts)
        for h in cgroups:
            sub = px.join(dest, h.name)
            self.mount_op(
                ptr,
                f"{h.fstype} on {sub}",
                source="cgroup",
                dest=sub,
                fstype=h.fstype,
                data=h.options or None,
                flags=opts.flags,
                attrs=attrs,
                mntf=MNTF_MKDIR,
            )
            self._comount_links(ptr, dest, h.name)
        self._read_only(ptr, dest, opts)

    def _hierarchies_tmpfs(self, ptr: str, dest: str, opts: mo.MountOptions) -> None:
        """The tmpfs on `dest` that holds one directory per hierarchy (a v1 or hybrid host)."""
        base = (opts.flags & ~mo.MS_RDONLY) | mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC
        self.mount_op(
            ptr,
            f"tmpfs on {dest} for the cgroup hierarchies",
            source="tmpfs",
            dest=dest,
            fstype="tmpfs",
            data="mode=755",
            flags=base,
            propagation=opts.propagation,
            mntf=MNTF_MKDIR,
        )

    def _comount_links(self, ptr: str, dest: str, name: str) -> None:
        """cpu -> cpu,cpuacct and the like: each controller of a co-mounted hierarchy by its own name too."""
        if "," in name:
            for ctrl in name.split(","):
                link = px.join(dest, ctrl)
                self.op(OP_SYMLINK, ptr, s=(name, link), what=f"{link} -> {name}")

    def _read_only(self, ptr: str, dest: str, opts: mo.MountOptions) -> None:
        """The hierarchies' tmpfs made read-only once everything is mounted in it (asked with "ro")."""
        mnt_flags = opts.flags & mo.MNT_FLAGS
        if mnt_flags & mo.MS_RDONLY:
            remount = mo.MS_REMOUNT | mo.MS_BIND | mnt_flags | mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC
            self.mount_op(ptr, f"remount {dest} read-only", dest=dest, flags=remount)

    def _own_cgroup_dirs(self, cgroups: Sequence[CgroupHierarchy]) -> dict[str, str]:
        """Hierarchy name -> the container's cgroup directory in it, from the cgroup.procs files it joins."""
        own: dict[str, str] = {}
        for procs in self.cgroup_procs:
            d = px.dirname(procs)
            roots = [(px.join("/sys/fs/cgroup", h.name).rstrip("/"), h.name) for h in cgroups]
            matches = [(root, name) for root, name in roots if d == root or d.startswith(root + "/")]
            if matches:  # the deepest mount point holding d ("/sys/fs/cgroup" itself only on a pure v2 host)
                own[max(matches)[1]] = d
        return own

    def _cgroup_binds(
        self, ptr: str, dest: str, opts: mo.MountOptions, cgroups: Sequence[CgroupHierarchy], own: dict[str, str]
    ) -> None:
        mnt_flags = opts.flags & mo.MNT_FLAGS
        attrs = mount_attrs(opts.attr_set, opts.attr_clr)
        remount = mo.MS_REMOUNT | mo.MS_BIND | mnt_flags | mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC
        if "" in own:  # a pure v2 host: the container's cgroup is the whole mount
            self.mount_op(
                ptr,
                f"bind the container's cgroup {own['']} on {dest}",
                source=own[""],
                dest=dest,
                flags=mo.MS_BIND | mo.MS_REC,
                remount=remount,
                propagation=opts.propagation,
                attrs=attrs,
                mntf=MNTF_MKDIR,
            )
            return
        self._hierarchies_tmpfs(ptr, dest, opts)
        for h in cgroups:
            if h.name not in own:
                continue  # a hierarchy the container has no cgroup in shows nothing rather than the host's tree
            sub = px.join(dest, h.name)
            self.mount_op(
                ptr,
                f"bind the container's cgroup {own[h.name]} on {sub}",
                source=own[h.name],
                dest=sub,
                flags=mo.MS_BIND | mo.MS_REC,
                remount=remount,
                attrs=attrs,
                mntf=MNTF_MKDIR,
            )
            self._comount_links(ptr, dest, h.name)
        self._read_only(ptr, dest, opts)
