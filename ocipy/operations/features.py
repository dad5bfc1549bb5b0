"""`ocipy features`: what this build supports (runtime-spec features.md), in runc 1.5.1's shape and key order.

Kept honest: a facility ocipy cannot give is reported `false` (or an empty list), never claimed and never left out.
`archs` lists the spec's architectures this host's libseccomp resolves (runc lists a fixed table of its own, so
LOONGARCH64 appears there with libseccomp 2.5.4, which does not know it; PARISC is here and not in runc's).
Whether *this host* has a facility (an LSM, a controller) is `ocipy check`'s job. The systemd and criu issues flip
their lines in `cgroup_features()` / `checkpoint_enabled()`.
"""

from __future__ import annotations

import json
import sys

from .. import caps, mempolicy, mountopts
from ..namespaces import CLONE_FLAGS
from ..state import HOOK_KINDS

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HOOKS = list(HOOK_KINDS)

# What the mount planner really applies (ocipy/mountopts.py), with idmap/ridmap (binds, with the mount's own
# mappings or the container's user namespace) and tmpcopyup (the init copies the directory's contents into the new tmpfs). containerd 2.x
# reads this (and mountExtensions) to decide on idmapped mounts.
MOUNT_OPTIONS = sorted(
    {
        *mountopts.FLAGS,
        *mountopts.PROPAGATION,
        *mountopts.REC_ATTRS,
        *mountopts.REC_ATIME,
        "idmap",
        "ridmap",
        "tmpcopyup",
    }
)

NAMESPACES = sorted(CLONE_FLAGS)


def capabilities() -> list[str]:
    """The capabilities the kernel knows (cap_last_cap), by number (the table: ocipy/caps.py)."""
    return list(caps.NAMES[: caps.host_last_cap() + 1])


def cgroup_features() -> dict[str, bool]:
    # ocipy/cgroups: v1, v2 and hybrid layouts, rdma.max on either (docs/cgroups.md)
    # --- systemd driver (owner: the systemd issue): --systemd-cgroup with the system instance; no user instance
    # (rootless systemd) yet ---
    return {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True}


def checkpoint_enabled() -> bool:
    # --- checkpoint/restore (owner: the criu issue): this build has them (ocipy/criu/); whether this host's CRIU
    # and kernel can is `ocipy check`'s "checkpoint/restore" section ---
    return True


# Annotations whose value ocipy acts on (runtime-spec features.md: a caller must not pass them through from an
# untrusted image). runc: "bundle", "org.systemd.property." (its systemd driver), "org.criu.config". ocipy reads
# none yet; the systemd driver adds "org.systemd.property." when it reads them, criu "org.criu.config".
UNSAFE_ANNOTATIONS: list[str] = ["org.criu.config"]


def features() -> dict[str, Any]:
    """The document, keys in runc 1.5.1's order. What ocipy cannot do is `false` (or an empty list), not left out."""
    from .. import version

    annotations = {}
    seccomp_version = version.libseccomp()
    if seccomp_version:
        annotations["io.github.seccomp.libseccomp.version"] = seccomp_version
    annotations.update(
        {
            "org.opencontainers.ocipy.checkpoint.enabled": "true" if checkpoint_enabled() else "false",
            "org.opencontainers.ocipy.commit": version.commit(),
            "org.opencontainers.ocipy.version": version.VERSION,
        }
    )
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": version.SPEC,
        "hooks": HOOKS,
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": capabilities(),
            "cgroup": cgroup_features(),
            **_security(),
            # create refuses intelRdt (docs/cgroups.md)
            "intelRdt": {"enabled": False, "schemata": False, "monitoring": False},
            # linux.memoryPolicy: set_mempolicy in the init (ocipy/mempolicy.py); every mode and flag, sorted as runc
            "memoryPolicy": {"modes": sorted(mempolicy.MODES), "flags": sorted(mempolicy.FLAGS)},
            # idmapped binds: the mount's own uidMappings/gidMappings (with or without a container user namespace),
            # or the container's new or joined user namespace
            "mountExtensions": {"idmap": {"enabled": True}},
            # linux.netDevices: moved into the container's network namespace by create (ocipy/netdev.py)
            "netDevices": {"enabled": True},
        },
        "annotations": annotations,
        "potentiallyUnsafeConfigAnnotations": UNSAFE_ANNOTATIONS,
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
    for name in sorted(f"SCMP_ARCH_{a}" for a in _SPEC_ARCHS):
        try:
            seccomp.arch_token(name, "")
            archs.append(name)
        except (SeccompError, OSError):
            pass
    # runc's order (the kernel's flag bits); ocipy passes them to seccomp(2) itself, so every known flag is supported
    order = ["TSYNC", "SPEC_ALLOW", "LOG", "WAIT_KILLABLE_RECV"]
    flags = sorted(seccomp.SPEC_FLAGS, key=lambda f: order.index(f[20:]) if f[20:] in order else len(order))
    return {
        "seccomp": {
            "enabled": True,
            "actions": sorted(seccomp.ACTIONS),
            "operators": sorted(seccomp.OPERATORS),
            "archs": archs,
            "knownFlags": flags,
            "supportedFlags": flags,
        },
        # labels are written when asked for (ocipy/lsm.py); whether this host has the LSM is `ocipy check`'s job
        "apparmor": {"enabled": True},
        "selinux": {"enabled": True},
    }


def main(args: Any) -> int:
    # runc indents features with four spaces
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0
