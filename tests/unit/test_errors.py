"""Messages: one line on stderr; `--log` gets JSON lines containerd can parse (or logrus text lines)."""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocipy import errors
from ocipy.errors import OcipyError

PROJECT = Path(__file__).resolve().parents[2]
# what containerd's runc shim parses `time` with: Go's time.RFC3339Nano layout (fraction optional, Z or offset)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    errors.setup(None, "text", False)


def ocipy(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run(
        [sys.executable, "-m", "ocipy", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_ocipy_error_carries_exit_code() -> None:
    e = OcipyError("container not running")
    assert str(e) == "container not running" and e.exit_code == 1
    assert OcipyError("exec failed: x", exit_code=255).exit_code == 255


def test_rfc3339_nano() -> None:
    text = errors.rfc3339_nano(1_700_000_000_123_456_789)
    assert text == "2023-11-14T22:13:20.123456789Z"
    parsed = datetime.datetime.fromisoformat(text)
    assert parsed.tzinfo is not None and parsed.utcoffset() == datetime.timedelta(0)
    assert RFC3339.match(errors.rfc3339_nano())


def test_text_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    errors.setup(None, "text", False)
    errors.error("container does not exist")
    errors.warning("careful")
    errors.debug("hidden")
    assert capsys.readouterr().err == "ocipy: container does not exist\nocipy: warning: careful\n"


def test_multiline_message_becomes_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    errors.error("a\nb\r\nc")
    assert capsys.readouterr().err == "ocipy: a b  c\n"


def test_json_to_stderr_without_log(capsys: pytest.CaptureFixture[str]) -> None:
    errors.setup(None, "json", True)
    errors.error("boom")
    errors.debug("dbg")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(x)["level"] for x in lines] == ["error", "debug"]


def test_json_log_file_gets_one_line_and_stderr_the_plain_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.json"
    errors.setup(str(log), "json", False)
    errors.error('container "x" does not exist')
    assert capsys.readouterr().err == 'ocipy: container "x" does not exist\n'
    (line,) = log.read_text().splitlines()
    rec = json.loads(line)
    assert list(rec) == ["level", "msg", "time"]
    assert rec["level"] == "error" and rec["msg"] == 'container "x" does not exist'
    assert RFC3339.match(rec["time"])
    datetime.datetime.fromisoformat(rec["time"])


def test_warnings_go_only_to_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.json"
    errors.setup(str(log), "json", False)
    errors.warning("w")
    assert capsys.readouterr().err == ""
    assert json.loads(log.read_text())["level"] == "warning"


def test_text_log_file_is_logrus_style(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    errors.setup(str(log), "text", False)
    errors.error('say "hi"')
    line = log.read_text()
    assert re.fullmatch(r'time="[^"]+" level=error msg="say \\"hi\\""\n', line), line


def test_unopenable_log_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "log.json"
    with pytest.raises(errors.OcipyError, match=f"^open {path}: no such file or directory$"):
        errors.setup(str(path), "json", False)


def test_cli_unopenable_log_is_json_on_stderr_and_exit_1(tmp_path: Path) -> None:
    # runc: the log cannot be opened -> one error in the log format on stderr, exit 1, the command is not run
    path = tmp_path / "missing-dir" / "log.json"
    out = ocipy("--root", str(tmp_path), "--log", str(path), "--log-format", "json", "state", "nope")
    assert out.returncode == 1
    (line,) = out.stderr.splitlines()
    rec = json.loads(line)
    assert rec["level"] == "error" and rec["msg"] == f"open {path}: no such file or directory"
    out = ocipy("--root", str(tmp_path), "--log", str(path), "state", "nope")
    assert out.returncode == 1
    assert out.stderr == f"ocipy: open {path}: no such file or directory\n"


def test_file_prefix_is_a_file(tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    errors.setup(f"file:{log}", "json", False)
    errors.error("boom")
    assert json.loads(log.read_text())["msg"] == "boom"


def _bound(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    return sock


def test_journald_native_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = _bound(tmp_path / "journal.sock")
    monkeypatch.setattr(errors, "JOURNAL_SOCKET", str(tmp_path / "journal.sock"))
    with sock:
        errors.setup("journald:mybox", "json", True)
        errors.debug("step one")
        errors.error('it "broke"\nbadly')
        records = []
        for _ in range(2):
            data = sock.recv(65536).decode()
            assert data.endswith("\n")
            records.append(dict(line.split("=", 1) for line in data.splitlines()))
    assert records[0]["MESSAGE"] == "step one" and records[0]["PRIORITY"] == "7"
    assert records[1]["MESSAGE"] == 'it "broke" badly' and records[1]["PRIORITY"] == "3"
    for rec in records:
        assert rec["SYSLOG_IDENTIFIER"] == "mybox"
        assert rec["SYSLOG_PID"] == str(os.getpid())
    # the error reaches stderr too (Podman and people read it); debug lines only the journal
    assert capsys.readouterr().err == 'ocipy: it "broke" badly\n'


def test_syslog_dev_log_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = _bound(tmp_path / "log")
    monkeypatch.setattr(errors, "SYSLOG_SOCKET", str(tmp_path / "log"))
    with sock:
        errors.setup("syslog:", "text", False)
        errors.warning("careful")
        data = sock.recv(65536).decode()
    assert re.fullmatch(rf"<12>[A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d ocipy\[{os.getpid()}\]: careful", data), data


def test_journald_without_journal_falls_back_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(errors, "JOURNAL_SOCKET", str(tmp_path / "nobody-listens"))
    errors.setup("journald:x", "text", False)
    errors.warning("lost?")
    assert capsys.readouterr().err == "ocipy: warning: lost?\n"


def test_cli_failure_with_containerd_flags(tmp_path: Path) -> None:
    # exactly how containerd's shim calls: --root R --log B/log.json --log-format json
    log = tmp_path / "log.json"
    out = ocipy("--root", str(tmp_path / "root"), "--log", str(log), "--log-format", "json", "state", "nope")
    assert out.returncode == 1
    assert out.stderr == "ocipy: container does not exist\n"
    (line,) = log.read_text().splitlines()
    rec = json.loads(line)
    assert rec["level"] == "error" and rec["msg"] == "container does not exist"
    datetime.datetime.fromisoformat(rec["time"])


def test_cli_json_format_without_log_writes_json_on_stderr(tmp_path: Path) -> None:
    out = ocipy("--root", str(tmp_path), "--log-format=json", "kill", "nope")
    assert out.returncode == 1
    (line,) = out.stderr.splitlines()
    assert json.loads(line)["msg"] == "container does not exist"


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a private mount namespace over /run)")
def test_cli_journald_reaches_the_real_socket_path(tmp_path: Path) -> None:
    # the command as callers run it, writing to /run/systemd/journal/socket: a tmpfs over /run in a private mount
    # namespace, where this test binds the socket itself
    script = (
        "import socket, subprocess, sys, os\n"
        "os.makedirs('/run/systemd/journal')\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind('/run/systemd/journal/socket'); s.settimeout(10)\n"
        f"r = subprocess.run([sys.executable, '-m', 'ocipy', '--root', {str(tmp_path)!r}, '--log', 'journald:it',"
        " 'state', 'nope'], capture_output=True, text=True)\n"
        "print(r.returncode); print(r.stderr.strip()); print(s.recv(65536).decode().replace('\\n', '|'))\n"
    )
    res = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t tmpfs t /run && exec "$0" -c "$1"',
            sys.executable,
            script,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    code, err, datagram = res.stdout.splitlines()
    assert code == "1" and err == "ocipy: container does not exist"
    fields = dict(f.split("=", 1) for f in datagram.split("|") if f)
    assert fields["MESSAGE"] == "container does not exist"
    assert fields["PRIORITY"] == "3" and fields["SYSLOG_IDENTIFIER"] == "it"
