"""`linux.seccomp` compiled to a classic BPF program with libseccomp, in the parent (the init only loads it).

libseccomp is reached through cffi's ABI mode (`dlopen("libseccomp.so.2")`): nothing to compile, and the library is
only loaded when a config asks for seccomp. Nothing here changes the host: the filter is built in a libseccomp
context, exported as bytes (`seccomp_export_bpf` into a memfd) and released. The init installs it with
`seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)` (OP_SECCOMP). `compile_cached` (at the end) keeps compiled programs
in files so that a profile seen before costs neither cffi nor libseccomp (docs/security.md says why that is safe).

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
import stat
import struct
import sys
import time
from collections.abc import Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect` (~10 ms on every exec): see ocipy/records.py
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

_CDEF = """
typedef void *scmp_filter_ctx;
struct scmp_arg_cmp { unsigned int arg; int op; uint64_t datum_a; uint64_t datum_b; };
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_attr_set(scmp_filter_ctx ctx, int attr, uint32_t value);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
                           const struct scmp_arg_cmp *arg_array);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
"""


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
        import cffi  # type: ignore[import-untyped]

        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
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


def compile_filter(cfg: Any, ptr: str = "/linux/seccomp") -> Program:
    """Compile `linux.seccomp` (a model or any object with the same snake_case attributes)."""
    default_name = _get(cfg, "default_action")
    default = action_value(
        default_name, _get(cfg, "default_errno_ret"), ptr + "/defaultAction", ptr + "/defaultErrnoRet"
    )
    if default_name == "SCMP_ACT_NOTIFY":
        raise SeccompError(ptr + "/defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    calls = list(_get(cfg, "syscalls") or ())
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
            cptr = f"{ptr}/syscalls/{i}"
            act = action_value(_get(call, "action"), _get(call, "errno_ret"), cptr + "/action", cptr + "/errnoRet")
            conds = _conditions(call, cptr)
            names = list(_get(call, "names") or ())
            if not names:
                raise SeccompError(cptr + "/names", "at least one syscall name is required")
            for k, name in enumerate(names):
                if not isinstance(name, str) or not name or "\0" in name or not _encodable(name):
                    raise SeccompError(f"{cptr}/names/{k}", f"{name!r} is not a syscall name")
            if act == default:
                continue  # redundant (libseccomp refuses it): runc skips it silently
            counts = [0] * MAX_ARGS
            for c in conds:
                counts[c[0]] += 1
            groups = [[c] for c in conds] if max(counts) > 1 else [conds]
            for k, name in enumerate(names):
                nr = int(lib.seccomp_syscall_resolve_name(name.encode()))
                if nr == _NR_SCMP_ERROR:
                    skipped.append(name)
                    continue
                for group in groups:
                    arr = ffi.new("struct scmp_arg_cmp[]", max(1, len(group)))
                    for n, (index, op, a, b) in enumerate(group):
                        arr[n].arg, arr[n].op, arr[n].datum_a, arr[n].datum_b = index, op, a, b
                    rc = lib.seccomp_rule_add_array(ctx, act, nr, len(group), arr)
                    if rc < 0:
                        raise SeccompError(f"{cptr}/names/{k}", f"{name}: libseccomp: {os_reason(-rc)}")
        bpf = _export(lib, ctx, ptr)
    finally:
        lib.seccomp_release(ctx)
    if len(bpf) // SOCK_FILTER_SIZE > BPF_MAXINSNS:
        raise SeccompError(ptr, f"the filter has {len(bpf) // SOCK_FILTER_SIZE} instructions, the kernel takes 4096")
    _report_skipped(skipped)
    return Program(bpf, flags, notify, tuple(skipped))


def _report_skipped(skipped: Sequence[str]) -> None:
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


# ----------------------------------------------------------------------------------------------------------------
# the cache of compiled programs
# ----------------------------------------------------------------------------------------------------------------

CACHE_FORMAT = "ocipy-seccomp-cache/1"  # bump when the file layout or what the key covers changes
_MAGIC = b"OCIPYSC1"
_HEADER = struct.Struct("<8s32sIIII")  # magic, key digest, flags, listener, len(bpf), len(skipped)
_DIGEST_SIZE = 32
_MAX_SKIPPED = 1 << 20
_MAX_FILE = _HEADER.size + BPF_MAXINSNS * SOCK_FILTER_SIZE + _MAX_SKIPPED + _DIGEST_SIZE
_MAX_ENTRIES = 64  # a miss that leaves more files removes the oldest (kernel or libseccomp upgrades leave strays)
_STALE_TMP_NS = 3600 * 10**9
_KNOWN_FLAGS = FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV
_LIB_NAME = "libseccomp.so.2"
_LD_CACHE = "/etc/ld.so.cache"
_LIB_DIRS = (
    "/usr/local/lib/{ma}",
    "/usr/local/lib",
    "/lib/{ma}",
    "/usr/lib/{ma}",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


class _Uncacheable(Exception):
    """The profile holds something the key cannot represent exactly: compile it without the cache."""


def _sha256(data: bytes) -> bytes:
    # the builtin module hashlib falls back to: `import hashlib` loads OpenSSL's _hashlib (~2.5 ms)
    for name in ("_sha256", "_sha2"):  # Python 3.11, 3.12+
        try:
            return bytes(__import__(name).sha256(data).digest())
        except ImportError:
            continue
    import hashlib

    return hashlib.sha256(data).digest()


def _scalar(value: Any) -> Any:
    if value is None or type(value) in (str, int, bool):
        return value
    raise _Uncacheable(f"a value of type {type(value).__name__}")


def _seq(value: Any, item: Any) -> Any:
    if value is None:
        return None
    if type(value) not in (list, tuple):  # only these are read without side effects (not a generator)
        raise _Uncacheable(f"a sequence of type {type(value).__name__}")
    return [item(v) for v in value]


def _canon_arg(arg: Any) -> Any:
    if arg is None:
        return None
    return {name: _scalar(getattr(arg, name, None)) for name in ("index", "op", "value", "value_two")}


def _canon_call(call: Any) -> Any:
    if call is None:
        return None
    return {
        "action": _scalar(getattr(call, "action", None)),
        "args": _seq(getattr(call, "args", None), _canon_arg),
        "errno_ret": _scalar(getattr(call, "errno_ret", None)),
        "names": _seq(getattr(call, "names", None), _scalar),
    }


def _canon_profile(cfg: Any) -> Any:
    """Exactly the fields compile_filter reads, by attribute (a model or a stand-in holding extra internals)."""
    if cfg is None:
        return None
    return {
        "architectures": _seq(getattr(cfg, "architectures", None), _scalar),
        "default_action": _scalar(getattr(cfg, "default_action", None)),
        "default_errno_ret": _scalar(getattr(cfg, "default_errno_ret", None)),
        "flags": _seq(getattr(cfg, "flags", None), _scalar),
        "listener_metadata": _scalar(getattr(cfg, "listener_metadata", None)),
        "listener_path": _scalar(getattr(cfg, "listener_path", None)),
        "syscalls": _seq(getattr(cfg, "syscalls", None), _canon_call),
    }


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def find_libseccomp() -> tuple[str, os.stat_result] | None:
    """The libseccomp.so.2 that `dlopen` would load, found without loading it: LD_LIBRARY_PATH, then the usual
    (multiarch) library directories. compile_cached stores a program only when this is the file it loaded."""
    machine = getattr(sys.implementation, "_multiarch", None) or f"{os.uname().machine}-linux-gnu"
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d.startswith("/")]
    dirs += [d.format(ma=machine) for d in _LIB_DIRS]
    for d in dirs:
        path = os.path.join(d, _LIB_NAME)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            return path, st
    return None


def _key(cfg: Any) -> tuple[str, os.stat_result] | None:
    from ocipy import errors, fastjson

    try:
        profile = _canon_profile(cfg)
    except _Uncacheable as exc:
        errors.debug(f"seccomp: not cached: the profile holds {exc}")
        return None
    lib = find_libseccomp()
    if lib is None:
        errors.debug(f"seccomp: not cached: {_LIB_NAME} not found in the usual library directories")
        return None
    try:
        with open(__file__, "rb") as f:
            code = _sha256(f.read()).hex()  # a changed compiler (an upgrade, a patch) never reads old programs
        try:
            ld_cache: list[int] | None = _identity(os.stat(_LD_CACHE))  # ldconfig ran: dlopen may pick another file
        except FileNotFoundError:
            ld_cache = None
        uname = os.uname()
        material = {
            "format": CACHE_FORMAT,
            "code": code,
            "machine": uname.machine,
            "kernel": uname.release,  # which actions the kernel takes is checked by libseccomp while compiling
            "libseccomp": [lib[0], *_identity(lib[1])],
            "ld_cache": ld_cache,
            "profile": profile,
        }
        text = fastjson.dumps(material)  # the dicts above are built with sorted keys: canonical
        return _sha256(text.encode()).hex(), lib[1]
    except (OSError, UnicodeError, ValueError, TypeError) as exc:
        errors.debug(f"seccomp: not cached: {exc}")
        return None


def cache_key(cfg: Any) -> str | None:
    """The hex SHA-256 naming the cache file of `cfg`, or None when it is not cached (see compile_cached)."""
    found = _key(cfg)
    return None if found is None else found[0]


def compile_cached(cfg: Any, ptr: str = "/linux/seccomp", cache_dir: str | None = None) -> Program:
    """compile_filter, through a cache of compiled programs in `cache_dir` (None: no cache).

    One file per key: the SHA-256 of the canonical JSON of the profile fields compile_filter reads, a format tag,
    the hash of this module's source, the machine and kernel release, and the identity (dev, inode, size, mtime) of
    libseccomp.so.2 and of /etc/ld.so.cache. A hit neither imports cffi nor loads libseccomp. A file or directory
    not owned by the euid, writable by group or others, or not exactly in the format, is a miss (compiled again,
    replaced); failing to write is a debug line. Compile errors are never cached.
    """
    if cache_dir is None:
        return compile_filter(cfg, ptr)
    found = _key(cfg)
    if found is None:
        return compile_filter(cfg, ptr)
    key, lib = found
    prog = _cache_read(cache_dir, key)
    if prog is not None:
        _report_skipped(prog.skipped)
        return prog
    prog = compile_filter(cfg, ptr)
    _cache_write(cache_dir, key, lib, prog)
    return prog


def _trusted(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _encode(key: str, prog: Program) -> bytes:
    skipped = "\0".join(prog.skipped).encode()  # names with NUL are refused: the join is unambiguous
    head = _HEADER.pack(_MAGIC, bytes.fromhex(key), prog.flags, int(prog.listener), len(prog.bpf), len(skipped))
    body = head + prog.bpf + skipped
    return body + _sha256(body)


def _decode(data: bytes, key: str) -> Program | None:
    """The program in a cache file, or None unless every field is exactly as _encode writes it."""
    if len(data) < _HEADER.size + _DIGEST_SIZE:
        return None
    magic, digest, flags, listener, nbpf, nskipped = _HEADER.unpack_from(data)
    if magic != _MAGIC or digest != bytes.fromhex(key):
        return None
    if len(data) != _HEADER.size + nbpf + nskipped + _DIGEST_SIZE or nskipped > _MAX_SKIPPED:
        return None
    if not nbpf or nbpf % SOCK_FILTER_SIZE or nbpf // SOCK_FILTER_SIZE > BPF_MAXINSNS:
        return None
    if listener not in (0, 1) or flags & ~_KNOWN_FLAGS or bool(flags & FLAG_NEW_LISTENER) != bool(listener):
        return None
    if _sha256(data[:-_DIGEST_SIZE]) != data[-_DIGEST_SIZE:]:
        return None
    bpf = data[_HEADER.size : _HEADER.size + nbpf]
    try:
        text = data[_HEADER.size + nbpf : -_DIGEST_SIZE].decode()
    except UnicodeError:
        return None
    return Program(bpf, flags, bool(listener), tuple(text.split("\0")) if text else ())


def _read_exact(fd: int, limit: int) -> bytes:
    chunks = []
    total = 0
    while total < limit:
        chunk = os.read(fd, limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _cache_read(cache_dir: str, key: str) -> Program | None:
    from ocipy import errors

    try:
        dfd = os.open(cache_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not _trusted(os.fstat(dfd)):
            errors.debug(f"seccomp: cache {cache_dir} ignored: not owned by uid {os.geteuid()} or writable by others")
            return None
        try:
            fd = os.open(key, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _trusted(st) or st.st_size > _MAX_FILE:
                errors.debug(f"seccomp: cache file {key} ignored: not a regular file of uid {os.geteuid()} mode 0600")
                return None
            data = _read_exact(fd, st.st_size + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        errors.debug(f"seccomp: cache {cache_dir}: {exc}")
        return None
    finally:
        os.close(dfd)
    prog = _decode(data, key)
    if prog is None:
        errors.debug(f"seccomp: cache file {key} ignored: not in the expected format")
    else:
        errors.debug(f"seccomp: compiled filter read from {os.path.join(cache_dir, key)}")
    return prog


def _loaded(lib: os.stat_result) -> bool:
    """Whether the libseccomp this process has loaded is the file the key names."""
    with open("/proc/self/maps", "rb") as f:
        maps = f.read()
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[5:]
        if path and os.path.basename(path[0]).startswith(b"libseccomp.so"):
            try:
                st = os.stat(path[0])
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (lib.st_dev, lib.st_ino):
                return True
    return False


def _mkdirs(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if not parent or parent == path:
            raise
        _mkdirs(parent)
        os.mkdir(path, 0o700)


def _cache_write(cache_dir: str, key: str, lib: os.stat_result, prog: Program) -> None:
    from ocipy import errors

    try:
        if not _loaded(lib):
            errors.debug(f"seccomp: not cached: the loaded libseccomp is not the {_LIB_NAME} found on disk")
            return
        _mkdirs(os.path.abspath(cache_dir))
        dfd = os.open(cache_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(dfd)
            if st.st_uid != os.geteuid():
                errors.debug(f"seccomp: not cached: {cache_dir} is not owned by uid {os.geteuid()}")
                return
            if st.st_mode & 0o022:
                os.fchmod(dfd, 0o700)
            tmp = f".tmp-{key}-{os.getpid()}"
            try:
                os.unlink(tmp, dir_fd=dfd)  # left by a crashed writer with our pid
            except FileNotFoundError:
                pass
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                try:
                    os.fchmod(fd, 0o600)
                    data = memoryview(_encode(key, prog))
                    while data:
                        data = data[os.write(fd, data) :]
                finally:
                    os.close(fd)
                os.rename(tmp, key, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                os.unlink(tmp, dir_fd=dfd)
                raise
            errors.debug(f"seccomp: compiled filter cached in {os.path.join(cache_dir, key)}")
            _prune(dfd, key)
        finally:
            os.close(dfd)
    except OSError as exc:
        errors.debug(f"seccomp: not cached: {exc}")


def _prune(dfd: int, keep: str) -> None:
    """Keep at most _MAX_ENTRIES programs (the newest) and no stale temporary files."""
    now = time.time_ns()
    entries = []
    with os.scandir(dfd) as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            if entry.name.startswith(".tmp-"):
                if now - st.st_mtime_ns > _STALE_TMP_NS:
                    os.unlink(entry.name, dir_fd=dfd)
            elif entry.name != keep and len(entry.name) == 2 * _DIGEST_SIZE and _is_hex(entry.name):
                entries.append((st.st_mtime_ns, entry.name))
    entries.sort()
    for _mtime, name in entries[: max(0, len(entries) + 1 - _MAX_ENTRIES)]:
        os.unlink(name, dir_fd=dfd)


def _is_hex(name: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in name)
