"""The container's filesystem: root, mounts, /dev, masked and read-only paths, hostname, sysctl, personality."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


def inside_mounts(rt, bundle, extra: str = "") -> list:
    out = rt.probe(bundle, f"{extra}cat /proc/self/mountinfo")
    return h.parse_mountinfo(out)


# -- root --------------------------------------------------------------------------------------------------


def test_readonly_root(rt, bundle):
    bundle.config["root"]["readonly"] = True
    out = rt.probe(bundle, "touch /x 2>&1; echo rc=$?; touch /tmp/y 2>&1; echo rc2=$?; cat /proc/self/mountinfo")
    assert "Read-only file system" in out
    assert "rc=1" in out and "rc2=1" in out
    assert "ro" in h.mount_at(h.parse_mountinfo(out), "/").options
    assert not (bundle.rootfs / "x").exists()


def test_writable_root_by_default(rt, bundle):
    rt.probe(bundle, "echo hi > /written-inside")
    assert (bundle.rootfs / "written-inside").read_text() == "hi\n"


@pytest.mark.parametrize("prop,tag", [("shared", "shared"), ("private", None), ("unbindable", "unbindable")])
def test_rootfs_propagation(rt, bundle, prop, tag):
    bundle.linux["rootfsPropagation"] = prop
    root = h.mount_at(inside_mounts(rt, bundle), "/")
    if tag is None:
        assert root.propagation == set(), root
    else:
        assert tag in root.propagation, root


def test_rootfs_propagation_slave_receives_host_mounts(rt, bundle, host_mounts_guard):
    """rootfsPropagation slave: with the rootfs on a shared host mount, the root is its slave (master:N) and a
    mount the host makes under the rootfs after create appears inside."""
    rootfs = str(bundle.rootfs)
    subprocess.run(["mount", "--bind", rootfs, rootfs], check=True, timeout=10)
    host_mounts_guard.append(rootfs)
    subprocess.run(["mount", "--make-shared", rootfs], check=True, timeout=10)
    (bundle.rootfs / "late").mkdir()
    bundle.linux["rootfsPropagation"] = "slave"
    bundle.sh("while [ ! -e /tmp/go ]; do sleep 0.05; done; cat /late/file; cat /proc/self/mountinfo")
    cid, res = rt.create_ok(bundle)
    rt.start(cid).ok()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "it-late", str(bundle.rootfs / "late")], check=True, timeout=10
    )
    host_mounts_guard.append(str(bundle.rootfs / "late"))
    (bundle.rootfs / "late" / "file").write_text("propagated\n")
    (bundle.rootfs / "tmp" / "go").write_text("")
    assert rt.wait_status(cid, "stopped")
    out = res.out
    assert out.startswith("propagated\n"), out
    assert "master" in h.mount_at(h.parse_mountinfo(out), "/").propagation


# -- mount types ---------------------------------------------------------------------------------------------


def test_default_mount_types(rt, bundle):
    mounts = inside_mounts(rt, bundle)
    want = {
        "/proc": "proc",
        "/dev": "tmpfs",
        "/dev/pts": "devpts",
        "/dev/shm": "tmpfs",
        "/dev/mqueue": "mqueue",
        "/sys": "sysfs",
    }
    for dest, fstype in want.items():
        m = h.mount_at(mounts, dest)
        assert m.fstype == fstype, m
    assert {"ro", "nosuid", "nodev", "noexec"} <= h.mount_at(mounts, "/sys").options
    assert {"nosuid", "noexec", "nodev"} <= h.mount_at(mounts, "/dev/shm").options
    assert "nosuid" in h.mount_at(mounts, "/dev").options
    devpts = h.mount_at(mounts, "/dev/pts")
    assert {"gid=5", "mode=620", "ptmxmode=666"} <= devpts.super_options, devpts


def test_proc_is_the_containers(rt, bundle):
    out = rt.probe(bundle, "cat /proc/1/comm; ls /proc | grep -c '^[0-9]'")
    comm, count = out.split()
    assert comm == "sh"
    assert int(count) <= 4


def test_tmpfs_mode_and_size(rt, bundle):
    bundle.add_mount(destination="/mnt/t", type="tmpfs", source="tmpfs", options=["mode=1750", "size=1m"])
    out = rt.probe(bundle, "stat -c %a /mnt/t; df -k /mnt/t | tail -1; cat /proc/self/mountinfo")
    lines = out.splitlines()
    assert lines[0] == "1750"
    assert lines[1].split()[1] == "1024", lines[1]
    m = h.mount_at(h.parse_mountinfo(out), "/mnt/t")
    assert m.fstype == "tmpfs"
    assert {"size=1024k", "mode=1750"} <= m.super_options, m


def test_cgroup_mount(rt, bundle):
    out = rt.probe(
        bundle,
        "ls /sys/fs/cgroup; echo --; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "touch /sys/fs/cgroup/memory/x 2>&1; cat /proc/self/mountinfo",
    )
    listing, rest = out.split("--", 1)
    assert "memory" in listing.split(), listing
    assert rest.split()[0].isdigit(), rest
    assert "Read-only file system" in rest
    mounts = h.parse_mountinfo(rest)
    cg = [m for m in mounts if m.mountpoint.startswith("/sys/fs/cgroup/") and m.fstype in ("cgroup", "cgroup2")]
    assert cg, [m.mountpoint for m in mounts]
    for m in cg:
        assert "ro" in m.options, m
    mem = h.mount_at(mounts, "/sys/fs/cgroup/memory")
    assert mem.fstype == "cgroup" and "memory" in mem.super_options, mem


@pytest.fixture
def host_tree(tmp_path, host_mounts_guard):
    """A host directory with a file and a tmpfs submount holding another file."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "top.txt").write_text("top\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "it-sub", str(src / "sub")], check=True, timeout=10)
    host_mounts_guard.append(str(src / "sub"))
    (src / "sub" / "inner.txt").write_text("inner\n")
    return src


