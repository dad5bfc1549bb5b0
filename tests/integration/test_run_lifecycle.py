"""Lifecycle verbs as callers use them: create/start/state/kill/delete/list/run, their flags, words and exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()

# A container that runs until the host creates rootfs/tmp/stop (TERM ends it too: a pid-1 needs a handler).
WAIT_FOR_STOP = "trap 'exit 0' TERM; while [ ! -e /tmp/stop ]; do sleep 0.05; done"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def stop(bundle) -> None:
    (bundle.rootfs / "tmp" / "stop").write_text("")


# -- create flags ----------------------------------------------------------------------------------------------


def test_create_with_bundle_flag_from_elsewhere(rt, bundle, tmp_path):
    bundle.sh(WAIT_FOR_STOP)
    cid, res = rt.create_ok(bundle, cwd="/")
    assert res.out == "" and res.err == "", "a successful create prints nothing (it would land in the container log)"
    st = rt.state(cid)
    assert st["bundle"] == str(bundle.path)
    assert st["status"] == "created"


def test_create_without_bundle_uses_cwd(rt, bundle):
    bundle.sh(WAIT_FOR_STOP)
    bundle.write()
    cid = rt.new_id("cwd")
    rt.call("create", cid, cwd=bundle.path).ok()
    rt.remember(cid)
    assert rt.state(cid)["bundle"] == str(bundle.path)


def test_pid_file(rt, bundle, tmp_path):
    bundle.sh(WAIT_FOR_STOP)
    pid_file = tmp_path / "init.pid"
    cid, _ = rt.create_ok(bundle, "--pid-file", str(pid_file))
    raw = pid_file.read_bytes()
    assert re.fullmatch(rb"[1-9][0-9]*", raw), f"pid file must be the bare decimal pid, got {raw!r}"
    assert int(raw) == rt.state(cid)["pid"]
    assert h.pid_alive(int(raw))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".init.pid")] == [], "temp file left"


def test_preserve_fds(rt, bundle, tmp_path):
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("first-fd\n")
    b.write_text("second-fd\n")
    fa = os.open(a, os.O_RDONLY)
    fb = os.open(b, os.O_RDONLY)
    try:
        bundle.sh("cat <&3; cat <&4; ls /proc/$$/fd | sort -n | tr '\\n' ' '")
        cid = rt.new_id("preserve")
        res = rt.run(
            bundle, "--preserve-fds", "2", cid=cid, pass_fds=(fa, fb), shell_prefix=h.fd_wrapper({3: fa, 4: fb})
        )
    finally:
        os.close(fa)
        os.close(fb)
    lines = res.ok().out.splitlines()
    assert lines[:2] == ["first-fd", "second-fd"]
    fds = lines[2].split()
    assert fds[:5] == ["0", "1", "2", "3", "4"], fds


def test_listen_fds_socket_activation(rt, bundle, tmp_path):
    f = tmp_path / "listen.txt"
    f.write_text("activated\n")
    fd = os.open(f, os.O_RDONLY)
    try:
        bundle.sh("env | grep ^LISTEN_ | sort; cat <&3")
        res = rt.run(
            bundle,
            pass_fds=(fd,),
            shell_prefix="LISTEN_PID=$$ LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS;" + h.fd_wrapper({3: fd}),
        )
    finally:
        os.close(fd)
    assert res.ok().out.splitlines() == ["LISTEN_FDS=1", "LISTEN_PID=1", "activated"]


def test_listen_fds_for_another_pid_are_ignored(rt, bundle, tmp_path):
    f = tmp_path / "listen.txt"
    f.write_text("activated\n")
    fd = os.open(f, os.O_RDONLY)
    try:
        bundle.sh("env | grep -c ^LISTEN_; ls -l /proc/self/fd")
        res = rt.run(
            bundle,
            pass_fds=(fd,),
            shell_prefix="LISTEN_PID=1 LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS;" + h.fd_wrapper({3: fd}),
        )
    finally:
        os.close(fd)
    out = res.ok().out
    assert out.splitlines()[0] == "0", res.describe()
    assert extra_fds(out) == {}, f"fds beyond stdio reached the container: {extra_fds(out)}"


def extra_fds(ls_l_output: str) -> dict[int, str]:
    """fds above 2 in `ls -l /proc/self/fd` output, except ls's own directory fd."""
    fds = {}
    for line in ls_l_output.splitlines():
        m = re.search(r"\s(\d+) -> (.*)$", line)
        if m:
            fds[int(m.group(1))] = m.group(2)
    return {n: t for n, t in fds.items() if n > 2 and not t.startswith("/proc/")}


