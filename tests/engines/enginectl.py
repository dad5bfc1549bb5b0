"""Start Podman, containerd and dockerd against ocipy with private paths, and clean up after them.

Shared by tests/engines (session fixtures in conftest.py) and bench/podman.py. Nothing here touches the host's own
engine state: every engine gets a root, a state/run directory, sockets and configuration files in one temporary
directory, and what it started is stopped by pid (never by name), its mounts detached and its directory removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

PROJECT = Path(__file__).resolve().parents[2]
MAKE_ROOTFS = PROJECT / "scripts" / "make-rootfs"
# The docker.io package's client (20.10, matching its daemon); /usr/local/bin/docker may be another version.
DOCKER_CLI = "/usr/bin/docker"
PODMAN_SUBNET = "10.231.77.0/24"
TRUST_KEY = "/etc/docker/key.json"


def missing_binaries(*names: str) -> list[str]:
    return [n for n in names if not (os.path.isabs(n) and os.access(n, os.X_OK)) and shutil.which(n) is None]


def engine_runtime(work: Path) -> str:
    """The runtime the engines are told to use: $ENGINES_RUNTIME (e.g. /usr/sbin/runc, to check the tests against
    the reference), otherwise a fresh ocipy launcher for the code under test (what scripts/setup installs as
    /usr/local/bin/ocipy). The file is named `ocipy` because Podman keys runtime_supports_json on the basename."""
    override = os.environ.get("ENGINES_RUNTIME")
    if override:
        return override
    path = work / "bin" / "ocipy"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    subprocess.run([sys.executable, "-m", "ocipy.launcher", str(path)], check=True, cwd=PROJECT)
    return str(path)


def runtime_is_ocipy(runtime: str) -> bool:
    return os.path.basename(runtime) == "ocipy"


def private_dir(prefix: str) -> Path:
    """A temp dir every user may traverse (pytest's are 0700 root: closed to a root mapped into a user namespace)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def unmount_under(path: Path) -> list[str]:
    """Detach every mount at or below path (deepest first); returns the ones that were there."""
    found = mounts_under(path)
    for point in sorted(found, key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return found


def remove_tree(path: Path) -> None:
    """Remove a private engine directory, never through a mount."""
    unmount_under(path)
    if mounts_under(path):
        raise RuntimeError(f"mounts remain under {path}: {mounts_under(path)}")
    shutil.rmtree(path, ignore_errors=True)


def pids_mentioning(text: str) -> list[int]:
    """Pids whose command line contains text (a unique private path of ours): helpers an engine we started left."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM, wait, then SIGKILL: for a process we started (a child, so it is reaped) or one it left behind."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)


def stop_child(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a daemon we started: SIGTERM to its pid, wait, SIGKILL if it lingers; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def build_busybox_tar(work: Path) -> Path:
    """A busybox root filesystem from busybox-static (scripts/make-rootfs), as a tar to import into the engines."""
    rootfs = work / "busybox-rootfs"
    subprocess.run([str(MAKE_ROOTFS), str(rootfs)], check=True, capture_output=True)
    tar = work / "busybox.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    shutil.rmtree(rootfs)
    return tar


def run(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 90,
    check: bool = False,
    input: str | None = None,
    stdin: int | None = None,
) -> subprocess.CompletedProcess[str]:
    if input is None and stdin is None:
        stdin = subprocess.DEVNULL
    p = subprocess.run(
        list(argv), env=env, capture_output=True, text=True, timeout=timeout, input=input, stdin=stdin, check=False
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


# ------------------------------------------------------------------------------------------------------------------
# Podman
# ------------------------------------------------------------------------------------------------------------------


class Podman:
    """Podman with a private containers.conf (CONTAINERS_CONF), --root, --runroot, tmp dir, CNI config dir, file
    locks and file events, using `runtime` for every container (`--runtime PATH` on every call)."""

    image = "localhost/busybox:latest"
    network = "ocipytest"
    # Debian's containers-common default set, written out so the tests do not depend on the distribution's choice
    default_capabilities: ClassVar[list[str]] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
        "NET_RAW",
        "MKNOD",
        "AUDIT_WRITE",
    ]

    def __init__(self, work: Path, runtime: str) -> None:
        self.work = work
        self.runtime = runtime
        for d in ("root", "runroot", "tmp", "cni", "volumes"):
            (work / d).mkdir(parents=True, exist_ok=True)
        self.conf = work / "containers.conf"
        self.conf.write_text(
            "[containers]\n"
            # Podman's defaults exceed this machine's hard limits (no CAP_SYS_RESOURCE): every container would fail.
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            'init_path = "/usr/bin/catatonit"\n'
            f"default_capabilities = {json.dumps(self.default_capabilities)}\n"
            "\n[network]\n"
            f'network_config_dir = "{work / "cni"}"\n'
            "\n[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{work / "events.log"}"\n'
            f'tmp_dir = "{work / "tmp"}"\n'
            f'volume_path = "{work / "volumes"}"\n'
            'lock_type = "file"\n'
            'runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "ocipy"]\n'
            "\n[engine.runtimes]\n"
            f'ocipy = ["{runtime}"]\n'
        )
        self.env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(work),
            "CONTAINERS_CONF": str(self.conf),
            "CONTAINERS_REGISTRIES_CONF": str(work / "registries.conf"),
            "TMPDIR": str(work / "tmp"),
        }
        (work / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.bridge: str | None = None

    def argv(self, *args: str, runtime: str | None = None) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.work / "root"),
            "--runroot",
            str(self.work / "runroot"),
            "--storage-driver",
            "overlay",
            "--runtime",
            runtime or self.runtime,
            *args,
        ]

    def __call__(
        self, *args: str, check: bool = False, timeout: float = 90, input: str | None = None, runtime: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*args, runtime=runtime), env=self.env, timeout=timeout, check=check, input=input)

    def setup(self, tar: Path) -> None:
        self("import", str(tar), self.image, check=True)
        self("network", "create", "--subnet", PODMAN_SUBNET, self.network, check=True)
        info = json.loads(self("network", "inspect", self.network, check=True).stdout)
        self.bridge = info[0].get("network_interface")

    def cleanup(self) -> None:
        self("rm", "--all", "--force", "--time", "0", timeout=120)
        self("network", "rm", "--force", self.network)
        if self.bridge and os.path.exists(f"/sys/class/net/{self.bridge}"):
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        for pid in pids_mentioning(str(self.work)):  # a conmon of a container that podman rm could not remove
            stop_pid(pid)
        shutil.rmtree(f"/var/lib/cni/networks/{self.network}", ignore_errors=True)  # host-local IPAM records
        remove_tree(self.work)


# ------------------------------------------------------------------------------------------------------------------
# containerd
# ------------------------------------------------------------------------------------------------------------------


class Containerd:
    """containerd with a private config (root, state, grpc/ttrpc sockets; CRI plugin disabled), started in the
    background and stopped by pid. `ctr` calls use namespace `ocipy` and `--runc-root` in the private dir."""

    namespace = "ocipy"
    image = "localhost/busybox:latest"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.sock = work / "containerd.sock"
        self.runc_root = work / "runc-root"
        self.runc_root.mkdir(parents=True, exist_ok=True)
        self.config = work / "config.toml"
        self.config.write_text(
            "version = 2\n"
            f'root = "{work / "root"}"\n'
            f'state = "{work / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", '
            '"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", '
            '"io.containerd.snapshotter.v1.aufs"]\n'
            "[grpc]\n"
            f'  address = "{self.sock}"\n'
            "[ttrpc]\n"
            f'  address = "{self.sock}.ttrpc"\n'
            "[debug]\n"
            '  address = ""\n'
            '  level = "info"\n'
        )
        self.log = work / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # containerd unpacks a checkpoint to restore into a temp dir under $XDG_RUNTIME_DIR (or /tmp) and never
        # removes it: keep those inside our work dir, which stop() removes.
        tmp = self.work / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp), "TMPDIR": str(tmp)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.work,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if self.sock.exists() and self.ctr("version").returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"containerd did not come up: {self.log.read_text()[-2000:]}")

    def ctr(
        self, *args: str, check: bool = False, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(
            ["ctr", "--address", str(self.sock), "--namespace", self.namespace, *args],
            timeout=timeout,
            check=check,
            input=input,
        )

    def ctr_argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.sock), "--namespace", self.namespace, *args]

    def import_oci_archive(self, archive: Path) -> None:
        self.ctr("image", "import", "--base-name", "localhost/busybox", str(archive), check=True)

    def cleanup_namespace(self, ns: str) -> None:
        base = ["ctr", "--address", str(self.sock), "--namespace", ns]
        tasks = run([*base, "task", "ls", "-q"]).stdout.split()
        for t in tasks:
            run([*base, "task", "kill", "--all", "--signal", "SIGKILL", t])
        for t in tasks:
            run([*base, "task", "delete", "--force", t])
        for c in run([*base, "container", "ls", "-q"]).stdout.split():
            run([*base, "container", "delete", c])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.cleanup_namespace(self.namespace)
            stop_child(self.proc)
        for pid in pids_mentioning(str(self.sock)):  # shims (containerd-shim-runc-v2 -address SOCK ...) left over
            stop_pid(pid)
        remove_tree(self.work)


# ------------------------------------------------------------------------------------------------------------------
# Docker
# ------------------------------------------------------------------------------------------------------------------


class Dockerd:
    """dockerd on a private unix socket with private data/exec roots, pid file and daemon.json, using the private
    containerd (its own containerd namespaces), no iptables and no bridge, with ocipy registered by --add-runtime."""

    image = "busybox:latest"

    def __init__(self, work: Path, containerd: Containerd, runtime: str) -> None:
        self.work = work
        self.containerd = containerd
        self.runtime = runtime
        self.sock = work / "docker.sock"
        self.daemon_json = work / "daemon.json"
        self.daemon_json.write_text("{}\n")
        (work / "client").mkdir(parents=True, exist_ok=True)
        self.log = work / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.made_key = False
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(work),
            "DOCKER_CONFIG": str(work / "client"),
        }

    def start(self) -> None:
        self.made_key = not os.path.exists(TRUST_KEY)
        argv = [
            "dockerd",
            "--config-file",
            str(self.daemon_json),
            "--data-root",
            str(self.work / "data"),
            "--exec-root",
            str(self.work / "exec"),
            "--pidfile",
            str(self.work / "docker.pid"),
            "-H",
            f"unix://{self.sock}",
            "--containerd",
            str(self.containerd.sock),
            "--containerd-namespace",
            "ocipy-moby",
            "--containerd-plugins-namespace",
            "ocipy-moby-plugins",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--storage-driver",
            "overlay2",
            "--add-runtime",
            f"ocipy={self.runtime}",
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.work,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if self.sock.exists() and self("version").returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not come up: {self.log.read_text()[-2000:]}")

    def argv(self, *args: str) -> list[str]:
        return [DOCKER_CLI, "-H", f"unix://{self.sock}", *args]

    def __call__(
        self, *args: str, check: bool = False, timeout: float = 90, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*args), env=self.env, timeout=timeout, check=check, input=input)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            ids = self("ps", "-aq").stdout.split()
            if ids:
                self("rm", "-f", *ids, timeout=120)
            stop_child(self.proc)
        self.containerd.cleanup_namespace("ocipy-moby")
        if self.made_key:  # dockerd 20.10 writes a trust key next to its default daemon.json, whatever the flags
            with contextlib.suppress(FileNotFoundError):
                os.unlink(TRUST_KEY)
        for pid in pids_mentioning(str(self.work)):
            stop_pid(pid)
        remove_tree(self.work)
