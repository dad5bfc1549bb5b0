"""Attacks on the runtime, really attempted from inside a container or with a hostile bundle; each test checks that
the attack fails and that the host is unchanged. docs/security.md maps each to its defence.

Every container is force-deleted by id and every process the tests start is killed by pid (the `rt`/`procs`
fixtures); temp dirs are removed by pytest.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ocipy_security_common as c  # loaded by conftest.py
import pytest

h = c.h
pytestmark = h.pytestmark()

import ocipy
from ocipy import _shim_c  # noqa: F401

SHIM_SO = next(Path(ocipy.__file__).parent.glob("_shim_c*.so"))


def host_dir(tmp_path: Path, name: str = "host-target") -> Path:
    """A host directory outside every bundle, with one marker file, that attacks try to reach."""
    d = tmp_path / name
    d.mkdir()
    (d / "marker").write_text("host\n")
    return d


def dir_snapshot(path: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = f"{st.st_mode:o}:{st.st_size}:{st.st_mtime_ns}"
    return out


def escape_link(target: Path) -> str:
    """A relative symlink text that climbs far above any rootfs and then descends to `target` on the host."""
    return "../" * 40 + str(target).lstrip("/")


# ----------------------------------------------------------------------------------------------------------------
# CVE-2019-5736: overwriting a host executable through /proc/PID/exe
# ----------------------------------------------------------------------------------------------------------------


def test_cve_2019_5736_init_exe_cannot_be_reached_or_written(rt: Any, tmp_path: Path) -> None:
    """Container A (the attacker) shares its pid namespace with container B, whose ocipy-init waits inside the
    container's namespaces for `start`. With the same uid and capabilities only the init's non-dumpable state stops A
    from opening /proc/B/exe; the exe itself is a sealed memfd, never a host file."""
    digests = {p: c.host_file_digest(p) for p in (sys.executable, SHIM_SO)}
    attacker = h.make_bundle(tmp_path / "a")
    attacker.sh(
        "while [ ! -s /go ]; do sleep 0.05; done; t=$(cat /go); "
        "readlink /proc/$t/exe >/dev/null 2>&1; echo readlink=$?; "
        "( echo pwned >> /proc/$t/exe ) 2>/dev/null; echo write=$?; "
        "cat /proc/$t/environ >/dev/null 2>&1; echo environ=$?; "
        "readlink /proc/$t/cwd >/dev/null 2>&1; echo cwd=$?"
    )
    victim = h.make_bundle(tmp_path / "b")
    with h.subreaper():
        a_id, a_res = rt.create_ok(attacker)
        a_pid = rt.pid(a_id)
        victim.set_namespace("pid", f"/proc/{a_pid}/ns/pid")
        b_id, _ = rt.create_ok(victim)
        b_pid = rt.pid(b_id)
        assert rt.status(b_id) == "created"
        # the waiting init, seen from the host: a sealed memfd, not writable even for host root
        exe = os.readlink(f"/proc/{b_pid}/exe")
        assert exe.startswith("/memfd:"), exe
        with pytest.raises(OSError):
            fd = os.open(f"/proc/{b_pid}/exe", os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b"pwned")
            finally:
                os.close(fd)
        nspid = h.status_field(Path(f"/proc/{b_pid}/status").read_text(), "NSpid").split()[-1]
        rt.start(a_id).ok()
        (attacker.rootfs / "go").write_text(nspid)
        assert h.wait_until(lambda: "cwd=" in a_res.out, timeout=20), a_res.describe()
        # (B's init dies with A: A's sh is the init of the shared pid namespace)
    out = dict(line.split("=", 1) for line in a_res.out.split())
    assert out == {"readlink": "1", "write": "1", "environ": "1", "cwd": "1"}, a_res.out
    assert {p: c.host_file_digest(p) for p in (sys.executable, SHIM_SO)} == digests


# ----------------------------------------------------------------------------------------------------------------
# CVE-2024-21626: a working directory or fd leaked from the host
# ----------------------------------------------------------------------------------------------------------------


def test_cve_2024_21626_cwd_through_a_preserved_host_fd(rt: Any, bundle: Any, tmp_path: Path) -> None:
    """fd 3 is a host directory handed over with --preserve-fds; cwd /proc/self/fd/3 would start the process outside
    the root. create must fail and nothing may be written into the host directory."""
    target = host_dir(tmp_path)
    before = dir_snapshot(target)
    bundle.process["cwd"] = "/proc/self/fd/3"
    bundle.sh("echo pwned > escaped; echo ESCAPED")
    dfd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with h.subreaper():
            res = rt.run(bundle, "--preserve-fds", "1", shell_prefix=h.fd_wrapper({3: dfd}), pass_fds=(dfd,))
    finally:
        os.close(dfd)
    assert res.returncode != 0 and "ESCAPED" not in res.out, res.describe()
    assert "Traceback" not in res.err
    assert dir_snapshot(target) == before


def test_cve_2024_21626_caller_fds_never_reach_the_container(rt: Any, bundle: Any, tmp_path: Path) -> None:
    """containerd hands the runtime a socket on fd 3 and people leak directory fds: none may reach the container,
    neither as an open fd nor as a way out through /proc/self/fd."""
    target = host_dir(tmp_path)
    before = dir_snapshot(target)
    a, b = socket.socketpair()
    dfd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        bundle.sh(
            "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; "
            "for n in 3 4 5 6 7 8 9; do cd /proc/self/fd/$n 2>/dev/null && echo ESCAPED$n && echo x > pwned; done; "
            "echo done"
        )
        mapping = {3: a.fileno(), 4: dfd}
        res = rt.run(bundle, shell_prefix=h.fd_wrapper(mapping), pass_fds=(a.fileno(), dfd))
    finally:
        os.close(dfd)
        a.close()
        b.close()
    res.ok()
    lines = res.out.splitlines()
    # ls's own directory fd is the only one above 2
    assert [int(x) for x in lines[0].split()][:3] == [0, 1, 2] and len(lines[0].split()) <= 4, res.out
    assert "ESCAPED" not in res.out and lines[-1] == "done"
    assert dir_snapshot(target) == before


# ----------------------------------------------------------------------------------------------------------------
# CVE-2021-30465: mount destinations that are, or are swapped to, symlinks out of the root
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_cve_2021_30465_symlinked_mount_destination(rt: Any, bundle: Any, tmp_path: Path, kind: str) -> None:
    target = host_dir(tmp_path)
    before = dir_snapshot(target)
    (bundle.rootfs / "vol").symlink_to(escape_link(target))
    src = tmp_path / "bind-src"
    src.mkdir()
    (src / "from-bind").write_text("bind\n")
    if kind == "tmpfs":
        bundle.add_mount(destination="/vol/sub", type="tmpfs", source="tmpfs", options=["size=1m"])
    else:
        bundle.add_mount(destination="/vol/sub", type="bind", source=str(src), options=["rbind"])
    bundle.sh(f"touch /vol/sub/pwned; ls {target}/sub 2>/dev/null | tr '\\n' ' '; echo; echo done")
    with h.subreaper():
        res = rt.run(bundle)
    assert "Traceback" not in res.err
    assert dir_snapshot(target) == before, "the mount or its directory landed on the host"
    if res.returncode == 0:
        assert res.out.splitlines()[-1] == "done"
    assert sorted(os.listdir(src)) == ["from-bind", "pwned"] if kind == "bind" and res.returncode == 0 else True


def test_cve_2021_30465_destination_swapped_during_create(rt: Any, bundle: Any, tmp_path: Path) -> None:
    """A thread swaps the mount destination between a directory and a symlink out of the root while containers are
    created (the race of the CVE). No attempt may touch the host directory."""
    target = host_dir(tmp_path)
    before = dir_snapshot(target)
    vol = bundle.rootfs / "vol"
    bundle.add_mount(destination="/vol/sub", type="tmpfs", source="tmpfs", options=["size=1m"])
    bundle.sh("touch /vol/sub/pwned 2>/dev/null; echo done")
    stop = threading.Event()

    def swapper() -> None:
        tmp_link = bundle.rootfs / "vol.link"
        while not stop.is_set():
            try:
                if tmp_link.is_symlink() or tmp_link.exists():
                    tmp_link.unlink()
                tmp_link.symlink_to(escape_link(target))
                if vol.is_dir() and not vol.is_symlink():
                    for child in vol.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            child.rmdir()
                    vol.rmdir()
                tmp_link.rename(vol)  # now a symlink
                time.sleep(0.0005)
                vol.unlink()
                vol.mkdir()
                (vol / "sub").mkdir()
            except OSError:
                pass

    vol.mkdir()
    (vol / "sub").mkdir()
    t = threading.Thread(target=swapper, daemon=True)
    t.start()
    outcomes = []
    try:
        with h.subreaper():
            for _ in range(12):
                res = rt.run(bundle)
                assert "Traceback" not in res.err, res.describe()
                outcomes.append(res.returncode)
                assert dir_snapshot(target) == before, f"host changed after attempt {len(outcomes)}"
    finally:
        stop.set()
        t.join(timeout=10)
    assert dir_snapshot(target) == before


# ----------------------------------------------------------------------------------------------------------------
# CVE-2019-16884 / CVE-2019-19921: a fake /proc to dodge LSM labels or sysctls
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mount",
    [
        {"destination": "/proc", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/proc", "type": "bind", "source": "FAKEPROC", "options": ["rbind"]},
        {"destination": "/proc/sys", "type": "bind", "source": "FAKEPROC", "options": ["rbind"]},
        {"destination": "/proc/self/attr", "type": "tmpfs", "source": "tmpfs"},
    ],
    ids=["tmpfs-on-proc", "bind-on-proc", "bind-on-proc-sys", "tmpfs-on-attr"],
)
def test_fake_proc_mounts_are_refused(rt: Any, bundle: Any, tmp_path: Path, mount: dict[str, Any]) -> None:
    fake = tmp_path / "fakeproc"
    (fake / "sys" / "net" / "ipv4").mkdir(parents=True)
    mount = {k: (str(fake) if v == "FAKEPROC" else v) for k, v in mount.items()}
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/proc"]
    bundle.config["mounts"].insert(0, {"destination": "/proc", "type": "proc", "source": "proc"})
    bundle.add_mount(**mount)
    with h.subreaper():
        _cid, res = rt.create(bundle)
    res.fails("inside /proc")
    assert "Traceback" not in res.err and rt.state_dirs() == []


def test_proc_destination_that_is_a_symlink_is_refused(rt: Any, bundle: Any) -> None:
    """rootfs /proc -> /fakeproc: the procfs mount would land elsewhere and a fake /proc stay in place."""
    fake = bundle.rootfs / "fakeproc" / "sys" / "kernel"
    fake.mkdir(parents=True)
    (bundle.rootfs / "proc").rmdir()
    (bundle.rootfs / "proc").symlink_to("fakeproc")
    with h.subreaper():
        _cid, res = rt.create(bundle)
    assert res.returncode == 1, res.describe()
    assert "Traceback" not in res.err and rt.state_dirs() == []


def test_sysctl_into_a_fake_proc_is_refused(rt: Any, bundle: Any) -> None:
    """No procfs mounted: /proc/sys/... is a plain file of the rootfs. The sysctl must not be 'applied' to it."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/proc"]
    fake = bundle.rootfs / "proc" / "sys" / "net" / "ipv4"
    fake.mkdir(parents=True)
    (fake / "ip_forward").write_text("0\n")
    bundle.linux["readonlyPaths"] = []
    bundle.linux["maskedPaths"] = []
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    with h.subreaper():
        _cid, res = rt.create(bundle)
    res.fails("/linux/sysctl")
    assert (fake / "ip_forward").read_text() == "0\n"
    assert rt.state_dirs() == []


