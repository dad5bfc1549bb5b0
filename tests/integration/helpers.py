"""Helpers for the container integration tests: a bundle builder, a runtime driver and host-leak probes.

The tests drive the real command line in subprocesses, exactly as Podman or containerd would:
``[sys.executable, "-m", "ocipy", "--root", STATE_ROOT, VERB, ...]``. Setting ``OCIPY_IT_RUNTIME=/usr/sbin/runc``
runs the same tests against runc, which is how the tests themselves are checked against the reference runtime
(tests for features runc 1.1.5 lacks skip themselves then).

Against runc 1.1.5 these tests fail where runc departs from the runtime-spec (checked on this host): a device over an
existing file or directory is not an error; startContainer/poststart/poststop hook failures (poststart runs at
create, a failing startContainer does not fail start, a failing poststop stops the remaining ones);
rootfsPropagation shared/unbindable/slave. Every other test passes or skips (features added in runc 1.2).

Test modules load this file with ``load_helpers()`` (by path, under a private module name) so it never collides
with another ``helpers`` module on ``sys.path``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
RUNTIME = os.environ.get("OCIPY_IT_RUNTIME", "ocipy")
IS_OCIPY = RUNTIME == "ocipy"
TIMEOUT = 30.0
BUSYBOX = "/bin/busybox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
CAP_NUMBERS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}


# --------------------------------------------------------------------------------------------------------------
# Module loading and skipping
# --------------------------------------------------------------------------------------------------------------


def skip_reason() -> str | None:
    """Why the container tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "container integration tests need root"
    if not os.access(BUSYBOX, os.X_OK):
        return f"{BUSYBOX} missing (apt-get install busybox-static)"
    if IS_OCIPY:
        if str(PROJECT) not in sys.path:
            sys.path.insert(0, str(PROJECT))
        try:
            found = importlib.util.find_spec("ocipy._shim_c")
        except ImportError:
            found = None
        if found is None:
            return "ocipy._shim_c is not built (in the checkout: .venv/bin/pip install -e .)"
    elif shutil.which(RUNTIME) is None:
        return f"OCIPY_IT_RUNTIME={RUNTIME} not found"
    return None


def pytestmark() -> list[Any]:
    reason = skip_reason()
    return [pytest.mark.skipif(reason is not None, reason=reason or ""), pytest.mark.timeout(120)]


def needs_newer_than_runc_1_1(what: str) -> None:
    """Skip when checking the tests against runc 1.1.5, which lacks `what` (added in runc 1.2)."""
    if not IS_OCIPY:
        pytest.skip(f"{RUNTIME} (1.1.5) does not implement {what}")


# --------------------------------------------------------------------------------------------------------------
# Root filesystem and bundles
# --------------------------------------------------------------------------------------------------------------

_TEMPLATE: Path | None = None


def rootfs_template() -> Path:
    """A busybox rootfs built once per test session with scripts/make-rootfs (removed at exit)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        base = Path(tempfile.mkdtemp(prefix="ocipy-it-rootfs-"))
        atexit.register(shutil.rmtree, base, True)
        subprocess.run(
            [str(PROJECT / "scripts" / "make-rootfs"), str(base / "rootfs")],
            check=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        _TEMPLATE = base / "rootfs"
    return _TEMPLATE


def default_mounts() -> list[dict[str, Any]]:
    """The mounts of `runc spec`."""
    return [
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
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ]


def default_config(args: list[str] | None = None) -> dict[str, Any]:
    """`runc spec` defaults, except terminal false, a writable root and no ambient capabilities (runc's ambient
    set without an inheritable one cannot be raised and only earns a warning)."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args or ["sh"]),
            "env": [PATH_ENV, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": list(DEFAULT_CAPS),
                "effective": list(DEFAULT_CAPS),
                "permitted": list(DEFAULT_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "ocipy-it",
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


@dataclass
class Bundle:
    path: Path
    config: dict[str, Any]

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def process(self) -> dict[str, Any]:
        return self.config["process"]

    @property
    def linux(self) -> dict[str, Any]:
        return self.config["linux"]

    def args(self, *argv: str) -> Bundle:
        self.config["process"]["args"] = list(argv)
        return self

    def sh(self, script: str) -> Bundle:
        return self.args("sh", "-c", script)

    def namespaces(self) -> list[dict[str, Any]]:
        return self.config["linux"]["namespaces"]

    def set_namespace(self, ns_type: str, path: str | None = None) -> None:
        """Add (or replace) one namespace entry."""
        nss = [n for n in self.namespaces() if n["type"] != ns_type]
        entry: dict[str, Any] = {"type": ns_type}
        if path is not None:
            entry["path"] = path
        nss.append(entry)
        self.config["linux"]["namespaces"] = nss

    def drop_namespace(self, ns_type: str) -> None:
        self.config["linux"]["namespaces"] = [n for n in self.namespaces() if n["type"] != ns_type]

    def add_mount(self, **mount: Any) -> None:
        self.config["mounts"].append(mount)

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2))


