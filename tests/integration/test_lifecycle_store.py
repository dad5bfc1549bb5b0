"""state/list/kill/delete/start/pause/resume through the real CLI, against hand-made store entries that point at real
processes this test starts. A created container's init is faked by a small Python child that holds the exec fifo's
read end and waits for the start byte, as ocipy-init does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocipy import procfs

PROJECT = Path(__file__).resolve().parents[2]

# the fake init: open the fifo's read end, say so, wait for "0", record it, then run like a container process
FAKE_INIT = textwrap.dedent(
    """
    import os, select, sys, time
    fifo, marker = sys.argv[1], sys.argv[2]
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    open(marker + ".ready", "w").close()
    while True:
        select.select([fd], [], [])
        data = os.read(fd, 1)
        if data:
            break
        time.sleep(0.005)  # no writer yet (EOF): wait for start
    with open(marker, "w") as f:
        f.write(data.decode())
    time.sleep(60)
    """
)


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        self.procs: list[subprocess.Popen[bytes]] = []

    def ocipy(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        return subprocess.run(
            [sys.executable, "-m", "ocipy", "--root", str(self.root), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(list(argv))
        self.procs.append(proc)
        return proc

    def entry(self, cid: str, pid: int, fifo: bool = False, **private: Any) -> Path:
        d = self.root / cid
        d.mkdir(parents=True, mode=0o700, exist_ok=True)
        if fifo:
            os.mkfifo(d / "exec.fifo", 0o600)
        state = {
            "ociVersion": "1.3.0",
            "id": cid,
            "pid": pid,
            "bundle": f"/bundles/{cid}",
            "rootfs": f"/bundles/{cid}/rootfs",
            "created": "2024-05-01T10:00:00.123456789Z",
            "owner": "",
            "ocipy": {"starttime": procfs.starttime(pid), **private},
        }
        (d / "state.json").write_text(json.dumps(state))
        return d

    def created(self, cid: str) -> tuple[subprocess.Popen[bytes], Path]:
        """A container in `created`: a fake init holding the fifo's read end."""
        d = self.root / cid
        d.mkdir(parents=True, mode=0o700)
        os.mkfifo(d / "exec.fifo", 0o600)
        marker = self.tmp / f"{cid}.started"
        proc = self.spawn(sys.executable, "-c", FAKE_INIT, str(d / "exec.fifo"), str(marker))
        wait_for(lambda: Path(str(marker) + ".ready").exists())
        self.entry(cid, proc.pid)
        return proc, marker

    def status(self, cid: str) -> str:
        out = self.ocipy("state", cid)
        assert out.returncode == 0, out.stderr
        return str(json.loads(out.stdout)["status"])


def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    for proc in e.procs:
        proc.kill()
        proc.wait()


def one_line(out: subprocess.CompletedProcess[str], text: str) -> None:
    assert out.returncode == 1
    assert out.stderr == f"ocipy: {text}\n"
    assert out.stdout == ""


def test_state_of_a_running_container(env: Env) -> None:
    proc = env.spawn("sleep", "60")
    env.entry("web", proc.pid)
    out = env.ocipy("state", "web")
    assert out.returncode == 0 and out.stderr == ""
    doc = json.loads(out.stdout)
    assert list(doc) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]
    assert doc["status"] == "running" and doc["pid"] == proc.pid and doc["id"] == "web"
    # runc's two-space pretty print
    assert out.stdout.startswith('{\n  "ociVersion": "1.3.0",\n  "id": "web",\n')


def test_kill_stops_and_then_refuses(env: Env) -> None:
    proc = env.spawn("sleep", "60")
    env.entry("k", proc.pid)
    out = env.ocipy("kill", "k", "TERM")
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""
    assert proc.wait(timeout=10) == -15
    assert env.status("k") == "stopped"
    assert json.loads(env.ocipy("state", "k").stdout)["pid"] == 0
    one_line(env.ocipy("kill", "k", "9"), "container not running")
    one_line(env.ocipy("kill", "k", "NOPE"), 'unknown signal "NOPE"')


