"""`ocipy check`'s versions, namespaces and kernel-feature probes (system calls with invalid arguments: ENOSYS or
not)."""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

from ..errors import os_reason
from ..namespaces import DESCRIPTIONS
from . import NR, item, layout, read, syscall_errno

NAMESPACES = dict(sorted(DESCRIPTIONS.items()))  # /proc/self/ns name -> what it gives (ocipy/namespaces.py)


# what `podman run IMAGE` and a Kubernetes pod ask for by default
NEEDED_NAMESPACES = frozenset({"ipc", "mnt", "net", "pid", "uts"})


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
    maxu = read("/proc/sys/user/max_user_namespaces")
    unpriv = read("/proc/sys/kernel/unprivileged_userns_clone")
    aa = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
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


def kernel() -> dict[str, Any]:
    out: dict[str, Any] = {}
    e = syscall_errno(NR["openat2"], -100, 0, 0, 0)
    out["openat2"] = item(
        e != errno.ENOSYS,
        f"errno {errno.errorcode.get(e, e)}" if e else "ok",
        "mount destinations resolved with RESOLVE_IN_ROOT"
        if e != errno.ENOSYS
        else "no openat2: paths must be resolved component by component",
    )
    e = syscall_errno(NR["clone3"], 0, 0)
    out["clone3"] = item(
        e != errno.ENOSYS,
        f"errno {errno.errorcode.get(e, e)}",
        "clone3 (CLONE_INTO_CGROUP) exists" if e != errno.ENOSYS else "no clone3",
    )
    e = syscall_errno(NR["mount_setattr"], -1, 0, 0, 0, 0)
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
    e = syscall_errno(NR["pidfd_open"], os.getpid(), 0)
    out["pidfd"] = item(
        e == 0,
        "pidfd_open ok" if e == 0 else f"errno {errno.errorcode.get(e, e)}",
        "signals go through pidfds (no pid reuse races)" if e == 0 else "no pidfds: kill, delete and run fail",
        needed=True,
    )
    fss = read("/proc/filesystems") or ""
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
            detail = f"/dev/kvm: {os_reason(exc)}"
    out["kvm"] = item(
        kvm_ok,
        detail,
        "containers given /dev/kvm (device + allow rule) can run VMs" if kvm_ok else "no KVM for containers",
    )
    cap = 0
    for line in (read("/proc/self/status") or "").splitlines():
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

    lay = layout()
    # on a pure v2 host the eBPF program is the only way to limit devices
    needed = not isinstance(lay, OSError) and lay.mode == "v2"
    try:
        fd = devices.load_program(devices.build_program([devices.Rule(True, "a", -1, -1, "rwm")]))
        os.close(fd)
        return item(True, "BPF_PROG_TYPE_CGROUP_DEVICE loads", "device rules can be enforced on cgroup v2", needed)
    except OSError as exc:
        return item(
            False, f"load failed: {os_reason(exc)}", "no eBPF device rules: cgroup v2 devices cannot be limited", needed
        )
