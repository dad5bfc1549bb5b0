"""What the planner looks up on the host, read-only (`HostFacts`; tests pass fixed values)."""

from __future__ import annotations

import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions

from ocipy import caps, inroot, lsm, rootless
from ocipy import mountopts as mo
from ocipy import posixlite as px
from ocipy.cgroups.layout import CgroupHierarchy, mounted_hierarchies

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
    from collections.abc import Callable  # `collections` costs ~1.3 ms: annotations only
    from dataclasses import dataclass
else:
    from ocipy.records import dataclass


def _is_host_netns(path: str) -> bool:
    try:
        a, b = os.stat(path), os.stat("/proc/self/ns/net")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


NS_GET_USERNS = 0xB701  # ioctl on a namespace fd: an fd of the user namespace that owns it
ST_LOCKABLE = (
    (os.ST_RDONLY, mo.MS_RDONLY),
    (os.ST_NOSUID, mo.MS_NOSUID),
    (os.ST_NODEV, mo.MS_NODEV),
    (os.ST_NOEXEC, mo.MS_NOEXEC),
    (os.ST_NOATIME, mo.MS_NOATIME),
    (os.ST_NODIRATIME, mo.MS_NODIRATIME),
    (os.ST_RELATIME, mo.MS_RELATIME),
)


def _netns_owned_by_own_userns(path: str) -> bool:
    """Is the network namespace at `path` owned by this process's user namespace (then sysfs can be mounted)?"""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
    except OSError:
        return False
    finally:
        os.close(fd)
    try:
        a, b = os.fstat(owner), os.stat("/proc/self/ns/user")
    finally:
        os.close(owner)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _locked_flags(path: str) -> int:
    """The MS_ flags of the mount holding `path` that a user namespace cannot change (ro, nosuid, nodev, noexec and
    the atime mode); -1 when `path` cannot be looked at."""
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return -1  # unknown (no such source yet): the mount itself will say what is wrong
    return sum(ms for st, ms in ST_LOCKABLE if f & st)


@dataclass(frozen=True)
class HostFacts:
    """What the compiler needs to know about the host, looked up read-only (tests pass fixed values)."""

    has_kcore: bool = True
    cap_last_cap: int = caps.LAST_KNOWN
    bounding: int | None = None  # the runtime's own bounding set (None: unknown, every capability grantable)
    cgroups: tuple[CgroupHierarchy, ...] = ()
    is_dir: Callable[[str], bool] = px.isdir
    is_host_netns: Callable[[str], bool] = _is_host_netns
    lsms: frozenset[str] = frozenset()  # active LSMs ocipy can drive ("apparmor", "selinux")
    apparmor_exec: str = "/proc/self/attr/apparmor/exec"  # where an AppArmor exec transition is written
    read_in_root: Callable[[str, str], bytes | None] = inroot.read_in_root  # a container file, read safely
    # the runtime itself runs in a user namespace that does not map the host's ids (rootless Podman): mknod,
    # sysfs of a network namespace it does not own and clearing locked mount flags are refused (docs/rootless.md)
    in_userns: bool = False
    netns_owned: Callable[[str], bool] = _netns_owned_by_own_userns
    locked_flags: Callable[[str], int] = _locked_flags

    @classmethod
    def probe(cls) -> HostFacts:
        return cls(
            has_kcore=px.exists("/proc/kcore"),
            cap_last_cap=caps.host_last_cap(),
            bounding=caps.own_bounding_set(),
            cgroups=mounted_hierarchies(),
            lsms=lsm.active(),
            apparmor_exec=lsm.apparmor_exec_path(),
            in_userns=rootless.in_user_namespace(),
        )
