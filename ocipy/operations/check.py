"""`ocipy check [--format text|json]`: what this host can give a container, probed live, for an operator.

Each item says whether the facility is there (`available`), what was seen (`detail`), what it means for containers
run by ocipy here (`meaning`), and whether a default Podman or Kubernetes container needs it (`needed`). Where
`create` decides something by a probe, check calls that same probe (seccomp: the libseccomp `create` loads; LSMs:
`lsm.active()`; block-IO weights: the files `cgroups/v1.py`/`v2.py` write), so check and create cannot disagree.
Probes only read files, load a library or make harmless system calls (invalid arguments that tell ENOSYS apart from
"exists"). Exit status 1 when an item that is `needed` is missing, after the whole report.

Layout (other issues add lines here): `SECTIONS` lists the sections in order; each is a function returning
{name: item}. The cgroup drivers are in `drivers()` (the systemd driver's line is the systemd issue's), checkpoint
tooling in `checkpoint()` (the criu issue's), rootless prerequisites in `rootless()` (the rootless issue's).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import stat
import sys
from collections.abc import Callable
from typing import Any

from ..cgroups import layout as layout_mod
from ..errors import os_reason
from ..namespaces import DESCRIPTIONS

NR = {"pidfd_open": 434, "clone3": 435, "openat2": 437, "mount_setattr": 442, "open_tree": 428}
NAMESPACES = dict(sorted(DESCRIPTIONS.items()))  # /proc/self/ns name -> what it gives (ocipy/namespaces.py)
# what `podman run IMAGE` and a Kubernetes pod ask for by default
NEEDED_NAMESPACES = frozenset({"ipc", "mnt", "net", "pid", "uts"})
NEEDED_CONTROLLERS = frozenset({"memory", "cpu", "pids", "devices"})


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


def item(ok: bool, detail: str, meaning: str, needed: bool = False) -> dict[str, Any]:
    """One line of the report. `needed`: a default Podman or Kubernetes container cannot run without it."""
    return {"available": ok, "detail": detail, "meaning": meaning, "needed": needed}


# --- sections ------------------------------------------------------------------------------------------------------
def versions() -> dict[str, Any]:
    from .. import version

    uname = os.uname()
    lib = version.libseccomp()
    return {
        "ocipy": item(True, f"{version.VERSION} (commit {version.commit() or 'unknown'})", f"spec {version.SPEC}"),
        "python": item(True, f"{version.python()} at {sys.executable}", "the interpreter every verb runs on"),
        "kernel": item(True, f"{uname.release} ({uname.machine})", "the kernel containers share"),
        "libseccomp": item(
            bool(lib),
            lib or "libseccomp.so.2 not found",
            "compiles linux.seccomp filters" if lib else "seccomp filters cannot be compiled",
        ),
    }


# the state root `--root` names (set by main), else the default
_root: str | None = None


def state() -> dict[str, Any]:
    from ..store import default_root

    root = os.path.abspath(_root) if _root else default_root()
    # create makes the root (and its parents) and a directory per container in it: try exactly that, and undo it
    where = root
    while not os.path.isdir(where):
        where = os.path.dirname(where)
    try:
        import tempfile

        os.rmdir(tempfile.mkdtemp(prefix=".ocipy-check-", dir=where))
        ok, why = True, ""
    except OSError as exc:
        ok, why = False, f"; {where}: {os_reason(exc)}"
    detail = f"{root} exists" if where == root else f"{root} (made by the first create)"
    fs, depth = "", -1
    for line in (_read("/proc/self/mounts") or "").splitlines():
        parts = line.split()
        holds = len(parts) > 2 and (root == parts[1] or root.startswith(parts[1].rstrip("/") + "/"))
        if holds and len(parts[1]) >= depth:  # the deepest mount point holding the root (the last when stacked)
            fs, depth = parts[2], len(parts[1])
    return {
        "root": item(
            ok,
            detail + (f" on {fs}" if fs else "") + why,
            "container state lives here (--root changes it); it should be a tmpfs, as runc's /run/runc"
            if ok
            else "create fails: the state root cannot be written",
            needed=True,
        )
    }


def namespaces() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ns, what in NAMESPACES.items():
        ok = os.path.exists(f"/proc/self/ns/{ns}")
        out[ns] = item(
            ok,
            f"/proc/self/ns/{ns} {'present' if ok else 'missing'}",
            what if ok else f"{what}: not available, configs asking for it fail at create",
            needed=ns in NEEDED_NAMESPACES,
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


def _layout() -> layout_mod.Layout | OSError:
    try:
        return layout_mod.detect()
    except OSError as exc:
        return exc


def cgroups() -> dict[str, Any]:
    lay = _layout()
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


def _schedulers() -> dict[str, str]:
    """disk -> its active I/O scheduler (the bracketed word of /sys/block/X/queue/scheduler); loop/ram left out."""
    out: dict[str, str] = {}
    try:
        disks = sorted(os.listdir("/sys/block"))
    except OSError:
        return out
    for disk in disks:
        if disk.startswith(("loop", "ram", "zram")):
            continue
        text = _read(f"/sys/block/{disk}/queue/scheduler") or ""
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
    sched = _schedulers()
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
    lay = _layout()
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


def security() -> dict[str, Any]:
    from .. import lsm

    out: dict[str, Any] = {}
    sec = _read("/proc/sys/kernel/seccomp/actions_avail")
    out["seccomp"] = item(
        sec is not None,
        f"kernel actions: {sec}" if sec else "no /proc/sys/kernel/seccomp",
        "linux.seccomp filters can be installed" if sec else "no seccomp: configs with seccomp fail",
        needed=True,
    )
    out["libseccomp"] = _libseccomp_loads()
    notify = bool(sec and "user_notif" in sec.split())
    out["seccomp_notify"] = item(
        notify,
        "user_notif action" + ("" if notify else " missing"),
        "SCMP_ACT_NOTIFY with a listenerPath works" if notify else "no SCMP_ACT_NOTIFY",
    )
    active = lsm.active()  # the answer create uses for apparmorProfile, selinuxLabel and mountLabel
    listed = _read("/sys/kernel/security/lsm")
    where = f"/sys/kernel/security/lsm: {listed}" if listed else "securityfs: no lsm list"
    for name, fields in (("apparmor", "process.apparmorProfile"), ("selinux", "process.selinuxLabel, mountLabel")):
        on = name in active
        out[name] = item(
            on,
            f"{where}; features reports it enabled (ocipy supports it)",
            f"{fields} applied"
            if on
            else f"not active on this host: a config with {fields} fails at create "
            "(engines leave them out on such hosts)",
        )
    return out


def _libseccomp_loads() -> dict[str, Any]:
    """The probe create makes: cffi dlopen of libseccomp.so.2 and the native architecture resolved."""
    from .. import seccomp

    try:
        lib, _ = seccomp._lib()
        ctx = lib.seccomp_init(0x7FFF0000)  # SCMP_ACT_ALLOW: a filter context, as compile_filter makes first
        if not ctx:
            raise OSError("seccomp_init failed")
        lib.seccomp_release(ctx)
    except seccomp.SeccompError as exc:
        return item(
            False, exc.message, "every config with linux.seccomp fails at create (Podman's default has one)", True
        )
    except OSError as exc:
        return item(False, f"dlopen: {exc}", "every config with linux.seccomp fails at create", True)
    from .. import version

    return item(True, f"libseccomp {version.libseccomp() or '?'} loads", "seccomp profiles are compiled", True)


def kernel() -> dict[str, Any]:
    out: dict[str, Any] = {}
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
        "signals go through pidfds (no pid reuse races)" if e == 0 else "no pidfds: kill, delete and run fail",
        needed=True,
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


def _bpf_device_program() -> dict[str, Any]:
    from ..cgroups import devices

    lay = _layout()
    # on a pure v2 host the eBPF program is the only way to limit devices
    needed = not isinstance(lay, OSError) and lay.mode == "v2"
    try:
        fd = devices.load_program(devices.build_program([devices.Rule(True, "a", -1, -1, "rwm")]))
        os.close(fd)
        return item(True, "BPF_PROG_TYPE_CGROUP_DEVICE loads", "device rules can be enforced on cgroup v2", needed)
    except OSError as exc:
        return item(
            False, f"load failed: {exc.strerror}", "no eBPF device rules: cgroup v2 devices cannot be limited", needed
        )


def _user() -> tuple[str, int]:
    """The user rootless containers would run as: the sudo caller when run through sudo, else this user."""
    import pwd

    sudo_uid = os.environ.get("SUDO_UID", "")
    uid = int(sudo_uid) if os.geteuid() == 0 and sudo_uid.isdigit() else os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name, uid
    except KeyError:
        return str(uid), uid


def _subids(path: str, name: str, uid: int) -> int:
    """How many subordinate ids /etc/subuid or /etc/subgid gives the user (by name or number)."""
    total = 0
    for line in (_read(path) or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (name, str(uid)) and parts[2].isdigit():
            total += int(parts[2])
    return total


def _helper(name: str) -> tuple[str | None, str]:
    path = shutil.which(name, path=os.environ.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin")
    if path is None:
        return None, "not found"
    st = os.stat(path)
    if st.st_mode & stat.S_ISUID and st.st_uid == 0:
        return path, f"{path} (setuid root)"
    try:
        if os.getxattr(path, "security.capability"):
            return path, f"{path} (file capabilities)"
    except OSError:
        pass
    return path, f"{path} (neither setuid nor file capabilities: only a single id can be mapped)"


def rootless() -> dict[str, Any]:
    """What a rootless user (not root) needs: subordinate ids, the setuid map helpers, a runtime dir."""
    name, uid = _user()
    out: dict[str, Any] = {}
    for kind, idfile in (("subuid", "/etc/subuid"), ("subgid", "/etc/subgid")):
        n = _subids(idfile, name, uid)
        out[kind] = item(
            n >= 65536,
            f"{idfile}: {n} ids for {name}",
            f"{name} can map {n} ids in a rootless container"
            if n >= 65536
            else f"{name} can map only its own id (Podman needs 65536: usermod --add-subuids/--add-subgids)",
        )
    for helper in ("newuidmap", "newgidmap"):
        path, detail = _helper(helper)
        out[helper] = item(
            path is not None and "neither" not in detail,
            detail,
            f"{helper} writes multi-id maps for rootless containers"
            if path
            else f"no {helper} (Debian: uidmap): rootless containers get one id",
        )
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    xdg_ok = bool(xdg) and os.path.isdir(xdg)
    out["xdg_runtime_dir"] = item(
        xdg_ok or uid == 0,
        f"XDG_RUNTIME_DIR={xdg or '(unset)'}" + ("" if not xdg or xdg_ok else " (missing)"),
        f"rootless state goes to {xdg}/ocipy"
        if xdg_ok
        else "not needed by root"
        if uid == 0
        else "rootless state falls back to /run/ocipy, which a user cannot write: set XDG_RUNTIME_DIR (pam_systemd)",
    )
    from ocipy import rootless as rl

    why = rl.reason()
    out["mode"] = item(
        True,
        f"this process: {'rootless (' + why + ')' if why else 'not rootless (root in the initial user namespace)'}",
        "rootless: state in $XDG_RUNTIME_DIR/ocipy, cgroups only where writable, devices bound (docs/rootless.md)"
        if why
        else "root: /run/ocipy and every cgroup",
    )
    own = _own_cgroup_v2()
    out["cgroup"] = item(
        own is not None and os.access(own, os.W_OK),
        f"own cgroup v2: {own or '(none)'}" + (" (writable)" if own and os.access(own, os.W_OK) else ""),
        "a delegated cgroup: rootless containers can get limits there (point /linux/cgroupsPath into it)"
        if own and os.access(own, os.W_OK)
        else "no writable cgroup: rootless containers run without one (no limits, pause, update, events)",
    )
    return out


def _own_cgroup_v2() -> str | None:
    """This process's cgroup in the unified hierarchy, as a path under its mount point (None without one)."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((line.rstrip("\n").split(":", 2)[2] for line in f if line.startswith("0::")), None)
        with open("/proc/self/mountinfo") as f:
            mnt = next((line.split()[4] for line in f if " - cgroup2 " in line), None)
    except OSError:
        return None
    if rel is None or mnt is None:
        return None
    return os.path.join(mnt, rel.lstrip("/"))


