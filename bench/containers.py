"""ocipy vs runc running real containers: the same busybox bundle, side by side, in one run.

    .venv/bin/python bench/containers.py [-n 30] [--ocipy "CMD ..."] [--runc /usr/sbin/runc] [--json FILE] [--check]

Needs root. One busybox rootfs (scripts/make-rootfs) and one config.json (`runc spec` with terminal false and
args ["/bin/true"]) serve both runtimes; each runtime gets a private temporary state root. Every iteration, ocipy and
runc alternate (so drift on the machine hits both alike) and each does:

  run      `run --bundle B ID` in the foreground (the container runs /bin/true; a foreground run removes its
           container itself), timed; then an untimed `delete --force ID` in case it did not
  create   `create --bundle B ID`, timed
  state    `state ID` on the created container, timed
  rss      VmRSS of the created container's waiting init (`/proc/PID/status`, PID from `state`): for runc that is
           the `runc init` process, for ocipy its C init; in KiB
  start    `start ID`, timed; then we wait (untimed) until /bin/true is gone
  delete   `delete ID` of that stopped container, timed
  kill     `kill ID KILL` of a second, freshly created container (kill needs a live one: /bin/true would already
           have exited), timed; then an untimed `delete --force`
  list     `list` while the created container and the `sleep` container of the exec rows exist, timed
  pause    `pause` of the running `sleep` container, timed; then `resume` of it, timed

Times are wall-clock medians (time.perf_counter around the subprocess, spawn to exit) in ms, after W warm-up
iterations. stdout/stderr of the runtimes go to /dev/null. The table shows ocipy/runc ratios against issue 15's
targets (run, create, exec <= 1.5x runc 1.5.1; waiting-init RSS <= 0.1x), and for the lifecycle verbs (start, state,
kill, delete, pause, resume, list) ocipy over the bare interpreter measured in the same run (`python3 -IS -c pass`,
the floor every Python command starts from), whose target is <= 1.1x, with the ratio to runc beside it; --check
exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
# issue 15's targets, against runc 1.5.1 (the first --runc); the lifecycle verbs' (FLOOR_TARGETS) against the floor
TARGETS = {
    "run": 1.5,
    "create": 1.5,
    "state": None,
    "start": None,
    "kill": None,
    "delete": None,
    "pause": None,
    "resume": None,
    "list": None,
    "exec": 1.5,
    "exec -d": 1.5,
    "create seccomp": 2.0,
    "create netdev": 2.0,
    "rss": 0.1,
    "create maxrss": None,
}
LIFECYCLE = ["start", "state", "kill", "delete", "pause", "resume", "list"]
# issue 15: each lifecycle verb within 1.1x of the bare interpreter (FLOOR) measured in the same run
FLOOR_TARGETS = dict.fromkeys(LIFECYCLE, 1.1)
TIMED = ["run", "create", *LIFECYCLE, "exec", "exec -d", "create seccomp", "create netdev"]
ORDER = [*TIMED, "rss", "create maxrss"]
CACHE = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy"))
FLOOR = "python3 -IS -c pass"
# in every container id: the cgroup path derives from the id, so two benches at once must not share ids
RUN = os.getpid()
PODMAN_SECCOMP = Path("/usr/share/containers/seccomp.json")
MAXRSS = Path(tempfile.gettempdir()) / f"ocipy-bench-maxrss-{os.getpid()}"  # built from bench/maxrss.c by main()
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36
# Idle time before each exec row. The first cgroup.procs write after ~20 ms without one waits for an RCU grace period
# (the kernel's cgroup_threadgroup_rwsem, 6-16 ms here); a write closer behind another does not. Without a pause, who
# pays depends on how long ago the command before it wrote and how early in its run the runtime writes (runc ~4 ms
# in, ocipy ~12 ms): the order of the rows, not the runtime, decided the figure. After the pause every exec pays it,
# as an exec probe every few seconds does.
EXEC_GAP = 0.1


def init_cpu_ms(pid: int) -> float:
    """user+sys of the waiting init itself (/proc/PID/stat): what it did after create's fork (runc compiles and
    loads seccomp in `runc init`, ocipy in the `create` command), so the create rows add it to the command's CPU."""
    data = Path(f"/proc/{pid}/stat").read_text()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


