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

Built from the planner's sections exec shares with create and nothing else (issue 15): ocipy/plan/namespaces.py
(linux.namespaces and the id mappings, to check the process's ids) and ocipy/plan/process.py. The mount, device,
sysctl and cgroup sections are not imported, and the host is probed only for what those two read (capabilities,
LSMs): no mountinfo parse, no cgroup layout.

Pure like ocipy/plan/: the host is looked at read-only (HostFacts, and which namespaces differ, which tests pass).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`), `collections.abc` ~1 ms: annotations only
    from collections.abc import Sequence

    from ocipy.plan.host import HostFacts
    from ocipy.spec import views

from ocipy import caps, inroot, lsm
from ocipy.namespaces import JOIN_ORDER, differing_namespaces  # not ocipy/hooks.py: exec does not run hooks
from ocipy.plan.base import CreatePlan, PlanError, opt
from ocipy.plan.namespaces import NamespacesSection
from ocipy.plan.process import ProcessSection
from ocipy.planfmt import (
    OP_CLONE,
    OP_CONSOLE,
    OP_CPU_AFFINITY,
    OP_JOIN_CGROUP,
    OP_OPEN_ROOT,
    OP_SETNS,
)

CONSOLE_NO_DEV_CONSOLE = 1  # OP_CONSOLE a3: do not bind the pty on /dev/console


def compile_exec(
    container_spec: views.Spec,
    process: views.Process | None,
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
    `joins`: the namespace kinds to enter (namespaces.JOIN_ORDER names); None = those of `init_pid` that differ from ours.
    `console_fd`: the fd (in the init) of the socket that receives the pty master when `process.terminal`.
    `seccomp_cache`: a directory of compiled seccomp programs (`ocipy.seccomp.compile_cached`); None: no cache.
    """
    compiler = _ExecCompiler(
        container_spec,
        rootfs="/",
        bundle="",
        fifo="",
        console_fd=console_fd,
        extra_fds=extra_fds,
        no_pivot=False,
        no_new_keyring=no_new_keyring,
        env_extra=[],
        host_uid=host_uid,
        cgroup_procs=list(cgroup_procs),
        host=host or probe_host(),
    )
    compiler.process = process
    compiler.init_pid = init_pid
    compiler.joins = differing_namespaces(init_pid) if joins is None else list(joins)
    compiler.seccomp_cache = seccomp_cache
    return compiler.run()


class _ProcessHost:
    """The HostFacts fields the namespace and process sections read, probed (exec plans no mounts, devices or
    cgroups: ocipy/plan/host.py and its mountinfo, cgroup layout and rootless probes cost ~0.7 ms and are not needed).
    A field these sections start to read and this lacks fails loudly (tests/unit/test_execplan.py compiles with it)."""

    def __init__(self) -> None:
        self.cap_last_cap = caps.host_last_cap()
        self.bounding = caps.own_bounding_set()
        self.lsms = lsm.active()
        self.apparmor_exec = lsm.apparmor_exec_path()
        self.read_in_root = inroot.read_in_root


def probe_host() -> HostFacts:
    """What exec's sections need to know about the host (HostFacts' fields of the same names)."""
    return _ProcessHost()  # type: ignore[return-value]  # duck-typed: only these fields are read


class _ExecCompiler(NamespacesSection, ProcessSection):
    init_pid = 0
    joins: Sequence[str] = ()  # the namespace kinds to enter (namespaces.JOIN_ORDER names)

    def run(self) -> CreatePlan:
        proc = self.process
        if proc is None:
            raise PlanError("/process", "exec needs a process")
        cwd = opt(proc).cwd
        if not cwd or not str(cwd).startswith("/"):
            raise PlanError("/process/cwd", f"{cwd!r} must be an absolute path")
        args = list(opt(proc).args or ())
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
        self.proc_writes()
        flags = dict(JOIN_ORDER)
        for name, _flag in JOIN_ORDER:  # the fixed order, whatever order `joins` came in
            if name in self.joins:
                path = f"/proc/{self.init_pid}/ns/{name}"
                self.op(OP_SETNS, "/linux/namespaces", s=(path,), a=(flags[name],), what=f"join {name} namespace")
        self.op(OP_CLONE, "", a=(0,), what="fork the process in the container's pid namespace")

    def stage1_console(self) -> None:
        proc = opt(self.process)
        if not proc.terminal:
            return
        if self.console_fd is None:
            raise PlanError("/process/terminal", "a terminal needs a console socket (--console-socket)")
        size = opt(proc.console_size)
        rows, cols = int(size.height or 0), int(size.width or 0)
        self.op(OP_OPEN_ROOT, "", s=("/",), what="the container's root")
        self.op(
            OP_CONSOLE,
            "/process/terminal",
            a=(self.console_fd, rows, cols, CONSOLE_NO_DEV_CONSOLE),
            what="pty from the container's devpts",
        )

    def cpu_affinity(self, which: str) -> None:
        affinity = opt(opt(self.process).exec_cpu_affinity)
        cpus = affinity.initial if which == "initial" else affinity.final
        if cpus:
            text = "".join(str(cpus).split())
            self.op(OP_CPU_AFFINITY, f"/process/execCPUAffinity/{which}", s=(text,), what=f"{which} cpus {text}")

    def before_exec(self) -> None:
        # no `created` handshake: an exec'd process runs straight on; the final affinity comes last
        self.cpu_affinity("final")
