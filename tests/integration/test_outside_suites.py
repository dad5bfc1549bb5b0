"""What outside suites (runtime-tools, engine scenarios run beside runc 1.5.1) found, each met the way a caller
meets it (issue 11). Every test here failed before its fix."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


def _deny(*names: str, nnp: bool) -> dict:
    """A profile allowing everything but `names` (EPERM): an older allow-list that lacks newer syscalls behaves the
    same for them."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": list(names), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


# -- a seccomp profile without the syscalls the runtime itself needs -----------------------------------------------


@pytest.mark.parametrize("nnp", [False, True])
def test_profile_without_close_range_runs(rt, bundle, nnp):
    """The runtime-tools default profile lacks close_range: the init used it after loading the filter and died."""
    bundle.process["noNewPrivileges"] = nnp
    bundle.linux["seccomp"] = _deny("close_range", nnp=nnp)
    bundle.sh("echo ran")
    res = rt.run(bundle)
    assert res.returncode == 0 and res.out == "ran\n", res.describe()


def test_nnp_profile_only_execve_after_the_filter(rt, bundle):
    """With noNewPrivileges the filter is loaded last: a profile may deny what waiting for `start` needs."""
    bundle.process["noNewPrivileges"] = True
    bundle.linux["seccomp"] = _deny("close_range", "fcntl", "poll", "ppoll", "rt_sigaction", nnp=True)
    bundle.args("echo", "ran")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped")
    res = rt.run(bundle)
    assert res.returncode == 0 and res.out == "ran\n", res.describe()


# -- a failure after `create` returned is never silent ----------------------------------------------------------------


def _bad_binary(bundle) -> None:
    bad = bundle.rootfs / "bad"
    bad.write_bytes(b"\x7fELF-not-really\x00\x01\x02")
    bad.chmod(0o755)
    bundle.args("/bad")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_exec_failure_after_create_is_one_line_on_stderr_and_in_the_log(rt, bundle, tmp_path, fmt):
    _bad_binary(bundle)
    log = tmp_path / "ocipy.log"
    bundle.write()
    cid = rt.new_id("late")
    created = rt.call("--log", str(log), "--log-format", fmt, "create", "--bundle", str(bundle.path), cid).ok()
    rt.remember(cid)
    rt.call("--log", str(log), "--log-format", fmt, "start", cid).ok()
    assert rt.wait_status(cid, "stopped")
    # the container's stderr is the one create was given: the init writes there itself
    assert h.wait_until(lambda: "exec failed" in created.err, 5), created.describe()
    lines = [ln for ln in created.err.splitlines() if ln.strip()]
    assert lines == ["ocipy: exec failed: /process/args (exec /bad): /bad: exec format error"], created.describe()
    text = log.read_text()
    if fmt == "json":
        entries = [json.loads(ln) for ln in text.splitlines()]
        err = [e for e in entries if e["level"] == "error"]
        assert [e["msg"] for e in err] == ["exec failed: /process/args (exec /bad): /bad: exec format error"]
        assert err[0]["time"].endswith("Z") and err[0]["time"][:2] == "20"
    else:
        assert 'level=error msg="exec failed: /process/args (exec /bad): /bad: exec format error"' in text, text


def test_run_reports_a_late_exec_failure(rt, bundle):
    _bad_binary(bundle)
    res = rt.run(bundle)
    assert res.returncode == 1, res.describe()
    assert "exec failed: /process/args (exec /bad): /bad: exec format error" in res.err, res.describe()


def test_late_failure_leaves_the_container_stopped_not_hanging(rt, bundle):
    _bad_binary(bundle)
    cid, _ = rt.create_ok(bundle)
    t0 = time.monotonic()
    rt.start(cid).ok()
    assert rt.wait_status(cid, "stopped", timeout=5), time.monotonic() - t0
    rt.delete(cid).ok()


# -- a container with no namespace of its own --------------------------------------------------------------------


