"""Podman's `container checkpoint`/`container restore` (and --export/--import) and containerd's `ctr task
checkpoint`/`ctr container create --checkpoint`, with ocipy as the runtime and CRIU 4.2 from $OCIPY_CACHE/bin.

Podman and the runtime find `criu` on PATH: the engines get $OCIPY_CACHE/bin first (Debian's own criu 3.17 in
/usr/sbin fails `criu check` on this kernel). The container counts in a shell variable and prints the count to its
log; "continues" means the first count after the restore is above the last one before it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from enginectl import Containerd, Podman, run

pytestmark = [pytest.mark.engines, pytest.mark.timeout(240)]

CACHE = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy"))
CRIU = CACHE / "bin" / "criu"
COUNTER = "i=0; while true; do i=$((i+1)); echo n=$i; sleep 0.1; done"
FILE_COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/c.tmp; mv /tmp/c.tmp /tmp/count; sleep 0.1; done"


def _criu_reason() -> str | None:
    if not os.access(CRIU, os.X_OK):
        return f"{CRIU} is absent (scripts/refs criu builds it from ../shared/criu)"
    p = subprocess.run([str(CRIU), "check"], capture_output=True, text=True, timeout=60, check=False)
    if p.returncode != 0:
        return f"criu check fails here: {(p.stdout + p.stderr).strip().splitlines()[-1:]}"
    return None


@pytest.fixture(scope="module")
def criu_path() -> str:
    reason = _criu_reason()
    if reason:
        pytest.skip(reason)
    return f"{CRIU.parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def pm(
    podman: Podman, path: str, *args: str, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run(podman.argv(*args), env={**podman.env, "PATH": path}, timeout=timeout, check=check)


def counts(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"n=(\d+)", text)]


def wait_logs(podman: Podman, path: str, name: str, above: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    seen: list[int] = []
    while time.monotonic() < deadline:
        seen = counts(pm(podman, path, "logs", name).stdout)
        if seen and seen[-1] > above:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{name}: the count did not pass {above}: {seen[-5:]}")


def test_podman_checkpoint_restore_and_export_import(podman: Podman, criu_path: str, tmp_path: Path) -> None:
    name = "cr-" + uuid.uuid4().hex[:10]
    pm(
        podman,
        criu_path,
        "run",
        "-d",
        "--name",
        name,
        "--network",
        podman.network,  # the engine's bridge: Podman's network namespace, joined by path, is external to CRIU
        podman.image,
        "sh",
        "-c",
        COUNTER,
        check=True,
    )
    try:
        before = wait_logs(podman, criu_path, name, 5)
        p = pm(podman, criu_path, "container", "checkpoint", name)
        assert p.returncode == 0, p.stderr
        state = json.loads(pm(podman, criu_path, "inspect", name, check=True).stdout)[0]["State"]
        assert state["Status"] == "exited" and state.get("Checkpointed") is True, state
        stopped_at = counts(pm(podman, criu_path, "logs", name).stdout)[-1]
        assert stopped_at >= before[-1]

        p = pm(podman, criu_path, "container", "restore", name)
        assert p.returncode == 0, p.stderr
        assert json.loads(pm(podman, criu_path, "inspect", name, check=True).stdout)[0]["State"]["Status"] == "running"
        after = wait_logs(podman, criu_path, name, stopped_at + 3)
        assert after.count(1) == 1, f"the counter started again: {after}"
        tail = [n for n in after if n > stopped_at]
        assert tail and tail[0] <= stopped_at + 5, f"restarted, not restored: {after[-10:]}"

        # live migration: --export a tarball, remove the container, --import it
        tarball = tmp_path / "export.tar.gz"
        p = pm(podman, criu_path, "container", "checkpoint", "--export", str(tarball), name)
        assert p.returncode == 0, p.stderr
        exported_at = counts(pm(podman, criu_path, "logs", name).stdout)[-1]
        pm(podman, criu_path, "rm", "-f", "-t", "0", name, check=True)
        assert pm(podman, criu_path, "container", "exists", name).returncode == 1
        p = pm(podman, criu_path, "container", "restore", "--import", str(tarball))
        assert p.returncode == 0, p.stderr
        assert json.loads(pm(podman, criu_path, "inspect", name, check=True).stdout)[0]["State"]["Status"] == "running"
        # the export carries the log; the counter goes on from the exported count, it does not start again at 1
        after_import = wait_logs(podman, criu_path, name, exported_at + 3)
        assert after_import.count(1) == 1, f"the counter started again: {after_import}"
        tail = [n for n in after_import if n > exported_at]
        assert tail and tail[0] <= exported_at + 5, after_import[-10:]
    finally:
        pm(podman, criu_path, "rm", "-f", "-t", "0", name)


def read_count(ctr: Callable[..., subprocess.CompletedProcess[str]], cid: str, exec_id: str) -> int:
    """The counter file of container `cid`, read by `ctr task exec` until it exists (at most 10 s)."""
    deadline = time.monotonic() + 10.0
    while True:
        p = ctr("task", "exec", "--exec-id", exec_id, cid, "cat", "/tmp/count")
        if p.returncode == 0 and p.stdout.strip():
            return int(p.stdout)
        if time.monotonic() > deadline:
            raise AssertionError(f"{cid}: /tmp/count never appeared: {p.stderr.strip()}")
        time.sleep(0.2)


def test_containerd_task_checkpoint_and_restore(
    containerd: Containerd, criu_path: str, runtime: str, tmp_path: Path
) -> None:
    """`ctr` checkpoints a task into a checkpoint image (the shim calls `<runtime> checkpoint`), then a new
    container is made from it and its task restored (`<runtime> restore`). ctr lets us name the runtime binary
    (`--runc-binary`) for the runc v2 shim; the shim runs it with containerd's environment, so the binary named is a
    wrapper that puts CRIU 4.2 first on PATH."""
    wrapper = tmp_path / "ocipy-criu"
    wrapper.write_text(f'#!/bin/sh\nPATH={criu_path}\nexport PATH\nexec {runtime} "$@"\n')
    wrapper.chmod(0o755)
    tmp_path.chmod(0o755)
    runtime = str(wrapper)
    cid = "cr-" + uuid.uuid4().hex[:10]
    restored = cid + "-r"
    env = {**os.environ, "PATH": criu_path}

    def ctr(*args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run(containerd.ctr_argv(*args), env=env, timeout=timeout, check=check)

    ref = f"localhost/checkpoint/{cid}:latest"
    try:
        p = ctr("run", "-d", "--runc-binary", runtime, containerd.image, cid, "sh", "-c", FILE_COUNTER)
        assert p.returncode == 0, p.stderr
        time.sleep(2.0)  # about 20 counts: a restarted loop (counting from 1) cannot pass for a restored one
        p = ctr("container", "checkpoint", "--task", cid, ref)
        if p.returncode != 0 and ("No help topic" in p.stderr or "flag provided but not defined" in p.stderr):
            pytest.skip(f"this ctr cannot checkpoint: {p.stderr.strip()}")
        assert p.returncode == 0, p.stderr
        at_checkpoint = int(ctr("task", "exec", "--exec-id", "c0", cid, "cat", "/tmp/count", check=True).stdout)
        tasks = ctr("task", "ls").stdout
        assert cid in tasks
        ctr("task", "kill", "-s", "SIGKILL", cid)
        time.sleep(0.5)
        ctr("task", "delete", "-f", cid)
        p = ctr("container", "restore", "--live", restored, ref)
        if p.returncode != 0 and ("No help topic" in p.stderr or "flag provided but not defined" in p.stderr):
            pytest.skip(f"this ctr cannot restore a checkpoint: {p.stderr.strip()}")
        assert p.returncode == 0, p.stderr
        out = ctr("task", "ls").stdout
        assert re.search(rf"^{re.escape(restored)}\s+\d+\s+RUNNING", out, re.MULTILINE), out
        # The checkpoint image holds no rootfs diff (no --rw), so /tmp/count reappears only when the restored
        # loop writes it again: poll for it rather than racing the loop's first write.
        first = read_count(ctr, restored, "c1")
        time.sleep(0.5)
        second = read_count(ctr, restored, "c2")
        # The original ran on for a few counts between the checkpoint and the read of at_checkpoint.
        assert second > first >= at_checkpoint - 10, (at_checkpoint, first, second)
    finally:
        for c in (restored, cid):
            ctr("task", "kill", "-s", "SIGKILL", c)
            time.sleep(0.2)
            ctr("task", "delete", "-f", c)
            ctr("container", "delete", c)
        ctr("image", "rm", ref)
