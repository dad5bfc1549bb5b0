"""containerd 1.6 driving ocipy through its runc v2 shim: `ctr run --runc-binary <ocipy>` (private containerd, see
conftest.py). The shim calls create/start/exec/ps/pause/resume/kill/delete with `--root --log log.json
--log-format json`."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginectl import Containerd

pytestmark = [pytest.mark.engines, pytest.mark.timeout(180)]

IMAGE = Containerd.image
LOOP = "trap 'exit 3' TERM; echo ready > /tmp/ready; while :; do sleep 0.1; done"


def show(p: subprocess.CompletedProcess[str]) -> str:
    return f"\nargv: {' '.join(p.args)}\nexit: {p.returncode}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"


def run_opts(containerd: Containerd, runtime: str) -> list[str]:
    return ["--runc-binary", runtime, "--runc-root", str(containerd.runc_root)]


def ctr_run(
    containerd: Containerd, runtime: str, *opts: str, cmd: list[str], code: int = 0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    name = "r-" + uuid.uuid4().hex[:12]
    p = containerd.ctr("run", "--rm", *run_opts(containerd, runtime), *opts, IMAGE, name, *cmd, input=input)
    assert p.returncode == code, show(p)
    return p


def task_status(containerd: Containerd, name: str) -> str:
    for line in containerd.ctr("task", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name:
            return fields[2]
    return "MISSING"


def task_pid(containerd: Containerd, name: str) -> int:
    for line in containerd.ctr("task", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name:
            return int(fields[1])
    raise AssertionError(f"no task {name}")


def wait_for(cond, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


@contextlib.contextmanager
def detached(containerd: Containerd, runtime: str, *opts: str, cmd: list[str] | None = None) -> Iterator[str]:
    """`ctr run -d`: a running task with the trapping loop (ready once /tmp/ready exists); killed and removed."""
    name = "d-" + uuid.uuid4().hex[:12]
    p = containerd.ctr("run", "-d", *run_opts(containerd, runtime), *opts, IMAGE, name, *(cmd or ["sh", "-c", LOOP]))
    try:
        assert p.returncode == 0, show(p)
        pid = task_pid(containerd, name)
        if cmd is None:
            wait_for(lambda: Path(f"/proc/{pid}/root/tmp/ready").exists(), "task ready")
        yield name
    finally:
        containerd.ctr("task", "kill", "--all", "--signal", "SIGKILL", name)
        wait_for(lambda: task_status(containerd, name) in ("STOPPED", "MISSING"), "task stopped", timeout=15)
        containerd.ctr("task", "delete", "--force", name)
        containerd.ctr("container", "delete", name)


def test_run_output(containerd: Containerd, runtime: str) -> None:
    p = ctr_run(containerd, runtime, cmd=["sh", "-c", "echo hello; echo to-err >&2; cat /etc/hostname; id -u"])
    assert p.stdout.splitlines()[0] == "hello"
    assert p.stdout.splitlines()[-1] == "0"
    assert "to-err" in p.stderr


def test_exit_codes(containerd: Containerd, runtime: str) -> None:
    ctr_run(containerd, runtime, cmd=["sh", "-c", "exit 7"], code=7)
    ctr_run(containerd, runtime, cmd=["false"], code=1)
    p = ctr_run(containerd, runtime, cmd=["true"])
    assert p.stdout == ""
    # a missing executable fails the create (the shim reports ocipy's message), not the process
    p = containerd.ctr(
        "run", "--rm", *run_opts(containerd, runtime), IMAGE, "r-" + uuid.uuid4().hex[:12], "/no/such/binary"
    )
    assert p.returncode != 0
    assert "no such file or directory" in p.stderr.lower() or "not found" in p.stderr.lower(), show(p)


def test_task_exec(containerd: Containerd, runtime: str) -> None:
    with detached(containerd, runtime) as name:
        p = containerd.ctr("task", "exec", "--exec-id", "e1", name, "sh", "-c", "echo in-exec; cat /tmp/ready")
        assert p.returncode == 0 and p.stdout == "in-exec\nready\n", show(p)
        p = containerd.ctr("task", "exec", "--exec-id", "e2", name, "sh", "-c", "exit 9")
        assert p.returncode == 9, show(p)
        p = containerd.ctr(
            "task", "exec", "--exec-id", "e3", "--user", "1", "--cwd", "/tmp", name, "sh", "-c", "id -u; pwd"
        )
        assert p.returncode == 0 and p.stdout == "1\n/tmp\n", show(p)


def test_task_ps(containerd: Containerd, runtime: str) -> None:
    with detached(containerd, runtime, cmd=["sh", "-c", "sleep 1000 & sleep 1000 & " + LOOP]) as name:
        init = task_pid(containerd, name)
        wait_for(lambda: Path(f"/proc/{init}/root/tmp/ready").exists(), "task ready")
        p = containerd.ctr("task", "ps", name)
        assert p.returncode == 0, show(p)
        pids = {int(line.split()[0]) for line in p.stdout.splitlines()[1:] if line.split()}
        assert init in pids
        assert len(pids) >= 3, show(p)
        for pid in pids:
            assert Path(f"/proc/{pid}").exists()


def counter(pid: int) -> str:
    return Path(f"/proc/{pid}/root/tmp/count").read_text()


def test_pause_resume(containerd: Containerd, runtime: str) -> None:
    script = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"
    with detached(containerd, runtime, cmd=["sh", "-c", script]) as name:
        pid = task_pid(containerd, name)
        wait_for(lambda: os.path.exists(f"/proc/{pid}/root/tmp/count") and counter(pid).strip() != "", "counting")
        p = containerd.ctr("task", "pause", name)
        assert p.returncode == 0, show(p)
        assert task_status(containerd, name) == "PAUSED"
        first = counter(pid)
        time.sleep(0.6)
        assert counter(pid) == first, "the paused task kept running"
        p = containerd.ctr("task", "resume", name)
        assert p.returncode == 0, show(p)
        assert task_status(containerd, name) == "RUNNING"
        wait_for(lambda: counter(pid) != first, "the resumed task runs again", timeout=5)


def test_kill_and_delete(containerd: Containerd, runtime: str) -> None:
    name = "k-" + uuid.uuid4().hex[:12]
    p = containerd.ctr("run", "-d", *run_opts(containerd, runtime), IMAGE, name, "sh", "-c", LOOP)
    try:
        assert p.returncode == 0, show(p)
        pid = task_pid(containerd, name)
        wait_for(lambda: Path(f"/proc/{pid}/root/tmp/ready").exists(), "task ready")
        p = containerd.ctr("task", "delete", name)
        assert p.returncode != 0, "a running task was deleted"
        p = containerd.ctr("task", "kill", "--signal", "SIGTERM", name)
        assert p.returncode == 0, show(p)
        wait_for(lambda: task_status(containerd, name) == "STOPPED", "task stopped after SIGTERM")
        p = containerd.ctr("task", "delete", name)
        assert p.returncode == 0, show(p)
        assert task_status(containerd, name) == "MISSING"
        assert not list(containerd.runc_root.glob(f"*/{name}")), "runtime state left behind"
    finally:
        containerd.ctr("task", "delete", "--force", name)
        containerd.ctr("container", "delete", name)


def test_tty(containerd: Containerd, runtime: str) -> None:
    """`ctr run -t` with ctr on a real terminal: the task gets a pty through the console socket."""
    master, slave = pty.openpty()
    name = "t-" + uuid.uuid4().hex[:12]
    argv = containerd.ctr_argv(
        "run",
        "--rm",
        "-t",
        *run_opts(containerd, runtime),
        IMAGE,
        name,
        "sh",
        "-c",
        "tty; test -t 0 && test -t 1 && echo both-tty; exit 5",
    )
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=30) == 5, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        containerd.ctr("task", "delete", "--force", name)
        containerd.ctr("container", "delete", name)
    text = output.replace(b"\r", b"")
    assert b"/dev/pts/0\nboth-tty\n" in text, output


def test_memory_limit(containerd: Containerd, runtime: str) -> None:
    limit = 48 << 20
    with detached(containerd, runtime, "--memory-limit", str(limit)) as name:
        pid = task_pid(containerd, name)
        with open(f"/proc/{pid}/cgroup") as f:
            path = next(line.split(":", 2)[2].strip() for line in f if ":memory:" in line)
        assert Path(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read_text().strip() == str(limit)
    ctr_run(containerd, runtime, "--memory-limit", str(32 << 20), cmd=["tail", "/dev/zero"], code=137)