def make_bundle(parent: Path, args: list[str] | None = None) -> Bundle:
    path = parent / "bundle"
    path.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(rootfs_template()), str(path / "rootfs")], check=True, timeout=60)
    return Bundle(path, default_config(args))


# --------------------------------------------------------------------------------------------------------------
# The runtime driver
# --------------------------------------------------------------------------------------------------------------


def runtime_argv() -> list[str]:
    if IS_OCIPY:
        return [sys.executable, "-m", "ocipy"]
    return [shutil.which(RUNTIME) or RUNTIME]


def runtime_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET")
    }
    env["PYTHONPATH"] = str(PROJECT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if extra:
        env.update(extra)
    return env


@dataclass
class Result:
    argv: list[str]
    returncode: int
    out_path: Path
    err_path: Path
    elapsed: float

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.returncode} after {self.elapsed:.2f}s\n"
            f"--- stdout ---\n{self.out[-3000:]}\n--- stderr ---\n{self.err[-3000:]}"
        )

    def ok(self) -> Result:
        assert self.returncode == 0, self.describe()
        return self

    def fails(self, *phrases: str, code: int = 1) -> Result:
        assert self.returncode == code, self.describe()
        for phrase in phrases:
            assert phrase.lower() in self.err.lower(), f"missing {phrase!r} in stderr\n{self.describe()}"
        return self


