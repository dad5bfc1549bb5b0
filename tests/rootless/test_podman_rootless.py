"""Rootless Podman (4.3, as a throw-away user: conftest.py) with `--runtime <ocipy>`: what tests/engines/test_podman.py
covers as root, where rootless Podman allows it. Podman runs the runtime inside its own user namespace (uid 0 there,
the user on the host), so this is ocipy's rootless detection at work: state in $XDG_RUNTIME_DIR/ocipy, no cgroup,
devices bound, what the namespace refuses handled.

Set ROOTLESS_RUNTIME=/var/cache/ocipy/bin/runc-1.5.1 to check the tests themselves against the reference.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rootlessctl import IMAGE, RootlessUser

pytestmark = [pytest.mark.rootless, pytest.mark.timeout(240)]

TRAP_LOOP = "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done"


@pytest.fixture(scope="module")
def pm(podman_user: RootlessUser) -> RootlessUser:
    override = os.environ.get("ROOTLESS_RUNTIME")
    if override:
        podman_user.runtime = override
    return podman_user


def show(p: subprocess.CompletedProcess[str]) -> str:
    return f"\nargv: {' '.join(map(str, p.args))}\nexit: {p.returncode}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"


def run(
    pm: RootlessUser, *opts: str, cmd: list[str], code: int = 0, network: str = "none", input: str | None = None
) -> subprocess.CompletedProcess[str]:
    p = pm.podman("run", "--rm", "--network", network, *opts, IMAGE, *cmd, input=input)
    assert p.returncode == code, show(p)
    return p


def sh(pm: RootlessUser, script: str, *opts: str, code: int = 0, network: str = "none") -> str:
    return run(pm, *opts, cmd=["sh", "-c", script], code=code, network=network).stdout


def status_field(text: str, field: str) -> str:
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in {text!r}")


def wait_for(cond, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


@contextlib.contextmanager
def detached(pm: RootlessUser, *opts: str, cmd: list[str], network: str = "none") -> Iterator[str]:
    name = "t-" + uuid.uuid4().hex[:12]
    p = pm.podman("run", "-d", "--name", name, "--network", network, *opts, IMAGE, *cmd)
    try:
        assert p.returncode == 0, show(p)
        if "echo ready" in " ".join(cmd):
            wait_for(lambda: "ready" in pm.podman("logs", name).stdout, f"{name} never printed ready")
        yield name
    finally:
        pm.podman("rm", "-f", "-t", "0", name)


def inspect(pm: RootlessUser, name: str, fmt: str) -> str:
    p = pm.podman("inspect", "--format", fmt, name)
    assert p.returncode == 0, show(p)
    return p.stdout.strip()


# --- run: output, exit codes, process settings ------------------------------------------------------------------------


def test_the_issue_command(pm: RootlessUser) -> None:
    """The report: `podman --runtime <ocipy> run --rm --network none busybox echo hi` as a user."""
    p = pm.podman("run", "--rm", "--network", "none", "busybox", "echo", "hi")
    assert p.returncode == 0 and p.stdout == "hi\n", show(p)


def test_runtime_state_lives_in_xdg_runtime_dir(pm: RootlessUser) -> None:
    if os.path.basename(pm.runtime) != "ocipy":
        pytest.skip("ocipy's own state layout")
    with detached(pm, cmd=["sh", "-c", TRAP_LOOP]) as name:
        cid = inspect(pm, name, "{{.Id}}")
        assert (pm.xdg / "ocipy" / cid / "state.json").exists()
        state = json.loads((pm.xdg / "ocipy" / cid / "state.json").read_text())
        assert state["ocipy"]["rootless"] is True
        assert "cgroup" not in state["ocipy"]  # no cgroup this user may write on this host
    assert not (pm.xdg / "ocipy" / cid).exists()


def test_run_output_streams_and_exit_codes(pm: RootlessUser) -> None:
    p = run(pm, cmd=["sh", "-c", "echo to-out; echo to-err >&2; exit 42"], code=42)
    assert p.stdout == "to-out\n"
    assert "to-err\n" in p.stderr
    assert run(pm, cmd=["true"]).stdout == ""
    run(pm, cmd=["false"], code=1)
    p = run(pm, cmd=["/no/such/binary"], code=127)
    assert "no such file or directory" in p.stderr.lower() or "executable file not found" in p.stderr, show(p)
    p = run(pm, cmd=["/etc/passwd"], code=126)
    assert "permission denied" in p.stderr.lower(), show(p)


def test_env_user_workdir(pm: RootlessUser) -> None:
    out = sh(pm, 'echo "$FOO|$BAR"; id -u; id -g; pwd', "-e", "FOO=bar baz", "--env", "BAR=2", "--user", "1:1",
             "--workdir", "/tmp")  # fmt: skip
    assert out == "bar baz|2\n1\n1\n/tmp\n"
    assert sh(pm, "id -un; id -u; id -g", "--user", "nobody") == "nobody\n65534\n65534\n"
    env = sh(pm, "env")
    assert "PATH=" in env and "HOSTNAME=" in env and "container=podman" in env


def test_read_only_root_and_tmpfs(pm: RootlessUser) -> None:
    out = sh(pm, "touch /x 2>&1; touch /data/ok && echo data-ok; touch /tmp/ok && echo tmp-ok; grep ' /data ' "
             "/proc/mounts", "--read-only", "--tmpfs", "/data:size=1m,mode=1777")  # fmt: skip
    assert "Read-only file system" in out
    assert "data-ok" in out and "tmp-ok" in out
    assert "tmpfs /data tmpfs" in out and "size=1024k" in out
    assert sh(pm, "grep ' / ' /proc/mounts", "--read-only").split()[3].split(",")[0] == "ro"


def test_bind_mounts_ro_and_rw(pm: RootlessUser) -> None:
    src = pm.files("volumes", uuid.uuid4().hex[:8])
    (src / "hello").write_text("from-host\n")
    out = sh(pm, "cat /mnt/hello; echo x > /mnt/new 2>&1 || echo write-failed", "-v", f"{src}:/mnt:ro")
    assert out.startswith("from-host\n") and "write-failed" in out
    assert not (src / "new").exists()
    sh(pm, "echo from-container > /mnt/new", "-v", f"{src}:/mnt:rw")
    assert (src / "new").read_text() == "from-container\n"
    assert os.stat(src / "new").st_uid == pm.uid  # container root is the user on the host
    out = sh(pm, "cat /m/hello", "--mount", f"type=bind,source={src},destination=/m,readonly=true")
    assert out == "from-host\n"


def test_hostname(pm: RootlessUser) -> None:
    assert sh(pm, "hostname; cat /etc/hostname", "--hostname", "box1").split() == ["box1", "box1"]


# --- user namespaces ----------------------------------------------------------------------------------------------


def test_default_mapping_is_the_users_subordinate_range(pm: RootlessUser) -> None:
    (start, count) = pm.subids()[0][0]
    out = sh(pm, "cat /proc/self/uid_map")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["0", str(pm.uid), "1"]
    assert rows[1] == ["1", str(start), str(count)]


def test_userns_keep_id(pm: RootlessUser) -> None:
    out = sh(pm, "id -u; id -g; cat /proc/self/uid_map", "--userns", "keep-id")
    lines = out.splitlines()
    assert lines[0] == str(pm.uid) and lines[1] == str(pm.gid), out
    src = pm.files("volumes", "keepid")
    sh(pm, "echo mine > /v/f", "--userns", "keep-id", "-v", f"{src}:/v")
    assert os.stat(src / "f").st_uid == pm.uid


def test_uidmap(pm: RootlessUser) -> None:
    # ids of Podman's namespace (0 = the user, 1.. = subordinate ids): container 0-999 on its 1-1000, which the
    # runtime (uid 0 there) maps itself; on the host the container's root is the first subordinate id
    with detached(pm, "--uidmap", "0:1:1000", "--gidmap", "0:1:1000", cmd=["sh", "-c", TRAP_LOOP]) as name:
        p = pm.podman("exec", name, "cat", "/proc/self/uid_map")
        assert [line.split() for line in p.stdout.splitlines()] == [["0", "1", "1000"]], show(p)
        pid = int(inspect(pm, name, "{{.State.Pid}}"))
        (start, _count) = pm.subids()[0][0]
        assert os.stat(f"/proc/{pid}").st_uid == start


# --- network --------------------------------------------------------------------------------------------------------


def test_network_none_has_only_loopback(pm: RootlessUser) -> None:
    assert sh(pm, "ls /sys/class/net").split() == ["lo"]


def test_slirp4netns_default_network(pm: RootlessUser) -> None:
    if not pm.tun_granted and os.stat("/dev/net/tun").st_mode & 0o006 != 0o006:
        pytest.skip("/dev/net/tun cannot be opened to the test user (no POSIX ACL support on /dev)")
    out = sh(pm, "ip -4 addr show tap0; ip route; ls /sys/class/net", network="slirp4netns")
    assert "10.0.2.100" in out, out
    assert "default via 10.0.2.2" in out, out
    assert "tap0" in out.split() and "lo" in out.split()
    # the default for a rootless container with no --network is slirp4netns too
    p = pm.podman("run", "--rm", IMAGE, "ip", "-4", "addr", "show", "tap0")
    assert p.returncode == 0 and "10.0.2.100" in p.stdout, show(p)


# --- security settings ----------------------------------------------------------------------------------------------

DEFAULT_CAPS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7,
                "SETPCAP": 8, "NET_BIND_SERVICE": 10, "SYS_CHROOT": 18, "SETFCAP": 31}  # fmt: skip


def test_capabilities_and_cap_drop(pm: RootlessUser) -> None:
    status = sh(pm, "cat /proc/self/status")
    eff = int(status_field(status, "CapEff"), 16)
    for name, bit in DEFAULT_CAPS.items():
        assert eff & (1 << bit), f"{name} missing from {eff:x}"
    status = sh(pm, "cat /proc/self/status", "--cap-drop", "all")
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status_field(status, field), 16) == 0, field
    out = sh(pm, "touch /tmp/f; chown 1 /tmp/f 2>&1; echo rc=$?", "--cap-drop", "CHOWN")
    assert "Operation not permitted" in out and "rc=1" in out
    status = sh(pm, "cat /proc/self/status", "--cap-add", "SYS_PTRACE")
    assert int(status_field(status, "CapEff"), 16) & (1 << 19)


def test_default_and_custom_seccomp(pm: RootlessUser) -> None:
    status = sh(pm, "cat /proc/self/status")
    assert status_field(status, "Seccomp") == "2"
    assert status_field(sh(pm, "cat /proc/self/status", "--security-opt", "seccomp=unconfined"), "Seccomp") == "0"
    profile = pm.files("seccomp") / "deny-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }))  # fmt: skip
    out = sh(pm, "mkdir /tmp/d 2>&1; echo rc=$?; touch /tmp/f && echo touched", "--security-opt",
             f"seccomp={profile}")  # fmt: skip
    assert "Permission denied" in out and "rc=1" in out and "touched" in out, out


def test_no_new_privileges_and_ulimits(pm: RootlessUser) -> None:
    out = sh(pm, "cat /proc/self/status", "--security-opt", "no-new-privileges")
    assert status_field(out, "NoNewPrivs") == "1"
    out = sh(pm, "ulimit -n; ulimit -H -n", "--ulimit", "nofile=1024:2048")
    assert out == "1024\n2048\n"


def test_oom_score_adj_up_only(pm: RootlessUser) -> None:
    assert sh(pm, "cat /proc/self/oom_score_adj", "--oom-score-adj", "500") == "500\n"


def test_memory_on_cgroup_v1_is_dropped_and_the_container_runs(pm: RootlessUser) -> None:
    """Rootless Podman on cgroup v1 drops resource limits with a warning; the container must still run."""
    p = pm.podman("run", "--rm", "--network", "none", "--memory", "64m", IMAGE, "echo", "ran")
    assert p.returncode == 0 and p.stdout == "ran\n", show(p)
    if Path("/sys/fs/cgroup/memory").is_dir():
        assert "Resource limits are not supported and ignored on cgroups V1 rootless systems" in p.stderr, show(p)


def test_devices(pm: RootlessUser) -> None:
    """--device in a user namespace: the host's node is bound (mknod is refused), as with runc."""
    out = sh(pm, "stat -c '%F %t:%T' /dev/fuse", "--device", "/dev/fuse")
    assert out == "character special file a:e5\n", out


