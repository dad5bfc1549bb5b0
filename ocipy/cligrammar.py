"""The command line's grammar: every runc verb with its flags and positionals, as one table (`VERBS`).

Both parsers read it: the hand parser of `ocipy/cli.py` for the verbs callers run constantly (`FAST_VERBS`) and
argparse (`ocipy/cliargparse.py`) for help, usage errors and every other verb. Plain objects with `__slots__`, no
`dataclasses` or `typing` at run time: this module is on every lifecycle verb's path.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Opt:
    __slots__ = ("default", "dest", "flags", "help", "kind")

    def __init__(self, flags: tuple[str, ...], dest: str, kind: str, default: "Any", help: str) -> None:
        self.flags = flags
        self.dest = dest
        self.kind = kind  # "bool" | "str" | "int" | "list"
        self.default = default
        self.help = help


class Pos:
    __slots__ = ("dest", "help", "name", "nargs")

    def __init__(self, name: str, dest: str, nargs: str, help: str) -> None:
        self.name = name
        self.dest = dest
        self.nargs = nargs  # "1" (required), "?" (optional), "..." (the rest, verbatim)
        self.help = help


class Verb:
    __slots__ = ("help", "opts", "pos")

    def __init__(self, help: str, opts: tuple[Opt, ...], pos: tuple[Pos, ...]) -> None:
        self.help = help
        self.opts = opts
        self.pos = pos


def _b(flags: tuple[str, ...], dest: str, help: str) -> Opt:
    return Opt(flags, dest, "bool", False, help)


def _s(flags: tuple[str, ...], dest: str, help: str, default: "Any" = None) -> Opt:
    return Opt(flags, dest, "str", default, help)


_ID = Pos("container-id", "container_id", "1", "the container's id")
_BUNDLE = _s(
    ("--bundle", "-b"),
    "bundle",
    "path to the root of the bundle directory (default: the current directory)",
)
_CONSOLE = _s(("--console-socket",), "console_socket", "AF_UNIX socket to receive the pty master")
_PIDFD = _s(
    ("--pidfd-socket",),
    "pidfd_socket",
    "path to an AF_UNIX socket which will receive a file descriptor referencing the container's process",
)
_PIDFILE = _s(("--pid-file",), "pid_file", "write the process id to this file")
_NOPIVOT = _b(
    ("--no-pivot",),
    "no_pivot",
    "do not use pivot_root to jail the process inside rootfs",
)
_NOKEYRING = _b(("--no-new-keyring",), "no_new_keyring", "do not create a new session keyring")
_PRESERVE = Opt(
    ("--preserve-fds",),
    "preserve_fds",
    "int",
    0,
    "pass N additional fds to the container",
)
_DETACH = _b(("--detach", "-d"), "detach", "detach from the container's process")
_FORMAT = _s(("--format", "-f"), "format", "select one of: table or json", "table")
_CRIU_COMMON = (
    _s(("--image-path",), "image_path", "path to criu image files"),
    _s(("--work-path",), "work_path", "path for criu work files and logs"),
    _b(("--tcp-established",), "tcp_established", "allow open tcp connections"),
    _b(("--ext-unix-sk",), "ext_unix_sk", "allow external unix sockets"),
    _b(("--shell-job",), "shell_job", "allow shell jobs"),
    _b(("--file-locks",), "file_locks", "handle file locks"),
    _s(
        ("--manage-cgroups-mode",),
        "manage_cgroups_mode",
        "cgroups mode: soft, full or strict",
    ),
    Opt(
        ("--empty-ns",),
        "empty_ns",
        "list",
        None,
        "create a namespace, but don't restore its properties (repeatable: network)",
    ),
    _b(("--auto-dedup",), "auto_dedup", "enable auto deduplication of memory images"),
    _b(
        ("--lazy-pages",),
        "lazy_pages",
        "use userfaultfd to lazily restore memory pages",
    ),
)

VERBS: dict[str, Verb] = {
    "check": Verb(
        "report what this host's kernel can give a container (namespaces, cgroups, seccomp, LSMs, ...)",
        (_s(("--format", "-f"), "format", "select one of: text or json", "text"),),
        (),
    ),
    "checkpoint": Verb(
        "checkpoint a running container",
        (
            *_CRIU_COMMON,
            _s(
                ("--parent-path",),
                "parent_path",
                "path for previous criu image files in pre-dump",
            ),
            _b(
                ("--leave-running",),
                "leave_running",
                "leave the process running after checkpointing",
            ),
            _b(("--tcp-skip-in-flight",), "tcp_skip_in_flight", "skip in-flight tcp connections"),
            _b(("--link-remap",), "link_remap", "allow one to link unlinked files back when possible"),
            Opt(
                ("--status-fd",),
                "status_fd",
                "int",
                -1,
                "criu writes \\0 to this fd once lazy-pages is ready",
            ),
            _s(("--page-server",), "page_server", "ADDRESS:PORT of the page server"),
            _b(
                ("--pre-dump",),
                "pre_dump",
                "dump memory only, leave the container running",
            ),
        ),
        (_ID,),
    ),
    "create": Verb(
        "create a container",
        (_BUNDLE, _CONSOLE, _PIDFD, _PIDFILE, _NOPIVOT, _NOKEYRING, _PRESERVE),
        (_ID,),
    ),
    "delete": Verb(
        "delete any resources held by the container",
        (
            _b(
                ("--force", "-f"),
                "force",
                "forcibly delete the container if it is still running (uses SIGKILL)",
            ),
        ),
        (_ID,),
    ),
    "events": Verb(
        "display container events and statistics",
        (
            _s(("--interval",), "interval", "set the stats collection interval", "5s"),
            _b(("--stats",), "stats", "display the container's stats then exit"),
        ),
        (_ID,),
    ),
    "exec": Verb(
        "execute new process inside the container",
        (
            _CONSOLE,
            _PIDFD,
            _s(("--cwd",), "cwd", "current working directory in the container"),
            Opt(("--env", "-e"), "env", "list", None, "set environment variables"),
            _b(("--tty", "-t"), "tty", "allocate a pseudo-TTY"),
            _s(("--user", "-u"), "user", "UID (format: <uid>[:<gid>])"),
            Opt(
                ("--additional-gids", "-g"),
                "additional_gids",
                "list",
                None,
                "additional gids",
            ),
            _s(("--process", "-p"), "process", "path to the process.json"),
            _DETACH,
            _PIDFILE,
            _s(
                ("--process-label",),
                "process_label",
                "set the asm process label for the process",
            ),
            _s(("--apparmor",), "apparmor", "set the apparmor profile for the process"),
            _b(
                ("--no-new-privs",),
                "no_new_privs",
                "set the no new privileges value for the process",
            ),
            Opt(
                ("--cap", "-c"),
                "cap",
                "list",
                None,
                "add a capability to the bounding set for the process",
            ),
            _PRESERVE,
            Opt(
                ("--cgroup",),
                "cgroup",
                "list",
                None,
                "run the process in an (existing) sub-cgroup",
            ),
            _b(
                ("--ignore-paused",),
                "ignore_paused",
                "allow exec in a paused container",
            ),
        ),
        (_ID, Pos("command", "command", "...", "the command and its arguments")),
    ),
    "features": Verb("show the enabled features", (), ()),
    "kill": Verb(
        "send a signal (default: SIGTERM) to the container's init process",
        (
            _b(
                ("--all", "-a"),
                "all",
                "send the signal to all processes inside the container",
            ),
        ),
        (_ID, Pos("signal", "signal", "?", "signal number or name (default: SIGTERM)")),
    ),
    "list": Verb(
        "list containers started by ocipy with the given root",
        (_FORMAT, _b(("--quiet", "-q"), "quiet", "display only container IDs")),
        (),
    ),
    "pause": Verb("suspend all processes inside the container", (), (_ID,)),
    "ps": Verb(
        "display the processes running inside a container",
        (_FORMAT,),
        (_ID, Pos("ps-options", "ps_options", "...", "options passed to ps(1)")),
    ),
    "restore": Verb(
        "restore a container from a previous checkpoint",
        (
            *_CRIU_COMMON,
            _CONSOLE,
            _BUNDLE,
            _DETACH,
            _PIDFILE,
            _b(("--no-subreaper",), "no_subreaper", "disable the use of the subreaper"),
            _NOPIVOT,
            _s(
                ("--lsm-profile",),
                "lsm_profile",
                "LSM profile to use during restore, TYPE:NAME",
            ),
            _s(
                ("--lsm-mount-context",),
                "lsm_mount_context",
                "LSM mount context to use during restore",
            ),
        ),
        (_ID,),
    ),
    "resume": Verb("resume all processes that have been previously paused", (), (_ID,)),
    "run": Verb(
        "create and run a container",
        (
            _BUNDLE,
            _CONSOLE,
            _PIDFD,
            _DETACH,
            _b(("--keep",), "keep", "do not delete the container after it exits"),
            _PIDFILE,
            _b(("--no-subreaper",), "no_subreaper", "disable the use of the subreaper"),
            _NOPIVOT,
            _NOKEYRING,
            _PRESERVE,
        ),
        (_ID,),
    ),
    "spec": Verb(
        "create a new specification file",
        (
            _BUNDLE,
            _b(
                ("--rootless",),
                "rootless_spec",
                "generate a configuration for a rootless container",
            ),
        ),
        (),
    ),
    "start": Verb("execute the user defined process in a created container", (), (_ID,)),
    "state": Verb("output the state of a container", (), (_ID,)),
    "update": Verb(
        "update container resource constraints",
        (
            _s(
                ("--resources", "-r"),
                "resources",
                "path to a LinuxResources JSON file, or '-' for stdin",
            ),
            _s(
                ("--blkio-weight",),
                "blkio_weight",
                "per cgroup weight, range 10 to 1000",
            ),
            _s(("--cpu-period",), "cpu_period", "CPU CFS period in usecs"),
            _s(("--cpu-quota",), "cpu_quota", "CPU CFS hardcap limit in usecs"),
            _s(("--cpu-burst",), "cpu_burst", "CPU CFS hardcap burst limit in usecs"),
            _s(("--cpu-idle",), "cpu_idle", "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
            _s(("--cpu-share",), "cpu_share", "CPU shares (relative weight)"),
            _s(("--cpu-rt-period",), "cpu_rt_period", "CPU realtime period in usecs"),
            _s(
                ("--cpu-rt-runtime",),
                "cpu_rt_runtime",
                "CPU realtime hardcap limit in usecs",
            ),
            _s(("--cpuset-cpus",), "cpuset_cpus", "CPU(s) to use"),
            _s(("--cpuset-mems",), "cpuset_mems", "memory node(s) to use"),
            _s(("--memory",), "memory", "memory limit in bytes"),
            _s(
                ("--memory-reservation",),
                "memory_reservation",
                "memory soft limit in bytes",
            ),
            _s(
                ("--memory-swap",),
                "memory_swap",
                "memory + swap limit in bytes; -1 for unlimited swap",
            ),
            _s(("--pids-limit",), "pids_limit", "maximum number of pids"),
            _s(("--kernel-memory",), "kernel_memory", "kernel memory limit in bytes (deprecated)"),
            _s(("--kernel-memory-tcp",), "kernel_memory_tcp", "kernel memory limit for tcp buffers in bytes"),
            _s(
                ("--l3-cache-schema",),
                "l3_cache_schema",
                "Intel RDT/CAT L3 cache schema",
            ),
            _s(
                ("--mem-bw-schema",),
                "mem_bw_schema",
                "Intel RDT/MBA memory bandwidth schema",
            ),
        ),
        (_ID,),
    ),
    "validate": Verb("check a bundle's config.json against the runtime-spec", (_BUNDLE,), ()),
}

# the verbs callers run constantly (create, run and exec too: every podman run pays for them): parsed without
# argparse when the input is plain
FAST_VERBS = frozenset(
    {"start", "state", "kill", "delete", "pause", "resume", "list", "ps", "features", "create", "run", "exec"}
    | {"checkpoint", "restore"}  # runc spends ~30 ms around CRIU: argparse alone would be as much
)

# verb -> module under ocipy.operations (`list` shadows a builtin)
MODULES = {verb: verb for verb in VERBS} | {"list": "list_"}
