"""`ocipy exec ID CMD...` / `ocipy exec -p process.json ID`: run one more process in a created or running container.

The process defaults come from the config as create saved it (`config.json` in the state dir), overridden by the
flags as runc does; `--process` replaces it entirely. ocipy-init joins the container's cgroups and namespaces and
execs the process (ocipy/execplan.py); it is a child of this process (CLONE_PARENT), so with `--detach` it passes to
the caller's subreaper when we exit, and in the foreground we forward signals and exit with its status. Every failure
exits 255 (runc's exec convention, which Podman and containerd rely on).

The config create saved and the process are checked by ocipy/spec/light.py (rules generated from the models, no
pydantic-core); only a document it refuses goes to ocipy/spec/fast.py, which words the problem as before
(docs/spec-models.md, "exec": why).
"""

from __future__ import annotations

import gc

TYPE_CHECKING = False  # `typing` costs ~3 ms (it imports `re`): annotations only

from ocipy import errors
from ocipy import posixlite as px  # not `os` (~1 ms), imported later by launch once the collector is off
from ocipy.errors import OcipyError, os_reason

if TYPE_CHECKING:
    import argparse  # annotations only: importing argparse costs ~7 ms
    import socket
    from typing import Any

    from ocipy import planfmt
    from ocipy.launch import Message
    from ocipy.store import Container

EXIT_FAILURE = 255


def main(args: argparse.Namespace) -> int:
    # An exec lives ~20 ms and frees its objects by reference counting: the cyclic collector only walked the modules
    # it imports (7 collections, ~1.2 ms of CPU, a twentieth of the command), so those are imported below, after it
    # is off; a foreground exec that waits allocates next to nothing. (In-process callers get it back on return.)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _main(args)
    finally:
        if was_enabled:
            gc.enable()


def _main(args: argparse.Namespace) -> int:
    try:
        return _exec(args)
    except OcipyError as exc:
        exc.exit_code = EXIT_FAILURE  # the same error (a ConfigError keeps its pointer), runc's exit status for exec
        raise