def test_container_without_a_mount_namespace_runs_in_the_callers(rt, bundle, tmp_path):
    """config-linux.md: a namespace type that is absent is inherited from the runtime; runc runs a config with no
    namespaces at all (runtime-tools linux_ns_itype). Nothing is left mounted on the host."""
    bundle.config["mounts"] = []
    bundle.linux["namespaces"] = []
    bundle.linux["maskedPaths"] = []
    bundle.linux["readonlyPaths"] = []
    bundle.config.pop("hostname", None)
    bundle.sh("ls /")
    out = rt.run(bundle).ok().out.split()
    assert "bin" in out and "etc" in out, out  # the busybox rootfs is its root (a chroot)
    # nothing the config did not ask for is mounted in the caller's namespace, not even the rootfs on itself
    with open("/proc/self/mountinfo") as f:
        assert str(bundle.path) not in f.read()


def test_container_without_a_mount_namespace_shares_the_callers(rt, bundle, tmp_path):
    bundle.config["mounts"] = []
    bundle.linux["namespaces"] = []
    bundle.linux["maskedPaths"] = []
    bundle.linux["readonlyPaths"] = []
    bundle.config.pop("hostname", None)
    bundle.args("sleep", "30")
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    for ns in ("mnt", "pid", "net", "uts", "ipc"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}"), ns
    assert os.readlink(f"/proc/{pid}/root") == str(bundle.rootfs)
    rt.delete(cid, "--force").ok()


# -- the loopback device of a new network namespace ------------------------------------------------------------------


def test_loopback_is_up_in_a_new_network_namespace(rt, bundle):
    out = rt.probe(bundle, "cat /sys/class/net/lo/flags")
    assert int(out.strip(), 16) & 0x1, f"lo is down: flags {out.strip()}"  # IFF_UP


def test_loopback_is_up_for_exec_too(rt, bundle):
    bundle.args("sleep", "30")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    out = rt.call("exec", cid, "cat", "/sys/class/net/lo/flags").ok().out
    assert int(out.strip(), 16) & 0x1, out


# -- hooks --------------------------------------------------------------------------------------------------------


def test_failing_poststart_hook_destroys_the_container(rt, bundle, tmp_path):
    """runtime.md lifecycle step 9: stop the container and continue at step 12 (destroy), then 13 (poststop)."""
    marker = tmp_path / "poststop-ran"
    bundle.config["hooks"] = {
        "poststart": [{"path": "/bin/false"}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}],
    }
    bundle.args("sleep", "30")
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    assert h.cgroup_dirs_named(cid), "create made no cgroup: the test would prove nothing"
    rt.start(cid).fails("poststart")
    assert h.wait_until(lambda: not h.pid_alive(pid), 5), "the container must be stopped"
    rt.call("state", cid).fails("does not exist")
    assert rt.state_dirs() == []
    assert marker.exists(), "the poststop hooks must run"
    assert h.cgroup_dirs_named(cid) == []


def test_hooks_without_env_get_the_runtime_environment(rt, bundle, tmp_path):
    """runc runs a hook that has no `env` with its own environment (config.md leaves it open; callers rely on it:
    nvidia-container-toolkit and Podman's hooks read PATH)."""
    out = tmp_path / "hook-env"
    bundle.config["hooks"] = {
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"env > {out}"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"env > {out}.poststop"], "env": ["ONLY=this"]}],
    }
    bundle.args("true")
    rt.run(bundle, env={"IT_RUNTIME_ENV": "from-the-caller"}).ok()
    seen = out.read_text().splitlines()
    assert "IT_RUNTIME_ENV=from-the-caller" in seen, seen
    assert any(ln.startswith("PATH=") for ln in seen), seen
    # a hook with `env` gets exactly that
    exact = (tmp_path / "hook-env.poststop").read_text().split()
    assert "ONLY=this" in exact and not [e for e in exact if e.startswith("IT_RUNTIME_ENV")], exact


# -- sysctl policy ------------------------------------------------------------------------------------------------


