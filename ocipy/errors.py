"""Errors users see: one line on stderr, and JSON (or logrus text) lines in `--log`.

Stdlib only, and nothing heavy at import time: this module is on every command's path. `json` is imported only when a
JSON line is actually written.
"""

from __future__ import annotations

import sys
import time

from . import posixlite as px

# what `setup` decided; module state because one process runs one command
_log_path: str | None = None
_log_format = "text"
_debug = False


class OcipyError(Exception):
    """A failure to report as one line, exit 1 (exit 255 for exec)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


def setup(log_path: str | None, log_format: str = "text", debug: bool = False) -> None:
    """Remember where messages go; called once by the CLI before any verb runs."""
    global _log_path, _log_format, _debug
    # runc's default is '/dev/stderr': writing "to the log" then means stderr
    _log_path = log_path or None
    _log_format = log_format if log_format in ("text", "json") else "text"
    _debug = debug


def debug_enabled() -> bool:
    return _debug


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


def _emit(level: str, msg: str) -> None:
    msg = _one_line(msg)
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
