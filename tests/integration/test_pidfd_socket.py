"""runc 1.2's flags ocipy had not taken: `--pidfd-socket` (create, run, exec) and `update --cpu-burst/--cpu-idle`."""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


class Listener:
    """A pidfd-socket consumer, as runc's tests/cmd/pidfd-kill: accept one connection, receive one fd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.payload = b""
        self.fds: list[int] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            self.payload, self.fds, _, _ = socket.recv_fds(conn, 64, 4)

    def result(self) -> tuple[bytes, int]:
        self.thread.join(30)
        self.sock.close()
        assert len(self.fds) == 1, self.fds
        return self.payload, self.fds[0]


def pidfd_pid(fd: int) -> int:
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("Pid:"):
            return int(line.split()[1])
    raise AssertionError("not a pidfd")


def test_create_sends_the_inits_pidfd(rt: Any, bundle: Any, tmp_path: Path) -> None:
    h.needs_newer_than_runc_1_1("--pidfd-socket")
    listener = Listener(tmp_path / "pidfd.sock")
    bundle.args("sleep", "1000")
    cid, _ = rt.create_ok(bundle, "--pidfd-socket", str(tmp_path / "pidfd.sock"))
    payload, fd = listener.result()
    try:
        assert payload == b"standard"
        assert pidfd_pid(fd) == rt.pid(cid)
        rt.start(cid).ok()
        # the consumer can stop the container through it (what containerd's shim does)
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        assert rt.wait_status(cid, "stopped")
    finally:
        os.close(fd)


def test_exec_sends_the_processs_pidfd(rt: Any, bundle: Any, tmp_path: Path) -> None:
    h.needs_newer_than_runc_1_1("--pidfd-socket")
    bundle.args("sleep", "1000")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    listener = Listener(tmp_path / "exec.sock")
    pid_file = tmp_path / "exec.pid"
    rt.call(
        "exec",
        "--detach",
        "--pid-file",
        str(pid_file),
        "--pidfd-socket",
        str(tmp_path / "exec.sock"),
        cid,
        "sleep",
        "77",
    ).ok()
    payload, fd = listener.result()
    try:
        assert payload == b"setns"
        assert pidfd_pid(fd) == int(pid_file.read_text())
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        os.close(fd)


def test_run_detached_sends_the_pidfd(rt: Any, bundle: Any, tmp_path: Path) -> None:
    h.needs_newer_than_runc_1_1("--pidfd-socket")
    listener = Listener(tmp_path / "run.sock")
    bundle.args("sleep", "1000")
    cid = rt.new_id("pidfdrun")
    rt.run(bundle, "--detach", "--pidfd-socket", str(tmp_path / "run.sock"), cid=cid).ok()
    rt.remember(cid)
    payload, fd = listener.result()
    try:
        assert payload == b"standard" and pidfd_pid(fd) == rt.pid(cid)
    finally:
        os.close(fd)


def test_a_missing_pidfd_socket_fails_create_and_leaves_nothing(rt: Any, bundle: Any, tmp_path: Path) -> None:
    h.needs_newer_than_runc_1_1("--pidfd-socket")
    bundle.args("true")
    cid, res = rt.create(bundle, None, "--pidfd-socket", str(tmp_path / "nobody"))
    res.fails(f"pidfd socket {tmp_path / 'nobody'}: no such file or directory")
    rt.call("state", cid).fails("container does not exist")


@pytest.mark.skipif(not Path("/sys/fs/cgroup/cpu/cpu.cfs_burst_us").exists(), reason="no v1 cpu.cfs_burst_us")
def test_update_cpu_burst_and_idle(rt: Any, bundle: Any) -> None:
    h.needs_newer_than_runc_1_1("update --cpu-burst")
    bundle.args("sleep", "1000")
    bundle.linux["resources"] = {"cpu": {"quota": 50000, "period": 100000}}
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    cpu = Path("/sys/fs/cgroup/cpu/ocipy", cid)
    rt.call("update", "--cpu-burst", "20000", "--cpu-idle", "1", cid).ok()
    assert (cpu / "cpu.cfs_burst_us").read_text().strip() == "20000"
    assert (cpu / "cpu.idle").read_text().strip() == "1"
    rt.call("update", "--cpu-idle", "0", cid).ok()
    assert (cpu / "cpu.idle").read_text().strip() == "0"
    rt.call("update", "--cpu-burst", "-5", cid).fails("--cpu-burst")