def test_sysctl_kernel_hostname_is_refused_naming_the_field(rt, bundle):
    bundle.linux["sysctl"] = {"kernel.hostname": "other"}
    bundle.args("true")
    _cid, res = rt.create(bundle)
    res.fails("/linux/sysctl/kernel.hostname", "/hostname")
    assert rt.state_dirs() == []


def test_sysctl_kernel_domainname_equal_to_domainname_is_accepted(rt, bundle):
    bundle.config["domainname"] = "example.test"
    bundle.linux["sysctl"] = {"kernel.domainname": "example.test"}
    assert rt.probe(bundle, "cat /proc/sys/kernel/domainname") == "example.test\n"


def test_sysctl_kernel_domainname_conflicting_names_both_fields(rt, bundle):
    bundle.config["domainname"] = "example.test"
    bundle.linux["sysctl"] = {"kernel.domainname": "other.test"}
    bundle.args("true")
    _cid, res = rt.create(bundle)
    res.fails("/linux/sysctl/kernel.domainname", "/domainname")


# -- mounts ------------------------------------------------------------------------------------------------------


def test_tmpcopyup_copies_what_the_directory_held(rt, bundle):
    """`podman run --tmpfs /etc` sends tmpcopyup: the tmpfs must hold the image's /etc (owners, modes, links)."""
    etc = bundle.rootfs / "etc"
    (etc / "sub").mkdir()
    (etc / "sub" / "deep").write_text("deep\n")
    os.chown(etc / "sub" / "deep", 1234, 5678)
    (etc / "sub" / "deep").chmod(0o604)
    (etc / "link").symlink_to("sub/deep")
    bundle.add_mount(destination="/etc", type="tmpfs", source="tmpfs", options=["nosuid", "tmpcopyup"])
    out = rt.probe(
        bundle,
        "grep -c ' /etc ' /proc/self/mountinfo; cat /etc/link; stat -c '%u %g %a' /etc/sub/deep; "
        "test -s /etc/passwd && echo passwd; echo new > /etc/written && echo writable",
    )
    assert out.split("\n")[:5] == ["1", "deep", "1234 5678 604", "passwd", "writable"], out
    assert not (etc / "written").exists(), "the write must land in the tmpfs, not the rootfs"


def test_tmpfs_without_mode_keeps_the_mount_points_mode(rt, bundle):
    d = bundle.rootfs / "sticky"
    d.mkdir()
    d.chmod(0o1770)
    bundle.add_mount(destination="/sticky", type="tmpfs", source="tmpfs", options=["size=1m"])
    bundle.add_mount(destination="/explicit", type="tmpfs", source="tmpfs", options=["mode=0711"])
    (bundle.rootfs / "explicit").mkdir(mode=0o755)
    out = rt.probe(bundle, "stat -c %a /sticky /explicit; grep -c ' /sticky .* tmpfs ' /proc/self/mountinfo")
    assert out.split() == ["1770", "711", "1"], out


@pytest.mark.parametrize(
    "options,where",
    [(["rbind", "no-such-option"], 1), (["bind", "ro", "tmpcopyup"], 2)],
)
def test_mount_option_that_would_be_dropped_is_an_error(rt, bundle, tmp_path, options, where):
    src = tmp_path / "src"
    src.mkdir()
    bundle.add_mount(destination="/mnt/x", type="bind", source=str(src), options=options)
    bundle.args("true")
    n = len(bundle.config["mounts"]) - 1
    _cid, res = rt.create(bundle)
    res.fails(f"/mounts/{n}/options/{where}")
    assert rt.state_dirs() == []


# -- HOME --------------------------------------------------------------------------------------------------------


