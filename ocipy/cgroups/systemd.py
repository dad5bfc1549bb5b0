"""The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope unit of systemd.

create: `StartTransientUnit` of `<prefix>-<name>.scope` in the slice of `cgroupsPath` (`slice:prefix:name`; empty:
`system.slice:ocipy:<id>`) with `Delegate=yes`, a description, accounting on, `DefaultDependencies=no`, the
resources systemd can express as unit properties (`properties()`), and `PIDs=` a placeholder process (the init does
not exist yet: ocipy makes the cgroups first and the init joins them before any namespace change); the driver waits
for the job's `JobRemoved`. Then, as runc, the scope's directory is made in the hierarchies systemd does not manage
(cpuset, freezer, ... on v1), and every resource is also written to the files (`manager.apply`), which covers what
systemd cannot express. The placeholder leaves once the init is in (`Placeholder.release`).

update: `SetUnitProperties` (runtime) and the files. delete: `StopUnit`, `ResetFailedUnit`, and the directories
systemd does not own are removed. exec/pause/resume/kill/ps/events use the recorded directories like the cgroupfs
driver. Every failure is one line naming the field (`/linux/cgroupsPath` or the resource) and the unit, and leaves
no unit, cgroup or process behind.

The driver class is `sddriver.Systemd` (light: what pause, kill, ps and state of a systemd container load); this
module and the D-Bus client (`sdbus`, jeepney) are imported by its create, apply and remove only.
"""

from __future__ import annotations

import os
import posixpath

from . import CgroupError
from .driver import rmdir_tree

# `delete` of a systemd container imports this module: layout/paths (dataclasses) and typing are loaded only by the
# functions that need them
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .layout import Layout
    from .paths import Target

POINTER = "/linux/cgroupsPath"
R = "/linux/resources"
SYSTEMD_RUNNING_MARK = "/run/systemd/system"

DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "ocipy"
USEC_INFINITY = (1 << 64) - 1
CPU_PERIOD_DEFAULT = 100000

Prop = tuple[str, tuple[str, "Any"]]


def systemd_running() -> bool:
    """sd_booted(3): systemd is PID 1 when /run/systemd/system exists."""
    return os.path.isdir(SYSTEMD_RUNNING_MARK)


# --- names ----------------------------------------------------------------------------------------------------
def unit_of(cgroups_path: str | None, cid: str) -> tuple[str, str, str]:
    """(slice, unit, the cgroupsPath value used). The default is runc's form with ocipy's prefix."""
    from .paths import expand_slice, parse_systemd

    value = cgroups_path or f"{DEFAULT_SLICE}:{DEFAULT_PREFIX}:{cid}"
    slice_, prefix, name = parse_systemd(value)
    if name.endswith(".slice"):
        raise CgroupError(POINTER, f"{value!r}: a container needs a scope; the name must not end in .slice")
    expand_slice(slice_)
    unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return slice_, unit, value


def target_of(layout: Layout, slice_: str, unit: str, value: str) -> Target:
    """The scope's directory in every hierarchy: <mount>/<expanded slice>/<unit> (systemd's own paths are relative
    to the hierarchy root it sees, which is the mount's root here)."""
    from .paths import Target, expand_slice

    rel = posixpath.join(expand_slice(slice_), unit)
    t = Target(value)
    for h in layout.v1_hierarchies() + list(layout.named.values()):
        d = posixpath.join(h.mountpoint, rel.lstrip("/"))
        for k in sorted(h.controllers) if h.controllers else [f"name={h.name}"]:
            t.v1[k] = d
    if layout.v2 is not None:
        t.v2 = posixpath.join(layout.v2.mountpoint, rel.lstrip("/"))
    return t


# --- resources -> unit properties -----------------------------------------------------------------------------
def range_to_bits(text: str, pointer: str) -> bytes:
    """ "0-3,7" -> the little-endian bitmask bytes systemd's AllowedCPUs/AllowedMemoryNodes take."""
    mask = 0
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise CgroupError(pointer, f"{text!r}: not a list of ranges") from None
        if a < 0 or b < a or b > 8192:
            raise CgroupError(pointer, f"{text!r}: bad range {part!r}")
        for i in range(a, b + 1):
            mask |= 1 << i
    if not mask:
        raise CgroupError(pointer, f"{text!r}: empty set")
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def _num(obj: dict[str, Any], key: str, pointer: str) -> int | None:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise CgroupError(f"{pointer}/{key}", f"{v!r}: must be an integer")
    return v


def _limit(v: int) -> int:
    return USEC_INFINITY if v < 0 else v


