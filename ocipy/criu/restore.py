"""`ocipy restore`: a container brought back from a CRIU image under an id that must not exist yet
(docs/checkpoint.md).

Like `create` + `start` in one: the bundle's config is validated, the container's cgroups are made and CRIU is put
into them (so the restored tasks land there), the rootfs is bound on `<state dir>/criu-root` for CRIU's `--root`,
and CRIU restores the process tree as a sibling of itself, i.e. as a child of this process. Hooks: prestart and
createRuntime when CRIU has made the namespaces (its `setup-namespaces` notification, as runc), poststart once the
process runs; createContainer and startContainer do not run (the process is past that point). Every step that
changes the host registers its undo, so a failed restore leaves no state directory, cgroup, mount or process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import stat
from typing import Any

from ocipy import errors, fastjson, foreground, handoff, procfs
from ocipy.criu import common, externals, messages, swrk
from ocipy.errors import OcipyError, os_reason
from ocipy.state import KEPT_HOOKS, State
from ocipy.store import CGROUP_FILE, CONFIG_FILE, Container, Store

MS_BIND, MS_REC, MNT_DETACH = 0x1000, 0x4000, 2
CRIU_ROOT = "criu-root"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _bind(source: str, target: str) -> None:
    if _libc().mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None) != 0:
        err = ctypes.get_errno()
        raise OcipyError(f"bind {source} on {target}: {os_reason(err)}")


def _unmount(target: str) -> None:
    _libc().umount2(target.encode(), MNT_DETACH)
    with contextlib.suppress(OSError):
        os.rmdir(target)


def _ensure_mountpoint(rootfs: str, dest: str, is_file: bool) -> None:
    """Make a missing mount point in the rootfs (a fresh rootfs, as after Podman's --import), never following a
    symlink: one of those is left for CRIU to refuse with its own words."""
    parts = [p for p in externals.clean(dest).split("/") if p]
    if not parts:
        return
    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if last and is_file:
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644, dir_fd=fd))
                    return
                os.mkdir(name, 0o755, dir_fd=fd)
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if last or not stat.S_ISDIR(st.st_mode):
                return
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError as exc:
        errors.debug(f"restore: mount point {dest}: {exc}")
    finally:
        os.close(fd)


def _prepare_mountpoints(document: dict[str, Any], rootfs: str, bundle: str) -> None:
    mounts = [m for m in document.get("mounts") or [] if isinstance(m, dict) and m.get("destination")]
    tmpfs = [externals.clean(str(m["destination"])) for m in mounts if m.get("type") == "tmpfs"]
    for m in mounts:
        dest = externals.clean(str(m["destination"]))
        if m.get("type") == "cgroup" or any(dest.startswith(t + "/") for t in tmpfs):
            continue  # CRIU restores a tmpfs whole, and the cgroup mounts live on one (or appear with /sys)
        is_file = False
        if externals.is_bind(m) and m.get("source"):
            src = str(m["source"])
            src = src if src.startswith("/") else os.path.join(bundle, src)
            is_file = os.path.exists(src) and not os.path.isdir(src)
        _ensure_mountpoint(rootfs, dest, is_file)


def _cg_roots(pid: int) -> list[dict[str, str]]:
    """CRIU's `--cgroup-root` per hierarchy: where its own process now is (the container's cgroups), as runc."""
    roots = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f.read().splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                roots.append({"ctrl": parts[1], "path": parts[2]})
    return roots


def _inherit(
    recorded: dict[str, Any] | None, descriptors: Any, netns_fds: dict[str, int]
) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """inherit_fd entries, the extra fds (4, 5, ... in CRIU) and the fds to close afterwards."""
    inherit: list[dict[str, Any]] = []
    extra: list[int] = []
    close: list[int] = []
    if isinstance(descriptors, list):
        for i, name in enumerate(descriptors[:3]):
            if isinstance(name, str) and name.startswith("pipe:"):
                inherit.append({"key": name, "fd": i})  # the pipe our caller gives us at the same number
    for entry in (recorded or {}).get("stdio") or []:
        if not isinstance(entry, dict) or not entry.get("key"):
            continue
        fd = _reopen_stdio(entry)
        close.append(fd)
        inherit.append({"key": entry["key"], "fd": 4 + len(extra)})
        extra.append(fd)
    for key, fd in netns_fds.items():
        inherit.append({"key": key, "fd": 4 + len(extra)})
        extra.append(fd)
    return inherit, extra, close


def _reopen_stdio(entry: dict[str, Any]) -> int:
    """A file of the host the init had as stdio (external to CRIU, which reopens what it is given through /proc and
    seeks it): /dev/null again; a regular file that still exists again at its path, as it was opened (a log goes on
    being appended to); else /dev/null (never the caller's fd: a pipe there cannot take the file position)."""
    path = str(entry.get("path") or "")
    if not entry.get("null") and path.startswith("/"):
        flags = int(entry.get("flags", os.O_WRONLY) or 0) & (os.O_ACCMODE | os.O_APPEND)
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError:
            pass
        else:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return fd
            os.close(fd)
    return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)


