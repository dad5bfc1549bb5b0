"""The planner's common ground: `PlanError`, the plan with warnings, JSON pointers, the readers of spec
objects, and `Section`, the state every section of the compiler works on."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`), `collections.abc` ~1 ms: annotations only
    from collections.abc import Sequence
    from typing import Any, TypeVar

    from ocipy.spec import views

    _T = TypeVar("_T")

from ocipy import errors, lsm
from ocipy.errors import ConfigError
from ocipy.planfmt import (
    MOUNT_ATTRS,
    MOUNT_DATA,
    MOUNT_DEST,
    MOUNT_FLAGS,
    MOUNT_FSTYPE,
    MOUNT_MNTF,
    MOUNT_PROPAGATION,
    MOUNT_REMOUNT,
    MOUNT_SOURCE,
    OP_MOUNT,
    Plan,
)
from ocipy.posixlite import normpath  # posixpath's, without importing `os` on exec's path

if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
    from dataclasses import dataclass, field

    from ocipy.plan.host import HostFacts
else:
    from ocipy.records import dataclass, field


U64 = 1 << 64


class PlanError(ConfigError):
    """A config the runtime cannot carry out, named by the JSON pointer of the field at fault (docs/errors.md)."""


class CreatePlan(Plan):
    """A Plan plus what stays on the runtime's side: the warnings met while compiling it ((pointer, message) pairs,
    for the log), and the user namespace each idmapped bind is idmapped with, by op index: (uid_map, gid_map) texts
    of the mount's own mappings (a namespace is made for them), or the path of a joined user namespace; an idmapped
    bind not listed takes the container's new user namespace."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[tuple[str, str]] = []
        self.idmap_userns: dict[int, tuple[str, str] | str] = {}


pointer = errors.pointer  # the one JSON-pointer builder (ocipy/errors.py)


class _Fields:
    """The fields of a spec object, None for one it lacks (a stand-in) or when there is no object."""

    __slots__ = ("_obj",)

    def __init__(self, obj: object) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name, None)


def opt(obj: _T | None) -> _T:
    """How the planner reads the config: `opt(proc).cwd` is proc.cwd, or None when proc is None or has no such
    attribute. Typed by the object's ocipy/spec/views.py Protocol, so mypy catches a misspelt field."""
    return _Fields(obj)  # type: ignore[return-value]


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
    return "/" + normpath(path).lstrip("/") if path != "/" else "/"


@dataclass
class _Namespaces:
    new: dict[str, int] = field(default_factory=dict)  # type -> index in linux.namespaces
    joined: dict[str, tuple[int, str]] = field(default_factory=dict)  # type -> (index, path)

    def has(self, kind: str) -> bool:
        return kind in self.new or kind in self.joined


class Section:
    """What every section of the planner shares: the config, the options of the run, the plan being built and
    the facts sections leave for each other (namespaces, /dev mounts, mount destinations, labels)."""

    log: tuple[str | None, str] = (None, "text")  # compile_create's `log`
    seccomp_cache: str | None = None  # a directory of compiled programs (compile_create's `seccomp_cache`)

    def __init__(
        self,
        spec: views.Spec,
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
        self.linux: views.Linux | None = opt(spec).linux
        self.process: views.Process | None = opt(spec).process
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
        self.trees_synced = False  # OP_SYNC SYNC_MOUNT_TREES emitted (idmapped binds, no new user namespace)
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

    def mount_op(
        self,
        ptr: str,
        what: str,
        *,
        dest: str,
        source: str | None = None,
        fstype: str | None = None,
        data: str | None = None,
        flags: int = 0,
        remount: int = 0,
        propagation: int = 0,
        attrs: int = 0,
        mntf: int = 0,
    ) -> int:
        """OP_MOUNT, its slots by name (plan.h: mount, then remount/propagation/mount_setattr, MNTF_* bits)."""
        s: list[str | None] = [None] * 4
        s[MOUNT_SOURCE], s[MOUNT_DEST], s[MOUNT_FSTYPE], s[MOUNT_DATA] = source, dest, fstype, data
        a = [0] * 5
        a[MOUNT_FLAGS], a[MOUNT_REMOUNT], a[MOUNT_PROPAGATION] = flags, remount, propagation
        a[MOUNT_ATTRS], a[MOUNT_MNTF] = attrs, mntf
        return self.op(OP_MOUNT, ptr, s=s, a=a, what=what)

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
