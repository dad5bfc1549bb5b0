"""The cache of compiled seccomp programs: `compile_cached` keeps what `ocipy.seccomp.compile_filter` made in files,
one per key, so that a profile seen before costs neither libseccomp nor the rule loop (docs/security.md says why that
is safe). `ocipy.seccomp.compile_cached` is the name callers use.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import time

from ocipy import seccomp
from ocipy.seccomp import (
    BPF_MAXINSNS,
    FLAG_LOG,
    FLAG_NEW_LISTENER,
    FLAG_SPEC_ALLOW,
    FLAG_WAIT_KILLABLE_RECV,
    SOCK_FILTER_SIZE,
    Program,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Any

CACHE_FORMAT = "ocipy-seccomp-cache/2"  # bump when the file layout or what the key covers changes
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


def _sha256_new() -> Any:
    # the builtin module hashlib falls back to: `import hashlib` loads OpenSSL's _hashlib (~2.5 ms)
    for name in ("_sha256", "_sha2"):  # Python 3.11, 3.12+
        try:
            return __import__(name).sha256()
        except ImportError:
            continue
    import hashlib

    return hashlib.sha256()


def _sha256(data: bytes) -> bytes:
    h = _sha256_new()
    h.update(data)
    return bytes(h.digest())


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


def _code_digest() -> str:
    """The hash of the compiler's source: this module, ocipy/seccomp.py and the precompiled declarations."""
    h = _sha256_new()
    here = os.path.dirname(__file__)
    for name in ("seccomp.py", "seccompcache.py", "_seccomp_ffi.py"):  # by path: a hit loads no declarations
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    return str(h.hexdigest())


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
        code = _code_digest()  # a changed compiler (an upgrade, a patch) never reads old programs
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
        return seccomp.compile_filter(cfg, ptr)
    found = _key(cfg)
    if found is None:
        return seccomp.compile_filter(cfg, ptr)
    key, lib = found
    prog = _cache_read(cache_dir, key)
    if prog is not None:
        seccomp.report_skipped(prog.skipped)
        return prog
    prog = seccomp.compile_filter(cfg, ptr)
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