def test_bind_mount_is_not_recursive(rt, bundle, host_tree):
    bundle.add_mount(destination="/mnt/b", type="bind", source=str(host_tree), options=["bind"])
    out = rt.probe(bundle, "cat /mnt/b/top.txt; ls /mnt/b/sub | wc -l")
    assert out.split() == ["top", "0"]


def test_rbind_mount_is_recursive(rt, bundle, host_tree):
    bundle.add_mount(destination="/mnt/b", type="bind", source=str(host_tree), options=["rbind"])
    out = rt.probe(bundle, "cat /mnt/b/top.txt /mnt/b/sub/inner.txt")
    assert out.split() == ["top", "inner"]


def test_bind_mount_without_type(rt, bundle, host_tree):
    # runc accepts a bind mount given only by its options (type omitted), as Docker and Podman write them
    bundle.add_mount(destination="/mnt/b", source=str(host_tree), options=["rbind", "rw"])
    assert rt.probe(bundle, "cat /mnt/b/top.txt").split() == ["top"]


def test_bind_single_file(rt, bundle, tmp_path):
    f = tmp_path / "single.conf"
    f.write_text("one-file\n")
    bundle.add_mount(destination="/etc/single.conf", type="bind", source=str(f), options=["bind", "ro"])
    out = rt.probe(bundle, "cat /etc/single.conf; stat -c %F /etc/single.conf")
    assert out.splitlines() == ["one-file", "regular file"]
    assert f.read_text() == "one-file\n"


def test_bind_ro_is_read_only(rt, bundle, host_tree):
    bundle.add_mount(destination="/mnt/b", type="bind", source=str(host_tree), options=["bind", "ro"])
    out = rt.probe(bundle, "touch /mnt/b/new 2>&1; cat /proc/self/mountinfo")
    assert "Read-only file system" in out
    assert "ro" in h.mount_at(h.parse_mountinfo(out), "/mnt/b").options
    assert not (host_tree / "new").exists()


