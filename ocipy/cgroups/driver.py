"""The one door to a container's cgroups: the driver interface, the cgroupfs driver, and where a driver is chosen.

Every verb reaches cgroups through a `Driver` and nothing else (a test checks that no module outside
`ocipy/cgroups/` opens a file under /sys/fs/cgroup). Two ways in:

- `create_cgroups(cid, cgroups_path, resources, systemd=...)` at `create`: choose the driver (`--systemd-cgroup`
  or not: `driver_name`), make the cgroups, apply the resources but `pids`; returns the driver, whose `record` goes
  into the private state.
- `driver_for(record)` for an existing container: the record names its driver (`"driver"`; absent = cgroupfs);
  `None` gives `NO_CGROUP`, which answers "no cgroup" to every question.

To add a driver (systemd): a module in this package with a `Driver` subclass, one row in `DRIVERS`, and
`driver_name` returning its name for `--systemd-cgroup`. No verb changes.

The cgroupfs driver serves cgroup v1, v2 and hybrid hosts with one class: its record names a directory per
hierarchy (`{"v1": {"<controller or name=X>": "<abs dir>"}, "v2": "<abs dir>", "path": ..., "resources": {...}}`),
and the per-hierarchy writers live in `v1.py` and `v2.py`.

This module is on the lifecycle path (pause, resume, kill, delete, ps): stdlib and posixlite only; `manager`,
`stats` and `layout` (which import `os` and `typing`) are imported inside the methods that need them.
"""

import time

from .. import posixlite as px
from .. import procfs
from ..errors import OcipyError, os_reason
from . import freezer
from .freezer import write_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SIGKILL = 9
CGROUPFS = "cgroupfs"
# driver name -> (module, class): the selection point. The systemd driver adds its row here.
DRIVERS: dict[str, tuple[str, str]] = {
    CGROUPFS: ("ocipy.cgroups.driver", "Cgroupfs"),
    "systemd": ("ocipy.cgroups.sddriver", "Systemd"),  # --systemd-cgroup: a transient scope unit (systemd.py)
}


def sub_cgroups(top: str) -> list[str]:
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


def rmdir_tree(top: str, timeout: float = 1.0) -> None:
    """rmdir `top` and the cgroups below it, deepest first (only empty ones can go: a busy one is retried briefly
    while exiting tasks drain, then left as it is)."""
    try:
        px.rmdir(top)  # the common case: no sub-cgroups, no task left
        return
    except FileNotFoundError:
        return
    except OSError:
        pass  # sub-cgroups, or tasks still draining: the walk below
    deadline = time.monotonic() + timeout
    while True:
        busy = False
        for sub in [*reversed(sub_cgroups(top)), top]:
            try:
                px.rmdir(sub)
            except FileNotFoundError:
                pass
            except OSError as exc:
                import errno  # a busy cgroup only: `errno` is ~0.06 ms of every lifecycle verb

                busy = busy or exc.errno == errno.EBUSY
        if not busy or time.monotonic() > deadline:
            return
        time.sleep(0.005)


