"""Writing one message where `errors.setup` said (ocipy/errors.py): stderr, a --log file (text or JSON lines),
journald or syslog. Loaded only when a message is written: most commands write none.

Stdlib only; `json` is not imported (fastjson writes the JSON lines), `socket` only for journald and syslog.
"""

import sys
import time

from . import errors
from . import posixlite as px
from .errors import MAX_LINE, rfc3339_nano

# journald PRIORITY / syslog severity of each level (syslog(3): LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG)
_PRIORITY = {"error": 3, "warning": 4, "info": 6, "debug": 7}
_LOG_USER = 1  # syslog facility, as glibc's syslog() without openlog()


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
    assert errors._log_path is not None
    data = (line + "\n").encode("utf-8", "replace")
    try:
        fd = px.open(errors._log_path, px.O_WRONLY | px.O_APPEND | px.O_CREAT | px.O_CLOEXEC, 0o644)
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
    return _send_datagram(errors.JOURNAL_SOCKET, data)


def _syslog(ident: str, level: str, msg: str) -> bool:
    """One RFC 3164 line to /dev/log, as glibc's syslog() sends it: <PRI>Mmm dd hh:mm:ss IDENT[PID]: MSG."""
    pri = _LOG_USER * 8 + _PRIORITY.get(level, 6)
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
    return _send_datagram(
        errors.SYSLOG_SOCKET, f"<{pri}>{stamp} {ident}[{px.getpid()}]: {msg}".encode("utf-8", "replace")
    )


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


def emit(level: str, msg: str) -> None:
    msg = _one_line(msg)
    if errors._log_sink is not None:
        kind, ident = errors._log_sink
        written = (_journald if kind == "journald" else _syslog)(ident, level, msg)
        if level == "error" or not written:
            _write_stderr(f"ocipy: {msg}" if level == "error" else f"ocipy: {level}: {msg}")
        return
    line = _json_line(level, msg) if errors._log_format == "json" else _text_line(level, msg)
    if errors._log_path is not None:
        written = _write_log(line)
        if level == "error" or not written:
            # containerd reads the log, Podman and people read stderr: the error goes to both
            _write_stderr(f"ocipy: {msg}" if level == "error" else f"ocipy: {level}: {msg}")
        return
    if errors._log_format == "json":
        _write_stderr(line)
    elif level == "error":
        _write_stderr(f"ocipy: {msg}")
    else:
        _write_stderr(f"ocipy: {level}: {msg}")
