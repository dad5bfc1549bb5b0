"""What a container can leave on the host, looked at from outside: processes, mounts, cgroup directories in every
hierarchy (v1 controllers, `name=systemd`, `unified`), state directories and network devices.

Used by the fault-injection test and the create-level fuzzer (loaded by path as `ocipy_leftovers`). Every probe reads
the host directly (/proc, /sys/fs/cgroup, `ip`), never through the runtime.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def cgroup_mountpoints() -> list[str]:
    """Every cgroup hierarchy of this mount namespace (cgroup v1 controllers, named ones, cgroup2)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            if fstype in ("cgroup", "cgroup2"):
                out.append(left.split()[4].replace("\\040", " "))
    return sorted(set(out))


def cgroup_leftovers(name: str) -> list[str]:
    """`<hierarchy>/<name>` directories (the tests set cgroupsPath to `/<name>`)."""
    return [p for p in (os.path.join(m, name) for m in cgroup_mountpoints()) if os.path.isdir(p)]


def _state_letter(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[0]


def live_descendants(root: int) -> list[int]:
    """Descendants of `root` that are not zombies (children of a subreaper included)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for k in kids.get(todo.pop(), []):
            todo.append(k)
            if _state_letter(k) not in (None, "Z", "X"):
                out.append(k)
    return out


def reap() -> None:
    """Reap the zombie children of this process but the test's own commands (`OURS`)."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in OURS:
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and fields[1] == me:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(int(entry), os.WNOHANG)


OURS: set[int] = set()  # pids of the commands a test runs itself (their Popen reaps them)


class Reaper:
    """What a subreaper (conmon, containerd's shim) does all the time: reap the orphans it adopts. A pid namespace's
    init cannot finish exiting while a zombie of its namespace waits for us, so `delete` would wait for nothing.
    The commands the test runs itself (`OURS`) are left to their Popen."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Reaper:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = str(os.getpid())
        while not self._stop.wait(0.01):
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) in OURS:
                    continue
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if fields[0] == "Z" and fields[1] == me:
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(int(entry), os.WNOHANG)


def host_mounts() -> set[str]:
    lines = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            lines.add(" ".join(line.split()[2:]))
    return lines


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


@dataclass
class Probe:
    """The host as one trial may change it. `check()` lists what is left; `clean()` removes it (so one leak does
    not spoil the next trial) and says what it had to remove."""

    state_root: Path
    cid: str
    cgroup_name: str
    marks: list[str] = field(default_factory=list)  # strings that name this trial's mounts (bundle path, id)
    veth: tuple[str, str] | None = None  # (the end the config moves in, its peer that stays on the host)
    mounts_before: set[str] = field(default_factory=host_mounts)

    def processes(self) -> list[int]:
        return live_descendants(os.getpid())

    def state_dirs(self) -> list[str]:
        try:
            return [d for d in os.listdir(self.state_root) if d != "@cache"]
        except FileNotFoundError:
            return []

    def mounts(self) -> list[str]:
        return [m for m in host_mounts() - self.mounts_before if any(k in m for k in self.marks)]

    def netdevs(self) -> list[str]:
        """A moved end that still exists somewhere keeps its peer on the host: the peer alone with no partner in
        this namespace means a network namespace is still alive."""
        if self.veth is None:
            return []
        moved, peer = self.veth
        if link_exists(peer) and not link_exists(moved):
            return [f"veth {peer}: its peer {moved} lives on in a namespace"]
        return []

    def check(self, grace: float = 0.0) -> dict[str, list[str]]:
        deadline = time.monotonic() + grace
        while True:
            reap()
            found = {
                "processes": [f"{p} {_cmdline(p)}" for p in self.processes()],
                "cgroups": cgroup_leftovers(self.cgroup_name),
                "state": self.state_dirs(),
                "mounts": self.mounts(),
                "netdevs": self.netdevs(),
            }
            found = {k: v for k, v in found.items() if v}
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def clean(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
        reap()
        for m in sorted(self.mounts(), key=lambda line: -len(line.split()[2])):
            subprocess.run(["umount", "-l", m.split()[2]], check=False, capture_output=True)
        for d in cgroup_leftovers(self.cgroup_name):
            for dirpath, _dirs, _files in sorted(os.walk(d, topdown=False), key=lambda t: -len(t[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
        for name in self.state_dirs():
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.state_root / name)], check=False)
        if self.veth is not None:
            for name in self.veth:
                if link_exists(name):
                    subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
