"""The state store: `<root>/<id>/state.json` + `exec.fifo`, a per-container lock, and the derived status.

Layout and rules are fixed by docs/contracts.md. The record is an `ocipy.state.State` (its fields and the lifecycle
rules live in ocipy/state.py); this module alone reads and writes it. Status is never stored: it is derived on every read from the init's
/proc entry (pid + start time), the exec fifo and the freezer. Stdlib only.

The private `ocipy.cgroup` record is kept here and interpreted only by its cgroup driver (`Container.cgroup()`,
ocipy/cgroups/driver.py).
"""

from __future__ import annotations

import errno

from . import posixlite as px
from . import procfs
from .errors import OcipyError
from .state import CREATED, OCI_VERSION, PAUSED, RUNNING, STOPPED, State, Status

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self

    from .cgroups.driver import Driver

__all__ = ["CREATED", "OCI_VERSION", "PAUSED", "RUNNING", "STOPPED", "Container", "State", "Status", "Store"]

STATE_FILE = "state.json"
CGROUP_FILE = "cgroup.json"  # create's record of the cgroups it made, until state.json exists
FIFO_FILE = "exec.fifo"
CONFIG_FILE = "config.json"  # the validated config as create saw it: exec's defaults, whatever the bundle does later
ID_MAX = 1024
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")


def default_root() -> str:
    """`/run/ocipy` for root; `$XDG_RUNTIME_DIR/ocipy` when rootless (ocipy/rootless.py, runc's rule)."""
    from .rootless import default_root as rootless_default_root

    return rootless_default_root()


def validate_id(cid: str) -> None:
    """`^[A-Za-z0-9_+.-]+$`, not `.`/`..`, at most 1024 bytes; checked before the id is ever put in a path."""
    if not cid or cid in (".", "..") or len(cid) > ID_MAX or not _ID_CHARS.issuperset(cid):
        raise OcipyError("invalid container ID format")


class _Lock:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError:
            pass  # the fd is already closed: the lock went with it