def test_rro_on_rbind_makes_submounts_read_only(rt, bundle, host_tree):
    bundle.add_mount(destination="/mnt/r", type="bind", source=str(host_tree), options=["rbind", "rro"])
    out = rt.probe(bundle, "touch /mnt/r/sub/new 2>&1; cat /proc/self/mountinfo")
    assert "Read-only file system" in out
    mounts = h.parse_mountinfo(out)
    assert "ro" in h.mount_at(mounts, "/mnt/r").options
    assert "ro" in h.mount_at(mounts, "/mnt/r/sub").options
    assert not (host_tree / "sub" / "new").exists()
    # the host's own submount stays writable
    (host_tree / "sub" / "host-can-write").write_text("x")


def test_overlay_mount(rt, bundle, tmp_path):
    lower, upper, work = (tmp_path / n for n in ("lower", "upper", "work"))
    for d in (lower, upper, work):
        d.mkdir()
    (lower / "from-lower").write_text("L\n")
    bundle.add_mount(
        destination="/mnt/ov",
        type="overlay",
        source="overlay",
        options=[f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}"],
    )
    out = rt.probe(bundle, "cat /mnt/ov/from-lower; echo U > /mnt/ov/new; grep ' /mnt/ov ' /proc/self/mountinfo")
    assert out.splitlines()[0] == "L"
    assert "overlay" in out.splitlines()[1]
    assert (upper / "new").read_text() == "U\n"
    assert not (lower / "new").exists()


@pytest.mark.parametrize(
    "option,flag",
    [
        ("ro", "ro"),
        ("nosuid", "nosuid"),
        ("nodev", "nodev"),
        ("noexec", "noexec"),
        ("noatime", "noatime"),
        ("nodiratime", "nodiratime"),
        ("relatime", "relatime"),
    ],
)
def test_mount_option_flags(rt, bundle, option, flag):
    bundle.add_mount(destination="/mnt/o", type="tmpfs", source="tmpfs", options=[option, "size=1m"])
    m = h.mount_at(inside_mounts(rt, bundle), "/mnt/o")
    assert flag in m.options, m


def test_strictatime_clears_relatime(rt, bundle):
    bundle.add_mount(destination="/mnt/o", type="tmpfs", source="tmpfs", options=["strictatime", "size=1m"])
    m = h.mount_at(inside_mounts(rt, bundle), "/mnt/o")
    assert not ({"relatime", "noatime"} & m.options), m


def test_noexec_mount_refuses_exec(rt, bundle):
    bundle.add_mount(destination="/mnt/x", type="tmpfs", source="tmpfs", options=["noexec", "size=1m"])
    out = rt.probe(bundle, "cp /bin/busybox /mnt/x/bb; /mnt/x/bb true 2>&1; echo rc=$?")
    assert "rc=126" in out or "Permission denied" in out, out


@pytest.mark.parametrize(
    "option,tag",
    [("shared", "shared"), ("private", None), ("unbindable", "unbindable"), ("rshared", "shared"), ("rprivate", None)],
)
def test_mount_propagation_flags(rt, bundle, option, tag):
    bundle.add_mount(destination="/mnt/p", type="tmpfs", source="tmpfs", options=["size=1m", option])
    m = h.mount_at(inside_mounts(rt, bundle), "/mnt/p")
    if tag is None:
        assert m.propagation == set(), m
    else:
        assert tag in m.propagation, m


def test_rslave_bind_receives_host_mounts(rt, bundle, tmp_path, host_mounts_guard):
    """A bind of a host shared mount with rslave sees mounts the host makes after create."""
    src = tmp_path / "shared-src"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "it-shared", str(src)], check=True, timeout=10)
    host_mounts_guard.append(str(src))
    subprocess.run(["mount", "--make-shared", str(src)], check=True, timeout=10)
    (src / "late").mkdir()
    bundle.add_mount(destination="/mnt/s", type="bind", source=str(src), options=["rbind", "rslave"])
    bundle.sh("while [ ! -e /tmp/go ]; do sleep 0.05; done; cat /mnt/s/late/file; grep ' /mnt/s ' /proc/self/mountinfo")
    cid, res = rt.create_ok(bundle)
    rt.start(cid).ok()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "it-late", str(src / "late")], check=True, timeout=10)
    host_mounts_guard.append(str(src / "late"))
    (src / "late" / "file").write_text("propagated\n")
    (bundle.rootfs / "tmp" / "go").write_text("")
    assert rt.wait_status(cid, "stopped")
    lines = res.out.splitlines()
    assert lines and lines[0] == "propagated", res.out
    assert "master:" in res.out, res.out


