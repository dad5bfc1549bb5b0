"""Compile the plan that runs one more process inside a running (or created) container: `ocipy exec`.

The process section is create's (ocipy/plan/process.py `ProcessSection.process_ops`: keyring, rlimits, personality,
scheduler, ioprio, bounding set, seccomp, groups, ids, umask, cwd, find exec, capabilities, no_new_privs), so exec and
create can never disagree on what a process field means. What differs is everything around it:

Stage 0 (the caller's namespaces, host /proc):
  1. `OP_JOIN_CGROUP` per cgroup.procs file of the container (before any namespace: after a user namespace change
     the host cgroup files may no longer be writable).
  2. `OP_CPU_AFFINITY` execCPUAffinity.initial (after the cgroup join, which may have reset the affinity).
  3. `OP_WRITE_PROC` oomScoreAdj and the AppArmor/SELinux exec labels, through the caller's verified procfs (the
     container's /proc may be fake); all are inherited by the clone below and the labels apply at its execve.
  4. `OP_SETNS` for every namespace of the container init that differs from ours: user first (it owns the others),
     mount last (the other namespace files are paths in our mount namespace).
  5. `OP_CLONE`: the child is in the container's pid (and time) namespace and a child of the caller (CLONE_PARENT).
Stage 1 (the container's namespaces, root = the container's root):
  6. With a terminal: `OP_OPEN_ROOT "/"`, `OP_CONSOLE` with a3 = 1 (a pty of the container's devpts, never bound on
     /dev/console: that stays the init's console).
  7. The process section (above), no `created` handshake, then `OP_CPU_AFFINITY` execCPUAffinity.final,
     `OP_CLOSE_FDS(extra_fds)` and `OP_EXEC`.

Pure like ocipy/plan/: the host is looked at read-only (HostFacts, and which namespaces differ, which tests pass).
"""

from __future__ import annotations

from collections.abc import Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Any

from ocipy.hooks import JOIN_ORDER, differing_namespaces
from ocipy.plan.base import CreatePlan, PlanError, _get
from ocipy.plan.create import _Compiler
from ocipy.plan.host import HostFacts
from ocipy.planfmt import (
    OP_CLONE,
    OP_CONSOLE,
    OP_CPU_AFFINITY,
    OP_JOIN_CGROUP,
    OP_OPEN_ROOT,
    OP_SETNS,
    OP_WRITE_PROC,
)

CONSOLE_NO_DEV_CONSOLE = 1  # OP_CONSOLE a3: do not bind the pty on /dev/console


def compile_exec(
    container_spec: Any,
    process: Any,
    *,
    init_pid: int,
    cgroup_procs: Sequence[str] = (),
    console_fd: int | None = None,
    extra_fds: int = 0,
    joins: Sequence[str] | None = None,
    no_new_keyring: bool = False,
    host_uid: int = 0,
    host: HostFacts | None = None,
    seccomp_cache: str | None = None,
) -> CreatePlan:
    """The plan that joins the container of `init_pid` and execs `process` there.

    `container_spec`: the config as it was at create (its namespaces, id mappings, personality, seccomp).
    `process`: the process to run (the config's, with the exec flags applied, or a whole --process document).
    `joins`: the namespace kinds to enter (hooks.JOIN_ORDER names); None = those of `init_pid` that differ from ours.
    `console_fd`: the fd (in the init) of the socket that receives the pty master when `process.terminal`.
    `seccomp_cache`: a directory of compiled seccomp programs (`ocipy.seccomp.compile_cached`); None: no cache.
    """
    compiler = _ExecCompiler(
        container_spec,
        process,
        init_pid=init_pid,
        cgroup_procs=list(cgroup_procs),
        console_fd=console_fd,
        extra_fds=extra_fds,
        joins=differing_namespaces(init_pid) if joins is None else list(joins),
        no_new_keyring=no_new_keyring,
        host_uid=host_uid,
        host=host or HostFacts.probe(),
    )
    compiler.seccomp_cache = seccomp_cache
    return compiler.run()


