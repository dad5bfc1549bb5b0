"""Create a container: runtime.md's lifecycle steps 1-5, from a validated bundle to an init waiting, fully set up,
for `start`. `ocipy create` and `ocipy run` call `create`.

The steps, in order (`_Create.run`): load and check the bundle; make the state directory (locked) and the exec
fifo; connect the console and pidfd sockets and lay out the fds the init inherits; make the cgroups (the driver in
ocipy/cgroups/driver.py); compile the plan (ocipy/plan/); start ocipy-init and answer its messages (id maps and
idmapped trees, the pid, the create hooks, a seccomp listener) until it is set up; record the state.

Every step that changes the host registers its undo on an undo stack (`_Undo`), so a failed create leaves no process,
state directory or fifo behind (mounts live in the container's own mount namespace and vanish with its processes).
"""

from __future__ import annotations

import errno
import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect`, `typing` imports `re`, `socket` converts its constants to enums
    import contextlib  # (~15 ms of create's imports together): annotations only, records.dataclass at run time
    import socket
    from collections.abc import Callable
    from dataclasses import dataclass
    from typing import Any, Self
else:
    from ocipy.records import dataclass

from ocipy import errors, handoff, planfmt, procfs
from ocipy import posixlite as px
from ocipy.errors import OcipyError, os_reason
from ocipy.faults import point
from ocipy.launch import Launch, Message, debug_plan, report_warnings, write_id_maps
from ocipy.state import CREATE_HOOKS, CREATED, CREATING, HOOK_KINDS, KEPT_HOOKS, STOPPED, State
from ocipy.store import CONFIG_FILE, JOURNAL_KEY, Container, Store

if TYPE_CHECKING:
    import argparse  # annotations only: importing argparse costs ~7 ms

    from ocipy.cgroups.driver import Driver
    from ocipy.plan.base import CreatePlan


class _Undo:
    """What create needs of contextlib.ExitStack, without importing contextlib (it brings `collections` and
    `functools`: ~3 ms of create's imports): undo actions run last in first out when the `with` block ends; one that
    raises does not stop the others, and its exception replaces the one in flight (chained to it, as ExitStack
    chains it); `pop_all` (success) forgets them."""

    def __init__(self) -> None:
        self._exits: list[Callable[[BaseException | None], object]] = []

    def callback(self, fn: Callable[..., object], *args: object) -> None:
        def undo(_exc: BaseException | None) -> bool:
            fn(*args)
            return False  # a callback never suppresses the exception

        self._exits.append(undo)

    def enter_context(self, cm: contextlib.AbstractContextManager[object]) -> object:
        result = cm.__enter__()
        self._exits.append(lambda exc: cm.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None))
        return result

    def pop_all(self) -> None:
        self._exits = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> bool:
        pending, suppressed = exc, False
        while self._exits:
            undo = self._exits.pop()
            try:
                if undo(pending):
                    pending, suppressed = None, True
            except BaseException as new:  # noqa: BLE001 -- kept and raised after the other undo actions ran
                if pending is not None and new is not pending:
                    new.__context__ = pending
                pending = new
        if pending is not None and pending is not exc:
            context = pending.__context__
            try:
                raise pending
            finally:
                pending.__context__ = context
        return suppressed and pending is None


@dataclass
class Created:
    container: Container
    launch: Launch
    state: State


def create(args: argparse.Namespace) -> Created:
    """The container `args.container_id` from the bundle `args.bundle`, its init waiting for `start`."""
    return _Create(args).run()


def _id_map_text(mappings: Any) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings or [])


def _console(args: argparse.Namespace, terminal: bool) -> socket.socket | None:
    path = getattr(args, "console_socket", None)
    if terminal and not path and getattr(args, "allocate_console", False):
        # foreground `run`: the pty master comes back to this process (args.console_parent), which proxies it
        import socket

        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        args.console_parent = parent
        return child
    if terminal and not path:
        raise OcipyError("/process/terminal: terminal is true but no --console-socket was given")
    if path and not terminal:
        raise OcipyError("--console-socket given but /process/terminal is not true")
    return handoff.connect_console(path) if path else None


def _idmapped_trees(plan: CreatePlan, pid: int) -> list[int]:
    """For each idmapped bind (and runtime-side bind clone, MNTF_TREE) in plan order, a detached copy of its source,
    idmapped with the container's user namespace (that of `pid`, its maps just written), a joined one, or one made
    for the mount's own mappings (one per distinct mapping, gone once the trees exist). The init attaches them:
    in its user namespace it no longer holds the privilege over the host mounts this needs."""
    from ocipy import _shim
    from ocipy.mountopts import MS_REC

    trees_of = planfmt.MNTF_IDMAP | planfmt.MNTF_TREE
    mntf = planfmt.MOUNT_MNTF
    wanted = [(i, op) for i, op in enumerate(plan.ops) if op.code == planfmt.OP_MOUNT and op.a[mntf] & trees_of]
    trees: list[int] = []
    namespaces: dict[tuple[str, str] | str, int] = {}  # made or opened user namespaces, by mapping or path
    try:
        for i, op in wanted:
            source = plan.string_at(op.s[planfmt.MOUNT_SOURCE])
            field = plan.field_of(i)
            ns = -1  # MNTF_TREE: a plain clone, made here as the runtime (the init could not look up the source)
            if op.a[mntf] & planfmt.MNTF_IDMAP:
                ns = _idmap_userns(namespaces, plan.idmap_userns.get(i) or f"/proc/{pid}/ns/user", field)
            try:
                rbind = bool(op.a[planfmt.MOUNT_FLAGS] & MS_REC)
                ridmap = bool(op.a[mntf] & planfmt.MNTF_IDMAP_REC)
                trees.append(_shim.idmapped_tree(source, ns, rbind, ridmap))
            except OSError as exc:
                kind = "idmapped" if ns >= 0 else "bind source"
                hint = ""
                if ns >= 0 and exc.errno == errno.EINVAL:  # runc's hint too
                    hint = " (the filesystem may not support idmapped mounts on this kernel)"
                raise OcipyError(f"{field} ({kind} {source}): {os_reason(exc)}{hint}") from None
    except BaseException:
        for fd in trees:
            os.close(fd)
        raise
    finally:
        for fd in namespaces.values():
            os.close(fd)
    return trees


def _is_tree_sync(plan: CreatePlan, index: int) -> bool:
    """OP_SYNC SYNC_MOUNT_TREES: the init waits for the idmapped mount trees (no new user namespace)."""
    if not 0 <= index < len(plan.ops):
        return False
    op = plan.ops[index]
    return op.code == planfmt.OP_SYNC and op.a[planfmt.SYNC_WHAT] == planfmt.SYNC_MOUNT_TREES


def _idmap_userns(namespaces: dict[tuple[str, str] | str, int], want: tuple[str, str] | str, field: str) -> int:
    """The user namespace fd an idmapped mount takes: a path opened, or a namespace made for (uid_map, gid_map)."""
    from ocipy import _shim

    if want in namespaces:
        return namespaces[want]
    try:
        if isinstance(want, str):
            fd = os.open(want, os.O_RDONLY | os.O_CLOEXEC)
        else:
            fd = _shim.userns_fd(*want)
    except OSError as exc:
        if isinstance(want, str):
            raise OcipyError(f"{field}: user namespace {want}: {os_reason(exc)}") from None
        step = exc.filename or "user namespace"
        key = {"uid_map": "/uidMappings", "gid_map": "/gidMappings"}.get(step, "")
        raise OcipyError(
            f"{field}{key}: the user namespace for the mount's mappings: {step}: {os_reason(exc)}"
        ) from None
    namespaces[want] = fd
    return fd


def _died_during_setup(launch: Launch, cgroup: Any, document: dict[str, Any]) -> str:
    """Why the init went away without a word: the OOM killer (a memory limit below what setup needs) is named with
    the field; otherwise how it ended."""
    import signal as signal_mod

    status = None
    if launch.pid > 0:
        try:
            status = launch.wait(1.0)
        except (ChildProcessError, OSError):
            pass
    try:
        oom = cgroup.oom_kills() > 0
    except Exception:  # noqa: BLE001 -- a cgroup that cannot be read does not make a worse message
        oom = False
    killed = status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal_mod.SIGKILL
    if oom:
        limit = _section(document, "linux", "resources", "memory", "limit")
        what = f" ({limit} bytes)" if isinstance(limit, int) else ""
        return (
            f"/linux/resources/memory/limit: the container init was killed by the OOM killer while it was being set "
            f"up: the memory limit{what} is below what the setup needs"
        )
    if killed:
        return "container init was killed (SIGKILL) before it was set up"
    if status is not None and os.WIFSIGNALED(status):
        return f"container init was killed by signal {os.WTERMSIG(status)} before it was set up"
    return "container init exited before it was set up"


def _init_failure(launch: Launch, exc: OSError) -> OcipyError:
    """An OS error while working on the init's namespaces (moving net devices in): when the init failed meanwhile
    (a mount the kernel refused: its namespaces went with it), its own error is the cause; else the error, named."""
    import select

    if launch.pidfd >= 0 and select.select([launch.pidfd], [], [], 1.0)[0]:
        for msg in launch.messages():
            if msg.type == planfmt.MSG_ERROR:
                return launch.init_error(msg)
    where = f"{exc.filename}: " if exc.filename else ""
    return OcipyError(f"/linux/netDevices: {where}{os_reason(exc)}")


def _check_intel_rdt(spec: Any) -> None:
    """config-linux.md: intelRdt without a mounted resctrl filesystem MUST be an error; with one, ocipy cannot
    place the process yet, which must not pass silently either."""
    if spec.linux is None or getattr(spec.linux, "intel_rdt", None) is None:
        return
    with open("/proc/self/mountinfo") as f:
        mounted = any(" - resctrl " in line for line in f)
    if not mounted:
        raise OcipyError("/linux/intelRdt: no resctrl filesystem is mounted on this host")
    raise OcipyError("/linux/intelRdt: resctrl placement is not supported by ocipy yet")


def _run_poststop(hooks: list[dict[str, Any]], state: State) -> None:
    if hooks:
        from ocipy import hooks as hooks_mod

        hooks_mod.run_hooks("poststop", hooks, state.oci(STOPPED))


def _section(document: dict[str, Any], *keys: str) -> Any:
    """document[k1][k2]... as config.json has it (validated), or None."""
    node: Any = document
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _rootless(args: argparse.Namespace) -> bool:
    """runc's --rootless (auto: not root, or root of a partial user namespace); see ocipy/rootless.py."""
    from ocipy import rootless

    return rootless.detect(getattr(args, "rootless", "auto"))


class _Create:
    """One create: the parsed bundle, and what each step made (the undo stack holds how to take it back)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cid: str = args.container_id
        self.store = Store.from_args(args)
        self.store.check_id(self.cid)
        self.bundle_dir = px.abspath(args.bundle or ".")
        self.undo = _Undo()
        self.poststop_on_failure: list[dict[str, Any]] = []
        self.console: socket.socket | None = None
        self.pidfd_sock: socket.socket | None = None
        self.fdmap: list[tuple[int, int]] = []
        self.grace_stop: Callable[[], None] = lambda: None

    def run(self) -> Created:
        self.load()
        point("create.validated")
        with self.undo:
            self.undo.callback(_run_poststop, self.poststop_on_failure, self.state)  # registered first: runs last
            lock = self.make_dir()
            self.connect_fds()
            cgroup = self.make_cgroups()
            launch = self.start_init(cgroup)
            self.finish(launch, cgroup)
            self.undo.pop_all()
            lock.__exit__(None, None, None)
            errors.debug(f"created {self.cid} with init pid {launch.pid}")
            return Created(self.container, launch, self.state)
        raise AssertionError("unreachable")

    def load(self) -> None:
        """Step 1: the bundle, validated; what ocipy refuses rather than ignores."""
        from ocipy import bundle as bundle_mod

        errors.debug(f"create {self.cid}: bundle {self.bundle_dir}, state root {self.store.root}")
        self.spec, self.rootfs, self.document = bundle_mod.load_bundle(self.bundle_dir)
        errors.debug(f"config.json valid (ociVersion {self.spec.oci_version}), rootfs {self.rootfs}")
        process = self.spec.process
        self.terminal = bool(process.terminal) if process is not None else False
        _check_intel_rdt(self.spec)
        self.state = State(
            self.cid,
            oci_version=self.spec.oci_version,
            bundle=self.bundle_dir,
            rootfs=self.rootfs,
            created=errors.rfc3339_nano(),
            annotations=dict(self.spec.annotations) if self.spec.annotations else None,
        )
        hooks = _section(self.document, "hooks") or {}
        self.hook_lists = {kind: list(hooks.get(kind) or []) for kind in HOOK_KINDS}

    def make_dir(self) -> contextlib.AbstractContextManager[None]:
        """The state directory, locked until create returns, and the exec fifo (present = `created`)."""
        self.container = self.store.create_dir(self.cid)
        self.undo.callback(self.container.remove)
        lock = self.container.lock()
        self.undo.enter_context(lock)
        point("create.dir")
        # The recovery journal (docs/contracts.md, "Recovery"): state.json carries `ocipy.creating` until the
        # commit in `finish`, and every resource is recorded in it before it is made. Its first record already names
        # the cgroup dirs `make_cgroups` will make (recovery only rmdirs those, and only empty ones): one write less.
        planned = self.plan_cgroups()
        self.state.private = {JOURNAL_KEY: {"cgroup": planned}}
        self.container.write_state(self.state)
        point("create.journal")
        os.mkfifo(self.container.fifo_path, 0o600)
        point("create.fifo")
        errors.debug(f"state dir {self.store.root}/{self.cid} made and locked, exec fifo {self.container.fifo_path}")
        return lock  # type: ignore[return-value]

    def connect_fds(self) -> None:
        """The console and pidfd sockets, and the fd map of the init: stdio, LISTEN_FDS, preserved fds, console."""
        from ocipy import pidfdsock

        args = self.args
        self.console = _console(args, self.terminal)
        if self.console is not None:
            self.undo.callback(self.console.close)
            errors.debug(f"console socket {args.console_socket} connected: the pty master goes there")
        self.pidfd_sock = pidfdsock.connect(getattr(args, "pidfd_socket", None))
        if self.pidfd_sock is not None:
            self.undo.callback(self.pidfd_sock.close)
            errors.debug(f"pidfd socket {args.pidfd_socket} connected")
        listen = handoff.listen_fds()
        self.extra_fds = listen + max(0, int(getattr(args, "preserve_fds", 0) or 0))
        self.env_extra = [f"LISTEN_FDS={listen}", "LISTEN_PID=1"] if listen else []
        self.fdmap = [(0, 0), (1, 1), (2, 2)] + [(fd, fd) for fd in range(3, 3 + self.extra_fds)]
        self.console_child = 3 + self.extra_fds if self.console is not None else None
        if self.console is not None and self.console_child is not None:
            self.fdmap.append((self.console.fileno(), self.console_child))
        handoff.check_fds(self.fdmap)

    def plan_cgroups(self) -> dict[str, Any] | None:
        """The record of the cgroup dirs `make_cgroups` is about to make, None if the path does not resolve."""
        from ocipy.cgroups.driver import planned_record

        linux = self.spec.linux
        self.cgroups_path = linux.cgroups_path if linux else None
        self.systemd = bool(getattr(self.args, "systemd_cgroup", False))
        self.rootless = _rootless(self.args)
        return planned_record(self.cid, self.cgroups_path, self.systemd)

    def make_cgroups(self) -> Driver:
        """Made before the init exists, which joins them first (ocipy/cgroups/driver.py, docs/cgroups.md)."""
        from ocipy.cgroups.driver import NO_CGROUP, create_cgroups

        cgroup = create_cgroups(
            self.cid,
            self.cgroups_path,
            dict(_section(self.document, "linux", "resources") or {}),
            systemd=self.systemd,
            rootless=self.rootless,
        )
        errors.debug(f"cgroups: {'none' if cgroup is NO_CGROUP else ' '.join(cgroup.dirs())}")
        point("create.cgroups")
        if cgroup is not NO_CGROUP:
            self.undo.callback(cgroup.remove)
            if not self.rootless:
                from ocipy.cgroups import graceperiod

                # The init's first cgroup.procs write waits an RCU grace period (docs/cgroups.md, "Verbs"): start it
                # now, so that it runs while this process compiles the plan and spawns the init. Not sooner: the
                # kernel holds cgroup_mutex through it, and the mkdirs and the device program's attach above take it.
                graceperiod.start(cgroup.record, keep=True)
                self.undo.callback(graceperiod.stop)  # runs before cgroup.remove
                self.grace_stop = graceperiod.stop
            self.state.cgroup = cgroup.record  # owned from now on: recovery kills what is in them, then removes them
            self.container.write_state(self.state)
            point("create.cgroup-record")
        return cgroup

    def compile(self, cgroup: Driver) -> CreatePlan:
        from ocipy.plan.create import compile_create  # not through ocipy.plan's lazy names (importlib, warnings)

        plan = compile_create(
            self.spec,
            rootfs=self.rootfs,
            bundle=self.bundle_dir,
            fifo=self.container.fifo_path,
            console_fd=self.console_child,
            extra_fds=self.extra_fds,
            no_pivot=bool(getattr(self.args, "no_pivot", False)),
            no_new_keyring=bool(getattr(self.args, "no_new_keyring", False)),
            env_extra=self.env_extra,
            host_uid=os.geteuid(),  # unprivileged: setgroups denied, no runtime-side bind clones (docs/rootless.md)
            cgroup_procs=cgroup.procs_files(),
            seccomp_cache=self.store.seccomp_cache,
            log=errors.log_target(),
        )
        report_warnings(plan)
        if errors.debug_enabled():
            debug_plan(plan)
        return plan

    def start_init(self, cgroup: Driver) -> Launch:
        """Steps 3-5: run ocipy-init with the plan and answer it until it says it is set up."""
        self.plan = self.compile(cgroup)
        # Launch numbers the init's sync and plan fds after every fd in this map, so nothing collides.
        self.launch = launch = Launch(self.plan, extra=self.fdmap, trace=errors.debug_enabled())
        self.undo.callback(launch.abort)
        launch.start()
        point("create.spawned")
        errors.debug(f"ocipy-init started from its sealed memfd: pid {launch.pid0}")
        handlers = {
            planfmt.MSG_USERMAP: self.on_usermap,
            planfmt.MSG_PID: self.on_pid,
            planfmt.MSG_HOOKS: self.on_hooks,
            planfmt.MSG_SYNC: self.on_sync,
        }
        if not launch.drive(handlers, until=planfmt.MSG_CREATED, trace="create"):
            raise OcipyError(_died_during_setup(launch, cgroup, self.document))
        launch.close()
        return launch

    def on_usermap(self, msg: Message) -> list[int]:
        linux = self.spec.linux
        write_id_maps(msg.pid, _id_map_text(linux and linux.uid_mappings), _id_map_text(linux and linux.gid_mappings))
        return _idmapped_trees(self.plan, msg.pid)

    def on_pid(self, msg: Message) -> None:
        self.grace_stop()  # the init has joined its cgroups
        self.state.pid = msg.pid
        self.state.private["starttime"] = procfs.starttime(msg.pid)
        self.container.write_state(self.state)  # the init, before anything is done with it (net devices, hooks)
        point("create.pid-recorded")
        linux = self.spec.linux
        if linux is not None and linux.net_devices:
            from ocipy import netdev  # rtnetlink: only for configs that have netDevices

            try:
                netdev.move({k: v.name for k, v in linux.net_devices.items()}, msg.pid)
            except OSError as exc:
                raise _init_failure(self.launch, exc) from None
            point("create.netdevs")

    def on_hooks(self, msg: Message) -> None:
        from ocipy import hooks as hooks_mod

        try:
            for kind in CREATE_HOOKS:
                if self.hook_lists.get(kind):
                    errors.debug(f"running {len(self.hook_lists[kind])} {kind} hook(s)")
                    # runtime.md: `creating` is step 2 of the lifecycle; these hooks are steps 3-5, after the
                    # environment exists, so their state says `created` (runc says `creating`)
                    hooks_mod.run_hooks(kind, self.hook_lists[kind], self.state.oci(CREATED), pid=self.launch.pid)
        except OcipyError:
            # runtime.md lifecycle steps 3-5: stop the container, destroy it (the undo stack), then the poststop
            # hooks still run (step 13)
            self.poststop_on_failure.extend(self.hook_lists.get("poststop") or [])
            raise
        point("create.hooks")

    def on_sync(self, msg: Message) -> list[int] | None:
        if msg.fds:  # OP_SECCOMP with a listener
            handoff.send_seccomp_listener(self.spec, self.state.oci(CREATING), self.launch.pid, msg.fds[0])
        elif _is_tree_sync(self.plan, msg.op):
            return _idmapped_trees(self.plan, msg.pid)  # idmapped binds in a container without a new user namespace
        return None

    def finish(self, launch: Launch, cgroup: Driver) -> None:
        """The pids limit, the state (and the config exec takes its defaults from), the pid file."""
        from ocipy import fastjson, pidfdsock
        from ocipy.cgroups.driver import NO_CGROUP, apply_deferred

        if self.console is not None:
            self.console.close()
        if self.pidfd_sock is not None:  # the container's init, as runc's "standard" init sends itself
            pidfdsock.send(self.pidfd_sock, launch.pid, launch.pidfd, "standard")
        apply_deferred(cgroup)  # cgroups: the pids limit, now that the init is set up
        point("create.set-up")
        self.state.private = {
            "starttime": procfs.starttime(launch.pid),
            "hooks": {k: v for k, v in self.hook_lists.items() if k in KEPT_HOOKS and v},
            "rootless": self.rootless,
        }
        if self.spec.process is None:
            self.state.private["no_process"] = True  # `start` refuses it (runtime.md)
        if cgroup is not NO_CGROUP:
            self.state.cgroup = cgroup.record  # includes the applied "resources", the base of `update`
        # exec's defaults: the config as it was now, whatever happens to the bundle later
        self.container.write_file(CONFIG_FILE, fastjson.dumps(self.document).encode())
        point("create.config")
        self.container.write_state(self.state)  # the commit: the private state no longer holds the journal
        point("create.state")
        errors.debug(f"state.json written: status created, pid {launch.pid}")
        if getattr(self.args, "pid_file", None):
            handoff.write_pid_file(self.args.pid_file, launch.pid)
            point("create.pid-file")
            errors.debug(f"pid file {self.args.pid_file} written")
