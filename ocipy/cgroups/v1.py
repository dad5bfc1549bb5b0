"""Resource writers for cgroup v1 controllers, one function per controller; values as runc writes them."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` imports `re` and `contextlib` (~5 ms per create): annotations only
    from typing import Any

from ocipy import posixlite as px

from . import CgroupError
from .fsio import R, exists, get_int, get_list, hugepage_limits, read, read_int, write

MEM = f"{R}/memory"
CPU = f"{R}/cpu"


def _set_limit(d: str, value: int) -> None:
    try:
        write(d, "memory.limit_in_bytes", str(value), f"{MEM}/limit")
    except CgroupError as exc:
        usage = read_int(d, "memory.usage_in_bytes")
        if "device or resource busy" in exc.message and usage is not None:
            raise CgroupError(
                f"{MEM}/limit",
                f"cannot set the memory limit to {value}: current usage is {usage} "
                f"(peak {read_int(d, 'memory.max_usage_in_bytes')})",
            ) from None
        raise


def memory(d: str, mem: dict[str, Any], update: bool = False) -> None:
    limit = get_int(mem, "limit", MEM, minimum=-1)
    swap = get_int(mem, "swap", MEM, minimum=-1)
    reservation = get_int(mem, "reservation", MEM, minimum=-1)
    if mem.get("checkBeforeUpdate") and limit is not None and limit > 0:
        usage = read_int(d, "memory.usage_in_bytes")
        if usage is not None and limit < usage:
            raise CgroupError(f"{MEM}/limit", f"{limit} is below the current usage {usage} (checkBeforeUpdate)")
    has_swap = exists(d, "memory.memsw.limit_in_bytes")
    if limit == -1 and not swap and has_swap:
        swap = -1  # unlimited memory means unlimited swap too, unless swap is given
    if swap and not has_swap:
        raise CgroupError(f"{MEM}/swap", "swap accounting is not enabled in this kernel (no memory.memsw.*)")
    if limit and swap:
        # both change: write in the order the kernel accepts (memsw must stay >= the memory limit)
        cur = read_int(d, "memory.limit_in_bytes") or 0
        if swap == -1 or cur < swap:
            write(d, "memory.memsw.limit_in_bytes", str(swap), f"{MEM}/swap")
            _set_limit(d, limit)
        else:
            _set_limit(d, limit)
            write(d, "memory.memsw.limit_in_bytes", str(swap), f"{MEM}/swap")
    else:
        if limit:
            _set_limit(d, limit)
        if swap:
            write(d, "memory.memsw.limit_in_bytes", str(swap), f"{MEM}/swap")
    if reservation:
        write(d, "memory.soft_limit_in_bytes", str(reservation), f"{MEM}/reservation")
    kernel = get_int(mem, "kernel", MEM)
    if kernel:
        # deprecated (config-linux.md: runtimes MAY ignore it); the kernel refuses it since 6.x
        try:
            write(d, "memory.kmem.limit_in_bytes", str(kernel), f"{MEM}/kernel")
        except CgroupError:
            pass
    ktcp = get_int(mem, "kernelTCP", MEM)
    if ktcp:
        write(d, "memory.kmem.tcp.limit_in_bytes", str(ktcp), f"{MEM}/kernelTCP")
    if mem.get("disableOOMKiller"):
        write(d, "memory.oom_control", "1", f"{MEM}/disableOOMKiller")
    swappiness = get_int(mem, "swappiness", MEM)
    if swappiness is not None:
        if not 0 <= swappiness <= 100:
            raise CgroupError(f"{MEM}/swappiness", f"{swappiness}: valid range is 0-100")
        write(d, "memory.swappiness", str(swappiness), f"{MEM}/swappiness")


def cpu(d: str, c: dict[str, Any]) -> None:
    shares = get_int(c, "shares", CPU, minimum=0)
    if shares:
        write(d, "cpu.shares", str(shares), f"{CPU}/shares")
        got = read_int(d, "cpu.shares")
        if got is not None and got != shares:
            word = "maximum" if shares > got else "minimum"
            raise CgroupError(f"{CPU}/shares", f"{shares}: the {word} allowed cpu-shares is {got}")
    period = get_int(c, "period", CPU, minimum=0)
    quota = get_int(c, "quota", CPU, minimum=-1)
    deferred = False
    if period:
        try:
            write(d, "cpu.cfs_period_us", str(period), f"{CPU}/period")
        except CgroupError:
            # a smaller period may be refused while the old quota holds: retry after the quota
            if not quota:
                raise
            deferred = True
    if quota:
        write(d, "cpu.cfs_quota_us", str(quota), f"{CPU}/quota")
        if deferred:
            write(d, "cpu.cfs_period_us", str(period), f"{CPU}/period")
    burst = get_int(c, "burst", CPU, minimum=0)
    if burst is not None:
        write(d, "cpu.cfs_burst_us", str(burst), f"{CPU}/burst")
    idle = get_int(c, "idle", CPU)
    if idle is not None:
        write(d, "cpu.idle", str(idle), f"{CPU}/idle")
    rt_period = get_int(c, "realtimePeriod", CPU, minimum=0)
    if rt_period:
        write(d, "cpu.rt_period_us", str(rt_period), f"{CPU}/realtimePeriod")
    rt_runtime = get_int(c, "realtimeRuntime", CPU, minimum=-1)
    if rt_runtime:
        if rt_runtime > 0:
            _rt_budget_for_parents(d, rt_runtime)
        try:
            write(d, "cpu.rt_runtime_us", str(rt_runtime), f"{CPU}/realtimeRuntime")
        except CgroupError as exc:
            if "invalid argument" in exc.message or "device or resource busy" in exc.message:
                raise CgroupError(
                    exc.pointer,
                    f"{exc.message} (the parent cgroup's cpu.rt_runtime_us must leave room for it)",
                ) from None
            raise


def _rt_budget_for_parents(d: str, runtime: int) -> None:
    """A new cgroup gets cpu.rt_runtime_us 0, and a child can never have more realtime time than its parent: give
    every ancestor below the hierarchy's root (the root holds the host's budget) at least `runtime`, top down, so
    the container's own value can be set (ocipy's /ocipy parent starts at 0). Budgets are only ever raised; a
    parent that cannot be raised leaves the container's own write to fail and say why."""
    parents = []
    p = px.dirname(d.rstrip("/"))
    while p and p != "/" and not px.ismount(p):
        parents.append(p)
        p = px.dirname(p)
    for parent in reversed(parents):
        have = read_int(parent, "cpu.rt_runtime_us")
        if have is None or have == -1 or have >= runtime:
            continue
        try:
            write(parent, "cpu.rt_runtime_us", str(runtime), f"{CPU}/realtimeRuntime")
        except CgroupError:
            return


