"""Compile a validated OCI config into the plan the C init executes. docs/plan.md gives the op order and why.

Pure: nothing here changes the host. It looks at the host read-only (is a bind source a directory? is there a
/proc/kcore? which cgroup hierarchies are mounted?) through `HostFacts`, which tests replace with fixed answers.
`compile_create` reads the config only through attribute access (the `ocipy.spec` models or any stand-in with the
same snake_case attribute names, see docs/contracts.md).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
    from dataclasses import dataclass, field
else:
    from ocipy.records import dataclass, field
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Any

from ocipy import caps, inroot, lsm, rootless
from ocipy import mountopts as mo
from ocipy.cgroups.layout import CgroupHierarchy, mounted_hierarchies
from ocipy.errors import OcipyError
from ocipy.planfmt import (
    MNTF_COPYUP,
    MNTF_IDMAP,
    MNTF_IDMAP_REC,
    MNTF_MKDIR,
    MNTF_MKFILE,
    MNTF_PROC,
    MNTF_TMPFS_MODE,
    MNTF_TREE,
    NOSTR,
    OP_BIND_DEV,
    OP_BIND_ROOT,
    OP_CAP_BOUNDING,
    OP_CAPSET,
    OP_CHDIR,
    OP_CHROOT,
    OP_CLONE,
    OP_CLOSE_FDS,
    OP_CONSOLE,
    OP_EXEC,
    OP_FIND_EXEC,
    OP_IOPRIO,
    OP_JOIN_CGROUP,
    OP_LOOPBACK_UP,
    OP_MASK_PATH,
    OP_MKDIR,
    OP_MKNOD,
    OP_MOUNT,
    OP_MOUNT_PROPAGATION,
    OP_NEW_KEYRING,
    OP_NO_NEW_PRIVS,
    OP_OPEN_DEVNULL,
    OP_OPEN_FIFO,
    OP_OPEN_ROOT,
    OP_PERSONALITY,
    OP_PIVOT_ROOT,
    OP_READONLY_PATH,
    OP_REMOUNT_ROOT_RO,
    OP_REPORT,
    OP_SCHEDULER,
    OP_SECCOMP,
    OP_SETDOMAINNAME,
    OP_SETGID,
    OP_SETGROUPS,
    OP_SETHOSTNAME,
    OP_SETNS,
    OP_SETRLIMIT,
    OP_SETSID,
    OP_SETUID,
    OP_SIGNAL_CREATED,
    OP_SYMLINK,
    OP_SYNC_HOOKS,
    OP_SYNC_USERMAP,
    OP_SYSCTL,
    OP_TIMENS_OFFSETS,
    OP_UMASK,
    OP_UNSHARE,
    OP_WAIT_START,
    OP_WRITE_PROC,
    Plan,
    mount_attrs,
)

CLONE_NEWTIME = 0x80
CLONE_NEWNS = 0x20000
CLONE_NEWCGROUP = 0x2000000
CLONE_NEWUTS = 0x4000000
CLONE_NEWIPC = 0x8000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACES = {
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "mount": CLONE_NEWNS,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "time": CLONE_NEWTIME,
}

# Linux x86_64 (asm-generic/resource.h)
RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13

ROOTFS_PROPAGATION = mo.PROPAGATION

# (path, major, minor): the spec's default devices, all char devices with mode 0666
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)
DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}

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

# sysctl prefixes and the namespace that makes them per-container (runc's validator)
IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)
UTS_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})

DEFAULT_UMASK = 0o022
CHROOT_ONLY = 1  # OP_CHROOT a0: chroot without moving the rootfs onto / (no mount namespace of the container's own)
U64 = 1 << 64


class PlanError(OcipyError):
    """A config the runtime cannot carry out, named by the JSON pointer of the field at fault."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer
        self.message = message

    def __str__(self) -> str:
        return f"{self.pointer}: {self.message}"