def test_symlink_destination_stays_inside_root(rt, bundle, tmp_path):
    """CVE-2021-30465 shape: /etc/evil -> /tmp/<host dir>; the bind must land inside the root."""
    host_dir = Path(f"/tmp/ocipy-it-evil-{uuid.uuid4().hex[:8]}")
    assert not host_dir.exists()
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("payload\n")
    (bundle.rootfs / "etc" / "evil").symlink_to(str(host_dir))
    bundle.add_mount(destination="/etc/evil", type="bind", source=str(src), options=["bind"])
    before = h.host_mounts()
    try:
        out = rt.probe(bundle, f"cat /etc/evil/payload; cat {host_dir}/payload")
        assert out.split() == ["payload", "payload"]
        assert not host_dir.exists(), "the runtime created the symlink target on the host"
        assert h.host_mounts() == before
        assert not any(str(host_dir) in line for line in Path("/proc/self/mountinfo").read_text().splitlines())
    finally:
        if host_dir.exists():
            subprocess.run(["umount", "-l", str(host_dir)], check=False, stderr=subprocess.DEVNULL, timeout=10)
            os.rmdir(host_dir)


# -- /dev ------------------------------------------------------------------------------------------------------

DEFAULT_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


def test_default_devices(rt, bundle):
    script = "; ".join(f"stat -c '%n %F %t %T %a' /dev/{d}" for d in DEFAULT_DEVICES)
    out = rt.probe(bundle, script + "; echo x > /dev/null; head -c 3 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c")
    lines = out.splitlines()
    for line, (name, (major, minor)) in zip(lines, DEFAULT_DEVICES.items()):
        path, *kind, hexmaj, hexmin, mode = line.split()
        assert path == f"/dev/{name}"
        assert " ".join(kind) == "character special file", line
        assert (int(hexmaj, 16), int(hexmin, 16)) == (major, minor), line
        assert mode == "666", line
    assert lines[-2:] == ["3", "8"]


def test_dev_symlinks_pts_and_shm(rt, bundle):
    links = {
        "fd": "/proc/self/fd",
        "stdin": "/proc/self/fd/0",
        "stdout": "/proc/self/fd/1",
        "stderr": "/proc/self/fd/2",
        "ptmx": "pts/ptmx",
    }
    script = "; ".join(f"readlink /dev/{name}" for name in links)
    out = rt.probe(bundle, script + "; stat -c %F /dev/pts/ptmx; stat -c %a /dev/shm; cat /proc/self/mountinfo")
    lines = out.splitlines()
    assert lines[: len(links)] == list(links.values())
    assert lines[len(links)] == "character special file"
    assert lines[len(links) + 1] == "1777"
    mounts = h.parse_mountinfo(out)
    assert h.mount_at(mounts, "/dev/pts").fstype == "devpts"
    assert h.mount_at(mounts, "/dev/shm").fstype == "tmpfs"


def test_runc_spec_defaults_with_devices_cgroup(rt, bundle):
    """Exactly `runc spec` (deny-all devices cgroup, read-only root): the default devices stay usable."""
    bundle.config["root"]["readonly"] = True
    bundle.linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    out = rt.probe(bundle, "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c")
    assert out.split() == ["4", "4"]


