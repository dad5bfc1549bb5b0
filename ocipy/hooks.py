"""OCI hooks: each runs with the container state on stdin, its own args and env, and an optional timeout.

prestart, createRuntime, poststart and poststop run in the runtime's namespaces; createContainer and startContainer
run inside the container's namespaces (ocipy-init joins them; no Python runs there). Following runtime.md's
lifecycle, a failing hook of any kind but poststop fails the operation and stops the container; poststop only warns.
Stdlib and the shim only: `start` and `delete` use this module.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    import signal as _signal
    from typing import Any
else:  # `signal` makes enums of its constants (`enum`, ~1.5 ms; start and delete import this module): its C half
    import _signal

from ocipy import errors, planfmt
from ocipy.errors import OcipyError, os_reason
from ocipy.namespaces import JOIN_ORDER as JOIN_ORDER  # the order a joining process enters them
from ocipy.namespaces import differing_namespaces as differing_namespaces

# runtime.md lifecycle: these fail the operation (and stop the container); only poststop merely warns.
FATAL = frozenset({"prestart", "createRuntime", "createContainer", "startContainer", "poststart"})
IN_CONTAINER = frozenset({"createContainer", "startContainer"})


def run_hooks(kind: str, hooks: list[dict[str, Any]], state: dict[str, Any], pid: int = 0) -> None:
    """Run every hook of one kind in order. `pid` is the container init, for the in-container kinds."""
    if kind in IN_CONTAINER and pid:
        # config.md: hooks in the container namespace see the pid as the container sees it
        state = {**state, "pid": _pid_in_container(pid)}
    import json  # here, not at the top: start and delete import this module, and rarely run a hook

    payload = json.dumps(state).encode()
    for i, hook in enumerate(hooks):
        where = f"/hooks/{kind}/{i}"
        try:
            if kind in IN_CONTAINER:
                _run_in_container(hook, payload, pid)
            else:
                _run_on_host(hook, payload)
        except OcipyError as exc:
            if kind in FATAL:
                raise OcipyError(f"{where} ({hook.get('path')}): {exc}") from None
            errors.warning(f"{where} ({hook.get('path')}): {exc}")


def _pid_in_container(pid: int) -> int:
    """The innermost pid of `pid` (the last NSpid field): 1 for the init of a new pid namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return pid


MAX_TIMEOUT = 2**31 - 1  # seconds (68 years); more would overflow the clock of poll/select: no timeout then


def _timeout(hook: dict[str, Any]) -> float | None:
    t = hook.get("timeout")
    return float(t) if isinstance(t, int) and 0 < t <= MAX_TIMEOUT else None


def _env(hook: dict[str, Any]) -> dict[str, str]:
    """The hook's `env`; without one (absent, not empty) the runtime's own environment, as runc (Go's exec.Cmd
    with a nil Env) gives it, and as hooks such as nvidia-container-toolkit expect (PATH)."""
    if hook.get("env") is None:
        return dict(os.environ)
    env = {}
    for item in hook.get("env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _run_on_host(hook: dict[str, Any], payload: bytes) -> None:
    import subprocess

    args = hook.get("args") or [hook["path"]]
    try:
        proc = subprocess.Popen(
            args,
            executable=hook["path"],
            env=_env(hook),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            close_fds=True,
            cwd="/",
        )
    except OSError as exc:
        raise OcipyError(f"exec: {os_reason(exc)}") from None
    except ValueError:  # what the kernel cannot be given: exec's strings end at a NUL
        raise OcipyError("exec: its path, args or env contain a NUL byte") from None
    try:
        out, _ = proc.communicate(payload, timeout=_timeout(hook))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise OcipyError(f"timed out after {hook['timeout']}s") from None
    _check(proc.returncode, out)


def _check(returncode: int, output: bytes) -> None:
    if returncode == 0:
        return
    how = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
    first = output.decode(errors="replace").strip().splitlines()[:1]
    raise OcipyError(f"{how}" + (f": {first[0]}" if first else ""))


def join_plan(pid: int, field: str) -> planfmt.Plan:
    """The ops that move a new process into every namespace of `pid` that differs from ours."""
    plan = planfmt.Plan()
    flags = dict(JOIN_ORDER)
    for name in differing_namespaces(pid):
        plan.op(planfmt.OP_SETNS, field, s=(f"/proc/{pid}/ns/{name}",), a=(flags[name],), what=f"join {name} namespace")
    plan.op(planfmt.OP_CLONE, field, what="enter the pid namespace")
    return plan


def _run_in_container(hook: dict[str, Any], payload: bytes, pid: int) -> None:
    from ocipy.launch import Launch, exit_code

    plan = join_plan(pid, "/hooks")
    args = hook.get("args") or [hook["path"]]
    env = hook.get("env") or []
    try:
        plan.op(planfmt.OP_FIND_EXEC, "/hooks", s=(hook["path"],), what=hook["path"])
        plan.op(planfmt.OP_CLOSE_FDS, "/hooks", a=(0,))
        strings = (plan.strv(args), plan.strv(env))
        plan.op(planfmt.OP_EXEC, "/hooks", s=strings, a=(len(args), len(env)), what=hook["path"])
    except ValueError:  # planfmt refuses a NUL: the kernel's strings end there
        raise OcipyError("exec: its path, args or env contain a NUL byte") from None
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    launch = Launch(plan, extra=[(stdin_r, 0), (out_w, 1), (out_w, 2)])
    try:
        launch.start()
        os.close(stdin_r)
        os.close(out_w)
        stdin_r = out_w = -1
        launch.drive()
        _write_all(stdin_w, payload)
        os.close(stdin_w)
        stdin_w = -1
        status = launch.wait(_timeout(hook))
        if status is None:
            _signal.pidfd_send_signal(launch.pidfd, _signal.SIGKILL)
            launch.wait()
            raise OcipyError(f"timed out after {hook['timeout']}s")
        output = _read_some(out_r)
        code = exit_code(status)
        _check(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else code, output)
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w):
            if fd >= 0:
                os.close(fd)
        launch.abort()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return
        view = view[n:]


def _read_some(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return b""
