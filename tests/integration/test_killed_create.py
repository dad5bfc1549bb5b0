"""A create killed half-way (after its cgroups exist, before state.json): `delete` still removes everything."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py

pytestmark = h.pytestmark()


import signal
import subprocess
import time


def test_delete_after_a_killed_create_removes_cgroups_and_processes(rt, bundle, tmp_path):
    marker = tmp_path / "in-hook"
    cg_name = f"ocipy-it-killed-{uuid.uuid4().hex[:8]}"
    bundle.linux["cgroupsPath"] = f"/{cg_name}"
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}; sleep 30"]}],
    }
    bundle.write()
    cid = rt.new_id("killed")
    with h.subreaper():
        proc = subprocess.Popen(
            rt.argv("create", "--bundle", str(bundle.path), cid),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert h.wait_until(marker.exists, 20), "create never reached its createRuntime hook"
            assert h.cgroup_dirs_named(cg_name), "create made no cgroup before its hooks"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            inside = [p for d in h.cgroup_dirs_named(cg_name) for p in Path(d, "cgroup.procs").read_text().split()]
            # (the init exits by itself once create is gone: it reads EOF on its sync socket)
            res = rt.delete(cid)
            assert res.returncode == 0, res.describe()
            assert h.wait_until(lambda: not h.cgroup_dirs_named(cg_name), 5), h.cgroup_dirs_named(cg_name)
            assert all(not h.pid_alive(int(p)) for p in inside), "delete left the killed create's processes"
            assert rt.state_dirs() == []
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            # the hook's sleep and the init were children of the killed create: now ours (subreaper)
            for pid in h.descendants(os.getpid()):
                if pid != proc.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
            h.reap_children()