# --- the process ---------------------------------------------------------------------------------------------------
def _load_spec(c: Container) -> tuple[Any, dict[str, Any]]:
    """The container's config as it was at create: (object, document). Of the config create saved (and validated),
    light.py checks the fields exec reads; a bundle's config.json (a container made before create saved its own)
    may have changed since, and is validated whole."""
    from ocipy.spec import light  # after the container is found: `exec` of a missing one stays light
    from ocipy.spec.document import SpecError, parse_json
    from ocipy.store import CONFIG_FILE

    data = c.read_file(CONFIG_FILE)
    where = px.join(c.dir, CONFIG_FILE)
    saved = data is not None
    if data is None:
        where = px.join(c.read_state().bundle, "config.json")
        errors.debug(f"no saved config: using {where}")
        try:
            with open(where, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise OcipyError(f"{where}: {os_reason(exc)}") from None
    try:
        document = parse_json(data)
    except SpecError as exc:
        raise OcipyError(f"{where}: {exc}") from None
    spec = light.validate("Spec", document) if saved else None
    if spec is None:  # the bundle's, or a problem for pydantic-core and the models to word
        from ocipy.spec import fast
        from ocipy.spec.document import format_problem

        spec, problems = fast.check_config(document)
        if problems:
            raise OcipyError(f"{where}: {format_problem(problems[0])}")
    return spec, document


def _load_process_file(path: str) -> Any:
    """The parsed `--process FILE` (build_process validates it)."""
    from ocipy.spec.document import SpecError, parse_json

    try:
        with open(path, "rb") as f:
            return parse_json(f.read())
    except OSError as exc:
        raise OcipyError(f"--process {path}: {os_reason(exc)}") from None
    except SpecError as exc:
        raise OcipyError(f"--process {path}: {exc}") from None


def _merge_env(env: list[str], extra: list[str]) -> list[str]:
    """`extra` on top of `env`: a variable set again replaces the earlier value in place."""
    out = list(env)
    index = {e.partition("=")[0]: i for i, e in enumerate(out)}
    for item in extra:
        key = item.partition("=")[0]
        if key in index:
            out[index[key]] = item
        else:
            index[key] = len(out)
            out.append(item)
    return out


def _int_arg(flag: str, text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise OcipyError(f"{flag}: {text!r} is not a number") from None
    if not 0 <= value < 1 << 32:
        raise OcipyError(f"{flag}: {value} is out of range")
    return value


def build_process(document: dict[str, Any], args: argparse.Namespace) -> Any:
    """The process to run: --process FILE as is, else the config's process with the flags applied (runc's rules).

    The flags edit a copy of the process as JSON, which is then validated like a --process file."""
    where = "exec"
    if getattr(args, "process", None):
        where = f"--process {args.process}"
        proc = _load_process_file(args.process)
        if getattr(args, "tty", False) and isinstance(proc, dict):  # anything else: the check below says so
            proc["terminal"] = True
    else:
        proc = _process_from_flags(document, args)
    from ocipy.spec import light

    checked = light.validate("Process", proc)
    if checked is not None:
        return checked
    from ocipy.spec import fast  # pydantic-core and the models word the problem
    from ocipy.spec.document import SpecError

    try:
        return fast.validated("Process", proc)
    except SpecError as exc:
        raise OcipyError(f"{where}: {exc}") from None


def _copy_json(value: Any) -> Any:
    """A deep copy of a parsed JSON value (`copy` costs an import on every exec)."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _process_from_flags(document: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    command = list(getattr(args, "command", None) or [])
    if not command:
        raise OcipyError("exec args cannot be empty")
    base = document.get("process")
    if not isinstance(base, dict):
        raise OcipyError("/process: the container has no process to take defaults from; use --process")
    proc: dict[str, Any] = _copy_json(base)
    proc["args"] = command
    proc.pop("commandLine", None)
    if args.cwd:
        proc["cwd"] = args.cwd
    if args.apparmor:
        proc["apparmorProfile"] = args.apparmor
    if args.process_label:
        proc["selinuxLabel"] = args.process_label
    caps = list(getattr(args, "cap", None) or [])
    if caps:
        cs = proc.get("capabilities") or {}
        for key in ("bounding", "effective", "permitted"):
            cs[key] = [*(cs.get(key) or []), *caps]
        # ambient needs inheritable, which --cap does not add: only when the config already has inheritable caps
        if cs.get("inheritable") is not None:
            cs["ambient"] = [*(cs.get("ambient") or []), *caps]
        proc["capabilities"] = cs
    proc["env"] = _merge_env(list(proc.get("env") or []), list(getattr(args, "env", None) or []))
    proc["terminal"] = bool(getattr(args, "tty", False))  # never the config's: only when asked
    if getattr(args, "no_new_privs", False):
        proc["noNewPrivileges"] = True
    user = proc.get("user") or {}
    if args.user:
        uid, sep, gid = str(args.user).partition(":")
        user["uid"] = _int_arg("--user", uid)
        if sep:
            user["gid"] = _int_arg("--user", gid)
    gids = [g for item in getattr(args, "additional_gids", None) or [] for g in str(item).split(",") if g]
    if gids:
        user["additionalGids"] = [
            *(user.get("additionalGids") or []),
            *(_int_arg("--additional-gids", g) for g in gids),
        ]
    proc["user"] = user
    return proc


# --- the exec ------------------------------------------------------------------------------------------------------
class _Undo(list):  # type: ignore[type-arg]
    """What to close or kill when exec fails before the process runs, last first (`contextlib` costs ~3 ms)."""

    def run(self) -> None:
        while self:
            try:
                self.pop()()
            except (OSError, ValueError) as exc:  # one failing step must not keep the others from running
                errors.debug(f"exec: undo: {exc}")


class _Stdio:
    """The fds the process gets: stdio, --preserve-fds, and the console socket when it has a terminal."""

    def __init__(self, args: argparse.Namespace, terminal: bool, detach: bool, undo: _Undo) -> None:
        console_path = getattr(args, "console_socket", None)
        if terminal and detach and not console_path:
            raise OcipyError("--tty with --detach needs a --console-socket to send the pty master to")
        if console_path and not terminal:
            raise OcipyError("--console-socket given but no terminal was asked for (--tty, or terminal in --process)")
        self.pidfd_sock: socket.socket | None = None
        if getattr(args, "pidfd_socket", None):
            from ocipy import pidfdsock

            self.pidfd_sock = pidfdsock.connect(args.pidfd_socket)
            if self.pidfd_sock is not None:
                undo.append(self.pidfd_sock.close)
        self.preserve = max(0, int(getattr(args, "preserve_fds", 0) or 0))
        self.fdmap = [(0, 0), (1, 1), (2, 2)] + [(fd, fd) for fd in range(3, 3 + self.preserve)]
        from ocipy import handoff

        handoff.check_fds(self.fdmap)
        self.console: socket.socket | None = None
        self.proxy: socket.socket | None = None  # foreground tty without a console socket: we receive the master
        if terminal:
            if console_path:
                self.console = handoff.connect_console(console_path)
            else:
                import socket  # a terminal only: `socket` costs ~8 ms

                self.proxy, self.console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                undo.append(self.proxy.close)
            undo.append(self.console.close)
            self.fdmap.append((self.console.fileno(), 3 + self.preserve))

    @property
    def console_fd(self) -> int | None:
        """The console socket's fd number in the init."""
        return 3 + self.preserve if self.console is not None else None


def _check_status(c: Container, ignore_paused: bool) -> bool:
    """Refuse a stopped container, and a paused one unless asked; True when it is paused."""
    from ocipy.store import PAUSED

    status = c.status()
    status.require("exec", ignore_paused=ignore_paused)
    return status == PAUSED


def _plan(
    args: argparse.Namespace, c: Container, spec: Any, process: Any, io: _Stdio, procs: list[str]
) -> planfmt.Plan:
    from ocipy import execplan  # after the container is found: `exec` of a missing one stays light
    from ocipy.launch import debug_plan, report_warnings

    plan = execplan.compile_exec(
        spec,
        process,
        init_pid=c.pid,
        cgroup_procs=procs,
        console_fd=io.console_fd,
        extra_fds=io.preserve,
        host_uid=px.geteuid(),
        seccomp_cache=c.store.seccomp_cache,
    )
    report_warnings(plan)
    if errors.debug_enabled():
        errors.debug(f"exec in {args.container_id} (init pid {c.pid})")
        debug_plan(plan)
    return plan


def _exec(args: argparse.Namespace) -> int:
    from ocipy.faults import point
    from ocipy.store import Store

    detach = bool(getattr(args, "detach", False))
    c = Store.from_args(args).open_locked(args.container_id)
    record = c.cgroup_record()
    if isinstance(record, dict):
        from ocipy.cgroups import graceperiod

        graceperiod.start(record)  # first: the sooner it starts, the less of it is left when the init joins
    point("exec.locked")
    undo = _Undo([c.close])  # closing the dir fd also drops the lock
    try:
        paused = _check_status(c, bool(getattr(args, "ignore_paused", False)))
        procs = c.cgroup().join_files(list(getattr(args, "cgroup", None) or []))
        from ocipy import handoff, planfmt
        from ocipy.launch import Launch

        spec, document = _load_spec(c)
        process = build_process(document, args)
        io = _Stdio(args, bool(process.terminal), detach, undo)
        launch = Launch(_plan(args, c, spec, process, io, procs), extra=io.fdmap, trace=errors.debug_enabled())
        undo.append(launch.abort)
        if not detach:
            from ocipy import foreground  # the foreground only: signals passed on, the pty proxied

            # from now on: a signal for us is one for the process (held back until it exists)
            foreground.forward_signals(launch, io.proxy is not None)
            undo.append(foreground.restore_signals)
        seccomp = getattr(getattr(spec, "linux", None), "seccomp", None)
        oci_state = c.oci_state() if getattr(seccomp, "listener_path", None) else {}  # for a seccomp listener
        if paused:
            # the process freezes as soon as it joins the cgroup and goes on at `resume`, which needs the lock
            c.close()
        launch.start()
        point("exec.spawned")
        if io.console is not None:
            io.console.close()

        def on_sync(msg: Message) -> None:
            if msg.fds:  # OP_SECCOMP with a listener
                handoff.send_seccomp_listener(spec, oci_state, launch.pid, msg.fds[0])

        launch.drive({planfmt.MSG_SYNC: on_sync}, trace="exec")
        if launch.pid <= 0:
            raise OcipyError("ocipy-init exited before the process was started")
        if io.pidfd_sock is not None:  # the exec'd process, as runc's "setns" init sends itself
            from ocipy import pidfdsock

            pidfdsock.send(io.pidfd_sock, launch.pid, launch.pidfd, "setns")
        if not detach:
            foreground.flush_pending(launch)
        launch.close()
        point("exec.started")
        master = foreground.receive_master(io.proxy) if io.proxy is not None else -1
        if getattr(args, "pid_file", None):
            handoff.write_pid_file(args.pid_file, launch.pid)
    except BaseException:
        undo.run()
        raise
    c.close()  # the lock: kill/delete may go on while the process runs
    if io.pidfd_sock is not None:
        io.pidfd_sock.close()
    if detach:
        launch.release()
        return 0
    return foreground.wait(launch, master, EXIT_FAILURE)
