"""Podman 4.3 (+ conmon) driving ocipy: `podman --runtime <ocipy> ...` with private storage (see conftest.py).

Each test states what a user of `podman run` sees, checked from inside the container and, for limits, from the
host's cgroup files. Set ENGINES_RUNTIME=/usr/sbin/runc to check the tests themselves against the reference.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from enginectl import Podman

pytestmark = [pytest.mark.engines, pytest.mark.timeout(180)]

IMAGE = Podman.image
TRAP_LOOP = "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done"


def show(p: subprocess.CompletedProcess[str]) -> str:
    return f"\nargv: {' '.join(p.args)}\nexit: {p.returncode}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"


def run(
    podman: Podman, *opts: str, cmd: list[str], code: int = 0, network: str = "none", input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`podman run --rm` of busybox; asserts the exit code."""
    p = podman("run", "--rm", "--network", network, *opts, IMAGE, *cmd, input=input)
    assert p.returncode == code, show(p)
    return p


def sh(podman: Podman, script: str, *opts: str, code: int = 0, network: str = "none") -> str:
    return run(podman, *opts, cmd=["sh", "-c", script], code=code, network=network).stdout


def status_field(text: str, field: str) -> str:
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in {text!r}")


@contextlib.contextmanager
def detached(podman: Podman, *opts: str, cmd: list[str], network: str = "none") -> Iterator[str]:
    """A container started with `podman run -d`, waited for until its output says `ready` when the command prints
    it, and removed (`rm -f -t 0`) at the end."""
    name = "t-" + uuid.uuid4().hex[:12]
    p = podman("run", "-d", "--name", name, "--network", network, *opts, IMAGE, *cmd)
    try:
        assert p.returncode == 0, show(p)
        if "echo ready" in " ".join(cmd):
            wait_for(lambda: "ready" in podman("logs", name).stdout, f"{name} never printed ready")
        yield name
    finally:
        podman("rm", "-f", "-t", "0", name)