def cpuset(d: str, c: dict[str, Any]) -> None:
    for key, fname in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        v = c.get(key)
        if v:
            if not isinstance(v, str):
                raise CgroupError(f"{CPU}/{key}", "must be a string")
            write(d, fname, v, f"{CPU}/{key}")


def init_cpuset(d: str, parent_chain: list[str]) -> None:
    """A new v1 cpuset starts empty and takes no task: copy cpus/mems down from the nearest set ancestor."""
    for cur in parent_chain + [d]:
        parent = px.dirname(cur)
        for fname in ("cpuset.cpus", "cpuset.mems"):
            mine = (read(cur, fname) or "").strip()
            if not mine:
                value = (read(parent, fname) or "").strip()
                if value:
                    write(cur, fname, value, f"{CPU}/{'cpus' if fname.endswith('cpus') else 'mems'}")


def pids(d: str, p: dict[str, Any]) -> None:
    limit = get_int(p, "limit", f"{R}/pids")
    if limit is None:
        return
    # runtime-spec: 0 is a real limit; a negative one means no limit
    write(d, "pids.max", "max" if limit < 0 else str(limit), f"{R}/pids/limit")


def blkio(d: str, b: dict[str, Any]) -> None:
    ptr = f"{R}/blockIO"
    bfq = not exists(d, "blkio.weight") and exists(d, "blkio.bfq.weight")
    weight = get_int(b, "weight", ptr, minimum=0)
    if weight:
        if not (exists(d, "blkio.weight") or bfq):
            raise CgroupError(f"{ptr}/weight", "no blkio.weight or blkio.bfq.weight: the I/O scheduler has no weights")
        write(d, "blkio.bfq.weight" if bfq else "blkio.weight", str(weight), f"{ptr}/weight")
    leaf = get_int(b, "leafWeight", ptr, minimum=0)
    if leaf:
        write(d, "blkio.leaf_weight", str(leaf), f"{ptr}/leafWeight")
    for i, wd in enumerate(get_list(b, "weightDevice", ptr)):
        p = f"{ptr}/weightDevice/{i}"
        dev = f"{get_int(wd, 'major', p, minimum=0)}:{get_int(wd, 'minor', p, minimum=0)}"
        w = get_int(wd, "weight", p, minimum=0)
        if w:
            fname = "blkio.bfq.weight_device" if bfq else "blkio.weight_device"
            write(d, fname, f"{dev} {w}", f"{p}/weight")
        lw = get_int(wd, "leafWeight", p, minimum=0)
        if lw:
            write(d, "blkio.leaf_weight_device", f"{dev} {lw}", f"{p}/leafWeight")
    for key, fname in THROTTLE_FILES.items():
        for i, td in enumerate(get_list(b, key, ptr)):
            p = f"{ptr}/{key}/{i}"
            dev = f"{get_int(td, 'major', p, minimum=0)}:{get_int(td, 'minor', p, minimum=0)}"
            rate = get_int(td, "rate", p, minimum=0) or 0
            write(d, fname, f"{dev} {rate}", p)


THROTTLE_FILES = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


def hugetlb(d: str, limits: list[Any]) -> None:
    hugepage_limits(d, limits, "limit_in_bytes")


def net_cls(d: str, classid: int) -> None:
    write(d, "net_cls.classid", str(classid), f"{R}/network/classID")


def net_prio(d: str, prios: list[Any]) -> None:
    for i, pr in enumerate(prios):
        p = f"{R}/network/priorities/{i}"
        if not isinstance(pr, dict) or not isinstance(pr.get("name"), str):
            raise CgroupError(p, "needs a name and a priority")
        write(d, "net_prio.ifpriomap", f"{pr['name']} {int(pr.get('priority') or 0)}", p)


def rdma(d: str, r: dict[str, Any]) -> None:
    """rdma.max lines, the same on v1 and v2."""
    for dev, lim in r.items():
        p = f"{R}/rdma/{dev}"
        if not isinstance(lim, dict):
            raise CgroupError(p, "must be an object")
        hh = get_int(lim, "hcaHandles", p, minimum=0)
        ho = get_int(lim, "hcaObjects", p, minimum=0)
        line = f"{dev} hca_handle={'max' if hh is None else hh} hca_object={'max' if ho is None else ho}"
        try:
            write(d, "rdma.max", line, p)
        except CgroupError as exc:
            if "invalid argument" in exc.message:
                raise CgroupError(p, f"{dev!r}: no such RDMA device on this host") from None
            raise
