"""OCI mount options -> mount(2) flags, propagation, mount_setattr(2) attributes and the data string. Stdlib only.

Semantics follow runc's parseMountOptions: options apply in order (so `ro,rw` ends rw), an option that is no flag
is filesystem data (`mode=755`, `size=65536k`, `newinstance`), passed on in its original order.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
    from collections.abc import Sequence  # `collections` costs ~1.5 ms: annotations only
    from dataclasses import dataclass, field
else:
    from ocipy.records import dataclass, field

# mount(2) flags (linux/mount.h)
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_I_VERSION = 0x800000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

# mount_setattr(2) attributes (linux/mount.h). The atime values are an enum inside MOUNT_ATTR__ATIME, not bits.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# option -> (clear?, MS_* flag)
FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID),
    "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV),
    "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC),
    "exec": (True, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS),
    "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK),
    "nomand": (True, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "atime": (True, MS_NOATIME),
    "nodiratime": (False, MS_NODIRATIME),
    "diratime": (True, MS_NODIRATIME),
    "relatime": (False, MS_RELATIME),
    "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "symfollow": (True, MS_NOSYMFOLLOW),
    "lazytime": (False, MS_LAZYTIME),
    "nolazytime": (True, MS_LAZYTIME),
    "iversion": (False, MS_I_VERSION),
    "noiversion": (True, MS_I_VERSION),
    "silent": (False, MS_SILENT),
    "loud": (True, MS_SILENT),
    "bind": (False, MS_BIND),
    "rbind": (False, MS_BIND | MS_REC),
}

PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# recursive option -> (clear?, MOUNT_ATTR_* bit)
REC_ATTRS: dict[str, tuple[bool, int]] = {
    "rro": (False, MOUNT_ATTR_RDONLY),
    "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID),
    "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV),
    "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC),
    "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}

# Recursive atime options choose one of the three atime modes (the kernel rejects a partial MOUNT_ATTR__ATIME clear,
# so "ratime" cannot simply clear NOATIME as runc does). Without noatime/strictatime the kernel default is relatime.
REC_ATIME: dict[str, int] = {
    "rrelatime": MOUNT_ATTR_RELATIME,
    "ratime": MOUNT_ATTR_RELATIME,
    "rnostrictatime": MOUNT_ATTR_RELATIME,
    "rnoatime": MOUNT_ATTR_NOATIME,
    "rstrictatime": MOUNT_ATTR_STRICTATIME,
    "rnorelatime": MOUNT_ATTR_STRICTATIME,
}

# the per-mount flags a bind remount can change (the rest are superblock flags, ignored by MS_BIND|MS_REMOUNT)
MNT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME
MNT_FLAGS |= MS_NOSYMFOLLOW


@dataclass
class MountOptions:
    flags: int = 0  # MS_* (including MS_BIND / MS_REC for bind / rbind)
    propagation: int = 0  # the last propagation option (they are exclusive); 0 = none
    attr_set: int = 0  # MOUNT_ATTR_* to set recursively
    attr_clr: int = 0  # MOUNT_ATTR_* to clear recursively
    data: list[str] = field(default_factory=list)
    data_where: list[int] = field(default_factory=list)  # the index in the options list of each data entry
    idmap: bool = False
    ridmap: bool = False
    tmpcopyup: bool = False
    # index in the options list of each special option, for error pointers
    where: dict[str, int] = field(default_factory=dict)

    @property
    def bind(self) -> bool:
        return bool(self.flags & MS_BIND)

    @property
    def data_string(self) -> str | None:
        return ",".join(self.data) if self.data else None


def parse(options: Sequence[str] | None) -> MountOptions:
    out = MountOptions()
    for i, opt in enumerate(options or ()):
        if opt in FLAGS:
            clear, flag = FLAGS[opt]
            out.flags = out.flags & ~flag if clear else out.flags | flag
        elif opt in PROPAGATION:
            out.propagation = PROPAGATION[opt]
        elif opt in REC_ATTRS:
            clear, attr = REC_ATTRS[opt]
            if clear:
                out.attr_clr |= attr
                out.attr_set &= ~attr
            else:
                out.attr_set |= attr
                out.attr_clr &= ~attr
        elif opt in REC_ATIME:
            out.attr_set = (out.attr_set & ~MOUNT_ATTR__ATIME) | REC_ATIME[opt]
            out.attr_clr |= MOUNT_ATTR__ATIME
        elif opt == "idmap":
            out.idmap = True
        elif opt == "ridmap":
            out.idmap = out.ridmap = True
        elif opt == "tmpcopyup":
            out.tmpcopyup = True
        else:
            out.data.append(opt)
            out.data_where.append(i)
            continue
        out.where[opt] = i
    return out


def flags_to_attrs(flags: int) -> int:
    """The MOUNT_ATTR_* equivalent of the per-mount MS_* flags (for recursive application)."""
    attrs = 0
    for ms, attr in (
        (MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MS_NODEV, MOUNT_ATTR_NODEV),
        (MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
        (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
    ):
        if flags & ms:
            attrs |= attr
    return attrs
