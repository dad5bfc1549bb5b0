"""The state store: `<root>/<id>/state.json` + `exec.fifo`, a per-container lock, and the derived status.

Layout and rules are fixed by docs/contracts.md. Status is never stored: it is derived on every read from the init's
/proc entry (pid + start time), the exec fifo and the freezer. Stdlib only.

The private `ocipy.cgroup` record read here has this shape (either key may be absent):
`{"v1": {"<controller>": "<abs dir>", ...}, "v2": "<abs dir>"}` -- v1 controller dirs, and the cgroup in the unified
hierarchy (pure v2, or hybrid's /sys/fs/cgroup/unified).
"""

from __future__ import annotations

import errno
import time

from . import posixlite as px
from . import procfs
from .errors import OcipyError

# `typing` costs ~3 ms at import (it pulls in `re`); the lifecycle path needs it only for mypy
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self

OCI_VERSION = "1.3.0"
STATE_FILE = "state.json"
CGROUP_FILE = "cgroup.json"  # create's record of the cgroups it made, until state.json exists
FIFO_FILE = "exec.fifo"
CONFIG_FILE = "config.json"  # the validated config as create saw it: exec's defaults, whatever the bundle does later
ID_MAX = 1024
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"
JOURNAL_KEY = "creating"  # in the private state until create commits: what it has made (docs/contracts.md)
KILL_TIMEOUT = 10.0  # seconds to wait for a SIGKILLed init to exit


def default_root() -> str:
    """`/run/ocipy` for root; `$XDG_RUNTIME_DIR/ocipy` for others when it is set and non-empty."""
    if px.geteuid() != 0:
        xdg = px.getenv("XDG_RUNTIME_DIR", "")
        if xdg:
            return px.join(xdg, "ocipy")
    # Podman calls with XDG_RUNTIME_DIR= and no PATH: the root must not depend on either for root
    return "/run/ocipy"


def validate_id(cid: str) -> None:
    """`^[A-Za-z0-9_+.-]+$`, not `.`/`..`, at most 1024 bytes; checked before the id is ever put in a path."""
    if not cid or cid in (".", "..") or len(cid) > ID_MAX or not _ID_CHARS.issuperset(cid):
        raise OcipyError("invalid container ID format")


# cgroup files in binary: a text-mode open with encoding="ascii" imports the codec module (encodings.ascii), while
# bytes.decode("ascii") is built in.
def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def _write_text(path: str, text: str) -> None:
    with open(path, "wb", buffering=0) as f:
        f.write(text.encode("ascii"))


def _freezer(cgroup: Any) -> tuple[int, str] | None:
    """(1, v1 freezer dir) or (2, unified cgroup dir) from the private cgroup record; None when there is none."""
    if not isinstance(cgroup, dict):
        return None
    v1 = cgroup.get("v1")
    if isinstance(v1, dict) and isinstance(v1.get("freezer"), str):
        return 1, v1["freezer"]
    if isinstance(cgroup.get("v2"), str):
        return 2, cgroup["v2"]
    return None


def _cgroup_dirs(cgroup: Any) -> list[str]:
    """Every cgroup dir the record names: v2 first, then v1 (freezer and pids first: they hold every process)."""
    if not isinstance(cgroup, dict):
        return []
    dirs: list[str] = []
    if isinstance(cgroup.get("v2"), str):
        dirs.append(cgroup["v2"])
    v1 = cgroup.get("v1")
    if isinstance(v1, dict):
        keys = sorted(v1, key=lambda k: (k not in ("freezer", "pids"), k))
        dirs.extend(v1[k] for k in keys if isinstance(v1[k], str))
    return dirs