def proc_starttime(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(data[data.rindex(")") + 2 :].split()[19])


def proc_state(pid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()[0]


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    return proc_state(pid) not in (None, "Z", "X")


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


class Runtime:
    """Runs the runtime's verbs with a private state root; remembers every container and pid to clean up."""

    def __init__(self, root: Path, workdir: Path) -> None:
        self.root = root
        self.workdir = workdir
        self.ids: set[str] = set()
        self.pids: dict[int, int | None] = {}
        self._n = 0

    # -- raw calls ------------------------------------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        return [*runtime_argv(), "--root", str(self.root), *args]

    def call(
        self,
        *args: str,
        stdin: Any = None,
        input: bytes | None = None,
        timeout: float = TIMEOUT,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        pass_fds: tuple[int, ...] = (),
        shell_prefix: str | None = None,
    ) -> Result:
        """Run one command. stdout/stderr go to files (never pipes: a container holding a pipe would make us wait
        for it). `shell_prefix` wraps the call as `bash -c '<prefix> exec "$@" <redirections>'`."""
        self._n += 1
        out_path = self.workdir / f"call{self._n}.out"
        err_path = self.workdir / f"call{self._n}.err"
        argv = self.argv(*args)
        if shell_prefix is not None:
            argv = ["/bin/bash", "-c", shell_prefix, "bash", *argv]
        if input is not None:
            in_path = self.workdir / f"call{self._n}.in"
            in_path.write_bytes(input)
            stdin_f: Any = open(in_path, "rb")  # noqa: SIM115
        else:
            stdin_f = subprocess.DEVNULL if stdin is None else stdin
        start = time.perf_counter()
        with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
            proc = subprocess.Popen(
                argv, stdin=stdin_f, stdout=fo, stderr=fe, env=runtime_env(env), cwd=cwd, pass_fds=pass_fds
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                elapsed = time.perf_counter() - start
                res = Result(argv, -9, out_path, err_path, elapsed)
                raise AssertionError(f"timed out after {timeout}s (hang)\n{res.describe()}") from None
            finally:
                if input is not None:
                    stdin_f.close()
        return Result(argv, rc, out_path, err_path, time.perf_counter() - start)

    # -- verbs ----------------------------------------------------------------------------------------------
    def new_id(self, hint: str = "c") -> str:
        cid = f"it-{re.sub(r'[^A-Za-z0-9]', '', hint)[:20]}-{uuid.uuid4().hex[:8]}"
        self.ids.add(cid)
        return cid

    def create(self, bundle: Bundle, cid: str | None = None, *flags: str, **kw: Any) -> tuple[str, Result]:
        bundle.write()
        cid = cid or self.new_id("create")
        self.ids.add(cid)
        res = self.call("create", "--bundle", str(bundle.path), *flags, cid, **kw)
        if res.returncode == 0:
            self.remember(cid)
        return cid, res

    def create_ok(self, bundle: Bundle, *flags: str, cid: str | None = None, **kw: Any) -> tuple[str, Result]:
        cid, res = self.create(bundle, cid, *flags, **kw)
        res.ok()
        return cid, res

    def run(self, bundle: Bundle, *flags: str, cid: str | None = None, **kw: Any) -> Result:
        bundle.write()
        cid = cid or self.new_id("run")
        self.ids.add(cid)
        return self.call("run", "--bundle", str(bundle.path), *flags, cid, **kw)

    def probe(self, bundle: Bundle, script: str, **kw: Any) -> str:
        """Run `sh -c script` in the foreground; assert exit 0; return the container's stdout."""
        bundle.sh(script)
        return self.run(bundle, **kw).ok().out

    def start(self, cid: str, **kw: Any) -> Result:
        return self.call("start", cid, **kw)

    def state(self, cid: str) -> dict[str, Any]:
        res = self.call("state", cid).ok()
        try:
            data: dict[str, Any] = json.loads(res.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"state is not JSON: {exc}\n{res.describe()}") from None
        return data

    def status(self, cid: str) -> str:
        return str(self.state(cid)["status"])

    def pid(self, cid: str) -> int:
        pid = int(self.state(cid)["pid"])
        self._track(pid)
        return pid

    def remember(self, cid: str) -> None:
        with contextlib.suppress(Exception):
            self.pid(cid)

    def kill(self, cid: str, *args: str) -> Result:
        return (
            self.call("kill", *args[:-1], cid, *args[-1:])
            if args and args[0].startswith("-")
            else self.call("kill", cid, *args)
        )

    def delete(self, cid: str, *flags: str) -> Result:
        return self.call("delete", *flags, cid)

    def list(self, *flags: str) -> Result:
        return self.call("list", *flags)

    def wait_status(self, cid: str, status: str, timeout: float = 10.0) -> bool:
        return wait_until(lambda: self.status(cid) == status, timeout=timeout, interval=0.05)

    # -- cleanup --------------------------------------------------------------------------------------------
    def _track(self, pid: int) -> None:
        if pid > 0 and pid not in self.pids:
            self.pids[pid] = proc_starttime(pid)

    def track_pid(self, pid: int) -> None:
        self._track(pid)

    def state_dirs(self) -> list[str]:
        try:
            return sorted(d for d in os.listdir(self.root) if d != "@cache")  # the seccomp cache is no container's
        except FileNotFoundError:
            return []

    def cleanup(self) -> None:
        # container inits this process adopted as a subreaper and that already exited are zombies until reaped, and
        # a zombie still counts in its cgroup: reap first, or delete could not remove the cgroup
        reap_children()
        for cid in sorted(self.ids | set(self.state_dirs())):
            with contextlib.suppress(Exception):
                self.call("delete", "--force", cid, timeout=15)
        for pid, start in self.pids.items():
            if start is not None and proc_starttime(pid) == start and pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        reap_children()


def reap_children(keep: set[int] | None = None) -> None:
    """Reap zombies adopted by this process (we may be a child subreaper), except pids in `keep`."""
    for pid in children_of(os.getpid()):
        if keep and pid in keep:
            continue
        if proc_state(pid) == "Z":
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)


def children_of(ppid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        if int(data[data.rindex(")") + 2 :].split()[1]) == ppid:
            kids.append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for kid in children_of(p):
            out.append(kid)
            todo.append(kid)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


def cmdline_pids(needle: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            data = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle.encode() in data and pid_alive(int(entry)):
            found.append(int(entry))
    return found


class Procs:
    """Processes a test starts itself (namespace holders, sleepers): killed by pid and reaped at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, **kw)
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            for kid in descendants(proc.pid):
                with contextlib.suppress(OSError):
                    os.kill(kid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)


def ns_child(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """The pid of the single child of `proc` (e.g. the process `unshare --fork` starts)."""
    kids: list[int] = []
    assert wait_until(lambda: bool(kids.extend(children_of(proc.pid)) or kids), timeout), "no child appeared"
    return kids[0]


def wait_ns_differs(pid: int, ns: str, timeout: float = 5.0) -> str:
    """Wait until process `pid` has left our namespace `ns` (unshare has run); return its ns link."""
    mine = os.readlink(f"/proc/self/ns/{ns}")
    link = ""

    def moved() -> bool:
        nonlocal link
        try:
            link = os.readlink(f"/proc/{pid}/ns/{ns}")
        except OSError:
            return False
        return link != mine

    assert wait_until(moved, timeout), f"pid {pid} never left the {ns} namespace"
    return link


# --------------------------------------------------------------------------------------------------------------
# Host-leak probes
# --------------------------------------------------------------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def set_subreaper(on: bool) -> None:
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Make this test process a child subreaper (like conmon or containerd's shim) for the duration."""
    set_subreaper(True)
    try:
        yield
    finally:
        set_subreaper(False)


def host_mounts() -> set[str]:
    """Our mount table, one line per mount, without the mount ids (so a remount is not a difference)."""
    lines = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        parts = line.split()
        lines.add(" ".join(parts[2:]))
    return lines


def cgroup_dirs_named(needle: str, base: str = "/sys/fs/cgroup", depth: int = 5) -> list[str]:
    found = []
    base_depth = base.rstrip("/").count("/")
    for dirpath, dirnames, _ in os.walk(base):
        if dirpath.count("/") - base_depth >= depth:
            dirnames[:] = []
            continue
        for d in dirnames:
            if needle in d:
                found.append(os.path.join(dirpath, d))
    return found


# --------------------------------------------------------------------------------------------------------------
# Parsing what containers print
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Mount:
    mount_id: int
    parent_id: int
    majmin: str
    root: str
    mountpoint: str
    options: set[str]
    optional: list[str]
    fstype: str
    source: str
    super_options: set[str] = field(default_factory=set)

    @property
    def propagation(self) -> set[str]:
        return {o.split(":")[0] for o in self.optional}


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        head, tail = line.split(" - ", 1)
        h = head.split()
        t = tail.split()
        mounts.append(
            Mount(
                int(h[0]),
                int(h[1]),
                h[2],
                _unescape(h[3]),
                _unescape(h[4]),
                set(h[5].split(",")),
                h[6:],
                t[0],
                _unescape(t[1]),
                set(t[2].split(",")) if len(t) > 2 else set(),
            )
        )
    return mounts


def mount_at(mounts: list[Mount], mountpoint: str) -> Mount:
    """The top mount on `mountpoint`."""
    hits = [m for m in mounts if m.mountpoint == mountpoint]
    assert hits, f"nothing mounted on {mountpoint}: {[m.mountpoint for m in mounts]}"
    return hits[-1]


def status_field(status_text: str, name: str) -> str:
    for line in status_text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in /proc/PID/status output:\n{status_text}")


def cap_mask(names: list[str]) -> int:
    mask = 0
    for n in names:
        mask |= 1 << CAP_NUMBERS[n]
    return mask


def recv_console(sock: socket.socket, timeout: float = TIMEOUT) -> tuple[bytes, list[int]]:
    """Accept one connection on a listening console socket and receive the pty master."""
    sock.settimeout(timeout)
    conn, _ = sock.accept()
    with conn:
        conn.settimeout(timeout)
        msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
    return msg, fds


def read_until_eof(fd: int, timeout: float = TIMEOUT) -> bytes:
    """Read a pty master until the slave side is closed everywhere (EIO) or EOF."""
    import select

    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno == errno.EIO:
                break
            raise
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def fd_wrapper(mapping: dict[int, int], prefix: str = "") -> str:
    """A `bash -c` script (dash knows only single-digit fds) that places open fds at fixed numbers and then execs "$@": {target: source}."""
    redirs = " ".join(f"{dst}<&{src}" for dst, src in mapping.items())
    closes = " ".join(f"{src}<&-" for src in set(mapping.values()) if src not in mapping)
    return f'{prefix} exec "$@" {redirs} {closes}'


# --------------------------------------------------------------------------------------------------------------
# Fixtures (test modules re-export them: `rt = helpers.rt`)
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime driver with a private state root; every container it saw is force-deleted afterwards."""
    work = tmp_path / "calls"
    work.mkdir()
    runtime = Runtime(tmp_path / "state", work)
    try:
        yield runtime
    finally:
        runtime.cleanup()


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    """A fresh bundle: a copy of the session's busybox rootfs and `default_config()`."""
    return make_bundle(tmp_path)


@pytest.fixture
def open_bundle() -> Iterator[Bundle]:
    """Like `bundle`, but under a world-traversable directory, for containers whose root is not host root
    (user namespaces): pytest's own temp directories are 0700."""
    base = Path(tempfile.mkdtemp(prefix="ocipy-it-userns-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield make_bundle(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def host_mounts_guard() -> Iterator[list[str]]:
    """Host paths a test mounts on the host itself; unmounted (lazily) at the end."""
    paths: list[str] = []
    try:
        yield paths
    finally:
        for p in reversed(paths):
            subprocess.run(["umount", "-l", p], check=False, stderr=subprocess.DEVNULL, timeout=10)


def load_helpers_fixtures(namespace: dict[str, Any]) -> None:
    """Register the fixtures in another directory's test module (tests/security); tests/integration gets them
    through its conftest.py."""
    for name in ("rt", "bundle", "open_bundle", "procs", "host_mounts_guard"):
        namespace[name] = globals()[name]