class CreatePlan(Plan):
    """A Plan plus the warnings met while compiling it ((pointer, message) pairs, for the log)."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[tuple[str, str]] = []


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
ATIME_FLAGS = mo.MS_NOATIME | mo.MS_NODIRATIME | mo.MS_RELATIME | mo.MS_STRICTATIME
ATIME_NAMES = {mo.MS_NOATIME: "noatime", mo.MS_NODIRATIME: "nodiratime", mo.MS_RELATIME: "relatime"}
LOCKED_NAMES = {
    mo.MS_RDONLY: ("rw", "ro"),
    mo.MS_NOSUID: ("suid", "nosuid"),
    mo.MS_NODEV: ("dev", "nodev"),
    mo.MS_NOEXEC: ("exec", "noexec"),
}


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
    is_dir: Callable[[str], bool] = os.path.isdir
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
            has_kcore=os.path.exists("/proc/kcore"),
            cap_last_cap=caps.host_last_cap(),
            bounding=caps.own_bounding_set(),
            cgroups=mounted_hierarchies(),
            lsms=lsm.active(),
            apparmor_exec=lsm.apparmor_exec_path(),
            in_userns=rootless.in_user_namespace(),
        )


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer from its reference tokens."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _get(obj: Any, name: str) -> Any:
    return None if obj is None else getattr(obj, name, None)


def _items(mapping: Any) -> list[tuple[str, Any]]:
    """Entries of a JSON object field: a dict, or a spec object (a model or a record of ocipy/spec/compiled.py)
    whose fields and extra keys are the entries; absent (None) fields are left out."""
    if mapping is None:
        return []
    if isinstance(mapping, dict):
        return list(mapping.items())
    fields = [(k, v) for k, v in vars(mapping).items() if not k.startswith("__") and v is not None]
    extra = getattr(mapping, "__pydantic_extra__", None) or {}
    return fields + [(k, v) for k, v in extra.items() if v is not None]


def _u64(value: int) -> int:
    """A uint64 in an int64 slot (the init reads it back as unsigned; 2**64-1 is RLIM_INFINITY = -1)."""
    if not 0 <= value < U64:
        raise ValueError(value)
    return value - U64 if value >= 1 << 63 else value


def _unencodable(exc: Exception) -> str:
    """A string the init cannot take: a NUL byte (C strings end there) or text that is not UTF-8 (a lone surrogate
    from a JSON escape such as \\udcff)."""
    if isinstance(exc, UnicodeError):
        return "not valid UTF-8 (a lone surrogate escape)"
    if "NUL" not in str(exc):
        raise exc  # not about the text: a bug, keep its traceback
    return "contains a NUL byte"


def _clean(path: str) -> str:
    """Lexically clean an absolute container path ("/a/../b//c" -> "/b/c"); the init resolves it in root anyway."""
    return "/" + posixpath.normpath(path).lstrip("/") if path != "/" else "/"


def _mapped(ident: int, mappings: Sequence[Any] | None) -> bool:
    for m in mappings or ():
        start = int(_get(m, "container_id") or 0)
        if start <= ident < start + int(_get(m, "size") or 0):
            return True
    return False


def _mapping_tuples(mappings: Sequence[Any] | None) -> list[tuple[int, int, int]]:
    return [(int(_get(m, "container_id")), int(_get(m, "host_id")), int(_get(m, "size"))) for m in mappings or ()]


@dataclass
class _Namespaces:
    new: dict[str, int] = field(default_factory=dict)  # type -> index in linux.namespaces
    joined: dict[str, tuple[int, str]] = field(default_factory=dict)  # type -> (index, path)

    def has(self, kind: str) -> bool:
        return kind in self.new or kind in self.joined


def compile_create(
    spec: Any,
    *,
    rootfs: str,
    bundle: str,
    fifo: str,
    console_fd: int | None,
    extra_fds: int,
    no_pivot: bool,
    no_new_keyring: bool,
    env_extra: Sequence[str] = (),
    host_uid: int = 0,
    cgroup_procs: Sequence[str] = (),
    host: HostFacts | None = None,
    seccomp_cache: str | None = None,
    log: tuple[str | None, str] = (None, "text"),
) -> CreatePlan:
    """The plan that turns the config into a created container waiting for `start`.

    `cgroup_procs`: host cgroup.procs files the init joins first (before any namespace: a new cgroup namespace is
    rooted at the cgroup the process is in when it unshares). Empty when the caller places the process itself.
    `seccomp_cache`: a directory of compiled seccomp programs (`ocipy.seccomp.compile_cached`); None: no cache.
    `log`: the --log path (None: none) and format ("text" or "json"), where the init reports a failure that happens
    after `create` has returned (OP_REPORT), beside the container's stderr.
    """
    compiler = _Compiler(
        spec,
        rootfs=rootfs,
        bundle=bundle,
        fifo=fifo,
        console_fd=console_fd,
        extra_fds=extra_fds,
        no_pivot=no_pivot,
        no_new_keyring=no_new_keyring,
        env_extra=list(env_extra),
        host_uid=host_uid,
        cgroup_procs=list(cgroup_procs),
        host=host or HostFacts.probe(),
    )
    compiler.seccomp_cache = seccomp_cache
    compiler.log = log
    return compiler.run()


class _Compiler:
    log: tuple[str | None, str] = (None, "text")  # compile_create's `log`

    def __init__(
        self,
        spec: Any,
        *,
        rootfs: str,
        bundle: str,
        fifo: str,
        console_fd: int | None,
        extra_fds: int,
        no_pivot: bool,
        no_new_keyring: bool,
        env_extra: list[str],
        host_uid: int,
        cgroup_procs: list[str],
        host: HostFacts,
    ) -> None:
        self.spec = spec
        self.linux = _get(spec, "linux")
        self.process = _get(spec, "process")
        self.rootfs = rootfs
        self.bundle = bundle
        self.fifo = fifo
        self.console_fd = console_fd
        self.extra_fds = extra_fds
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.env_extra = env_extra
        self.host_uid = host_uid
        self.cgroup_procs = cgroup_procs
        self.host = host
        self.plan = CreatePlan()
        self.ns = _Namespaces()
        self.dev_ro: list[str] = []  # pointers of /dev mounts to make read-only once devices exist
        self.dev_bind = False  # a bind mount on /dev: no device setup
        self.mount_dests: set[str] = set()
        self.propagation = 0  # linux.rootfsPropagation as MS_* flags
        self.mount_label: str | None = None  # linux.mountLabel, checked (SELinux active)
        self.label_writes: list[lsm.ProcWrite] = []  # AppArmor/SELinux procfs writes for the process

    # -- helpers

    def op(
        self, code: int, field: str, s: Sequence[str | bytes | int | None] = (), a: Sequence[int] = (), what: str = ""
    ) -> int:
        try:
            return self.plan.op(code, field, s=s, a=a, what=what)
        except (ValueError, UnicodeError) as exc:
            raise PlanError(field or "/", _unencodable(exc)) from exc

    def strv(self, ptr: str, values: Sequence[str]) -> int:
        try:
            return self.plan.strv(values)
        except (ValueError, UnicodeError) as exc:
            raise PlanError(ptr, _unencodable(exc)) from exc

    def warn(self, ptr: str, message: str) -> None:
        self.plan.warnings.append((ptr, message))

    @property
    def in_userns(self) -> bool:
        return self.ns.has("user")

    @property
    def unprivileged_userns(self) -> bool:
        """The container's mounts and devices are made in a user namespace that does not own the host: the
        config's (new or joined), or the runtime's own (rootless Podman runs the runtime in one)."""
        return self.ns.has("user") or self.host.in_userns

    def sysfs_needs_bind(self) -> bool:
        """sysfs can be mounted only in a network namespace owned by the mounting user namespace (runc's rule)."""
        if not self.unprivileged_userns or "network" in self.ns.new:
            return False
        if "user" in self.ns.new:
            return True  # the network namespace is older than the user namespace: never owned by it
        joined = self.ns.joined.get("network")
        return joined is None or not self.host.netns_owned(joined[1])

    # -- driver

    def run(self) -> CreatePlan:
        if not os.path.isabs(self.rootfs):
            raise PlanError("/root/path", f"rootfs {self.rootfs!r} must be an absolute path")
        self.read_namespaces()
        self.check_config()
        self.check_lsm()
        report = self.op(OP_REPORT, "", what="how to report a failure after create")
        self.stage0()
        self.stage1_rootfs()
        self.stage1_after_root_switch()
        self.process_ops()
        self.fill_report(report)
        return self.plan

    def fill_report(self, index: int) -> None:
        """OP_REPORT: the log, and "FIELD (WHAT)" for every op after `created` (the init names them itself)."""
        plan = self.plan
        created = next((i for i, op in enumerate(plan.ops) if op[0] == OP_SIGNAL_CREATED), None)
        path, fmt = self.log
        first = len(plan.ops) if created is None else created + 1
        texts = []
        for i in range(first, len(plan.ops)):
            field, what = plan.field_of(i) or "runtime", plan.what[i]
            texts.append(f"{field} ({what})" if what else field)
        code, fidx, _offs, _ints = plan.ops[index]
        offs = (
            plan._str(os.path.abspath(path)) if path else NOSTR,
            self.strv("/process/args", texts) if texts else NOSTR,
            NOSTR,
            NOSTR,
        )
        plan.ops[index] = (code, fidx, offs, (1 if fmt == "json" else 0, first, len(texts), 0, 0))

    # -- validation that needs the whole config

    def read_namespaces(self) -> None:
        for i, ns in enumerate(_get(self.linux, "namespaces") or ()):
            kind = _get(ns, "type")
            if kind not in NAMESPACES:
                raise PlanError(pointer("linux", "namespaces", i, "type"), f"unknown namespace type {kind!r}")
            if self.ns.has(kind):
                raise PlanError(pointer("linux", "namespaces", i), f"duplicate {kind} namespace")
            path = _get(ns, "path")
            if path:
                self.ns.joined[kind] = (i, path)
            else:
                self.ns.new[kind] = i

    def check_config(self) -> None:
        linux, user = self.linux, _get(self.process, "user")
        uid_maps, gid_maps = _get(linux, "uid_mappings"), _get(linux, "gid_mappings")
        if "user" in self.ns.new:
            if not uid_maps:
                raise PlanError("/linux/uidMappings", "a new user namespace needs uidMappings")
            if not gid_maps:
                raise PlanError("/linux/gidMappings", "a new user namespace needs gidMappings")
            if not _mapped(int(_get(user, "uid") or 0), uid_maps):
                raise PlanError("/process/user/uid", "the uid is not mapped in the user namespace")
            if not _mapped(int(_get(user, "gid") or 0), gid_maps):
                raise PlanError("/process/user/gid", "the gid is not mapped in the user namespace")
            for i, gid in enumerate(_get(user, "additional_gids") or ()):
                if not _mapped(int(gid), gid_maps):
                    raise PlanError(pointer("process", "user", "additionalGids", i), "gid not mapped")
        elif not self.in_userns:
            if uid_maps:
                raise PlanError("/linux/uidMappings", "uid mappings need a user namespace")
            if gid_maps:
                raise PlanError("/linux/gidMappings", "gid mappings need a user namespace")
            if self.host_uid != 0:
                raise PlanError("/linux/namespaces", "running as a non-root user needs a user namespace")
        for name, ptr in (("hostname", "/hostname"), ("domainname", "/domainname")):
            if _get(self.spec, name) and not self.ns.has("uts"):
                raise PlanError(ptr, f"setting the {name} needs a uts namespace")
        if _get(linux, "time_offsets") is not None and "time" not in self.ns.new:
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
        offsets = _get(self.linux, "time_offsets")
        if offsets is not None:
            self.op(OP_TIMENS_OFFSETS, "/linux/timeOffsets", s=(self.timens_text(offsets),), what="clock offsets")
        self.op(OP_CLONE, "", a=(0,), what="fork the container init")

    @staticmethod
    def timens_text(offsets: Any) -> str:
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
                    secs, nsecs = _get(value, "secs"), _get(value, "nanosecs")
                lines.append(f"{clock} {int(secs or 0)} {int(nsecs or 0)}\n")
        return "".join(lines)

    # -- stage 1: the container init, before the root switch

    def stage1_rootfs(self) -> None:
        if "network" in self.ns.new:
            # a new network namespace has only lo, and it is down: bring it up as runc does
            self.op(OP_LOOPBACK_UP, pointer("linux", "namespaces", self.ns.new["network"]), what="loopback up")
        oom = _get(self.process, "oom_score_adj")
        if oom is not None:
            # Early, through the caller's /proc: the container may mount no /proc of its own.
            self.op(
                OP_WRITE_PROC,
                "/process/oomScoreAdj",
                s=("/proc/self/oom_score_adj", str(int(oom))),
                what="oom_score_adj",
            )
        for w in self.label_writes:
            # Early and through the caller's /proc (verified procfs), so no mount of the container can stand in
            # for it (CVE-2019-16884); exec labels take effect at the final execve.
            self.op(OP_WRITE_PROC, w.pointer, s=(w.path, w.text), what=w.what)
        prop_name = _get(self.linux, "rootfs_propagation")
        if prop_name:
            if prop_name not in ROOTFS_PROPAGATION:
                raise PlanError("/linux/rootfsPropagation", f"unknown propagation {prop_name!r}")
            self.propagation = ROOTFS_PROPAGATION[prop_name]
        if "mount" in self.ns.new:
            # Recursive always, so no mount made below reaches the host (a non-recursive value would leave the
            # mount holding the rootfs shared). Unbindable would forbid binding the rootfs: private until the end.
            # The asked-for value is applied to the new root after the switch: a shared first step would put
            # every setup mount below into the host's peer group (and pivot_root refuses shared parents).
            first = mo.MS_SLAVE | mo.MS_REC
            if self.propagation & mo.MS_UNBINDABLE:
                first = mo.MS_PRIVATE | mo.MS_REC
            field = "/linux/rootfsPropagation" if prop_name else ""
            self.op(OP_MOUNT_PROPAGATION, field, s=("/",), a=(first,), what="stop propagation to the host")
        if self.ns.has("mount") or _get(_get(self.spec, "root"), "readonly"):
            self.op(OP_BIND_ROOT, "/root/path", s=(self.rootfs,), what="rootfs")
        else:
            # No mount namespace (the spec allows inheriting every one; runc runs it): whatever is mounted lands in
            # the caller's mount namespace and stays there, so nothing the config did not ask for is mounted, not
            # even the rootfs on itself (a read-only root needs that bind, above). The root switch is a chroot.
            self.op(OP_OPEN_ROOT, "/root/path", s=(self.rootfs,), what="rootfs (no mount namespace: not bound)")
        self.op(OP_OPEN_DEVNULL, "", what="host /dev/null for masking")
        for i, m in enumerate(_get(self.spec, "mounts") or ()):
            self.mount(i, m)
        self.devices()
        hooks = _get(self.spec, "hooks")
        wanted = [n for n in ("prestart", "create_runtime", "create_container") if _get(hooks, n)]
        if wanted:
            self.op(OP_SYNC_HOOKS, "/hooks", what="run " + ", ".join(wanted) + " hooks")
        if not self.ns.has("mount"):
            # pivot_root or moving the rootfs onto / would change the caller's own root
            self.op(OP_CHROOT, "/root/path", a=(CHROOT_ONLY,), what="chroot into the rootfs (no mount namespace)")
        elif self.no_pivot:
            self.op(OP_CHROOT, "/root/path", what="move the rootfs to / and chroot")
        else:
            self.op(OP_PIVOT_ROOT, "/root/path", what="pivot_root into the rootfs")

    # -- mounts

    def mount(self, i: int, m: Any) -> None:
        ptr = pointer("mounts", i)
        dest = _get(m, "destination")
        if not dest or not dest.startswith("/"):
            raise PlanError(ptr + "/destination", f"{dest!r} must be an absolute path")
        dest = _clean(dest)
        if dest == "/":
            raise PlanError(ptr + "/destination", "mounting over the container's root is not supported")
        fstype = _get(m, "type") or None
        source = _get(m, "source")
        opts = mo.parse(_get(m, "options"))
        bind = opts.bind or fstype == "bind"
        if opts.tmpcopyup and (fstype != "tmpfs" or bind):
            raise PlanError(pointer("mounts", i, "options", opts.where["tmpcopyup"]), "tmpcopyup is for tmpfs mounts")
        if bind and opts.data:
            # the kernel ignores filesystem data on a bind mount: an option ocipy does not know would be dropped
            k = opts.data_where[0]
            raise PlanError(pointer("mounts", i, "options", k), f"unknown option {opts.data[0]!r} for a bind mount")
        self.check_proc_dest(ptr, dest, fstype, source, bind)
        self.mount_dests.add(dest)
        if opts.idmap or _get(m, "uid_mappings") or _get(m, "gid_mappings"):
            self.check_idmap(i, m, opts, bind)
        attrs = mount_attrs(opts.attr_set, opts.attr_clr)
        mnt_flags = opts.flags & mo.MNT_FLAGS

        if fstype == "cgroup" and not bind:
            self.cgroup_mount(ptr, dest, opts)
            return
        if fstype == "sysfs" and not bind and self.sysfs_needs_bind():
            # sysfs needs a network namespace owned by our user namespace: show the host's /sys instead, with the
            # asked flags applied to every mount beneath it
            rec = mount_attrs(opts.attr_set | mo.flags_to_attrs(mnt_flags), opts.attr_clr)
            self.op(
                OP_MOUNT,
                ptr,
                s=("/sys", dest, None, None),
                a=(mo.MS_BIND | mo.MS_REC, 0, opts.propagation, rec, MNTF_MKDIR | MNTF_PROC),
                what=f"rbind /sys on {dest} (no network namespace for sysfs)",
            )
            return
        if bind:
            if not source:
                raise PlanError(ptr + "/source", "a bind mount needs a source")
            if not source.startswith("/"):
                source = posixpath.join(self.bundle, source)
            flags = mo.MS_BIND | (opts.flags & mo.MS_REC)
            remount = mo.MS_REMOUNT | mo.MS_BIND | mnt_flags if mnt_flags else 0
            if self.unprivileged_userns:
                self.check_locked(ptr, source, opts)
            mntf = MNTF_MKDIR if self.host.is_dir(source) else MNTF_MKFILE
            if opts.idmap:
                mntf |= MNTF_IDMAP | (MNTF_IDMAP_REC if opts.ridmap else 0)
            elif "user" in self.ns.new and self.host_uid == 0 and not self.host.in_userns:
                # resolved as the runtime, before the user namespace: the runtime clones the source and the init
                # attaches the copy (runc's mount-fd handling); a source under a root-only host directory works
                mntf |= MNTF_TREE
            if dest == "/dev":
                self.dev_bind = True
            kind = "rbind" if flags & mo.MS_REC else "bind"
            self.op(
                OP_MOUNT,
                ptr,
                s=(source, dest, None, None),
                a=(flags, remount, opts.propagation, attrs, mntf),
                what=f"{kind} {source} on {dest}",
            )
            return
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
        self.op(
            OP_MOUNT,
            ptr,
            s=(source, dest, fstype, lsm.with_context(opts.data_string, fstype, self.mount_label)),
            a=(flags, 0, opts.propagation, attrs, mntf),
            what=f"{fstype} on {dest}",
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

    def check_idmap(self, i: int, m: Any, opts: mo.MountOptions, bind: bool) -> None:
        ptr = pointer("mounts", i)
        if not opts.idmap:
            raise PlanError(ptr + "/uidMappings", "mount id mappings need the idmap or ridmap option")
        if not bind:
            raise PlanError(ptr + "/options", "idmap is only supported on bind mounts")
        if "user" not in self.ns.new:
            raise PlanError(ptr + "/options", "idmap needs a new user namespace")
        own = (_get(m, "uid_mappings"), _get(m, "gid_mappings"))
        if any(own):
            want = (_get(self.linux, "uid_mappings"), _get(self.linux, "gid_mappings"))
            if [_mapping_tuples(x) for x in own] != [_mapping_tuples(x) for x in want]:
                raise PlanError(ptr + "/uidMappings", "mappings other than the container's are not supported yet")

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
            self.op(
                OP_MOUNT,
                ptr,
                s=("/sys/fs/cgroup", dest, None, None),
                a=(mo.MS_BIND | mo.MS_REC, 0, opts.propagation, rec, MNTF_MKDIR),
                what=f"rbind /sys/fs/cgroup on {dest}",
            )
            return
        if not cgroups or any(h.name == "" and h.fstype == "cgroup2" for h in cgroups):
            self.op(
                OP_MOUNT,
                ptr,
                s=("cgroup", dest, "cgroup2", None),
                a=(opts.flags, 0, opts.propagation, attrs, MNTF_MKDIR),
                what=f"cgroup2 on {dest}",
            )
            return
        # v1 or hybrid host: a tmpfs holding one mount per hierarchy, each rooted at our cgroup by the namespace
        base = (opts.flags & ~mo.MS_RDONLY) | mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC
        self.op(
            OP_MOUNT,
            ptr,
            s=("tmpfs", dest, "tmpfs", "mode=755"),
            a=(base, 0, opts.propagation, 0, MNTF_MKDIR),
            what=f"tmpfs on {dest} for the cgroup hierarchies",
        )
        for h in cgroups:
            sub = posixpath.join(dest, h.name)
            self.op(
                OP_MOUNT,
                ptr,
                s=("cgroup", sub, h.fstype, h.options or None),
                a=(opts.flags, 0, 0, attrs, MNTF_MKDIR),
                what=f"{h.fstype} on {sub}",
            )
            if "," in h.name:
                for ctrl in h.name.split(","):
                    if ctrl != h.name:
                        link = posixpath.join(dest, ctrl)
                        self.op(OP_SYMLINK, ptr, s=(h.name, link), what=f"{link} -> {h.name}")
        if mnt_flags & mo.MS_RDONLY:
            self.op(
                OP_MOUNT,
                ptr,
                s=(None, dest, None, None),
                a=(mo.MS_REMOUNT | mo.MS_BIND | mnt_flags | mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC,),
                what=f"remount {dest} read-only",
            )

    def _own_cgroup_dirs(self, cgroups: Sequence[CgroupHierarchy]) -> dict[str, str]:
        """Hierarchy name -> the container's cgroup directory in it, from the cgroup.procs files it joins."""
        own: dict[str, str] = {}
        for procs in self.cgroup_procs:
            d = posixpath.dirname(procs)
            roots = [(posixpath.join("/sys/fs/cgroup", h.name).rstrip("/"), h.name) for h in cgroups]
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
            self.op(
                OP_MOUNT,
                ptr,
                s=(own[""], dest, None, None),
                a=(mo.MS_BIND | mo.MS_REC, remount, opts.propagation, attrs, MNTF_MKDIR),
                what=f"bind the container's cgroup {own['']} on {dest}",
            )
            return
        base = (opts.flags & ~mo.MS_RDONLY) | mo.MS_NOSUID | mo.MS_NODEV | mo.MS_NOEXEC
        self.op(
            OP_MOUNT,
            ptr,
            s=("tmpfs", dest, "tmpfs", "mode=755"),
            a=(base, 0, opts.propagation, 0, MNTF_MKDIR),
            what=f"tmpfs on {dest} for the cgroup hierarchies",
        )
        for h in cgroups:
            if h.name not in own:
                continue  # a hierarchy the container has no cgroup in shows nothing rather than the host's tree
            sub = posixpath.join(dest, h.name)
            self.op(
                OP_MOUNT,
                ptr,
                s=(own[h.name], sub, None, None),
                a=(mo.MS_BIND | mo.MS_REC, remount, 0, attrs, MNTF_MKDIR),
                what=f"bind the container's cgroup {own[h.name]} on {sub}",
            )
            if "," in h.name:
                for ctrl in h.name.split(","):
                    link = posixpath.join(dest, ctrl)
                    self.op(OP_SYMLINK, ptr, s=(h.name, link), what=f"{link} -> {h.name}")
        if mnt_flags & mo.MS_RDONLY:
            self.op(OP_MOUNT, ptr, s=(None, dest, None, None), a=(remount,), what=f"remount {dest} read-only")

    # -- devices

    def devices(self) -> None:
        devs = list(_get(self.linux, "devices") or ())
        if self.dev_bind:
            # /dev is the host's (or someone's) directory: creating nodes there would change it (runc skips too)
            if devs:
                self.warn("/linux/devices", "not created: /dev is a bind mount")
            return
        asked = {_clean(_get(d, "path") or "/") for d in devs}
        for path, major, minor in DEFAULT_DEVICES:
            if path in asked or path in self.mount_dests:
                continue
            self.device("/linux/devices", path, stat.S_IFCHR | 0o666, major, minor, -1, -1, f"default device {path}")
        for i, d in enumerate(devs):
            ptr = pointer("linux", "devices", i)
            path = _get(d, "path")
            if not path or not path.startswith("/"):
                raise PlanError(ptr + "/path", f"{path!r} must be an absolute path")
            kind = _get(d, "type")
            if kind not in DEVICE_TYPES:
                raise PlanError(ptr + "/type", f"unknown device type {kind!r} (c, b, u or p)")
            major, minor = _get(d, "major"), _get(d, "minor")
            if kind != "p" and (major is None or minor is None):
                raise PlanError(ptr, "major and minor are required unless the type is p")
            mode = _get(d, "file_mode")
            perm = 0o666 if mode is None else int(mode) & 0o7777
            uid, gid = _get(d, "uid"), _get(d, "gid")
            self.device(
                ptr,
                _clean(path),
                DEVICE_TYPES[kind] | perm,
                int(major or 0),
                int(minor or 0),
                -1 if uid is None else int(uid),
                -1 if gid is None else int(gid),
                f"device {path}",
            )
        self.op(OP_SYMLINK, "", s=("pts/ptmx", "/dev/ptmx"), what="/dev/ptmx -> pts/ptmx")
        links = [("/proc/self/fd", "/dev/fd")]
        links += [(f"/proc/self/fd/{n}", f"/dev/{name}") for n, name in enumerate(("stdin", "stdout", "stderr"))]
        if self.host.has_kcore:
            links.append(("/proc/kcore", "/dev/core"))
        for target, link in links:
            self.op(OP_SYMLINK, "", s=(target, link), what=f"{link} -> {target}")

    def device(self, ptr: str, path: str, mode: int, major: int, minor: int, uid: int, gid: int, what: str) -> None:
        if self.unprivileged_userns and not stat.S_ISFIFO(mode):
            # mknod of devices is denied in a user namespace: bind the host's node (checked to be a device)
            self.op(OP_BIND_DEV, ptr, s=(path, path), what=what + " (bind from the host)")
            return
        self.op(OP_MKNOD, ptr, s=(None, path), a=(mode, os.makedev(major, minor), uid, gid, 0), what=what)

    # -- stage 1 after the root switch: container paths

    def stage1_after_root_switch(self) -> None:
        proc, linux = self.process, self.linux
        cwd = _get(proc, "cwd") if proc is not None else "/"
        if not cwd or not cwd.startswith("/"):
            raise PlanError("/process/cwd", f"{cwd!r} must be an absolute path")
        if _clean(cwd) != "/":
            # runc creates a missing cwd, as root and before the root may turn read-only
            self.op(OP_MKDIR, "/process/cwd", s=(None, cwd), a=(0o755,), what="create the working directory")
        if _get(proc, "terminal"):
            if self.console_fd is None:
                raise PlanError("/process/terminal", "a terminal needs a console socket (--console-socket)")
            size = _get(proc, "console_size")
            rows, cols = int(_get(size, "height") or 0), int(_get(size, "width") or 0)
            self.op(OP_CONSOLE, "/process/terminal", a=(self.console_fd, rows, cols), what="console on /dev/console")
        if _get(self.spec, "hostname"):
            self.op(OP_SETHOSTNAME, "/hostname", s=(self.spec.hostname,), what="hostname")
        if _get(self.spec, "domainname"):
            self.op(OP_SETDOMAINNAME, "/domainname", s=(self.spec.domainname,), what="domainname")
        for key, value in sorted(_items(_get(linux, "sysctl"))):
            ptr = pointer("linux", "sysctl", key)
            self.check_sysctl(ptr, key, value)
            self.op(OP_SYSCTL, ptr, s=(key, str(value)), what=f"sysctl {key}")
        # read-only paths before masks, as runc: a read-only bind of a parent must not cover a mask made before
        for i, path in enumerate(_get(linux, "readonly_paths") or ()):
            self.container_path_op(OP_READONLY_PATH, pointer("linux", "readonlyPaths", i), path, "read-only")
        for i, path in enumerate(_get(linux, "masked_paths") or ()):
            self.container_path_op(OP_MASK_PATH, pointer("linux", "maskedPaths", i), path, "mask")
        for ptr in self.dev_ro:
            self.op(OP_READONLY_PATH, ptr, s=(None, "/dev"), what="/dev read-only")
        if self.propagation and "mount" in self.ns.new:
            self.op(
                OP_MOUNT_PROPAGATION,
                "/linux/rootfsPropagation",
                s=("/",),
                a=(self.propagation,),
                what=f"rootfs propagation {_get(linux, 'rootfs_propagation')}",
            )
        root = _get(self.spec, "root")
        if _get(root, "readonly"):
            self.op(OP_REMOUNT_ROOT_RO, "/root/readonly", what="read-only rootfs")

    def container_path_op(self, code: int, ptr: str, path: str, what: str) -> None:
        if not path or not path.startswith("/"):
            raise PlanError(ptr, f"{path!r} must be an absolute path")
        self.op(code, ptr, s=(None, _clean(path)), what=f"{what} {path}")

    def check_sysctl(self, ptr: str, key: str, value: Any = None) -> None:
        """Only sysctls of a namespace the container owns (runc's rule): never write the host's."""
        name = key.replace("/", ".")
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if not self.ns.has("ipc"):
                raise PlanError(ptr, "needs an ipc namespace")
        elif name in UTS_SYSCTLS:
            if not self.ns.has("uts"):
                raise PlanError(ptr, "needs a uts namespace")
            if name == "kernel.hostname":
                # as runc and crun: the dedicated field says it, and the two could disagree
                raise PlanError(ptr, "not allowed: it conflicts with the /hostname field (set /hostname instead)")
            domainname = _get(self.spec, "domainname")
            if domainname and str(value) != domainname:
                raise PlanError(ptr, f"value {value!r} conflicts with /domainname {domainname!r}")
        elif name.startswith("net."):
            if "network" in self.ns.new:
                return
            joined = self.ns.joined.get("network")
            if joined is None or self.host.is_host_netns(joined[1]):
                raise PlanError(ptr, "needs a network namespace other than the host's")
        else:
            raise PlanError(ptr, "not in a namespace of the container: it would change the host")

    # -- LSM labels and seccomp

    def check_lsm(self) -> None:
        try:
            self.label_writes = lsm.process_writes(
                _get(self.process, "apparmor_profile"),
                _get(self.process, "selinux_label"),
                self.host.lsms,
                self.host.apparmor_exec,
            )
            self.mount_label = lsm.mount_label(_get(self.linux, "mount_label"), self.host.lsms)
        except lsm.LabelError as exc:
            raise PlanError(exc.pointer, exc.message) from None

    seccomp_cache: str | None = None  # a directory of compiled programs (compile_create's `seccomp_cache`)

    def seccomp_program(self) -> Any:
        """The compiled linux.seccomp program (ocipy.seccomp.Program), None without one."""
        cfg = _get(self.linux, "seccomp")
        if cfg is None:
            return None
        # loads cffi and libseccomp only for configs that ask for seccomp, and then not when the cache has it
        from ocipy import seccomp as sc

        try:
            return sc.compile_cached(cfg, "/linux/seccomp", self.seccomp_cache)
        except sc.SeccompError as exc:
            raise PlanError(exc.pointer, exc.message) from None

    def seccomp(self, prog: Any) -> None:
        if prog is None:
            return
        from ocipy import seccomp as sc

        insns = len(prog.bpf) // sc.SOCK_FILTER_SIZE
        self.op(
            OP_SECCOMP,
            "/linux/seccomp",
            s=(self.plan.blob(prog.bpf),),
            a=(len(prog.bpf), prog.flags, 1 if prog.listener else 0),
            what=f"seccomp filter, {insns} instructions" + (", listener" if prog.listener else ""),
        )

    # -- the process

    def process_ops(self) -> None:
        proc = self.process
        if proc is None:
            # config.md: process is OPTIONAL at create and REQUIRED by start: the container is set up and waits;
            # `start` refuses it (runtime.md: start MUST generate an error when process was not set)
            self.before_exec()
            return
        if not _get(proc, "terminal"):
            # its own session and process group, as runc: kill(0, sig) or a job-control signal from the container
            # must never reach the caller's group, and CRIU cannot dump a pid namespace whose init's session leader
            # is outside it (with a terminal, OP_CONSOLE calls setsid)
            self.op(OP_SETSID, "", what="new session")
        if not self.no_new_keyring:
            self.op(OP_NEW_KEYRING, "", what="new session keyring")
        seen: dict[int, int] = {}
        for i, rl in enumerate(_get(proc, "rlimits") or ()):
            kind = _get(rl, "type")
            if kind not in RLIMITS:
                raise PlanError(pointer("process", "rlimits", i, "type"), f"unknown rlimit {kind!r}")
            if RLIMITS[kind] in seen:
                raise PlanError(pointer("process", "rlimits", i, "type"), f"duplicate {kind}")
            seen[RLIMITS[kind]] = i
            soft, hard = int(_get(rl, "soft") or 0), int(_get(rl, "hard") or 0)
            try:
                args = (RLIMITS[kind], _u64(soft), _u64(hard))
            except ValueError:
                raise PlanError(pointer("process", "rlimits", i), "limits must be uint64") from None
            self.op(OP_SETRLIMIT, pointer("process", "rlimits", i), a=args, what=kind)
        self.personality()
        self.scheduler()
        self.ioprio()
        self.capabilities_and_ids()

    def container_root(self) -> str:
        """The container's root as a host path, for reading its files (exec: the running init's root)."""
        return self.rootfs

    def home_of(self, uid: int) -> str:
        """HOME for a process env that lacks it, as runc: the uid's entry in the container's /etc/passwd (a file
        bind-mounted there, as Podman does, is read at its source), else "/"."""
        text = None
        for m in _get(self.spec, "mounts") or ():
            if _clean(_get(m, "destination") or "/") == "/etc/passwd" and _get(m, "source"):
                src = _get(m, "source")
                if not src.startswith("/"):
                    src = posixpath.join(self.bundle, src)
                text = self.host.read_in_root("/", src)
        if text is None:
            text = self.host.read_in_root(self.container_root(), "/etc/passwd")
        return inroot.passwd_home(text, uid) or "/"

    def before_exec(self) -> None:
        """The last step before the fds are closed and the program runs: create reports `created` and waits for
        `start` (ocipy/execplan.py overrides this: an exec'd process runs straight on)."""
        self.op(OP_SIGNAL_CREATED, "", what="created")
        self.op(OP_WAIT_START, "", what="wait for start")

    def personality(self) -> None:
        pers = _get(self.linux, "personality")
        if pers is None:
            return
        domain = _get(pers, "domain")
        if domain not in PERSONALITY_DOMAINS:
            raise PlanError("/linux/personality/domain", f"unknown domain {domain!r} (LINUX or LINUX32)")
        for i, flag in enumerate(_get(pers, "flags") or ()):
            raise PlanError(pointer("linux", "personality", "flags", i), f"unsupported flag {flag!r}")
        self.op(OP_PERSONALITY, "/linux/personality", a=(PERSONALITY_DOMAINS[domain],), what=domain)

    def scheduler(self) -> None:
        sched = _get(self.process, "scheduler")
        if sched is None:
            return
        policy = _get(sched, "policy")
        if policy not in SCHED_POLICIES:
            raise PlanError("/process/scheduler/policy", f"unknown policy {policy!r}")
        flags = 0
        for i, name in enumerate(_get(sched, "flags") or ()):
            if name not in SCHED_FLAGS:
                raise PlanError(pointer("process", "scheduler", "flags", i), f"unknown flag {name!r}")
            flags |= SCHED_FLAGS[name]
        dl = [_get(sched, k) for k in ("runtime", "deadline", "period")]
        text = " ".join(str(int(v or 0)) for v in dl) if any(v is not None for v in dl) else None
        nice, prio = int(_get(sched, "nice") or 0), int(_get(sched, "priority") or 0)
        self.op(
            OP_SCHEDULER, "/process/scheduler", s=(text,), a=(SCHED_POLICIES[policy], nice, prio, flags), what=policy
        )

    def ioprio(self) -> None:
        io = _get(self.process, "io_priority")
        if io is None:
            return
        cls = _get(io, "class_")
        if cls not in IOPRIO_CLASSES:
            raise PlanError("/process/ioPriority/class", f"unknown class {cls!r}")
        prio = int(_get(io, "priority") or 0)
        if not 0 <= prio <= 7:
            raise PlanError("/process/ioPriority/priority", "must be 0 to 7")
        value = IOPRIO_CLASSES[cls] << IOPRIO_CLASS_SHIFT | prio
        self.op(OP_IOPRIO, "/process/ioPriority", a=(value,), what=f"{cls} {prio}")

    def cap_mask(self, capset: Any, name: str, key: str) -> int:
        """The bit mask of one capability set; names the kernel cannot take are dropped with a warning (the spec
        says to warn, not fail)."""
        mask = 0
        for i, cap in enumerate(_get(capset, name) or ()):
            num = caps.number(cap)
            if num is None:
                self.warn(pointer("process", "capabilities", key, i), f"unknown capability {cap!r}: ignored")
            elif num > self.host.cap_last_cap:
                self.warn(pointer("process", "capabilities", key, i), f"{cap} is not known to this kernel: ignored")
            elif self.host.bounding is not None and not self.host.bounding >> num & 1:
                # config.md: runtimes SHOULD NOT fail on capabilities that cannot be granted (a restricted
                # environment); capset would fail with EPERM for the whole set
                self.warn(
                    pointer("process", "capabilities", key, i),
                    f"{cap} cannot be granted (not in the runtime's own bounding set): ignored",
                )
            else:
                mask |= 1 << num
        return mask

    def capabilities_and_ids(self) -> None:
        proc = self.process
        capset = _get(proc, "capabilities")
        masks = {
            key: self.cap_mask(capset, attr, key)
            for attr, key in (
                ("bounding", "bounding"),
                ("effective", "effective"),
                ("permitted", "permitted"),
                ("inheritable", "inheritable"),
                ("ambient", "ambient"),
            )
        }
        # The kernel raises an ambient capability only when it is permitted and inheritable; runc warns and goes
        # on without the rest (`runc spec --rootless` style configs ask for ambient caps with no inheritable set).
        raisable = masks["ambient"] & masks["permitted"] & masks["inheritable"]
        if raisable != masks["ambient"]:
            self.warn(
                "/process/capabilities/ambient",
                "ambient capabilities that are not also permitted and inheritable cannot be raised: ignored",
            )
            masks["ambient"] = raisable
        self.op(OP_CAP_BOUNDING, "/process/capabilities/bounding", a=(masks["bounding"],), what="bounding set")
        # Before any seccomp filter: a profile need not allow close_range (or fcntl) for ocipy's sake.
        self.op(OP_CLOSE_FDS, "", a=(self.extra_fds,), what=f"keep {self.extra_fds} extra fds")
        cwd = _get(proc, "cwd")
        # The working directory (and its getcwd check) before any seccomp filter too, as root; a directory root
        # cannot enter (a user namespace) is tried again below with the process's own ids.
        self.op(OP_CHDIR, "/process/cwd", s=(cwd,), a=(1,), what=f"cd {cwd}")
        nnp = bool(_get(proc, "no_new_privileges"))
        prog = self.seccomp_program()
        if not nnp:
            # without no_new_privs installing a filter needs CAP_SYS_ADMIN: before the ids and capabilities change
            self.seccomp(prog)
        user = _get(proc, "user")
        uid, gid = int(_get(user, "uid") or 0), int(_get(user, "gid") or 0)
        groups = [str(int(g)) for g in _get(user, "additional_gids") or ()]
        # Always set (clearing the caller's supplementary groups), except where setgroups is denied: a user
        # namespace made by an unprivileged user. Asked-for groups are still tried so the failure names the field.
        if groups or not (self.in_userns and self.host_uid != 0):
            self.op(
                OP_SETGROUPS,
                "/process/user/additionalGids",
                s=(self.strv("/process/user/additionalGids", groups) if groups else None,),
                a=(len(groups),),
                what="groups " + (",".join(groups) or "(none)"),
            )
        self.op(OP_SETGID, "/process/user/gid", a=(gid,), what=f"gid {gid}")
        self.op(OP_SETUID, "/process/user/uid", a=(uid,), what=f"uid {uid}")
        umask = _get(user, "umask")
        umask = DEFAULT_UMASK if umask is None else int(umask)
        self.op(OP_UMASK, "/process/user/umask", a=(umask,), what=f"umask {umask:04o}")
        self.op(OP_CHDIR, "/process/cwd", s=(cwd,), a=(2,), what=f"cd {cwd} (if root could not)")
        args = list(_get(proc, "args") or ())
        if not args or not args[0]:
            raise PlanError("/process/args", "at least one argument (the program) is required")
        env = list(_get(proc, "env") or ())
        if not any(e.startswith("HOME=") for e in env):
            env.append("HOME=" + self.home_of(uid))
        path = next((e[5:] for e in env if e.startswith("PATH=")), None)
        self.op(OP_FIND_EXEC, "/process/args/0", s=(args[0], path), what=f"find {args[0]}")
        self.op(
            OP_CAPSET,
            "/process/capabilities",
            a=(masks["effective"], masks["permitted"], masks["inheritable"], masks["ambient"]),
            what="capabilities",
        )
        listener = prog is not None and prog.listener
        if nnp:
            self.op(OP_NO_NEW_PRIVS, "/process/noNewPrivileges", what="no_new_privs")
            if listener:
                # before `created`, while the runtime still listens on the sync socket for the listener fd
                self.seccomp(prog)
        self.before_exec()
        if nnp and not listener:
            # last: after the filter only execve follows (a profile need not allow poll, read or close)
            self.seccomp(prog)
        env += self.env_extra
        self.op(
            OP_EXEC,
            "/process/args",
            s=(self.strv("/process/args", args), self.strv("/process/env", env) if env else None),
            a=(len(args), len(env)),
            what=f"exec {args[0]}",
        )