# --- exec, terminals, stdin -----------------------------------------------------------------------------------------


def test_detached_exec(pm: RootlessUser) -> None:
    with detached(pm, "-e", "FROM_RUN=1", cmd=["sh", "-c", TRAP_LOOP]) as name:
        assert inspect(pm, name, "{{.State.Status}}") == "running"
        p = pm.podman("exec", name, "sh", "-c", "echo hi; echo $FROM_RUN")
        assert p.returncode == 0 and p.stdout == "hi\n1\n", show(p)
        p = pm.podman("exec", name, "sh", "-c", "exit 5")
        assert p.returncode == 5, show(p)
        p = pm.podman("exec", "--user", "1:1", "--workdir", "/tmp", "--env", "A=b", name, "sh", "-c",
                      'id -u; id -g; pwd; echo "$A"')  # fmt: skip
        assert p.returncode == 0 and p.stdout == "1\n1\n/tmp\nb\n", show(p)
        p = pm.podman("exec", "-i", name, "cat", input="through stdin\n")
        assert p.returncode == 0 and p.stdout == "through stdin\n", show(p)
        p = pm.podman("exec", "-t", name, "sh", "-c", "tty; test -t 0 && test -t 1 && echo both-tty")
        assert p.returncode == 0 and "both-tty" in p.stdout and "/dev/pts/" in p.stdout, show(p)