@pytest.mark.parametrize(
    "field,value,phrase",
    [
        ("apparmorProfile", "ocipy-test", "AppArmor is not enabled"),
        ("selinuxLabel", "system_u:system_r:container_t:s0", "SELinux is not enabled"),
        ("mountLabel", "system_u:object_r:container_file_t:s0", "SELinux is not enabled"),
    ],
)
def test_labels_on_a_host_without_the_lsm_are_an_error(
    rt: Any, bundle: Any, field: str, value: str, phrase: str
) -> None:
    from ocipy import lsm

    if field == "apparmorProfile" and lsm.APPARMOR in lsm.active():
        pytest.skip("AppArmor is active here")
    if field != "apparmorProfile" and lsm.SELINUX in lsm.active():
        pytest.skip("SELinux is active here")
    if field == "mountLabel":
        bundle.linux[field] = value
    else:
        bundle.process[field] = value
    _cid, res = rt.create(bundle)
    res.fails(phrase)
    assert rt.state_dirs() == []


def test_label_writes_go_through_the_callers_verified_proc() -> None:
    """With an LSM active the labels are written by OP_WRITE_PROC (verified procfs) before the root switch, so no
    mount the container asks for can stand in for /proc; the mount label becomes a context= option."""
    from ocipy import planfmt
    from ocipy.plan import HostFacts, compile_create
    from ocipy.spec.load import load_config

    cfg = h.default_config(["sh"])
    cfg["process"]["apparmorProfile"] = "ocipy-test"
    cfg["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    cfg["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"
    host = HostFacts(lsms=frozenset({"apparmor", "selinux"}), apparmor_exec="/proc/self/attr/apparmor/exec")
    plan = compile_create(
        load_config(json.dumps(cfg).encode()),
        rootfs="/b/rootfs",
        bundle="/b",
        fifo="/s/exec.fifo",
        console_fd=None,
        extra_fds=0,
        no_pivot=False,
        no_new_keyring=False,
        host=host,
    )
    lines = plan.describe()
    codes = [op[0] for op in plan.ops]
    pivot = codes.index(planfmt.OP_PIVOT_ROOT)
    writes = [(i, line) for i, line in enumerate(lines) if line.startswith("OP_WRITE_PROC")]
    paths = [line.split("s=")[1] for _, line in writes]
    assert any("/proc/self/attr/apparmor/exec" in p and "exec ocipy-test" in p for p in paths)
    assert any("/proc/self/attr/exec" in p and "container_t" in p for p in paths)
    assert any("/proc/self/attr/keycreate" in p for p in paths)
    assert all(i < pivot for i, _ in writes)
    tmpfs = [line for line in lines if "tmpfs on /dev/shm" in line]
    assert tmpfs and 'context="system_u:object_r:container_file_t:s0:c1,c2"' in tmpfs[0]
    proc = [line for line in lines if "proc on /proc" in line]
    assert proc and "context=" not in proc[0]


# ----------------------------------------------------------------------------------------------------------------
# CVE-2025-31133 / CVE-2025-52565: /dev/null, /dev, /dev/console that are symlinks or regular files
# ----------------------------------------------------------------------------------------------------------------


def _core_pattern() -> str:
    return Path("/proc/sys/kernel/core_pattern").read_text()


@pytest.mark.parametrize("kind", ["symlink", "file", "bound-dev-symlink"])
def test_cve_2025_31133_fake_dev_null_cannot_unmask(rt: Any, bundle: Any, tmp_path: Path, kind: str) -> None:
    """The container's /dev/null is a symlink to /proc/sys/kernel/core_pattern (or a plain file): masking with that
    "null" would hand the container a host file. With the rootfs's own /dev the default device setup refuses the
    fake node; with a bind mount on /dev (no device setup, as runc) the masks must still be the host's real 1:3."""
    before = _core_pattern()
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]
    if kind == "bound-dev-symlink":
        fakedev = tmp_path / "fakedev"
        fakedev.mkdir()
        (fakedev / "null").symlink_to("/proc/sys/kernel/core_pattern")
        bundle.add_mount(destination="/dev", type="bind", source=str(fakedev), options=["rbind"])
    else:
        null = bundle.rootfs / "dev" / "null"
        null.parent.mkdir(exist_ok=True)
        if null.exists() or null.is_symlink():
            null.unlink()
        if kind == "symlink":
            null.symlink_to("/proc/sys/kernel/core_pattern")
        else:
            null.write_text("not a device\n")
    bundle.linux["maskedPaths"] = ["/proc/timer_list", "/proc/kcore"]
    bundle.sh(
        "stat -c '%F %t:%T' /proc/timer_list; (printf '|/ocipy-pwned %%p' > /proc/timer_list) 2>/dev/null; echo done"
    )
    try:
        with h.subreaper():
            res = rt.run(bundle)
        assert "Traceback" not in res.err
        if kind == "bound-dev-symlink":
            res.ok()
        if res.returncode == 0:
            assert res.out.splitlines()[0] == "character special file 1:3", res.out
    finally:
        after = _core_pattern()
        if after != before:
            Path("/proc/sys/kernel/core_pattern").write_text(before)
    assert after == before, "the host's core_pattern was changed from inside the container"


