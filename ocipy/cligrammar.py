"""The command line's grammar: every runc verb with its flags and positionals, as one table (`_TABLE`, read as
`verb_spec(verb)` or the whole `VERBS`).

Both parsers read it: the hand parser of `ocipy/cli.py` for the verbs callers run constantly (`FAST_VERBS`) and
argparse (`ocipy/cliargparse.py`) for help, usage errors and every other verb. Plain objects with `__slots__`, no
`dataclasses` or `typing` at run time: this module is on every lifecycle verb's path.

The table is plain tuples, constants the compiler folds, and a command turns only its own verb's row into `Verb`,
`Opt` and `Pos` objects: building all ~100 at import cost ~40 us of every command.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # the rows of the table: Opt(flags, dest, kind, default, help), Pos(name, dest, nargs, help), Verb(help, opts, pos)
    _OptRow = tuple[tuple[str, ...], str, str, Any, str]
    _PosRow = tuple[str, str, str, str]
    _VerbRow = tuple[str, tuple[_OptRow, ...], tuple[_PosRow, ...]]


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


_ID: "_PosRow" = ("container-id", "container_id", "1", "the container's id")
_BUNDLE: "_OptRow" = (
    ("--bundle", "-b"),
    "bundle",
    "str",
    None,
    "path to the root of the bundle directory (default: the current directory)",
)
_CONSOLE: "_OptRow" = (("--console-socket",), "console_socket", "str", None, "AF_UNIX socket to receive the pty master")
_PIDFD: "_OptRow" = (
    ("--pidfd-socket",),
    "pidfd_socket",
    "str",
    None,
    "path to an AF_UNIX socket which will receive a file descriptor referencing the container's process",
)
_PIDFILE: "_OptRow" = (("--pid-file",), "pid_file", "str", None, "write the process id to this file")
_NOPIVOT: "_OptRow" = (
    ("--no-pivot",),
    "no_pivot",
    "bool",
    False,
    "do not use pivot_root to jail the process inside rootfs",
)
_NOKEYRING: "_OptRow" = (("--no-new-keyring",), "no_new_keyring", "bool", False, "do not create a new session keyring")
_PRESERVE: "_OptRow" = (("--preserve-fds",), "preserve_fds", "int", 0, "pass N additional fds to the container")
_DETACH: "_OptRow" = (("--detach", "-d"), "detach", "bool", False, "detach from the container's process")
_FORMAT: "_OptRow" = (("--format", "-f"), "format", "str", "table", "select one of: table or json")
_CRIU_COMMON: "tuple[_OptRow, ...]" = (
    (("--image-path",), "image_path", "str", None, "path to criu image files"),
    (("--work-path",), "work_path", "str", None, "path for criu work files and logs"),
    (("--tcp-established",), "tcp_established", "bool", False, "allow open tcp connections"),
    (("--ext-unix-sk",), "ext_unix_sk", "bool", False, "allow external unix sockets"),
    (("--shell-job",), "shell_job", "bool", False, "allow shell jobs"),
    (("--file-locks",), "file_locks", "bool", False, "handle file locks"),
    (("--manage-cgroups-mode",), "manage_cgroups_mode", "str", None, "cgroups mode: soft, full or strict"),
    (
        ("--empty-ns",),
        "empty_ns",
        "list",
        None,
        "create a namespace, but don't restore its properties (repeatable: network)",
    ),
    (("--auto-dedup",), "auto_dedup", "bool", False, "enable auto deduplication of memory images"),
    (("--lazy-pages",), "lazy_pages", "bool", False, "use userfaultfd to lazily restore memory pages"),
)

_TABLE: "dict[str, _VerbRow]" = {
    "check": (
        "report what this host's kernel can give a container (namespaces, cgroups, seccomp, LSMs, ...)",
        ((("--format", "-f"), "format", "str", "text", "select one of: text or json"),),
        (),
    ),
    "checkpoint": (
        "checkpoint a running container",
        (
            *_CRIU_COMMON,
            (("--parent-path",), "parent_path", "str", None, "path for previous criu image files in pre-dump"),
            (("--leave-running",), "leave_running", "bool", False, "leave the process running after checkpointing"),
            (("--tcp-skip-in-flight",), "tcp_skip_in_flight", "bool", False, "skip in-flight tcp connections"),
            (("--link-remap",), "link_remap", "bool", False, "allow one to link unlinked files back when possible"),
            (("--status-fd",), "status_fd", "int", -1, "criu writes \\0 to this fd once lazy-pages is ready"),
            (("--page-server",), "page_server", "str", None, "ADDRESS:PORT of the page server"),
            (("--pre-dump",), "pre_dump", "bool", False, "dump memory only, leave the container running"),
        ),
        (_ID,),
    ),
    "create": ("create a container", (_BUNDLE, _CONSOLE, _PIDFD, _PIDFILE, _NOPIVOT, _NOKEYRING, _PRESERVE), (_ID,)),
    "delete": (
        "delete any resources held by the container",
        (
            (
                ("--force", "-f"),
                "force",
                "bool",
                False,
                "forcibly delete the container if it is still running (uses SIGKILL)",
            ),
        ),
        (_ID,),
    ),
    "events": (
        "display container events and statistics",
        (
            (("--interval",), "interval", "str", "5s", "set the stats collection interval"),
            (("--stats",), "stats", "bool", False, "display the container's stats then exit"),
        ),
        (_ID,),
    ),
    "exec": (
        "execute new process inside the container",
        (
            _CONSOLE,
            _PIDFD,
            (("--cwd",), "cwd", "str", None, "current working directory in the container"),
            (("--env", "-e"), "env", "list", None, "set environment variables"),
            (("--tty", "-t"), "tty", "bool", False, "allocate a pseudo-TTY"),
            (("--user", "-u"), "user", "str", None, "UID (format: <uid>[:<gid>])"),
            (("--additional-gids", "-g"), "additional_gids", "list", None, "additional gids"),
            (("--process", "-p"), "process", "str", None, "path to the process.json"),
            _DETACH,
            _PIDFILE,
            (("--process-label",), "process_label", "str", None, "set the asm process label for the process"),
            (("--apparmor",), "apparmor", "str", None, "set the apparmor profile for the process"),
            (("--no-new-privs",), "no_new_privs", "bool", False, "set the no new privileges value for the process"),
            (("--cap", "-c"), "cap", "list", None, "add a capability to the bounding set for the process"),
            _PRESERVE,
            (("--cgroup",), "cgroup", "list", None, "run the process in an (existing) sub-cgroup"),
            (("--ignore-paused",), "ignore_paused", "bool", False, "allow exec in a paused container"),
        ),
        (_ID, ("command", "command", "...", "the command and its arguments")),
    ),
    "features": ("show the enabled features", (), ()),
    "kill": (
        "send a signal (default: SIGTERM) to the container's init process",
        ((("--all", "-a"), "all", "bool", False, "send the signal to all processes inside the container"),),
        (_ID, ("signal", "signal", "?", "signal number or name (default: SIGTERM)")),
    ),
    "list": (
        "list containers started by ocipy with the given root",
        (_FORMAT, (("--quiet", "-q"), "quiet", "bool", False, "display only container IDs")),
        (),
    ),
    "pause": ("suspend all processes inside the container", (), (_ID,)),
    "ps": (
        "display the processes running inside a container",
        (_FORMAT,),
        (_ID, ("ps-options", "ps_options", "...", "options passed to ps(1)")),
    ),
    "restore": (
        "restore a container from a previous checkpoint",
        (
            *_CRIU_COMMON,
            _CONSOLE,
            _BUNDLE,
            _DETACH,
            _PIDFILE,
            (("--no-subreaper",), "no_subreaper", "bool", False, "disable the use of the subreaper"),
            _NOPIVOT,
            (("--lsm-profile",), "lsm_profile", "str", None, "LSM profile to use during restore, TYPE:NAME"),
            (("--lsm-mount-context",), "lsm_mount_context", "str", None, "LSM mount context to use during restore"),
        ),
        (_ID,),
    ),
    "resume": ("resume all processes that have been previously paused", (), (_ID,)),
    "run": (
        "create and run a container",
        (
            _BUNDLE,
            _CONSOLE,
            _PIDFD,
            _DETACH,
            (("--keep",), "keep", "bool", False, "do not delete the container after it exits"),
            _PIDFILE,
            (("--no-subreaper",), "no_subreaper", "bool", False, "disable the use of the subreaper"),
            _NOPIVOT,
            _NOKEYRING,
            _PRESERVE,
        ),
        (_ID,),
    ),
    "spec": (
        "create a new specification file",
        (
            _BUNDLE,
            (("--rootless",), "rootless_spec", "bool", False, "generate a configuration for a rootless container"),
        ),
        (),
    ),
    "start": ("execute the user defined process in a created container", (), (_ID,)),
    "state": ("output the state of a container", (), (_ID,)),
    "update": (
        "update container resource constraints",
        (
            (("--resources", "-r"), "resources", "str", None, "path to a LinuxResources JSON file, or '-' for stdin"),
            (("--blkio-weight",), "blkio_weight", "str", None, "per cgroup weight, range 10 to 1000"),
            (("--cpu-period",), "cpu_period", "str", None, "CPU CFS period in usecs"),
            (("--cpu-quota",), "cpu_quota", "str", None, "CPU CFS hardcap limit in usecs"),
            (("--cpu-burst",), "cpu_burst", "str", None, "CPU CFS hardcap burst limit in usecs"),
            (
                ("--cpu-idle",),
                "cpu_idle",
                "str",
                None,
                "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE",
            ),
            (("--cpu-share",), "cpu_share", "str", None, "CPU shares (relative weight)"),
            (("--cpu-rt-period",), "cpu_rt_period", "str", None, "CPU realtime period in usecs"),
            (("--cpu-rt-runtime",), "cpu_rt_runtime", "str", None, "CPU realtime hardcap limit in usecs"),
            (("--cpuset-cpus",), "cpuset_cpus", "str", None, "CPU(s) to use"),
            (("--cpuset-mems",), "cpuset_mems", "str", None, "memory node(s) to use"),
            (("--memory",), "memory", "str", None, "memory limit in bytes"),
            (("--memory-reservation",), "memory_reservation", "str", None, "memory soft limit in bytes"),
            (("--memory-swap",), "memory_swap", "str", None, "memory + swap limit in bytes; -1 for unlimited swap"),
            (("--pids-limit",), "pids_limit", "str", None, "maximum number of pids"),
            (("--kernel-memory",), "kernel_memory", "str", None, "kernel memory limit in bytes (deprecated)"),
            (
                ("--kernel-memory-tcp",),
                "kernel_memory_tcp",
                "str",
                None,
                "kernel memory limit for tcp buffers in bytes",
            ),
            (("--l3-cache-schema",), "l3_cache_schema", "str", None, "Intel RDT/CAT L3 cache schema"),
            (("--mem-bw-schema",), "mem_bw_schema", "str", None, "Intel RDT/MBA memory bandwidth schema"),
        ),
        (_ID,),
    ),
    "validate": ("check a bundle's config.json against the runtime-spec", (_BUNDLE,), ()),
}

# the verbs callers run constantly (create, run and exec too: every podman run pays for them): parsed without
# argparse when the input is plain
FAST_VERBS = frozenset(
    {"start", "state", "kill", "delete", "pause", "resume", "list", "ps", "features", "create", "run", "exec"}
    | {"checkpoint", "restore"}  # runc spends ~30 ms around CRIU: argparse alone would be as much
)

# verb -> module under ocipy.operations (`list` shadows a builtin); its keys are every verb
MODULES = {verb: verb for verb in _TABLE} | {"list": "list_"}

_specs: dict[str, Verb] = {}


def verb_spec(name: str) -> Verb:
    """One verb's grammar (KeyError for an unknown verb), built from its row once."""
    spec = _specs.get(name)
    if spec is None:
        help_, opts, pos = _TABLE[name]
        spec = _specs[name] = Verb(help_, tuple(Opt(*o) for o in opts), tuple(Pos(*p) for p in pos))
    return spec


def __getattr__(name: str) -> dict[str, Verb]:
    """`VERBS`, every verb's grammar, built when asked for (argparse's help, the tests)."""
    if name != "VERBS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return {verb: verb_spec(verb) for verb in _TABLE}