def _sub_cgroups(top: str) -> list[str]:
    """The cgroup directories below `top`, parents before children."""
    out: list[str] = []
    todo = [top]
    while todo:
        cur = todo.pop()
        try:
            with px.scandir(cur) as it:
                subs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        out.extend(subs)
        todo.extend(subs)
    return out


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
        self._state: dict[str, Any] | None = None
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

    def has_state(self) -> bool:
        try:
            px.stat(STATE_FILE, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def read_state(self) -> dict[str, Any]:
        """The stored state. A directory without state.json is a create that has recorded nothing yet (or died
        before it could): a half-made container with an empty journal (docs/contracts.md, "Recovery")."""
        if self._state is None:
            from . import fastjson as json

            try:
                fd = px.open(
                    STATE_FILE,
                    px.O_RDONLY | px.O_CLOEXEC | px.O_NOFOLLOW,
                    dir_fd=self.fd,
                )
            except FileNotFoundError:
                legacy = self._legacy_cgroup_record()
                journal: dict[str, Any] = {} if legacy is None else {"cgroup": legacy}
                self._state = {"id": self.id, "pid": 0, "ocipy": {JOURNAL_KEY: journal}}
                if legacy is not None:
                    self._state["ocipy"]["cgroup"] = legacy
                return self._state
            with open(fd, "rb") as f:
                raw = f.read()
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise OcipyError(f"{self.state_path}: invalid state: {exc}") from None
            if not isinstance(data, dict):
                raise OcipyError(f"{self.state_path}: invalid state: not an object")
            self._state = data
        return self._state

    def write_state(self, state: dict[str, Any]) -> None:
        """Atomic replace of state.json (see write_file)."""
        from . import fastjson as json

        self.write_file(STATE_FILE, json.dumps(state).encode())
        self._state = state

    def write_file(self, name: str, data: bytes) -> None:
        """Atomically replace a file of the container dir: temp file, fsync, rename, fsync the dir (so a crash
        leaves the old file or the new one, never a torn one)."""
        tmp = f".{name}.{px.getpid()}.tmp"
        try:
            fd = px.open(
                tmp, px.O_WRONLY | px.O_CREAT | px.O_TRUNC | px.O_CLOEXEC | px.O_NOFOLLOW, 0o600, dir_fd=self.fd
            )
            try:
                view = memoryview(data)
                while view:  # a short write (a nearly full disk) is not the end
                    view = view[px.write(fd, view) :]
                px.fsync(fd)
            except BaseException:
                px.close(fd)
                px.unlink(tmp, dir_fd=self.fd)
                raise
            px.close(fd)
            px.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            px.fsync(self.fd)
        except OSError as exc:  # ENOSPC, EDQUOT, EROFS, EIO ...: the file and the reason
            raise _os_error(px.join(self.dir, name), exc) from None

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
    def private(self) -> dict[str, Any]:
        priv = self.read_state().get("ocipy")
        return priv if isinstance(priv, dict) else {}

    @property
    def pid(self) -> int:
        pid = self.read_state().get("pid")
        return pid if isinstance(pid, int) and not isinstance(pid, bool) else 0

    @property
    def starttime(self) -> int | None:
        st = self.private.get("starttime")
        return st if isinstance(st, int) else None

    def init_alive(self) -> bool:
        return self.pid > 0 and procfs.is_alive(self.pid, self.starttime)

    def fifo_exists(self) -> bool:
        try:
            px.stat(FIFO_FILE, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def is_frozen(self) -> bool:
        fz = _freezer(self.private.get("cgroup"))
        if fz is None:
            return False
        version, path = fz
        if version == 1:
            return (_read_text(px.join(path, "freezer.state")) or "").strip() == "FROZEN"
        return (_read_text(px.join(path, "cgroup.freeze")) or "").strip() == "1"

    def journal(self) -> dict[str, Any] | None:
        """What an uncommitted create recorded (`ocipy.creating`); None once create has committed."""
        j = self.private.get(JOURNAL_KEY)
        return j if isinstance(j, dict) else None

    def status(self) -> str:
        if self.journal() is not None:
            # half-made: `creating` while its create runs (holds the lock), `stopped` once that create is gone
            return CREATING if self._locked_elsewhere() else STOPPED
        if not self.init_alive():
            return STOPPED
        if self.fifo_exists():
            return CREATED
        if self.is_frozen():
            return PAUSED
        return RUNNING

    def oci_state(self) -> dict[str, Any]:
        """The OCI state in runc's key order; pid 0 once stopped, annotations omitted when empty."""
        st = self.read_state()
        status = self.status()
        out: dict[str, Any] = {
            "ociVersion": st.get("ociVersion", OCI_VERSION),
            "id": self.id,
            "pid": self.pid if status not in (STOPPED, CREATING) else 0,
            "status": status,
            "bundle": st.get("bundle", ""),
            "rootfs": st.get("rootfs", ""),
            "created": st.get("created", ""),
        }
        if st.get("annotations"):
            out["annotations"] = st["annotations"]
        out["owner"] = st.get("owner", "")
        return out

    # --- cgroup: freezer and member processes --------------------------------------------------------------------
    def has_freezer(self) -> bool:
        return _freezer(self.private.get("cgroup")) is not None

    def set_frozen(self, frozen: bool, timeout: float = 2.0) -> None:
        """Freeze or thaw the container's cgroup and wait until the kernel says it is done."""
        fz = _freezer(self.private.get("cgroup"))
        if fz is None:
            raise OcipyError("container has no cgroup to freeze")
        version, path = fz
        deadline = time.monotonic() + timeout
        try:
            if version == 1:
                want = "FROZEN" if frozen else "THAWED"
                state_file = px.join(path, "freezer.state")
                _write_text(state_file, want)
                # v1 may sit in FREEZING while tasks are in uninterruptible sleep: write again until it settles
                while (_read_text(state_file) or "").strip() != want:
                    if time.monotonic() > deadline:
                        if frozen:
                            _write_text(state_file, "THAWED")
                        raise OcipyError(f"{state_file}: did not reach {want}")
                    time.sleep(0.001)
                    _write_text(state_file, want)
            else:
                _write_text(px.join(path, "cgroup.freeze"), "1" if frozen else "0")
                events = px.join(path, "cgroup.events")
                want_line = "frozen 1" if frozen else "frozen 0"
                while want_line not in (_read_text(events) or "").splitlines():
                    if time.monotonic() > deadline:
                        raise OcipyError(f"{events}: did not reach {want_line!r}")
                    time.sleep(0.001)
        except OSError as exc:
            raise OcipyError(f"{'freeze' if frozen else 'thaw'} {path}: {exc.strerror or exc}") from None

    def cgroup_record(self) -> Any:
        """The cgroups the container owns (create made them): the private state's `cgroup`."""
        return self.private.get("cgroup")

    def _legacy_cgroup_record(self) -> Any:
        """cgroup.json: where creates before the journal recorded their cgroups until state.json existed."""
        raw = self.read_file(CGROUP_FILE)
        if raw is None:
            return None
        from . import fastjson

        try:
            return fastjson.loads(raw)
        except ValueError:
            return None

    def cgroup_pids(self) -> list[int] | None:
        """Host pids in the container's cgroup; None when no cgroup is recorded (or none can be read)."""
        for d in _cgroup_dirs(self.cgroup_record()):
            text = _read_text(px.join(d, "cgroup.procs"))
            if text is not None:
                pids = [int(x) for x in text.split()]
                # and the sub-cgroups the container made (deepest last; a pid appears once per hierarchy)
                for sub in _sub_cgroups(d):
                    pids.extend(int(x) for x in (_read_text(px.join(sub, "cgroup.procs")) or "").split())
                return list(dict.fromkeys(pids))
        return None

    def remove_cgroups(self) -> None:
        """rmdir the recorded cgroup dirs and the sub-cgroups the container made in them, deepest first (only empty
        ones can go: a busy one is retried briefly while exiting tasks drain, then left as it is)."""
        for d in dict.fromkeys(_cgroup_dirs(self.cgroup_record())):
            try:
                px.rmdir(d)  # the common case: no sub-cgroups, no task left
                continue
            except FileNotFoundError:
                continue
            except OSError:
                pass  # sub-cgroups, or tasks still draining: the walk below
            deadline = time.monotonic() + 1.0
            while True:
                busy = False
                for sub in [*reversed(_sub_cgroups(d)), d]:
                    try:
                        px.rmdir(sub)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        busy = busy or exc.errno == errno.EBUSY
                if not busy or time.monotonic() > deadline:
                    break
                time.sleep(0.005)

    # --- recovery of a half-made container (docs/contracts.md, "Recovery") --------------------------------------
    def kill_all(self, sig: int = 9) -> None:
        """Signal every process in the owned cgroups (v2: cgroup.kill first, then each listed pid)."""
        record = self.cgroup_record()
        if isinstance(record, dict) and isinstance(record.get("v2"), str) and sig == 9:
            try:
                _write_text(px.join(record["v2"], "cgroup.kill"), "1")
            except OSError:
                pass  # older kernels: the loop below
        for pid in self.cgroup_pids() or []:
            try:
                fd = px.pidfd_open(pid)
            except OSError:
                continue
            try:
                procfs.send_signal(fd, sig)
            finally:
                px.close(fd)

    def undo_create(self) -> None:
        """Undo what an uncommitted create made, whatever instant it died at, then remove the directory. The caller
        holds the lock (so that create is gone). Order: processes (the recorded init, everything in the owned
        cgroups: the init joins them before it forks), then the cgroups (owned and planned: rmdir only takes
        empty ones), then the directory (the fifo and the state with it). Net devices and mounts live in the
        init's namespaces and go with its last process."""
        journal = self.journal() or {}
        init = procfs.pidfd_open(self.pid, self.starttime) if self.pid > 0 else None
        try:
            if init is not None:
                procfs.send_signal(init, 9)
            deadline = time.monotonic() + KILL_TIMEOUT
            while True:
                self.kill_all(9)
                if not self.cgroup_pids() or time.monotonic() > deadline:
                    break
                time.sleep(0.002)
            if init is not None and not procfs.wait_exit(init, max(0.0, deadline - time.monotonic())):
                raise OcipyError(f"container init (pid {self.pid}) did not exit after SIGKILL")
        finally:
            if init is not None:
                px.close(init)
        self.remove_cgroups()
        planned = journal.get("cgroup")
        for d in reversed(_cgroup_dirs(planned)):
            try:
                px.rmdir(d)
            except OSError:
                pass  # not made, or not empty: then not ours
        self.remove()


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
        """Make `<root>/<id>` (0700) and return it locked; EEXIST -> `container with given ID already exists`,
        unless what is there is a half-made container whose create is gone: that is undone first (recovery)."""
        validate_id(cid)
        path = px.join(self.root, cid)
        import os  # create only: the lifecycle verbs stay off `os` (ocipy/posixlite.py)

        for _ in range(3):
            try:
                os.makedirs(self.root, mode=0o700, exist_ok=True)
                px.mkdir(path, 0o700)
                break
            except FileExistsError:
                self._recover(cid)
            except OSError as exc:
                raise _os_error(path, exc) from None
        else:
            raise OcipyError("container with given ID already exists")
        c = Container(self, cid, self._open_fd(cid))
        c.lock()
        return c

    def _recover(self, cid: str) -> None:
        """An existing `<root>/<id>`: undo it when it is a half-made container nobody works on, else EEXIST."""
        try:
            old = self.open(cid)
        except OcipyError:
            return  # gone meanwhile: try mkdir again
        try:
            if not old.try_lock() or old.journal() is None:
                raise OcipyError("container with given ID already exists")
            old.undo_create()
        finally:
            old.close()

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
