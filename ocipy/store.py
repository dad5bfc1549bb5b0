"""The state store: `<root>/<id>/state.json` + `exec.fifo`, a per-container lock, and the derived status.

Layout and rules are fixed by docs/contracts.md. The record is an `ocipy.state.State` (its fields and the lifecycle
rules live in ocipy/state.py); only the store (this module and ocipy/storemake.py) reads and writes it. Status is never stored: it is derived on every read from the init's
/proc entry (pid + start time), the exec fifo and the freezer. Stdlib only.

What only create and delete do (a new directory and its recovery, the atomic writes, undoing and removing one) is in
ocipy/storemake.py, which the methods here call: the verbs that only read do not load it.

The private `ocipy.cgroup` record is kept here and interpreted only by its cgroup driver (`Container.cgroup()`,
ocipy/cgroups/driver.py).
"""

from . import posixlite as px
from . import procfs
from .errors import OcipyError, os_reason
from .state import CREATED, CREATING, OCI_VERSION, PAUSED, RUNNING, STOPPED, State, Status

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self

    from .cgroups.driver import Driver

__all__ = [
    "CREATED",
    "CREATING",
    "JOURNAL_KEY",
    "OCI_VERSION",
    "PAUSED",
    "RUNNING",
    "STOPPED",
    "Container",
    "State",
    "Status",
    "Store",
]

STATE_FILE = "state.json"
CGROUP_FILE = "cgroup.json"  # where creates before the journal recorded their cgroups until state.json existed
JOURNAL_KEY = "creating"  # private state key, until create commits: what it has made (docs/contracts.md)
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

    def __enter__(self) -> "Self":
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError:
            pass  # the fd is already closed: the lock went with it