class Driver:
    """What every cgroup driver does for a container. `record` is the JSON kept in the private state."""

    name = ""

    def __init__(self, record: "dict[str, Any]") -> None:
        self.record = record

    # --- the lifecycle path ------------------------------------------------------------------------------------
    def dirs(self) -> list[str]:
        """The container's cgroup directories, in the order the init joins them."""
        raise NotImplementedError

    def procs_files(self) -> list[str]:
        """The cgroup.procs files a process writes itself into to join the container's cgroups."""
        return [px.join(d, "cgroup.procs") for d in self.dirs()]

    def join_files(self, sub: list[str]) -> list[str]:
        """The cgroup.procs files `exec` joins: the container's, or those of the `--cgroup` sub-cgroups named
        (`path`, or `ctrl[,ctrl]:path`, relative to the container's cgroups)."""
        if sub:
            raise OcipyError("--cgroup: the container has no cgroup")
        return []

    def pids(self) -> list[int] | None:
        """Host pids in the container's cgroups and sub-cgroups; None when none can be read."""
        raise NotImplementedError

    def populated(self) -> bool:
        """Whether any process is left in the cgroups or their sub-cgroups: `pids` without listing them."""
        return bool(self.pids())

    def has_freezer(self) -> bool:
        raise NotImplementedError

    def freezer_dir(self) -> str | None:
        """The cgroup directory whose freezer holds every process (CRIU's `freeze_cgroup`); None without one."""
        raise NotImplementedError

    def add(self, pid: int) -> None:
        """Move `pid` into the container's cgroups (restore: CRIU's swrk before it restores the tree)."""
        for procs in self.procs_files():
            try:
                write_text(procs, str(pid))
            except OSError as exc:
                raise OcipyError(f"{procs}: {os_reason(exc)}") from None

    def is_frozen(self) -> bool:
        raise NotImplementedError

    def freeze(self, frozen: bool, timeout: float = 2.0) -> None:
        """Freeze or thaw, and wait until the kernel says it is done."""
        raise NotImplementedError

    def kill(self, sig: int) -> bool:
        """Signal every process in the cgroups (frozen meanwhile, so none forks past it); False without a cgroup."""
        raise NotImplementedError

    def remove(self) -> None:
        """Remove the cgroups and the sub-cgroups the container made (what is still busy is left)."""
        raise NotImplementedError

    # --- off the lifecycle path ----------------------------------------------------------------------------------
    def apply(self, resources: "dict[str, Any]", update: bool = False) -> None:
        """Write `resources` (linux.resources as JSON); errors name the field (OcipyError)."""
        raise NotImplementedError

    def stats(self) -> "dict[str, Any]":
        """runc's `events --stats` data."""
        raise NotImplementedError

    def oom_kills(self) -> int:
        raise NotImplementedError

    @classmethod
    def create(cls, cid: str, cgroups_path: str | None, resources: "dict[str, Any]", systemd: bool) -> "Driver":
        """Make the cgroups of a new container and apply `resources` but `pids` (CgroupError naming the field)."""
        raise NotImplementedError


class _NoCgroup(Driver):
    """A container without cgroups (rootless without a delegated cgroup, or a record that could not be read).
    `rootless`: it was created rootless, which is why (the messages say so: ocipy/rootless.py)."""

    def __init__(self, record: "dict[str, Any]", rootless: bool = False) -> None:
        super().__init__(record)
        self.rootless = rootless

    def _none(self, what: str) -> OcipyError:
        from ..rootless import no_cgroup_message

        return OcipyError(no_cgroup_message(what, {"rootless": self.rootless}))

    def dirs(self) -> list[str]:
        return []

    def pids(self) -> list[int] | None:
        return None

    def has_freezer(self) -> bool:
        return False

    def freezer_dir(self) -> str | None:
        return None

    def is_frozen(self) -> bool:
        return False

    def freeze(self, frozen: bool, timeout: float = 2.0) -> None:
        raise self._none("freeze")

    def kill(self, sig: int) -> bool:
        return False

    def remove(self) -> None:
        pass

    def apply(self, resources: "dict[str, Any]", update: bool = False) -> None:
        raise self._none("update")

    def stats(self) -> "dict[str, Any]":
        raise self._none("read statistics from")

    def oom_kills(self) -> int:
        return 0


NO_CGROUP: Driver = _NoCgroup({})
NO_CGROUP_ROOTLESS: Driver = _NoCgroup({}, rootless=True)  # what a container created rootless without one has


