"""`ocipy exec`: a new process in a running container, as Podman and containerd call it (runc's exec semantics)."""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


def running(rt: Any, bundle: Any, *flags: str) -> tuple[str, int]:
    """A started container whose init sleeps; (id, init pid)."""
    bundle.args("sleep", "1000")
    cid, _ = rt.create_ok(bundle, *flags)
    rt.start(cid).ok()
    assert rt.wait_status(cid, "running")
    return cid, rt.pid(cid)


def test_output_and_exit_status(rt, bundle):
    cid, _ = running(rt, bundle)
    res = rt.call("exec", cid, "sh", "-c", "echo hello; echo oops >&2; exit 7")
    assert res.returncode == 7, res.describe()
    assert res.out == "hello\n"
    assert "oops" in res.err
    rt.call("exec", cid, "true").ok()


def test_env_cwd_user_groups(rt, bundle):
    cid, _ = running(rt, bundle)
    res = rt.call(
        "exec",
        "--env",
        "FOO=bar",
        "-e",
        "TERM=dumb",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        "--additional-gids",
        "5",
        "-g",
        "6",
        cid,
        "sh",
        "-c",
        "echo $FOO $TERM; pwd; id -u; id -g; id -G",
    ).ok()
    assert res.out.split("\n")[:5] == ["bar dumb", "/tmp", "1000", "1000", "1000 5 6"], res.out
    # the config's env is the base (PATH from the config, TERM replaced in place)
    env = rt.call("exec", "-e", "TERM=dumb", cid, "env").ok().out.split()
    assert h.PATH_ENV in env and "TERM=dumb" in env and "TERM=xterm" not in env


def test_cap_and_no_new_privs(rt, bundle):
    bundle.process["noNewPrivileges"] = False
    cid, _ = running(rt, bundle)
    status = rt.call("exec", cid, "cat", "/proc/self/status").ok().out
    assert int(h.status_field(status, "CapEff"), 16) == h.cap_mask(h.DEFAULT_CAPS)
    assert h.status_field(status, "NoNewPrivs") == "0"
    status = rt.call("exec", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", cid, "cat", "/proc/self/status").ok().out
    want = h.cap_mask([*h.DEFAULT_CAPS, "CAP_SYS_ADMIN"])
    assert int(h.status_field(status, "CapEff"), 16) == want
    assert int(h.status_field(status, "CapBnd"), 16) == want
    assert int(h.status_field(status, "CapInh"), 16) == 0  # inheritable only when asked
    assert h.status_field(status, "NoNewPrivs") == "1"


def test_process_file_replaces_the_process(rt, bundle, tmp_path):
    cid, _ = running(rt, bundle)
    process = {
        "terminal": False,
        "user": {"uid": 7, "gid": 8, "additionalGids": [9], "umask": 0o077},
        "args": [
            "sh",
            "-c",
            "echo $ONLY; env | grep -c TERM; pwd; id -u; id -g; id -G; umask; grep CapBnd /proc/self/status",
        ],
        "env": ["PATH=/bin", "ONLY=this"],
        "cwd": "/etc",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 77, "soft": 77}],
        "noNewPrivileges": True,
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    res = rt.call("exec", "--process", str(path), cid).ok()
    lines = res.out.split("\n")
    assert lines[:7] == ["this", "0", "/etc", "7", "8", "8 9", "0077"], res.out
    assert int(lines[7].split()[1], 16) == h.cap_mask(["CAP_KILL"])
    assert rt.call("exec", "--process", str(path), cid).ok()
    process["args"] = ["sh", "-c", "ulimit -n"]
    path.write_text(json.dumps(process))
    assert rt.call("exec", "-p", str(path), cid).ok().out.strip() == "77"
    path.write_text(json.dumps({"args": ["true"]}))  # cwd is required
    rt.call("exec", "-p", str(path), cid).fails("/cwd", code=255)


def test_joins_the_containers_namespaces(rt, bundle):
    bundle.set_namespace("cgroup")
    (bundle.rootfs / "marker").write_text("in the container\n")
    cid, pid = running(rt, bundle)
    script = (
        "echo $$; tr '\\0' ' ' </proc/1/cmdline; echo; cat /marker; hostname;"
        " for n in pid mnt uts ipc net cgroup user; do readlink /proc/self/ns/$n; done"
    )
    lines = rt.call("exec", cid, "sh", "-c", script).ok().out.split("\n")
    assert lines[0] != "1"
    assert lines[1].strip() == "sleep 1000"
    assert lines[2] == "in the container"
    assert lines[3] == "ocipy-it"
    want = [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("pid", "mnt", "uts", "ipc", "net", "cgroup", "user")]
    assert lines[4:11] == want
    cgroup_ns = lines[9]
    assert cgroup_ns != os.readlink("/proc/self/ns/cgroup")


