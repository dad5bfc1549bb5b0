"""Hooks (runtime-spec config.md "POSIX-platform Hooks"): order, state on stdin, args, env, namespaces, failures."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()

# Each hook records what it saw in <dir>/<name>.*: the state from stdin, its argv, env and namespaces.
RECORDER = (
    'd=$1; n=$2; cat > "$d/$n.state"; echo "$0|$1|$2|$3" > "$d/$n.args"; env > "$d/$n.env"; '
    'readlink /proc/self/ns/uts > "$d/$n.uts"; readlink /proc/self/ns/mnt > "$d/$n.mnt"; '
    'readlink /proc/self/ns/pid > "$d/$n.pid"; echo "$n" >> "$d/order"'
)
HOST_HOOKS = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
WAIT_FOR_STOP = "trap 'exit 0' TERM; while [ ! -e /tmp/stop ]; do sleep 0.05; done"


def recorder(marker_dir: str, name: str) -> dict:
    # args[0] is "sh": busybox (startContainer runs the container's /bin/sh) picks its applet by argv[0]
    return {
        "path": "/bin/sh",
        "args": ["sh", "-c", RECORDER, "it-hook-argv0", marker_dir, name, "extra"],
        "env": ["IT_HOOK_VAR=hook value", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    }


@pytest.fixture
def marks(tmp_path):
    d = tmp_path / "marks"
    d.mkdir()
    return d


def read(d: Path, name: str, what: str) -> str:
    return (d / f"{name}.{what}").read_text()


def test_all_hooks_run_in_order_with_state_args_env(rt, bundle, marks):
    hooks = {name: [recorder(str(marks), name)] for name in HOST_HOOKS}
    # startContainer resolves and runs inside the container: busybox sh, markers in the container's /tmp
    hooks["startContainer"] = [recorder("/tmp", "startContainer")]
    bundle.config["hooks"] = hooks
    bundle.config["annotations"] = {"it.key": "it-value"}
    bundle.sh(WAIT_FOR_STOP)
    cid, _res = rt.create_ok(bundle, env={"OCIPY_IT_HOST_SECRET": "leak"})
    pid = rt.pid(cid)
    container_uts = os.readlink(f"/proc/{pid}/ns/uts")
    container_mnt = os.readlink(f"/proc/{pid}/ns/mnt")
    container_pidns = os.readlink(f"/proc/{pid}/ns/pid")
    assert (marks / "order").read_text().split() == ["prestart", "createRuntime", "createContainer"]
    rt.start(cid).ok()
    assert (marks / "order").read_text().split() == ["prestart", "createRuntime", "createContainer", "poststart"]
    inside = bundle.rootfs / "tmp"
    assert (inside / "order").read_text().split() == ["startContainer"]
    (bundle.rootfs / "tmp" / "stop").write_text("")
    assert rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert (marks / "order").read_text().split() == [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ]

    host_uts, host_mnt = os.readlink("/proc/self/ns/uts"), os.readlink("/proc/self/ns/mnt")
    for name in HOST_HOOKS + ("startContainer",):
        d = inside if name == "startContainer" else marks
        state = json.loads(read(d, name, "state"))
        assert state["id"] == cid, (name, state)
        assert state["bundle"] == str(bundle.path), (name, state)
        assert state.get("annotations") == {"it.key": "it-value"}, (name, state)
        assert read(d, name, "args").strip() == f"it-hook-argv0|{d if d is marks else '/tmp'}|{name}|extra", name
        env = set(read(d, name, "env").splitlines())
        assert "IT_HOOK_VAR=hook value" in env, (name, env)
        assert not any(e.startswith("OCIPY_IT_HOST_SECRET=") for e in env), f"{name} got the runtime's env"
        if name in ("prestart", "createRuntime", "poststart", "poststop"):
            assert read(d, name, "uts").strip() == host_uts, f"{name} must run in the runtime namespace"
            assert read(d, name, "mnt").strip() == host_mnt, f"{name} must run in the runtime namespace"
        else:
            assert read(d, name, "uts").strip() == container_uts, f"{name} must run in the container namespace"
            assert read(d, name, "mnt").strip() == container_mnt, f"{name} must run in the container namespace"
            assert read(d, name, "pid").strip() == container_pidns, f"{name} must run in the container namespace"

    states = {
        name: json.loads(read(inside if name == "startContainer" else marks, name, "state"))
        for name in HOST_HOOKS + ("startContainer",)
    }
    # (hook, field, expected): all checked, then reported together
    # runtime.md defines `creating` as lifecycle step 2; the create-time hooks are steps 3-5, after it: `created`
    # (runtime-tools hooks_stdin checks this; runc 1.5.1 says `creating`)
    expected = [
        ("prestart", "status", "created"),
        ("prestart", "pid", pid),
        ("createRuntime", "status", "created"),
        ("createRuntime", "pid", pid),
        ("createContainer", "status", "created"),
        # hooks in the container namespace see the pid as the container sees it (runtime.md "State")
        ("createContainer", "pid", 1),
        ("startContainer", "status", "created"),
        ("startContainer", "pid", 1),
        ("poststart", "status", "running"),
        ("poststart", "pid", pid),
        ("poststop", "status", "stopped"),
    ]
    wrong = [
        f"{hook}.{key}: want {want!r}, got {states[hook].get(key)!r}"
        for hook, key, want in expected
        if states[hook].get(key) != want
    ]
    assert wrong == [], "\n".join(wrong)


def test_start_container_hook_path_resolves_inside(rt, bundle, marks):
    """A startContainer path that exists only in the rootfs runs; the host has no such file."""
    name = f"it-inside-hook-{uuid.uuid4().hex[:6]}"
    assert not Path("/" + name).exists()
    hook = bundle.rootfs / name
    hook.write_text("#!/bin/sh\necho ran-inside > /tmp/inside-hook\n")
    hook.chmod(0o755)
    bundle.config["hooks"] = {"startContainer": [{"path": "/" + name}]}
    bundle.args("true")
    rt.run(bundle).ok()
    assert (bundle.rootfs / "tmp" / "inside-hook").read_text() == "ran-inside\n"


def test_failing_create_runtime_hook_fails_create_and_leaves_nothing(rt, bundle, marks):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}], "poststop": [recorder(str(marks), "poststop")]}
    before = h.host_mounts()
    with h.subreaper():
        _cid, res = rt.create(bundle)
        res.fails()
        h.wait_until(lambda: not h.children_of(os.getpid()), 5)
        leftover = h.children_of(os.getpid())
        h.reap_children()
    assert leftover == []
    assert rt.state_dirs() == []
    assert h.host_mounts() == before
    # lifecycle step 4 -> 12 -> 13: the container is destroyed and the poststop hooks still run
    assert (marks / "order").read_text().split() == ["poststop"]


@pytest.mark.parametrize("hook_name", ["prestart", "createContainer"])
def test_failing_create_hooks_fail_create(rt, bundle, hook_name):
    bundle.config["hooks"] = {hook_name: [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    _cid, res = rt.create(bundle)
    res.fails()
    assert rt.state_dirs() == []


def test_failing_start_container_hook_fails_start(rt, bundle):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    bundle.sh("echo must-not-run > /tmp/ran")
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    rt.start(cid).fails()
    assert h.wait_until(lambda: not h.pid_alive(pid), 5), "the container must be stopped"
    assert not (bundle.rootfs / "tmp" / "ran").exists(), "the user program ran although startContainer failed"


def test_hook_timeout_kills_the_hook_and_fails_create(rt, bundle):
    tag = f"it-hook-sleep-{uuid.uuid4().hex[:8]}"
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": [tag, "30"], "timeout": 1}]}
    t0 = time.monotonic()
    _cid, res = rt.create(bundle, timeout=20)
    elapsed = time.monotonic() - t0
    res.fails()
    assert elapsed < 10, f"create took {elapsed:.1f}s with a 1s hook timeout"
    assert h.wait_until(lambda: not h.cmdline_pids(tag), 5), "the timed-out hook is still running"
    assert rt.state_dirs() == []


def test_failing_poststart_hook(rt, bundle, marks):
    """runtime-spec 1.3 lifecycle step 9: a failing poststart hook is an error and the container is stopped."""
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    bundle.sh(WAIT_FOR_STOP)
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    rt.start(cid).fails()
    assert h.wait_until(lambda: not h.pid_alive(pid), 5), "the container must be stopped"


def test_failing_poststop_hook_only_warns(rt, bundle, marks):
    bundle.config["hooks"] = {"poststop": [{"path": "/bin/false"}, recorder(str(marks), "poststop2")]}
    bundle.args("true")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert rt.state_dirs() == []
    assert (marks / "order").read_text().split() == ["poststop2"], "the remaining poststop hooks must run"