def set_subreaper(on: bool) -> None:
    """Make this process the child subreaper (or stop being it): processes a runtime leaves running when it exits
    are re-parented to us instead of init, so their CPU can be counted."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans() -> float:
    """Wait for every child left (the re-parented ones: no other child of ours is alive here); their user+sys in
    ms, each with the children it waited for."""
    total = 0.0
    while True:
        try:
            _pid, _status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            return total
        total += (usage.ru_utime + usage.ru_stime) * 1000


def seccomp_config() -> dict | None:
    """bundle_config with Podman's default seccomp profile (converted for amd64 as Podman does), or None."""
    if not PODMAN_SECCOMP.exists():
        return None
    sys.path.insert(0, str(PROJECT / "tests" / "security"))
    from seccomp_profiles import PODMAN_CAPS, podman_spec_profile

    cfg = bundle_config()
    cfg["linux"]["seccomp"] = podman_spec_profile(json.loads(PODMAN_SECCOMP.read_text()), PODMAN_CAPS)
    return cfg


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def make_veth(name: str) -> None:
    """A veth pair on the host, one end with an address (what netDevices moves); waits for a previous pair of the
    same name to be gone (a deleted container's network namespace is torn down asynchronously)."""
    deadline = time.monotonic() + 10
    while link_exists(name) or link_exists(name + "p"):
        if time.monotonic() > deadline:
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
            subprocess.run(["ip", "link", "del", name + "p"], check=False, capture_output=True)
            deadline = time.monotonic() + 10
        time.sleep(0.005)
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
    subprocess.run(["ip", "addr", "add", "192.0.2.10/24", "dev", name], check=True)