def _namespaces(document: dict[str, Any]) -> tuple[dict[str, int], list[dict[str, str]]]:
    """Open the joined network/pid namespaces (external at dump); the other joined ones become join_ns."""
    fds: dict[str, int] = {}
    join: list[dict[str, str]] = []
    try:
        for kind, path in externals.joined_namespaces(document).items():
            if kind in externals.EXT_NS_KEYS:
                try:
                    fds[externals.EXT_NS_KEYS[kind]] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as exc:
                    raise OcipyError(f"/linux/namespaces ({kind} {path}): {os_reason(exc)}") from None
            elif kind == "cgroup":
                raise OcipyError(f"/linux/namespaces (cgroup {path}): CRIU cannot join a cgroup namespace")
            elif kind in externals.CRIU_NS_NAMES:
                join.append({"ns": externals.CRIU_NS_NAMES[kind], "ns_file": path})
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds, join


def _oci_state(cid: str, spec: Any, bundle: str, status: str, pid: int) -> dict[str, Any]:
    state: dict[str, Any] = {
        "ociVersion": spec.oci_version,
        "id": cid,
        "status": status,
        "pid": pid,
        "bundle": bundle,
    }
    if spec.annotations:
        state["annotations"] = dict(spec.annotations)
    return state


def _kill(pid: int, starttime: int | None) -> None:
    pidfd = procfs.pidfd_open(pid, starttime)
    if pidfd is None:
        return
    try:
        procfs.send_signal(pidfd, signal.SIGKILL)
        procfs.wait_exit(pidfd, 10.0)
    finally:
        os.close(pidfd)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def restore(args: Any) -> int:
    """Restore the container, then (foreground) wait for it and remove it; each step is one method of `_Restore`."""
    r = _Restore(args)
    with contextlib.ExitStack() as undo:
        r.undo = undo
        r.open_images()
        r.make_container()
        r.make_cgroups()
        r.bind_root()
        opts = r.criu_opts()
        pid = r.run_criu(opts)
        r.record(pid)
        undo.pop_all()
    r.close()
    errors.debug(f"restored {r.cid} with init pid {pid}")
    if r.detach:
        return 0
    return _wait_and_delete(r.store, r.cid, pid)