@pytest.mark.parametrize("leak_at", [3, 5])
def test_leaked_fd_does_not_reach_the_container(rt, bundle, tmp_path, leak_at):
    f = tmp_path / "leak.txt"
    f.write_text("leak\n")
    fd = os.open(f, os.O_RDONLY)  # inheritable in the wrapper, not CLOEXEC there, not preserved
    try:
        bundle.args("ls", "-l", "/proc/self/fd")
        res = rt.run(bundle, pass_fds=(fd,), shell_prefix=h.fd_wrapper({leak_at: fd}))
    finally:
        os.close(fd)
    out = res.ok().out
    assert "leak.txt" not in out, out
    assert extra_fds(out) == {}, f"fds beyond stdio reached the container: {extra_fds(out)}"


def test_no_pivot(rt, bundle):
    (bundle.rootfs / "rootfs-marker").write_text("")
    bundle.sh("ls /rootfs-marker; ls /proc/1/root/rootfs-marker")
    res = rt.run(bundle, "--no-pivot").ok()
    assert res.out.split() == ["/rootfs-marker", "/proc/1/root/rootfs-marker"]


def _host_keyrings() -> set[str]:
    return {line.split()[0] for line in Path("/proc/keys").read_text().splitlines() if " keyring " in line}


def _inside_keyrings(out: str) -> set[str]:
    return {line.split()[0] for line in out.splitlines() if " keyring " in line and "_ses" in line}


def test_new_session_keyring_by_default(rt, bundle):
    before = _host_keyrings()
    bundle.linux["maskedPaths"] = []
    out = rt.probe(bundle, "cat /proc/keys")
    assert _inside_keyrings(out) - before, f"no new session keyring inside:\n{out}"


def test_no_new_keyring(rt, bundle):
    before = _host_keyrings()
    bundle.linux["maskedPaths"] = []
    bundle.sh("cat /proc/keys")
    out = rt.run(bundle, "--no-new-keyring").ok().out
    assert not (_inside_keyrings(out) - before), f"--no-new-keyring made a session keyring:\n{out}"


# -- state -----------------------------------------------------------------------------------------------------


def test_state_transitions_and_fields(rt, bundle):
    bundle.sh(WAIT_FOR_STOP)
    bundle.config["annotations"] = {"org.example.key": "value"}
    cid, _ = rt.create_ok(bundle)
    st = rt.state(cid)
    assert {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"} <= set(st), st
    assert st["id"] == cid
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0 and h.pid_alive(st["pid"])
    assert st["bundle"] == str(bundle.path)
    assert st["rootfs"] == str(bundle.rootfs)
    assert RFC3339_UTC.match(st["created"]), st["created"]
    assert st["owner"] == ""
    assert st.get("annotations") == {"org.example.key": "value"}
    assert isinstance(st["ociVersion"], str) and st["ociVersion"]
    rt.start(cid).ok()
    st2 = rt.state(cid)
    assert st2["status"] == "running"
    assert st2["pid"] == st["pid"]
    assert st2["created"] == st["created"]
    stop(bundle)
    assert rt.wait_status(cid, "stopped"), rt.state(cid)
    st3 = rt.state(cid)
    assert st3["pid"] == 0, st3


def test_state_of_missing_container(rt):
    rt.call("state", "it-does-not-exist").fails("container does not exist")


def test_invalid_container_id(rt, bundle):
    bundle.write()
    for bad in ("../evil", "a/b", ".."):
        rt.call("create", "--bundle", str(bundle.path), bad).fails("invalid container ID format")
    assert rt.state_dirs() == []


def test_duplicate_id(rt, bundle):
    bundle.sh(WAIT_FOR_STOP)
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    _, res = rt.create(bundle, cid)
    res.fails("container with given ID already exists")
    assert rt.state(cid)["pid"] == pid
    assert rt.status(cid) == "created"


# -- start -----------------------------------------------------------------------------------------------------


def test_start_after_init_was_killed(rt, bundle):
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    os.kill(pid, signal.SIGKILL)
    assert h.wait_until(lambda: not h.pid_alive(pid), 5)
    res = rt.start(cid, timeout=10)
    res.fails("cannot start a container that has stopped")
    assert rt.status(cid) == "stopped"


def test_start_twice(rt, bundle):
    bundle.sh(WAIT_FOR_STOP)
    cid, _ = rt.create_ok(bundle)
    first = rt.start(cid).ok()
    assert first.out == "" and first.err == ""
    rt.start(cid).fails("cannot start an already running container")
    assert rt.status(cid) == "running"


def test_start_of_stopped_container(rt, bundle):
    bundle.args("true")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped")
    rt.start(cid).fails("cannot start a container that has stopped")


def test_start_of_missing_container(rt):
    rt.start("it-does-not-exist").fails("container does not exist")


def test_init_is_reparented_to_the_callers_subreaper(rt, bundle):
    """conmon/containerd-shim are subreapers: when create returns, the init must be their direct child."""
    bundle.sh(WAIT_FOR_STOP)
    with h.subreaper():
        cid, _ = rt.create_ok(bundle)
        pid = rt.pid(cid)
        ppid = int(h.status_field(Path(f"/proc/{pid}/status").read_text(), "PPid"))
        kids = h.children_of(os.getpid())
        rt.start(cid).ok()
        stop(bundle)
        assert rt.wait_status(cid, "stopped")
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    assert ppid == os.getpid(), f"the init's parent is {ppid}, not the caller (a helper stayed in between?)"
    assert kids == [pid], f"caller's children after create: {kids}"


# -- run -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script,code",
    [("exit 0", 0), ("exit 42", 42), ("exit 255", 255), ("kill -9 $$", 137), ("kill -TERM $$; sleep 5", 143)],
)
def test_run_foreground_exit_status(rt, bundle, script, code):
    if "kill" in script:
        bundle.drop_namespace("pid")  # a pid-namespace init cannot signal itself to death
    bundle.sh(script)
    cid = rt.new_id("exit")
    res = rt.run(bundle, cid=cid)
    assert res.returncode == code, res.describe()
    assert rt.state_dirs() == [], "a foreground run deletes its container"