def test_joins_the_containers_cgroup(rt, bundle):
    cid, pid = running(rt, bundle)
    # the exec'd process's cgroups (seen from the host), in the init's cgroups
    res = rt.call("exec", "-d", "--pid-file", str(rt.workdir / "p.pid"), cid, "sleep", "30").ok()
    child = int((rt.workdir / "p.pid").read_text())
    rt.track_pid(child)
    try:
        assert Path(f"/proc/{child}/cgroup").read_text() == Path(f"/proc/{pid}/cgroup").read_text(), res.describe()
    finally:
        os.kill(child, signal.SIGKILL)


def test_user_namespace(rt, open_bundle):
    bundle = open_bundle
    bundle.set_namespace("user")
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cid, pid = running(rt, bundle)
    out = rt.call("exec", "-u", "1000:1000", cid, "sh", "-c", "id -u; id -g; readlink /proc/self/ns/user; sleep 0").ok()
    assert out.out.split() == ["1000", "1000", os.readlink(f"/proc/{pid}/ns/user")]
    # seen from the host, the ids are the mapped ones
    rt.call("exec", "-d", "--pid-file", str(rt.workdir / "u.pid"), cid, "sleep", "30").ok()
    child = int((rt.workdir / "u.pid").read_text())
    rt.track_pid(child)
    try:
        status = Path(f"/proc/{child}/status").read_text()
        assert h.status_field(status, "Uid").split()[0] == "100000"
        assert h.status_field(status, "Gid").split()[0] == "200000"
    finally:
        os.kill(child, signal.SIGKILL)
    # an unmapped uid is refused before anything runs
    rt.call("exec", "-u", "70000", cid, "true").fails("not mapped", code=255)


