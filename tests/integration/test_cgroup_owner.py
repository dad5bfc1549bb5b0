"""One owner for cgroups: no module outside ocipy/cgroups/ opens, makes, lists or removes anything under
/sys/fs/cgroup. Every verb that touches cgroups runs on a real container with an audit hook (PEP 578) that records,
for each such file-system event, the innermost ocipy module on the stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()

HOOK = """
import os, sys
_LOG = os.environ.get("OCIPY_TEST_CGROUP_AUDIT")
_EVENTS = {"open", "os.mkdir", "os.rmdir", "os.scandir", "os.listdir", "os.remove", "os.rename"}
_PASS = ("ocipy.posixlite",)

def _hook(event, args):
    if event not in _EVENTS or not args:
        return
    path = args[0]
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    if not isinstance(path, str) or not path.startswith("/sys/fs/cgroup"):
        return
    f = sys._getframe(1)
    while f is not None:
        name = f.f_globals.get("__name__", "")
        if name.startswith("ocipy") and name not in _PASS:
            with open(_LOG, "a") as out:
                out.write(f"{name} {event} {path}\\n")
            return
        f = f.f_back

if _LOG:
    sys.addaudithook(_hook)
"""


@pytest.mark.skipif(not h.IS_OCIPY, reason="checks ocipy's own modules")
def test_only_ocipy_cgroups_touches_sys_fs_cgroup(rt: Any, bundle: Any, tmp_path: Path) -> None:
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "audit.log"
    env = {"PYTHONPATH": f"{hook_dir}:{h.PROJECT}", "OCIPY_TEST_CGROUP_AUDIT": str(log)}

    bundle.sh("sleep 1000 & sleep 1000")
    bundle.linux["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 100}}
    cid, _ = rt.create_ok(bundle, env=env)
    for argv in (
        ("start", cid),
        ("ps", "--format", "json", cid),
        ("pause", cid),
        ("state", cid),
        ("resume", cid),
        ("update", "--pids-limit", "200", cid),
        ("events", "--stats", cid),
        ("exec", cid, "true"),
        ("kill", "--all", cid, "TERM"),
        ("delete", "--force", cid),
    ):
        rt.call(*argv, env=env).ok()
    records = [line.split(" ", 2) for line in log.read_text().splitlines()]
    assert records, "the audit hook saw no cgroup access at all: it is not installed"
    outside = sorted({f"{mod}: {event} {path}" for mod, event, path in records if not mod.startswith("ocipy.cgroups")})
    assert not outside, "cgroup files touched outside ocipy/cgroups/:\n" + "\n".join(outside)
    # every verb above went through the driver: at least create (mkdir), pause (freeze) and delete (rmdir)
    events = {event for _, event, _ in records}
    assert {"os.mkdir", "os.rmdir", "open"} <= events, json.dumps(sorted(events))