def test_run_foreground_output(rt, bundle):
    bundle.sh("echo out; echo err >&2")
    res = rt.run(bundle).ok()
    assert res.out == "out\n"
    assert res.err == "err\n"


def test_run_detach(rt, bundle):
    bundle.sh("echo detached-out; " + WAIT_FOR_STOP)
    cid = rt.new_id("detach")
    t0 = time.monotonic()
    res = rt.run(bundle, "--detach", cid=cid).ok()
    assert time.monotonic() - t0 < 10
    rt.remember(cid)
    assert rt.status(cid) == "running"
    assert h.wait_until(lambda: "detached-out" in res.out, 5)
    stop(bundle)
    assert rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert rt.state_dirs() == []


# -- kill ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["15", "TERM", "SIGTERM", "term", "9", "KILL", "SIGKILL"])
def test_kill_signal_forms(rt, bundle, sig):
    bundle.sh(WAIT_FOR_STOP)
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    res = rt.kill(cid, sig).ok()
    assert res.out == "" and res.err == ""
    assert rt.wait_status(cid, "stopped"), rt.state(cid)


def test_kill_default_signal_is_term(rt, bundle):
    bundle.sh("trap 'echo got-term > /tmp/got; exit 0' TERM; while :; do sleep 0.05; done")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    time.sleep(0.2)
    rt.kill(cid).ok()
    assert rt.wait_status(cid, "stopped")
    assert (bundle.rootfs / "tmp" / "got").read_text() == "got-term\n"


@pytest.mark.parametrize("sig", ["usr1", "USR1", "SIGUSR1", "10"])
def test_kill_usr1_reaches_trap(rt, bundle, sig):
    bundle.sh("trap 'echo got-usr1 > /tmp/usr1; exit 0' USR1; touch /tmp/ready; while :; do sleep 0.05; done")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert h.wait_until(lambda: (bundle.rootfs / "tmp" / "ready").exists(), 5)
    rt.kill(cid, sig).ok()
    assert rt.wait_status(cid, "stopped")
    assert (bundle.rootfs / "tmp" / "usr1").read_text() == "got-usr1\n"


def test_kill_bad_signal(rt, bundle):
    bundle.sh(WAIT_FOR_STOP)
    cid, _ = rt.create_ok(bundle)
    rt.kill(cid, "SIGNOPE").fails()
    assert rt.status(cid) == "created"


def test_kill_created_container_delivers_term(rt, bundle):
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    rt.kill(cid).ok()
    assert h.wait_until(lambda: not h.pid_alive(pid), 10), "a waiting init must die of SIGTERM"
    assert rt.status(cid) == "stopped"


def test_kill_stopped_container_fails_and_changes_nothing(rt, bundle):
    bundle.args("true")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped")
    before = rt.state(cid)
    rt.kill(cid, "KILL").fails()
    assert rt.state(cid) == before


def test_kill_missing_container(rt):
    rt.kill("it-does-not-exist", "KILL").fails("container does not exist")