def wait_for(cond, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


def inspect(podman: Podman, name: str, fmt: str) -> str:
    p = podman("inspect", "--format", fmt, name)
    assert p.returncode == 0, show(p)
    return p.stdout.strip()


def host_pid(podman: Podman, name: str) -> int:
    pid = int(inspect(podman, name, "{{.State.Pid}}"))
    assert pid > 0
    return pid


def host_cgroup_file(pid: int, controller: str, name: str) -> str:
    """A cgroup v1 file of the container's cgroup, read on the host."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return Path(f"/sys/fs/cgroup/{controllers}{path}/{name}").read_text().strip()
    raise AssertionError(f"pid {pid} has no {controller} cgroup")


# ------------------------------------------------------------------------------------------------------------------
# run: output, exit codes, process settings
# ------------------------------------------------------------------------------------------------------------------


def test_run_output_streams_and_exit_codes(podman: Podman) -> None:
    p = run(podman, cmd=["sh", "-c", "echo to-out; echo to-err >&2; exit 42"], code=42)
    assert p.stdout == "to-out\n"
    assert "to-err\n" in p.stderr
    assert sh(podman, "echo hi") == "hi\n"
    assert run(podman, cmd=["true"]).stdout == ""
    run(podman, cmd=["false"], code=1)


def test_missing_executable_exits_127_and_not_executable_126(podman: Podman) -> None:
    p = run(podman, cmd=["/no/such/binary"], code=127)
    assert "no such file or directory" in p.stderr.lower() or "executable file not found" in p.stderr, show(p)
    p = run(podman, cmd=["/etc/passwd"], code=126)
    assert "permission denied" in p.stderr.lower(), show(p)


def test_env_user_workdir(podman: Podman) -> None:
    out = sh(
        podman,
        'echo "$FOO|$BAR"; id -u; id -g; pwd',
        "-e",
        "FOO=bar baz",
        "--env",
        "BAR=2",
        "--user",
        "1:1",
        "--workdir",
        "/tmp",
    )
    assert out == "bar baz|2\n1\n1\n/tmp\n"
    assert sh(podman, "id -un; id -u; id -g", "--user", "nobody") == "nobody\n65534\n65534\n"
    env = sh(podman, "env")
    assert "PATH=" in env and "HOSTNAME=" in env and "container=podman" in env


def test_read_only_root_and_tmpfs(podman: Podman) -> None:
    out = sh(
        podman,
        "touch /x 2>&1; touch /data/ok && echo data-ok; touch /tmp/ok && echo tmp-ok; grep ' /data ' /proc/mounts",
        "--read-only",
        "--tmpfs",
        "/data:size=1m,mode=1777",
        code=0,
    )
    assert "Read-only file system" in out
    assert "data-ok" in out and "tmp-ok" in out
    assert "tmpfs /data tmpfs" in out and "size=1024k" in out
    assert sh(podman, "stat -c %a /data", "--read-only", "--tmpfs", "/data:size=1m,mode=1777") == "1777\n"
    assert sh(podman, "grep ' / ' /proc/mounts", "--read-only").split()[3].split(",")[0] == "ro"


def test_bind_mounts_ro_and_rw(podman: Podman, tmp_path: Path) -> None:
    src = tmp_path / "shared"
    src.mkdir()
    (src / "hello").write_text("from-host\n")
    out = sh(podman, "cat /mnt/hello; echo x > /mnt/new 2>&1 || echo write-failed", "-v", f"{src}:/mnt:ro")
    assert out.startswith("from-host\n") and "write-failed" in out
    assert not (src / "new").exists()
    sh(podman, "echo from-container > /mnt/new", "-v", f"{src}:/mnt:rw")
    assert (src / "new").read_text() == "from-container\n"
    out = sh(podman, "cat /m/hello", "--mount", f"type=bind,source={src},destination=/m,readonly=true")
    assert out == "from-host\n"


def test_hostname(podman: Podman) -> None:
    assert sh(podman, "hostname; cat /etc/hostname", "--hostname", "box1").split() == ["box1", "box1"]


# ------------------------------------------------------------------------------------------------------------------
# resources
# ------------------------------------------------------------------------------------------------------------------


def test_memory_limit_is_set_and_enforced(podman: Podman) -> None:
    with detached(podman, "--memory", "64m", cmd=["sh", "-c", TRAP_LOOP]) as name:
        pid = host_pid(podman, name)
        assert host_cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
        p = podman("exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert p.returncode == 0 and p.stdout.strip() == str(64 << 20), show(p)
    # tail keeps a line without a newline in memory: it grows until the OOM killer ends it
    run(podman, "--memory", "32m", "--memory-swap", "32m", cmd=["tail", "/dev/zero"], code=137)


def test_cpu_limits(podman: Podman) -> None:
    with detached(podman, "--cpus", "0.5", "--cpu-shares", "512", cmd=["sh", "-c", TRAP_LOOP]) as name:
        pid = host_pid(podman, name)
        assert host_cgroup_file(pid, "cpu", "cpu.cfs_period_us") == "100000"
        assert host_cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
        assert host_cgroup_file(pid, "cpu", "cpu.shares") == "512"


def test_pids_limit(podman: Podman) -> None:
    with detached(podman, "--pids-limit", "20", cmd=["sh", "-c", TRAP_LOOP]) as name:
        assert host_cgroup_file(host_pid(podman, name), "pids", "pids.max") == "20"
    p = podman(
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "10",
        IMAGE,
        "sh",
        "-c",
        "for i in $(seq 20); do sleep 2 & done; wait",
    )
    assert "can't fork" in p.stderr or "Resource temporarily unavailable" in p.stderr, show(p)


# ------------------------------------------------------------------------------------------------------------------
# security settings
# ------------------------------------------------------------------------------------------------------------------

CAP_BITS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "SETPCAP": 8,
    "NET_BIND_SERVICE": 10,
    "NET_RAW": 13,
    "SYS_CHROOT": 18,
    "MKNOD": 27,
    "AUDIT_WRITE": 29,
    "SETFCAP": 31,
    "SYS_PTRACE": 19,
}
PODMAN_DEFAULT_CAPS = Podman.default_capabilities  # set in the private containers.conf


def caps_mask(names: list[str]) -> int:
    return sum(1 << CAP_BITS[n] for n in names)


def test_default_capabilities_and_cap_drop(podman: Podman) -> None:
    status = sh(podman, "cat /proc/self/status")
    assert int(status_field(status, "CapEff"), 16) == caps_mask(PODMAN_DEFAULT_CAPS)
    assert int(status_field(status, "CapBnd"), 16) == caps_mask(PODMAN_DEFAULT_CAPS)
    status = sh(podman, "cat /proc/self/status", "--cap-drop", "all")
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status_field(status, field), 16) == 0, field
    out = sh(podman, "touch /tmp/f; chown 1 /tmp/f 2>&1; echo rc=$?", "--cap-drop", "CHOWN")
    assert "Operation not permitted" in out and "rc=1" in out
    status = sh(podman, "cat /proc/self/status", "--cap-drop", "CHOWN", "--cap-add", "SYS_PTRACE")
    expected = caps_mask([c for c in PODMAN_DEFAULT_CAPS if c != "CHOWN"] + ["SYS_PTRACE"])
    assert int(status_field(status, "CapEff"), 16) == expected


def test_privileged(podman: Podman) -> None:
    host_bnd = int(status_field(Path("/proc/self/status").read_text(), "CapBnd"), 16)
    out = sh(
        podman,
        "cat /proc/self/status; ls /dev; mount -t tmpfs none /tmp && echo mounted; grep ' /sys ' /proc/mounts",
        "--privileged",
    )
    assert int(status_field(out, "CapEff"), 16) == host_bnd
    assert status_field(out, "Seccomp") == "0"
    assert "mounted" in out
    assert " /sys sysfs rw" in out
    if os.path.exists("/dev/kvm"):
        assert "kvm" in out.split()


def test_default_seccomp_profile(podman: Podman) -> None:
    assert Path("/usr/share/containers/seccomp.json").exists()
    status = sh(podman, "cat /proc/self/status")
    assert status_field(status, "Seccomp") == "2"
    assert status_field(status, "Seccomp_filters") == "1"
    status = sh(podman, "cat /proc/self/status", "--security-opt", "seccomp=unconfined")
    assert status_field(status, "Seccomp") == "0"


def test_custom_seccomp_profile(podman: Podman, tmp_path: Path) -> None:
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            }
        )
    )
    out = sh(
        podman,
        "mkdir /tmp/d 2>&1; echo rc=$?; touch /tmp/f && echo touched; grep Seccomp: /proc/self/status",
        "--security-opt",
        f"seccomp={profile}",
    )
    assert "Operation not permitted" in out and "rc=1" in out, out  # errnoRet 1 = EPERM
    assert "touched" in out
    assert "Seccomp:\t2" in out
    # and errnoRet is honoured, not just "some error": the same rule with EACCES
    profile.write_text(profile.read_text().replace('"errnoRet": 1', '"errnoRet": 13'))
    out = sh(podman, "mkdir /tmp/d 2>&1; echo rc=$?", "--security-opt", f"seccomp={profile}")
    assert "Permission denied" in out and "rc=1" in out, out


def test_no_new_privileges(podman: Podman) -> None:
    assert status_field(sh(podman, "cat /proc/self/status"), "NoNewPrivs") == "0"
    out = sh(podman, "cat /proc/self/status", "--security-opt", "no-new-privileges")
    assert status_field(out, "NoNewPrivs") == "1"


def test_ulimits(podman: Podman) -> None:
    # the defaults come from the private containers.conf
    assert sh(podman, "ulimit -n; ulimit -H -n; ulimit -u") == "20000\n20000\n32768\n"
    out = sh(
        podman,
        "ulimit -n; ulimit -H -n; ulimit -u; ulimit -H -u",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "nproc=100:200",
    )
    assert out == "1024\n2048\n100\n200\n"


def test_oom_score_adj(podman: Podman) -> None:
    assert sh(podman, "cat /proc/self/oom_score_adj", "--oom-score-adj", "500") == "500\n"
    assert sh(podman, "cat /proc/self/oom_score_adj", "--oom-score-adj", "1000") == "1000\n"
    # (a negative value needs CAP_SYS_RESOURCE, which this machine does not give: runc fails the same way)


def test_masked_and_read_only_proc_paths(podman: Podman) -> None:
    # Podman masks /proc/timer_list (and /proc/kcore, /proc/keys, ... where they exist) with /dev/null and
    # /sys/firmware with an empty read-only tmpfs, and makes /proc/sys, /proc/bus, /proc/fs, /proc/irq read-only.
    assert Path("/proc/timer_list").read_text() != "" and os.listdir("/sys/firmware")
    out = sh(
        podman,
        "exec 2>&1; wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l; "
        "echo x > /proc/sys/kernel/domainname; echo rc=$?; grep -E ' /proc/(sys|bus|irq|fs) ' /proc/mounts",
    )
    lines = out.splitlines()
    assert lines[0].strip() == "0" and lines[1].strip() == "0", out
    assert "Read-only file system" in out and "rc=1" in out, out
    assert " /proc/sys proc ro" in out
    out = sh(
        podman, "wc -c < /proc/timer_list; grep -c ' /proc/sys ' /proc/mounts; true", "--security-opt", "unmask=ALL"
    )
    assert int(out.split()[0]) > 0, out
    assert out.split()[1] == "0", out


# ------------------------------------------------------------------------------------------------------------------
# namespaces and networks
# ------------------------------------------------------------------------------------------------------------------


def test_pid_host_mode(podman: Podman) -> None:
    host_init = Path("/proc/1/comm").read_text()
    out = sh(podman, "cat /proc/1/comm; readlink /proc/self/ns/pid", "--pid", "host")
    assert out == host_init + os.readlink("/proc/self/ns/pid") + "\n"
    out = run(podman, cmd=["cat", "/proc/1/comm"]).stdout
    assert out == "cat\n"


def test_network_host_mode(podman: Podman) -> None:
    out = sh(podman, "readlink /proc/self/ns/net", network="host")
    assert out.strip() == os.readlink("/proc/self/ns/net")


def test_ipc_host_mode(podman: Podman) -> None:
    out = sh(podman, "readlink /proc/self/ns/ipc", "--ipc", "host")
    assert out.strip() == os.readlink("/proc/self/ns/ipc")
    assert sh(podman, "readlink /proc/self/ns/ipc").strip() != os.readlink("/proc/self/ns/ipc")


def test_network_none_has_only_loopback(podman: Podman) -> None:
    out = sh(podman, "ip -o link; readlink /proc/self/ns/net")
    links = [line.split(":")[1].strip() for line in out.splitlines() if ":" in line and "net:[" not in line]
    assert links == ["lo"], out
    assert out.splitlines()[-1] != os.readlink("/proc/self/ns/net")


def test_bridge_network(podman: Podman) -> None:
    out = sh(podman, "ip -4 -o addr show eth0; ip route", network=Podman.network)
    prefix = "10.231.77."
    assert f"inet {prefix}" in out, out
    assert f"default via {prefix}1" in out, out


def test_sysctls(podman: Podman) -> None:
    out = sh(
        podman,
        "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start",
        "--sysctl",
        "kernel.shm_rmid_forced=1",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=42",
    )
    assert out == "1\n42\n"


@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="no /dev/kvm on this host")
def test_devices(podman: Podman) -> None:
    st = os.stat("/dev/kvm")
    out = sh(podman, "stat -c '%F %t %T' /dev/vm0; exec 3</dev/vm0 && echo opened", "--device", "/dev/kvm:/dev/vm0")
    assert out == f"character special file {os.major(st.st_rdev):x} {os.minor(st.st_rdev):x}\nopened\n"
    # the device cgroup refuses a node the container was not given, even one it can create
    out = sh(
        podman,
        f"mknod /tmp/kvm c {os.major(st.st_rdev)} {os.minor(st.st_rdev)} && (exec 3</tmp/kvm) 2>&1; echo rc=$?",
        "--cap-add",
        "MKNOD",
    )
    assert "Operation not permitted" in out and "rc=0" not in out, out


def test_uid_gid_maps(podman: Podman) -> None:
    opts = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"]
    out = sh(podman, "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/f && stat -c %u /tmp/f", *opts)
    assert out.split() == ["0", "100000", "65536", "0", "100000", "65536", "0", "0"], out
    with detached(podman, *opts, cmd=["sh", "-c", TRAP_LOOP]) as name:
        status = Path(f"/proc/{host_pid(podman, name)}/status").read_text()
        assert status_field(status, "Uid").split()[0] == "100000"
        assert status_field(status, "Gid").split()[0] == "100000"


def test_init(podman: Podman) -> None:
    out = sh(podman, "cat /proc/1/comm; echo $$", "--init")
    assert out.split()[0] == "podman-init" and out.split()[1] != "1", out  # catatonit, bind-mounted by Podman
    # the init forwards signals: podman stop ends the trapping shell with its own status
    with detached(podman, "--init", cmd=["sh", "-c", TRAP_LOOP]) as name:
        p = podman("stop", "-t", "10", name)
        assert p.returncode == 0, show(p)
        assert inspect(podman, name, "{{.State.ExitCode}}") == "3"
        assert "got-term" in podman("logs", name).stdout


# ------------------------------------------------------------------------------------------------------------------
# detached containers: exec, pause/unpause, stop, kill, restart, wait
# ------------------------------------------------------------------------------------------------------------------


def test_detached_exec(podman: Podman) -> None:
    with detached(podman, "-e", "FROM_RUN=1", cmd=["sh", "-c", TRAP_LOOP]) as name:
        assert inspect(podman, name, "{{.State.Status}}") == "running"
        p = podman("exec", name, "sh", "-c", "echo hi; echo $FROM_RUN")
        assert p.returncode == 0 and p.stdout == "hi\n1\n", show(p)
        p = podman("exec", name, "sh", "-c", "exit 5")
        assert p.returncode == 5, show(p)
        p = podman(
            "exec",
            "--user",
            "1:1",
            "--workdir",
            "/tmp",
            "--env",
            "A=b",
            name,
            "sh",
            "-c",
            'id -u; id -g; pwd; echo "$A"',
        )
        assert p.returncode == 0 and p.stdout == "1\n1\n/tmp\nb\n", show(p)
        p = podman("exec", "-i", name, "cat", input="through stdin\n")
        assert p.returncode == 0 and p.stdout == "through stdin\n", show(p)
        p = podman("exec", name, "/no/such/binary")
        assert p.returncode == 127, show(p)
        # the exec'd process is in the container's pid namespace: its init is the container's shell
        p = podman("exec", name, "cat", "/proc/1/cmdline")
        assert p.returncode == 0 and p.stdout.startswith("sh\0-c\0trap"), show(p)


def test_detached_exec_tty(podman: Podman) -> None:
    with detached(podman, cmd=["sh", "-c", TRAP_LOOP]) as name:
        p = podman("exec", "-t", name, "sh", "-c", "tty; test -t 0 && test -t 1 && echo both-tty")
        assert p.returncode == 0, show(p)
        assert p.stdout.replace("\r", "").splitlines()[-2:] == ["/dev/pts/1", "both-tty"] or "both-tty" in p.stdout, (
            show(p)
        )
        assert "/dev/pts/" in p.stdout


def counter(pid: int) -> str:
    return Path(f"/proc/{pid}/root/tmp/count").read_text()


def test_update_changes_limits_of_a_running_container(podman: Podman) -> None:
    """`podman update` calls `ocipy update --resources FILE ID`: the new limits land in the container's cgroups."""
    with detached(podman, "--memory", "64m", "--cpus", "0.5", cmd=["sh", "-c", TRAP_LOOP]) as name:
        pid = host_pid(podman, name)
        p = podman("update", "--memory", "96m", "--cpus", "0.25", name)
        assert p.returncode == 0, show(p)
        assert host_cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(96 << 20)
        assert host_cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "25000"
        p = podman("exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert p.returncode == 0 and p.stdout.strip() == str(96 << 20), show(p)


def test_pause_unpause(podman: Podman) -> None:
    script = "i=0; echo ready; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"
    with detached(podman, cmd=["sh", "-c", script]) as name:
        pid = host_pid(podman, name)
        cid = inspect(podman, name, "{{.Id}}")
        wait_for(lambda: counter(pid).strip() not in ("", "0"), "counter starts")
        p = podman("pause", name)
        assert p.returncode == 0, show(p)
        assert inspect(podman, name, "{{.State.Status}}") == "paused"
        state = subprocess.run([podman.runtime, "state", cid], capture_output=True, text=True, check=False)
        assert state.returncode == 0 and json.loads(state.stdout)["status"] == "paused", state
        first = counter(pid)
        time.sleep(0.6)
        assert counter(pid) == first, "the paused container kept running"
        p = podman("unpause", name)
        assert p.returncode == 0, show(p)
        assert inspect(podman, name, "{{.State.Status}}") == "running"
        wait_for(lambda: counter(pid) != first, "the unpaused container runs again", timeout=5)


def test_stop_trapping_and_ignoring_containers(podman: Podman) -> None:
    with detached(podman, cmd=["sh", "-c", TRAP_LOOP]) as name:
        t0 = time.monotonic()
        p = podman("stop", "-t", "20", name)
        assert p.returncode == 0, show(p)
        assert time.monotonic() - t0 < 10, "SIGTERM did not reach the trap"
        assert inspect(podman, name, "{{.State.Status}}") == "exited"
        assert inspect(podman, name, "{{.State.ExitCode}}") == "3"
    # pid 1 without a TERM handler ignores SIGTERM: podman escalates to SIGKILL after the timeout
    with detached(podman, cmd=["sleep", "1000"]) as name:
        p = podman("stop", "-t", "1", name)
        assert p.returncode == 0, show(p)
        assert inspect(podman, name, "{{.State.ExitCode}}") == "137"


def test_stop_with_host_pid_namespace(podman: Podman) -> None:
    # with the host's pid namespace Podman stops with `kill --all`
    with detached(podman, "--pid", "host", cmd=["sh", "-c", "sleep 1000 & " + TRAP_LOOP]) as name:
        pid = host_pid(podman, name)
        p = podman("stop", "-t", "10", name)
        assert p.returncode == 0, show(p)
        assert inspect(podman, name, "{{.State.Status}}") == "exited"
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_kill_with_trapped_signal_and_wait(podman: Podman) -> None:
    script = "trap 'echo got-usr1; exit 42' USR1; echo ready; while :; do sleep 0.1; done"
    with detached(podman, cmd=["sh", "-c", script]) as name:
        p = podman("kill", "--signal", "USR1", name)
        assert p.returncode == 0, show(p)
        p = podman("wait", name, timeout=30)
        assert p.returncode == 0 and p.stdout.strip() == "42", show(p)
        assert "got-usr1" in podman("logs", name).stdout


def test_restart_and_wait(podman: Podman) -> None:
    with detached(podman, cmd=["sh", "-c", TRAP_LOOP]) as name:
        pid = host_pid(podman, name)
        p = podman("restart", "-t", "10", name)
        assert p.returncode == 0, show(p)
        assert inspect(podman, name, "{{.State.Status}}") == "running"
        assert host_pid(podman, name) != pid
        wait_for(lambda: podman("logs", name).stdout.count("ready") == 2, "restarted container printed ready")
        assert "got-term" in podman("logs", name).stdout
        p = podman("kill", "--signal", "TERM", name)
        assert p.returncode == 0, show(p)
        p = podman("wait", name, timeout=30)
        assert p.returncode == 0 and p.stdout.strip() == "3", show(p)


def test_restart_policy_on_failure(podman: Podman) -> None:
    name = "t-" + uuid.uuid4().hex[:12]
    try:
        p = podman(
            "run",
            "--name",
            name,
            "--network",
            "none",
            "--restart",
            "on-failure:2",
            IMAGE,
            "sh",
            "-c",
            "echo run; exit 7",
        )
        assert p.returncode == 7, show(p)
        wait_for(lambda: podman("logs", name).stdout.count("run") == 3, "two restarts", timeout=30)
        wait_for(lambda: inspect(podman, name, "{{.State.Status}}") == "exited", "final exit", timeout=30)
        assert inspect(podman, name, "{{.RestartCount}}") == "2"
    finally:
        podman("rm", "-f", "-t", "0", name)


# ------------------------------------------------------------------------------------------------------------------
# terminals and stdin
# ------------------------------------------------------------------------------------------------------------------


def test_tty(podman: Podman) -> None:
    p = run(podman, "-t", cmd=["sh", "-c", "tty; test -t 0 && test -t 1 && echo both-tty; exit 4"], code=4)
    assert p.stdout.replace("\r\n", "\n") == "/dev/pts/0\nboth-tty\n", show(p)


def test_interactive_tty(podman: Podman) -> None:
    """`podman run -it` on a real terminal: what is typed reaches the shell, its output and exit status return."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        podman.argv("run", "--rm", "-it", "--network", "none", IMAGE, "sh"),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=podman.env,
        start_new_session=True,
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
                except OSError:  # EIO: every holder of the slave is gone
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
    assert b"/dev/pts/0" in output, output


def test_stdin_pipe(podman: Podman) -> None:
    p = run(podman, "-i", cmd=["cat"], input="line one\nline two\n")
    assert p.stdout == "line one\nline two\n"
    data = "x" * 200_000
    p = run(podman, "-i", cmd=["wc", "-c"], input=data)
    assert p.stdout.strip() == str(len(data))
    # without -i the container's stdin is empty
    p = run(podman, cmd=["cat"], input="ignored\n")
    assert p.stdout == ""


# ------------------------------------------------------------------------------------------------------------------
# concurrency
# ------------------------------------------------------------------------------------------------------------------


def test_eight_runs_in_parallel(podman: Podman) -> None:
    def one(i: int) -> subprocess.CompletedProcess[str]:
        return podman(
            "run",
            "--rm",
            "--network",
            "none",
            "--hostname",
            f"par{i}",
            IMAGE,
            "sh",
            "-c",
            f"sleep 0.5; echo $(hostname) {i}; exit {i}",
            timeout=120,
        )

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    for i, p in enumerate(results):
        assert p.returncode == i, show(p)
        assert p.stdout == f"par{i} {i}\n", show(p)