class Container:
    """One container's directory. Open it with `Store.open` or `Store.create_dir`; close with `close()`."""

    def __init__(self, store: "Store", cid: str, dirfd: int) -> None:
        self.store = store
        self.id = cid
        self.dir = px.join(store.root, cid)
        self.fd = dirfd
        self._state: State | None = None
        self._locked = False  # this process holds the dir's lock (through self.fd)

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
        self._locked = True
        return _Lock(self.fd)

    def try_lock(self) -> bool:
        """The lock if nobody holds it; False when another command (a create in progress) does."""
        import fcntl

        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._locked = True
        return True

    def _locked_elsewhere(self) -> bool:
        """Another command holds the lock (probed through a fresh open of the dir, so our own lock is untouched)."""
        if self._locked:
            return False
        import fcntl

        try:
            fd = px.open(self.dir, px.O_RDONLY | px.O_DIRECTORY | px.O_NOFOLLOW | px.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            px.close(fd)
        return False

    def read_state(self) -> State:
        """The stored state. A directory without state.json is a create that has recorded nothing yet (or died
        before it could): a half-made container with an empty journal (docs/contracts.md, "Recovery")."""
        if self._state is None:
            from . import recordjson

            try:
                fd = px.open(
                    STATE_FILE,
                    px.O_RDONLY | px.O_CLOEXEC | px.O_NOFOLLOW,
                    dir_fd=self.fd,
                )
            except FileNotFoundError:
                return self._unrecorded()
            try:
                raw = px.read_all(fd)
            finally:
                px.close(fd)
            if not raw:
                # a first write lost to a power cut (write_file does not fsync): nothing recorded, as without a file
                return self._unrecorded()
            try:
                data = recordjson.loads(raw)
            except ValueError as exc:
                raise OcipyError(f"{self.state_path}: invalid state: {exc}") from None
            if not isinstance(data, dict):
                raise OcipyError(f"{self.state_path}: invalid state: not an object")
            self._state = State.from_json(self.id, data)
        return self._state

    def _unrecorded(self) -> State:
        """The state of a directory whose create recorded nothing: half-made, with an empty journal."""
        legacy = self._legacy_cgroup_record()
        private: dict[str, Any] = {JOURNAL_KEY: {}}
        if legacy is not None:
            private["cgroup"] = legacy  # made before the journal existed: owned
        self._state = State(self.id, private=private)
        return self._state

    def write_state(self, state: State) -> None:
        """Atomic replace of state.json (see write_file)."""
        from . import fastjson as json

        self.write_file(STATE_FILE, json.dumps(state.to_json()).encode())
        self._state = state

    def write_file(self, name: str, data: bytes) -> None:
        """Atomically replace a file of the container dir (ocipy/storemake.py `write_file`)."""
        from .storemake import write_file

        write_file(self, name, data)

    def read_file(self, name: str) -> bytes | None:
        """A private file of the container dir, None when missing."""
        try:
            fd = px.open(name, px.O_RDONLY | px.O_CLOEXEC | px.O_NOFOLLOW, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        try:
            return px.read_all(fd)
        finally:
            px.close(fd)

    def remove(self) -> None:
        """Remove everything in the directory, then the directory itself (ocipy/storemake.py)."""
        from .storemake import remove

        remove(self)

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

    def journal(self) -> "dict[str, Any] | None":
        """What an uncommitted create recorded (`ocipy.creating`); None once create has committed."""
        j = self.read_state().private.get(JOURNAL_KEY)
        return j if isinstance(j, dict) else None

    def status(self) -> Status:
        if self.journal() is not None:
            # half-made: `creating` while its create runs (holds the lock), `stopped` once that create is gone
            return CREATING if self._locked_elsewhere() else STOPPED
        if not self.init_alive():
            return STOPPED
        # paused before created, as runc derives it: a created container can be paused too (and resumed to created)
        from .cgroups import freezer  # not the driver module: every driver freezes through these files (freezer.py)

        if freezer.is_frozen(self.cgroup_record()):
            return PAUSED
        if self.fifo_exists():
            return CREATED
        return RUNNING

    def oci_state(self) -> "dict[str, Any]":
        """The OCI state with the status derived now (`state`, the hooks' stdin); a half-made container shows pid 0."""
        status = self.status()
        out = self.read_state().oci(status)
        if self.journal() is not None:
            out["pid"] = 0
        return out

    # --- cgroups (owned by ocipy/cgroups/driver.py) -------------------------------------------------------------
    def cgroup_record(self) -> "Any":
        """The cgroups the container owns (create made them): the private state's `cgroup`."""
        return self.read_state().cgroup

    def _legacy_cgroup_record(self) -> "Any":
        """cgroup.json: where creates before the journal recorded their cgroups until state.json existed."""
        raw = self.read_file(CGROUP_FILE)
        if raw is None:
            return None
        from . import recordjson

        try:
            return recordjson.loads(raw)
        except ValueError:
            return None

    def freeze(self, frozen: bool) -> None:
        """Freeze or thaw the container (pause, resume) through ocipy/cgroups/freezer.py, which every driver freezes
        through (a test checks): the driver module (~0.2 ms) is loaded only to word why there is no freezer."""
        from .cgroups import freezer

        record = self.cgroup_record()
        if freezer.where(record) is None:
            self.cgroup().freeze(frozen)  # raises: no cgroup (worded for a rootless container) or no freezer
            return
        freezer.freeze(record, frozen)

    def cgroup(self) -> "Driver":
        """The driver of the container's cgroups (`NO_CGROUP` when it has none)."""
        from .cgroups.driver import NO_CGROUP, NO_CGROUP_ROOTLESS, driver_for

        drv = driver_for(self.cgroup_record())
        if drv is NO_CGROUP and self.read_state().rootless:
            return NO_CGROUP_ROOTLESS  # its errors say why: created rootless without a cgroup it could write
        return drv

    # --- recovery of a half-made container (docs/contracts.md, "Recovery") ----------------------------------------
    def undo_create(self) -> None:
        """Undo what an uncommitted create made, then remove the directory (ocipy/storemake.py `undo_create`)."""
        from .storemake import undo_create

        undo_create(self)


def _os_error(path: str, exc: OSError) -> OcipyError:
    return OcipyError(f"{path}: {os_reason(exc)}")


class Store:
    def __init__(self, root: str | None = None) -> None:
        self.root_given = bool(root)
        self.root = px.abspath(root) if root else default_root()

    @classmethod
    def from_args(cls, args: "Any") -> "Store":
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
        """Make `<root>/<id>` and return it locked (ocipy/storemake.py `create_dir`: recovery of a half-made one)."""
        from .storemake import create_dir

        return create_dir(self, cid)

    def open(self, cid: str) -> Container:
        """An existing container dir (not yet locked); missing -> `container does not exist`."""
        try:
            fd = self._open_fd(cid)
        except (FileNotFoundError, NotADirectoryError):
            raise OcipyError("container does not exist") from None
        except OSError as exc:
            import errno  # only on this path: `errno` is ~0.06 ms of every lifecycle verb

            if exc.errno == errno.ELOOP:  # a symlink where a container dir should be is not a container
                raise OcipyError("container does not exist") from None
            raise _os_error(px.join(self.root, cid), exc) from None
        return Container(self, cid, fd)

    def open_locked(self, cid: str) -> Container:
        """`open` + `lock`, and the state read (a half-made container reads as one with an open journal)."""
        c = self.open(cid)
        try:
            c.lock()
            c.read_state()
        except BaseException:
            c.close()
            raise
        return c

    def ids(self) -> list[str]:
        """Every container directory, sorted: half-made ones too (`creating` or `stopped`, docs/cli.md)."""
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
            try:
                if px.stat(px.join(self.root, name), follow_symlinks=False).st_mode & 0o170000 == 0o040000:
                    out.append(name)
            except OSError:
                continue
        return sorted(out)
