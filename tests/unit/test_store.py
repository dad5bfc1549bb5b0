"""The state store with a temp root: id rules, layout, atomic writes, locking, and the derived status against real
processes the test starts (and fake freezer files)."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocipy import procfs, store
from ocipy.errors import OcipyError
from ocipy.signals import parse_signal
from ocipy.state import State
from ocipy.store import Store


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def make(st: Store, cid: str, pid: int, **private: Any) -> store.Container:
    c = st.create_dir(cid)
    starttime = private.pop("starttime", procfs.starttime(pid) if pid else None)
    c.write_state(
        State(
            cid,
            pid=pid,
            bundle="/b",
            rootfs="/b/rootfs",
            created="2024-01-01T00:00:00.000000001Z",
            private={"starttime": starttime, **private},
        )
    )
    return c


@pytest.mark.parametrize("cid", ["a", "web-1", "A.b_c+d", "x" * 1024, "...", ".a", "a..b"])
def test_valid_ids(cid: str) -> None:
    store.validate_id(cid)


@pytest.mark.parametrize(
    "cid", ["", ".", "..", "../x", "a/b", "/abs", "x" * 1025, "a\x00b", "a b", "é", "a\n", "ａ", "a:b", "~"]
)
def test_invalid_ids(cid: str, tmp_path: Path) -> None:
    with pytest.raises(OcipyError, match="^invalid container ID format$"):
        store.validate_id(cid)
    with pytest.raises(OcipyError, match="^invalid container ID format$"):
        Store(str(tmp_path)).open(cid)
    assert list(tmp_path.iterdir()) == []


def test_default_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.px, "geteuid", lambda: 0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert store.default_root() == "/run/ocipy"
    monkeypatch.setattr(store.px, "geteuid", lambda: 1000)
    assert store.default_root() == "/run/user/1000/ocipy"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "")
    assert store.default_root() == "/run/ocipy"


def test_create_dir_layout_and_exists(tmp_path: Path) -> None:
    st = Store(str(tmp_path / "root"))
    c = make(st, "web", 0)
    mode = os.stat(c.dir).st_mode
    assert stat.S_IMODE(mode) == 0o700
    c.close()
    with pytest.raises(OcipyError, match="^container with given ID already exists$"):
        st.create_dir("web")


def test_create_dir_while_another_create_works_on_the_id(tmp_path: Path) -> None:
    st = Store(str(tmp_path))
    c = st.create_dir("web")  # locked, nothing recorded yet: a create in progress
    with pytest.raises(OcipyError, match="^container with given ID already exists$"):
        st.create_dir("web")
    assert st.open("web").status() == store.CREATING
    c.close()


def test_create_dir_undoes_a_dead_create(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """A half-made container whose create is gone (lock free, journal open): the next create undoes it first --
    the recorded init is killed, the planned cgroup dirs rmdir'd."""
    st = Store(str(tmp_path / "root"))
    planned = tmp_path / "cg"
    planned.mkdir()
    c = make(st, "web", sleeper.pid, creating={"cgroup": {"v1": {"pids": str(planned)}}})
    os.mkfifo(c.fifo_path)
    c.close()
    assert st.open("web").status() == store.STOPPED
    assert st.ids() == ["web"]
    st.create_dir("web").close()
    assert sleeper.wait(5) == -9
    assert not planned.exists()
    assert sorted(os.listdir(tmp_path / "root" / "web")) == []


def test_open_missing(tmp_path: Path) -> None:
    with pytest.raises(OcipyError, match="^container does not exist$"):
        Store(str(tmp_path)).open("nope")


def test_symlink_is_not_a_container(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OcipyError, match="^container does not exist$"):
        Store(str(tmp_path)).open("link")


def test_write_state_is_atomic_and_readable(tmp_path: Path) -> None:
    st = Store(str(tmp_path))
    c = make(st, "a", 0)
    assert sorted(os.listdir(c.dir)) == ["state.json"]
    assert stat.S_IMODE(os.stat(c.state_path).st_mode) == 0o600
    c.close()
    c2 = st.open("a")
    assert c2.read_state().bundle == "/b"
    c2.close()


def test_half_made_dir_is_listed_stopped(tmp_path: Path) -> None:
    """docs/cli.md: a half-made container (no state yet, or an open journal) is listed: `creating` while its
    create holds the lock, `stopped` once that create is gone; delete undoes it."""
    st = Store(str(tmp_path))
    st.create_dir("half").close()
    make(st, "whole", 0).close()
    assert st.ids() == ["half", "whole"]
    half = st.open_locked("half")
    assert half.journal() == {}
    assert half.status() == store.STOPPED
    assert half.oci_state()["pid"] == 0
    half.undo_create()
    half.close()
    assert st.ids() == ["whole"]


