"""exec starts the cgroup lock's grace period early (ocipy/cgroups/graceperiod.py, called by exec): a thread writes
"0" (itself) into the unified cgroup.procs that lists this process, found from the container's record and
/proc/self/cgroup, and into nothing else. On a fake hierarchy (plain files) the write shows as the file's text."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ocipy.cgroups import graceperiod


def _own_v2() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    pytest.skip("no unified hierarchy line in /proc/self/cgroup")


def _fake(tmp_path: Path, listed: list[int]) -> tuple[dict[str, object], Path]:
    """A hierarchy mounted at tmp/unified holding the container's cgroup and ours, ours listing `listed`."""
    mount = tmp_path / "unified"
    (mount / "ocipy" / "c1").mkdir(parents=True)
    (mount / "cgroup.controllers").write_text("")  # what tells a cgroup directory (the search's mount point)
    own = mount / _own_v2().lstrip("/")
    own.mkdir(parents=True, exist_ok=True)
    procs = own / "cgroup.procs"
    procs.write_text("".join(f"{pid}\n" for pid in listed))
    return {"v2": f"{mount}/ocipy/c1", "path": "/ocipy/c1", "v1": {}}, procs


def _settled(procs: Path, before: str) -> str:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and procs.read_text() == before:
        time.sleep(0.005)
    return procs.read_text()


def test_writes_itself_into_the_cgroup_that_lists_it(tmp_path: Path) -> None:
    record, procs = _fake(tmp_path, [1, os.getpid(), 99])
    before = procs.read_text()
    graceperiod.start(record)
    assert _settled(procs, before).startswith("0")  # a plain file: the "0" lands over the first byte


@pytest.mark.parametrize("path", ["system.slice:ocipy:c1", "ocipy/c1"])
def test_a_record_whose_path_does_not_end_v2_searches_v2s_ancestors(tmp_path: Path, path: str) -> None:
    """The systemd driver's record (`slice:prefix:name`; systemd chose the directory) and a relative cgroupsPath do
    not tell the mount point: it is one of v2's ancestors, the one whose cgroup.procs at our own path lists us."""
    record, procs = _fake(tmp_path, [1, os.getpid(), 99])
    mount = tmp_path / "unified"
    scope = mount / "system.slice" / "ocipy-c1.scope"
    scope.mkdir(parents=True)
    (scope / "cgroup.procs").write_text(f"{os.getpid()}\n")  # never ours to write: not at our own path
    record.update(path=path, v2=str(scope))
    before = procs.read_text()
    graceperiod.start(record)
    assert _settled(procs, before).startswith("0")
    assert (scope / "cgroup.procs").read_text() == f"{os.getpid()}\n"


@pytest.mark.parametrize(
    "change",
    [
        "not-listed",  # a cgroup.procs that does not list this process: a mount point elsewhere than assumed
        "systemd-not-listed",  # the same for a systemd record, whose mount point is searched for
        "no-v2",  # no unified hierarchy recorded
    ],
)
def test_writes_nothing_anywhere_else(tmp_path: Path, change: str) -> None:
    record, procs = _fake(tmp_path, [1, 99] if "not-listed" in change else [os.getpid()])
    if change == "systemd-not-listed":
        record["path"] = "system.slice:ocipy:c1"
    if change == "no-v2":
        del record["v2"]
    before = procs.read_text()
    graceperiod.start(record)
    time.sleep(0.05)
    assert procs.read_text() == before


def test_no_thread_no_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of threads (a pids limit reached), the exec goes on as it would without the early start."""
    import _thread

    def refuse(*_args: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_thread, "start_new_thread", refuse)
    record, procs = _fake(tmp_path, [os.getpid()])
    before = procs.read_text()
    graceperiod.start(record)  # returns, raises nothing
    assert procs.read_text() == before


def test_create_keeps_writing_until_stopped(tmp_path: Path) -> None:
    """create's keep=True: the lock's fast state comes back ~1 grace period after the last writer, so the thread
    writes again every few ms (each write lands one byte further on a plain file) until stop()."""
    record, procs = _fake(tmp_path, [os.getpid()] + [99999] * 64)
    before = procs.read_text()
    graceperiod.start(record, keep=True)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not procs.read_text().startswith("000"):
        time.sleep(0.002)
    graceperiod.stop()
    time.sleep(0.02)  # a rewrite already past its wait may still land
    stopped = procs.read_text()
    assert stopped.startswith("000") and stopped != before
    time.sleep(0.05)
    assert procs.read_text() == stopped  # no more writes after stop()


def test_writes_once_without_keep(tmp_path: Path) -> None:
    record, procs = _fake(tmp_path, [os.getpid()] + [99999] * 64)
    before = procs.read_text()
    graceperiod.start(record)
    after = _settled(procs, before)
    time.sleep(0.05)
    assert procs.read_text() == after and after[:2] == "0" + before[1]
