"""AppArmor profiles and SELinux labels: which LSM the host runs, and what the init must write for a config.

Nothing here writes: the plan carries the writes as OP_WRITE_PROC ops, which the init performs only after checking
that the file lies on a real procfs (fstatfs PROC_SUPER_MAGIC), so a fake /proc (a bind or tmpfs mounted over it,
CVE-2019-16884 / CVE-2019-19921) can never swallow a label. They are made early, through the /proc the runtime
was started with (before the root switch), so the container's own mounts cannot stand in for it at all. The exec
labels take effect at the final execve. Asking for a label on a host without that LSM is an error, not a silent
no-op: a container that believes it is confined while it is not is worse than one that does not start.
"""

from __future__ import annotations

from ocipy import posixlite as px  # not `os` (~1 ms on every exec: ocipy/posixlite.py)
from ocipy.errors import ConfigError
from ocipy.posixlite import read_text

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
    from dataclasses import dataclass
else:
    from ocipy.records import dataclass

APPARMOR = "apparmor"
SELINUX = "selinux"

# Characters a label may hold. SELinux contexts use ':' ',' '.' '_' '-'; AppArmor names also '/', '(', ')', ' '.
# A '"' would close the quoting of the context= mount option and a newline or NUL would cut the procfs write short.
_FORBIDDEN = ('"', "\n", "\0")


def _read(path: str) -> str:
    return (read_text(path) or "").strip()


def active() -> frozenset[str]:
    """The major LSMs running on this host that ocipy can drive (apparmor, selinux), looked up read-only."""
    found: set[str] = set()
    listed = _read("/sys/kernel/security/lsm")
    names = set(listed.split(",")) if listed else set()
    if APPARMOR in names or _read("/sys/module/apparmor/parameters/enabled") == "Y":
        found.add(APPARMOR)
    if SELINUX in names or px.exists("/sys/fs/selinux/enforce"):
        found.add(SELINUX)
    return frozenset(found)


def apparmor_exec_path() -> str:
    """Where an AppArmor exec transition is written: the LSM's own directory (stacking kernels) or the shared one."""
    return "/proc/self/attr/apparmor/exec" if px.isdir("/proc/self/attr/apparmor") else "/proc/self/attr/exec"


@dataclass(frozen=True)
class ProcWrite:
    """One write the init makes under /proc (OP_WRITE_PROC)."""

    pointer: str
    path: str
    text: str
    what: str


class LabelError(ConfigError):
    """An AppArmor/SELinux label the host or the kernel cannot take, named by its field."""


def check_label(pointer: str, label: str) -> None:
    if not label.strip() or any(c in label for c in _FORBIDDEN):
        raise LabelError(pointer, f"{label!r} is not a valid label")


def process_writes(
    apparmor_profile: str | None,
    selinux_label: str | None,
    lsms: frozenset[str],
    apparmor_path: str = "/proc/self/attr/apparmor/exec",
) -> list[ProcWrite]:
    """The procfs writes that put the container process under its profile/label at execve."""
    writes: list[ProcWrite] = []
    if apparmor_profile:
        ptr = "/process/apparmorProfile"
        check_label(ptr, apparmor_profile)
        if APPARMOR not in lsms:
            raise LabelError(ptr, "AppArmor is not enabled on this host")
        writes.append(ProcWrite(ptr, apparmor_path, f"exec {apparmor_profile}", f"AppArmor profile {apparmor_profile}"))
    if selinux_label:
        ptr = "/process/selinuxLabel"
        check_label(ptr, selinux_label)
        if SELINUX not in lsms:
            raise LabelError(ptr, "SELinux is not enabled on this host")
        # the session keyring the init joins later is labelled too (runc does the same)
        writes.append(ProcWrite(ptr, "/proc/self/attr/keycreate", selinux_label, "SELinux keyring label"))
        writes.append(ProcWrite(ptr, "/proc/self/attr/exec", selinux_label, f"SELinux label {selinux_label}"))
    return writes


# Filesystems that take no context= option (or that runc leaves unlabelled).
NO_CONTEXT_FS = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "mqueue", "bpf", "securityfs", "debugfs"})


def mount_label(label: str | None, lsms: frozenset[str]) -> str | None:
    """The checked `linux.mountLabel`, or None when there is none."""
    if not label:
        return None
    ptr = "/linux/mountLabel"
    check_label(ptr, label)
    if SELINUX not in lsms:
        raise LabelError(ptr, "SELinux is not enabled on this host")
    return label


def with_context(data: str | None, fstype: str | None, label: str | None) -> str | None:
    """Mount data with `context="LABEL"` added for filesystems that take one."""
    if not label or not fstype or fstype in NO_CONTEXT_FS:
        return data
    ctx = f'context="{label}"'
    return f"{data},{ctx}" if data else ctx
