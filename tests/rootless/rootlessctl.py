"""A throw-away unprivileged user for the rootless tests and bench/rootless.py, and everything it needs.

`RootlessUser.create()` makes, as root:
- a user with a unique name (`ocirl<hex>`), its own group, and subordinate uid/gid ranges in /etc/subuid and
  /etc/subgid (useradd allocates them under its own lock; added by usermod when useradd did not);
- a private directory (0755) holding the user's home (0700) and its XDG_RUNTIME_DIR (0700), both owned by it;
- a Podman configuration for the user: native overlay storage, `default_ulimits` under this host's hard limits
  (Podman's defaults exceed them: every container would fail), file events and locks, ocipy registered;
- an `ocipy` launcher for the code under test, readable and executable by the user;
- an ACL entry on /dev/net/tun for that user only (it is 0600 here and slirp4netns needs it), when asked.

`RootlessUser.destroy()` undoes it all: `podman system reset` as the user, then every process of its uid killed by pid
(the rootless pause process, conmon, slirp4netns...), mounts under its directory detached, the directory removed,
the ACL entry removed, and `userdel` (which removes the subordinate ids too; checked).

Nothing here kills by name or touches another user's processes, ids or files.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import pwd
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "tests" / "engines"))
from enginectl import build_busybox_tar, mounts_under, unmount_under

TUN = "/dev/net/tun"
ACL_XATTR = "system.posix_acl_access"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE = "localhost/busybox:latest"


def _subid_ranges(path: str, name: str) -> list[tuple[int, int]]:
    out = []
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        for line in f:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[0] == name:
                out.append((int(parts[1]), int(parts[2])))
    return out


def pids_of_uid(uid: int) -> list[int]:
    """Every process whose real, effective or saved uid is `uid` (from /proc/PID/status)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if str(uid) in line.split()[1:4]:
                            found.append(int(entry))
                        break
        except OSError:
            continue
    return found


def kill_uid(uid: int, grace: float = 3.0, timeout: float = 10.0) -> list[int]:
    """SIGTERM every process of `uid` (by pid), SIGKILL what is left after `grace` seconds, until none is left;
    returns the pids met. Zombies are left to their parents."""
    met: set[int] = set()
    start = time.monotonic()
    while True:
        pids = [p for p in pids_of_uid(uid) if not _is_zombie(p)]
        if not pids:
            return sorted(met)
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            raise RuntimeError(f"processes of uid {uid} survive SIGKILL: {pids}")
        sig = signal.SIGTERM if elapsed < grace else signal.SIGKILL
        for pid in pids:
            if pid not in met or sig == signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        met.update(pids)
        time.sleep(0.1)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _acl_entries(raw: bytes) -> list[tuple[int, int, int]]:
    version, body = struct.unpack_from("<I", raw)[0], raw[4:]
    if version != 2:
        raise ValueError(f"unknown ACL version {version}")
    return [struct.unpack_from("<HHI", body, i) for i in range(0, len(body), 8)]


def _acl_bytes(entries: list[tuple[int, int, int]]) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in sorted(entries, key=lambda e: (e[0], e[2])))


ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF


def grant_device(path: str, uid: int) -> None:
    """Add `user:uid:rw` to the device's POSIX ACL (the file's mode and other users' access stay as they are)."""
    st = os.stat(path)
    try:
        entries = _acl_entries(os.getxattr(path, ACL_XATTR))
    except OSError:
        m = st.st_mode
        entries = [
            (ACL_USER_OBJ, (m >> 6) & 7, ACL_UNDEFINED_ID),
            (ACL_GROUP_OBJ, (m >> 3) & 7, ACL_UNDEFINED_ID),
            (ACL_OTHER, m & 7, ACL_UNDEFINED_ID),
        ]
    entries = [e for e in entries if not (e[0] == ACL_USER and e[2] == uid) and e[0] != ACL_MASK]
    entries.append((ACL_USER, 6, uid))
    group_class = 6
    for tag, perm, _ in entries:
        if tag in (ACL_GROUP_OBJ, ACL_GROUP):
            group_class |= perm
    entries.append((ACL_MASK, group_class, ACL_UNDEFINED_ID))
    os.setxattr(path, ACL_XATTR, _acl_bytes(entries))