def test_kill_by_number_default_and_lowercase(env: Env) -> None:
    for cid, args, code in (("a", [], -15), ("b", ["9"], -9), ("c", ["sigkill"], -9), ("d", ["usr1"], -10)):
        proc = env.spawn("sleep", "60")
        env.entry(cid, proc.pid)
        assert env.ocipy("kill", cid, *args).returncode == 0
        assert proc.wait(timeout=10) == code


def test_kill_never_hits_a_reused_pid(env: Env) -> None:
    proc = env.spawn("sleep", "60")
    d = env.entry("reused", proc.pid)
    state = json.loads((d / "state.json").read_text())
    state["ocipy"]["starttime"] += 1  # the recorded init started at another time: this pid is someone else
    (d / "state.json").write_text(json.dumps(state))
    assert env.status("reused") == "stopped"
    one_line(env.ocipy("kill", "reused", "KILL"), "container not running")
    assert proc.poll() is None


def test_delete_rules(env: Env) -> None:
    proc = env.spawn("sleep", "60")
    env.entry("run1", proc.pid)
    one_line(env.ocipy("delete", "run1"), "cannot delete container run1 that is not stopped: running")
    assert proc.poll() is None and (env.root / "run1").is_dir()
    out = env.ocipy("delete", "--force", "run1")
    assert out.returncode == 0 and out.stderr == ""
    assert proc.wait(timeout=10) == -9
    assert not (env.root / "run1").exists()
    one_line(env.ocipy("delete", "run1"), "container does not exist")
    assert env.ocipy("delete", "-f", "run1").returncode == 0


def test_delete_stopped(env: Env) -> None:
    proc = env.spawn("true")
    proc.wait()
    env.entry("gone", proc.pid)
    assert env.status("gone") == "stopped"
    assert env.ocipy("delete", "gone").returncode == 0
    assert list(env.root.iterdir()) == []


def test_start_created_container(env: Env) -> None:
    proc, marker = env.created("c1")
    assert env.status("c1") == "created"
    out = env.ocipy("start", "c1")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    wait_for(marker.exists)
    assert marker.read_text() == "0"
    assert not (env.root / "c1" / "exec.fifo").exists()
    assert env.status("c1") == "running"
    one_line(env.ocipy("start", "c1"), "cannot start an already running container")
    assert proc.poll() is None


def test_start_after_the_init_died(env: Env) -> None:
    proc, marker = env.created("dead")
    proc.kill()
    proc.wait()
    assert env.status("dead") == "stopped"
    one_line(env.ocipy("start", "dead"), "cannot start a container that has stopped")
    assert not marker.exists()


def test_start_when_nobody_reads_the_fifo(env: Env) -> None:
    # the pid is alive but holds no read end: start must not hang, and says the init is gone
    proc = env.spawn("sleep", "60")
    env.entry("noreader", proc.pid, fifo=True)
    assert env.status("noreader") == "created"
    one_line(env.ocipy("start", "noreader"), "cannot start a container that has stopped")


def test_kill_and_delete_of_a_created_container(env: Env) -> None:
    proc, _ = env.created("c2")
    assert env.ocipy("kill", "c2", "TERM").returncode == 0
    assert proc.wait(timeout=10) == -15
    proc, _ = env.created("c3")
    out = env.ocipy("delete", "c3")  # created: killed and removed without --force
    assert out.returncode == 0, out.stderr
    assert proc.wait(timeout=10) == -9
    assert not (env.root / "c3").exists()


