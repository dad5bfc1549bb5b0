"""`ocipy check`'s security probes: the kernel's seccomp actions, libseccomp loading as `create` loads it, and the
LSMs `create` would apply labels for (`lsm.active()`)."""

from __future__ import annotations

from typing import Any

from . import item, read


def security() -> dict[str, Any]:
    from .. import lsm

    out: dict[str, Any] = {}
    sec = read("/proc/sys/kernel/seccomp/actions_avail")
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
    listed = read("/sys/kernel/security/lsm")
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
