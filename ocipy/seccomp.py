"""`linux.seccomp` compiled to a classic BPF program with libseccomp, in the parent (the init only loads it).

libseccomp is reached through cffi's ABI mode (`dlopen("libseccomp.so.2")`): nothing to compile, and the library is
only loaded when a config asks for seccomp. The declarations come precompiled (`ocipy/_seccomp_ffi.py`, generated
from `SECCOMP_CDEF` in shim/build_shim.py; a test keeps it current): parsing them with cffi's `FFI.cdef` at run time
imported cffi and pycparser and cost ~50 ms of CPU per uncached compile. Nothing here changes the host: the filter is built in a libseccomp
context, exported as bytes (`seccomp_export_bpf` into a memfd) and released. The init installs it with
`seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)` (OP_SECCOMP). `compile_cached` (ocipy/seccompcache.py) keeps
compiled programs in files so that a profile seen before costs neither libseccomp nor the rule loop
(docs/security.md says why that is safe).

runc is the reference for every choice libseccomp leaves open:
- `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`; `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` return `errnoRet` (default
  EPERM); `errnoRet` on any other action is an error (the spec says so).
- a rule whose action equals the default action is skipped (libseccomp refuses it);
- a syscall name libseccomp does not know is skipped with a debug line (a profile written for a newer kernel);
- conditions on distinct arguments form one rule (AND); when one argument has several conditions each condition
  becomes a rule of its own (OR), as runc does for Docker's profiles;
- `SCMP_CMP_MASKED_EQ`: `value` is the mask, `valueTwo` the value compared with `arg & mask`;
- `SECCOMP_FILTER_FLAG_TSYNC` means nothing for a single-threaded init and is ignored; LOG and SPEC_ALLOW go to
  seccomp(2); WAIT_KILLABLE_RECV only together with a notify listener (the kernel refuses it otherwise);
- `SCMP_ACT_NOTIFY` as the default action is refused, and so is notify on `sendmsg`: the init hands the listener fd
  to the runtime with sendmsg after the filter is installed (runc refuses `write` for the same reason).
"""

from __future__ import annotations

import errno as errno_mod
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
    from collections.abc import Sequence
    from dataclasses import dataclass, field
else:
    from ocipy.records import dataclass, field
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Any

from ocipy.errors import ConfigError, os_reason
from ocipy.errors import pointer as _ptr

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_KILL_THREAD = 0x00000000
SCMP_ACT_TRAP = 0x00030000
SCMP_ACT_NOTIFY = 0x7FC00000
SCMP_ACT_LOG = 0x7FFC0000
SCMP_ACT_ALLOW = 0x7FFF0000
_ERRNO_BASE = 0x00050000
_TRACE_BASE = 0x7FF00000

ACTIONS = {
    "SCMP_ACT_KILL": SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": SCMP_ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": SCMP_ACT_TRAP,
    "SCMP_ACT_ERRNO": _ERRNO_BASE,
    "SCMP_ACT_TRACE": _TRACE_BASE,
    "SCMP_ACT_ALLOW": SCMP_ACT_ALLOW,
    "SCMP_ACT_LOG": SCMP_ACT_LOG,
    "SCMP_ACT_NOTIFY": SCMP_ACT_NOTIFY,
}
WITH_ERRNO = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})

OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# seccomp(2) SECCOMP_FILTER_FLAG_*
FLAG_TSYNC = 1 << 0
FLAG_LOG = 1 << 1
FLAG_SPEC_ALLOW = 1 << 2
FLAG_NEW_LISTENER = 1 << 3
FLAG_TSYNC_ESRCH = 1 << 4
FLAG_WAIT_KILLABLE_RECV = 1 << 5
SPEC_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 0,  # one thread: nothing to synchronise (runc ignores it too)
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

MAX_ARGS = 6
BPF_MAXINSNS = 4096
SOCK_FILTER_SIZE = 8
MAX_ERRNO_RET = 0xFFFF  # SECCOMP_RET_DATA
_NR_SCMP_ERROR = -1
_SCMP_FLTATR_CTL_NNP = 3
_SCMP_FLTATR_CTL_OPTIMIZE = 8

# the syscalls the init makes between installing a filter with a listener and handing the listener fd over
NOTIFY_FORBIDDEN = frozenset({"sendmsg"})


class SeccompError(ConfigError):
    """A seccomp config that cannot be compiled, named by the JSON pointer of the field at fault."""


@dataclass(frozen=True)
class Program:
    """A compiled filter: what OP_SECCOMP needs."""

    bpf: bytes  # struct sock_filter[], 8 bytes each
    flags: int  # SECCOMP_FILTER_FLAG_* for seccomp(2)
    listener: bool  # SCMP_ACT_NOTIFY is used: the init sends the listener fd, create forwards it to listenerPath
    skipped: tuple[str, ...] = field(default=())  # syscall names libseccomp does not know (ignored, as runc)