def test_kill_all(rt, bundle):
    # the background sleeps are forked before the shell ignores TERM, so TERM kills them; the init ignores it
    bundle.sh("sleep 1001 & sleep 1002 & trap '' TERM; touch /tmp/ready; while [ ! -e /tmp/stop ]; do sleep 0.05; done")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    pid = rt.pid(cid)
    assert h.wait_until(lambda: (bundle.rootfs / "tmp" / "ready").exists(), 5)
    sleepers = [p for p in h.descendants(pid) if h.cmdline(p).startswith("sleep\x00100")]
    assert len(sleepers) == 2, sleepers
    rt.kill(cid, "--all", "TERM").ok()
    assert h.wait_until(lambda: not any(h.pid_alive(p) for p in sleepers), 10), "kill --all missed processes"
    assert h.pid_alive(pid), "the init ignores TERM and must survive"
    assert rt.status(cid) == "running"
    rt.kill(cid, "--all", "KILL").ok()
    assert rt.wait_status(cid, "stopped")


# -- delete ----------------------------------------------------------------------------------------------------


def test_delete_running_without_force_fails(rt, bundle):
    bundle.sh(WAIT_FOR_STOP)
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    pid = rt.pid(cid)
    res = rt.delete(cid)
    res.fails()
    assert re.search(rf"cannot delete container {re.escape(cid)} that is not stopped", res.err), res.describe()
    assert rt.status(cid) == "running"
    assert h.pid_alive(pid)


def test_delete_created_without_force_kills_and_removes(rt, bundle):
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    res = rt.delete(cid).ok()
    assert res.out == "" and res.err == ""
    assert h.wait_until(lambda: not h.pid_alive(pid), 5)
    assert rt.state_dirs() == []


def test_delete_stopped(rt, bundle):
    bundle.args("true")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert rt.state_dirs() == []
    rt.call("state", cid).fails("container does not exist")


@pytest.mark.parametrize("state", ["created", "running", "stopped"])
def test_delete_force_in_every_state(rt, bundle, state):
    bundle.sh("true" if state == "stopped" else WAIT_FOR_STOP)
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    if state != "created":
        rt.start(cid).ok()
    if state == "stopped":
        assert rt.wait_status(cid, "stopped")
    assert rt.status(cid) == state
    res = rt.delete(cid, "--force").ok()
    assert res.out == "" and res.err == ""
    assert h.wait_until(lambda: not h.pid_alive(pid), 5)
    assert rt.state_dirs() == []
    assert h.cgroup_dirs_named(cid) == []
    rt.call("state", cid).fails("container does not exist")


def test_delete_force_of_missing_container(rt):
    rt.delete("it-does-not-exist", "--force").ok()


def test_delete_of_missing_container(rt):
    rt.delete("it-does-not-exist").fails("container does not exist")


def test_delete_removes_cgroups(rt, bundle):
    bundle.linux["cgroupsPath"] = "/ocipy-it-cg-" + os.urandom(4).hex()
    name = bundle.linux["cgroupsPath"].lstrip("/")
    bundle.sh(WAIT_FOR_STOP)
    cid, _ = rt.create_ok(bundle)
    assert h.cgroup_dirs_named(name), "the container got no cgroup at its cgroupsPath"
    rt.delete(cid, "--force").ok()
    assert h.cgroup_dirs_named(name) == []


# -- list ------------------------------------------------------------------------------------------------------


def test_list(rt, bundle, tmp_path):
    bundle.sh(WAIT_FOR_STOP)
    a, _ = rt.create_ok(bundle)
    b, _ = rt.create_ok(bundle)
    rt.start(b).ok()
    pa, pb = rt.pid(a), rt.pid(b)

    table = rt.list().ok().out.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {a, b}
    assert rows[a][1:4] == [str(pa), "created", str(bundle.path)]
    assert rows[b][1:4] == [str(pb), "running", str(bundle.path)]

    assert sorted(rt.list("-q").ok().out.split()) == sorted([a, b])

    data = json.loads(rt.list("--format", "json").ok().out)
    by_id = {d["id"]: d for d in data}
    assert set(by_id) == {a, b}
    assert by_id[a]["status"] == "created" and by_id[a]["pid"] == pa
    assert by_id[b]["status"] == "running" and by_id[b]["pid"] == pb
    for d in data:
        assert {"id", "pid", "status", "bundle", "created", "owner"} <= set(d)


def test_list_empty(rt):
    assert rt.list("-q").ok().out.strip() == ""
    assert json.loads(rt.list("--format", "json").ok().out) in (None, [])
    assert rt.list().ok().out.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
