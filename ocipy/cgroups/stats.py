"""Container statistics in runc's `events` JSON shape (runc types/events.go), read from the recorded cgroups.

Go's `omitempty` is mirrored: zero numbers and empty lists tagged so are left out; nested objects always appear.
"""

from __future__ import annotations

import os
from typing import Any

from .fsio import read

USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
NS_PER_TICK = 1_000_000_000 // USER_HZ


def _int(d: str | None, fname: str) -> int:
    text = (read(d, fname) or "").strip()
    if text == "max":
        return 0
    try:
        return int(text)
    except ValueError:
        return 0


def _kv(d: str | None, fname: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (read(d, fname) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _omit(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Go omitempty for the named keys."""
    return {k: v for k, v in obj.items() if not (k in keys and not v)}


def _ranges(text: str) -> list[int]:
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            out.extend(range(int(a), int(b or a) + 1))
        except ValueError:
            pass
    return out


def _cpu_v1(acct: str | None, cpu: str | None) -> dict[str, Any]:
    percpu = [int(x) for x in (read(acct, "cpuacct.usage_percpu") or "").split()]
    st = _kv(acct, "cpuacct.stat")
    usage = {
        "total": _int(acct, "cpuacct.usage"),
        "percpu": percpu,
        "percpu_kernel": [int(x) for x in (read(acct, "cpuacct.usage_percpu_sys") or "").split()],
        "percpu_user": [int(x) for x in (read(acct, "cpuacct.usage_percpu_user") or "").split()],
        "kernel": st.get("system", 0) * NS_PER_TICK,
        "user": st.get("user", 0) * NS_PER_TICK,
    }
    t = _kv(cpu, "cpu.stat")
    throttling = {
        "periods": t.get("nr_periods", 0),
        "throttledPeriods": t.get("nr_throttled", 0),
        "throttledTime": t.get("throttled_time", 0),
    }
    return {
        "usage": _omit(usage, "total", "percpu", "percpu_kernel", "percpu_user"),
        "throttling": _omit(throttling, "periods", "throttledPeriods", "throttledTime"),
    }


def _cpu_v2(d: str | None) -> dict[str, Any]:
    t = _kv(d, "cpu.stat")
    usage = {
        "total": t.get("usage_usec", 0) * 1000,
        "kernel": t.get("system_usec", 0) * 1000,
        "user": t.get("user_usec", 0) * 1000,
    }
    throttling = {
        "periods": t.get("nr_periods", 0),
        "throttledPeriods": t.get("nr_throttled", 0),
        "throttledTime": t.get("throttled_usec", 0) * 1000,
    }
    return {
        "usage": _omit(usage, "total"),
        "throttling": _omit(throttling, "periods", "throttledPeriods", "throttledTime"),
    }


def _mem_entry(d: str | None, prefix: str) -> dict[str, Any]:
    return _omit(
        {
            "limit": _int(d, f"{prefix}.limit_in_bytes"),
            "usage": _int(d, f"{prefix}.usage_in_bytes"),
            "max": _int(d, f"{prefix}.max_usage_in_bytes"),
            "failcnt": _int(d, f"{prefix}.failcnt"),
        },
        "usage",
        "max",
    )


def _memory_v1(d: str | None) -> dict[str, Any]:
    raw = _kv(d, "memory.stat")
    return _omit(
        {
            "cache": raw.get("total_cache", raw.get("cache", 0)),
            "usage": _mem_entry(d, "memory"),
            "swap": _mem_entry(d, "memory.memsw"),
            "kernel": _mem_entry(d, "memory.kmem"),
            "kernelTCP": _mem_entry(d, "memory.kmem.tcp"),
            "raw": raw,
        },
        "cache",
        "raw",
    )


def _memory_v2(d: str | None) -> dict[str, Any]:
    raw = _kv(d, "memory.stat")
    events = _kv(d, "memory.events")
    usage = _int(d, "memory.current")
    return _omit(
        {
            "cache": raw.get("file", 0),
            "usage": _omit(
                {
                    "limit": _int(d, "memory.max"),
                    "usage": usage,
                    "max": _int(d, "memory.peak"),
                    "failcnt": events.get("max", 0),
                },
                "usage",
                "max",
            ),
            "swap": _omit(
                {
                    "limit": _int(d, "memory.swap.max"),
                    "usage": _int(d, "memory.swap.current"),
                    "max": _int(d, "memory.swap.peak"),
                    "failcnt": 0,
                },
                "usage",
                "max",
            ),
            "kernel": {"limit": 0, "failcnt": 0},
            "kernelTCP": {"limit": 0, "failcnt": 0},
            "raw": raw,
        },
        "cache",
        "raw",
    )


def _blkio_entries(d: str | None, fname: str) -> list[dict[str, Any]]:
    out = []
    for line in (read(d, fname) or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        maj, _, mnr = parts[0].partition(":")
        try:
            e = {"major": int(maj), "minor": int(mnr), "op": parts[1], "value": int(parts[2])}
        except ValueError:
            continue
        out.append(_omit(e, "major", "minor", "op", "value"))
    return out


def _blkio_v1(d: str | None) -> dict[str, Any]:
    b = {
        "ioServiceBytesRecursive": _blkio_entries(d, "blkio.throttle.io_service_bytes_recursive"),
        "ioServicedRecursive": _blkio_entries(d, "blkio.throttle.io_serviced_recursive"),
    }
    return _omit(b, *b)


def _blkio_v2(d: str | None) -> dict[str, Any]:
    sb: list[dict[str, Any]] = []
    sd: list[dict[str, Any]] = []
    for line in (read(d, "io.stat") or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        maj, _, mnr = parts[0].partition(":")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, op, dest in (
            ("rbytes", "Read", sb),
            ("wbytes", "Write", sb),
            ("rios", "Read", sd),
            ("wios", "Write", sd),
        ):
            if key in kv:
                dest.append(
                    _omit(
                        {"major": int(maj), "minor": int(mnr), "op": op, "value": int(kv[key])},
                        "major",
                        "minor",
                        "op",
                        "value",
                    )
                )
    return _omit(
        {"ioServiceBytesRecursive": sb, "ioServicedRecursive": sd}, "ioServiceBytesRecursive", "ioServicedRecursive"
    )


def _page_sizes() -> list[str]:
    out: list[str] = []
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return out
    for n in names:
        kb = int(n.split("-")[1].rstrip("kB"))
        for unit, div in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % div == 0:
                out.append(f"{kb // div}{unit}")
                break
    return sorted(out)


def _hugetlb(d: str | None, version: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not d:
        return out
    for size in _page_sizes():
        if version == 1:
            e = {
                "usage": _int(d, f"hugetlb.{size}.usage_in_bytes"),
                "max": _int(d, f"hugetlb.{size}.max_usage_in_bytes"),
                "failcnt": _int(d, f"hugetlb.{size}.failcnt"),
            }
        else:
            if read(d, f"hugetlb.{size}.current") is None:
                continue
            e = {
                "usage": _int(d, f"hugetlb.{size}.current"),
                "max": 0,
                "failcnt": _kv(d, f"hugetlb.{size}.events").get("max", 0),
            }
        out[size] = _omit(e, "usage", "max")
    return out


def _has(d: str | None, fname: str) -> bool:
    return bool(d) and os.path.exists(os.path.join(d or "", fname))


def collect(record: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a runc stats event."""
    v1: dict[str, str] = record.get("v1") or {}
    v2: str | None = record.get("v2")
    if "cpuacct" in v1 or "cpu" in v1:
        cpu = _cpu_v1(v1.get("cpuacct"), v1.get("cpu"))
    else:
        cpu = _cpu_v2(v2)
    cs_dir = v1.get("cpuset") or (v2 if _has(v2, "cpuset.cpus.effective") else None)
    cpuset: dict[str, Any] = {}
    if cs_dir:
        eff = "cpuset.effective_cpus" if "cpuset" in v1 else "cpuset.cpus.effective"
        effm = "cpuset.effective_mems" if "cpuset" in v1 else "cpuset.mems.effective"
        cpuset = _omit({"cpus": _ranges(read(cs_dir, eff) or "")}, "cpus")
        cpuset.update({"cpu_exclusive": _int(cs_dir, "cpuset.cpu_exclusive")})
        if m := _ranges(read(cs_dir, effm) or ""):
            cpuset["mems"] = m
        for key in (
            "mem_hardwall",
            "mem_exclusive",
            "memory_migrate",
            "memory_spread_page",
            "memory_spread_slab",
            "memory_pressure",
            "sched_load_balance",
            "sched_relax_domain_level",
        ):
            cpuset[key] = _int(cs_dir, f"cpuset.{key}")
    memory = _memory_v1(v1.get("memory")) if "memory" in v1 else _memory_v2(v2)
    pd = v1.get("pids") or v2
    pids = _omit({"current": _int(pd, "pids.current"), "limit": _int(pd, "pids.max")}, "current", "limit")
    blkio = _blkio_v1(v1.get("blkio")) if "blkio" in v1 else _blkio_v2(v2)
    if "hugetlb" in v1:
        huge = _hugetlb(v1["hugetlb"], 1)
    else:
        huge = _hugetlb(v2, 2)
    return {
        "cpu": cpu,
        "cpuset": cpuset,
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": huge,
        "intel_rdt": {},
        "network_interfaces": None,
    }


def oom_kills(record: dict[str, Any]) -> int:
    """The cgroup's OOM-kill count (v1 memory.oom_control, v2 memory.events), for `events` oom notices."""
    v1 = record.get("v1") or {}
    if "memory" in v1:
        return _kv(v1["memory"], "memory.oom_control").get("oom_kill", 0)
    return _kv(record.get("v2"), "memory.events").get("oom_kill", 0)