def test_tty(pm: RootlessUser) -> None:
    p = run(pm, "-t", cmd=["sh", "-c", "tty; test -t 0 && test -t 1 && echo both-tty; exit 4"], code=4)
    assert p.stdout.replace("\r\n", "\n") == "/dev/pts/0\nboth-tty\n", show(p)


def test_interactive_tty(pm: RootlessUser) -> None:
    master, slave = pty.openpty()
    os.fchown(slave, pm.uid, -1)
    proc = subprocess.Popen(
        pm.podman_argv("run", "--rm", "-it", "--network", "none", IMAGE, "sh"),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        **pm.popen_kwargs(),  # type: ignore[arg-type]
    )
    os.close(slave)
    output = b""
    try:
        os.write(master, b"echo typed-$((40+2)); tty; exit 3\n")
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
        assert proc.wait(timeout=30) == 3, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"typed-42" in output, output


def test_stdin_pipe(pm: RootlessUser) -> None:
    p = run(pm, "-i", cmd=["cat"], input="line one\nline two\n")
    assert p.stdout == "line one\nline two\n"
    p = run(pm, cmd=["cat"], input="ignored\n")
    assert p.stdout == ""


# --- detached: stop, kill, restart ------------------------------------------------------------------------------------


def test_stop_kill_restart(pm: RootlessUser) -> None:
    with detached(pm, cmd=["sh", "-c", TRAP_LOOP]) as name:
        t0 = time.monotonic()
        p = pm.podman("stop", "-t", "20", name)
        assert p.returncode == 0, show(p)
        assert time.monotonic() - t0 < 10, "SIGTERM did not reach the trap"
        assert inspect(pm, name, "{{.State.ExitCode}}") == "3"
    with detached(pm, cmd=["sleep", "1000"]) as name:
        p = pm.podman("stop", "-t", "1", name)
        assert p.returncode == 0, show(p)
        assert inspect(pm, name, "{{.State.ExitCode}}") == "137"
    script = "trap 'echo got-usr1; exit 42' USR1; echo ready; while :; do sleep 0.1; done"
    with detached(pm, cmd=["sh", "-c", script]) as name:
        p = pm.podman("kill", "--signal", "USR1", name)
        assert p.returncode == 0, show(p)
        p = pm.podman("wait", name, timeout=30)
        assert p.returncode == 0 and p.stdout.strip() == "42", show(p)
    with detached(pm, cmd=["sh", "-c", TRAP_LOOP]) as name:
        pid = inspect(pm, name, "{{.State.Pid}}")
        p = pm.podman("restart", "-t", "10", name)
        assert p.returncode == 0, show(p)
        assert inspect(pm, name, "{{.State.Status}}") == "running"
        assert inspect(pm, name, "{{.State.Pid}}") != pid
        wait_for(lambda: pm.podman("logs", name).stdout.count("ready") == 2, "restarted container printed ready")


