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
    from ocipy import bundle as bundle_mod
    from ocipy import hooks as hooks_mod

    cid = args.container_id
    store = Store.from_args(args)
    store.check_id(cid)
    bundle_dir = os.path.abspath(getattr(args, "bundle", None) or ".")
    spec, rootfs, document = bundle_mod.load_bundle(bundle_dir)
    if spec.process is None:
        raise OcipyError("/process: restore needs a process")
    terminal = bool(spec.process.terminal)
    criu = swrk.find_criu(getattr(args, "criu", None))
    hooks = document.get("hooks") or {}
    hook_lists = {k: list(hooks.get(k) or []) for k in ("prestart", "createRuntime", *KEPT_HOOKS)}
    detach = bool(getattr(args, "detach", False))

    with contextlib.ExitStack() as undo:
        dirs = common.open_dirs(args, create_images=False)
        undo.callback(dirs.close)
        try:
            os.stat("inventory.img", dir_fd=dirs.images_fd)
        except FileNotFoundError:
            raise OcipyError(f"--image-path {dirs.images}: no checkpoint there (no inventory.img)") from None
        log_path = dirs.log_path("restore.log")
        recorded = externals.read_json(dirs.images_fd, externals.EXTERNALS_FILE)
        descriptors = externals.read_json(dirs.images_fd, externals.DESCRIPTORS_FILE)
        opts = common.common_opts(args, dirs, document, "restore.log")

        container = store.create_dir(cid)  # EEXIST: "container with given ID already exists", nothing touched
        undo.callback(container.remove)
        undo.enter_context(container.lock())
        if terminal and not getattr(args, "console_socket", None):
            raise OcipyError("/process/terminal: terminal is true but no --console-socket was given")
        console = handoff.connect_console(args.console_socket) if getattr(args, "console_socket", None) else None
        if console is not None:
            undo.callback(console.close)

        from ocipy.cgroups.driver import NO_CGROUP, apply_deferred, create_cgroups

        # the container's cgroups with its resources, as create makes them (pids included: nothing clones here)
        cgroup = create_cgroups(
            cid,
            spec.linux.cgroups_path if spec.linux else None,
            dict((document.get("linux") or {}).get("resources") or {}),
            systemd=bool(getattr(args, "systemd_cgroup", False)),
            rootless=os.geteuid() != 0,
        )
        cgroup_record = cgroup.record if cgroup is not NO_CGROUP else None
        if cgroup is not NO_CGROUP:
            undo.callback(cgroup.remove)
            apply_deferred(cgroup)
            container.write_file(CGROUP_FILE, fastjson.dumps(cgroup.record).encode())

        _prepare_mountpoints(document, rootfs, bundle_dir)
        root = os.path.join(container.dir, CRIU_ROOT)
        os.mkdir(root, 0o755)
        undo.callback(_unmount, root)  # before the directory goes (registered after container.remove)
        _bind(rootfs, root)

        with open("/proc/self/mountinfo") as f:
            host_mounts = externals.parse_mountinfo(f.read())
        mounts_record = recorded.get("mounts") if isinstance(recorded, dict) else None
        ext = externals.for_restore(document, bundle_dir, mounts_record, cgroup_record, host_mounts)
        netns_fds, join_ns = _namespaces(document)
        for fd in netns_fds.values():
            undo.callback(os.close, fd)
        inherit, extra, to_close = _inherit(recorded if isinstance(recorded, dict) else None, descriptors, netns_fds)
        for fd in to_close:
            undo.callback(os.close, fd)
        opts.update(
            root=root,
            rst_sibling=True,
            evasive_devices=True,
            ext_mnt=[{"key": k, "val": v} for k, v in ext],
            inherit_fd=inherit,
            join_ns=join_ns,
        )
        for flag, key in (("lsm_profile", "lsm_profile"), ("lsm_mount_context", "lsm_mount_context")):
            if getattr(args, flag, None):
                opts[key] = str(getattr(args, flag))

        restored = {"pid": 0}

        def notify(script: str, pid: int, fds: list[int]) -> None:
            if script == "setup-namespaces":
                state = _oci_state(cid, spec, bundle_dir, "creating", pid)
                for kind in ("prestart", "createRuntime"):
                    if hook_lists.get(kind):
                        hooks_mod.run_hooks(kind, hook_lists[kind], state)
            elif script == "post-restore":
                restored["pid"] = pid
            elif script == "orphan-pts-master":
                if console is None or not fds:
                    raise OcipyError("the checkpoint has a terminal: restore needs --console-socket")
                try:
                    socket.send_fds(console, [b"/dev/ptmx"], fds[:1])
                except OSError as exc:
                    raise OcipyError(f"console socket: {os_reason(exc)}") from None

        errors.debug(f"criu restore of {cid} from {dirs.images}")
        try:
            with swrk.Session(criu, extra_fds=extra) as session:
                cgroup.add(session.pid)
                opts["cg_root"] = _cg_roots(session.pid)
                resp = session.call({"type": messages.RESTORE, "opts": opts}, notify)
        except swrk.CriuFailed as exc:
            raise common.failure("restore", exc, log_path) from None
        pid = int((resp.get("restore") or {}).get("pid", 0) or restored["pid"])
        if pid <= 0:
            raise OcipyError(f"criu restore: no pid in CRIU's answer (log: {log_path})")
        starttime = procfs.starttime(pid)
        undo.callback(_kill, pid, starttime)
        _unmount(root)

        private: dict[str, Any] = {
            "starttime": starttime,
            "hooks": {k: v for k, v in hook_lists.items() if k in KEPT_HOOKS and v},
            "rootless": os.geteuid() != 0,
            "restored": {"images": dirs.images},
        }
        if cgroup_record is not None:
            private["cgroup"] = cgroup_record
        state = State(
            cid,
            oci_version=spec.oci_version,
            pid=pid,
            bundle=bundle_dir,
            rootfs=rootfs,
            created=errors.rfc3339_nano(),
            annotations=dict(spec.annotations) if spec.annotations else None,
            private=private,
        )
        container.write_file(CONFIG_FILE, fastjson.dumps(document).encode())
        container.write_state(state)
        if getattr(args, "pid_file", None):
            handoff.write_pid_file(args.pid_file, pid)
        if hook_lists.get("poststart"):
            hooks_mod.run_hooks("poststart", hook_lists["poststart"], _oci_state(cid, spec, bundle_dir, "running", pid))
        undo.pop_all()
    dirs.close()
    if console is not None:
        console.close()
    container.close()  # the lock goes with the fd
    errors.debug(f"restored {cid} with init pid {pid}")
    if detach:
        return 0
    return _wait_and_delete(store, cid, pid)


def _wait_and_delete(store: Store, cid: str, pid: int) -> int:
    """Foreground restore: pass signals on, wait for the restored init (our child), then remove the container."""

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)

    for sig in foreground.FORWARDED:
        signal.signal(sig, forward)
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