def checkpoint() -> dict[str, Any]:
    """Checkpoint/restore tooling: criu found, its version, `criu check`, pre-dump and lazy pages (ocipy/criu/probe.py)."""
    from ..criu import probe

    return {name: item(ok, detail, meaning) for name, (ok, detail, meaning) in probe.report().items()}


SECTIONS: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
    ("versions", "versions", versions),
    ("state", "state", state),
    ("namespaces", "namespaces", namespaces),
    ("cgroups", "cgroups", cgroups),
    ("drivers", "cgroup drivers", drivers),
    ("security", "security", security),
    ("kernel", "kernel features", kernel),
    ("rootless", "rootless prerequisites", rootless),
    ("checkpoint", "checkpoint/restore", checkpoint),
]


def report() -> dict[str, Any]:
    rep: dict[str, Any] = {key: probe() for key, _, probe in SECTIONS}
    found = [it for sec in rep.values() for it in sec.values()]
    missing = sorted(f"{key}.{name}" for key, sec in rep.items() for name, it in sec.items() if not it["available"])
    needed = sorted(
        f"{key}.{name}" for key, sec in rep.items() for name, it in sec.items() if it["needed"] and not it["available"]
    )
    rep["summary"] = {
        "ok": sum(1 for it in found if it["available"]),
        "unavailable": missing,
        "needed_missing": needed,
        "text": summary_text(len(found) - len(missing), missing, needed),
    }
    return rep


