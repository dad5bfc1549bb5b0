"""The command line: runc's globals in both forms, every verb in --help, the fast parser agreeing with argparse, and
usage errors as one line with exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocipy import cli, cliargparse, cligrammar
from ocipy.errors import OcipyError

PROJECT = Path(__file__).resolve().parents[2]
RUNC_VERBS = [
    "checkpoint",
    "create",
    "delete",
    "events",
    "exec",
    "features",
    "kill",
    "list",
    "pause",
    "ps",
    "restore",
    "resume",
    "run",
    "spec",
    "start",
    "state",
    "update",
]


def ocipy(*args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    argv = [sys.executable, "-m", "ocipy", *(["--root", str(root)] if root else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_help_lists_every_verb() -> None:
    out = ocipy("--help")
    assert out.returncode == 0
    for verb in [*RUNC_VERBS, "validate"]:
        assert f"\n  {verb} " in out.stdout, verb


def test_no_verb_prints_help() -> None:
    out = ocipy()
    assert out.returncode == 0
    assert "commands:" in out.stdout


def test_version_text_exact() -> None:
    for flag in ("--version", "-v"):
        out = ocipy(flag)
        assert out.returncode == 0
        lines = out.stdout.splitlines()
        assert lines[0] == "ocipy version 0.1.0"
        assert lines[1].startswith("commit: ")  # docker info reads it
        assert lines[2] == "spec: 1.3.0"


@pytest.mark.parametrize(
    "argv",
    [
        ["--root", "/r", "--log", "/l", "--log-format", "json", "state", "x"],
        ["--root=/r", "--log=/l", "--log-format=json", "state", "x"],
        ["-root", "/r", "-log=/l", "-log-format", "json", "state", "x"],
    ],
)
def test_global_value_flags_both_forms(argv: list[str]) -> None:
    g, rest, unknown = cli.parse_globals(argv)
    assert (g["root"], g["log"], g["log_format"]) == ("/r", "/l", "json")
    assert rest == ["state", "x"]
    assert unknown == []


def test_global_bool_flags_and_rootless() -> None:
    g, rest, _ = cli.parse_globals(["--debug", "--systemd-cgroup", "--rootless", "create", "x"])
    assert g["debug"] and g["systemd_cgroup"] and g["rootless"] == "true"
    assert rest == ["create", "x"]
    g, rest, _ = cli.parse_globals(["--rootless", "false", "state", "x"])
    assert g["rootless"] == "false" and rest == ["state", "x"]
    g, rest, _ = cli.parse_globals(["--rootless=auto", "--debug=false", "state", "x"])
    assert g["rootless"] == "auto" and g["debug"] is False


def test_unknown_global_flags_are_ignored() -> None:
    _, rest, unknown = cli.parse_globals(["--cgroup-manager=cgroupfs", "--weird", "kill", "x", "9"])
    assert unknown == ["--cgroup-manager=cgroupfs", "--weird"]
    assert rest == ["kill", "x", "9"]


@pytest.mark.parametrize(
    "argv", [["--log-format", "xml", "state", "x"], ["--rootless=maybe", "state", "x"], ["--root"]]
)
def test_bad_global_values(argv: list[str]) -> None:
    with pytest.raises(OcipyError):
        cli.parse_globals(argv)


def test_unknown_global_flag_with_debug_logs_a_line(tmp_path: Path) -> None:
    out = ocipy("--debug", "--podman-thing=1", "list", root=tmp_path)
    assert out.returncode == 0
    assert "ignoring unknown global flag --podman-thing=1" in out.stderr


# argv lists each fast verb may see; the fast parser must agree with argparse on every one it accepts
FAST_CASES: dict[str, list[list[str]]] = {
    "state": [["x"], ["--", "x"]],
    "start": [["x"]],
    "kill": [["x"], ["x", "9"], ["--all", "x", "TERM"], ["-a", "x", "KILL"], ["x", "--all"]],
    "delete": [["x"], ["--force", "x"], ["-f", "x"], ["x", "-f"]],
    "pause": [["x"]],
    "resume": [["x"]],
    "list": [[], ["-q"], ["--format", "json"], ["--format=json"], ["-f", "table", "--quiet"]],
    "ps": [["x"], ["--format", "json", "x"], ["-f", "json", "x", "-ef"]],
    "features": [[]],
    # what Podman, containerd and people pass
    "create": [
        ["--bundle", "/b", "--pid-file", "/p", "x"],
        ["--bundle=/b", "--pid-file=/p", "--console-socket", "/s", "x"],
        ["-b", "/b", "--no-pivot", "--no-new-keyring", "--preserve-fds", "2", "x"],
        ["x", "--bundle", "/b"],
    ],
    "run": [["-b", "/b", "x"], ["--detach", "--bundle", "/b", "--pid-file", "/p", "x"], ["-d", "--keep", "x"]],
    "exec": [
        ["--pid-file", "/p", "--process", "/f", "--detach", "x"],
        ["--tty", "--console-socket", "/s", "--process=/f", "-d", "x"],
        ["-e", "A=1", "-e", "B=2", "--cwd", "/tmp", "-u", "1000:1000", "x", "sh", "-c", "echo hi"],
        ["x", "ls", "-l", "--all"],
    ],
}


@pytest.mark.parametrize("verb,argv", [(v, a) for v, cases in FAST_CASES.items() for a in cases])
def test_fast_parser_agrees_with_argparse(verb: str, argv: list[str]) -> None:
    fast = cli.fast_parse(verb, argv)
    assert fast is not None, "the fast path should take plain input"
    slow = vars(cliargparse.verb_parser(verb).parse_args(argv, namespace=cli.Args()))
    assert fast == slow


@pytest.mark.parametrize(
    "verb,argv",
    [("state", []), ("state", ["a", "b"]), ("state", ["--help"]), ("kill", ["--bogus", "x"]), ("list", ["-f"])]
    + [("exec", ["x", "--", "true"]), ("create", ["--bundle"])],
)
def test_fast_parser_defers_to_argparse(verb: str, argv: list[str]) -> None:
    assert cli.fast_parse(verb, argv) is None


def test_verb_flags_of_slow_verbs() -> None:
    a = cli.parse_verb(
        "exec",
        ["--process", "p.json", "-d", "--tty", "-e", "A=1", "--env=B=2", "--preserve-fds", "2", "x", "sh", "-c", "y"],
    )
    assert a["process"] == "p.json" and a["detach"] and a["tty"]
    assert a["env"] == ["A=1", "B=2"] and a["preserve_fds"] == 2
    assert a["container_id"] == "x" and a["command"] == ["sh", "-c", "y"]
    a = cli.parse_verb("create", ["-b", "/b", "--console-socket=/s", "--pid-file", "/p", "--no-pivot", "x"])
    assert (a["bundle"], a["console_socket"], a["pid_file"], a["no_pivot"]) == ("/b", "/s", "/p", True)
    a = cli.parse_verb("run", ["-d", "--keep", "x"])
    assert a["detach"] and a["keep"] and a["bundle"] is None
    a = cli.parse_verb("update", ["--resources=-", "x"])
    assert a["resources"] == "-"
    a = cli.parse_verb("spec", ["--rootless", "-b", "/b"])
    assert a["rootless_spec"] is True and a["bundle"] == "/b"
    a = cli.parse_verb("validate", ["--bundle", "/b"])
    assert a["bundle"] == "/b"
    a = cli.parse_verb("events", ["--stats", "--interval", "1s", "x"])
    assert a["stats"] and a["interval"] == "1s"


def test_every_verb_has_a_parser() -> None:
    for verb in [*RUNC_VERBS, "validate"]:
        assert verb in cligrammar.VERBS
        cliargparse.verb_parser(verb)


def test_usage_error_is_one_line_exit_1(tmp_path: Path) -> None:
    for args in (["state"], ["kill"], ["delete", "a", "b"], ["create", "--preserve-fds", "x", "c"], ["list", "-z"]):
        out = ocipy(*args, root=tmp_path)
        assert out.returncode == 1, args
        assert len(out.stderr.splitlines()) == 1, out.stderr
        assert out.stderr.startswith("ocipy: ")
        assert "Traceback" not in out.stderr


def test_unknown_verb(tmp_path: Path) -> None:
    out = ocipy("frobnicate", "x", root=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("ocipy: unknown command 'frobnicate'")


def test_verb_help_exit_0() -> None:
    for args in (["state", "--help"], ["help", "kill"], ["exec", "-h"]):
        out = ocipy(*args)
        assert out.returncode == 0, args
        assert out.stdout.startswith("usage: ocipy ")


def test_every_verb_has_an_operation_module_with_main() -> None:
    # dispatch imports ocipy.operations.<module> and calls its main(args): a verb in the table without one would
    # reach the user as an internal error
    for verb in cligrammar.VERBS:
        path = PROJECT / "ocipy" / "operations" / f"{cli.MODULES[verb]}.py"
        assert path.exists(), f"{verb}: {path} is missing"
        assert "\ndef main(" in path.read_text(), f"{verb}: {path} has no main()"


def test_internal_error_is_one_line_and_traceback_only_with_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(verb: str, args: cli.Args) -> int:
        raise RuntimeError("kaput")

    monkeypatch.setattr(cli, "dispatch", boom)
    assert cli.main(["--root", "/nonexistent", "state", "x"]) == 1
    err = capsys.readouterr().err
    assert err == "ocipy: state: internal error: kaput\n"
    assert cli.main(["--debug", "--root", "/nonexistent", "state", "x"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_keyboard_interrupt_and_broken_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(verb: str, args: cli.Args) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "dispatch", interrupted)
    assert cli.main(["state", "x"]) == 130


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    # `features` prints many lines; the reader closes at once
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocipy", "features"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=30)
    assert "Traceback" not in err