@pytest.mark.parametrize("with_tmpfs", [True, False], ids=["tmpfs-on-dev", "rootfs-dev"])
def test_cve_2025_dev_symlink_out_of_root(rt: Any, bundle: Any, tmp_path: Path, with_tmpfs: bool) -> None:
    """/dev is a symlink climbing out of the root: devices, symlinks and the tmpfs must stay inside."""
    target = host_dir(tmp_path)
    before = dir_snapshot(target)
    if not with_tmpfs:
        bundle.config["mounts"] = [m for m in bundle.config["mounts"] if not m["destination"].startswith("/dev")]
    dev = bundle.rootfs / "dev"
    subprocess.run(["rm", "-rf", str(dev)], check=True)
    dev.symlink_to(escape_link(target))
    bundle.sh("stat -c '%F %t:%T' /dev/null; echo done")
    with h.subreaper():
        res = rt.run(bundle)
    assert "Traceback" not in res.err
    assert dir_snapshot(target) == before, "device setup escaped the root"


@pytest.mark.parametrize("kind", ["symlink-to-proc", "symlink-out", "file"])
def test_cve_2025_52565_dev_console(rt: Any, bundle: Any, tmp_path: Path, kind: str) -> None:
    """The rootfs's /dev/console is a symlink (to a procfs file, or out of the root) or a regular file: the pty must
    be mounted on /dev/console itself in the container, never through the link."""
    target = host_dir(tmp_path)
    before = dir_snapshot(target)
    core_before = _core_pattern()
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]
    console = bundle.rootfs / "dev" / "console"
    console.parent.mkdir(exist_ok=True)
    if console.exists() or console.is_symlink():
        console.unlink()
    if kind == "symlink-to-proc":
        console.symlink_to("/proc/sys/kernel/core_pattern")
    elif kind == "symlink-out":
        console.symlink_to(escape_link(target / "marker"))
    else:
        console.write_text("plain\n")
    bundle.process["terminal"] = True
    bundle.sh(
        "stat -f -c %T /proc/sys/kernel/core_pattern; (printf '|/ocipy-pwned' > /dev/console) 2>/dev/null; echo done"
    )
    d = tempfile.mkdtemp(prefix="sec-cs-", dir="/tmp")
    path = os.path.join(d, "console.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1)
    out = ""
    try:
        with h.subreaper():
            cid, res = rt.create(bundle, None, "--console-socket", path)
            assert "Traceback" not in res.err
            if res.returncode == 0:
                _msg, fds = h.recv_console(sock)
                try:
                    rt.start(cid).ok()
                    out = h.read_until_eof(fds[0], timeout=15).decode(errors="replace").replace("\r\n", "\n")
                finally:
                    for fd in fds:
                        os.close(fd)
                assert rt.wait_status(cid, "stopped")
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(d)
        core_after = _core_pattern()
        if core_after != core_before:
            Path("/proc/sys/kernel/core_pattern").write_text(core_before)
    assert core_after == core_before
    assert dir_snapshot(target) == before
    if out:
        assert out.splitlines()[0] == "proc", out


# ----------------------------------------------------------------------------------------------------------------
# capabilities and dumpability
# ----------------------------------------------------------------------------------------------------------------


def test_inheritable_capabilities_only_when_asked(rt: Any, bundle: Any, tmp_path: Path) -> None:
    """The runtime itself is started with every capability inheritable (setpriv); the container gets none unless
    the config lists them."""
    if not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("setpriv (util-linux) missing")
    bundle.sh("grep -E '^Cap(Inh|Amb):' /proc/self/status")
    # every capability this host's bounding set has (CAP_SYS_RESOURCE is missing here) made inheritable
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    bset = int(h.status_field(Path("/proc/self/status").read_text(), "CapBnd"), 16)
    names = [n[4:].lower() for n, bit in h.CAP_NUMBERS.items() if bit <= last and bset >> bit & 1]
    prefix = f'/usr/bin/setpriv --inh-caps={",".join("+" + n for n in names)} -- "$@"; exit $?; '
    res = rt.run(bundle, shell_prefix=prefix + "#").ok()
    fields = dict(line.split(":\t") for line in res.out.splitlines())
    assert fields == {"CapInh": "0000000000000000", "CapAmb": "0000000000000000"}, res.out
    other = h.make_bundle(tmp_path / "asked")
    other.process["capabilities"]["inheritable"] = ["CAP_KILL"]
    other.sh("grep -E '^CapInh:' /proc/self/status")
    res = rt.run(other, shell_prefix=prefix + "#").ok()
    assert res.out.split() == ["CapInh:", f"{1 << 5:016x}"]


def test_waiting_init_is_not_dumpable(rt: Any, bundle: Any) -> None:
    """A root process with the same capabilities as the waiting init may open its /proc/PID/exe only if the init is
    dumpable; the same probe against the started (exec'ed, hence dumpable) container process is the control."""
    if not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("setpriv (util-linux) missing")
    caps = "-all," + ",".join("+" + name[4:].lower() for name in h.DEFAULT_CAPS)
    bundle.args("sleep", "30")

    def peek(pid: int) -> subprocess.CompletedProcess[bytes]:
        argv = ["/usr/bin/setpriv", f"--bounding-set={caps}", "--inh-caps=-all", "readlink", f"/proc/{pid}/exe"]
        return subprocess.run(argv, check=False, capture_output=True, timeout=10)

    with h.subreaper():
        cid, _ = rt.create_ok(bundle)
        pid = rt.pid(cid)
        res = peek(pid)
        assert res.returncode != 0, res
        rt.start(cid).ok()
        assert h.wait_until(lambda: "sleep" in h.cmdline(pid))
        assert peek(pid).returncode == 0  # control: the probe itself works on a dumpable process
        rt.kill(cid, "KILL")


# ----------------------------------------------------------------------------------------------------------------
# hostile ids, state roots and root filesystems
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cid", ["../x", "a/b", "", ".", "..", "x" * 2000, "a\nb", "/abs", "x/"])
def test_hostile_container_ids(rt: Any, bundle: Any, tmp_path: Path, cid: str) -> None:
    outside = sorted(os.listdir(tmp_path))
    bundle.write()
    res = rt.call("create", "--bundle", str(bundle.path), "--", cid) if cid.startswith("-") else None
    if res is None:
        res = rt.call("create", "--bundle", str(bundle.path), cid)
    assert res.returncode != 0, res.describe()
    assert "Traceback" not in res.err
    assert rt.state_dirs() == []
    assert sorted(os.listdir(tmp_path)) == outside
    for verb in (["state"], ["kill"], ["delete"], ["delete", "--force"], ["start"]):
        r = rt.call(*verb, cid)
        assert "Traceback" not in r.err, r.describe()
    assert sorted(os.listdir(tmp_path)) == outside


@pytest.mark.parametrize("kind", ["file", "relative", "under-a-file"])
def test_hostile_state_roots(bundle: Any, tmp_path: Path, kind: str) -> None:
    """--root that is a regular file, relative, or below a file: a clean error or a container in the right place."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    if kind == "file":
        root = tmp_path / "rootfile"
        root.write_text("x")
    elif kind == "under-a-file":
        (tmp_path / "afile").write_text("x")
        root = tmp_path / "afile" / "root"
    else:
        root = Path("rel-root")
    bundle.write()
    cid = f"hostile-root-{kind}"
    base = [*h.runtime_argv(), "--root", str(root)]
    out, err = tmp_path / "out", tmp_path / "err"

    def call(*args: str) -> int:
        with open(out, "wb") as fo, open(err, "wb") as fe:
            return subprocess.run(
                [*base, *args],
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                cwd=workdir,
                env=h.runtime_env(),
                timeout=30,
            ).returncode

    with h.subreaper():
        try:
            rc = call("create", "--bundle", str(bundle.path), cid)
            assert "Traceback" not in err.read_text(), err.read_text()
            if kind == "relative":
                assert rc == 0 and (workdir / "rel-root" / cid).is_dir(), err.read_text()
            else:
                assert rc == 1 and err.read_text().strip(), err.read_text()
            for verb in (["state", cid], ["list"], ["kill", cid], ["start", cid]):
                call(*verb)
                assert "Traceback" not in err.read_text(), (verb, err.read_text())
        finally:
            call("delete", "--force", cid)
            h.reap_children()
    if kind == "file":
        assert root.read_text() == "x"


def test_state_dir_symlinked_elsewhere_is_not_followed(rt: Any, procs: Any, tmp_path: Path) -> None:
    """<root>/<id> is a symlink to a host directory whose state.json names a host process: no verb may remove or
    change the directory or signal the process."""
    victim = procs.spawn(["sleep", "60"])
    target = host_dir(tmp_path)
    (target / "state.json").write_text(json.dumps({"id": "evil", "pid": victim.pid, "bundle": "/", "rootfs": "/"}))
    before = dir_snapshot(target)
    rt.root.mkdir(parents=True, exist_ok=True)
    (rt.root / "evil").symlink_to(target)
    for verb in (["state", "evil"], ["list"], ["kill", "evil", "KILL"], ["start", "evil"], ["delete", "evil"]):
        res = rt.call(*verb)
        assert "Traceback" not in res.err, res.describe()
    res = rt.call("delete", "--force", "evil")
    assert "Traceback" not in res.err, res.describe()
    assert dir_snapshot(target) == before
    assert victim.poll() is None, "a host process named by a planted state.json was signalled"


@pytest.mark.parametrize("target", ["/", "rootfs-real"])
def test_rootfs_that_is_a_symlink_is_refused(rt: Any, bundle: Any, target: str) -> None:
    if target == "rootfs-real":
        (bundle.path / "rootfs").rename(bundle.path / "rootfs-real")
    else:
        subprocess.run(["rm", "-rf", str(bundle.path / "rootfs")], check=True)
    (bundle.path / "rootfs").symlink_to(target)
    bundle.sh("touch /pwned-by-ocipy-test; echo ran")
    with h.subreaper():
        _cid, res = rt.create(bundle)
    res.fails("symlink")
    assert not os.path.exists("/pwned-by-ocipy-test")
    assert rt.state_dirs() == []