def summary_text(ok: int, missing: list[str], needed: list[str]) -> str:
    head = f"{ok} ok, {len(missing)} unavailable"
    if needed:
        return f"{head}; a default Podman or Kubernetes container cannot run here: missing {', '.join(needed)}"
    return f"{head}; a default Podman or Kubernetes container can run here"


def _text(rep: dict[str, Any]) -> str:
    lines: list[str] = []
    for key, title, _ in SECTIONS:
        lines.append(title)
        for name, it in rep[key].items():
            mark = "ok " if it["available"] else ("NO!" if it["needed"] else "no ")
            lines.append(f"  {mark} {name:<20} {it['detail']}")
            lines.append(f"       {'':<20} -> {it['meaning']}")
        lines.append("")
    lines.append(f"summary: {rep['summary']['text']}")
    return "\n".join(lines) + "\n"


def main(args: Any) -> int:
    fmt = getattr(args, "format", None) or "text"
    if fmt not in ("text", "json"):
        from ..errors import OcipyError

        raise OcipyError(f"invalid format option: {fmt}")
    global _root
    _root = getattr(args, "root", None)
    rep = report()
    sys.stdout.write(json.dumps(rep, indent=2) + "\n" if fmt == "json" else _text(rep))
    return 1 if rep["summary"]["needed_missing"] else 0
