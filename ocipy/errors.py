"""Errors users see: one line on stderr, and JSON (or logrus text) lines in `--log`.

Stdlib only, and nothing heavy at import time: this module is on every command's path. `json` is imported only when a
JSON line is actually written.
"""

import sys
import time

from . import posixlite as px

# what `setup` decided; module state because one process runs one command
_log_path: str | None = None  # a file (the --log path or `file:PATH`)
_log_sink: tuple[str, str] | None = None  # ("journald" | "syslog", identifier) for `--log journald:ID` / `syslog:ID`
_log_format = "text"
_debug = False

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_SOCKET = "/dev/log"
# journald PRIORITY / syslog severity of each level (syslog(3): LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG)
_PRIORITY = {"error": 3, "warning": 4, "info": 6, "debug": 7}
_LOG_USER = 1  # syslog facility, as glibc's syslog() without openlog()


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


def _one_line(msg: str) -> str:
    # a message is one line whatever the exception text held, and a bounded one whatever value it echoes
    msg = " ".join(msg.split("\n")).replace("\r", " ")
    if len(msg) > MAX_LINE:
        msg = f"{msg[:500]}... ({len(msg)} characters in all) ...{msg[-300:]}"
    return msg


def _json_line(level: str, msg: str) -> str:
    from . import fastjson as json

    # compact, key order as logrus writes it: containerd parses each line and shows the last error's `msg`
    line = {"level": level, "msg": msg, "time": rfc3339_nano()}
    return json.dumps(line)


def _text_line(level: str, msg: str) -> str:
    # logrus TextFormatter without colours: time="..." level=error msg="..."
    quoted = '"' + msg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f'time="{rfc3339_nano()}" level={level} msg={quoted}'


def _write_stderr(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed stderr must not turn an error into a traceback


def _write_log(line: str) -> bool:
    """Append one line to the --log file; False when it cannot be written."""
    assert _log_path is not None
    data = (line + "\n").encode("utf-8", "replace")
    try:
        fd = px.open(_log_path, px.O_WRONLY | px.O_APPEND | px.O_CREAT | px.O_CLOEXEC, 0o644)
    except OSError:
        return False
    try:
        # one write() per line so concurrent appenders never interleave within a line
        px.write(fd, data)
    except OSError:
        return False
    finally:
        px.close(fd)
    return True


def _journald(ident: str, level: str, msg: str) -> bool:
    """One datagram in journald's native protocol: KEY=VALUE lines (every value here is one line)."""
    fields = {
        "MESSAGE": msg,
        "PRIORITY": str(_PRIORITY.get(level, 6)),
        "SYSLOG_IDENTIFIER": ident,
        "SYSLOG_PID": str(px.getpid()),
        "OCIPY_LEVEL": level,
    }
    data = "".join(f"{k}={v}\n" for k, v in fields.items()).encode("utf-8", "replace")
    return _send_datagram(JOURNAL_SOCKET, data)


def _syslog(ident: str, level: str, msg: str) -> bool:
    """One RFC 3164 line to /dev/log, as glibc's syslog() sends it: <PRI>Mmm dd hh:mm:ss IDENT[PID]: MSG."""
    pri = _LOG_USER * 8 + _PRIORITY.get(level, 6)
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
    return _send_datagram(SYSLOG_SOCKET, f"<{pri}>{stamp} {ident}[{px.getpid()}]: {msg}".encode("utf-8", "replace"))


def _send_datagram(path: str, data: bytes) -> bool:
    import socket

    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):  # /dev/log is a datagram socket, rarely a stream one
        try:
            with socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC) as sock:
                sock.connect(path)
                sock.sendall(data + (b"\n" if kind == socket.SOCK_STREAM else b""))
                return True
        except OSError as exc:
            if kind == socket.SOCK_DGRAM and exc.errno in (91, 107):  # EPROTOTYPE/ENOTCONN: a stream socket
                continue
            return False
    return False


def _emit(level: str, msg: str) -> None:
    msg = _one_line(msg)
    if _log_sink is not None:
        kind, ident = _log_sink
        written = (_journald if kind == "journald" else _syslog)(ident, level, msg)
        if level == "error" or not written:
            _write_stderr(f"ocipy: {msg}" if level == "error" else f"ocipy: {level}: {msg}")
        return
    line = _json_line(level, msg) if _log_format == "json" else _text_line(level, msg)
    if _log_path is not None:
        written = _write_log(line)
        if level == "error" or not written:
            # containerd reads the log, Podman and people read stderr: the error goes to both
            _write_stderr(f"ocipy: {msg}" if level == "error" else f"ocipy: {level}: {msg}")
        return
    if _log_format == "json":
        _write_stderr(line)
    elif level == "error":
        _write_stderr(f"ocipy: {msg}")
    else:
        _write_stderr(f"ocipy: {level}: {msg}")


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
