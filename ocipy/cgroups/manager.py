"""A container's cgroups: make them at create (before the init exists), apply resources, and take them down.

Used through the cgroupfs driver (`driver.py`), which owns the record. The record kept in the private state is
`{"v1": {"<controller or name=X>": "<abs dir>"}, "v2": "<abs dir>", "path": "<cgroupsPath as resolved>"}`.

Which hierarchy serves a resource: the controller's v1 hierarchy when v1 has it, else the unified hierarchy when its
cgroup holds that controller, else an error naming the field. On this hybrid host that means memory, cpu, cpuset,
pids, blkio, devices and freezer on v1, hugetlb (and `unified` keys) on v2. Devices get the v1 lists when v1 has the
controller and, whenever the container has a unified cgroup, also the eBPF program there: the kernel checks both.
"""

from __future__ import annotations

import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` imports `re` and `contextlib` (~5 ms per create): annotations only
    from typing import Any

from ocipy import posixlite as px
from ocipy.errors import os_reason

from . import CgroupError, devices, v1, v2
from .driver import rmdir_tree
from .fsio import R, get_list, get_obj, read, write
from .layout import V2, Layout
from .paths import Target, relpath

# the field each v2 controller serves, for errors about enabling it
_CONTROLLER_FIELD = {
    "memory": f"{R}/memory",
    "pids": f"{R}/pids",
    "io": f"{R}/blockIO",
    "cpu": f"{R}/cpu",
    "cpuset": f"{R}/cpu",
    "hugetlb": f"{R}/hugepageLimits",
    "rdma": f"{R}/rdma",
}


def record_of(target: Target) -> dict[str, Any]:
    rec: dict[str, Any] = {"v1": dict(target.v1), "path": target.path}
    if target.v2:
        rec["v2"] = target.v2
    return rec


def make_dirs(path: str, created: list[str]) -> None:
    """mkdir -p of a cgroup, each directory made appended to `created` (what an undo removes)."""
    missing = []
    cur = path
    while not px.isdir(cur):
        missing.append(cur)
        parent = px.dirname(cur)
        if parent == cur:
            break
        cur = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
            created.append(d)
        except FileExistsError:
            pass
        except OSError as exc:
            raise CgroupError("/linux/cgroupsPath", f"mkdir {d}: {os_reason(exc)}") from None


def _ancestors(mountpoint: str, leaf: str) -> list[str]:
    """From the hierarchy root down to the leaf's parent."""
    rel = relpath(leaf, mountpoint)
    out = [mountpoint]
    cur = mountpoint
    for part in rel.split("/")[:-1]:
        cur = px.join(cur, part)
        out.append(cur)
    return out


def enable_v2_controllers(layout: Layout, leaf: str, need: set[str], want_all: bool) -> None:
    """Write +controller into the ancestors' subtree_control so the leaf gets the files."""
    assert layout.v2 is not None
    available = layout.v2_controllers
    for c in sorted(need - available):
        raise CgroupError(
            _CONTROLLER_FIELD.get(c, f"{R}/unified"),
            f"the {c} controller is not on this host's "
            f"cgroup v2 hierarchy ({layout.v2.mountpoint} has: {' '.join(sorted(available)) or 'none'})",
        )
    wanted = set(available) if want_all else set(need)
    if not wanted:
        return
    for anc in _ancestors(layout.v2.mountpoint, leaf):
        have = set((read(anc, "cgroup.subtree_control") or "").split())
        for c in sorted(wanted - have):
            try:
                write(anc, "cgroup.subtree_control", f"+{c}", _CONTROLLER_FIELD.get(c, f"{R}/unified"))
            except CgroupError as exc:
                if c in need:
                    raise CgroupError(exc.pointer, f"enable the {c} controller: {exc.message}") from None
                wanted.discard(c)


def _has_procs(d: str) -> bool:
    return bool((read(d, "cgroup.procs") or "").split())


def create(
    layout: Layout,
    target: Target,
    resources: dict[str, Any] | None,
) -> dict[str, Any]:
    """Make the container's cgroups and apply `resources`; on failure nothing made here stays."""
    res = resources or {}
    created: list[str] = []
    try:
        for d in target.dirs():
            make_dirs(d, created)
        for d in target.dirs():
            if d not in created and _has_procs(d):
                raise CgroupError("/linux/cgroupsPath", f"{d} is not empty: another container or process uses it")
        cs = target.v1.get("cpuset")
        if cs:
            chain = [c for c in created if c.startswith(layout.v1["cpuset"].mountpoint + "/") and c != cs]
            v1.init_cpuset(cs, chain)
        if target.v2 and layout.v2 is not None:
            # what v1 serves on a hybrid host is not asked of v2 (a controller lives on one hierarchy only)
            need = {c for c in v2.needed_controllers(res) if {"io": "blkio"}.get(c, c) not in layout.v1}
            enable_v2_controllers(layout, target.v2, need, want_all=layout.mode == V2)
        rec = record_of(target)
        apply(layout, rec, res, update=False)
        return rec
    except BaseException:
        for d in reversed(created):
            rmdir_tree(d, timeout=2.0)
        raise


def _unavailable(layout: Layout, pointer: str, controller: str) -> CgroupError:
    where_v1 = " ".join(sorted(layout.v1)) or "none"
    where_v2 = " ".join(sorted(layout.v2_controllers)) or "none"
    extra = f"; its cgroup v2 hierarchy holds: {where_v2}" if layout.v2 is not None else ""
    return CgroupError(
        pointer,
        f"the {controller} controller is not available on this host ({layout.mode} cgroups; v1 controllers: "
        f"{where_v1}{extra})",
    )


def _v2_has(record: dict[str, Any], controller: str) -> bool:
    d = record.get("v2")
    return isinstance(d, str) and controller in (read(d, "cgroup.controllers") or "").split()


def apply(
    layout: Layout,
    record: dict[str, Any],
    res: dict[str, Any],
    *,
    update: bool = False,
) -> None:
    """Write every resource to the hierarchy that serves it (see the module doc)."""
    dv1: dict[str, str] = record.get("v1") or {}
    dv2: str | None = record.get("v2")

    def place(ctrl: str, v2ctrl: str, pointer: str) -> tuple[int, str]:
        if ctrl in dv1:
            return 1, dv1[ctrl]
        if dv2 and _v2_has(record, v2ctrl):
            return 2, dv2
        raise _unavailable(layout, pointer, ctrl if ctrl == v2ctrl else f"{ctrl} (v2: {v2ctrl})")

    # cpuset before anything that could depend on it; devices early like runc's subsystem order
    c = get_obj(res, "cpu")
    if c.get("cpus") or c.get("mems"):
        ver, d = place("cpuset", "cpuset", f"{R}/cpu/{'cpus' if c.get('cpus') else 'mems'}")
        (v1.cpuset if ver == 1 else v2.cpuset)(d, c)
    if not update and res.get("devices") is not None:
        rules = devices.effective_rules(res.get("devices"))
        done = False
        if "devices" in dv1:
            devices.apply_v1(dv1["devices"], rules)
            done = True
        if dv2:
            devices.apply_v2(dv2, rules)
            done = True
        if not done:
            raise _unavailable(layout, f"{R}/devices", "devices")
    mem = get_obj(res, "memory")
    if any(v is not None for k, v in mem.items() if k not in ("useHierarchy", "checkBeforeUpdate")):
        ver, d = place("memory", "memory", f"{R}/memory")
        if ver == 1:
            v1.memory(d, mem, update)
        else:
            v2.memory(d, mem)
    cpu_keys = ("shares", "quota", "period", "burst", "idle", "realtimeRuntime", "realtimePeriod")
    if any(c.get(k) for k in cpu_keys) or c.get("burst") is not None or c.get("idle") is not None:
        ver, d = place("cpu", "cpu", f"{R}/cpu")
        (v1.cpu if ver == 1 else v2.cpu)(d, c)
    p = get_obj(res, "pids")
    if p.get("limit") is not None:
        ver, d = place("pids", "pids", f"{R}/pids")
        (v1.pids if ver == 1 else v2.pids)(d, p)
    b = get_obj(res, "blockIO")
    if any(b.get(k) for k in b):
        ver, d = place("blkio", "io", f"{R}/blockIO")
        (v1.blkio if ver == 1 else v2.io)(d, b)
    hp = get_list(res, "hugepageLimits", R)
    if hp:
        ver, d = place("hugetlb", "hugetlb", f"{R}/hugepageLimits/0")
        (v1.hugetlb if ver == 1 else v2.hugetlb)(d, hp)
    net = get_obj(res, "network")
    if net.get("classID") is not None:
        if "net_cls" not in dv1:
            raise _unavailable(layout, f"{R}/network/classID", "net_cls (cgroup v1 only)")
        v1.net_cls(dv1["net_cls"], int(net["classID"]))
    if net.get("priorities"):
        if "net_prio" not in dv1:
            raise _unavailable(layout, f"{R}/network/priorities", "net_prio (cgroup v1 only)")
        v1.net_prio(dv1["net_prio"], get_list(net, "priorities", f"{R}/network"))
    rd = get_obj(res, "rdma")
    if rd:
        _, d = place("rdma", "rdma", f"{R}/rdma")
        v1.rdma(d, rd)
    u = get_obj(res, "unified")
    if u:
        if not dv2:
            raise CgroupError(f"{R}/unified", "this host has no cgroup v2 hierarchy (pure cgroup v1)")
        v2.unified(dv2, u)