def test_pause_needs_a_cgroup(pm: RootlessUser) -> None:
    """Rootless Podman on cgroup v1 refuses pause itself; ocipy's own answer is checked in test_ocipy_rootless."""
    with detached(pm, cmd=["sh", "-c", TRAP_LOOP]) as name:
        p = pm.podman("pause", name)
        assert p.returncode != 0, show(p)
        assert inspect(pm, name, "{{.State.Status}}") == "running"


def test_network_host_shows_the_hosts_sysfs(pm: RootlessUser) -> None:
    """No network namespace of its own: sysfs cannot be mounted in the host's, so the host's /sys is bound."""
    out = sh(pm, "ls /sys/class/net", network="host")
    assert sorted(out.split()) == sorted(os.listdir("/sys/class/net"))


def test_privileged(pm: RootlessUser) -> None:
    """--privileged rootless: every capability of Podman's user namespace, real sysfs (own network namespace),
    mounts allowed; host devices bound (nothing is created)."""
    out = sh(pm, "grep ' /sys ' /proc/mounts; mount -t tmpfs none /tmp && echo mounted; grep Seccomp: /proc/self/status",
             "--privileged")  # fmt: skip
    assert "sysfs /sys sysfs rw" in out and "mounted" in out and "Seccomp:\t0" in out, out