def cpu_quota(quota: int | None, period: int | None) -> tuple[list[Prop], int | None]:
    """CPUQuotaPerSecUSec (+ CPUQuotaPeriodUSec) as runc computes them: systemd keeps the quota as a whole percent of
    a CPU, so a fractional percent is rounded up to the next 10 ms per second, and the quota written to the files is
    rounded the same way (returned) so the two agree."""
    props: list[Prop] = []
    if period:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if not quota and not period:
        return props, quota
    per_sec = USEC_INFINITY
    if quota and quota > 0:
        p = period or CPU_PERIOD_DEFAULT
        per_sec = quota * 1_000_000 // p
        if per_sec % 10000:
            per_sec = (per_sec // 10000 + 1) * 10000
            quota = per_sec * p // 1_000_000
    props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return props, quota


def device_properties(rules: list[Any]) -> list[Prop]:
    """DevicePolicy + DeviceAllow equivalent to the effective rule list (deny all, then the rules in order), as
    runc: an allow-list becomes `strict` with the list; an allow-everything stays `auto`; a deny-list cannot be said
    to systemd, so it gets `strict` with no entries and the exact rules go to the files (v1 lists)."""
    allow_all = False
    entries: list[tuple[str, int, int, str]] = []
    denies = False
    for r in rules:
        wild = r.type == "a" and r.major < 0 and r.minor < 0
        if wild and set(r.access) >= set("rwm"):
            allow_all, entries, denies = r.allow, [], False
            continue
        types = ("c", "b") if r.type == "a" else (r.type,)
        for t in types:
            key = (t, r.major, r.minor)
            if allow_all:
                if not r.allow:
                    denies = True
                continue
            if r.allow:
                entries.append((*key, r.access))
            else:
                kept = []
                for e in entries:
                    if e[:3] == key:
                        left = "".join(ch for ch in e[3] if ch not in r.access)
                        if left:
                            kept.append((*key, left))
                    else:
                        kept.append(e)
                entries = kept
    if allow_all and not denies:
        return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    out: list[tuple[str, str]] = []
    if not allow_all:
        for t, major, minor, access in entries:
            group = "char" if t == "c" else "block"
            if major < 0:
                if minor >= 0:
                    continue  # systemd has no "*:n" (runc skips it too); the files still carry it
                path = f"{group}-*"
            elif minor < 0:
                path = f"{group}-{major}"
            else:
                path = f"/dev/{group}/{major}:{minor}"
            out.append((path, access))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", out))]


def properties(res: dict[str, Any], *, unified: bool, create: bool = True) -> tuple[list[Prop], dict[str, Any]]:
    """The unit properties for `res` and the resources to write to the files (the CPU quota as systemd rounds it).
    `unified`: systemd runs on cgroup v2 alone (MemoryMax/CPUWeight/IOWeight/MemorySwapMax); otherwise the legacy
    properties it applies to v1 (MemoryMax still maps to memory.limit_in_bytes there; CPUShares; BlockIOWeight).
    The pids limit is sent only when `create` is false: at create it waits until the init is set up, like the
    cgroupfs driver's (the init still clones once inside the scope)."""
    props: list[Prop] = []
    files = dict(res)
    mem = res.get("memory") or {}
    limit = _num(mem, "limit", f"{R}/memory")
    if limit:
        props.append(("MemoryMax", ("t", _limit(limit))))
    low = _num(mem, "reservation", f"{R}/memory")
    if low:
        props.append(("MemoryLow", ("t", _limit(low))))
    swap = _num(mem, "swap", f"{R}/memory")
    if unified and swap:
        from .v2 import swap_value

        props.append(("MemorySwapMax", ("t", _limit(swap_value(swap, limit)))))
    cpu = res.get("cpu") or {}
    shares = _num(cpu, "shares", f"{R}/cpu")
    if shares:
        if unified:
            from .v2 import shares_to_weight

            props.append(("CPUWeight", ("t", shares_to_weight(shares))))
        else:
            props.append(("CPUShares", ("t", shares)))
    qprops, quota = cpu_quota(_num(cpu, "quota", f"{R}/cpu"), _num(cpu, "period", f"{R}/cpu"))
    props += qprops
    if quota != cpu.get("quota"):
        files["cpu"] = dict(cpu, quota=quota)
    for key, prop in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
        if cpu.get(key):
            props.append((prop, ("ay", range_to_bits(str(cpu[key]), f"{R}/cpu/{key}"))))
    if not create:
        pids = _num(res.get("pids") or {}, "limit", f"{R}/pids")
        if pids is not None:
            props.append(("TasksMax", ("t", USEC_INFINITY if pids < 0 else max(pids, 1))))
    weight = _num(res.get("blockIO") or {}, "weight", f"{R}/blockIO")
    if weight:
        if unified:
            from .v2 import blkio_weight_to_io

            props.append(("IOWeight", ("t", blkio_weight_to_io(weight))))
        else:
            props.append(("BlockIOWeight", ("t", weight)))
    u = res.get("unified") or {}
    for key, prop in (
        ("memory.high", "MemoryHigh"),
        ("memory.low", "MemoryLow"),
        ("memory.min", "MemoryMin"),
        ("memory.max", "MemoryMax"),
        ("memory.swap.max", "MemorySwapMax"),
    ):
        if key in u:
            v = str(u[key]).strip()
            try:
                props.append((prop, ("t", USEC_INFINITY if v == "max" else int(v))))
            except ValueError:
                raise CgroupError(f"{R}/unified/{key}", f"{v!r}: not a number or max") from None
    if create and res.get("devices") is not None:
        from . import devices

        props += device_properties(devices.effective_rules(res.get("devices")))
    return props, files


# --- the placeholder process ------------------------------------------------------------------------------------
class Placeholder:
    """A forked child that holds the new scope until the container init has joined it (systemd makes no empty
    scope, and the init does not exist yet). It closes every inherited descriptor and leaves by itself as soon as
    another process shows up in `watch` (the scope's cgroup.procs), when released (EOF on its pipe, also when this
    process dies), or after a minute."""

    def __init__(self, watch: str) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: nothing but the pipe
            try:
                self._child(r, watch)
            finally:
                os._exit(0)
        os.close(r)
        self.pid = pid
        self._w: int | None = w

    @staticmethod
    def _child(r: int, watch: str) -> None:
        import time

        os.closerange(0, r)
        os.closerange(r + 1, 65536)
        os.set_blocking(r, False)
        me = str(os.getpid())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if not os.read(r, 1):
                    return  # released
            except BlockingIOError:
                pass
            try:
                with open(watch) as f:
                    if any(p != me for p in f.read().split()):
                        return  # the init is in
            except OSError:
                pass
            time.sleep(0.002)

    def release(self) -> None:
        if self._w is None:
            return
        os.close(self._w)
        self._w = None
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


# --- the driver ---------------------------------------------------------------------------------------------------
def _connect() -> Any:
    from .sdbus import Systemd, SystemdError

    try:
        return Systemd.connect()
    except SystemdError as exc:
        raise CgroupError(POINTER, f"--systemd-cgroup: {exc}") from None


def unified(layout: Layout) -> bool:
    return layout.mode == "v2"  # layout.V2


def _stop(sd: Any, unit: str) -> None:
    """Stop the unit and forget a failed one; a unit that is not loaded is fine."""
    from .sdbus import SystemdError

    try:
        sd.stop_unit(unit)
    except SystemdError as exc:
        if exc.name != "org.freedesktop.systemd1.NoSuchUnit":
            raise
    try:
        sd.reset_failed_unit(unit)
    except SystemdError as exc:
        if exc.name not in ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.DBus.Error.InvalidArgs"):
            raise


def create(
    layout: Layout, cgroups_path: str | None, cid: str, resources: dict[str, Any] | None
) -> tuple[dict[str, Any], Placeholder]:
    """Start the scope and apply `resources` (pids excluded: see `properties`). Returns the record for the private
    state and the placeholder to release once the init has joined. On failure nothing is left."""
    from . import manager, v1
    from .sdbus import SystemdError

    res = dict(resources or {})
    slice_, unit, value = unit_of(cgroups_path, cid)
    if not systemd_running():
        raise CgroupError(
            POINTER,
            f"--systemd-cgroup: systemd is not running on this host ({SYSTEMD_RUNNING_MARK} is missing); "
            "run without --systemd-cgroup to use the cgroupfs driver",
        )
    target = target_of(layout, slice_, unit, value)
    props, files = properties(res, unified=unified(layout))
    sd = _connect()
    managed = target.v1.get("name=systemd") or target.v2 or next(iter(target.v1.values()))
    holder = Placeholder(posixpath.join(managed, "cgroup.procs"))
    started = False
    created: list[str] = []
    try:
        base: list[Prop] = [
            ("Description", ("s", f"ocipy container {cid}")),
            ("Slice", ("s", slice_)),
            ("Delegate", ("b", True)),
            ("PIDs", ("au", [holder.pid])),
            ("MemoryAccounting", ("b", True)),
            ("CPUAccounting", ("b", True)),
            ("IOAccounting" if unified(layout) else "BlockIOAccounting", ("b", True)),
            ("TasksAccounting", ("b", True)),
            ("DefaultDependencies", ("b", False)),
        ]
        try:
            result = _start(sd, unit, base + props)
        except SystemdError as exc:
            if exc.name == "org.freedesktop.systemd1.UnitExists":
                raise CgroupError(
                    POINTER, f"systemd unit {unit} already exists (another container uses {value!r}?)"
                ) from None
            field = _field_of(exc, props)
            raise CgroupError(field, f"systemd could not start {unit}: {exc}") from None
        started = True
        if result != "done":
            raise CgroupError(POINTER, f"systemd could not start {unit} in {slice_}: the job ended '{result}'")
        for d in target.dirs():
            manager.make_dirs(d, created)
        cs = target.v1.get("cpuset")
        if cs:
            # systemd does not manage cpuset on v1: a new cpuset starts empty, copy the parents' values down
            chain = [c for c in created if c != cs]
            v1.init_cpuset(cs, chain)
        if target.v2 and layout.v2 is not None:
            # controllers systemd does not delegate (hugetlb on this hybrid host's unified hierarchy), only when asked
            from .v2 import needed_controllers

            need = {c for c in needed_controllers(files) if {"io": "blkio"}.get(c, c) not in layout.v1}
            manager.enable_v2_controllers(layout, target.v2, need, want_all=False)
        rec = manager.record_of(target)
        rec["systemd"] = {"unit": unit, "slice": slice_}
        manager.apply(layout, rec, {k: v for k, v in files.items() if k != "pids"}, update=False)
        return rec, holder
    except BaseException:
        holder.release()
        if started:  # only what this call made: an existing unit of that name belongs to someone else
            try:
                _stop(sd, unit)
            except SystemdError:
                pass
            for d in target.dirs():
                rmdir_tree(d)
        for d in reversed(created):
            rmdir_tree(d)
        raise
    finally:
        sd.close()


def _start(sd: Any, unit: str, props: list[Prop]) -> str:
    """StartTransientUnit; a unit of that name left failed is reset and tried once more (as runc)."""
    from .sdbus import SystemdError

    try:
        return str(sd.start_transient_unit(unit, props))
    except SystemdError as exc:
        if exc.name != "org.freedesktop.systemd1.UnitExists":
            raise
        try:
            sd.reset_failed_unit(unit)
        except SystemdError:
            raise exc from None
        return str(sd.start_transient_unit(unit, props))


_PROP_FIELD = {
    "MemoryMax": f"{R}/memory/limit",
    "MemoryLow": f"{R}/memory/reservation",
    "MemorySwapMax": f"{R}/memory/swap",
    "CPUShares": f"{R}/cpu/shares",
    "CPUWeight": f"{R}/cpu/shares",
    "CPUQuotaPerSecUSec": f"{R}/cpu/quota",
    "CPUQuotaPeriodUSec": f"{R}/cpu/period",
    "AllowedCPUs": f"{R}/cpu/cpus",
    "AllowedMemoryNodes": f"{R}/cpu/mems",
    "TasksMax": f"{R}/pids/limit",
    "BlockIOWeight": f"{R}/blockIO/weight",
    "IOWeight": f"{R}/blockIO/weight",
    "DeviceAllow": f"{R}/devices",
    "DevicePolicy": f"{R}/devices",
}


def _field_of(exc: Exception, props: list[Prop]) -> str:
    """The config field a refused property came from, when systemd's message names it."""
    text = str(exc)
    for name, _ in props:
        if name in text and name in _PROP_FIELD:
            return _PROP_FIELD[name]
    return POINTER


def set_properties(record: dict[str, Any], props: list[Prop]) -> None:
    from .sdbus import SystemdError

    unit = (record.get("systemd") or {}).get("unit", "")
    sd = _connect()
    try:
        sd.set_unit_properties(unit, props)
    except SystemdError as exc:
        raise CgroupError(_field_of(exc, props), f"systemd unit {unit}: {exc}") from None
    finally:
        sd.close()


def stop(record: dict[str, Any]) -> None:
    """Stop the scope (systemd removes the directories it made) and reset it if it failed. Unreachable systemd is
    not an error here: delete still removes what it can."""
    from .sdbus import SystemdError

    unit = (record.get("systemd") or {}).get("unit", "")
    if not unit:
        return
    try:
        sd = _connect()
    except CgroupError:
        return
    try:
        _stop(sd, unit)
    except SystemdError:
        pass
    finally:
        sd.close()


def usable() -> tuple[bool, str]:
    """For `ocipy check`: can the driver be used here, and why not."""
    if not systemd_running():
        return False, f"systemd is not running ({SYSTEMD_RUNNING_MARK} is missing)"
    try:
        import jeepney  # noqa: F401
    except ImportError:
        return False, "the jeepney package (the D-Bus client) is not installed"
    from .sdbus import Systemd, SystemdError

    try:
        with Systemd.connect() as sd:
            ver = sd.version()
            where = sd.where
    except SystemdError as exc:
        return False, str(exc)
    return True, f"systemd {ver} answers on {where}"
