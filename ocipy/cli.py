"""The command line: runc's global flags, every runc verb with its flags, and dispatch to `ocipy.operations.<verb>`.

The grammar is one table (`VERBS`). Two parsers read it:
- a small hand parser for the lifecycle verbs (`FAST_VERBS`), because `import argparse` alone costs ~7 ms here
  (it pulls in `re`, `enum`, `gettext`), more than a whole `runc state` (~3 ms);
- argparse for everything else, and for `--help` and every usage error of the fast verbs, so the words stay
  argparse's. The fast parser gives up (returns None) on anything it is not sure of and argparse decides.

Global flags are parsed by hand in both cases: runc's forms (`--opt=value`, `--opt value`, `-opt`), and unknown
long flags (Podman's `--runtime-flag`) are accepted and ignored with a debug line.
"""

from __future__ import annotations

import sys

from . import errors
from . import posixlite as px
from .errors import OcipyError, os_reason

# `typing` and `argparse` cost ~3 ms and ~7 ms at import (both pull in `re`): only mypy sees them here
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


class Opt:
    __slots__ = ("default", "dest", "flags", "help", "kind")

    def __init__(self, flags: tuple[str, ...], dest: str, kind: str, default: Any, help: str) -> None:
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


def _s(flags: tuple[str, ...], dest: str, help: str, default: Any = None) -> Opt:
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
_MODULES = {verb: verb for verb in VERBS} | {"list": "list_"}


class Args:
    """The parsed command line: global flags plus the verb's own; an attribute bag argparse can fill too."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def __repr__(self) -> str:
        return f"Args({', '.join(f'{k}={v!r}' for k, v in sorted(self.__dict__.items()))})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Args) and self.__dict__ == other.__dict__


# --- global flags ----------------------------------------------------------------------------------------------
_GLOBAL_VALUE = {
    "--root": "root",
    "--log": "log",
    "--log-format": "log_format",
    "--criu": "criu",
}
_GLOBAL_BOOL = {"--debug": "debug", "--systemd-cgroup": "systemd_cgroup"}
_ROOTLESS_VALUES = ("true", "false", "auto")


def parse_globals(argv: list[str]) -> tuple[dict[str, Any], list[str], list[str]]:
    """Split `argv` into (global flags, verb + its args, ignored unknown flags)."""
    g: dict[str, Any] = {
        "root": None,
        "log": None,
        "log_format": "text",
        "criu": "criu",
        "debug": False,
        "systemd_cgroup": False,
        "rootless": "auto",
        "help": False,
        "version": False,
    }
    unknown: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            i += 1
            break
        if not tok.startswith("-") or tok == "-":
            break
        if tok in ("-h", "--help"):
            g["help"] = True
            i += 1
            continue
        if tok in ("-v", "--version"):
            g["version"] = True
            i += 1
            continue
        # Go's flag package takes -flag and --flag alike
        name, eq, value = ("-" + tok if not tok.startswith("--") else tok).partition("=")
        if name in _GLOBAL_VALUE:
            if not eq:
                if i + 1 >= len(argv):
                    raise OcipyError(f"flag needs an argument: {name}")
                i += 1
                value = argv[i]
            g[_GLOBAL_VALUE[name]] = value
        elif name in _GLOBAL_BOOL:
            g[_GLOBAL_BOOL[name]] = _bool_value(name, value) if eq else True
        elif name == "--rootless":
            # runc's --rootless takes a value; bare --rootless (no true/false/auto after it) means true
            if eq:
                g["rootless"] = value
            elif i + 1 < len(argv) and argv[i + 1] in _ROOTLESS_VALUES:
                i += 1
                g["rootless"] = argv[i]
            else:
                g["rootless"] = "true"
            if g["rootless"] not in _ROOTLESS_VALUES:
                raise OcipyError(f"invalid --rootless value: {g['rootless']}")
        else:
            unknown.append(tok)
        i += 1
    if g["log_format"] not in ("text", "json"):
        raise OcipyError(f"invalid log-format: {g['log_format']}")
    return g, argv[i:], unknown


def _bool_value(name: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise OcipyError(f"invalid boolean value {value!r} for flag {name}")


# --- verb flags: the fast parser ---------------------------------------------------------------------------------
def fast_parse(verb: str, argv: list[str]) -> dict[str, Any] | None:
    """Parse a verb's arguments without argparse; None when argparse should look (help, errors, odd forms)."""
    spec = VERBS[verb]
    by_flag = {f: o for o in spec.opts for f in o.flags}
    out: dict[str, Any] = {
        o.dest: (list(o.default) if o.kind == "list" and o.default else o.default) for o in spec.opts
    }
    positionals: list[str] = []
    rest_from: int | None = None
    fixed = [p for p in spec.pos if p.nargs != "..."]
    has_rest = len(fixed) != len(spec.pos)
    i = 0
    only_pos = False
    while i < len(argv):
        tok = argv[i]
        if has_rest and len(positionals) == len(fixed):
            if tok == "--":  # argparse drops a `--` that opens the command: let it decide
                return None
            rest_from = i
            break
        if only_pos or not tok.startswith("-") or tok == "-":
            positionals.append(tok)
            i += 1
            continue
        if tok == "--":
            only_pos = True
            i += 1
            continue
        name, eq, value = tok.partition("=")
        opt = by_flag.get(name)
        if opt is None:
            return None
        if opt.kind == "bool":
            if eq:
                return None
            out[opt.dest] = True
        else:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                i += 1
                value = argv[i]
            if opt.kind == "int":
                if not value.isascii() or not value.isdigit():
                    return None
                out[opt.dest] = int(value)
            elif opt.kind == "list":
                out[opt.dest] = (out[opt.dest] or []) + [value]
            else:
                out[opt.dest] = value
        i += 1
    required = [p for p in fixed if p.nargs == "1"]
    if not len(required) <= len(positionals) <= len(fixed):
        return None
    for p, v in zip(fixed, positionals):
        out[p.dest] = v
    for p in fixed[len(positionals) :]:
        out[p.dest] = None
    for p in spec.pos:
        if p.nargs == "...":
            out[p.dest] = argv[rest_from:] if rest_from is not None else []
    return out