class Cgroupfs(Driver):
    """Directories under /sys/fs/cgroup written directly: v1 (one dir per controller), v2, or both (hybrid)."""

    name = CGROUPFS

    def dirs(self) -> list[str]:
        out: list[str] = []
        if isinstance(self.record.get("v2"), str):
            out.append(self.record["v2"])
        for d in (self.record.get("v1") or {}).values():
            if isinstance(d, str) and d not in out:
                out.append(d)
        return out

    def join_files(self, sub: list[str]) -> list[str]:
        if not sub:
            return self.procs_files()
        v1 = self.record.get("v1") if isinstance(self.record.get("v1"), dict) else {}
        v2 = self.record.get("v2") if isinstance(self.record.get("v2"), str) else None
        chosen: dict[str, str] = {}  # cgroup dir -> sub path
        for item in sub:
            ctrls, sep, path = item.partition(":") if ":" in item else ("", "", item)
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise OcipyError(f"--cgroup {item}: the sub-cgroup must be a relative path beneath the container's")
            if not sep:
                if len(sub) != 1:
                    raise OcipyError(f"--cgroup {item}: missing <controller>: prefix")
                for d in self.dirs():
                    chosen[d] = path
                continue
            for ctrl in ctrls.split(","):
                cdir: Any = v2 if ctrl in ("", "unified") and v2 else v1.get(ctrl) if v1 else None
                if not isinstance(cdir, str):
                    raise OcipyError(f"--cgroup {item}: the container has no {ctrl or 'unified'} cgroup")
                chosen[cdir] = path
        out = []
        for d in self.dirs():
            target = px.join(d, chosen[d]) if d in chosen else d
            if not px.isdir(target):
                raise OcipyError(f"--cgroup: {target}: no such cgroup")
            out.append(px.join(target, "cgroup.procs"))
        return out

    def _scan_dirs(self) -> list[str]:
        """Where to look for member processes: v2 first, then v1 (freezer and pids first: they hold every one)."""
        dirs: list[str] = []
        if isinstance(self.record.get("v2"), str):
            dirs.append(self.record["v2"])
        v1 = self.record.get("v1")
        if isinstance(v1, dict):
            keys = sorted(v1, key=lambda k: (k not in ("freezer", "pids"), k))
            dirs.extend(v1[k] for k in keys if isinstance(v1[k], str))
        return dirs

    def pids(self) -> list[int] | None:
        for d in self._scan_dirs():
            text = px.read_text(px.join(d, "cgroup.procs"))
            if text is not None:
                pids = [int(x) for x in text.split()]
                # and the sub-cgroups the container made (deepest last; a pid appears once per hierarchy)
                for sub in sub_cgroups(d):
                    pids.extend(int(x) for x in (px.read_text(px.join(sub, "cgroup.procs")) or "").split())
                return list(dict.fromkeys(pids))
        return None

    def populated(self) -> bool:
        # v2 answers for the whole subtree in one small file: no sub-cgroup walk (a cgroup dir has ~30 entries to
        # scan), ~0.07 ms of every delete. `pids` reads v2 first too, so both see the same processes.
        v2 = self.record.get("v2")
        if isinstance(v2, str):
            events = px.read_text(px.join(v2, "cgroup.events"))
            if events is not None:
                return "populated 1" in events.splitlines()
        return bool(self.pids())

    def has_freezer(self) -> bool:
        return freezer.where(self.record) is not None

    def freezer_dir(self) -> str | None:
        fz = freezer.where(self.record)
        return None if fz is None else fz[1]

    def is_frozen(self) -> bool:
        return freezer.is_frozen(self.record)

    def freeze(self, frozen: bool, timeout: float = 2.0) -> None:
        freezer.freeze(self.record, frozen, timeout)

    def kill(self, sig: int) -> bool:
        if self.pids() is None:
            return False
        v2 = self.record.get("v2")
        if sig == SIGKILL and isinstance(v2, str):
            # cgroup v2 kills the whole subtree at once (frozen or not, no pid races); the loop below still covers v1
            try:
                write_text(px.join(v2, "cgroup.kill"), "1")
            except OSError:
                pass
        freeze = self.has_freezer() and not self.is_frozen()
        if freeze:
            self.freeze(True)
        try:
            for pid in self.pids() or []:
                try:
                    fd = px.pidfd_open(pid)
                except ProcessLookupError:
                    continue
                try:
                    procfs.send_signal(fd, sig)
                finally:
                    px.close(fd)
        finally:
            if freeze:
                self.freeze(False)
        return True

    def remove(self) -> None:
        for d in dict.fromkeys(self._scan_dirs()):
            rmdir_tree(d)

    def apply(self, resources: "dict[str, Any]", update: bool = False) -> None:
        from . import layout, manager

        manager.apply(layout.detect(), self.record, resources, update=update)  # a CgroupError names the field

    def stats(self) -> "dict[str, Any]":
        from . import stats

        return stats.collect(self.record)

    def oom_kills(self) -> int:
        from . import stats

        return stats.oom_kills(self.record)

    @classmethod
    def create(cls, cid: str, cgroups_path: str | None, resources: "dict[str, Any]", systemd: bool) -> Driver:
        """Resolve cgroupsPath, make the cgroups and apply `resources` but `pids` (see `create_cgroups`)."""
        return cls._make(cid, cgroups_path, resources, systemd, rootless=False)

    @classmethod
    def create_rootless(cls, cid: str, cgroups_path: str | None, resources: "dict[str, Any]", systemd: bool) -> Driver:
        """`create` for a rootless caller: only the hierarchies this user may write, limits none of them can hold
        fail naming the field, devices ignored (ocipy/cgroups/rootless.py); nothing writable: NO_CGROUP."""
        return cls._make(cid, cgroups_path, resources, systemd, rootless=True)

    @classmethod
    def _make(
        cls, cid: str, cgroups_path: str | None, resources: "dict[str, Any]", systemd: bool, rootless: bool
    ) -> Driver:
        from . import layout, manager, paths

        lay = layout.detect()
        target = paths.resolve(cgroups_path, cid, lay, systemd=systemd)
        if rootless:
            from . import rootless as rootless_cg

            target, resources = rootless_cg.restrict(lay, target, resources)
            if not target.dirs():
                return NO_CGROUP
        # pids last (apply_deferred): the init still has to clone once inside the cgroup, and 0 is a valid limit
        now = {k: v for k, v in resources.items() if k != "pids"}
        record = manager.create(lay, target, now)
        record["resources"] = resources
        return cls(record)