class Container:
    """One container's directory. Open it with `Store.open` or `Store.create_dir`; close with `close()`."""

    def __init__(self, store: Store, cid: str, dirfd: int) -> None:
        self.store = store
        self.id = cid
        self.dir = px.join(store.root, cid)
        self.fd = dirfd
        self._state: State | None = None

    # --- files -------------------------------------------------------------------------------------------------
    @property
    def fifo_path(self) -> str:
        return px.join(self.dir, FIFO_FILE)

    @property
    def state_path(self) -> str:
        return px.join(self.dir, STATE_FILE)

    def close(self) -> None:
        if self.fd >= 0:
            px.close(self.fd)
            self.fd = -1

    def lock(self) -> _Lock:
        """Exclusive flock on the directory fd, held until unlocked, `close()` or process exit.

        Returns a context manager, so a caller that must release early (create before it returns) can `with` it.
        """
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return _Lock(self.fd)

    def has_state(self) -> bool:
        try:
            px.stat(STATE_FILE, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def read_state(self) -> State:
        """The stored state; a directory without a readable state.json is no container (`container does not exist`)."""
        if self._state is None:
            from . import fastjson as json

            try:
                fd = px.open(
                    STATE_FILE,
                    px.O_RDONLY | px.O_CLOEXEC | px.O_NOFOLLOW,
                    dir_fd=self.fd,
                )
            except FileNotFoundError:
                raise OcipyError("container does not exist") from None
            with open(fd, "rb") as f:
                raw = f.read()
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise OcipyError(f"{self.state_path}: invalid state: {exc}") from None
            if not isinstance(data, dict):
                raise OcipyError(f"{self.state_path}: invalid state: not an object")
            self._state = State.from_json(self.id, data)
        return self._state

    def write_state(self, state: State) -> None:
        """Atomic replace of state.json (see write_file)."""
        from . import fastjson as json

        self.write_file(STATE_FILE, json.dumps(state.to_json()).encode())
        self._state = state

    def write_file(self, name: str, data: bytes) -> None:
        """Atomically replace a file of the container dir: temp file, fsync, rename, fsync the dir (so a crash
        leaves the old file or the new one, never a torn one)."""
        tmp = f".{name}.{px.getpid()}.tmp"
        fd = px.open(tmp, px.O_WRONLY | px.O_CREAT | px.O_TRUNC | px.O_CLOEXEC | px.O_NOFOLLOW, 0o600, dir_fd=self.fd)
        try:
            px.write(fd, data)
            px.fsync(fd)
        except BaseException:
            px.close(fd)
            px.unlink(tmp, dir_fd=self.fd)
            raise
        px.close(fd)
        px.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        px.fsync(self.fd)

    def read_file(self, name: str) -> bytes | None:
        """A private file of the container dir, None when missing."""
        try:
            fd = px.open(name, px.O_RDONLY | px.O_CLOEXEC | px.O_NOFOLLOW, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        with open(fd, "rb") as f:
            return f.read()

    def remove(self) -> None:
        """Remove everything in the directory, then the directory itself."""
        _clear_dir(self.fd)
        try:
            px.rmdir(self.dir)
        except FileNotFoundError:
            pass
        self._state = None

    # --- derived facts -------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.read_state().pid

    @property
    def starttime(self) -> int | None:
        return self.read_state().starttime

    def init_alive(self) -> bool:
        return self.pid > 0 and procfs.is_alive(self.pid, self.starttime)

    def fifo_exists(self) -> bool:
        try:
            px.stat(FIFO_FILE, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def status(self) -> Status:
        if not self.init_alive():
            return STOPPED
        if self.fifo_exists():
            return CREATED
        if self.cgroup().is_frozen():
            return PAUSED
        return RUNNING

    def oci_state(self) -> dict[str, Any]:
        """The OCI state with the status derived now (`state`, the hooks' stdin)."""
        return self.read_state().oci(self.status())

    # --- cgroups (owned by ocipy/cgroups/driver.py) -------------------------------------------------------------
    def cgroup_record(self) -> Any:
        """The container's cgroups: from the state, or, for a directory a killed create left before writing its
        state, from the record create writes as soon as it has made them (so `delete` can still remove them)."""
        if self.has_state():
            return self.read_state().cgroup
        raw = self.read_file(CGROUP_FILE)
        if raw is None:
            return None
        from . import fastjson

        try:
            return fastjson.loads(raw)
        except ValueError:
            return None

    def cgroup(self) -> Driver:
        """The driver of the container's cgroups (`NO_CGROUP` when it has none)."""
        from .cgroups.driver import NO_CGROUP, NO_CGROUP_ROOTLESS, driver_for

        drv = driver_for(self.cgroup_record())
        if drv is NO_CGROUP and self.has_state() and self.read_state().rootless:
            return NO_CGROUP_ROOTLESS  # its errors say why: created rootless without a cgroup it could write
        return drv


def _os_error(path: str, exc: OSError) -> OcipyError:
    return OcipyError(f"{path}: {(exc.strerror or str(exc)).lower()}")


def _clear_dir(dirfd: int) -> None:
    for name in px.listdir(dirfd):
        try:
            px.unlink(name, dir_fd=dirfd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            sub = px.open(
                name,
                px.O_RDONLY | px.O_DIRECTORY | px.O_NOFOLLOW | px.O_CLOEXEC,
                dir_fd=dirfd,
            )
            try:
                _clear_dir(sub)
            finally:
                px.close(sub)
            px.rmdir(name, dir_fd=dirfd)


class Store:
    def __init__(self, root: str | None = None) -> None:
        self.root_given = bool(root)
        self.root = px.abspath(root) if root else default_root()

    @classmethod
    def from_args(cls, args: Any) -> Store:
        """The store the global `--root` names (or the default root)."""
        return cls(getattr(args, "root", None))

    @staticmethod
    def check_id(cid: str) -> None:
        validate_id(cid)

    def _open_fd(self, cid: str) -> int:
        validate_id(cid)
        return px.open(
            px.join(self.root, cid),
            px.O_RDONLY | px.O_DIRECTORY | px.O_NOFOLLOW | px.O_CLOEXEC,
        )

    @property
    def seccomp_cache(self) -> str:
        """Compiled seccomp programs (ocipy.seccomp.compile_cached); `@` keeps it out of the id namespace."""
        return px.join(self.root, "@cache", "seccomp")

    def create_dir(self, cid: str) -> Container:
        """Make `<root>/<id>` (0700) and return it locked; EEXIST -> `container with given ID already exists`."""
        validate_id(cid)
        path = px.join(self.root, cid)
        try:
            import os  # create only: the lifecycle verbs stay off `os` (ocipy/posixlite.py)

            os.makedirs(self.root, mode=0o700, exist_ok=True)
        except OSError as exc:
            from .rootless import explain_root_error

            raise OcipyError(explain_root_error(self.root, exc, self.root_given)) from None
        try:
            px.mkdir(path, 0o700)
        except FileExistsError:
            raise OcipyError("container with given ID already exists") from None
        except PermissionError as exc:
            from .rootless import explain_root_error

            raise OcipyError(explain_root_error(self.root, exc, self.root_given)) from None
        except OSError as exc:
            raise _os_error(path, exc) from None
        c = Container(self, cid, self._open_fd(cid))
        c.lock()
        return c

    def open(self, cid: str) -> Container:
        """An existing container dir (not yet locked); missing -> `container does not exist`."""
        try:
            fd = self._open_fd(cid)
        except (FileNotFoundError, NotADirectoryError):
            raise OcipyError("container does not exist") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink where a container dir should be is not a container
                raise OcipyError("container does not exist") from None
            raise _os_error(px.join(self.root, cid), exc) from None
        return Container(self, cid, fd)

    def open_locked(self, cid: str) -> Container:
        """`open` + `lock`, and require a state.json (a half-made dir is no container)."""
        c = self.open(cid)
        try:
            c.lock()
            c.read_state()
        except BaseException:
            c.close()
            raise
        return c

    def ids(self) -> list[str]:
        """Ids with a state.json, sorted; half-made dirs (create in progress or crashed) are left out."""
        try:
            names = px.listdir(self.root)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                validate_id(name)
            except OcipyError:
                continue
            if px.isfile(px.join(self.root, name, STATE_FILE)):
                out.append(name)
        return sorted(out)