# --- verb flags: argparse ------------------------------------------------------------------------------------------
def _make_parser_class() -> type[argparse.ArgumentParser]:
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # argparse prints usage and exits 2; ocipy says one line, exit 1
            raise OcipyError(f"{self.prog.removeprefix('ocipy ')}: {message}")

    return Parser


def verb_parser(verb: str) -> argparse.ArgumentParser:
    import argparse

    spec = VERBS[verb]
    p = _make_parser_class()(prog=f"ocipy {verb}", description=spec.help, allow_abbrev=False)
    for o in spec.opts:
        kw: dict[str, Any] = {"dest": o.dest, "help": o.help}
        if o.kind == "bool":
            p.add_argument(*o.flags, action="store_true", **kw)
        elif o.kind == "list":
            p.add_argument(*o.flags, action="append", default=None, metavar="VALUE", **kw)
        else:
            p.add_argument(
                *o.flags,
                type=int if o.kind == "int" else str,
                default=o.default,
                metavar="VALUE",
                **kw,
            )
    for pos in spec.pos:
        nargs = {"1": None, "?": "?", "...": argparse.REMAINDER}[pos.nargs]
        p.add_argument(pos.dest, metavar=pos.name, nargs=nargs, help=pos.help)
    return p


def go_style_long_flags(verb: str, argv: list[str]) -> list[str]:
    """`-flag` for `--flag`, as Go's flag package (runc) takes it: go-runc passes `restore -no-subreaper`. Only before
    the positionals a verb takes verbatim (exec's command), and only names that are the verb's long flags."""
    spec = VERBS[verb]
    by_flag = {f: o for o in spec.opts for f in o.flags}
    fixed = len([p for p in spec.pos if p.nargs != "..."])
    has_rest = fixed != len(spec.pos)
    out: list[str] = []
    positionals = 0
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--" or (has_rest and positionals >= fixed):
            return out + argv[i:]
        if len(tok) > 2 and tok[0] == "-" and tok[1] != "-" and "--" + tok[1:].partition("=")[0] in by_flag:
            tok = "-" + tok
        out.append(tok)
        name, eq, _ = tok.partition("=")
        opt = by_flag.get(name) if tok.startswith("-") else None
        if opt is not None and opt.kind != "bool" and not eq and i + 1 < len(argv):
            out.append(argv[i + 1])
            i += 1
        elif not tok.startswith("-"):
            positionals += 1
        i += 1
    return out


def parse_verb(verb: str, argv: list[str]) -> dict[str, Any]:
    if verb in FAST_VERBS:
        fast = fast_parse(verb, argv)
        if fast is not None:
            return fast
    argv = go_style_long_flags(verb, argv)
    ns = verb_parser(verb).parse_args(argv, namespace=Args())
    return dict(vars(ns))


