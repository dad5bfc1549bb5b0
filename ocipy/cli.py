"""The command line: runc's global flags, the fast parser, dispatch to `ocipy.operations.<verb>`, and the one place
where a failure becomes its line and exit status (`report`, docs/errors.md).

The grammar is one table (ocipy/cligrammar.py). Two parsers read it:
- a small hand parser for the lifecycle verbs (`FAST_VERBS`), here, because `import argparse` alone costs ~7 ms
  (it pulls in `re`, `enum`, `gettext`), more than a whole `runc state` (~3 ms);
- argparse (ocipy/cliargparse.py) for everything else, and for `--help` and every usage error of the fast verbs, so
  the words stay argparse's. The fast parser gives up (returns None) on anything it is not sure of and argparse
  decides.

Global flags are parsed by hand in both cases: runc's forms (`--opt=value`, `--opt value`, `-opt`), and unknown
long flags (Podman's `--runtime-flag`) are accepted and ignored with a debug line.
"""

import gc
import sys

from . import errors
from . import posixlite as px
from .cligrammar import FAST_VERBS, MODULES, verb_spec
from .errors import OcipyError, os_reason

# `typing` costs ~3 ms at import (it pulls in `re`): only mypy sees it here
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Args:
    """The parsed command line: global flags plus the verb's own; an attribute bag argparse can fill too."""

    def __init__(self, **kw: "Any") -> None:
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


def parse_globals(argv: list[str]) -> "tuple[dict[str, Any], list[str], list[str]]":
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
def fast_parse(verb: str, argv: list[str]) -> "dict[str, Any] | None":
    """Parse a verb's arguments without argparse; None when argparse should look (help, errors, odd forms)."""
    spec = verb_spec(verb)
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


def parse_verb(verb: str, argv: list[str]) -> "dict[str, Any]":
    if verb in FAST_VERBS:
        fast = fast_parse(verb, argv)
        if fast is not None:
            return fast
    from . import cliargparse

    return cliargparse.parse(verb, argv)


# --- dispatch ------------------------------------------------------------------------------------------------------
def dispatch(verb: str, args: Args) -> int:
    """Import `ocipy.operations.<verb>` only now, and run its `main(args) -> int`."""
    module = __import__(f"ocipy.operations.{MODULES[verb]}", fromlist=["main"])  # every verb has one (a test)
    boot: Any = sys.modules.get("ocipy.boot")
    if boot is not None:
        boot.ran = True  # a run of the verb (not --help): one that may record its image
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
            from .cliargparse import top_help

            _write_out(top_help())
            return 0
        verb = rest[0]
        if verb in ("help", "h"):
            verb = rest[1]
            rest = [verb, "--help"]
        if verb not in MODULES:  # its keys are every verb
            raise OcipyError(f"unknown command {verb!r}; run 'ocipy --help' for the list")
        g.pop("help")
        g.pop("version")
        args = Args(verb=verb, **g, **parse_verb(verb, rest[1:]))
        return dispatch(verb, args)
    except (Exception, KeyboardInterrupt, SystemExit) as exc:  # noqa: BLE001 -- every failure, mapped in one place
        return report(exc, verb, debug)


def report(exc: BaseException, verb: str, debug: bool) -> int:
    """The one place a failure becomes what the caller sees: one line (`errors.error`), the exit status, a traceback
    only with --debug and only for what is not an OcipyError (docs/errors.md)."""
    if isinstance(exc, OcipyError):
        errors.error(str(exc))  # str: a ConfigError puts its pointer before its message
        return exc.exit_code
    if isinstance(exc, SystemExit):  # argparse's --help
        return exc.code if isinstance(exc.code, int) else 0
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, BrokenPipeError):
        # the reader went away (`ocipy list | head`): stay quiet, and keep the interpreter from complaining at exit
        devnull = px.open(px.DEVNULL, px.O_WRONLY)
        px.dup2(devnull, sys.stdout.fileno())
        px.close(devnull)
        return 1
    who = verb or "ocipy"
    if isinstance(exc, OSError):
        # what the OS refused, named: the path and the reason (ENOSPC, EROFS, EMFILE, ... are not internal errors)
        where = ": ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        errors.error(f"{who}: {where}: {os_reason(exc)}" if where else f"{who}: {os_reason(exc)}")
    else:
        errors.error(f"{who}: internal error: {exc}")  # a bug: tests fail on this line
    if debug:
        import traceback

        traceback.print_exception(exc)
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
    work, and stdout/stderr are flushed here.

    The cyclic garbage collector is off for the command (the launchers turn it off before importing this module): a
    verb lives milliseconds and frees its objects by reference counting, and the collector would only walk the
    modules it imports (create: ~3 ms of CPU, about a tenth). Where a verb then waits for a long time (a foreground
    `run`, `exec` or `restore`, `events`) it turns the collector back on first."""
    gc.disable()
    _isolate()
    code = main()
    boot = sys.modules.get("ocipy.boot")  # the launchers' preloaded modules (ocipy/boot.py): record, report
    if boot is not None:
        boot.finish(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    px._exit(code)