_LIB: Any = None
_FFI: Any = None


def _lib() -> tuple[Any, Any]:
    global _LIB, _FFI
    if _LIB is None:
        from ocipy._seccomp_ffi import ffi  # precompiled declarations: no cffi package, no parser

        try:
            lib = ffi.dlopen("libseccomp.so.2")
        except OSError:
            raise SeccompError("/linux/seccomp", "libseccomp.so.2 is not installed (Debian: libseccomp2)") from None
        _LIB, _FFI = lib, ffi
    return _LIB, _FFI


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeError:
        return False
    return True


def _get(obj: Any, name: str) -> Any:
    return None if obj is None else getattr(obj, name, None)


def action_value(name: Any, errno_ret: Any, ptr: str, errno_ptr: str) -> int:
    """The libseccomp action word of a spec action (with its errnoRet)."""
    if name not in ACTIONS:
        raise SeccompError(ptr, f"unknown action {name!r}")
    if errno_ret is not None and name not in WITH_ERRNO:
        raise SeccompError(
            errno_ptr, f"an errno return is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {name}"
        )
    if name in WITH_ERRNO:
        ret = errno_mod.EPERM if errno_ret is None else int(errno_ret)
        if not 0 <= ret <= MAX_ERRNO_RET:
            raise SeccompError(errno_ptr, f"{ret} does not fit in 16 bits")
        return ACTIONS[name] | ret
    return ACTIONS[name]


def arch_token(name: Any, ptr: str) -> int:
    """libseccomp's token for SCMP_ARCH_X86_64 & co."""
    if not isinstance(name, str) or not name.startswith("SCMP_ARCH_") or "\0" in name or not _encodable(name):
        raise SeccompError(ptr, f"unknown architecture {name!r}")
    lib, _ = _lib()
    token = int(lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_") :].lower().encode()))
    if token == 0:
        raise SeccompError(ptr, f"architecture {name} is not known to this libseccomp")
    return token


def spec_flags(flags: Sequence[Any] | None, ptr: str, listener: bool) -> int:
    out = FLAG_NEW_LISTENER if listener else 0
    for i, name in enumerate(flags or ()):
        if name not in SPEC_FLAGS:
            raise SeccompError(_ptr(*ptr.strip("/").split("/"), "flags", i), f"unknown flag {name!r}")
        bit = SPEC_FLAGS[name]
        if bit == FLAG_WAIT_KILLABLE_RECV and not listener:
            continue  # only meaningful with a listener; libseccomp sets it only then
        out |= bit
    return out


def _conditions(call: Any, ptr: str) -> list[tuple[int, int, int, int]]:
    conds = []
    for j, arg in enumerate(_get(call, "args") or ()):
        aptr = f"{ptr}/args/{j}"
        index, op = _get(arg, "index"), _get(arg, "op")
        if not isinstance(index, int) or not 0 <= index < MAX_ARGS:
            raise SeccompError(aptr + "/index", f"{index!r} is not a syscall argument index (0 to 5)")
        if op not in OPERATORS:
            raise SeccompError(aptr + "/op", f"unknown operator {op!r}")
        value, two = _get(arg, "value"), _get(arg, "value_two")
        value = 0 if value is None else int(value)
        two = 0 if two is None else int(two)
        for v, name in ((value, "value"), (two, "valueTwo")):
            if not 0 <= v < 1 << 64:
                raise SeccompError(f"{aptr}/{name}", "must be a uint64")
        conds.append((index, OPERATORS[op], value, two))
    return conds


def _notify(cfg: Any, calls: Sequence[Any], ptr: str) -> bool:
    """Whether SCMP_ACT_NOTIFY is used (a listener is needed), after checking what goes with it."""
    listener_path = _get(cfg, "listener_path")
    if _get(cfg, "listener_metadata") and not listener_path:
        raise SeccompError(ptr + "/listenerMetadata", "must not be set without listenerPath")
    notify = False
    for i, call in enumerate(calls):
        if _get(call, "action") == "SCMP_ACT_NOTIFY":
            notify = True
            for k, name in enumerate(_get(call, "names") or ()):
                if name in NOTIFY_FORBIDDEN:
                    raise SeccompError(
                        f"{ptr}/syscalls/{i}/names/{k}",
                        f"SCMP_ACT_NOTIFY cannot be used for {name}: the runtime needs it to pass on the listener",
                    )
    if notify and not listener_path:
        raise SeccompError(ptr + "/listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath to send the listener to")
    if listener_path is not None and (not isinstance(listener_path, str) or not listener_path.startswith("/")):
        raise SeccompError(ptr + "/listenerPath", f"{listener_path!r} must be an absolute path")
    return notify


def compile_filter(cfg: Any, ptr: str = "/linux/seccomp") -> Program:
    """Compile `linux.seccomp` (a model or any object with the same snake_case attributes)."""
    default_name = _get(cfg, "default_action")
    default = action_value(
        default_name, _get(cfg, "default_errno_ret"), ptr + "/defaultAction", ptr + "/defaultErrnoRet"
    )
    if default_name == "SCMP_ACT_NOTIFY":
        raise SeccompError(ptr + "/defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    calls = list(_get(cfg, "syscalls") or ())
    notify = _notify(cfg, calls, ptr)
    flags = spec_flags(_get(cfg, "flags"), ptr, notify)

    lib, ffi = _lib()
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise SeccompError(ptr + "/defaultAction", f"libseccomp refused the default action {default_name}")
    skipped: list[str] = []
    try:
        for i, arch in enumerate(_get(cfg, "architectures") or ()):
            rc = lib.seccomp_arch_add(ctx, arch_token(arch, f"{ptr}/architectures/{i}"))
            if rc < 0 and rc != -errno_mod.EEXIST:
                raise SeccompError(f"{ptr}/architectures/{i}", f"{arch}: {os_reason(-rc)}")
        lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_NNP, 0)  # the plan decides about no_new_privs
        if len(calls) > 32:
            lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)  # binary tree (runc's threshold)
        for i, call in enumerate(calls):
            _add_call(lib, ffi, ctx, call, f"{ptr}/syscalls/{i}", default, skipped)
        bpf = _export(lib, ctx, ptr)
    finally:
        lib.seccomp_release(ctx)
    if len(bpf) // SOCK_FILTER_SIZE > BPF_MAXINSNS:
        raise SeccompError(ptr, f"the filter has {len(bpf) // SOCK_FILTER_SIZE} instructions, the kernel takes 4096")
    report_skipped(skipped)
    return Program(bpf, flags, notify, tuple(skipped))