class _Restore:
    """One restore: the bundle read, then the steps `restore` calls in order. Each step that changes the host
    registers its undo on `undo`, so a failure at any step leaves nothing."""

    undo: contextlib.ExitStack
    container: Container
    dirs: common.Dirs
    cgroup: Any
    cgroup_record: dict[str, Any] | None
    console: socket.socket | None
    log_path: str
    recorded: Any
    descriptors: Any
    opts: dict[str, Any]
    root: str
    extra_fds: list[int]
    starttime: int | None

    def __init__(self, args: Any) -> None:
        from ocipy import bundle as bundle_mod

        self.args = args
        self.cid: str = args.container_id
        self.store = Store.from_args(args)
        self.store.check_id(self.cid)
        self.bundle = os.path.abspath(getattr(args, "bundle", None) or ".")
        self.spec, self.rootfs, self.document = bundle_mod.load_bundle(self.bundle)
        if self.spec.process is None:
            raise OcipyError("/process: restore needs a process")
        self.terminal = bool(self.spec.process.terminal)
        self.criu = swrk.find_criu(getattr(args, "criu", None))
        hooks = self.document.get("hooks") or {}
        self.hook_lists = {k: list(hooks.get(k) or []) for k in ("prestart", "createRuntime", *KEPT_HOOKS)}
        self.detach = bool(getattr(args, "detach", False))
        self.restored_pid = 0

    def open_images(self) -> None:
        """The image directory (a checkpoint must be there), CRIU's log, what the dump recorded beside it."""
        self.dirs = common.open_dirs(self.args, create_images=False)
        self.undo.callback(self.dirs.close)
        try:
            os.stat("inventory.img", dir_fd=self.dirs.images_fd)
        except FileNotFoundError:
            raise OcipyError(f"--image-path {self.dirs.images}: no checkpoint there (no inventory.img)") from None
        self.log_path = self.dirs.log_path("restore.log")
        self.recorded = externals.read_json(self.dirs.images_fd, externals.EXTERNALS_FILE)
        self.descriptors = externals.read_json(self.dirs.images_fd, externals.DESCRIPTORS_FILE)
        self.opts = common.common_opts(self.args, self.dirs, self.document, "restore.log")

    def make_container(self) -> None:
        """The state directory, locked (EEXIST: "container with given ID already exists", nothing touched), and the
        console socket when the process has a terminal."""
        self.container = self.store.create_dir(self.cid)
        self.undo.callback(self.container.remove)
        self.undo.enter_context(self.container.lock())
        sock = getattr(self.args, "console_socket", None)
        if self.terminal and not sock:
            raise OcipyError("/process/terminal: terminal is true but no --console-socket was given")
        self.console = handoff.connect_console(sock) if sock else None
        if self.console is not None:
            self.undo.callback(self.console.close)

    def make_cgroups(self) -> None:
        """The container's cgroups with its resources, as create makes them (pids included: nothing clones here)."""
        from ocipy.cgroups.driver import NO_CGROUP, apply_deferred, create_cgroups

        spec = self.spec
        self.cgroup = create_cgroups(
            self.cid,
            spec.linux.cgroups_path if spec.linux else None,
            dict((self.document.get("linux") or {}).get("resources") or {}),
            systemd=bool(getattr(self.args, "systemd_cgroup", False)),
            rootless=os.geteuid() != 0,
        )
        self.cgroup_record = self.cgroup.record if self.cgroup is not NO_CGROUP else None
        if self.cgroup is not NO_CGROUP:
            self.undo.callback(self.cgroup.remove)
            apply_deferred(self.cgroup)
            self.container.write_file(CGROUP_FILE, fastjson.dumps(self.cgroup.record).encode())

    def bind_root(self) -> None:
        """The rootfs (its mount points made) bound on `<state dir>/criu-root`, CRIU's `--root`."""
        _prepare_mountpoints(self.document, self.rootfs, self.bundle)
        self.root = os.path.join(self.container.dir, CRIU_ROOT)
        os.mkdir(self.root, 0o755)
        self.undo.callback(_unmount, self.root)  # before the directory goes (registered after container.remove)
        _bind(self.rootfs, self.root)

    def criu_opts(self) -> dict[str, Any]:
        """CRIU's options: what is external (mounts, namespaces, stdio), the namespaces to join, the LSM labels."""
        with open("/proc/self/mountinfo") as f:
            host_mounts = externals.parse_mountinfo(f.read())
        recorded = self.recorded if isinstance(self.recorded, dict) else None
        mounts_record = recorded.get("mounts") if recorded else None
        ext = externals.for_restore(self.document, self.bundle, mounts_record, self.cgroup_record, host_mounts)
        netns_fds, join_ns = _namespaces(self.document)
        for fd in netns_fds.values():
            self.undo.callback(os.close, fd)
        inherit, self.extra_fds, to_close = _inherit(recorded, self.descriptors, netns_fds)
        for fd in to_close:
            self.undo.callback(os.close, fd)
        opts = dict(self.opts)
        opts.update(
            root=self.root,
            rst_sibling=True,
            evasive_devices=True,
            ext_mnt=[{"key": k, "val": v} for k, v in ext],
            inherit_fd=inherit,
            join_ns=join_ns,
        )
        for flag in ("lsm_profile", "lsm_mount_context"):
            if getattr(self.args, flag, None):
                opts[flag] = str(getattr(self.args, flag))
        return opts

    def notify(self, script: str, pid: int, fds: list[int]) -> None:
        """CRIU's notifications: the hooks once the namespaces exist, the restored pid, the terminal's master."""
        from ocipy import hooks as hooks_mod

        if script == "setup-namespaces":
            state = _oci_state(self.cid, self.spec, self.bundle, "creating", pid)
            for kind in ("prestart", "createRuntime"):
                if self.hook_lists.get(kind):
                    hooks_mod.run_hooks(kind, self.hook_lists[kind], state)
        elif script == "post-restore":
            self.restored_pid = pid
        elif script == "orphan-pts-master":
            if self.console is None or not fds:
                raise OcipyError("the checkpoint has a terminal: restore needs --console-socket")
            try:
                socket.send_fds(self.console, [b"/dev/ptmx"], fds[:1])
            except OSError as exc:
                raise OcipyError(f"console socket: {os_reason(exc)}") from None

    def run_criu(self, opts: dict[str, Any]) -> int:
        """`criu swrk` in the container's cgroups restores the tree as our child; its init's pid (killed on undo)."""
        errors.debug(f"criu restore of {self.cid} from {self.dirs.images}")
        try:
            with swrk.Session(self.criu, extra_fds=self.extra_fds) as session:
                self.cgroup.add(session.pid)
                opts["cg_root"] = _cg_roots(session.pid)
                resp = session.call({"type": messages.RESTORE, "opts": opts}, self.notify)
        except swrk.CriuFailed as exc:
            raise common.failure("restore", exc, self.log_path) from None
        pid = int((resp.get("restore") or {}).get("pid", 0) or self.restored_pid)
        if pid <= 0:
            raise OcipyError(f"criu restore: no pid in CRIU's answer (log: {self.log_path})")
        self.starttime = procfs.starttime(pid)
        self.undo.callback(_kill, pid, self.starttime)
        _unmount(self.root)
        return pid

    def record(self, pid: int) -> None:
        """The state record and config, the pid file, then poststart: the container exists, running."""
        spec = self.spec
        private: dict[str, Any] = {
            "starttime": self.starttime,
            "hooks": {k: v for k, v in self.hook_lists.items() if k in KEPT_HOOKS and v},
            "rootless": os.geteuid() != 0,
            "restored": {"images": self.dirs.images},
        }
        if self.cgroup_record is not None:
            private["cgroup"] = self.cgroup_record
        state = State(
            self.cid,
            oci_version=spec.oci_version,
            pid=pid,
            bundle=self.bundle,
            rootfs=self.rootfs,
            created=errors.rfc3339_nano(),
            annotations=dict(spec.annotations) if spec.annotations else None,
            private=private,
        )
        self.container.write_file(CONFIG_FILE, fastjson.dumps(self.document).encode())
        self.container.write_state(state)
        if getattr(self.args, "pid_file", None):
            handoff.write_pid_file(self.args.pid_file, pid)
        if self.hook_lists.get("poststart"):
            running = _oci_state(self.cid, spec, self.bundle, "running", pid)
            from ocipy import hooks as hooks_mod

            hooks_mod.run_hooks("poststart", self.hook_lists["poststart"], running)

    def close(self) -> None:
        """After success: the fds this process no longer needs; the lock goes with the state dir's fd."""
        self.dirs.close()
        if self.console is not None:
            self.console.close()
        self.container.close()


def _wait_and_delete(store: Store, cid: str, pid: int) -> int:
    """Foreground restore: pass signals on, wait for the restored init (our child), then remove the container."""

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)

    for sig in foreground.FORWARDED:
        signal.signal(sig, forward)
    foreground.collect_from_now()  # the command's work is done; a wait may last days (cli.entry's GC policy)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            status = 0
            break
    for sig in foreground.FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code
    with contextlib.suppress(OcipyError):
        c = store.open_locked(cid)
        try:
            _remove_stopped(c)
        finally:
            c.close()
    return code


def _remove_stopped(c: Container) -> None:
    from ocipy.criu.dump import destroy

    destroy(c)