@pytest.mark.parametrize(
    "dev,expect",
    [
        (
            {"type": "c", "path": "/dev/it-null", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001},
            "character special file 1 3 640 1000 1001",
        ),
        (
            {"type": "b", "path": "/dev/it-loop", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 6},
            "block special file 7 0 600 0 6",
        ),
        (
            {"type": "u", "path": "/dev/it-unbuf", "major": 1, "minor": 5, "fileMode": 0o666, "uid": 0, "gid": 0},
            "character special file 1 5 666 0 0",
        ),
        ({"type": "p", "path": "/dev/it-fifo", "fileMode": 0o620, "uid": 2, "gid": 3}, "fifo 0 0 620 2 3"),
        (
            {"type": "c", "path": "/opt/devs/it-zero", "major": 1, "minor": 5, "fileMode": 0o666, "uid": 0, "gid": 0},
            "character special file 1 5 666 0 0",
        ),
    ],
)
def test_linux_devices(rt, bundle, dev, expect):
    bundle.linux["devices"] = [dev]
    out = rt.probe(bundle, f"stat -c '%F %t %T %a %u %g' {dev['path']}")
    kind_and_rest = out.strip().split()
    maj, mnr = int(kind_and_rest[-5], 16), int(kind_and_rest[-4], 16)
    got = " ".join([*kind_and_rest[:-5], str(maj), str(mnr), *kind_and_rest[-3:]])
    assert got == expect


# -- masked and read-only paths ------------------------------------------------------------------------------


def test_masked_paths(rt, bundle):
    (bundle.rootfs / "secret.txt").write_text("secret\n")
    (bundle.rootfs / "secretdir").mkdir()
    (bundle.rootfs / "secretdir" / "a").write_text("a\n")
    bundle.linux["maskedPaths"] = ["/secret.txt", "/secretdir", "/proc/kcore", "/no/such/path"]
    out = rt.probe(
        bundle,
        "cat /secret.txt | wc -c; ls -A /secretdir | wc -l; head -c 16 /proc/kcore | wc -c; "
        "echo x > /secretdir/new 2>&1; echo rc=$?",
    )
    lines = out.splitlines()
    assert lines[:3] == ["0", "0", "0"], out
    assert "rc=0" not in out
    assert (bundle.rootfs / "secret.txt").read_text() == "secret\n"


def test_readonly_paths(rt, bundle):
    (bundle.rootfs / "rodir").mkdir()
    bundle.linux["readonlyPaths"] = ["/rodir", "/proc/sys", "/no/such/path"]
    out = rt.probe(
        bundle,
        "touch /rodir/x 2>&1; echo rc=$?; (echo 1 > /proc/sys/kernel/shm_rmid_forced) 2>&1; "
        "echo rc=$?; touch /tmp/ok && echo tmp-ok",
    )
    assert out.count("Read-only file system") == 2, out
    assert "rc=0" not in out
    assert "tmp-ok" in out


# -- identity and kernel knobs -------------------------------------------------------------------------------


def test_hostname_and_domainname(rt, bundle):
    h.needs_newer_than_runc_1_1("domainname")
    bundle.config["hostname"] = "it-host"
    bundle.config["domainname"] = "it.example"
    out = rt.probe(bundle, "hostname; cat /proc/sys/kernel/domainname")
    assert out.split() == ["it-host", "it.example"]
    assert Path("/proc/sys/kernel/domainname").read_text().strip() != "it.example"


@pytest.mark.parametrize(
    "key,value",
    [("kernel.shm_rmid_forced", "1"), ("net.ipv4.ip_forward", "1"), ("net.ipv4.ping_group_range", "0 1000")],
)
def test_sysctl(rt, bundle, key, value):
    proc = Path("/proc/sys") / key.replace(".", "/")
    host_before = proc.read_text()
    bundle.linux["sysctl"] = {key: value}
    out = rt.probe(bundle, f"cat /proc/sys/{key.replace('.', '/')}")
    assert out.split() == value.split()
    assert proc.read_text() == host_before


def test_personality_linux32(rt, bundle):
    h.needs_newer_than_runc_1_1("linux.personality")
    bundle.linux["personality"] = {"domain": "LINUX32"}
    assert rt.probe(bundle, "uname -m").strip() == "i686"


def test_personality_linux(rt, bundle):
    h.needs_newer_than_runc_1_1("linux.personality")
    bundle.linux["personality"] = {"domain": "LINUX"}
    assert rt.probe(bundle, "uname -m").strip() == os.uname().machine
