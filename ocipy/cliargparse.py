"""argparse for the command line: `--help`, usage errors in argparse's words, the verbs the fast parser does not
take (`ocipy/cli.py`), Go-style `-flag` spellings, and the top-level help text. argparse costs ~7 ms to import (it
pulls in `re`, `enum`, `gettext`): nothing on a plain lifecycle command line reaches this module.
"""

from __future__ import annotations

from .cligrammar import VERBS
from .errors import OcipyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


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


def parse(verb: str, argv: list[str]) -> dict[str, Any]:
    """argparse's reading of a verb's arguments, Go-style `-flag` spellings taken as `--flag`."""
    return dict(vars(verb_parser(verb).parse_args(go_style_long_flags(verb, argv))))
