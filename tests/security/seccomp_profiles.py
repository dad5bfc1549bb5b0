"""Seccomp profiles the tests and bench/seccomp_cache.py share: Podman's default converted as Podman converts it, and
every syscall name libseccomp knows. Plain functions (stdlib and cffi only), importable from outside pytest."""

from __future__ import annotations

from typing import Any

# the capabilities Podman gives a container by default (the profile's includes/excludes depend on them)
PODMAN_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
]


def podman_spec_profile(profile: dict[str, Any], caps: list[str]) -> dict[str, Any]:
    """containers/common's conversion for amd64: archMap, includes/excludes by arch and capability, unchanged
    names, actions, errnoRet and args."""
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"], "syscalls": []}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    for entry in profile.get("archMap") or []:
        if entry["architecture"] == "SCMP_ARCH_X86_64":
            out["architectures"] = [entry["architecture"], *entry.get("subArchitectures", [])]
    for call in profile["syscalls"]:
        inc, exc = call.get("includes") or {}, call.get("excludes") or {}
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if inc.get("caps") and not all(cap in caps for cap in inc["caps"]):
            continue
        if exc.get("arches") and "amd64" in exc["arches"]:
            continue
        if exc.get("caps") and any(cap in caps for cap in exc["caps"]):
            continue
        new: dict[str, Any] = {"names": call["names"], "action": call["action"]}
        if call.get("errnoRet") is not None:
            new["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            new["args"] = call["args"]
        out["syscalls"].append(new)
    return out


def native_syscall_names() -> list[str]:
    """Every system call name libseccomp knows for this architecture (for allow-all-but profiles)."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(
        "char *seccomp_syscall_resolve_num_arch(uint32_t arch_token, int num); uint32_t seccomp_arch_native(void);"
        "void free(void *);"
    )
    lib = ffi.dlopen("libseccomp.so.2")
    libc = ffi.dlopen(None)
    arch = lib.seccomp_arch_native()
    names = []
    for nr in range(1024):
        p = lib.seccomp_syscall_resolve_num_arch(arch, nr)
        if p != ffi.NULL:
            names.append(ffi.string(p).decode())
            libc.free(p)
    return names
