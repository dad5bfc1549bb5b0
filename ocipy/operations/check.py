"""`ocipy check [--format text|json]`: what this host's kernel can and cannot give a container, probed live.

Each item says whether the facility is there, what was seen, and what it means for containers run by ocipy here.
Probes only read files or make harmless system calls (invalid arguments that tell ENOSYS apart from "exists").
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys
from typing import Any

from ..cgroups import layout as layout_mod

NR = {"pidfd_open": 434, "clone3": 435, "openat2": 437, "mount_setattr": 442, "open_tree": 428}
NAMESPACES = {
    "cgroup": "cgroup namespace: the container sees its own cgroup as the root",
    "ipc": "ipc namespace",
    "mnt": "mount namespace (required)",
    "net": "network namespace",
    "pid": "pid namespace",
    "time": "time namespace (linux.timeOffsets)",
    "user": "user namespace (rootless containers, uid mappings, idmapped mounts)",
    "uts": "uts namespace (hostname)",
}


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


_libc: Any = None


def _syscall_errno(nr: int, *args: int) -> int:
    """0 when the call succeeded (the result is closed if it looks like an fd), else errno."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    rc = _libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    if rc < 0:
        return int(ctypes.get_errno())
    if nr in (NR["pidfd_open"], NR["openat2"]) and rc > 2:
        os.close(int(rc))
    return 0


def item(ok: bool, detail: str, meaning: str) -> dict[str, Any]:
    return {"available": ok, "detail": detail, "meaning": meaning}


def namespaces() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ns, what in NAMESPACES.items():
        ok = os.path.exists(f"/proc/self/ns/{ns}")
        out[ns] = item(
            ok,
            f"/proc/self/ns/{ns} {'present' if ok else 'missing'}",
            what if ok else f"{what}: not available, configs asking for it fail at create",
        )
    maxu = _read("/proc/sys/user/max_user_namespaces")
    unpriv = _read("/proc/sys/kernel/unprivileged_userns_clone")
    aa = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    detail = f"max_user_namespaces={maxu}"
    if unpriv is not None:
        detail += f", unprivileged_userns_clone={unpriv}"
    if aa is not None:
        detail += f", apparmor_restrict_unprivileged_userns={aa}"
    ok = maxu not in (None, "0")
    unpriv_ok = ok and unpriv != "0" and aa in (None, "0")
    out["user_limits"] = item(
        ok,
        detail,
        ("user namespaces can be created" + ("" if unpriv_ok else " by root only: rootless containers cannot run"))
        if ok
        else "no user namespaces at all: no rootless containers, no uid mappings",
    )
    return out