def driver_name(systemd: bool) -> str:
    """The driver `create` uses. `--systemd-cgroup` still means cgroupfs with a systemd-style cgroupsPath
    (`slice:prefix:name`) until the systemd driver is added to DRIVERS."""
    return "systemd" if systemd and "systemd" in DRIVERS else CGROUPFS


def driver_class(name: str) -> type[Driver]:
    module, cls = DRIVERS.get(name, DRIVERS[CGROUPFS])
    if module == __name__:
        found: type[Driver] = globals()[cls]
        return found
    return getattr(__import__(module, fromlist=[cls]), cls)  # type: ignore[no-any-return]


def driver_for(record: object) -> Driver:
    """The driver of an existing container, from the record in its private state (None or junk: NO_CGROUP)."""
    if not isinstance(record, dict):
        return NO_CGROUP
    return driver_class(str(record.get("driver") or CGROUPFS))(record)


def planned_record(cid: str, cgroups_path: str | None, systemd: bool) -> "dict[str, Any] | None":
    """The cgroupfs record of the dirs `create_cgroups` is about to make (every hierarchy), for create's recovery
    journal (docs/contracts.md, "Recovery"): recovery only rmdirs them. None when the path does not resolve
    (create_cgroups then says why)."""
    from . import CgroupError, layout, manager, paths

    try:
        return manager.record_of(paths.resolve(cgroups_path, cid, layout.detect(), systemd=systemd))
    except (CgroupError, OSError):
        return None


def create_cgroups(
    cid: str, cgroups_path: str | None, resources: "dict[str, Any]", *, systemd: bool, rootless: bool
) -> Driver:
    """Make the container's cgroups before its init exists; on failure nothing made stays (CgroupError naming the
    field). Rootless without resources: a cgroup that cannot be made is skipped (NO_CGROUP), as runc does."""
    from . import CgroupError

    cls = driver_class(driver_name(systemd))
    try:
        if rootless and cls.name == CGROUPFS:
            drv = Cgroupfs.create_rootless(cid, cgroups_path, resources, systemd)
        else:
            drv = cls.create(cid, cgroups_path, resources, systemd)
    except CgroupError as exc:
        if rootless and not resources and "permission denied" in exc.message:
            from .. import errors

            errors.debug(f"rootless: no cgroup: {exc}")
            return NO_CGROUP
        raise
    if cls.name != CGROUPFS and drv.record:
        drv.record["driver"] = cls.name
    return drv


def apply_deferred(drv: Driver) -> None:
    """The pids limit, once the init is set up (it had to clone inside the cgroup first)."""
    pids = (drv.record.get("resources") or {}).get("pids")
    if pids:
        drv.apply({"pids": pids}, update=True)