def revoke_device(path: str, uid: int) -> None:
    """Remove the `user:uid` entry again; drop the ACL when nothing but the mode is left."""
    try:
        entries = _acl_entries(os.getxattr(path, ACL_XATTR))
    except OSError:
        return
    rest = [e for e in entries if not (e[0] == ACL_USER and e[2] == uid)]
    named = [e for e in rest if e[0] in (ACL_USER, ACL_GROUP)]
    if named:
        os.setxattr(path, ACL_XATTR, _acl_bytes(rest))
        return
    group_obj = next((p for t, p, _ in rest if t == ACL_GROUP_OBJ), None)
    os.removexattr(path, ACL_XATTR)
    if group_obj is not None:  # the mask stood in the group bits: put the owning group's own bits back
        mode = os.stat(path).st_mode & 0o7777
        os.chmod(path, (mode & ~0o070) | (group_obj << 3))


def write_launcher(path: Path) -> str:
    """An `ocipy` launcher (ocipy/launcher.py) for the code under test, 0755 in a 0755 directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    subprocess.run([sys.executable, "-m", "ocipy.launcher", str(path)], check=True, cwd=PROJECT)
    return str(path)


def _traversable_by_others(path: str) -> bool:
    """Every directory from / down to path lets others in (o+x), and path itself is readable by others."""
    p = Path(path).resolve()
    for d in [*reversed(p.parents), p]:
        mode = os.stat(d).st_mode
        if d.is_dir() and not mode & 0o001:
            return False
    return bool(os.stat(p).st_mode & 0o004)


def shared_launcher(work: Path) -> str:
    """A launcher the unprivileged user can run. The checkout's own when the user can reach it; otherwise (a clone
    under a 0700 home, say) a mirror of the package and its dependencies under `work`, hard-linked where the file
    system allows (the files stay root's, readable by all), and a launcher naming the base interpreter."""
    path = work / "bin" / "ocipy"
    write_launcher(path)
    text = path.read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("sys.path[:0] = "))
    paths: list[str] = ast.literal_eval(lines[at].split("=", 1)[1].strip())
    interpreter = lines[0][2:].split()[0]
    forced = os.environ.get("OCIPY_ROOTLESS_MIRROR") == "1"  # to test the mirror on a host that needs none
    if not forced and all(_traversable_by_others(p) for p in [*paths, interpreter]):
        return str(path)
    lib = work / "lib"
    lib.mkdir(mode=0o755)
    mirrored = []
    for i, src in enumerate(paths):
        dest = lib / str(i)
        if i == 0:  # the checkout: only the package
            dest.mkdir(mode=0o755)
            src, dest = os.path.join(src, "ocipy"), dest / "ocipy"
        # hard links share the files' modes: only when every file is readable by all already
        private = subprocess.run(["find", src, "-type", "f", "!", "-perm", "-o+r", "-print", "-quit"],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
        if private or subprocess.run(["cp", "-al", src, str(dest)], capture_output=True, check=False).returncode:
            shutil.rmtree(dest, ignore_errors=True)
            subprocess.run(["cp", "-a", src, str(dest)], check=True)
            subprocess.run(["chmod", "-R", "a+rX", str(dest)], check=True)  # a private copy: ours to change
        else:
            subprocess.run(["find", str(dest), "-type", "d", "-exec", "chmod", "a+rx", "{}", "+"], check=True)
        mirrored.append(str(lib / str(i)))
    real = os.path.realpath(interpreter)
    if not _traversable_by_others(real):  # e.g. a pyenv build under /root: the system's interpreter, same version
        v = sys.version_info
        real = next((p for p in (f"/usr/bin/python{v.major}.{v.minor}", f"/usr/local/bin/python{v.major}.{v.minor}")
                     if os.path.exists(p) and _traversable_by_others(p)), "")  # fmt: skip
        if not real:
            raise RuntimeError(f"no python{v.major}.{v.minor} the test user can run ({interpreter} is out of reach)")
    lines[0] = f"#!{real} -IS"
    lines[at] = f"sys.path[:0] = {mirrored!r}"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class RootlessUser:
    """One unprivileged user (see the module doc). `run()` runs a command as it, with a login-like environment."""

    def __init__(self, work: Path, name: str, uid: int, gid: int, runtime: str) -> None:
        self.work = work
        self.name = name
        self.uid = uid
        self.gid = gid
        self.runtime = runtime
        self.home = work / "home"
        self.xdg = work / "run"
        self.tun_granted = False
        self.podman_ready = False

    # --- creation --------------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, runtime: str | None = None) -> RootlessUser:
        work = Path(tempfile.mkdtemp(prefix="ocipy-rootless-"))
        work.chmod(0o755)
        name = "ocirl" + uuid.uuid4().hex[:10]
        try:
            subprocess.run(
                ["useradd", "--no-create-home", "--home-dir", str(work / "home"), "--shell", "/bin/sh",
                 "--user-group", name],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        pw = pwd.getpwnam(name)
        try:
            launcher = runtime or shared_launcher(work)
        except BaseException:  # nothing of the user's exists yet but the account and the directory
            subprocess.run(["userdel", name], capture_output=True, check=False)
            shutil.rmtree(work, ignore_errors=True)
            raise
        user = cls(work, name, pw.pw_uid, pw.pw_gid, launcher)
        try:
            user._setup()
        except BaseException:
            user.destroy()
            raise
        return user

    def _setup(self) -> None:
        if not _subid_ranges("/etc/subuid", self.name) or not _subid_ranges("/etc/subgid", self.name):
            start = self._free_subid_start()
            subprocess.run(
                ["usermod", "--add-subuids", f"{start}-{start + 65535}", "--add-subgids", f"{start}-{start + 65535}",
                 self.name],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
        for d in (self.home, self.xdg):
            d.mkdir(mode=0o700)
            os.chown(d, self.uid, self.gid)
        conf = self.home / ".config" / "containers"
        files = {
            "containers.conf": (
                "[containers]\n"
                'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                "\n[engine]\n"
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
                'runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "ocipy"]\n'
                "\n[engine.runtimes]\n"
                f'ocipy = ["{self.runtime}"]\n'
            ),
            "storage.conf": '[storage]\ndriver = "overlay"\n',
            "registries.conf": "unqualified-search-registries = []\n",
        }
        for name, text in files.items():
            path = conf / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for d in (self.home / ".config", conf):
            os.chown(d, self.uid, self.gid)
        for name in files:
            os.chown(conf / name, self.uid, self.gid)

    @staticmethod
    def _free_subid_start() -> int:
        top = 100000
        for path in ("/etc/subuid", "/etc/subgid"):
            with contextlib.suppress(FileNotFoundError), open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        top = max(top, int(parts[1]) + int(parts[2]))
        return top

    def subids(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return _subid_ranges("/etc/subuid", self.name), _subid_ranges("/etc/subgid", self.name)

    def grant_tun(self) -> None:
        """Let this user (and no one else) open /dev/net/tun: slirp4netns, rootless Podman's default network."""
        if not self.tun_granted and os.path.exists(TUN):
            grant_device(TUN, self.uid)
            self.tun_granted = True

    # --- running as the user ---------------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": PATH,
            "XDG_RUNTIME_DIR": str(self.xdg),
            "CONTAINERS_REGISTRIES_CONF": str(self.home / ".config" / "containers" / "registries.conf"),
            "LANG": "C.UTF-8",
        }

    def popen_kwargs(self, env: dict[str, str] | None = None, cwd: str | Path | None = None) -> dict[str, object]:
        return {
            "user": self.uid,
            "group": self.gid,
            "extra_groups": [],
            "env": {**self.env, **(env or {})},
            "cwd": str(cwd or self.home),
        }

    def run(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 120,
        check: bool = False,
        input: str | None = None,
        files: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv as the user. files=True: stdout and stderr go to files (read back afterwards) instead of pipes,
        for commands that leave a process holding them (`create`, `run --detach`)."""
        if files:
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                rc = subprocess.run(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    timeout=timeout,
                    check=False,
                    **self.popen_kwargs(env, cwd),  # type: ignore[arg-type]
                ).returncode
                out.seek(0)
                err.seek(0)
                p = subprocess.CompletedProcess(list(argv), rc, out.read().decode(), err.read().decode())
        else:
            p = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                check=False,
                **self.popen_kwargs(env, cwd),  # type: ignore[arg-type]
            )
        if check and p.returncode != 0:
            raise AssertionError(f"as {self.name}: {' '.join(argv)} -> exit {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def podman_argv(self, *args: str, runtime: str | None = None) -> list[str]:
        return ["podman", "--runtime", runtime or self.runtime, *args]

    def podman(
        self,
        *args: str,
        runtime: str | None = None,
        check: bool = False,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.run(self.podman_argv(*args, runtime=runtime), check=check, timeout=timeout, input=input)

    def import_busybox(self, tar: Path | None = None) -> None:
        """The busybox image (scripts/make-rootfs) in this user's Podman store."""
        if tar is None:
            tar = build_busybox_tar(self.work)
        tar.chmod(0o644)
        self.podman("import", "--change", 'CMD ["/bin/sh"]', str(tar), IMAGE, check=True)
        self.podman_ready = True

    def files(self, *names: str) -> Path:
        """A directory the user owns under its home (for bundles, Containerfiles, volumes)."""
        d = self.home.joinpath(*names)
        d.mkdir(parents=True, exist_ok=True)
        for parent in [d, *d.parents]:
            if parent == self.home or self.home not in parent.parents:
                break
            os.chown(parent, self.uid, self.gid)
        return d

    def chown_tree(self, path: Path) -> None:
        for root, dirs, files in os.walk(path):
            os.chown(root, self.uid, self.gid, follow_symlinks=False)
            for n in dirs + files:
                os.chown(os.path.join(root, n), self.uid, self.gid, follow_symlinks=False)

    # --- removal ---------------------------------------------------------------------------------------------------
    def destroy(self) -> list[str]:
        """Remove everything create() made; returns what had to be forced (for the tests' own checks)."""
        forced: list[str] = []
        if self.podman_ready:
            with contextlib.suppress(Exception):
                self.podman("rm", "--all", "--force", "--time", "0", timeout=120)
            with contextlib.suppress(Exception):
                self.podman("system", "reset", "--force", timeout=120)
        killed = kill_uid(self.uid)
        if killed:
            forced.append(f"killed pids {killed}")
        left = unmount_under(self.work)
        if left:
            forced.append(f"unmounted {left}")
        if mounts_under(self.work):
            raise RuntimeError(f"mounts remain under {self.work}: {mounts_under(self.work)}")
        if self.tun_granted:
            revoke_device(TUN, self.uid)
            self.tun_granted = False
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.work)], check=False)
        p = subprocess.run(["userdel", self.name], capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"userdel {self.name}: {p.stderr.strip()}")
        if any(self.subids()):
            # older shadow versions leave the ranges: remove exactly ours
            for path in ("/etc/subuid", "/etc/subgid"):
                lines = Path(path).read_text().splitlines(keepends=True)
                Path(path).write_text("".join(x for x in lines if not x.startswith(self.name + ":")))
        return forced

    def exists(self) -> bool:
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            return False
        return True


def info(user: RootlessUser) -> dict[str, object]:
    p = user.podman("info", "--format", "json")
    return json.loads(p.stdout) if p.returncode == 0 else {}