def _passwd(bundle) -> None:
    (bundle.rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nit:x:1234:1234::/home/it:/bin/sh\n")


@pytest.mark.parametrize("uid,home", [(0, "/root"), (1234, "/home/it"), (4321, "/")])
def test_home_from_the_containers_passwd(rt, bundle, uid, home):
    """runc sets HOME when process.env lacks it: the uid's passwd entry in the container, else "/"."""
    _passwd(bundle)
    bundle.process["user"] = {"uid": uid, "gid": uid}
    bundle.process["env"] = [h.PATH_ENV]
    assert rt.probe(bundle, 'echo "$HOME"') == home + "\n"


def test_home_given_in_env_is_kept(rt, bundle):
    _passwd(bundle)
    bundle.process["env"] = [h.PATH_ENV, "HOME=/custom"]
    assert rt.probe(bundle, 'echo "$HOME"') == "/custom\n"


def test_home_for_exec(rt, bundle):
    _passwd(bundle)
    bundle.process["env"] = [h.PATH_ENV]
    bundle.args("sleep", "30")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert rt.call("exec", "--user", "1234:1234", cid, "sh", "-c", 'echo "$HOME"').ok().out == "/home/it\n"
    assert rt.call("exec", cid, "sh", "-c", 'echo "$HOME"').ok().out == "/root\n"


def test_home_passwd_symlink_cannot_read_the_hosts(rt, bundle):
    """/etc/passwd is read inside the rootfs: a link to the host's /etc/passwd resolves in the container."""
    (bundle.rootfs / "etc" / "passwd").unlink()
    (bundle.rootfs / "etc" / "passwd").symlink_to("/../../../../../../etc/shadow-not-there")
    bundle.process["env"] = [h.PATH_ENV]
    assert rt.probe(bundle, 'echo "$HOME"') == "/\n"


# -- foreground run with a terminal ----------------------------------------------------------------------------------


def test_foreground_run_with_terminal_allocates_and_proxies_a_pty(rt, bundle, tmp_path):
    """`ocipy spec` then `ocipy run` (terminal: true, no --console-socket), typed at a terminal: runc allocates the
    pty itself and proxies it; ocipy refused."""
    import pty
    import select
    import subprocess

    bundle.process["terminal"] = True
    bundle.sh("tty; stty size; echo ready; read x; echo got:$x; exit 3")
    bundle.write()
    cid = rt.new_id("tty")
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    p = subprocess.Popen(
        rt.argv("run", "--bundle", str(bundle.path), cid),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=h.runtime_env(),
        start_new_session=True,
    )
    os.close(slave)
    out, sent, deadline = b"", False, time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if master in ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
            if not sent and b"ready" in out:
                os.write(master, b"typed\r")
                sent = True
            if p.poll() is not None and master not in ready:
                break
        rc = p.wait(timeout=10)
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    text = out.decode(errors="replace")
    assert rc == 3, text
    assert "/dev/pts/" in text and "33 101" in text and "got:typed" in text, text


def test_foreground_run_with_terminal_and_plain_stdio(rt, bundle):
    """Without a terminal on the caller's side the pty's output still reaches stdout."""
    bundle.process["terminal"] = True
    bundle.sh("tty; echo out")
    res = rt.run(bundle)
    assert res.returncode == 0, res.describe()
    assert "/dev/pts/" in res.out and "out" in res.out, res.describe()


def test_detached_run_with_terminal_still_needs_a_console_socket(rt, bundle):
    bundle.process["terminal"] = True
    bundle.args("true")
    rt.run(bundle, "-d").fails("console-socket")
    assert rt.state_dirs() == []


def test_poststart_hook_sees_running_and_the_pid(rt, bundle, tmp_path):
    """config.md: poststart runs after the process started; its state is `running` with the pid, even when the
    process (here `true`) is already gone by then (runtime-tools hooks_stdin)."""
    out = tmp_path / "poststart.json"
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}"]}]}
    bundle.args("true")
    cid, _ = rt.create_ok(bundle)
    pid = rt.pid(cid)
    rt.start(cid).ok()
    state = json.loads(out.read_text())
    assert state["status"] == "running" and state["pid"] == pid, state


# -- capabilities --------------------------------------------------------------------------------------------------