def cgroups() -> dict[str, Any]:
    try:
        lay = layout_mod.detect()
    except OSError as exc:
        return {"layout": item(False, str(exc), "cgroups cannot be read: containers get no resource limits")}
    out: dict[str, Any] = {}
    v1 = {h.key: h.mountpoint for h in lay.v1_hierarchies()}
    named = {f"name={n}": h.mountpoint for n, h in lay.named.items()}
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
    )
    out["hierarchies"] = {
        "v1": v1,
        "named": named,
        "v2": ({"mountpoint": v2.mountpoint, "controllers": sorted(v2.controllers)} if v2 else None),
    }
    fields = {
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
    ctrl: dict[str, Any] = {}
    for c, (c2, what) in fields.items():
        if c in lay.v1:
            ctrl[c] = item(True, f"v1 at {lay.v1[c].mountpoint}", f"{what}: honoured through cgroup v1")
        elif c2 and c2 in lay.v2_controllers:
            note = ""
            if lay.mode == "hybrid":
                note = (
                    "; only the v2 hierarchy has it: ocipy writes it in the container's unified cgroup, a "
                    "v1-only runtime cannot set it here"
                )
            ctrl[c] = item(
                True, f"v2 at {lay.v2.mountpoint if lay.v2 else ''}", f"{what}: honoured through cgroup v2{note}"
            )
        elif c == "freezer" and lay.v2 is not None:
            ctrl[c] = item(True, "v2 cgroup.freeze", f"{what}: through cgroup.freeze on the v2 hierarchy")
        elif c == "devices" and lay.v2 is not None:
            ctrl[c] = item(True, "v2 eBPF", f"{what}: through an eBPF program on the v2 hierarchy")
        else:
            ctrl[c] = item(False, "not mounted", f"{what}: cannot be honoured here; create fails naming the field")
    if lay.mode == "hybrid" and "devices" in lay.v1:
        ctrl["devices"]["meaning"] += "; plus the eBPF program on the v2 cgroup (both are enforced)"
    out["controllers"] = ctrl
    from ..cgroups import systemd  # the driver's own answer (connects to systemd only when it runs)

    ok, why = systemd.usable()
    out["systemd"] = item(
        ok,
        why,
        "--systemd-cgroup can be used (docs/cgroups.md)"
        if ok
        else "--systemd-cgroup fails here; the cgroupfs driver (default) works",
    )
    return out


def _bpf_device_program() -> dict[str, Any]:
    from ..cgroups import devices

    try:
        fd = devices.load_program(devices.build_program([devices.Rule(True, "a", -1, -1, "rwm")]))
        os.close(fd)
        return item(True, "BPF_PROG_TYPE_CGROUP_DEVICE loads", "device rules can be enforced on cgroup v2")
    except OSError as exc:
        return item(False, f"load failed: {exc.strerror}", "no eBPF device rules: cgroup v2 devices cannot be limited")


def kernel() -> dict[str, Any]:
    out: dict[str, Any] = {}
    sec = _read("/proc/sys/kernel/seccomp/actions_avail")
    out["seccomp"] = item(
        sec is not None,
        f"actions: {sec}" if sec else "no /proc/sys/kernel/seccomp",
        "linux.seccomp filters can be installed" if sec else "no seccomp: configs with seccomp fail",
    )
    notify = bool(sec and "user_notif" in sec.split())
    out["seccomp_notify"] = item(
        notify,
        "user_notif action" + ("" if notify else " missing"),
        "SCMP_ACT_NOTIFY with a listenerPath works" if notify else "no SCMP_ACT_NOTIFY",
    )
    lsm = _read("/sys/kernel/security/lsm")
    lsms = [x for x in (lsm or "").split(",") if x]
    out["lsm"] = item(
        bool(lsms),
        f"active: {lsm or 'unknown (securityfs not mounted?)'}",
        (
            "apparmor profiles can be applied"
            if "apparmor" in lsms
            else "no AppArmor: apparmorProfile cannot be honoured"
        )
        + "; "
        + (
            "SELinux labels can be applied"
            if "selinux" in lsms
            else "no SELinux: selinuxLabel/mountLabel cannot be honoured"
        ),
    )
    e = _syscall_errno(NR["openat2"], -100, 0, 0, 0)
    out["openat2"] = item(
        e != errno.ENOSYS,
        f"errno {errno.errorcode.get(e, e)}" if e else "ok",
        "mount destinations resolved with RESOLVE_IN_ROOT"
        if e != errno.ENOSYS
        else "no openat2: paths must be resolved component by component",
    )
    e = _syscall_errno(NR["clone3"], 0, 0)
    out["clone3"] = item(
        e != errno.ENOSYS,
        f"errno {errno.errorcode.get(e, e)}",
        "clone3 (CLONE_INTO_CGROUP) exists" if e != errno.ENOSYS else "no clone3",
    )
    e = _syscall_errno(NR["mount_setattr"], -1, 0, 0, 0, 0)
    ms = e != errno.ENOSYS
    out["mount_setattr"] = item(
        ms,
        f"errno {errno.errorcode.get(e, e)}",
        "recursive mount attributes (rro, ...) work"
        if ms
        else "no mount_setattr: recursive mount options and idmapped mounts fail",
    )
    out["idmapped_mounts"] = item(
        ms and os.path.exists("/proc/self/ns/user"),
        f"kernel {os.uname().release}",
        "idmap/ridmap mount options possible where the filesystem supports them "
        "(ext4, xfs, btrfs, tmpfs >= 6.3, overlayfs >= 5.19)"
        if ms
        else "no idmapped mounts",
    )
    e = _syscall_errno(NR["pidfd_open"], os.getpid(), 0)
    out["pidfd"] = item(
        e == 0,
        "pidfd_open ok" if e == 0 else f"errno {errno.errorcode.get(e, e)}",
        "signals go through pidfds (no pid reuse races)" if e == 0 else "no pidfds",
    )
    fss = _read("/proc/filesystems") or ""
    ov = any(line.split()[-1] == "overlay" for line in fss.splitlines() if line.split())
    out["overlayfs"] = item(
        ov,
        "in /proc/filesystems" if ov else "not listed (module not loaded?)",
        "overlay mounts in configs work" if ov else "overlay mounts may fail",
    )
    kvm_ok = False
    detail = "/dev/kvm missing"
    if os.path.exists("/dev/kvm"):
        try:
            os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
            kvm_ok, detail = True, "/dev/kvm opens read-write"
        except OSError as exc:
            detail = f"/dev/kvm: {exc.strerror}"
    out["kvm"] = item(
        kvm_ok,
        detail,
        "containers given /dev/kvm (device + allow rule) can run VMs" if kvm_ok else "no KVM for containers",
    )
    cap = 0
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("CapEff:"):
            cap = int(line.split()[1], 16)
    has_res = bool(cap >> 24 & 1)
    out["cap_sys_resource"] = item(
        has_res,
        "CAP_SYS_RESOURCE " + ("held" if has_res else "missing"),
        "rlimits can be raised"
        if has_res
        else "hard rlimits above the current ones and some cgroup writes fail with EPERM",
    )
    out["bpf_device_program"] = _bpf_device_program()
    return out


def report() -> dict[str, Any]:
    return {
        "kernel": os.uname().release,
        "machine": os.uname().machine,
        "namespaces": namespaces(),
        "cgroups": cgroups(),
        "features": kernel(),
    }


def _text(rep: dict[str, Any]) -> str:
    lines = [f"kernel {rep['kernel']} ({rep['machine']})", ""]

    def section(title: str, items: dict[str, Any]) -> None:
        lines.append(title)
        for name, it in items.items():
            if isinstance(it, dict) and "available" in it:
                mark = "ok " if it["available"] else "NO "
                lines.append(f"  {mark} {name:<20} {it['detail']}")
                lines.append(f"       {'':<20} -> {it['meaning']}")
        lines.append("")

    section("namespaces", rep["namespaces"])
    cg = rep["cgroups"]
    section("cgroups", {k: v for k, v in cg.items() if k in ("layout", "systemd")})
    h = cg.get("hierarchies") or {}
    for key, mnt in {**h.get("v1", {}), **h.get("named", {})}.items():
        lines.append(f"  v1 {key:<22} {mnt}")
    if h.get("v2"):
        lines.append(f"  v2 {'unified':<22} {h['v2']['mountpoint']} ({' '.join(h['v2']['controllers']) or 'none'})")
    lines.append("")
    section("cgroup controllers", cg.get("controllers", {}))
    section("kernel features", rep["features"])
    return "\n".join(lines).rstrip() + "\n"


def main(args: Any) -> int:
    fmt = getattr(args, "format", None) or "text"
    if fmt not in ("text", "json"):
        from ..errors import OcipyError

        raise OcipyError(f"invalid format option: {fmt}")
    rep = report()
    sys.stdout.write(json.dumps(rep, indent=2) + "\n" if fmt == "json" else _text(rep))
    return 0
