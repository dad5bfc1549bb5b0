"""The process section, shared by create and exec: LSM labels, seccomp, session, keyring, rlimits, personality,
memory policy, scheduler, ioprio, capabilities, groups and ids, umask, cwd, the program and its environment."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from collections.abc import Sequence
    from typing import Any

    from ocipy.spec import views

from ocipy import caps, inroot, lsm
from ocipy.plan.base import PlanError, Section, _clean, _u64, opt, pointer
from ocipy.planfmt import (
    OP_CAP_BOUNDING,
    OP_CAPSET,
    OP_CHDIR,
    OP_CLOSE_FDS,
    OP_EXEC,
    OP_FIND_EXEC,
    OP_IOPRIO,
    OP_MEMPOLICY,
    OP_NEW_KEYRING,
    OP_NO_NEW_PRIVS,
    OP_PERSONALITY,
    OP_SCHEDULER,
    OP_SECCOMP,
    OP_SETGID,
    OP_SETGROUPS,
    OP_SETRLIMIT,
    OP_SETSID,
    OP_SETUID,
    OP_SIGNAL_CREATED,
    OP_UMASK,
    OP_WAIT_START,
    OP_WRITE_PROC,
)
from ocipy.posixlite import join  # posixpath's, without importing `os` on exec's path

# Linux x86_64 (asm-generic/resource.h)
RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_CLASS_SHIFT = 13

DEFAULT_UMASK = 0o022


class ProcessSection(Section):
    # -- LSM labels and seccomp

    def check_lsm(self) -> None:
        # a LabelError is a ConfigError naming the field, as a PlanError is (docs/errors.md)
        self.label_writes = lsm.process_writes(
            opt(self.process).apparmor_profile,
            opt(self.process).selinux_label,
            self.host.lsms,
            self.host.apparmor_exec,
        )
        self.mount_label = lsm.mount_label(opt(self.linux).mount_label, self.host.lsms)

    def proc_writes(self) -> None:
        """oomScoreAdj and the AppArmor/SELinux exec labels, written early and through the caller's /proc (verified
        procfs): the container may mount no /proc of its own, or a fake one, and no mount of the container can stand
        in for them (CVE-2019-16884). Inherited by the clone; the labels take effect at the final execve."""
        oom = opt(self.process).oom_score_adj
        if oom is not None:
            self.op(
                OP_WRITE_PROC,
                "/process/oomScoreAdj",
                s=("/proc/self/oom_score_adj", str(int(oom))),
                what="oom_score_adj",
            )
        for w in self.label_writes:
            self.op(OP_WRITE_PROC, w.pointer, s=(w.path, w.text), what=w.what)

    def seccomp_program(self) -> Any:
        """The compiled linux.seccomp program (ocipy.seccomp.Program), None without one."""
        cfg = opt(self.linux).seccomp
        if cfg is None:
            return None
        # loads cffi and libseccomp only for configs that ask for seccomp, and then not when the cache has it
        from ocipy import seccomp as sc

        return sc.compile_cached(cfg, "/linux/seccomp", self.seccomp_cache)  # a SeccompError names the field

    def seccomp(self, prog: Any) -> None:
        if prog is None:
            return
        from ocipy import seccomp as sc

        insns = len(prog.bpf) // sc.SOCK_FILTER_SIZE
        self.op(
            OP_SECCOMP,
            "/linux/seccomp",
            s=(self.plan.blob(prog.bpf),),
            a=(len(prog.bpf), prog.flags, 1 if prog.listener else 0),
            what=f"seccomp filter, {insns} instructions" + (", listener" if prog.listener else ""),
        )

    # -- the process

    def process_ops(self) -> None:
        proc = self.process
        if proc is None:
            # config.md: process is OPTIONAL at create and REQUIRED by start: the container is set up and waits;
            # `start` refuses it (runtime.md: start MUST generate an error when process was not set)
            self.before_exec()
            return
        if not opt(proc).terminal:
            # its own session and process group, as runc: kill(0, sig) or a job-control signal from the container
            # must never reach the caller's group, and CRIU cannot dump a pid namespace whose init's session leader
            # is outside it (with a terminal, OP_CONSOLE calls setsid)
            self.op(OP_SETSID, "", what="new session")
        if not self.no_new_keyring:
            self.op(OP_NEW_KEYRING, "", what="new session keyring")
        seen: dict[int, int] = {}
        for i, rl in enumerate(opt(proc).rlimits or ()):
            kind = opt(rl).type
            if kind not in RLIMITS:
                raise PlanError(pointer("process", "rlimits", i, "type"), f"unknown rlimit {kind!r}")
            if RLIMITS[kind] in seen:
                raise PlanError(pointer("process", "rlimits", i, "type"), f"duplicate {kind}")
            seen[RLIMITS[kind]] = i
            soft, hard = int(opt(rl).soft or 0), int(opt(rl).hard or 0)
            try:
                args = (RLIMITS[kind], _u64(soft), _u64(hard))
            except ValueError:
                raise PlanError(pointer("process", "rlimits", i), "limits must be uint64") from None
            self.op(OP_SETRLIMIT, pointer("process", "rlimits", i), a=args, what=kind)
        self.personality()
        self.memory_policy()
        self.scheduler()
        self.ioprio()
        self.capabilities_and_ids()

    def container_root(self) -> str:
        """The container's root as a host path, for reading its files (exec: the running init's root)."""
        return self.rootfs

    def home_of(self, uid: int) -> str:
        """HOME for a process env that lacks it, as runc: the uid's entry in the container's /etc/passwd (a file
        bind-mounted there, as Podman does, is read at its source), else "/"."""
        text = None
        for m in opt(self.spec).mounts or ():
            src = opt(m).source
            if _clean(opt(m).destination or "/") == "/etc/passwd" and src:
                if not src.startswith("/"):
                    src = join(self.bundle, src)
                text = self.host.read_in_root("/", src)
        if text is None:
            text = self.host.read_in_root(self.container_root(), "/etc/passwd")
        return inroot.passwd_home(text, uid) or "/"

    def before_exec(self) -> None:
        """The last step before the fds are closed and the program runs: create reports `created` and waits for
        `start` (ocipy/execplan.py overrides this: an exec'd process runs straight on)."""
        self.op(OP_SIGNAL_CREATED, "", what="created")
        self.op(OP_WAIT_START, "", what="wait for start")

    def personality(self) -> None:
        pers = opt(self.linux).personality
        if pers is None:
            return
        domain = opt(pers).domain
        if domain not in PERSONALITY_DOMAINS:
            raise PlanError("/linux/personality/domain", f"unknown domain {domain!r} (LINUX or LINUX32)")
        for i, flag in enumerate(opt(pers).flags or ()):
            raise PlanError(pointer("linux", "personality", "flags", i), f"unsupported flag {flag!r}")
        self.op(OP_PERSONALITY, "/linux/personality", a=(PERSONALITY_DOMAINS[domain],), what=domain)

    def memory_policy(self) -> None:
        """linux.memoryPolicy: set_mempolicy in the init (before any seccomp filter), inherited by the process
        across execve; exec sets it too, as runc's setns init does. Validated as runc does (ocipy/mempolicy.py)."""
        policy = opt(self.linux).memory_policy
        if policy is None:
            return
        from ocipy import mempolicy  # only for a config that sets one (exec's path stays a module shorter)

        # a PolicyError is a ConfigError naming the field (docs/errors.md)
        value, nodes, what = mempolicy.compile_policy(opt(policy).mode, opt(policy).nodes, opt(policy).flags)
        self.op(OP_MEMPOLICY, "/linux/memoryPolicy", s=(nodes or None,), a=(value,), what=what)

    def scheduler(self) -> None:
        sched = opt(self.process).scheduler
        if sched is None:
            return
        policy = opt(sched).policy
        if policy not in SCHED_POLICIES:
            raise PlanError("/process/scheduler/policy", f"unknown policy {policy!r}")
        flags = 0
        for i, name in enumerate(opt(sched).flags or ()):
            if name not in SCHED_FLAGS:
                raise PlanError(pointer("process", "scheduler", "flags", i), f"unknown flag {name!r}")
            flags |= SCHED_FLAGS[name]
        dl = [opt(sched).runtime, opt(sched).deadline, opt(sched).period]
        text = " ".join(str(int(v or 0)) for v in dl) if any(v is not None for v in dl) else None
        nice, prio = int(opt(sched).nice or 0), int(opt(sched).priority or 0)
        self.op(
            OP_SCHEDULER, "/process/scheduler", s=(text,), a=(SCHED_POLICIES[policy], nice, prio, flags), what=policy
        )

    def ioprio(self) -> None:
        io = opt(self.process).io_priority
        if io is None:
            return
        cls = opt(io).class_
        if cls not in IOPRIO_CLASSES:
            raise PlanError("/process/ioPriority/class", f"unknown class {cls!r}")
        prio = int(opt(io).priority or 0)
        if not 0 <= prio <= 7:
            raise PlanError("/process/ioPriority/priority", "must be 0 to 7")
        value = IOPRIO_CLASSES[cls] << IOPRIO_CLASS_SHIFT | prio
        self.op(OP_IOPRIO, "/process/ioPriority", a=(value,), what=f"{cls} {prio}")

    def cap_mask(self, names: Sequence[str] | None, key: str) -> int:
        """The bit mask of one capability set; names the kernel cannot take are dropped with a warning (the spec
        says to warn, not fail)."""
        mask = 0
        for i, cap in enumerate(names or ()):
            num = caps.number(cap)
            if num is None:
                self.warn(pointer("process", "capabilities", key, i), f"unknown capability {cap!r}: ignored")
            elif num > self.host.cap_last_cap:
                self.warn(pointer("process", "capabilities", key, i), f"{cap} is not known to this kernel: ignored")
            elif self.host.bounding is not None and not self.host.bounding >> num & 1:
                # config.md: runtimes SHOULD NOT fail on capabilities that cannot be granted (a restricted
                # environment); capset would fail with EPERM for the whole set
                self.warn(
                    pointer("process", "capabilities", key, i),
                    f"{cap} cannot be granted (not in the runtime's own bounding set): ignored",
                )
            else:
                mask |= 1 << num
        return mask

    def capability_masks(self) -> dict[str, int]:
        """The five capability sets as bit masks, the ambient set cut to what the kernel can raise."""
        capset = opt(opt(self.process).capabilities)
        masks = {
            key: self.cap_mask(names, key)
            for key, names in (
                ("bounding", capset.bounding),
                ("effective", capset.effective),
                ("permitted", capset.permitted),
                ("inheritable", capset.inheritable),
                ("ambient", capset.ambient),
            )
        }
        # The kernel raises an ambient capability only when it is permitted and inheritable; runc warns and goes
        # on without the rest (`runc spec --rootless` style configs ask for ambient caps with no inheritable set).
        raisable = masks["ambient"] & masks["permitted"] & masks["inheritable"]
        if raisable != masks["ambient"]:
            self.warn(
                "/process/capabilities/ambient",
                "ambient capabilities that are not also permitted and inheritable cannot be raised: ignored",
            )
            masks["ambient"] = raisable
        return masks

    def ids(self, uid: int, gid: int, user: views.User | None) -> None:
        """Supplementary groups, gid, uid and umask."""
        groups = [str(int(g)) for g in opt(user).additional_gids or ()]
        # Always set (clearing the caller's supplementary groups), except where setgroups is denied: a user
        # namespace made by an unprivileged user. Asked-for groups are still tried so the failure names the field.
        if groups or not (self.in_userns and self.host_uid != 0):
            self.op(
                OP_SETGROUPS,
                "/process/user/additionalGids",
                s=(self.strv("/process/user/additionalGids", groups) if groups else None,),
                a=(len(groups),),
                what="groups " + (",".join(groups) or "(none)"),
            )
        self.op(OP_SETGID, "/process/user/gid", a=(gid,), what=f"gid {gid}")
        self.op(OP_SETUID, "/process/user/uid", a=(uid,), what=f"uid {uid}")
        umask = opt(user).umask
        umask = DEFAULT_UMASK if umask is None else int(umask)
        self.op(OP_UMASK, "/process/user/umask", a=(umask,), what=f"umask {umask:04o}")

    def capabilities_and_ids(self) -> None:
        proc = self.process
        masks = self.capability_masks()
        self.op(OP_CAP_BOUNDING, "/process/capabilities/bounding", a=(masks["bounding"],), what="bounding set")
        # Before any seccomp filter: a profile need not allow close_range (or fcntl) for ocipy's sake.
        self.op(OP_CLOSE_FDS, "", a=(self.extra_fds,), what=f"keep {self.extra_fds} extra fds")
        cwd = opt(proc).cwd
        # The working directory (and its getcwd check) before any seccomp filter too, as root; a directory root
        # cannot enter (a user namespace) is tried again below with the process's own ids.
        self.op(OP_CHDIR, "/process/cwd", s=(cwd,), a=(1,), what=f"cd {cwd}")
        nnp = bool(opt(proc).no_new_privileges)
        prog = self.seccomp_program()
        if not nnp:
            # without no_new_privs installing a filter needs CAP_SYS_ADMIN: before the ids and capabilities change
            self.seccomp(prog)
        user = opt(proc).user
        uid, gid = int(opt(user).uid or 0), int(opt(user).gid or 0)
        self.ids(uid, gid, user)
        self.op(OP_CHDIR, "/process/cwd", s=(cwd,), a=(2,), what=f"cd {cwd} (if root could not)")
        args = list(opt(proc).args or ())
        if not args or not args[0]:
            raise PlanError("/process/args", "at least one argument (the program) is required")
        env = list(opt(proc).env or ())
        if not any(e.startswith("HOME=") for e in env):
            env.append("HOME=" + self.home_of(uid))
        path = next((e[5:] for e in env if e.startswith("PATH=")), None)
        self.op(OP_FIND_EXEC, "/process/args/0", s=(args[0], path), what=f"find {args[0]}")
        self.op(
            OP_CAPSET,
            "/process/capabilities",
            a=(masks["effective"], masks["permitted"], masks["inheritable"], masks["ambient"]),
            what="capabilities",
        )
        listener = prog is not None and prog.listener
        if nnp:
            self.op(OP_NO_NEW_PRIVS, "/process/noNewPrivileges", what="no_new_privs")
            if listener:
                # before `created`, while the runtime still listens on the sync socket for the listener fd
                self.seccomp(prog)
        self.before_exec()
        if nnp and not listener:
            # last: after the filter only execve follows (a profile need not allow poll, read or close)
            self.seccomp(prog)
        env += self.env_extra
        self.op(
            OP_EXEC,
            "/process/args",
            s=(self.strv("/process/args", args), self.strv("/process/env", env) if env else None),
            a=(len(args), len(env)),
            what=f"exec {args[0]}",
        )
