"""`ocipy check`'s cgroup probes: the layout, each controller and the hierarchy that serves it, block-IO weights
(and the scheduler that honours them), the cgroup drivers."""

from __future__ import annotations

import os
from typing import Any

from ..cgroups import layout as layout_mod
from . import item, layout, read

NEEDED_CONTROLLERS = frozenset({"memory", "cpu", "pids", "devices"})


_CONTROLLER_FIELDS = {
    "memory": ("memory", "memory limits (limit, reservation, swap, swappiness, disableOOMKiller, kernelTCP)"),
    "cpu": ("cpu", "cpu shares/weight, quota, period, burst, idle, realtime"),
    "cpuset": ("cpuset", "cpu.cpus and cpu.mems"),
    "pids": ("pids", "pids limit"),
    "blkio": ("io", "blockIO weights and throttles"),
    "devices": ("devices", "device access lists"),
    "freezer": ("freezer", "pause/resume"),
    "hugetlb": ("hugetlb", "hugepageLimits"),
    "net_cls": ("", "network classID"),
    "net_prio": ("", "network priorities"),
    "rdma": ("rdma", "rdma limits"),
}


def cgroups() -> dict[str, Any]:
    lay = layout()
    if isinstance(lay, OSError):
        return {"layout": item(False, str(lay), "cgroups cannot be read: containers get no resource limits", True)}
    out: dict[str, Any] = {}
    v2 = lay.v2
    detail = f"mode {lay.mode}"
    if v2 is not None:
        detail += f"; v2 at {v2.mountpoint} with controllers: {' '.join(sorted(v2.controllers)) or 'none'}"
    out["layout"] = item(
        lay.mode != "none",
        detail,
        {
            "v1": "cgroup v1 only: resources go to each controller's hierarchy; no `unified` keys, no eBPF device program",
            "v2": "cgroup v2 (unified): every resource in one cgroup; devices by eBPF program",
            "hybrid": "hybrid: each resource goes to the hierarchy holding its controller (v1 first); `unified` keys and "
            "the eBPF device program use the v2 hierarchy",
            "none": "no cgroup hierarchy mounted: containers cannot be created with cgroups",
        }[lay.mode],
        needed=True,
    )
    for c, (c2, what) in _CONTROLLER_FIELDS.items():
        needed = c in NEEDED_CONTROLLERS
        if c in lay.v1:
            out[c] = item(True, f"v1 at {lay.v1[c].mountpoint}", f"{what}: honoured through cgroup v1", needed)
        elif c2 and c2 in lay.v2_controllers:
            note = ""
            if lay.mode == "hybrid":
                note = (
                    "; only the v2 hierarchy has it: ocipy writes it in the container's unified cgroup, a "
                    "v1-only runtime cannot set it here"
                )
            mnt = v2.mountpoint if v2 else ""
            out[c] = item(True, f"v2 at {mnt}", f"{what}: honoured through cgroup v2{note}", needed)
        elif c == "freezer" and v2 is not None:
            out[c] = item(True, "v2 cgroup.freeze", f"{what}: through cgroup.freeze on the v2 hierarchy", needed)
        elif c == "devices" and v2 is not None:
            out[c] = item(True, "v2 eBPF", f"{what}: through an eBPF program on the v2 hierarchy", needed)
        else:
            out[c] = item(
                False, "not mounted", f"{what}: cannot be honoured here; create fails naming the field", needed
            )
    if lay.mode == "hybrid" and "devices" in lay.v1:
        out["devices"]["meaning"] += "; plus the eBPF program on the v2 cgroup (both are enforced)"
    out["blkio_weight"] = _blkio_weight(lay)
    return out


def schedulers() -> dict[str, str]:
    """disk -> its active I/O scheduler (the bracketed word of /sys/block/X/queue/scheduler); loop/ram left out."""
    out: dict[str, str] = {}
    try:
        disks = sorted(os.listdir("/sys/block"))
    except OSError:
        return out
    for disk in disks:
        if disk.startswith(("loop", "ram", "zram")):
            continue
        text = read(f"/sys/block/{disk}/queue/scheduler") or ""
        active = [w[1:-1] for w in text.split() if w.startswith("[") and w.endswith("]")]
        if active:
            out[disk] = active[0]
    return out


def _blkio_weight(lay: layout_mod.Layout) -> dict[str, Any]:
    """Whether blockIO.weight is accepted (the files cgroups/v1.py and v2.py write exist) and honoured (only the
    bfq scheduler — cfq before 5.0 — divides a disk's time by weight; others accept the file and ignore it)."""
    files = layout_mod.weight_files(lay)
    if files is None:
        return item(False, "no blkio/io controller", "blockIO weights cannot be set: create fails naming the field")
    sched = schedulers()
    weighted = sorted(d for d, s in sched.items() if s in ("bfq", "cfq"))
    others = sorted(f"{d} [{s}]" for d, s in sched.items() if s not in ("bfq", "cfq"))
    detail = f"{', '.join(files) or 'no weight file'}; disks: {', '.join(f'{d} [{sched[d]}]' for d in sorted(sched))}"
    if not files:
        return item(False, detail, "blockIO weights cannot be set: create fails naming /linux/resources/blockIO/weight")
    if not weighted:
        return item(
            False,
            detail,
            "blockIO weights are written but NOT honoured: no disk uses the bfq scheduler "
            "(echo bfq > /sys/block/DISK/queue/scheduler)",
        )
    meaning = f"blockIO weights honoured on {', '.join(weighted)}"
    if others:
        meaning += f"; ignored on {', '.join(others)}"
    return item(True, detail, meaning)


def drivers() -> dict[str, Any]:
    """The cgroup drivers: cgroupfs (the default) and systemd (--systemd-cgroup)."""
    lay = layout()
    ok = not isinstance(lay, OSError) and lay.mode != "none"
    out = {
        "cgroupfs": item(
            ok,
            "ocipy writes the cgroup files itself (default)",
            "containers get cgroups from cgroupsPath" if ok else "no cgroup hierarchy: no resource limits",
            needed=True,
        ),
    }
    # --- systemd driver (owner: the systemd issue): the driver's own probe, connecting only when systemd runs ---
    from ..cgroups import systemd

    sd_ok, why = systemd.usable()
    out["systemd"] = item(
        sd_ok,
        why,
        "--systemd-cgroup (Podman's and Kubernetes' default on systemd hosts) works here (docs/cgroups.md)"
        if sd_ok
        else "--systemd-cgroup fails here; the cgroupfs driver (default) works",
        # where systemd runs, Podman and the kubelet default to the systemd driver: a default container needs it
        needed=os.path.isdir("/run/systemd/system"),
    )
    # --- end systemd driver ---
    return out