def test_empty_state_is_a_create_that_recorded_nothing(tmp_path: Path) -> None:
    """write_file does not fsync (as runc): a power cut can leave a first write empty, with the temp file beside it.
    That reads as a directory without state.json, a half-made container delete removes, not as a corrupt record."""
    st = Store(str(tmp_path))
    c = st.create_dir("cut")
    (Path(c.dir) / "state.json").write_bytes(b"")
    (Path(c.dir) / ".state.json.123.tmp").write_bytes(b"")
    c.close()
    c = st.open_locked("cut")
    assert c.journal() == {} and c.status() == store.STOPPED and c.oci_state()["pid"] == 0
    c.undo_create()
    c.close()
    assert st.ids() == [] and not (tmp_path / "cut").exists()


def test_corrupt_state_is_one_line_error(tmp_path: Path) -> None:
    st = Store(str(tmp_path))
    st.create_dir("bad").close()
    (tmp_path / "bad" / "state.json").write_text("{not json")
    with pytest.raises(OcipyError, match="invalid state"):
        st.open("bad").read_state()


def test_remove(tmp_path: Path) -> None:
    st = Store(str(tmp_path))
    c = make(st, "a", 0)
    os.mkfifo(c.fifo_path)
    os.mkdir(os.path.join(c.dir, "sub"))
    Path(c.dir, "sub", "f").write_text("x")
    c.remove()
    c.close()
    assert list(tmp_path.iterdir()) == []


