"""Errors users see: one line on stderr, and JSON (or logrus text) lines in `--log`.

Stdlib only, and nothing heavy at import time: this module is on every command's path. The writers (the line formats,
the --log file, journald, syslog) are in ocipy/logsink.py, loaded only when a message is written.
"""

import time

from . import posixlite as px

# what `setup` decided; module state because one process runs one command
_log_path: str | None = None  # a file (the --log path or `file:PATH`)
_log_sink: tuple[str, str] | None = None  # ("journald" | "syslog", identifier) for `--log journald:ID` / `syslog:ID`
_log_format = "text"
_debug = False

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_SOCKET = "/dev/log"


class OcipyError(Exception):
    """The root of every failure ocipy reports: one line, exit 1 (exit 255 for exec). docs/errors.md draws the tree.

    The CLI (`ocipy/cli.py`, `main`) is the one place that turns an OcipyError into its line and exit status; code
    below it raises, and re-wraps only to add what the line must name (a path, a pointer)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(OcipyError):
    """A config field the runtime cannot carry out, named by its JSON pointer (`pointer()`): the line is
    `pointer: message`, or `message` alone when the pointer is empty (the document as a whole). The planner's
    PlanError, seccomp's SeccompError, the cgroup writers' CgroupError, the LSM labels' LabelError and the spec
    validator's SpecError are ConfigErrors."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}" if pointer else message)
        self.pointer = pointer
        self.message = message  # without the pointer: callers add their own context around it

    def __str__(self) -> str:
        return f"{self.pointer}: {self.message}" if self.pointer else self.message


class InitError(OcipyError):
    """The init's MSG_ERROR: the op that failed (index in the plan, -1 before any op), the errno it got, the config
    field the op came from (`pointer`, may be empty) and the init's own words (`detail`). `line` is what users see,
    worded by `Launch.describe_error`."""

    def __init__(self, line: str, op: int, errno: int, pointer: str = "", detail: str = "") -> None:
        super().__init__(line)
        self.op = op
        self.errno = errno
        self.pointer = pointer
        self.detail = detail


def pointer(*parts: str | int) -> str:
    """The RFC 6901 JSON pointer of a config field: pointer("mounts", 3, "options") == "/mounts/3/options" ('~' and
    '/' in a part are escaped as ~0 and ~1). The one builder: the planner, seccomp, cgroups and spec take it."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def setup(log_path: str | None, log_format: str = "text", debug: bool = False) -> None:
    """Remember where messages go; called once by the CLI before any verb runs.

    `log_path`: a file (or `file:PATH`), `journald[:IDENT]` (journald's native socket) or `syslog[:IDENT]` (/dev/log),
    as crun takes them. A file that cannot be opened is an error (`open PATH: REASON`, exit 1, as runc), reported in
    `log_format` on stderr."""
    global _log_path, _log_sink, _log_format, _debug
    _log_format = log_format if log_format in ("text", "json") else "text"
    _debug = debug
    _log_path, _log_sink = None, None
    # runc's default is '/dev/stderr': writing "to the log" then means stderr
    if not log_path:
        return
    kind, colon, rest = log_path.partition(":")
    if colon and kind in ("journald", "syslog"):
        _log_sink = (kind, rest or "ocipy")
        return
    path = rest if colon and kind == "file" else log_path
    try:
        px.close(px.open(path, px.O_WRONLY | px.O_APPEND | px.O_CREAT | px.O_CLOEXEC, 0o644))
    except OSError as exc:
        raise OcipyError(f"open {path}: {os_reason(exc)}") from None
    _log_path = path


def log_target() -> tuple[str | None, str]:
    """The --log path (None: none) and format, for the init to report a failure once `create` has returned."""
    return _log_path, _log_format


def debug_enabled() -> bool:
    return _debug


def os_reason(exc: OSError | int) -> str:
    """The OS's reason for a failure, lower case, as ocipy's one-line errors end: `no such file or directory`. Takes
    the OSError, or an errno (what the init, libseccomp or CRIU report)."""
    if isinstance(exc, int):
        return px.strerror(exc).lower()
    return (exc.strerror or str(exc)).lower()


def rfc3339_nano(ns: int | None = None) -> str:
    """UTC time with nanoseconds and a `Z`, as Go's RFC3339Nano writes it (but always 9 digits)."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


MAX_LINE = 1000  # characters of one message; a longer one keeps its head (the field) and tail (the reason)


def shorten(value: str, keep: int = 200) -> str:
    """A config value for an error line: whole when short, else its first `keep` characters and its length."""
    if len(value) <= keep:
        return value
    return f"{value[:keep]}... ({len(value)} characters)"


def _emit(level: str, msg: str) -> None:
    # the writers live in ocipy/logsink.py, loaded only when a message is written: most commands write none, and
    # they are most of this module's code (every command loads this one)
    try:
        from .logsink import emit
    except Exception:  # noqa: BLE001 -- no fd left (EMFILE), the package replaced meanwhile: the line still goes out
        px.write(2, f"ocipy: {msg}\n".encode(errors="replace"))
        return
    emit(level, msg)


def error(msg: str) -> None:
    _emit("error", msg)


def warning(msg: str) -> None:
    _emit("warning", msg)


def quiet_warning(msg: str) -> None:
    """A warning for --log only: during a successful create, stderr is the container's own output."""
    if _log_path is not None:
        _emit("warning", msg)
    else:
        debug(msg)


def debug(msg: str) -> None:
    if _debug:
        _emit("debug", msg)
