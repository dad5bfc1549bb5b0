"""Errors the OS returns name what failed: a full disk (ENOSPC, blocks and inodes), a read-only file system (EROFS),
too many open files (EMFILE), a quota (EDQUOT) and no memory (ENOMEM), on the state root, the bundle and a cgroup
file. Each is one line on stderr with the path and the reason, exit 1, never "internal error", and nothing is left.

A small tmpfs (`size=`, `nr_inodes=`) under the test's tmp dir is the state root: a real full disk. EMFILE comes from
a real RLIMIT_NOFILE. EDQUOT and ENOMEM cannot be had for root on this kernel (no tmpfs quotas; root passes quota
limits), so the kernel's answer is replaced at the system call with `strace --inject` (the command and every other
call are real).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py
import ocipy_leftovers as L  # loaded by conftest.py
import pytest

pytestmark = [*(m for m in h.pytestmark() if m.name != "timeout"), pytest.mark.timeout(300)]
if not h.IS_OCIPY:
    pytestmark.append(pytest.mark.skip(reason="ocipy's own messages"))


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Any]:
    """mount(size=..., nr_inodes=..., ro) -> a fresh tmpfs under tmp_path; unmounted at the end."""
    made: list[Path] = []

    def mount(opts: str) -> Path:
        where = tmp_path / f"fs{len(made)}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "ocipy-test", str(where)], check=True)
        made.append(where)
        return where

    try:
        yield mount
    finally:
        for case in CASES:  # before the state root goes away under a container left by a failing assertion
            case.finish()
        for where in reversed(made):
            subprocess.run(["umount", "-l", str(where)], check=False)


def fill(fs: Path) -> None:
    """Take every free block of a tmpfs."""
    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


CASES: list[Case] = []


@pytest.fixture(autouse=True)
def _finish_cases() -> Iterator[None]:
    """A failing assertion must not leave a container behind."""
    try:
        yield
    finally:
        for case in CASES:
            case.finish()
        CASES.clear()


class Case:
    def __init__(self, tmp: Path, bundle: h.Bundle, root: Path) -> None:
        CASES.append(self)
        self.tmp = tmp
        self.bundle = bundle
        self.root = root
        self.cid = f"oserr-{uuid.uuid4().hex[:8]}"
        self.cg = f"ocipy-oserr-{uuid.uuid4().hex[:8]}"
        bundle.linux["cgroupsPath"] = f"/{self.cg}"
        bundle.linux["resources"] = {"memory": {"limit": 256 * 1024 * 1024}, "pids": {"limit": 100}}
        bundle.write()
        self.probe = L.Probe(root, self.cid, self.cg, marks=[str(bundle.path), self.cid])

    def create(self, *flags: str, prefix: list[str] | None = None) -> tuple[int, str]:
        argv = [
            *(prefix or []),
            *h.runtime_argv(),
            "--root",
            str(self.root),
            "create",
            "--bundle",
            str(self.bundle.path),
            *flags,
            self.cid,
        ]
        # files, not pipes: a created init holds its stdio, and a pipe would not end before it does
        err = self.tmp / f"{self.cid}.err"
        with open(err, "wb") as fe:
            proc = subprocess.run(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=fe,
                env=h.runtime_env(),
                timeout=60,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        return proc.returncode, err.read_text(errors="replace")

    def finish(self) -> dict[str, list[str]]:
        subprocess.run(
            [*h.runtime_argv(), "--root", str(self.root), "delete", "--force", self.cid],
            capture_output=True,
            env=h.runtime_env(),
            timeout=60,
            check=False,
        )
        found = self.probe.check(grace=2.0)
        self.probe.clean()
        return found


def one_clear_line(rc: int, err: str, *words: str) -> None:
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc == 1, (rc, err)
    assert len(lines) == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert lines[0].startswith("ocipy: "), err
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"


def test_full_state_root(tmp_path, bundle, tmpfs):
    fs = tmpfs("size=64k,mode=700")
    root = fs / "root"
    root.mkdir()
    fill(fs)
    case = Case(tmp_path, bundle, root)
    rc, err = case.create()
    one_clear_line(rc, err, str(root), "no space left on device")
    assert not case.finish()
    (fs / "filler").unlink()
    # the same root, room again: create works (nothing half-made is in the way)
    rc, err = case.create()
    assert rc == 0, err
    assert not case.finish()


def test_state_root_out_of_inodes(tmp_path, bundle, tmpfs):
    fs = tmpfs("size=1m,nr_inodes=6,mode=700")
    root = fs / "root"
    root.mkdir()
    n = 0
    try:
        while True:
            (fs / f"i{n}").touch()
            n += 1
    except OSError:
        pass
    case = Case(tmp_path, bundle, root)
    rc, err = case.create()
    one_clear_line(rc, err, str(root), "no space left on device")
    assert not case.finish()


def test_read_only_state_root(tmp_path, bundle, tmpfs):
    root = tmpfs("size=1m,ro")
    case = Case(tmp_path, bundle, root)
    rc, err = case.create()
    one_clear_line(rc, err, str(root), "read-only file system")
    assert not case.finish()


def test_read_only_pid_file_dir(tmp_path, bundle, tmpfs):
    ro = tmpfs("size=1m,ro")
    case = Case(tmp_path, bundle, tmp_path / "state")
    rc, err = case.create("--pid-file", str(ro / "pid"))
    one_clear_line(rc, err, str(ro / "pid"), "read-only file system")
    assert not case.finish()


def test_full_bundle_pid_file(tmp_path, bundle, tmpfs):
    fs = tmpfs("size=64k")
    fill(fs)
    case = Case(tmp_path, bundle, tmp_path / "state")
    rc, err = case.create("--pid-file", str(fs / "pid"))
    one_clear_line(rc, err, str(fs / "pid"), "no space left on device")
    assert not case.finish()


@pytest.mark.parametrize("limit", [12, 16, 20, 24, 28, 32, 40, 48, 64])
def test_too_many_open_files(tmp_path, bundle, limit):
    bundle.process.pop("rlimits", None)  # the container's own NOFILE would be above the hard limit set here
    case = Case(tmp_path, bundle, tmp_path / "state")

    # prlimit, not a preexec_fn: a fork of pytest, whose CRI tests may have left gRPC's threads running, can abort
    # in gRPC's fork handler before the exec (seen in CI: "Epoll1Poller ... epoll_wait error", SIGABRT)
    rc, err = case.create(prefix=["prlimit", f"--nofile={limit}:{limit}", "--"])
    if rc != 0:  # some limits are enough; the others must say what ran out
        one_clear_line(rc, err, "too many open files")
    assert not case.finish()


needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup)")


@needs_strace
@pytest.mark.parametrize("errname", ["EDQUOT", "ENOSPC", "ENOMEM", "EROFS"])
def test_state_write_fails(tmp_path, bundle, errname):
    """Creating the state files fails with errname (an inode quota, a full or read-only disk, no memory): the line
    names the file. strace -P on the container dir matches the openat() calls relative to its fd; the first is the
    open of the directory itself, the second the state file's (the journal's first write)."""
    root = tmp_path / "state"
    case = Case(tmp_path, bundle, root)
    prefix = [
        "strace",
        "-qq",
        "-o",
        "/dev/null",
        "-P",
        str(root / case.cid),
        "-e",
        "trace=openat",
        "-e",
        f"inject=openat:error={errname}:when=2+",
    ]
    rc, err = case.create(prefix=prefix)
    reason = os.strerror(getattr(__import__("errno"), errname)).lower()
    one_clear_line(rc, err, str(root / case.cid / "state.json"), reason)
    assert not case.finish()


@needs_strace
@pytest.mark.parametrize("errname", ["ENOSPC", "ENOMEM", "EDQUOT"])
def test_cgroup_file_write_fails(tmp_path, bundle, errname):
    """Writing a cgroup file fails with errname: the line names the field and the file."""
    case = Case(tmp_path, bundle, tmp_path / "state")
    target = f"/sys/fs/cgroup/memory/{case.cg}/memory.limit_in_bytes"
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        target = f"/sys/fs/cgroup/{case.cg}/memory.max"
    prefix = ["strace", "-qq", "-o", "/dev/null", "-P", target, "-e", f"inject=write:error={errname}"]
    rc, err = case.create(prefix=prefix)
    reason = os.strerror(getattr(__import__("errno"), errname)).lower()
    one_clear_line(rc, err, target, reason, "/linux/resources/memory")
    assert not case.finish()


def test_cgroup_mkdir_refused(tmp_path, bundle):
    """The unified parent allows no more descendants: mkdir fails (EAGAIN): the line names the directory."""
    parent = Path(f"/sys/fs/cgroup/unified/ocipy-oserr-parent-{uuid.uuid4().hex[:6]}")
    if not parent.parent.is_dir():
        parent = Path(f"/sys/fs/cgroup/ocipy-oserr-parent-{uuid.uuid4().hex[:6]}")
    parent.mkdir()
    try:
        (parent / "cgroup.max.descendants").write_text("0")
        case = Case(tmp_path, bundle, tmp_path / "state")
        bundle.linux["cgroupsPath"] = f"/{parent.name}/{case.cg}"
        bundle.write()
        rc, err = case.create()
        one_clear_line(rc, err, "/linux/cgroupsPath", str(parent / case.cg))
        assert not case.finish()
        leftover = L.cgroup_mountpoints()
        assert not [m for m in leftover if os.path.isdir(os.path.join(m, parent.name, case.cg))]
    finally:
        for m in L.cgroup_mountpoints():
            d = os.path.join(m, parent.name)
            for sub in (os.path.join(d, x) for x in (os.listdir(d) if os.path.isdir(d) else [])):
                if os.path.isdir(sub):
                    os.rmdir(sub)
            if os.path.isdir(d):
                os.rmdir(d)


def test_bundle_unreadable_config_is_named(tmp_path, bundle):
    """config.json that cannot be read (a directory in its place: EISDIR): the path and the reason."""
    case = Case(tmp_path, bundle, tmp_path / "state")
    (bundle.path / "config.json").unlink()
    (bundle.path / "config.json").mkdir()
    rc, err = case.create()
    one_clear_line(rc, err, str(bundle.path / "config.json"), "is a directory")
    assert not case.finish()
    (bundle.path / "config.json").rmdir()
    json.dumps({})
