"""Bundles for the cases: the probe (built once into a cache dir), a busybox rootfs template with the probe in it,
per-case copies of that template, and the base config.json every case starts from."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE_SRC = HERE / "probe" / "probe.c"
BUSYBOX = "/bin/busybox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = Path(base) / "ocipy-conformance"
    d.mkdir(parents=True, exist_ok=True)
    return d


def build_probe() -> Path:
    """gcc -static -Os -Wall -Werror probe.c, cached by the source's hash."""
    src = PROBE_SRC.read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:16]
    out = cache_dir() / f"probe-{digest}"
    if not out.exists():
        tmp = out.with_suffix(".tmp%d" % os.getpid())
        subprocess.run(["gcc", "-static", "-Os", "-Wall", "-Werror", "-o", str(tmp), str(PROBE_SRC)], check=True)
        os.replace(tmp, out)
    return out


def make_rootfs_template(dest: Path, probe: Path) -> Path:
    """A busybox rootfs (one symlink per applet) with the probe at /probe and /bin/probe."""
    if not os.access(BUSYBOX, os.X_OK):
        raise SystemExit(f"conformance: {BUSYBOX} missing (apt-get install busybox-static)")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "hooks"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        p = dest / applet
        if applet != "bin/busybox" and not os.path.lexists(p):
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/bin/busybox", p)
    shutil.copy2(probe, dest / "probe")
    os.chmod(dest / "probe", 0o755)
    os.link(dest / "probe", dest / "bin" / "probe")
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (dest / "etc" / "hostname").write_text("template\n")
    return dest


def copy_rootfs(template: Path, dest: Path) -> Path:
    """A private copy per bundle (reflinked where the filesystem can)."""
    subprocess.run(["cp", "-a", "--reflink=auto", str(template), str(dest)], check=True)
    return dest


BASE_CONFIG = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["/probe"],
        "env": [PATH_ENV, "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "conformance",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def base_config(cgroups_path: str) -> dict:
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["linux"]["cgroupsPath"] = cgroups_path
    return cfg


def write_bundle(dest: Path, template: Path, config: dict) -> Path:
    """dest/config.json and dest/rootfs (a copy of the template); returns dest (absolute)."""
    dest.mkdir(parents=True, exist_ok=True)
    rootfs = dest / "rootfs"
    if not rootfs.exists():
        copy_rootfs(template, rootfs)
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest.resolve()
