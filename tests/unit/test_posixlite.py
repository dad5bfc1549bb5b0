"""ocipy.posixlite's path helpers give what posixpath gives (the lifecycle verbs use them instead of `os`)."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocipy import posixlite as px

part = st.lists(st.sampled_from(["a", "b", ".", "/", ".."]), max_size=8).map("".join) | st.sampled_from(
    ["", "//", "///"]
)


@settings(max_examples=2000)
@given(part, st.lists(part, max_size=4))
def test_join_is_posixpath_join(a: str, rest: list[str]) -> None:
    assert px.join(a, *rest) == posixpath.join(a, *rest)


@settings(max_examples=2000)
@given(st.lists(part, max_size=5).map("".join))
def test_normpath_and_abspath_are_posixpath(path: str) -> None:
    assert px.normpath(path) == posixpath.normpath(path)
    assert px.abspath(path) == posixpath.abspath(path)


def test_isfile(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    os.symlink(tmp_path / "f", tmp_path / "link")
    for name in ("f", "link", "missing", ""):
        assert px.isfile(str(tmp_path / name)) == os.path.isfile(tmp_path / name)
    assert px.isfile(str(tmp_path)) is False
    assert px.isfile("a\0b") is False


@pytest.mark.parametrize("value", ["", "plain", "with=equals", "caf\udce9"])
def test_getenv(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIPY_TEST_GETENV", value)
    assert px.getenv("OCIPY_TEST_GETENV", "d") == os.environ.get("OCIPY_TEST_GETENV", "d")
    monkeypatch.delenv("OCIPY_TEST_GETENV")
    assert px.getenv("OCIPY_TEST_GETENV", "d") == "d"


def test_the_functions_are_os_functions() -> None:
    own = {
        "getenv",
        "join",
        "normpath",
        "abspath",
        "isfile",
        "read_text",
        "read_all",
        "isdir",
        "exists",
        "lexists",
        "dirname",
        "isabs",
        "ismount",
    }
    for name in set(px.__all__) - own:
        if callable(getattr(os, name)):
            assert getattr(px, name) is getattr(os, name), name


def test_read_text(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"1 2\n" * 40000 + b"caf\xc3\xa9")  # more than one read; not ASCII at the end
    text = px.read_text(str(tmp_path / "f"))
    assert text is not None and text.startswith("1 2\n") and len(text) == 4 * 40000 + 5
    assert text.endswith("caf\ufffd\ufffd")
    assert px.read_text(str(tmp_path / "missing")) is None
    assert px.read_text(str(tmp_path)) is None  # a directory: EISDIR on read


@settings(max_examples=2000)
@given(st.lists(part, max_size=5).map("".join))
def test_dirname_and_isabs_are_posixpath(path: str) -> None:
    assert px.dirname(path) == posixpath.dirname(path)
    assert px.isabs(path) == posixpath.isabs(path)


def test_stat_predicates_are_os_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "d", tmp_path / "dlink")
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    names = [str(tmp_path / n) for n in ("f", "d", "dlink", "dangling", "missing")]
    for path in [*names, "", "/", "/proc", "/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "a\0b"]:
        assert px.isdir(path) == os.path.isdir(path), path
        assert px.exists(path) == os.path.exists(path), path
        assert px.lexists(path) == os.path.lexists(path), path
        assert px.ismount(path) == os.path.ismount(path), path


@settings(max_examples=3000)
@given(st.lists(part, max_size=5).map("".join), st.lists(part, max_size=3).map("".join))
def test_cgroup_relpath_is_posixpath_relpath(path: str, start: str) -> None:
    """ocipy/cgroups/paths.py's relpath (no `os` on create's path) answers as posixpath.relpath, errors included."""
    from ocipy.cgroups.paths import relpath

    path, start = "/" + path, "/" + start  # the cgroup code's paths are absolute, "//" included
    try:
        want: str | type[ValueError] = posixpath.relpath(path, start)
    except ValueError:
        want = ValueError
    try:
        got: str | type[ValueError] = relpath(path, start)
    except ValueError:
        got = ValueError
    assert got == want, (path, start)
    with pytest.raises(ValueError):
        relpath("", "/")


def test_read_all(tmp_path: Path) -> None:
    data = os.urandom(200_000)  # more than one read
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert px.read_all(fd) == data
        assert px.read_all(fd) == b""  # at the end: nothing left
    finally:
        os.close(fd)
