"""`ocipy create`: from a validated bundle to an init waiting, fully set up, for `start`.

Every step that changes the host registers its undo on an ExitStack, so a failed create leaves no process, state
directory or fifo behind (mounts live in the container's own mount namespace and vanish with its processes).
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocipy import errors, planfmt, procfs
from ocipy.errors import OcipyError
from ocipy.faults import point
from ocipy.launch import Launch, write_id_maps
from ocipy.state import CREATED, CREATING, STOPPED, State
from ocipy.store import CONFIG_FILE, JOURNAL_KEY, Container, Store

if TYPE_CHECKING:
    import argparse  # annotations only: importing argparse costs ~7 ms

CREATE_HOOKS = ("prestart", "createRuntime", "createContainer")
KEPT_HOOKS = ("startContainer", "poststart", "poststop")
HOOK_KINDS = CREATE_HOOKS + KEPT_HOOKS
_MSG_NAMES = {
    planfmt.MSG_ERROR: "error",
    planfmt.MSG_USERMAP: "usermap",
    planfmt.MSG_PID: "pid",
    planfmt.MSG_HOOKS: "hooks",
    planfmt.MSG_CREATED: "created",
    planfmt.MSG_SYNC: "sync",
}


@dataclass
class Created:
    container: Container
    launch: Launch
    state: State


def main(args: argparse.Namespace) -> int:
    created = create(args)
    created.launch.release()
    return 0


def _listen_fds() -> int:
    """systemd socket activation: LISTEN_FDS counts only when LISTEN_PID is this process."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return 0
    try:
        return max(0, int(os.environ.get("LISTEN_FDS", "0")))
    except ValueError:
        return 0


def _id_map_text(mappings: Any) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings or [])