def test_lock_is_exclusive(tmp_path: Path) -> None:
    st = Store(str(tmp_path))
    c = make(st, "a", 0)
    with c.lock():
        probe = f"import fcntl,os,sys; fd=os.open({c.dir!r}, os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX|fcntl.LOCK_NB)"
        assert subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False).returncode != 0
    # released by the context manager
    fd = os.open(c.dir, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    c.close()


def test_status_running_and_oci_state(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    c = make(Store(str(tmp_path)), "a", sleeper.pid)
    assert c.status() == "running"
    s = c.oci_state()
    assert list(s) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]
    assert s["pid"] == sleeper.pid and s["status"] == "running"
    c.close()


def test_status_created_while_fifo_exists(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    c = make(Store(str(tmp_path)), "a", sleeper.pid)
    os.mkfifo(c.fifo_path, 0o600)
    assert c.status() == "created"
    c.close()


def test_status_stopped_for_zombie_and_reaped(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "60"])
    c = make(Store(str(tmp_path)), "a", proc.pid)
    proc.kill()
    assert procfs.wait_gone(proc.pid, c.starttime, 5)
    assert procfs.read_stat(proc.pid) is not None  # still a zombie: not reaped yet
    assert c.status() == "stopped"
    assert c.oci_state()["pid"] == 0
    proc.wait()
    assert c.status() == "stopped"
    c.close()


def test_status_stopped_on_pid_reuse(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    real = procfs.starttime(sleeper.pid)
    assert real is not None
    c = make(Store(str(tmp_path)), "a", sleeper.pid, starttime=real + 1)
    assert c.status() == "stopped"
    assert procfs.pidfd_open(sleeper.pid, real + 1) is None
    c.close()


def test_status_stopped_without_pid(tmp_path: Path) -> None:
    c = make(Store(str(tmp_path)), "a", 0)
    assert c.status() == "stopped"
    c.close()


def test_status_paused_from_v1_and_v2_freezer_files(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    v1 = tmp_path / "freezer"
    v1.mkdir()
    (v1 / "freezer.state").write_text("THAWED\n")
    (v1 / "cgroup.procs").write_text(f"{sleeper.pid}\n")
    st = Store(str(tmp_path / "root"))
    c = make(st, "one", sleeper.pid, cgroup={"v1": {"freezer": str(v1)}})
    assert c.status() == "running"
    c.freeze(True)  # a plain file reads back what was written
    assert c.status() == "paused"
    assert c.cgroup().pids() == [sleeper.pid]
    c.freeze(False)
    assert c.status() == "running"
    # FROZEN because a parent cgroup is frozen, not this one (self_freezing 0): not paused, as runc reads it
    (v1 / "freezer.state").write_text("FROZEN\n")
    (v1 / "freezer.self_freezing").write_text("0\n")
    assert c.status() == "running"
    (v1 / "freezer.self_freezing").write_text("1\n")
    assert c.status() == "paused"
    (v1 / "freezer.state").write_text("THAWED\n")

    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.freeze").write_text("1\n")
    c2 = make(st, "two", sleeper.pid, cgroup={"v2": str(v2)})
    assert c2.status() == "paused"
    (v2 / "cgroup.freeze").write_text("0\n")
    assert c2.status() == "running"
    c.close()
    c2.close()


def test_status_paused_before_created(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """A frozen created container reads `paused` (the freezer before the exec fifo, as runc), `created` once thawed."""
    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.freeze").write_text("1\n")
    c = make(Store(str(tmp_path / "root")), "a", sleeper.pid, cgroup={"v2": str(v2)})
    os.mkfifo(os.path.join(c.dir, "exec.fifo"))
    assert c.status() == "paused"
    (v2 / "cgroup.freeze").write_text("0\n")
    assert c.status() == "created"
    c.close()


def test_populated_from_cgroup_events_or_the_procs(tmp_path: Path) -> None:
    """delete asks `populated`: v2's cgroup.events answers for the subtree; without it, the listed pids do."""
    from ocipy.cgroups.driver import NO_CGROUP, driver_for

    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.procs").write_text("")
    drv = driver_for({"v2": str(v2)})
    assert not drv.populated()  # no cgroup.events: the (empty) procs file
    (v2 / "cgroup.procs").write_text("4242\n")
    assert drv.populated()
    (v2 / "cgroup.events").write_text("populated 0\nfrozen 0\n")
    assert not drv.populated()  # the events file wins: it covers the sub-cgroups too
    (v2 / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    (v2 / "cgroup.procs").write_text("")
    assert drv.populated()
    v1 = tmp_path / "pids"
    (v1 / "sub").mkdir(parents=True)
    (v1 / "cgroup.procs").write_text("")
    (v1 / "sub" / "cgroup.procs").write_text("77\n")
    assert driver_for({"v1": {"pids": str(v1)}}).populated()
    assert not NO_CGROUP.populated()


def test_every_driver_freezes_through_the_freezer_module() -> None:
    """The status reads the freezer through ocipy/cgroups/freezer.py, without the driver module: a driver that froze
    another way would make `state` and `pause` disagree."""
    from ocipy.cgroups import driver

    for name in driver.DRIVERS:
        cls = driver.driver_class(name)
        assert cls.is_frozen is driver.Cgroupfs.is_frozen, name
        assert cls.freeze is driver.Cgroupfs.freeze, name


def test_no_cgroup_record(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    c = make(Store(str(tmp_path)), "a", sleeper.pid)
    assert not c.cgroup().has_freezer() and c.cgroup().pids() is None
    with pytest.raises(OcipyError, match="^container has no cgroup to freeze$"):
        c.cgroup().freeze(True)
    with pytest.raises(OcipyError, match="^container has no cgroup to freeze$"):
        c.freeze(True)
    c.close()
    rootless = make(Store(str(tmp_path)), "b", sleeper.pid, rootless=True)
    with pytest.raises(OcipyError, match="^container has no cgroup to freeze: it was created rootless"):
        rootless.freeze(True)
    rootless.close()


def test_read_stat_handles_odd_comm(tmp_path: Path) -> None:
    # comm with spaces and parentheses: fields must be read after the last ')'
    odd = tmp_path / "a) (b c"
    odd.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(odd), "60"])
    try:
        st = procfs.read_stat(proc.pid)
        assert st is not None and st.state in "RS" and st.starttime > 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    "raw,num",
    [
        ("15", 15),
        ("TERM", 15),
        ("SIGTERM", 15),
        ("sigkill", 9),
        ("usr1", 10),
        ("Hup", 1),
        ("9", 9),
        ("64", 64),
        ("0", 0),
    ]
    + [("RTMIN", 34), ("SIGRTMIN+3", 37), ("rtmax-1", 63), ("SIGCHLD", 17), ("winch", 28)],
)
def test_parse_signal(raw: str, num: int) -> None:
    assert parse_signal(raw) == num


@pytest.mark.parametrize("raw", ["", "65", "-9", "FOO", "SIG", "RTMIN+31", "RTMAX+1", "1.5", "٣"])
def test_parse_signal_rejects(raw: str) -> None:
    with pytest.raises(OcipyError, match="^unknown signal "):
        parse_signal(raw)
