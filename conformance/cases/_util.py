"""Helpers shared by the case modules."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]


def capmask(names: list[str]) -> int:
    m = 0
    for n in names:
        m |= 1 << CAPS.index(n)
    return m


def capnames(mask_hex: str | None) -> list[str]:
    if mask_hex is None:
        return ["<missing>"]
    m = int(mask_hex, 16)
    return [n for i, n in enumerate(CAPS) if m >> i & 1] + (["bit%d" % i for i in range(len(CAPS), 64) if m >> i & 1])


def mounts(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Parsed /proc/self/mountinfo of the probe: id, parent, point, opts (set), optional (list), fstype, source,
    super (set)."""
    out = []
    for line in facts.get("mountinfo") or []:
        f = line.split()
        try:
            sep = f.index("-")
        except ValueError:
            continue
        out.append(
            {
                "id": f[0],
                "parent": f[1],
                "root": f[3],
                "point": f[4].replace("\\040", " "),
                "opts": set(f[5].split(",")),
                "optional": f[6:sep],
                "fstype": f[sep + 1],
                "source": f[sep + 2],
                "super": set(f[sep + 3].split(",")) if len(f) > sep + 3 else set(),
            }
        )
    return out


def top_mount(facts: dict[str, Any], point: str) -> dict[str, Any] | None:
    """The mount visible at point (the last one mounted there)."""
    ms = [m for m in mounts(facts) if m["point"] == point]
    return ms[-1] if ms else None


def req(facts: dict[str, Any], key: str) -> Any:
    return (facts.get("req") or {}).get(key)


def wait_file(p: Path, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.exists():
            return True
        time.sleep(0.02)
    return p.exists()


def is_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


def sh(args: str) -> list[str]:
    return ["/bin/sh", "-c", args]


def set_args(cfg: dict[str, Any], args: list[str]) -> dict[str, Any]:
    cfg["process"]["args"] = args
    return cfg


def host_fact_exists(path: str) -> bool:
    return os.path.exists(path)