class _ExecCompiler(_Compiler):
    def __init__(
        self,
        spec: Any,
        process: Any,
        *,
        init_pid: int,
        cgroup_procs: list[str],
        console_fd: int | None,
        extra_fds: int,
        joins: list[str],
        no_new_keyring: bool,
        host_uid: int,
        host: HostFacts,
    ) -> None:
        super().__init__(
            spec,
            rootfs="/",
            bundle="",
            fifo="",
            console_fd=console_fd,
            extra_fds=extra_fds,
            no_pivot=False,
            no_new_keyring=no_new_keyring,
            env_extra=[],
            host_uid=host_uid,
            cgroup_procs=cgroup_procs,
            host=host,
        )
        self.process = process
        self.init_pid = init_pid
        self.joins = joins

    def run(self) -> CreatePlan:
        proc = self.process
        if proc is None:
            raise PlanError("/process", "exec needs a process")
        cwd = _get(proc, "cwd")
        if not cwd or not str(cwd).startswith("/"):
            raise PlanError("/process/cwd", f"{cwd!r} must be an absolute path")
        args = list(_get(proc, "args") or ())
        if not args or not args[0]:
            raise PlanError("/process/args", "at least one argument (the program) is required")
        self.read_namespaces()
        self.check_config()  # the ids must be mapped in the container's user namespace
        self.check_lsm()
        self.stage0_join()
        self.stage1_console()
        self.process_ops()
        return self.plan

    def container_root(self) -> str:
        return f"/proc/{self.init_pid}/root"

    def stage0_join(self) -> None:
        for path in self.cgroup_procs:
            self.op(OP_JOIN_CGROUP, "/linux/cgroupsPath", s=(path,), what="join the container's cgroup")
        self.cpu_affinity("initial")
        oom = _get(self.process, "oom_score_adj")
        if oom is not None:
            self.op(
                OP_WRITE_PROC,
                "/process/oomScoreAdj",
                s=("/proc/self/oom_score_adj", str(int(oom))),
                what="oom_score_adj",
            )
        for w in self.label_writes:
            # through the caller's /proc (verified procfs) before entering the container: its /proc may be fake
            self.op(OP_WRITE_PROC, w.pointer, s=(w.path, w.text), what=w.what)
        flags = dict(JOIN_ORDER)
        for name, _flag in JOIN_ORDER:  # the fixed order, whatever order `joins` came in
            if name in self.joins:
                path = f"/proc/{self.init_pid}/ns/{name}"
                self.op(OP_SETNS, "/linux/namespaces", s=(path,), a=(flags[name],), what=f"join {name} namespace")
        self.op(OP_CLONE, "", a=(0,), what="fork the process in the container's pid namespace")

    def stage1_console(self) -> None:
        proc = self.process
        if not _get(proc, "terminal"):
            return
        if self.console_fd is None:
            raise PlanError("/process/terminal", "a terminal needs a console socket (--console-socket)")
        size = _get(proc, "console_size")
        rows, cols = int(_get(size, "height") or 0), int(_get(size, "width") or 0)
        self.op(OP_OPEN_ROOT, "", s=("/",), what="the container's root")
        self.op(
            OP_CONSOLE,
            "/process/terminal",
            a=(self.console_fd, rows, cols, CONSOLE_NO_DEV_CONSOLE),
            what="pty from the container's devpts",
        )

    def cpu_affinity(self, which: str) -> None:
        cpus = _get(_get(self.process, "exec_cpu_affinity"), which)
        if cpus:
            text = "".join(str(cpus).split())
            self.op(OP_CPU_AFFINITY, f"/process/execCPUAffinity/{which}", s=(text,), what=f"{which} cpus {text}")

    def before_exec(self) -> None:
        # no `created` handshake: an exec'd process runs straight on; the final affinity comes last
        self.cpu_affinity("final")