def top_help() -> str:
    width = max(len(v) for v in VERBS) + 2
    lines = [
        "usage: ocipy [global options] command [command options] [arguments...]",
        "",
        "ocipy - an OCI container runtime (runc-compatible command line)",
        "",
        "commands:",
        *(f"  {v.ljust(width)}{VERBS[v].help}" for v in sorted(VERBS)),
        "",
        "global options:",
        "  --debug             enable debug logging",
        "  --log DEST          FILE (file:FILE), journald[:IDENT] or syslog[:IDENT] (default: stderr)",
        "  --log-format FMT    text (default) or json",
        "  --root DIR          state root (default: /run/ocipy for root, $XDG_RUNTIME_DIR/ocipy otherwise)",
        "  --criu PATH         criu for checkpoint/restore (default: criu on PATH)",
        "  --systemd-cgroup    use the systemd cgroup driver",
        "  --rootless VALUE    ignore cgroup permission errors: true, false or auto (default: auto)",
        "  --help, -h          show help",
        "  --version, -v       print the version",
        "",
        "Run 'ocipy COMMAND --help' for a command's options.",
    ]
    return "\n".join(lines)


# --- dispatch ------------------------------------------------------------------------------------------------------
def dispatch(verb: str, args: Args) -> int:
    """Import `ocipy.operations.<verb>` only now, and run its `main(args) -> int`."""
    modname = f"ocipy.operations.{_MODULES[verb]}"
    try:
        module = __import__(modname, fromlist=["main"])
    except ModuleNotFoundError as exc:
        # only the verb's own module missing means "not built yet"; a missing dependency is a real error
        if exc.name not in (modname, "ocipy.operations"):
            raise
        raise OcipyError(f"{verb}: not implemented yet") from None
    if not hasattr(module, "main"):
        raise OcipyError(f"{verb}: not implemented yet")
    rc = module.main(args)
    return int(rc or 0)


def _write_out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    verb = ""
    debug = False
    try:
        g, rest, unknown = parse_globals(argv)
        debug = g["debug"]
        errors.setup(g["log"], g["log_format"], debug)
        for flag in unknown:
            errors.debug(f"ignoring unknown global flag {flag}")
        if g["version"]:
            from . import version

            _write_out(version.text())
            return 0
        if g["help"] or not rest or rest[0] in ("help", "h") and len(rest) == 1:
            _write_out(top_help())
            return 0
        verb = rest[0]
        if verb in ("help", "h"):
            verb = rest[1]
            rest = [verb, "--help"]
        if verb not in VERBS:
            raise OcipyError(f"unknown command {verb!r}; run 'ocipy --help' for the list")
        g.pop("help")
        g.pop("version")
        args = Args(verb=verb, **g, **parse_verb(verb, rest[1:]))
        return dispatch(verb, args)
    except OcipyError as exc:
        errors.error(str(exc))  # str: a PlanError keeps its pointer apart from its message
        return exc.exit_code
    except SystemExit as exc:  # argparse's --help
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`ocipy list | head`): stay quiet, and keep the interpreter from complaining at exit
        devnull = px.open(px.DEVNULL, px.O_WRONLY)
        px.dup2(devnull, sys.stdout.fileno())
        px.close(devnull)
        return 1
    except OSError as exc:
        # what the OS refused, named: the path and the reason (ENOSPC, EROFS, EMFILE, ... are not internal errors)
        where = ": ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        reason = os_reason(exc)
        errors.error(f"{verb or 'ocipy'}: {where}: {reason}" if where else f"{verb or 'ocipy'}: {reason}")
        if debug:
            import traceback

            traceback.print_exc()
        return 255 if verb == "exec" else 1
    except Exception as exc:  # noqa: BLE001 -- the one place every other failure becomes one line
        errors.error(f"{verb or 'ocipy'}: internal error: {exc}")
        if debug:
            import traceback

            traceback.print_exc()
        return 255 if verb == "exec" else 1


def _isolate() -> None:
    """pip's console script (not the launcher, not `python -m ocipy`) runs without `-I`: when a PYTHON* variable is
    set, run again under `-I` so that none of them changes what ocipy does (docs/packaging.md). Costs nothing
    otherwise: the environment is scanned as bytes, without `os`."""
    script = sys.argv[0]
    if sys.flags.isolated or "/" not in script or script.endswith(".py"):
        return
    if not any(key.startswith(b"PYTHON") for key in px.environ):
        return
    import posix

    pkg_parent = __file__.rsplit("/", 2)[0]  # the directory holding this ocipy package: the same installation runs
    xopts = [f"-X{k}" if v is True else f"-X{k}={v}" for k, v in sys._xoptions.items()]
    code = (
        f"import sys; sys.argv[0] = {script!r}; sys.path.insert(0, {pkg_parent!r}); "
        "from ocipy.cli import entry; entry()"
    )
    posix.execv(sys.executable, [sys.executable, "-I", *xopts, "-c", code, *sys.argv[1:]])


def entry() -> None:
    """The command's entry point: `main`, then leave without the interpreter's teardown, which costs ~27 ms once
    pydantic is loaded. Nothing of ocipy's needs it: files and logs are written unbuffered, the verbs undo their own
    work, and stdout/stderr are flushed here."""
    _isolate()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    px._exit(code)