def test_unknown_capability_is_a_visible_warning(rt, bundle):
    """config.md: a capability that cannot be mapped or granted MUST be logged as a warning (not dropped silently,
    and not an error: runc warns and runs)."""
    bundle.process["capabilities"]["bounding"].append("CAP_NO_SUCH_THING")
    bundle.args("true")
    res = rt.run(bundle)
    assert res.returncode == 0, res.describe()
    assert "warning" in res.err and "/process/capabilities/bounding/3" in res.err, res.describe()
    assert "CAP_NO_SUCH_THING" in res.err, res.describe()


# -- a config without a process --------------------------------------------------------------------------------------


def test_create_without_process_then_start_is_the_error(rt, bundle):
    """config.md: process is OPTIONAL (REQUIRED when start is called); runtime.md: start MUST generate an error if
    process was not set (runtime-tools `start`). runc refuses at create."""
    del bundle.config["process"]
    cid, _ = rt.create_ok(bundle)
    assert rt.status(cid) == "created"
    rt.start(cid).fails("/process")
    assert rt.wait_status(cid, "stopped")
    rt.delete(cid).ok()
    assert rt.state_dirs() == []


def test_profile_denying_getcwd_without_nnp_runs(rt, bundle):
    """runtime-tools linux_seccomp: getcwd denied, no noNewPrivileges: the filter is loaded before the uid change,
    and the cwd check (CVE-2024-21626) needs getcwd, so it is done before the filter (runc fails this)."""
    bundle.process["noNewPrivileges"] = False
    bundle.linux["seccomp"] = _deny("getcwd", nnp=False)
    bundle.process["cwd"] = "/tmp"
    bundle.sh("echo ran; cd /etc; echo $PWD")
    res = rt.run(bundle)
    assert res.returncode == 0 and res.out == "ran\n/etc\n", res.describe()


def test_cwd_only_the_user_can_enter(rt, open_bundle):
    """A cwd that root cannot enter but the process's user can (root of a user namespace, a 0700 dir owned by the
    mapped user) still works: the root attempt is retried with the process's ids."""
    b = open_bundle
    b.set_namespace("user")
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    d = b.rootfs / "home" / "u"
    d.mkdir(parents=True)
    os.chown(d, 101000, 101000)
    d.chmod(0o700)
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["cwd"] = "/home/u"
    b.config["mounts"] = [m for m in b.config["mounts"] if m["type"] not in ("sysfs", "cgroup")]
    assert rt.probe(b, "pwd") == "/home/u\n"


def test_capability_the_runtime_cannot_grant_is_a_warning_not_a_failure(rt, bundle):
    """config.md: runtimes SHOULD NOT fail when a capability cannot be granted (a restricted environment): the
    runtime runs without CAP_NET_RAW in its own bounding set and the config asks for it (runtime-tools
    process_capabilities asks for every capability; this host's root lacks CAP_SYS_RESOURCE)."""
    import shutil

    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")
    for key in ("bounding", "effective", "permitted"):
        bundle.process["capabilities"][key].append("CAP_NET_RAW")
    bundle.sh("grep CapBnd /proc/self/status")
    res = rt.run(bundle, shell_prefix='exec setpriv --bounding-set -net_raw "$@"')
    assert res.returncode == 0, res.describe()
    assert "CAP_NET_RAW cannot be granted" in res.err and "/process/capabilities/bounding/3" in res.err
    bnd = int(res.out.split()[1], 16)
    assert bnd & (1 << 13) == 0 and bnd & (1 << 5), res.out  # no NET_RAW, KILL kept


# -- a memory limit below what the setup needs -----------------------------------------------------------------------


def test_init_oom_killed_during_setup_names_the_memory_limit(rt, bundle):
    bundle.linux["resources"] = {"memory": {"limit": 256 * 1024}}
    bundle.args("true")
    _cid, res = rt.create(bundle)
    res.fails("/linux/resources/memory/limit", "oom")
    assert rt.state_dirs() == []


