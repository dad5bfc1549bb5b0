"""Resource writers for the unified (v2) hierarchy, with runc's conversions from the v1-style spec values."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` imports `re` and `contextlib` (~5 ms per create): annotations only
    from typing import Any

from ..errors import pointer
from . import CgroupError
from .fsio import R, exists, get_int, get_list, hugepage_limits, read, read_int, write

MEM = f"{R}/memory"
CPU = f"{R}/cpu"


def _num(v: int | None) -> str:
    """runc's numToStr: 0/None = leave alone (""), -1 = "max"."""
    if not v:
        return ""
    return "max" if v == -1 else str(v)


def swap_value(swap: int | None, limit: int | None) -> int:
    """The spec's memory+swap as memory.swap.max (swap only); 0 = leave alone, -1 = max."""
    swap, limit = swap or 0, limit or 0
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if limit == 0:
        raise CgroupError(f"{MEM}/swap", "a swap limit needs a memory limit")
    if limit < 0:
        raise CgroupError(f"{MEM}/limit", f"{limit}: invalid memory limit")
    if swap < limit:
        raise CgroupError(f"{MEM}/swap", f"memory+swap ({swap}) must be >= the memory limit ({limit})")
    return swap - limit


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000] (runc's linear map)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000]."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def memory(d: str, mem: dict[str, Any]) -> None:
    limit = get_int(mem, "limit", MEM, minimum=-1)
    swap = get_int(mem, "swap", MEM, minimum=-1)
    if mem.get("checkBeforeUpdate") and limit is not None and limit > 0:
        usage = read_int(d, "memory.current")
        if usage is not None and limit < usage:
            raise CgroupError(f"{MEM}/limit", f"{limit} is below the current usage {usage} (checkBeforeUpdate)")
    sv = swap_value(swap, limit)
    s = _num(sv)
    if not s and sv == 0 and swap and swap > 0:
        s = "0"  # memory == memory+swap: no swap at all
    if s:
        write(d, "memory.swap.max", s, f"{MEM}/swap")
    if _num(limit):
        write(d, "memory.max", _num(limit), f"{MEM}/limit")
    reservation = get_int(mem, "reservation", MEM, minimum=-1)
    if _num(reservation):
        write(d, "memory.low", _num(reservation), f"{MEM}/reservation")
    # kernel: deprecated, runtimes MAY ignore it (v2 has no separate kernel limit)
    if get_int(mem, "kernelTCP", MEM):
        raise CgroupError(f"{MEM}/kernelTCP", "cgroup v2 has no separate kernel TCP memory limit")
    if mem.get("disableOOMKiller"):
        raise CgroupError(f"{MEM}/disableOOMKiller", "cgroup v2 cannot disable the OOM killer")
    if get_int(mem, "swappiness", MEM) is not None:
        raise CgroupError(f"{MEM}/swappiness", "cgroup v2 has no per-cgroup swappiness")


def cpu(d: str, c: dict[str, Any]) -> None:
    idle = get_int(c, "idle", CPU)
    if idle is not None:
        write(d, "cpu.idle", str(idle), f"{CPU}/idle")
    shares = get_int(c, "shares", CPU, minimum=0)
    if shares:
        if not 2 <= shares <= 262144:
            raise CgroupError(f"{CPU}/shares", f"{shares}: must be within 2-262144")
        write(d, "cpu.weight", str(shares_to_weight(shares)), f"{CPU}/shares")
    quota = get_int(c, "quota", CPU, minimum=-1)
    period = get_int(c, "period", CPU, minimum=0)
    burst = get_int(c, "burst", CPU, minimum=0)
    if quota or period:
        value = str(quota) if quota and quota > 0 else "max"
        if period:
            value += f" {period}"
        # a smaller quota may be refused while a larger burst holds: burst last normally, first if that fails
        try:
            write(d, "cpu.max", value, f"{CPU}/quota")
        except CgroupError:
            if burst is None:
                raise
            write(d, "cpu.max.burst", str(burst), f"{CPU}/burst")
            write(d, "cpu.max", value, f"{CPU}/quota")
    if burst is not None:
        write(d, "cpu.max.burst", str(burst), f"{CPU}/burst")
    for key in ("realtimeRuntime", "realtimePeriod"):
        if get_int(c, key, CPU):
            raise CgroupError(f"{CPU}/{key}", "cgroup v2 has no realtime group scheduling")


def cpuset(d: str, c: dict[str, Any]) -> None:
    for key, fname in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        v = c.get(key)
        if v:
            write(d, fname, str(v), f"{CPU}/{key}")


def pids(d: str, p: dict[str, Any]) -> None:
    limit = get_int(p, "limit", f"{R}/pids")
    if limit is not None:
        write(d, "pids.max", "max" if limit < 0 else str(limit), f"{R}/pids/limit")


IO_MAX_KEYS = {
    "throttleReadBpsDevice": "rbps",
    "throttleWriteBpsDevice": "wbps",
    "throttleReadIOPSDevice": "riops",
    "throttleWriteIOPSDevice": "wiops",
}


def io(d: str, b: dict[str, Any]) -> None:
    ptr = f"{R}/blockIO"
    bfq = exists(d, "io.bfq.weight")
    weight = get_int(b, "weight", ptr, minimum=0)
    if weight:
        if bfq:
            write(d, "io.bfq.weight", str(weight), f"{ptr}/weight")
        else:
            write(d, "io.weight", f"default {blkio_weight_to_io(weight)}", f"{ptr}/weight")
    if get_int(b, "leafWeight", ptr):
        raise CgroupError(f"{ptr}/leafWeight", "cgroup v2 has no leaf weights")
    for i, wd in enumerate(get_list(b, "weightDevice", ptr)):
        p = f"{ptr}/weightDevice/{i}"
        dev = f"{get_int(wd, 'major', p, minimum=0)}:{get_int(wd, 'minor', p, minimum=0)}"
        w = get_int(wd, "weight", p, minimum=0)
        if w:
            if bfq:
                write(d, "io.bfq.weight", f"{dev} {w}", f"{p}/weight")
            else:
                write(d, "io.weight", f"{dev} {blkio_weight_to_io(w)}", f"{p}/weight")
        if get_int(wd, "leafWeight", p):
            raise CgroupError(f"{p}/leafWeight", "cgroup v2 has no leaf weights")
    for key, word in IO_MAX_KEYS.items():
        for i, td in enumerate(get_list(b, key, ptr)):
            p = f"{ptr}/{key}/{i}"
            dev = f"{get_int(td, 'major', p, minimum=0)}:{get_int(td, 'minor', p, minimum=0)}"
            rate = get_int(td, "rate", p, minimum=0) or 0
            write(d, "io.max", f"{dev} {word}={rate or 'max'}", p)


def hugetlb(d: str, limits: list[Any]) -> None:
    hugepage_limits(d, limits, "max")


def unified(d: str, u: dict[str, Any]) -> None:
    controllers = set((read(d, "cgroup.controllers") or "").split())
    for key, value in u.items():
        p = R + pointer("unified", key)
        if not key or "/" in key or "\0" in key or key.startswith(".") or "." not in key:
            raise CgroupError(p, f"{key!r}: not a cgroup file name")
        if not isinstance(value, str):
            raise CgroupError(p, "must be a string")
        ctrl = key.split(".", 1)[0]
        if ctrl != "cgroup" and ctrl not in controllers and not key.endswith(".pressure"):
            # the PSI files (cpu/io/memory.pressure) exist in every cgroup; the rest needs its controller
            raise CgroupError(p, f"controller {ctrl!r} is not available in {d}")
        write(d, key, value, p)


def needed_controllers(res: dict[str, Any]) -> set[str]:
    """The v2 controllers the resources need (for subtree_control of the ancestors)."""
    need: set[str] = set()
    for key, ctrls in (("memory", {"memory"}), ("pids", {"pids"}), ("blockIO", {"io"}), ("rdma", {"rdma"})):
        if res.get(key):
            need |= ctrls
    c = res.get("cpu") or {}
    if isinstance(c, dict):
        if any(c.get(k) is not None for k in ("shares", "quota", "period", "burst", "idle")):
            need.add("cpu")
        if c.get("cpus") or c.get("mems"):
            need.add("cpuset")
    if res.get("hugepageLimits"):
        need.add("hugetlb")
    for key in res.get("unified") or {}:
        if isinstance(key, str) and "." in key:
            need.add(key.split(".", 1)[0])
    need.discard("cgroup")
    return need
