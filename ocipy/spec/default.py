"""The config.json that `ocipy spec` writes: the same defaults as `runc spec` (stdlib only, no pydantic)."""

import os
from typing import Any

from ocipy.state import OCI_VERSION

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

_MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/powercap",
    "/sys/devices/virtual/tpm",
]

_READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]


def _mount(destination: str, type_: str, source: str, options: list[str] | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"destination": destination, "type": type_, "source": source}
    if options is not None:
        m["options"] = options
    return m


def default_config(rootless: bool = False) -> dict[str, Any]:
    """A fresh runc-style example config; `rootless` adapts it for the calling unprivileged user."""
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(_CAPS),
                "effective": list(_CAPS),
                "permitted": list(_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "ocipy",
        "mounts": [
            _mount("/proc", "proc", "proc"),
            _mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                ["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            _mount(
                "/dev/pts",
                "devpts",
                "devpts",
                [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            _mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            _mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                ["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(_MASKED_PATHS),
            "readonlyPaths": list(_READONLY_PATHS),
        },
    }
    if rootless:
        _to_rootless(config)
    return config


def _to_rootless(config: dict[str, Any]) -> None:
    linux = config["linux"]
    # No network namespace (an unprivileged user could not configure one), and a user namespace of our own.
    namespaces = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "user")]
    namespaces.append({"type": "user"})
    linux["namespaces"] = namespaces
    # Only the caller's own ids can be mapped without a setuid helper.
    linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    mounts = []
    for m in config["mounts"]:
        if os.path.normpath(m["destination"]) == "/sys":
            # sysfs cannot be mounted without a network namespace of our own: bind the host's read-only instead.
            mounts.append(_mount("/sys", "none", "/sys", ["rbind", "nosuid", "noexec", "nodev", "ro"]))
            continue
        if "options" in m:
            # uid=/gid= options name ids that are not mapped in a single-id user namespace.
            m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
        mounts.append(m)
    config["mounts"] = mounts
    # An unprivileged user cannot set cgroup limits without delegation.
    del linux["resources"]
