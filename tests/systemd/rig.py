"""A systemd host to test on: the Debian 12 root filesystem from scripts/systemd-rig booted with systemd-nspawn.

This machine has no systemd as PID 1 and hybrid cgroups (../shared/design/host.md). The rig:

- runs `scripts/systemd-rig` (builds the rootfs once, cached under $OCIPY_CACHE/nspawn-<key>);
- makes a cgroup of its own in every hierarchy (`ocipy-rig-<random>` at each root) and starts nspawn in it, so the
  slices the booted systemd makes land below it and never at the host's cgroup roots;
- boots `systemd-nspawn -D ROOTFS -b --volatile=overlay` (the cached tree is read-only, every change goes to a tmpfs
  and is gone at the end), `SYSTEMD_SECCOMP=0` and `--capability=all` (nspawn's own filter blocks keyctl, which
  runtimes need), a private network (loopback only), the project worktree bound at its own path (its .venv runs
  Debian's /usr/bin/python3.11, which the rootfs has too), and empty host dirs for the engines' storage (overlayfs
  cannot stack on the overlay root);
- waits for `systemctl is-system-running --wait`, remounts the v1 controllers read-write in the container's mount
  namespace (nspawn mounts them read-only) and runs `systemctl daemon-reexec`, so systemd applies unit limits;
- runs commands in transient scopes (`systemd-run --scope`) entered with nsenter, so a command runs where a command
  of that host would: in a unit's cgroup under systemd;
- stops by pid: SIGTERM to nspawn (a clean poweroff of the container), SIGKILL after a timeout, then any process left
  in its cgroups is killed and the cgroups are removed, deepest first, along with the temporary dirs.

Usable from the command line too: `python tests/systemd/rig.py shell` boots it and opens a shell inside.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

PROJECT = Path(__file__).resolve().parents[2]
BUILD = PROJECT / "scripts" / "systemd-rig"
CGROUP_ROOT = "/sys/fs/cgroup"
NSPAWN_RUN = "/run/systemd/nspawn"
# the engines keep image and container storage here; each gets an empty host dir (not the overlay root)
# the ocipy command inside, made by `install_ocipy` (the rig's root is a throw-away overlay)
OCIPY = "/usr/local/bin/ocipy"
# a command's stdio inside the rig are files, not the service's pipes: a created container (or conmon, a shim)
# inherits them and would keep a pipe open, which systemd-run --pipe waits on; the files are printed afterwards.
WRAP = 'o=$(mktemp) e=$(mktemp); "$@" <"$o" >"$o" 2>"$e"; rc=$?; cat "$o"; cat "$e" >&2; rm -f "$o" "$e"; exit $rc'
STORAGE = ("/var/lib/containers", "/var/lib/docker", "/var/lib/containerd")


class RigError(RuntimeError):
    pass


def build() -> Path:
    """The rootfs directory (built now when it is not cached)."""
    # its own process group: if we are interrupted (a test timeout), mmdebstrap and its children go with it
    proc = subprocess.Popen(
        [str(BUILD)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RigError(f"scripts/systemd-rig failed: {stderr.strip()[-2000:]}")
    return Path(stdout.strip().splitlines()[-1])


def missing_tools() -> list[str]:
    return [t for t in ("systemd-nspawn", "mmdebstrap", "nsenter") if shutil.which(t) is None]


def _hierarchies() -> list[str]:
    """Mount points of every cgroup hierarchy of this mount namespace below /sys/fs/cgroup."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            point = left.split()[4]
            if fstype in ("cgroup", "cgroup2") and point.startswith(CGROUP_ROOT):
                out.append(point)
    return out


def _pids_in(top: str) -> list[int]:
    pids: list[int] = []
    for dirpath, _dirs, files in os.walk(top):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError), open(os.path.join(dirpath, "cgroup.procs")) as f:
                pids.extend(int(x) for x in f.read().split())
    return pids


def _rmdir_tree(top: str) -> bool:
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(FileNotFoundError):
            try:
                os.rmdir(dirpath)
            except OSError:
                return False
    return True


