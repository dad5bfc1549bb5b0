"""A container process signalling the caller's process group: kill(0, SIGUSR1) from inside the container.

Before ocipy called setsid for container processes they stayed in the session and process group of whatever ran
ocipy (`getpgrp()` is 0 inside: the group lives outside the container's pid namespace), so `kill -USR1 0` in the
container reached the host shell, conmon or shim that started it. runc calls setsid for every container process.
The attack is tried through each way a process enters a container: run, run -d, create+start and exec.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import ocipy_security_common as c  # loaded by conftest.py
import pytest

h = c.h
pytestmark = h.pytestmark()

ATTACK = "kill -USR1 0; echo attacked"


def _caller(tmp_path: Path, *commands: list[str]) -> tuple[subprocess.Popen, Path]:
    """Run the commands from a bash that traps SIGUSR1 (and records it) in its own process group, like a shell or a
    container engine that started the runtime; the runtime and its children share that group."""
    marker = tmp_path / "caller-got-usr1"
    run = "; ".join(shlex.join(argv) for argv in commands)
    script = f"trap 'echo got >> {shlex.quote(str(marker))}' USR1; {run}; sleep 1; wait"
    p = subprocess.Popen(
        ["/bin/bash", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=h.runtime_env(),
        start_new_session=True,  # the attack must never reach pytest's own group
    )
    return p, marker


def _finish(p: subprocess.Popen) -> None:
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.wait()


@pytest.mark.parametrize("mode", ["run", "run -d", "create+start", "exec"])
def test_kill_0_from_the_container_does_not_reach_the_caller(rt, bundle, tmp_path, mode):
    cid = rt.new_id(mode)
    if mode == "exec":
        bundle.args("sleep", "30")
        rt.create_ok(bundle, cid=cid)
        rt.start(cid).ok()
        p, marker = _caller(tmp_path, rt.argv("exec", cid, "sh", "-c", ATTACK))
    elif mode == "create+start":
        bundle.sh(ATTACK)
        bundle.write()
        create = rt.argv("create", "--bundle", str(bundle.path), cid)
        p, marker = _caller(tmp_path, create, rt.argv("start", cid))
    else:
        bundle.sh(ATTACK)
        bundle.write()
        flags = ["-d"] if mode == "run -d" else []
        p, marker = _caller(tmp_path, rt.argv("run", *flags, "--bundle", str(bundle.path), cid))
    _finish(p)
    rt.remember(cid)
    assert not marker.exists(), f"{mode}: the container's kill(0, SIGUSR1) reached the caller's process group"


def test_container_process_leads_its_own_session(rt, bundle):
    """Inside: the process is its own session and group leader (pid 1 in a new pid namespace)."""
    out = rt.probe(bundle, "cut -d' ' -f5,6 /proc/self/stat; cut -d' ' -f5,6 /proc/1/stat")
    lines = out.split()
    # /proc/self is the `cut` child of sh (pid 1): its group and session are sh's, 1 and 1
    assert lines[:2] == ["1", "1"], out
