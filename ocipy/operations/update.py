"""`ocipy update [--resources FILE|-] [runc's flags] ID`: change a running container's cgroup limits.

The LinuxResources JSON is checked by hand (no pydantic: the cgroup writers check each value they use and name the
field), merged over what create applied (kept in the private cgroup record), and the groups it touches are written
again; runc's per-resource flags override the JSON. Devices are not updated (as runc): the rules set at create stay.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ..errors import OcipyError, os_reason
from ..store import Store

_MULT = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str, flag: str) -> int:
    """docker/go-units RAMInBytes: `100m`, `1g`, `512KiB`, `1024`; `-1` for unlimited."""
    s = text.strip().lower()
    if s == "-1":
        return -1
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(num) :].removesuffix("ib").removesuffix("b") if s[len(num) :] not in ("b",) else ""
    try:
        value = float(num)
    except ValueError:
        raise OcipyError(f"invalid value for --{flag}: {text!r}") from None
    if unit not in _MULT or value < 0:
        raise OcipyError(f"invalid value for --{flag}: {text!r}")
    return int(value * _MULT[unit])


def _int(text: str, flag: str, minimum: int | None = None) -> int:
    try:
        v = int(text)
    except ValueError:
        raise OcipyError(f"invalid value for --{flag}: {text!r}") from None
    if minimum is not None and v < minimum:
        raise OcipyError(f"invalid value for --{flag}: {text!r}")
    return v


def _read_resources(path: str) -> dict[str, Any]:
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise OcipyError(f"--resources {path}: {os_reason(exc)}") from None
    try:
        res = json.loads(data) if data.strip() else {}
    except ValueError as exc:
        raise OcipyError(f"--resources {path}: invalid JSON: {exc}") from None
    if not isinstance(res, dict):
        raise OcipyError(f"--resources {path}: must be a JSON object (LinuxResources)")
    return res


def from_flags(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def put(group: str, key: str, value: Any) -> None:
        out.setdefault(group, {})[key] = value

    if getattr(args, "blkio_weight", None) is not None:
        put("blockIO", "weight", _int(args.blkio_weight, "blkio-weight", 0))
    for flag, dest, key, minimum in (
        ("cpu-period", "cpu_period", "period", 0),
        ("cpu-quota", "cpu_quota", "quota", None),
        ("cpu-burst", "cpu_burst", "burst", 0),
        ("cpu-idle", "cpu_idle", "idle", None),
        ("cpu-share", "cpu_share", "shares", 0),
        ("cpu-rt-period", "cpu_rt_period", "realtimePeriod", 0),
        ("cpu-rt-runtime", "cpu_rt_runtime", "realtimeRuntime", None),
    ):
        if getattr(args, dest, None) is not None:
            put("cpu", key, _int(getattr(args, dest), flag, minimum))
    if getattr(args, "cpuset_cpus", None) is not None:
        put("cpu", "cpus", args.cpuset_cpus)
    if getattr(args, "cpuset_mems", None) is not None:
        put("cpu", "mems", args.cpuset_mems)
    for flag, dest, key in (
        ("memory", "memory", "limit"),
        ("memory-reservation", "memory_reservation", "reservation"),
        ("memory-swap", "memory_swap", "swap"),
        ("kernel-memory", "kernel_memory", "kernel"),
        ("kernel-memory-tcp", "kernel_memory_tcp", "kernelTCP"),
    ):
        if getattr(args, dest, None) is not None:
            put("memory", key, ram_in_bytes(getattr(args, dest), flag))
    if getattr(args, "pids_limit", None) is not None:
        put("pids", "limit", _int(args.pids_limit, "pids-limit"))
    if getattr(args, "l3_cache_schema", None) is not None or getattr(args, "mem_bw_schema", None) is not None:
        raise OcipyError("intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported by ocipy")
    return out


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Object groups merge key by key (memory, cpu, pids, blockIO, network, unified, rdma); lists replace."""
    out = dict(old)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def main(args: Any) -> int:
    change: dict[str, Any] = {}
    if getattr(args, "resources", None):
        change = _read_resources(args.resources)
    change = merge(change, from_flags(args))
    c = Store.from_args(args).open_locked(args.container_id)
    try:
        c.status().require("update")
        cgroup = c.cgroup()
        stored = cgroup.record.get("resources")
        old: dict[str, Any] = stored if isinstance(stored, dict) else {}
        merged = merge(old, change)
        # write again every group the update touches, with its merged values (memory+swap need each other)
        cgroup.apply({k: merged[k] for k in change if k != "devices"}, update=True)
        state = c.read_state()
        state.cgroup = {**cgroup.record, "resources": merged}
        c.write_state(state)
    finally:
        c.close()
    return 0