def test_list_table_json_quiet(env: Env) -> None:
    one_line(env.ocipy("list", "--format", "yaml"), "invalid format option: yaml")
    assert env.ocipy("list", "-f", "json").stdout == "null\n"
    proc = env.spawn("sleep", "60")
    env.entry("alpha", proc.pid)
    dead = env.spawn("true")
    dead.wait()
    env.entry("a-much-longer-container-name", dead.pid)
    (env.root / "half").mkdir()  # a create that died before it recorded anything: listed as stopped (docs/cli.md)
    out = env.ocipy("list")
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    # tabwriter columns: every row's STATUS starts where the header's does
    col = lines[0].index("STATUS")
    assert all(line[col:].split()[0] in ("STATUS", "running", "stopped") for line in lines)
    assert lines[1].split()[:3] == ["a-much-longer-container-name", "0", "stopped"]
    assert lines[2].split()[:3] == ["alpha", str(proc.pid), "running"]
    assert lines[2].split()[-1] == "root" or os.geteuid() != 0
    assert lines[3].split()[:3] == ["half", "0", "stopped"]
    assert env.ocipy("list", "-q").stdout == "a-much-longer-container-name\nalpha\nhalf\n"
    docs = json.loads(env.ocipy("list", "--format=json").stdout)
    assert [d["id"] for d in docs] == ["a-much-longer-container-name", "alpha", "half"]
    assert docs[1]["status"] == "running"
    assert env.ocipy("delete", "half").returncode == 0  # undone without --force: it is stopped
    assert not (env.root / "half").exists()


def test_pause_resume_rules_without_cgroup(env: Env) -> None:
    proc = env.spawn("sleep", "60")
    env.entry("p", proc.pid)
    one_line(env.ocipy("pause", "p"), "container has no cgroup to freeze")
    one_line(env.ocipy("resume", "p"), "container not paused")
    dead = env.spawn("true")
    dead.wait()
    env.entry("s", dead.pid)
    one_line(env.ocipy("pause", "s"), "container not running")


FREEZER = Path("/sys/fs/cgroup/freezer")


@pytest.mark.skipif(os.geteuid() != 0 or not FREEZER.is_dir(), reason="needs root and a v1 freezer hierarchy")
def test_pause_resume_kill_all_with_a_real_v1_freezer(env: Env) -> None:
    cg = FREEZER / f"ocipy-test-{os.getpid()}"
    cg.mkdir()
    try:
        init = env.spawn("sleep", "60")
        other = env.spawn("sleep", "60")
        for p in (init, other):
            (cg / "cgroup.procs").write_text(str(p.pid))
        env.entry("fz", init.pid, cgroup={"v1": {"freezer": str(cg)}})
        assert env.ocipy("pause", "fz").returncode == 0
        assert env.status("fz") == "paused"
        one_line(env.ocipy("pause", "fz"), "container not running")
        assert env.ocipy("resume", "fz").returncode == 0
        assert env.status("fz") == "running"
        one_line(env.ocipy("resume", "fz"), "container not paused")
        assert env.ocipy("kill", "--all", "fz", "KILL").returncode == 0
        assert init.wait(timeout=10) == -9 and other.wait(timeout=10) == -9
        assert (cg / "freezer.state").read_text().strip() == "THAWED"
        # paused + delete --force: the kill lands (thawed after it is queued) and the cgroup goes
        again = env.spawn("sleep", "60")
        (cg / "cgroup.procs").write_text(str(again.pid))
        env.entry("fz2", again.pid, cgroup={"v1": {"freezer": str(cg)}})
        assert env.ocipy("pause", "fz2").returncode == 0
        out = env.ocipy("delete", "--force", "fz2")
        assert out.returncode == 0, out.stderr
        assert again.wait(timeout=10) == -9
        assert not cg.exists()
    finally:
        if cg.exists():
            (cg / "freezer.state").write_text("THAWED")
            for pid in (cg / "cgroup.procs").read_text().split():
                os.kill(int(pid), 9)
            wait_for(lambda: not (cg / "cgroup.procs").read_text().strip())
            cg.rmdir()