def test_bind_source_under_a_root_only_directory_with_a_user_namespace(rt, open_bundle, tmp_path):
    """Bind sources are resolved as the runtime (host root), before the user namespace: the container's root maps
    to an unprivileged host uid that cannot even look up a path under a 0700 root-owned directory (runc opens the
    sources in the runtime too)."""
    import tempfile

    b = open_bundle
    b.set_namespace("user")
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["mounts"] = [m for m in b.config["mounts"] if m["type"] not in ("sysfs", "cgroup")]
    private = Path(tempfile.mkdtemp(prefix="ocipy-rootonly-"))
    try:
        private.chmod(0o700)
        (private / "vol").mkdir()
        (private / "vol" / "data").write_text("reached\n")
        (private / "vol").chmod(0o755)
        (private / "vol" / "data").chmod(0o644)
        (b.rootfs / "mnt" / "vol").mkdir(parents=True, exist_ok=True)  # the rootfs is host root's: no mkdir inside
        b.add_mount(destination="/mnt/vol", type="bind", source=str(private / "vol"), options=["rbind", "ro"])
        assert rt.probe(b, "cat /mnt/vol/data; grep -c ' /mnt/vol ' /proc/self/mountinfo") == "reached\n1\n"
    finally:
        import shutil

        shutil.rmtree(private, ignore_errors=True)


# -- realtime CPU time on cgroup v1 -------------------------------------------------------------------------------


def test_realtime_runtime_reaches_a_container_under_a_new_parent(rt, bundle):
    """A new cgroup starts with cpu.rt_runtime_us 0 and a child cannot have more than its parent: the budget is
    given to the parents ocipy makes (by default /ocipy), or no container could ever get realtime time."""
    import uuid

    root = "/sys/fs/cgroup/cpu"
    if not os.path.exists(f"{root}/cpu.rt_runtime_us"):
        pytest.skip("no cgroup v1 realtime group scheduling on this host")
    parent = f"ocipy-it-rt-{uuid.uuid4().hex[:8]}"
    bundle.linux["cgroupsPath"] = f"/{parent}/c"
    bundle.linux["resources"] = {"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}
    bundle.args("sleep", "30")
    try:
        cid, res = rt.create(bundle)
        res.ok()
        with open(f"{root}/{parent}/c/cpu.rt_runtime_us") as f:
            assert f.read().strip() == "10000"
        rt.delete(cid, "--force").ok()
    finally:
        for d in (f"{root}/{parent}/c", f"{root}/{parent}"):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        for ctrl in os.listdir("/sys/fs/cgroup"):
            for d in (f"/sys/fs/cgroup/{ctrl}/{parent}/c", f"/sys/fs/cgroup/{ctrl}/{parent}"):
                with contextlib.suppress(OSError):
                    os.rmdir(d)


@pytest.mark.parametrize(
    "prop,tag", [("rprivate", None), ("rshared", "shared"), ("runbindable", "unbindable"), ("rslave", None)]
)
def test_rootfs_propagation_recursive_forms(rt, bundle, prop, tag):
    """containerd's CRI plugin and Docker set the r-forms of rootfsPropagation; runc accepts them."""
    bundle.linux["rootfsPropagation"] = prop
    out = rt.probe(bundle, "awk '$5 == \"/\"' /proc/self/mountinfo")
    fields = out.split(" - ")[0].split()[6:]
    if tag is None:
        assert not [f for f in fields if f.startswith(("shared:", "unbindable"))], out
    else:
        assert any(f.startswith(tag) for f in fields), out


def test_start_container_hook_without_env_gets_the_process_env(rt, bundle, tmp_path):
    """runc gives a startContainer hook (run inside the container) without `env` the container process's env."""
    bundle.process["env"] = [h.PATH_ENV, "IT_PROCESS_VAR=from-process-env"]
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "env > /hook-env"]}]}
    bundle.args("true")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    assert "IT_PROCESS_VAR=from-process-env" in (bundle.rootfs / "hook-env").read_text().split()
