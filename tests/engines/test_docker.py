"""Docker 20.10 driving ocipy: `dockerd --add-runtime ocipy=<path>` (private daemon on the private containerd, see
conftest.py), `docker run --runtime ocipy`. Docker goes through containerd's runc v2 shim, like ctr."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from enginectl import Dockerd

pytestmark = [pytest.mark.engines, pytest.mark.timeout(180)]

IMAGE = Dockerd.image
TRAP_LOOP = "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done"


def show(p: subprocess.CompletedProcess[str]) -> str:
    return f"\nargv: {' '.join(p.args)}\nexit: {p.returncode}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"


def drun(
    dockerd: Dockerd, *opts: str, cmd: list[str], code: int = 0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    p = dockerd("run", "--rm", "--runtime", "ocipy", "--network", "none", *opts, IMAGE, *cmd, input=input)
    assert p.returncode == code, show(p)
    return p


def wait_for(cond, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


def test_runtime_is_registered(dockerd: Dockerd) -> None:
    p = dockerd("info", "--format", "{{json .Runtimes}}")
    assert p.returncode == 0 and '"ocipy"' in p.stdout, show(p)


def test_run_output_and_exit_codes(dockerd: Dockerd) -> None:
    p = drun(dockerd, cmd=["sh", "-c", "echo hello; echo to-err >&2"])
    assert p.stdout == "hello\n"
    assert "to-err" in p.stderr
    drun(dockerd, cmd=["sh", "-c", "exit 42"], code=42)
    p = drun(dockerd, cmd=["/no/such/binary"], code=127)
    assert "no such file or directory" in p.stderr.lower() or "not found" in p.stderr.lower(), show(p)
    p = drun(dockerd, "-i", cmd=["cat"], input="piped\n")
    assert p.stdout == "piped\n"


def test_detached_exec_and_stop(dockerd: Dockerd) -> None:
    name = "d-" + uuid.uuid4().hex[:12]
    p = dockerd("run", "-d", "--name", name, "--runtime", "ocipy", "--network", "none", IMAGE, "sh", "-c", TRAP_LOOP)
    try:
        assert p.returncode == 0, show(p)
        wait_for(lambda: "ready" in dockerd("logs", name).stdout, "container printed ready")
        assert dockerd("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
        p = dockerd("exec", name, "sh", "-c", "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '")
        assert p.returncode == 0 and p.stdout.startswith("in-exec\nsh -c trap"), show(p)
        p = dockerd("exec", name, "sh", "-c", "exit 6")
        assert p.returncode == 6, show(p)
        p = dockerd("exec", "-u", "1:1", "-w", "/tmp", name, "sh", "-c", "id -u; pwd")
        assert p.returncode == 0 and p.stdout == "1\n/tmp\n", show(p)
        t0 = time.monotonic()
        p = dockerd("stop", "-t", "20", name)
        assert p.returncode == 0, show(p)
        assert time.monotonic() - t0 < 10, "SIGTERM did not reach the trap"
        assert dockerd("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "3"
        assert "got-term" in dockerd("logs", name).stdout
    finally:
        dockerd("rm", "-f", name)


def test_limits_user_and_read_only_root(dockerd: Dockerd) -> None:
    name = "l-" + uuid.uuid4().hex[:12]
    p = dockerd(
        "run",
        "-d",
        "--name",
        name,
        "--runtime",
        "ocipy",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "--user",
        "1:1",
        "--read-only",
        IMAGE,
        "sh",
        "-c",
        "id -u; id -g; touch /x 2>&1; echo ready; while :; do sleep 0.1; done",
    )
    try:
        assert p.returncode == 0, show(p)
        wait_for(lambda: "ready" in dockerd("logs", name).stdout, "container printed ready")
        logs = dockerd("logs", name).stdout
        assert logs.startswith("1\n1\n") and "Read-only file system" in logs, logs
        pid = int(dockerd("inspect", "--format", "{{.State.Pid}}", name).stdout)
        cg = {}
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(","):
                    cg[c] = f"/sys/fs/cgroup/{ctrls}{path}"
        assert Path(cg["memory"], "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert Path(cg["pids"], "pids.max").read_text().strip() == "50"
        assert Path(cg["cpu"], "cpu.cfs_quota_us").read_text().strip() == "50000"
        status = Path(f"/proc/{pid}/status").read_text()
        assert "\nUid:\t1\t1\t1\t1\n" in status and "\nGid:\t1\t1\t1\t1\n" in status
    finally:
        dockerd("rm", "-f", name)