def _add_call(lib: Any, ffi: Any, ctx: Any, call: Any, cptr: str, default: int, skipped: list[str]) -> None:
    """The rules of one `syscalls` entry (checked first); names libseccomp does not know go to `skipped`."""
    act = action_value(_get(call, "action"), _get(call, "errno_ret"), cptr + "/action", cptr + "/errnoRet")
    conds = _conditions(call, cptr)
    names = list(_get(call, "names") or ())
    if not names:
        raise SeccompError(cptr + "/names", "at least one syscall name is required")
    for k, name in enumerate(names):
        if not isinstance(name, str) or not name or "\0" in name or not _encodable(name):
            raise SeccompError(f"{cptr}/names/{k}", f"{name!r} is not a syscall name")
    if act == default:
        return  # redundant (libseccomp refuses it): runc skips it silently
    counts = [0] * MAX_ARGS
    for c in conds:
        counts[c[0]] += 1
    groups = [[c] for c in conds] if max(counts) > 1 else [conds]
    arrays = []  # one condition array per group, shared by every name (libseccomp copies it)
    for group in groups:
        arr = ffi.new("struct scmp_arg_cmp[]", max(1, len(group)))
        for n, (index, op, a, b) in enumerate(group):
            arr[n].arg, arr[n].op, arr[n].datum_a, arr[n].datum_b = index, op, a, b
        arrays.append((len(group), arr))
    for k, name in enumerate(names):
        nr = int(lib.seccomp_syscall_resolve_name(name.encode()))
        if nr == _NR_SCMP_ERROR:
            skipped.append(name)
            continue
        for count, arr in arrays:
            rc = lib.seccomp_rule_add_array(ctx, act, nr, count, arr)
            if rc < 0:
                raise SeccompError(f"{cptr}/names/{k}", f"{name}: libseccomp: {os_reason(-rc)}")


def report_skipped(skipped: Sequence[str]) -> None:
    if skipped:
        from ocipy import errors

        errors.debug("seccomp: unknown syscalls ignored: " + ", ".join(sorted(set(skipped))))


def _export(lib: Any, ctx: Any, ptr: str) -> bytes:
    fd = os.memfd_create("ocipy-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise SeccompError(ptr, f"libseccomp could not export the filter: {os_reason(-rc)}")
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


# the cache of compiled programs (ocipy/seccompcache.py), here under the names callers know


def compile_cached(cfg: Any, ptr: str = "/linux/seccomp", cache_dir: str | None = None) -> Program:
    """compile_filter through the cache of compiled programs in `cache_dir` (see ocipy/seccompcache.py)."""
    from ocipy import seccompcache

    return seccompcache.compile_cached(cfg, ptr, cache_dir)


def cache_key(cfg: Any) -> str | None:
    """The hex SHA-256 naming the cache file of `cfg`, or None when it is not cached (ocipy/seccompcache.py)."""
    from ocipy import seccompcache

    return seccompcache.cache_key(cfg)


def find_libseccomp() -> tuple[str, os.stat_result] | None:
    """The libseccomp.so.2 that `dlopen` would load, found without loading it (ocipy/seccompcache.py)."""
    from ocipy import seccompcache

    return seccompcache.find_libseccomp()