def test_detach_pid_file_and_subreaper(rt, bundle):
    cid, _ = running(rt, bundle)
    pid_file = rt.workdir / "exec.pid"
    with h.subreaper():
        rt.call("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "30").ok()
        raw = pid_file.read_bytes()
        assert raw.isdigit(), raw  # no newline
        child = int(raw)
        rt.track_pid(child)
        try:
            assert h.pid_alive(child)
            stat = Path(f"/proc/{child}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            assert ppid == os.getpid()  # no ocipy process stays in between
            assert h.cmdline(child).replace("\0", " ").split()[0] == "sleep"
        finally:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)


def test_console_socket_tty(rt, bundle, tmp_path):
    cid, _ = running(rt, bundle)
    sock_path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    try:
        script = "tty; test -t 0 && test -t 1 && echo IS-A-TTY; test -e /dev/console || echo NO-CONSOLE"
        res = rt.call("exec", "-d", "-t", "--console-socket", sock_path, cid, "sh", "-c", script).ok()
        msg, fds = h.recv_console(listener)
        assert msg and len(fds) == 1, res.describe()
        try:
            out = h.read_until_eof(fds[0]).decode(errors="replace")
        finally:
            for fd in fds:
                os.close(fd)
    finally:
        listener.close()
    assert "/dev/pts/" in out and "IS-A-TTY" in out, out
    assert "NO-CONSOLE" in out, out  # the exec'd pty is not bound on /dev/console
    # a tty for a detached process needs a console socket
    rt.call("exec", "-d", "-t", cid, "true").fails("console-socket", code=255)


def test_foreground_tty_is_proxied(rt, bundle):
    cid, _ = running(rt, bundle)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            rt.argv("exec", "-t", cid, "sh", "-c", "tty; test -t 0 && echo IS-A-TTY; exit 4"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=h.runtime_env(),
            start_new_session=True,
        )
        os.close(slave)
        slave = -1
        out = h.read_until_eof(master).decode(errors="replace")
        assert proc.wait(timeout=h.TIMEOUT) == 4, out
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert "/dev/pts/" in out and "IS-A-TTY" in out, out


def test_stopped_container(rt, bundle):
    bundle.args("true")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped")
    rt.call("exec", cid, "true").fails("cannot exec in a stopped container", code=255)
    rt.call("exec", "no-such-container", "true").fails("container does not exist", code=255)


def test_created_container(rt, bundle):
    bundle.args("sleep", "1000")
    cid, _ = rt.create_ok(bundle)
    assert rt.call("exec", cid, "echo", "early").ok().out == "early\n"
    assert rt.status(cid) == "created"


def test_paused_container(rt, bundle):
    cid, _ = running(rt, bundle)
    if rt.call("pause", cid).returncode != 0:
        pytest.skip("pause does not work here")
    proc = None
    try:
        rt.call("exec", cid, "true").fails("paused", code=255)
        # with --ignore-paused the process joins the frozen cgroup: it runs once the container is resumed
        pid_file = rt.workdir / "p.pid"
        proc = subprocess.Popen(
            rt.argv("exec", "-d", "--ignore-paused", "--pid-file", str(pid_file), cid, "true"),
            stdin=subprocess.DEVNULL,
            env=h.runtime_env(),
        )
        time.sleep(0.5)
        assert proc.poll() is None  # not refused
    finally:
        rt.call("resume", cid)
        if proc is not None:
            assert proc.wait(timeout=h.TIMEOUT) == 0
    assert pid_file.read_text().isdigit()


def test_missing_executable(rt, bundle):
    cid, _ = running(rt, bundle)
    rt.call("exec", cid, "no-such-program").fails("no-such-program", "executable file not found", code=255)
    rt.call("exec", cid, "/bin/nope").fails("/bin/nope", code=255)
    rt.call("exec", cid).fails(code=255)


def test_signals_are_forwarded(rt, bundle):
    cid, _ = running(rt, bundle)
    out_path = rt.workdir / "sig.out"
    script = "trap 'echo got-TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            rt.argv("exec", cid, "sh", "-c", script), stdin=subprocess.DEVNULL, stdout=out, env=h.runtime_env()
        )
    try:
        assert h.wait_until(lambda: b"ready" in out_path.read_bytes(), timeout=h.TIMEOUT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=h.TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"got-TERM" in out_path.read_bytes()
    # killed by a signal: 128 + the signal
    res = rt.call("exec", cid, "sh", "-c", "kill -KILL $$")
    assert res.returncode == 128 + signal.SIGKILL, res.describe()


def test_only_preserved_fds_reach_the_process(rt, bundle, tmp_path):
    cid, _ = running(rt, bundle)
    secret = tmp_path / "leak"
    secret.write_text("s3cret\n")
    fd = os.open(secret, os.O_RDONLY)
    try:
        wrap = h.fd_wrapper({3: fd})
        res = rt.call("exec", cid, "sh", "-c", "ls /proc/self/fd", pass_fds=(fd,), shell_prefix=wrap).ok()
        assert sorted(res.out.split()) == ["0", "1", "2", "3"], res.out  # 3 = the ls's own directory fd
        res = rt.call("exec", "--preserve-fds", "1", cid, "sh", "-c", "cat <&3", pass_fds=(fd,), shell_prefix=wrap).ok()
        assert res.out == "s3cret\n"
    finally:
        os.close(fd)


def test_config_as_it_was_at_create(rt, bundle):
    bundle.process["env"] = [h.PATH_ENV, "WHICH=create"]
    cid, _ = running(rt, bundle)
    bundle.process["env"] = [h.PATH_ENV, "WHICH=changed"]
    bundle.write()
    assert rt.call("exec", cid, "sh", "-c", "echo $WHICH").ok().out == "create\n"
    (bundle.path / "config.json").unlink()
    assert rt.call("exec", cid, "sh", "-c", "echo $WHICH").ok().out == "create\n"


def test_exec_exits_while_container_keeps_running(rt, bundle):
    cid, pid = running(rt, bundle)
    start = time.monotonic()
    rt.call("exec", cid, "true").ok()
    assert time.monotonic() - start < h.TIMEOUT
    assert rt.status(cid) == "running" and rt.pid(cid) == pid


def test_seccomp_of_the_container_applies(rt, bundle):
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    cid, _ = running(rt, bundle)
    res = rt.call("exec", cid, "sh", "-c", "mkdir /tmp/x; echo rc=$?; grep '^Seccomp:' /proc/self/status").ok()
    assert "rc=1" in res.out and "Seccomp:\t2" in res.out, res.describe()


# what a real `exec` (a Kubernetes exec probe) must not import: issue 15. Each is 3-25 ms per call on this host.
EXEC_FORBIDDEN = {
    "pydantic",  # the package (pydantic-core's extension alone is loaded by ocipy/spec/fast.py: see below)
    "jsonschema",
    "pyroute2",
    "typing_extensions",
    "argparse",
    "dataclasses",  # imports inspect, ast, dis, tokenize: ocipy/records.py stands in
    "inspect",
    "typing",
    "copy",
    "subprocess",
    "socket",  # its import makes enums of every constant (~8 ms): ocipy/launch.py uses _socket
    "signal",  # the same with `enum` (~1.5 ms): _signal
    "enum",
    "contextlib",  # ~3 ms with collections and functools
    # the config create saved and the process are checked by ocipy/spec/light.py (issue 15): pydantic-core only
    # to word a problem
    "pydantic_core",
    "ocipy.spec.compiled",
    "ocipy.spec.fast",
    "ocipy.spec.checks",
    "re",
    "datetime",
    # the join plan is built from the namespace and process sections only (ocipy/execplan.py), not create's compiler
    "ocipy.plan.create",
    "ocipy.plan.mounts",
    "ocipy.plan.cgroupmounts",
    "ocipy.plan.devices",
    "ocipy.plan.sysctl",
    "ocipy.plan.host",  # and no mountinfo/cgroup layout probe: execplan._ProcessHost
    "ocipy.cgroups.layout",
    "ocipy.mountopts",
    "ocipy.seccomp",  # no seccomp in this config: its module is for configs that have one
    "collections",  # `collections.abc` imports it (~1 ms): annotations only
    "functools",
    # `os` builds os.environ with `_collections_abc` (~1 ms of a ~15 ms exec): `posix` (ocipy/posixlite.py) and
    # `_stat` instead; posixpath imports `os`
    "os",
    "posixpath",
    "_collections_abc",
    "stat",
    "ocipy.hooks",  # exec runs no hook: the namespace table and differing_namespaces are ocipy/namespaces.py's
    "ocipy.mempolicy",  # only for a config with linux.memoryPolicy (this one has none)
}


@pytest.mark.skipif(not h.IS_OCIPY, reason="ocipy's own imports")
def test_exec_import_budget(rt, bundle):
    """`python -X importtime` of `ocipy exec ID true` on a running container, as the -IS launcher runs it."""
    import sys

    cid, _ = running(rt, bundle)
    code = (
        f"import sys; sys.path[:0] = [{str(h.PROJECT)!r}, *{[p for p in sys.path if p.endswith('site-packages')]!r}]; "
        "sys.argv[0] = 'ocipy'; from ocipy.cli import entry; entry()"
    )
    out = subprocess.run(
        [sys.executable, "-IS", "-X", "importtime", "-c", code, "--root", str(rt.root), "exec", cid, "true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "ocipy.operations.exec" in names
    bad = {n for n in names if n in EXEC_FORBIDDEN or n.split(".")[0] in EXEC_FORBIDDEN}
    assert not bad, f"exec imported {sorted(bad)}"


def test_seccomp_listener_gets_the_exec_process(rt, bundle, tmp_path):
    """An exec'd process gets the container's filter again, with its own listener fd: the agent at listenerPath
    receives it with the state of the container (running) and the exec'd pid, as for the container's init."""
    import threading

    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(2)
    server.settimeout(60)
    docs: list[dict[str, Any]] = []

    def agent() -> None:  # one connection from create, one from exec; the notified syscall is never made
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                while more := conn.recv(65536):
                    data += more
            for fd in fds:
                os.close(fd)
            docs.append({**json.loads(data), "nfds": len(fds)})

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": str(path),
        "listenerMetadata": "exec-test",
        "syscalls": [{"names": ["sched_yield"], "action": "SCMP_ACT_NOTIFY"}],
    }
    try:
        cid, _ = running(rt, bundle)
        pid_file = tmp_path / "exec.pid"
        rt.call("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "30").ok()
        thread.join(timeout=60)
    finally:
        server.close()
    assert len(docs) == 2, docs
    doc = docs[1]
    assert doc["nfds"] == 1 and doc["fds"] == ["seccompFd"] and doc["metadata"] == "exec-test"
    assert doc["pid"] == int(pid_file.read_text())
    assert doc["state"]["id"] == cid and doc["state"]["status"] == "running"


@pytest.mark.skipif(not h.IS_OCIPY, reason="ocipy's own record")
def test_early_grace_period_moves_nothing(rt, bundle):
    """exec's early write into its own unified cgroup.procs (ocipy/cgroups/graceperiod.py) leaves every process where it
    was, on the real cgroupfs: a child interpreter runs it with the container's record and compares its cgroups."""
    import sys

    cid, pid = running(rt, bundle)
    record = json.loads((Path(rt.root) / cid / "state.json").read_text())["ocipy"]["cgroup"]
    if not isinstance(record.get("v2"), str):
        pytest.skip("no unified hierarchy here")
    code = (
        "import json, sys, time; from ocipy.cgroups import graceperiod as g; "
        "before = open('/proc/self/cgroup').read(); g.start(json.loads(sys.argv[1])); "
        "time.sleep(0.2); print(json.dumps([before, open('/proc/self/cgroup').read()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(h.PROJECT)}
    before_init = Path(f"/proc/{pid}/cgroup").read_text()
    out = subprocess.run([sys.executable, "-c", code, json.dumps(record)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout)
    assert before == after
    assert Path(f"/proc/{pid}/cgroup").read_text() == before_init
    rt.call("exec", cid, "true").ok()