class Rig:
    """One booted systemd container. `run()` executes a command inside in a transient scope."""

    def __init__(self, rootfs: Path, *, boot_timeout: float = 120.0, binds_ro: Sequence[str] = ()) -> None:
        self.rootfs = rootfs
        self.binds_ro = list(binds_ro)  # host paths bound read-only at the same path (e.g. runc 1.5.1's build)
        self.name = f"ocipy-rig-{secrets.token_hex(4)}"
        self.boot_timeout = boot_timeout
        self.cgroups: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.tmp.chmod(0o755)
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0
        self.log = self.tmp / "console.log"
        # a host dir bound at the same path inside: tests write bundles here and use the paths on both sides
        self.share = self.tmp / "share"

    # --- boot -----------------------------------------------------------------------------------------------
    def _make_cgroups(self) -> list[str]:
        procs = []
        for mnt in _hierarchies():
            d = os.path.join(mnt, self.name)
            os.mkdir(d)
            self.cgroups.append(d)
            if os.path.exists(os.path.join(mnt, "cpuset.cpus")):  # v1 cpuset: a new group starts empty
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(mnt, f)) as src, open(os.path.join(d, f), "w") as dst:
                        dst.write(src.read())
            procs.append(os.path.join(d, "cgroup.procs"))
        return procs

    def start(self) -> Rig:
        # nspawn makes /run/systemd/nspawn/{locks,propagate} on the host: removed again at stop when empty
        procs = self._make_cgroups()
        self.share.mkdir()
        storage = [f"--bind={self.share}"]
        for path in STORAGE:
            host = self.tmp / path.strip("/").replace("/", "-")
            host.mkdir()
            storage.append(f"--bind={host}:{path}")
        nspawn = [
            "systemd-nspawn",
            "--quiet",
            f"--directory={self.rootfs}",
            f"--machine={self.name}",
            "--boot",
            "--volatile=overlay",
            "--register=no",
            "--keep-unit",
            "--capability=all",
            "--private-network",
            f"--bind={PROJECT}",
            "--console=read-only",
            *storage,
            *(f"--bind-ro={p}" for p in self.binds_ro),
        ]
        # enter our own cgroups first (the shell writes its own pid, then becomes nspawn)
        join = "; ".join(f"echo $$ > {shlex.quote(p)}" for p in procs)
        env = dict(os.environ, SYSTEMD_SECCOMP="0")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["sh", "-c", f"{join}; exec {shlex.join(nspawn)}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            self._wait_boot()
            self._prepare()
        except BaseException:
            self.stop()
            raise
        return self

    def _find_leader(self) -> int:
        """The container's PID 1: nspawn's child in another pid namespace. nspawn first forks an "outer child"
        in our pid namespace, which makes the real leader and exits; taking that short-lived child for the leader
        left every nsenter failing until the boot timeout (seen in CI under load)."""
        assert self.proc is not None
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = [int(x) for x in f.read().split()]
            ours = os.readlink("/proc/self/ns/pid")
        except OSError:
            return 0
        for kid in kids:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{kid}/ns/pid") != ours:
                    return kid
        return 0

    def _wait_boot(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.boot_timeout
        last = "no leader found"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RigError(f"systemd-nspawn exited with {self.proc.returncode}: {self.console()[-2000:]}")
            if self.leader and not os.path.exists(f"/proc/{self.leader}"):
                self.leader = 0  # belt and braces: never keep nsentering a pid that is gone
            if not self.leader:
                self.leader = self._find_leader()
            if self.leader:
                out = self.enter(["systemctl", "is-system-running"], check=False)
                state = out.stdout.strip()
                if state in ("running", "degraded"):
                    return
                last = f"{state or '-'} ({out.stderr.strip()[-200:]})"
            time.sleep(0.2)
        raise RigError(
            f"the rig did not reach multi-user in {self.boot_timeout:.0f} s (leader {self.leader}, last answer: "
            f"{last}): {self.console()[-2000:]}"
        )

    def _prepare(self) -> None:
        """nspawn mounts the v1 controllers read-only: remount them read-write (in the container's mount namespace)
        and let systemd re-execute so it sees writable controllers and realizes unit limits."""
        mounts = self.enter(["cat", "/proc/self/mountinfo"]).stdout
        for line in mounts.splitlines():
            left, _, right = line.partition(" - ")
            fields = left.split()
            if right.split()[0:1] == ["cgroup"] and "ro" in fields[5].split(","):
                self.enter(["mount", "-o", "remount,bind,rw", fields[4]])
        self.enter(["systemctl", "daemon-reexec"])
        # daemon-reexec returns before the new manager listens: wait for it to answer again
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.enter(["systemctl", "is-system-running"], check=False).stdout.strip() in ("running", "degraded"):
                return
            time.sleep(0.1)
        raise RigError("systemd did not come back after daemon-reexec")

    # --- commands -----------------------------------------------------------------------------------------
    def enter(
        self, argv: Sequence[str], *, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the container's namespaces, outside its units (for rig plumbing and quick reads)."""
        cmd = ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "--", *argv]
        out = subprocess.run(cmd, capture_output=True, text=True, input=input, check=False, timeout=timeout)
        if check and out.returncode != 0:
            raise RigError(f"{shlex.join(argv)}: exit {out.returncode}: {out.stderr.strip()}")
        return out

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        unit_props: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run argv (a list, or a string for `sh -c`) inside, in a transient scope of the rig's systemd
        (`systemd-run --scope`: a unit under system.slice, like a login session's command), from the worktree, with a
        clean environment; its stdout, stderr and exit status come back. The command's own stdio are files (WRAP),
        printed when it ends: what it leaves running (a container, conmon, a shim) must not hold our pipes. A
        service would not do: systemd stops it, and kills what it leaves (conmon), when its main process exits."""
        if isinstance(argv, str):
            argv = ["/bin/sh", "-c", argv]
        clean = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"]
        clean += [f"{k}={v}" for k, v in (env or {}).items()]
        sd = ["systemd-run", "--scope", "--quiet", "--collect", *(f"--property={p}" for p in unit_props)]
        wrap = f"cd {shlex.quote(str(PROJECT))} && {WRAP}"
        out = self.enter([*clean, *sd, "--", "/bin/sh", "-c", wrap, "sh", *argv], check=False, timeout=timeout)
        if check and out.returncode != 0:
            raise RigError(f"{shlex.join(argv)}: exit {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def install_ocipy(self) -> None:
        """The `ocipy` launcher for the worktree's code at OCIPY (what scripts/setup makes on a host)."""
        self.run([f"{PROJECT}/.venv/bin/python", "-m", "ocipy.launcher", OCIPY])

    def ocipy(self, *args: str, check: bool = True, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        """`ocipy ARGS` inside as a service; `prefix` runs before it (e.g. unshare)."""
        return self.run([*prefix, OCIPY, *args], check=check)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """`systemctl show UNIT -p ...` as a dict."""
        out = self.enter(["systemctl", "show", unit, *(f"--property={p}" for p in props)]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def console(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    # --- teardown -----------------------------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> None:
        """Power the container off through nspawn (SIGTERM), SIGKILL after `timeout`; then kill what is left in our
        cgroups, remove them and the temporary dirs. Only what this rig made is touched."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for _ in range(50):
            left = [p for d in self.cgroups for p in _pids_in(d)]
            if not left:
                break
            for pid in set(left):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        for d in self.cgroups:
            for _ in range(50):
                if _rmdir_tree(d):
                    break
                time.sleep(0.1)
        self.cgroups = [d for d in self.cgroups if os.path.isdir(d)]
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.tmp)], check=False)
        # nspawn leaves its propagation dir when /run is not a tmpfs ("we can't allow that"): ours goes
        subprocess.run(["rm", "-rf", "--one-file-system", f"{NSPAWN_RUN}/propagate/{self.name}"], check=False)
        # and its parents when empty (rmdir only takes an empty dir: a running nspawn's stay); a flag "did it exist
        # before" is not enough with two rigs at once (each would leave it to the other)
        for d in (f"{NSPAWN_RUN}/propagate", f"{NSPAWN_RUN}/locks", NSPAWN_RUN):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        if self.cgroups:
            raise RigError(f"cgroups left behind: {self.cgroups}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "shell", "run"):
        print("usage: rig.py build | shell | run CMD...", file=sys.stderr)
        return 2
    rootfs = build()
    if argv[0] == "build":
        print(rootfs)
        return 0
    with Rig(rootfs) as rig:
        if argv[0] == "shell":
            return subprocess.call(["nsenter", "-t", str(rig.leader), "-a", "--", "/bin/bash", "-l"])
        out = rig.run(argv[1:], check=False)
        sys.stdout.write(out.stdout)
        sys.stderr.write(out.stderr)
        return out.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