def _write_pid_file(path: str, pid: int) -> None:
    """The decimal pid with no newline, atomically (containerd and runtime-tools read the raw bytes)."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OcipyError(f"pid file {path}: {(exc.strerror or str(exc)).lower()}") from None


def _console_fd(args: argparse.Namespace, terminal: bool) -> socket.socket | None:
    path = getattr(args, "console_socket", None)
    if terminal and not path and getattr(args, "allocate_console", False):
        # foreground `run`: the pty master comes back to this process (args.console_parent), which proxies it
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        args.console_parent = parent
        return child
    if terminal and not path:
        raise OcipyError("/process/terminal: terminal is true but no --console-socket was given")
    if path and not terminal:
        raise OcipyError("--console-socket given but /process/terminal is not true")
    if not path:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise OcipyError(f"console socket {path}: {(exc.strerror or str(exc)).lower()}") from None
    return sock


def _idmapped_trees(plan: planfmt.Plan, pid: int) -> list[int]:
    """For each idmapped bind in plan order, a detached copy of its source idmapped with the container's user
    namespace (that of `pid`, its maps just written). The init attaches them: inside its new user namespace it no
    longer holds the privilege over the host mounts this needs."""
    from ocipy import _shim
    from ocipy.mountopts import MS_REC

    trees_of = planfmt.MNTF_IDMAP | planfmt.MNTF_TREE
    wanted = [(i, op) for i, op in enumerate(plan.ops) if op[0] == planfmt.OP_MOUNT and op[3][4] & trees_of]
    if not wanted:
        return []
    trees: list[int] = []
    userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for i, op in wanted:
            source = plan.string_at(op[2][0])
            try:
                rbind, ridmap = bool(op[3][0] & MS_REC), bool(op[3][4] & planfmt.MNTF_IDMAP_REC)
                # MNTF_TREE: a plain clone, made here as the runtime (the init in its user namespace could not
                # even look up a source under a root-only directory)
                ns = userns if op[3][4] & planfmt.MNTF_IDMAP else -1
                trees.append(_shim.idmapped_tree(source, ns, rbind, ridmap))
            except OSError as exc:
                for fd in trees:
                    os.close(fd)
                kind = "idmapped" if op[3][4] & planfmt.MNTF_IDMAP else "bind source"
                raise OcipyError(
                    f"{plan.field_of(i)} ({kind} {source}): {(exc.strerror or str(exc)).lower()}"
                ) from None
    finally:
        os.close(userns)
    return trees


def _died_during_setup(launch: Launch, cgroup: Any, document: dict[str, Any]) -> str:
    """Why the init went away without a word: the OOM killer (a memory limit below what setup needs) is named with
    the field; otherwise how it ended."""
    import signal as signal_mod

    status = None
    if launch.pid > 0:
        with contextlib.suppress(ChildProcessError, OSError):
            status = launch.wait(1.0)
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
                return OcipyError(launch.describe_error(msg))
    where = f"{exc.filename}: " if exc.filename else ""
    return OcipyError(f"/linux/netDevices: {where}{(exc.strerror or str(exc)).lower()}")


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


def _debug_plan(plan: Any) -> None:
    """--debug: the plan the init executes, op by op, each with the config field it comes from."""
    lines = plan.describe()
    errors.debug(f"plan: {len(lines)} ops for ocipy-init")
    for i, line in enumerate(lines):
        errors.debug(f"plan op {i}: {line}")


_MSG_WORDS = {
    planfmt.MSG_ERROR: "error",
    planfmt.MSG_USERMAP: "user namespace made: id maps wanted",
    planfmt.MSG_PID: "container process exists",
    planfmt.MSG_HOOKS: "namespaces and mounts set up: create hooks may run",
    planfmt.MSG_CREATED: "set up: waiting on the exec fifo for start",
    planfmt.MSG_SYNC: "sync",
}


def planfmt_message(msg: Any) -> str:
    """One message of the init, in words (for --debug)."""
    words = _MSG_WORDS.get(msg.type, f"message {msg.type}")
    parts = [words, f"after op {msg.op}" if msg.op >= 0 else "", f"pid {msg.pid}" if msg.pid > 0 else ""]
    if msg.fds:
        parts.append(f"{len(msg.fds)} fd(s)")
    if msg.detail:
        parts.append(msg.detail)
    return ", ".join(p for p in parts if p)


def _check_memory_policy(spec: Any) -> None:
    """linux.memoryPolicy (set_mempolicy) is not applied by the init: refused rather than ignored, and `features`
    reports no mode and no flag."""
    if spec.linux is not None and getattr(spec.linux, "memory_policy", None) is not None:
        raise OcipyError("/linux/memoryPolicy: memory policies are not supported by ocipy yet")


def _run_poststop(hooks: list[dict[str, Any]], state: State) -> None:
    if hooks:
        from ocipy import hooks as hooks_mod

        hooks_mod.run_hooks("poststop", hooks, state.oci(STOPPED))


# --- seccomp listener (owner: the seccomp issue) ---
SECCOMP_LISTENER_TIMEOUT = 10.0


def _send_seccomp_listener(spec: Any, state: dict[str, Any], pid: int, fd: int) -> None:
    """config-linux.md "The Container Process State": one connection to listenerPath, one JSON document with the
    seccomp listener fd (SCM_RIGHTS, named in `fds`), then close. A failure fails create."""
    import json

    seccomp = spec.linux.seccomp if spec.linux is not None else None
    path = seccomp.listener_path if seccomp is not None else None
    if seccomp is None or not path:
        raise OcipyError("/linux/seccomp/listenerPath: the init sent a seccomp listener but no listenerPath is set")
    oci_state = {k: state[k] for k in ("ociVersion", "id", "status", "pid", "bundle", "annotations") if k in state}
    doc: dict[str, Any] = {"ociVersion": spec.oci_version, "fds": ["seccompFd"], "pid": pid, "state": oci_state}
    if seccomp.listener_metadata:
        doc["metadata"] = seccomp.listener_metadata
    payload = json.dumps(doc).encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(SECCOMP_LISTENER_TIMEOUT)
        sock.connect(path)
        sent = socket.send_fds(sock, [payload], [fd])
        if sent < len(payload):
            sock.sendall(payload[sent:])  # the fd went with the first part, as the spec requires
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise OcipyError(f"/linux/seccomp/listenerPath: {path}: {reason}") from None
    finally:
        sock.close()


# --- end seccomp listener ---


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


def create(args: argparse.Namespace) -> Created:
    from ocipy import bundle as bundle_mod
    from ocipy import plan as plan_mod

    cid = args.container_id
    store = Store.from_args(args)
    store.check_id(cid)
    bundle_dir = os.path.abspath(args.bundle or ".")
    errors.debug(f"create {cid}: bundle {bundle_dir}, state root {store.root}")
    spec, rootfs, document = bundle_mod.load_bundle(bundle_dir)
    errors.debug(f"config.json valid (ociVersion {spec.oci_version}), rootfs {rootfs}")
    process = spec.process
    terminal = bool(process.terminal) if process is not None else False
    _check_intel_rdt(spec)
    _check_memory_policy(spec)

    state = State(
        cid,
        oci_version=spec.oci_version,
        bundle=bundle_dir,
        rootfs=rootfs,
        created=errors.rfc3339_nano(),
        annotations=dict(spec.annotations) if spec.annotations else None,
    )
    poststop_on_failure: list[dict[str, Any]] = []
    point("create.validated")
    with contextlib.ExitStack() as undo:
        undo.callback(_run_poststop, poststop_on_failure, state)  # registered first, so it runs last
        container = store.create_dir(cid)
        undo.callback(container.remove)
        lock = container.lock()
        undo.enter_context(lock)
        point("create.dir")
        # The recovery journal (docs/contracts.md, "Recovery"): state.json carries `ocipy.creating` until the
        # commit below, and every resource is recorded in it before it is made.
        state.private = {JOURNAL_KEY: {}}
        container.write_state(state)
        point("create.journal")
        os.mkfifo(container.fifo_path, 0o600)
        point("create.fifo")
        errors.debug(f"state dir {store.root}/{cid} made and locked, exec fifo {container.fifo_path}")

        console = _console_fd(args, terminal)
        if console is not None:
            undo.callback(console.close)
        from ocipy import pidfdsock

        pidfd_sock = pidfdsock.connect(getattr(args, "pidfd_socket", None))
        if pidfd_sock is not None:
            undo.callback(pidfd_sock.close)
        if console is not None:
            errors.debug(f"console socket {args.console_socket} connected: the pty master goes there")
        if pidfd_sock is not None:
            errors.debug(f"pidfd socket {args.pidfd_socket} connected")
        listen = _listen_fds()
        preserve = max(0, int(getattr(args, "preserve_fds", 0) or 0))
        extra_fds = listen + preserve
        env_extra = [f"LISTEN_FDS={listen}", "LISTEN_PID=1"] if listen else []

        fdmap = [(0, 0), (1, 1), (2, 2)] + [(fd, fd) for fd in range(3, 3 + extra_fds)]
        console_child = 3 + extra_fds if console is not None else None
        if console is not None and console_child is not None:
            fdmap.append((console.fileno(), console_child))
        for src, _ in fdmap:
            try:
                os.fstat(src)
            except OSError:
                raise OcipyError(f"--preserve-fds: fd {src} is not open") from None

        # --- cgroups (ocipy/cgroups/driver.py, docs/cgroups.md): made before the init exists, which joins them first
        from ocipy.cgroups.driver import NO_CGROUP, apply_deferred, create_cgroups, planned_record

        cgroups_path = spec.linux.cgroups_path if spec.linux else None
        systemd = bool(getattr(args, "systemd_cgroup", False))
        # the dirs about to be made, before any is: recovery rmdirs them (only empty ones go; nothing is killed)
        state.private[JOURNAL_KEY] = {"cgroup": planned_record(cid, cgroups_path, systemd)}
        container.write_state(state)
        point("create.cgroups-planned")
        cgroup = create_cgroups(
            cid,
            spec.linux.cgroups_path if spec.linux else None,
            dict(_section(document, "linux", "resources") or {}),
            systemd=bool(getattr(args, "systemd_cgroup", False)),
            rootless=_rootless(args),
        )
        errors.debug(f"cgroups: {'none' if cgroup is NO_CGROUP else ' '.join(cgroup.dirs())}")
        point("create.cgroups")
        if cgroup is not NO_CGROUP:
            undo.callback(cgroup.remove)
            state.cgroup = cgroup.record  # owned from now on: recovery kills what is in them, then removes them
            container.write_state(state)
            point("create.cgroup-record")
        # --- end cgroups ---

        plan = plan_mod.compile_create(
            spec,
            rootfs=rootfs,
            bundle=bundle_dir,
            fifo=container.fifo_path,
            console_fd=console_child,
            extra_fds=extra_fds,
            no_pivot=bool(getattr(args, "no_pivot", False)),
            no_new_keyring=bool(getattr(args, "no_new_keyring", False)),
            env_extra=env_extra,
            host_uid=os.geteuid(),  # unprivileged: setgroups denied, no runtime-side bind clones (docs/rootless.md)
            cgroup_procs=cgroup.procs_files(),
            seccomp_cache=store.seccomp_cache,
            log=errors.log_target(),
        )
        for pointer, message in getattr(plan, "warnings", ()):
            # config.md: a capability that cannot be granted MUST be logged as a warning (runc prints it where it
            # logs, stderr without --log); the other warnings stay in --log (stderr is the container's here)
            warn = errors.warning if pointer.startswith("/process/capabilities") else errors.quiet_warning
            warn(f"{pointer}: {message}")
        if errors.debug_enabled():
            _debug_plan(plan)
        # Launch numbers the init's sync and plan fds after every fd in this map, so nothing collides.
        launch = Launch(plan, extra=fdmap)
        undo.callback(launch.abort)

        hooks = _section(document, "hooks") or {}
        hook_lists = {kind: list(hooks.get(kind) or []) for kind in HOOK_KINDS}
        linux = spec.linux

        launch.start()
        point("create.spawned")
        errors.debug(f"ocipy-init started from its sealed memfd: pid {launch.pid0}")
        for msg in launch.messages():
            point(f"create.got-{_MSG_NAMES.get(msg.type, msg.type)}")
            if errors.debug_enabled():
                errors.debug(f"init: {planfmt_message(msg)}")
            if msg.type == planfmt.MSG_ERROR:
                raise OcipyError(launch.describe_error(msg))
            if msg.type == planfmt.MSG_USERMAP:
                write_id_maps(
                    msg.pid,
                    _id_map_text(linux and linux.uid_mappings),
                    _id_map_text(linux and linux.gid_mappings),
                )
                trees = _idmapped_trees(plan, msg.pid)
                try:
                    launch.ack(fds=trees)
                finally:
                    for fd in trees:
                        os.close(fd)
            elif msg.type == planfmt.MSG_PID:
                state.pid = msg.pid
                state.private["starttime"] = procfs.starttime(msg.pid)
                container.write_state(state)  # the init, before anything is done with it (net devices, hooks)
                point("create.pid-recorded")
                if linux is not None and linux.net_devices:
                    from ocipy import netdev  # pyroute2: only for configs that have netDevices

                    try:
                        netdev.move({k: v.name for k, v in linux.net_devices.items()}, msg.pid)
                    except OSError as exc:
                        raise _init_failure(launch, exc) from None
                    point("create.netdevs")
            elif msg.type == planfmt.MSG_HOOKS:
                from ocipy import hooks as hooks_mod

                try:
                    for kind in CREATE_HOOKS:
                        if hook_lists.get(kind):
                            errors.debug(f"running {len(hook_lists[kind])} {kind} hook(s)")
                            # runtime.md: `creating` is step 2 of the lifecycle; these hooks are steps 3-5, after
                            # the environment exists, so their state says `created` (runc says `creating`)
                            hooks_mod.run_hooks(kind, hook_lists[kind], state.oci(CREATED), pid=launch.pid)
                except OcipyError:
                    # runtime.md lifecycle steps 3-5: stop the container, destroy it (the undo stack), then the
                    # poststop hooks still run (step 13)
                    poststop_on_failure.extend(hook_lists.get("poststop") or [])
                    raise
                point("create.hooks")
                launch.ack()
            # --- seccomp listener (owner: the seccomp issue) ---
            elif msg.type == planfmt.MSG_SYNC and msg.fds:
                try:
                    _send_seccomp_listener(spec, state.oci(CREATING), launch.pid, msg.fds[0])
                finally:
                    for fd in msg.fds:
                        os.close(fd)
                launch.ack()
            # --- end seccomp listener ---
            elif msg.type == planfmt.MSG_CREATED:
                break
        else:
            raise OcipyError(_died_during_setup(launch, cgroup, document))

        launch.close()
        if console is not None:
            console.close()
        if pidfd_sock is not None:  # the container's init, as runc's "standard" init sends itself
            pidfdsock.send(pidfd_sock, launch.pid, launch.pidfd, "standard")
        apply_deferred(cgroup)  # cgroups: the pids limit, now that the init is set up
        point("create.set-up")
        state.private = {
            "starttime": procfs.starttime(launch.pid),
            "hooks": {k: v for k, v in hook_lists.items() if k in KEPT_HOOKS and v},
            "rootless": _rootless(args),
        }
        if process is None:
            state.private["no_process"] = True  # `start` refuses it (runtime.md)
        if cgroup is not NO_CGROUP:
            state.cgroup = cgroup.record  # includes the applied "resources", the base of `update`
        # exec's defaults: the config as it was now, whatever happens to the bundle later
        from ocipy import fastjson

        container.write_file(CONFIG_FILE, fastjson.dumps(document).encode())
        point("create.config")
        container.write_state(state)  # the commit: the private state no longer holds the journal
        point("create.state")
        errors.debug(f"state.json written: status created, pid {launch.pid}")
        if getattr(args, "pid_file", None):
            _write_pid_file(args.pid_file, launch.pid)
            point("create.pid-file")
            errors.debug(f"pid file {args.pid_file} written")
        undo.pop_all()
        lock.__exit__(None, None, None)
        errors.debug(f"created {cid} with init pid {launch.pid}")
        return Created(container, launch, state)
    raise AssertionError("unreachable")