def bundle_config() -> dict:
    """`runc spec` (runc 1.1.5) with terminal false, /bin/true, and no ambient set (runc spec asks for ambient
    capabilities without an inheritable set, which the kernel refuses; runc only warns)."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
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
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
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


class BenchError(Exception):
    pass


class Runtime:
    def __init__(self, name: str, argv: list[str], root: Path, bundle: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.root = root
        self.bundle = bundle
        self.env = env
        self.samples: dict[str, list[float]] = {k: [] for k in ORDER}
        self.cpu: dict[str, list[float]] = {k: [] for k in ORDER}  # user+sys of the command and its waited children
        self.ids: set[str] = set()
        self.extra: dict[str, Path] = {}  # "create seccomp"/"create netdev" -> bundle
        self.netdev = ""  # the host device the netdev bundle moves
        self.last_cpu = 0.0
        self.last_maxrss = 0

    def call(self, *args: str, check: bool = True, stdout: Any = subprocess.DEVNULL, rss: bool = False) -> float:
        """Time one command. stderr goes to a file, never a pipe: a created container keeps create's stdio.
        `rss`: run it through bench/maxrss.c, whose child's ru_maxrss is the command's own peak (last_maxrss)."""
        argv = [*self.argv, "--root", str(self.root), *args]
        rss_file = self.root.parent / f"{self.name}.maxrss"
        if rss:
            argv = [str(MAXRSS), str(rss_file), *argv]
        err_path = self.root.parent / f"{self.name}.stderr"
        with open(err_path, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err, env=self.env)
            # a blocking wait: subprocess's wait(timeout=...) polls with sleeps of up to 50 ms, which quantises
            # every figure; a watchdog thread enforces the time limit instead
            watchdog = threading.Timer(60, proc.kill)
            watchdog.start()
            # wait4: the rusage of the command and of the children it waited for (not the container's processes)
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = rc = os.waitstatus_to_exitcode(status)
            self.last_cpu = (usage.ru_utime + usage.ru_stime) * 1000
            self.last_maxrss = int(rss_file.read_text()) if rss and rc == 0 else usage.ru_maxrss
            elapsed = (time.perf_counter() - t0) * 1000
            hung = not watchdog.is_alive()
            watchdog.cancel()
            if hung:
                raise BenchError(f"{self.name}: `{' '.join(argv)}` hung (60 s)")
        if check and rc != 0:
            raise BenchError(
                f"{self.name}: `{' '.join(argv)}` exited {rc}: {err_path.read_text(errors='replace').strip()}"
            )
        return elapsed

    def state(self, cid: str) -> tuple[float, dict]:
        """Time `state ID` like every other command (blocking wait; its output goes to a file, read afterwards)."""
        out_path = self.root.parent / f"{self.name}.stdout"
        with open(out_path, "wb") as out:
            elapsed = self.call("state", cid, stdout=out)
        return elapsed, json.loads(out_path.read_bytes())

    def timed(self, samples: dict[str, float], cpu: dict[str, float], key: str, *args: str, rss: bool = False) -> None:
        samples[key] = self.call(*args, rss=rss)
        cpu[key] = self.last_cpu

    def timed_exec(self, samples: dict[str, float], cpu: dict[str, float], key: str, *args: str) -> None:
        """An exec row, counted alike for every runtime: the CPU of the command and of every process it started,
        waited for or not. `runc exec -d` leaves its `runc init` (which joins the namespaces and becomes the process)
        running; ocipy waits for its stage-0 init and leaves the process. We are their subreaper for the command and
        reap them after it. Wall: spawn to the command's own exit, after an idle pause (EXEC_GAP)."""
        time.sleep(EXEC_GAP)
        set_subreaper(True)
        try:
            self.timed(samples, cpu, key, "exec", *args)
            cpu[key] += reap_orphans()
        finally:
            set_subreaper(False)

    def setup(self, sleeper_bundle: Path) -> None:
        """A long-running container (`sleep`) that every iteration's `exec` runs in."""
        self.sleeper = f"bench-sleeper-{self.name}-{RUN}"
        self.ids.add(self.sleeper)
        self.call("run", "--detach", "--bundle", str(sleeper_bundle), self.sleeper)

    def iteration(self, i: int, record: bool) -> None:
        samples: dict[str, float] = {}
        cpu: dict[str, float] = {}
        run_id, main_id, kill_id = f"bench-run-{i}-{RUN}", f"bench-main-{i}-{RUN}", f"bench-kill-{i}-{RUN}"
        self.ids.update((run_id, main_id, kill_id))

        self.timed(samples, cpu, "run", "run", "--bundle", str(self.bundle), run_id)
        self.call("delete", "--force", run_id, check=False)

        self.timed(samples, cpu, "create", "create", "--bundle", str(self.bundle), main_id, rss=True)
        samples["create maxrss"] = float(self.last_maxrss)
        samples["state"], st = self.state(main_id)
        cpu["state"] = self.last_cpu
        self.timed(samples, cpu, "list", "list")
        cpu["create"] += init_cpu_ms(int(st["pid"]))
        samples["rss"] = float(vmrss_kib(int(st["pid"])))
        pid = int(st["pid"])
        self.timed(samples, cpu, "start", "start", main_id)
        wait_gone(pid)
        self.timed(samples, cpu, "delete", "delete", main_id)

        self.call("create", "--bundle", str(self.bundle), kill_id)
        kpid = int(self.state(kill_id)[1]["pid"])
        self.timed(samples, cpu, "kill", "kill", kill_id, "KILL")
        wait_gone(kpid)
        self.call("delete", "--force", kill_id, check=False)

        self.timed_exec(samples, cpu, "exec", self.sleeper, "/bin/true")
        self.timed_exec(samples, cpu, "exec -d", "--detach", self.sleeper, "/bin/true")
        self.timed(samples, cpu, "pause", "pause", self.sleeper)
        self.timed(samples, cpu, "resume", "resume", self.sleeper)
        self.extra_creates(i, samples, cpu)

        if record:
            for k, v in samples.items():
                self.samples[k].append(v)
            for k, v in cpu.items():
                self.cpu[k].append(v)

    def extra_creates(self, i: int, samples: dict[str, float], cpu: dict[str, float]) -> None:
        """`create` with Podman's default seccomp profile, uncached (ocipy's cache of compiled programs is emptied
        first), and with a netDevices entry (a fresh veth each time); each then deleted. The CPU includes the waiting
        init's own, as for `create`."""
        for key, bundle in self.extra.items():
            cid = f"bench-{key.split()[1]}-{i}-{RUN}"
            self.ids.add(cid)
            if key == "create seccomp":
                shutil.rmtree(self.root / "@cache", ignore_errors=True)
            else:
                make_veth(self.netdev)
            self.timed(samples, cpu, key, "create", "--bundle", str(bundle), cid)
            cpu[key] += init_cpu_ms(int(self.state(cid)[1]["pid"]))
            if key == "create netdev" and link_exists(self.netdev):  # this runtime ignores netDevices (runc 1.1)
                del samples[key], cpu[key]
                subprocess.run(["ip", "link", "del", self.netdev], check=False, capture_output=True)
            self.call("delete", "--force", cid, check=False)

    def cleanup(self) -> None:
        leftovers = set(self.ids)
        with_root = self.root.exists()
        if with_root:
            leftovers |= {p.name for p in self.root.iterdir()}
        for cid in sorted(leftovers):
            subprocess.run(
                [*self.argv, "--root", str(self.root), "delete", "--force", cid],
                check=False,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=self.env,
                timeout=60,
            )

    def median(self, key: str, cpu: bool = False) -> float | None:
        vals = (self.cpu if cpu else self.samples)[key]
        return statistics.median(vals) if vals else None


