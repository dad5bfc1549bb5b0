"""The Python face of the compiled shim (`ocipy._shim_c`, built from shim/ by cffi): the only module importing it.

- `init_memfd()`: a fresh sealed memfd holding the embedded `ocipy-init` (CVE-2019-5736: the host copy can never
  be written through /proc/PID/exe).
- `spawn(exec_fd, argv, fdmap)`: fork + execveat of `exec_fd` with exactly the fds of `fdmap` ((src, dst) pairs,
  overlaps handled), default signal dispositions, an empty signal mask and an empty environment. Returns
  (pid, pidfd); a failure before the exec raises OSError with the child's errno.
- `idmapped_tree(...)`, `userns_fd(uid_map, gid_map)`: detached (idmapped) mount trees the runtime makes for the
  init, and the user namespace carrying a mount's own id mappings (shim/userns.c).

Importing this module loads only the extension (no cffi compiler, no pycparser).
"""

from __future__ import annotations

from posix import strerror  # not `os` (~1 ms on every exec: ocipy/posixlite.py)

import ocipy._shim_c as _shim_c  # noqa: PLR0402  (mypy cannot see a from-import of the compiled module)

TYPE_CHECKING = False  # the idiom mypy understands, without importing typing (this module must import fast)
if TYPE_CHECKING:
    from collections.abc import Sequence

_ffi = _shim_c.ffi
_lib = _shim_c.lib


def _raise_errno(err: int, what: str) -> None:
    raise OSError(err, f"{what}: {strerror(err)}")


def init_memfd() -> int:
    """A new close-on-exec memfd with ocipy-init, sealed against writes, growth, shrinking and new seals."""
    fd = int(_lib.ocipy_init_memfd())
    if fd < 0:
        _raise_errno(_ffi.errno, "memfd for ocipy-init")
    return fd


def init_size() -> int:
    """Size in bytes of the embedded ocipy-init binary."""
    return int(_lib.ocipy_init_size())


def spawn(exec_fd: int, argv: Sequence[str | bytes], fdmap: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """Start `exec_fd` (executed with execveat AT_EMPTY_PATH) with `argv`; the child's fds are exactly the dst
    of each (src, dst) pair. Returns (pid, pidfd); the pidfd is close-on-exec and owned by the caller."""
    if not argv:
        raise ValueError("argv must not be empty")
    raw = [a.encode() if isinstance(a, str) else bytes(a) for a in argv]
    if any(b"\0" in a for a in raw):
        raise ValueError("argv contains a NUL byte")
    keep = [_ffi.new("char[]", a) for a in raw]
    c_argv = _ffi.new("char *[]", [*keep, _ffi.NULL])
    flat = [fd for pair in fdmap for fd in pair]
    c_map = _ffi.new("int[]", flat or [0])
    pidfd = _ffi.new("int *")
    err = _ffi.new("int *")
    pid = int(_lib.ocipy_spawn(exec_fd, c_argv, c_map, len(fdmap), pidfd, err))
    if pid < 0:
        _raise_errno(int(err[0]), "spawn")
    return pid, int(pidfd[0])


def idmapped_tree(path: str, userns_fd: int, clone_recursive: bool, idmap_recursive: bool) -> int:
    """A detached, idmapped copy of the mount at `path` (its fd, close-on-exec), for the init to attach: with its
    submounts when `clone_recursive` (rbind), idmapped too when `idmap_recursive` (ridmap). `userns_fd` -1: a plain
    detached copy, not idmapped."""
    fd = int(_lib.ocipy_idmapped_tree(path.encode(), userns_fd, int(clone_recursive), int(idmap_recursive)))
    if fd < 0:
        raise OSError(-fd, strerror(-fd), path)
    return fd


_USERNS_STEPS = {1: "clone(CLONE_NEWUSER)", 2: "uid_map", 3: "setgroups", 4: "gid_map", 5: "open ns/user"}


def userns_fd(uid_map: str, gid_map: str) -> int:
    """An fd (close-on-exec) of a new user namespace carrying these uid_map/gid_map texts, for idmapping a mount with
    mappings of its own; the helper process that made it is already reaped. OSError names the step that failed
    (`.filename`: "uid_map", "gid_map", ...)."""
    step = _ffi.new("int *")
    fd = int(_lib.ocipy_userns_fd(uid_map.encode(), gid_map.encode(), step))
    if fd < 0:
        raise OSError(-fd, strerror(-fd), _USERNS_STEPS.get(int(step[0]), "user namespace"))
    return fd


def bpf(cmd: int, attr: bytearray) -> int:
    """bpf(2): `attr` is the `union bpf_attr` the caller laid out (the kernel writes its answers back into it)."""
    rc = int(_lib.ocipy_bpf(cmd, _ffi.from_buffer(attr), len(attr)))
    if rc < 0:
        err = int(_ffi.errno)
        raise OSError(err, strerror(err))
    return rc


def address(buf: bytes | bytearray) -> tuple[object, int]:
    """The address of `buf`'s bytes, for a pointer field of a kernel struct, and the object that keeps it valid: hold
    it until the system call has returned."""
    keep = _ffi.from_buffer(buf)
    return keep, int(_ffi.cast("uintptr_t", keep))


def grace_start(fd: int) -> bool:
    """shim/graceperiod.c: a native thread writes "0" into `fd` (a cgroup.procs listing this process), then again every
    3 ms until grace_stop(), and closes it. False (and `fd` still the caller's) if no thread could be started."""
    return int(_lib.ocipy_grace_start(fd)) == 0


def grace_stop() -> None:
    _lib.ocipy_grace_stop()
