"""Go-style single-dash long flags (`-no-subreaper`), which go-runc (containerd's shim) passes to `restore`."""

from __future__ import annotations

from ocipy import cli, cliargparse


def test_single_dash_long_flags_become_double_dash() -> None:
    argv = ["-d", "-no-subreaper", "--image-path", "-x", "-bundle=/b", "c1"]
    assert cliargparse.go_style_long_flags("restore", argv) == [
        "-d",
        "--no-subreaper",
        "--image-path",
        "-x",
        "--bundle=/b",
        "c1",
    ]
    parsed = cli.parse_verb("restore", ["-no-subreaper", "-d", "--image-path", "/i", "c1"])
    assert parsed["no_subreaper"] is True and parsed["detach"] is True and parsed["image_path"] == "/i"


def test_the_command_of_exec_is_left_alone() -> None:
    assert cliargparse.go_style_long_flags("exec", ["-tty", "c1", "sh", "-detach"]) == ["--tty", "c1", "sh", "-detach"]
    assert cliargparse.go_style_long_flags("exec", ["--cwd", "/", "c1", "-tty"]) == ["--cwd", "/", "c1", "-tty"]