def floor_once(env: dict[str, str]) -> tuple[float, float]:
    """The bare interpreter ocipy's launcher runs on (`python3 -IS -c pass`): (wall ms, CPU ms)."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(sys.executable, [sys.executable, "-IS", "-c", "pass"], env)
    _pid, _status, usage = os.wait4(pid, 0)
    return (time.perf_counter() - t0) * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def vmrss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if data[data.rindex(")") + 2 :].split()[0] in ("Z", "X"):
            return
        time.sleep(0.001)
    raise BenchError(f"pid {pid} still running after {timeout}s")


def extra_bundles(work: Path, bundle: Path, runtimes: list[Runtime]) -> None:
    """The bundles of the "create seccomp" and "create netdev" rows (the same rootfs); one netdev bundle per runtime,
    each moving its own device."""
    seccomp = seccomp_config()
    for k, rt in enumerate(runtimes):
        if seccomp is not None:
            path = work / f"seccomp-{rt.name}"
            path.mkdir()
            seccomp["root"]["path"] = str(bundle / "rootfs")
            (path / "config.json").write_text(json.dumps(seccomp, indent=2))
            rt.extra["create seccomp"] = path
        if shutil.which("ip"):
            rt.netdev = f"obench{k}"
            cfg = bundle_config()
            cfg["root"]["path"] = str(bundle / "rootfs")
            cfg["linux"]["netDevices"] = {rt.netdev: {"name": "eth1"}}
            path = work / f"netdev-{rt.name}"
            path.mkdir()
            (path / "config.json").write_text(json.dumps(cfg, indent=2))
            rt.extra["create netdev"] = path


def default_ocipy(work: Path) -> list[str]:
    """The command callers run: the -IS launcher `scripts/setup` installs, generated afresh for this interpreter."""
    launcher = work / "ocipy"
    subprocess.run([sys.executable, "-m", "ocipy.launcher", str(launcher)], check=True, cwd=PROJECT)
    return [str(launcher)]


def cell(rt: Runtime, key: str, unit: str) -> str:
    w, c = rt.median(key), rt.median(key, cpu=True)
    return fmt(w, unit) + (f" ({c:.1f})" if c is not None else "")


def runc_version(argv: str) -> str:
    try:
        out = subprocess.run(
            [*shlex.split(argv), "--version"], check=False, capture_output=True, text=True, timeout=10
        ).stdout
    except OSError as exc:
        return str(exc)
    return out.splitlines()[0] if out else "?"


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if unit == "KiB" else f"{v:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=int(os.environ.get("BENCH_N", "30")), help="measured iterations")
    ap.add_argument("-w", "--warmup", type=int, default=3, help="unmeasured warm-up iterations")
    ap.add_argument(
        "--ocipy",
        default=None,
        help="command line for ocipy (default: a fresh -IS launcher, as scripts/setup installs)",
    )
    ap.add_argument(
        "--runc",
        action="append",
        default=None,
        help="command line for a runc (repeatable; the first is the one ratios are taken against). Default: "
        "$OCIPY_CACHE/bin/runc-1.5.1 (scripts/refs) when present, then Debian's /usr/sbin/runc",
    )
    ap.add_argument("--json", default=None, help="also write the medians and raw samples to this file")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument(
        "--state-dir",
        default="/run",
        help="where the runtimes' state roots are made (default /run, where runc's /run/runc and ocipy's /run/ocipy "
        "are: a tmpfs on most hosts; on a disk the state files' writes and unlinks are timed on it)",
    )
    ap.add_argument("--no-extra", action="store_true", help="skip the seccomp and netDevices create rows")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/containers.py needs root", file=sys.stderr)
        return 2

    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for k in ("LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET"):
        env.pop(k, None)

    runcs = args.runc or [
        str(p) for p in (CACHE / "bin" / "runc-1.5.1", Path(shutil.which("runc") or "/usr/sbin/runc")) if p.exists()
    ]
    work = Path(tempfile.mkdtemp(prefix="ocipy-bench-"))
    # `create` runs through this small C parent: a child of this Python process would report our own peak RSS
    subprocess.run(["cc", "-O2", "-o", str(MAXRSS), str(PROJECT / "bench" / "maxrss.c")], check=True)
    state_dir = Path(tempfile.mkdtemp(prefix="ocipy-bench-", dir=args.state_dir))
    ocipy_argv = shlex.split(args.ocipy) if args.ocipy else default_ocipy(work)
    runtimes: list[Runtime] = []
    try:
        bundle = work / "bundle"
        bundle.mkdir()
        subprocess.run([str(PROJECT / "scripts" / "make-rootfs"), str(bundle / "rootfs")], check=True, timeout=120)
        (bundle / "config.json").write_text(json.dumps(bundle_config(), indent=2))
        sleeper = work / "sleeper"  # the same rootfs, running `sleep` for the exec rows
        sleeper.mkdir()
        cfg = bundle_config()
        cfg["process"]["args"] = ["/bin/sleep", "100000"]
        cfg["root"]["path"] = str(bundle / "rootfs")
        (sleeper / "config.json").write_text(json.dumps(cfg, indent=2))
        runtimes = [Runtime("ocipy", ocipy_argv, state_dir / "ocipy", bundle, env)]
        for k, r in enumerate(runcs):
            runtimes.append(Runtime(f"runc{k}", shlex.split(r), state_dir / f"runc{k}", bundle, env))
        if not args.no_extra:
            extra_bundles(work, bundle, runtimes)
        print(f"ocipy: {' '.join(ocipy_argv)}", flush=True)
        for rt, r in zip(runtimes[1:], runcs):
            print(f"{rt.name}: {r} ({runc_version(r)})")
        print(
            f"bundle: runc spec, terminal false, /bin/true (exec: /bin/true in a `sleep` container); "
            f"N={args.n} (+{args.warmup} warm-up), medians; CPU = user+sys of the command and its waited children "
            f"(exec rows: and of every process it started, reaped by us as their subreaper; {EXEC_GAP * 1000:.0f} ms "
            "idle before each exec)"
        )
        for rt in runtimes:
            rt.setup(sleeper)
        floor: list[tuple[float, float]] = []
        for i in range(args.warmup + args.n):
            for rt in runtimes:
                rt.iteration(i, record=i >= args.warmup)
            sample = floor_once(env)
            if i >= args.warmup:
                floor.append(sample)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for rt in runtimes:
            rt.cleanup()
            if rt.netdev:
                subprocess.run(["ip", "link", "del", rt.netdev], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)
        MAXRSS.unlink(missing_ok=True)

    ocipy, runc = runtimes[0], runtimes[1]
    rows = []
    missed = []
    fl_wall = statistics.median(w for w, _ in floor)
    fl_cpu = statistics.median(c for _, c in floor)
    names = [rt.name for rt in runtimes[1:]]
    print(
        f"\nwall ms (CPU ms) medians; ratios ocipy/{runc.name}; {FLOOR}: {fl_wall:.1f} ({fl_cpu:.1f}); "
        "/floor: ocipy over it, wall/CPU (the lifecycle verbs' target, `fl`)"
    )
    head = f"{'':15}{'ocipy':>14}" + "".join(f"{n:>14}" for n in names)
    print(head + f"{'wall x':>8}{'CPU x':>7}{'/floor':>11}{'target':>10}")
    for key in ORDER:
        unit = "KiB" if key in ("rss", "create maxrss") else "ms"
        a, b = ocipy.median(key), runc.median(key)
        ac, bc = ocipy.median(key, cpu=True), runc.median(key, cpu=True)
        ratio = a / b if a is not None and b else None
        cratio = ac / bc if ac is not None and bc else None
        floor_wall = a / fl_wall if unit == "ms" and a is not None else None
        floor_cpu = ac / fl_cpu if unit == "ms" and ac is not None else None
        target, floor_target = TARGETS[key], FLOOR_TARGETS.get(key)
        # the lifecycle verbs against the floor, the others against runc; the worse of wall and CPU decides
        measured = (floor_wall, floor_cpu) if floor_target is not None else (ratio, cratio)
        goal = floor_target if floor_target is not None else target
        verdict = ""
        if goal is not None and measured[0] is not None:
            worst = max(measured[0], measured[1] or 0)
            verdict = "ok" if worst <= goal else "MISSED"
            if worst > goal:
                missed.append(key)

        label = {"rss": "init RSS (KiB)", "create maxrss": "create peak KiB"}.get(key, f"{key} (ms)")
        tgt = f"<={goal:g}x" + (" fl" if floor_target is not None else "") if goal is not None else "-"
        over_floor = f"{floor_wall:.2f}/{floor_cpu:.2f}" if floor_wall is not None and floor_cpu is not None else "-"
        print(
            f"{label:15}{cell(ocipy, key, unit):>14}"
            + "".join(f"{cell(rt, key, unit):>14}" for rt in runtimes[1:])
            + f"{(f'{ratio:.2f}x' if ratio is not None else '-'):>8}{(f'{cratio:.2f}x' if cratio else '-'):>7}"
            + f"{over_floor:>11}{tgt:>10}  {verdict}"
        )
        rows.append(
            {
                "metric": key,
                "unit": unit,
                **{rt.name: rt.median(key) for rt in runtimes},
                **{f"{rt.name} cpu": rt.median(key, cpu=True) for rt in runtimes},
                "ratio": ratio,
                "cpu ratio": cratio,
                "target": target,
                "over floor": floor_wall,
                "cpu over floor": floor_cpu,
                "floor target": floor_target,
            }
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "n": args.n,
                    "floor": {"wall": fl_wall, "cpu": fl_cpu},
                    "rows": rows,
                    "samples": {rt.name: rt.samples for rt in runtimes},
                    "cpu": {rt.name: rt.cpu for rt in runtimes},
                },
                indent=2,
            )
        )
    if missed:
        print(f"\ntargets missed: {', '.join(missed)}")
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
