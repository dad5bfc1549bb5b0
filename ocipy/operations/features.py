"""`ocipy features`: what this build and host support (runtime-spec features.md). Kept honest: what is not known to
work is left out rather than claimed; the cgroup, seccomp and mount owners extend it."""

from __future__ import annotations

import json
import sys

from .. import mountopts

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# capability numbers are the kernel ABI (linux/capability.h); the kernel says how many it knows
_CAPS = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]

HOOKS = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
]

# What the mount planner really applies (ocipy/mountopts.py), with idmap/ridmap (binds in a new user namespace,
# with its mappings); not `tmpcopyup` (accepted with a warning, the tmpfs starts empty). containerd 2.x reads this
# (and mountExtensions) to decide on idmapped mounts.
MOUNT_OPTIONS = sorted(
    {*mountopts.FLAGS, *mountopts.PROPAGATION, *mountopts.REC_ATTRS, *mountopts.REC_ATIME, "idmap", "ridmap"}
)

NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]


def capabilities() -> list[str]:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = len(_CAPS) - 1
    return [f"CAP_{name}" for name in _CAPS[: last + 1]]


def features() -> dict[str, Any]:
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": HOOKS,
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": capabilities(),
            # ocipy/cgroups: v1, v2 and hybrid layouts, rdma.max on either; the systemd driver (--systemd-cgroup,
            # system instance only: no rootless/user systemd) (docs/cgroups.md)
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True},
            **_security(),
            "intelRdt": {"enabled": False},  # create refuses intelRdt (docs/cgroups.md)
            # idmapped binds in a new user namespace, with that namespace's mappings
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {
            "org.opencontainers.ocipy.version": "0.1.0",
            "org.opencontainers.ocipy.checkpoint.enabled": "false",
        },
    }


# The architecture names runtime-spec knows; `archs` lists those this build's libseccomp resolves.
_SPEC_ARCHS = (
    "X86",
    "X86_64",
    "X32",
    "ARM",
    "AARCH64",
    "MIPS",
    "MIPS64",
    "MIPS64N32",
    "MIPSEL",
    "MIPSEL64",
    "MIPSEL64N32",
    "PPC",
    "PPC64",
    "PPC64LE",
    "S390",
    "S390X",
    "PARISC",
    "PARISC64",
    "RISCV64",
    "LOONGARCH64",
    "M68K",
    "SH",
    "SHEB",
)


def _security() -> dict[str, Any]:
    from .. import seccomp
    from ..seccomp import SeccompError

    archs = []
    for name in (f"SCMP_ARCH_{a}" for a in _SPEC_ARCHS):
        try:
            seccomp.arch_token(name, "")
            archs.append(name)
        except (SeccompError, OSError):
            pass
    return {
        "seccomp": {
            "enabled": True,
            "actions": sorted(seccomp.ACTIONS),
            "operators": sorted(seccomp.OPERATORS),
            "archs": archs,
            "knownFlags": sorted(seccomp.SPEC_FLAGS),
            "supportedFlags": sorted(seccomp.SPEC_FLAGS),
        },
        # labels are written when asked for (ocipy/lsm.py); whether this host has the LSM is `ocipy check`'s job
        "apparmor": {"enabled": True},
        "selinux": {"enabled": True},
    }


def main(args: Any) -> int:
    # runc indents features with four spaces
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0
