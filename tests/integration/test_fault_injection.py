"""Crash consistency: `create`, `run`, `exec` and `delete` SIGKILLed at every step boundary and at random instants,
then `delete --force ID`: it must exit 0 and leave no process, mount, cgroup directory (every hierarchy, `unified`
and `name=systemd` included), state directory or network device behind.

The steps come from the command itself: one run with `OCIPY_FAULT_TRACE` lists the boundaries it crosses
(ocipy/faults.py), then one trial per boundary kills it there with `OCIPY_FAULT=N`. The random instants are drawn
from a seed printed with the figures (`OCIPY_FAULT_SEED=S` replays them). The figures (trials, leaks, internal
errors) are printed whatever the outcome; the test fails on any leak, any failed `delete --force` or any
"internal error".
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ocipy_it_helpers as h  # loaded by conftest.py
import ocipy_leftovers as L  # loaded by conftest.py
import pytest

pytestmark = [*(m for m in h.pytestmark() if m.name != "timeout"), pytest.mark.timeout(600)]
if not h.IS_OCIPY:
    pytestmark.append(pytest.mark.skip(reason="fault injection is ocipy's own hook (OCIPY_FAULT)"))

SEED = int(os.environ.get("OCIPY_FAULT_SEED") or random.SystemRandom().randrange(2**32))
RANDOM_TRIALS = int(os.environ.get("OCIPY_FAULT_RANDOM", "24"))
TOKEN = uuid.uuid4().hex[:6]


@dataclass
class Tally:
    trials: int = 0
    killed: int = 0
    leaks: Counter[str] = field(default_factory=Counter)
    leaky_trials: list[str] = field(default_factory=list)
    delete_failures: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)

    def line(self, what: str) -> str:
        leaks = ", ".join(f"{k} {v}" for k, v in sorted(self.leaks.items())) or "none"
        return (
            f"{what}: {self.trials} trials ({self.killed} killed mid-way), trials with leftovers "
            f"{len(self.leaky_trials)} ({leaks}), delete --force failures {len(self.delete_failures)}, "
            f"internal errors {len(self.internal_errors)}"
        )

    def problems(self) -> list[str]:
        return self.leaky_trials + self.delete_failures + self.internal_errors


RIGS: list[Rig] = []  # every rig of the running test: its trials are force-deleted and cleaned at teardown


@pytest.fixture(autouse=True)
def _clean_rigs() -> Iterator[None]:
    """A failing assertion must not leave a container behind: every trial is deleted and probed again."""
    try:
        yield
    finally:
        for rig in RIGS:
            for cid, probe in rig.trials:
                rig.call("delete", "--force", cid)
                probe.clean()
        RIGS.clear()


class Rig:
    """One state root, one bundle; each trial gets a fresh id and cgroup name."""

    def __init__(self, tmp: Path, bundle: h.Bundle, *, userns: bool = False, netdev: bool = False) -> None:
        self.tmp = tmp
        self.root = tmp / "state"
        self.bundle = bundle
        self.userns = userns
        self.netdev = netdev
        self.n = 0
        self.calls = tmp / "calls"
        self.calls.mkdir(exist_ok=True)
        self.trials: list[tuple[str, Any]] = []
        RIGS.append(self)

    def argv(self, *args: str) -> list[str]:
        return [*h.runtime_argv(), "--root", str(self.root), *args]

    def popen(self, args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
        self.n += 1
        err = self.calls / f"{self.n}.err"
        with open(err, "wb") as fe:
            proc = subprocess.Popen(
                self.argv(*args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=fe,
                env=h.runtime_env(env),
            )
        L.OURS.add(proc.pid)
        return proc, err

    def call(self, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
        proc, err = self.popen(list(args), env)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -999
        return rc, err.read_text(errors="replace")

    def trial(self, hint: str) -> tuple[str, Any]:
        """A fresh id and cgroup; the bundle rewritten for them (and a fresh veth when the rig moves one in)."""
        cid = f"fi-{TOKEN}-{hint}-{self.n}"
        cg = f"ocipy-fi-{TOKEN}-{self.n}-{uuid.uuid4().hex[:4]}"
        self.bundle.linux["cgroupsPath"] = f"/{cg}"
        veth = None
        if self.netdev:
            moved = f"ofi{uuid.uuid4().hex[:8]}"
            peer = moved + "p"
            subprocess.run(["ip", "link", "add", moved, "type", "veth", "peer", "name", peer], check=True)
            self.bundle.linux["netDevices"] = {moved: {"name": "eth5"}}
            veth = (moved, peer)
        self.bundle.write()
        probe = L.Probe(self.root, cid, cg, marks=[str(self.bundle.path), cid], veth=veth)
        self.trials.append((cid, probe))
        return cid, probe


def _configure(bundle: h.Bundle, *, userns: bool, netdev: bool) -> None:
    bundle.args("sh", "-c", "sleep 1000")
    # resources in several v1 hierarchies and a hook: more steps, more to undo
    bundle.linux["resources"] = {"memory": {"limit": 256 * 1024 * 1024}, "pids": {"limit": 200}, "cpu": {"shares": 512}}
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/true"}], "createContainer": [{"path": "/bin/true"}]}
    if userns:
        # (a createContainer hook cannot join a user-namespaced container's ipc namespace yet: EPERM)
        bundle.config["hooks"].pop("createContainer")
        bundle.set_namespace("user")
        bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
        for dirpath, dirnames, filenames in os.walk(bundle.rootfs):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, 100000, 100000)
    if not netdev:
        bundle.linux.pop("netDevices", None)


def _finish(rig: Rig, tally: Tally, cid: str, probe: Any, label: str, killed: bool) -> None:
    """`delete --force`, then look for leftovers; clean what is left so the next trial starts clean."""
    tally.trials += 1
    tally.killed += killed
    rc, err = rig.call("delete", "--force", cid)
    if rc != 0:
        tally.delete_failures.append(f"{label}: delete --force exited {rc}: {err.strip()[:300]}")
    if "internal error" in err or "Traceback" in err:
        tally.internal_errors.append(f"{label}: delete --force: {err.strip()[:300]}")
    found = probe.check(grace=2.0)
    if found:
        tally.leaks.update(found.keys())
        tally.leaky_trials.append(f"{label}: {found}")
    probe.clean()


def _traced_steps(rig: Rig, args: list[str], hint: str, before: Any = None) -> list[str]:
    """The step names a command crosses on its way (one traced, uninterrupted run)."""
    cid, probe = rig.trial(hint)
    if before is not None:
        before(cid)
    trace = rig.tmp / f"trace-{rig.n}"
    rc, err = rig.call(*args, cid, env={"OCIPY_FAULT_TRACE": str(trace)})
    assert rc == 0, f"{args} {cid}: exit {rc}: {err}"
    rig.call("delete", "--force", cid)
    probe.check(grace=2.0)
    probe.clean()
    return trace.read_text().split() if trace.exists() else []


@pytest.fixture
def subreaped() -> Iterator[None]:
    with h.subreaper(), L.Reaper():
        try:
            yield
        finally:
            L.reap()


def _report(capsys: pytest.CaptureFixture[str], tally: Tally, what: str, steps: list[str]) -> None:
    with capsys.disabled():
        print(f"\n{tally.line(what)} [seed {SEED}]\n  steps: {' '.join(steps)}")
        for p in tally.problems()[:20]:
            print(f"  {p}")


def _kill_at_each_step(rig: Rig, tally: Tally, args: list[str], hint: str, before: Any = None) -> list[str]:
    steps = _traced_steps(rig, args, hint, before)
    assert steps, f"{args}: no fault points were crossed (OCIPY_FAULT_TRACE)"
    for n, step in enumerate(steps, 1):
        cid, probe = rig.trial(hint)
        if before is not None:
            before(cid)
        proc, err = rig.popen([*args, cid], {"OCIPY_FAULT": str(n)})
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            tally.internal_errors.append(f"{hint} at {n} ({step}): hung")
        text = err.read_text(errors="replace")
        if "internal error" in text or "Traceback" in text:
            tally.internal_errors.append(f"{hint} at {n} ({step}): {text.strip()[:300]}")
        _finish(rig, tally, cid, probe, f"{hint} killed at step {n} ({step})", rc == -signal.SIGKILL)
    return steps


def _kill_at_random(rig: Rig, tally: Tally, args: list[str], hint: str, rng: random.Random, trials: int) -> None:
    # how long the command takes here, so the instants cover all of it
    cid, probe = rig.trial(hint)
    t0 = time.monotonic()
    rig.call(*args, cid)
    span = max(0.05, time.monotonic() - t0)
    _finish(rig, tally, cid, probe, f"{hint} (uninterrupted)", False)
    for _ in range(trials):
        cid, probe = rig.trial(hint)
        delay = rng.uniform(0, span * 1.1)
        proc, err = rig.popen([*args, cid])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(30)
        text = err.read_text(errors="replace")
        if "internal error" in text or "Traceback" in text:
            tally.internal_errors.append(f"{hint} after {delay:.3f}s: {text.strip()[:300]}")
        _finish(rig, tally, cid, probe, f"{hint} killed after {delay:.3f}s", rc == -signal.SIGKILL)


def test_create_killed_at_every_step_and_at_random(tmp_path, bundle, subreaped, capsys):
    _configure(bundle, userns=False, netdev=False)
    rig = Rig(tmp_path, bundle)
    tally = Tally()
    args = ["create", "--bundle", str(bundle.path)]
    steps = _kill_at_each_step(rig, tally, args, "create")
    _kill_at_random(rig, tally, args, "create-rnd", random.Random(SEED), RANDOM_TRIALS)
    _report(capsys, tally, "create killed", steps)
    assert not tally.problems(), "\n".join(tally.problems())


def test_create_with_userns_and_netdev_killed_at_every_step(tmp_path, open_bundle, subreaped, capsys):
    os.chmod(open_bundle.path, 0o755)
    _configure(open_bundle, userns=True, netdev=True)
    rig = Rig(tmp_path, open_bundle, userns=True, netdev=True)
    tally = Tally()
    args = ["create", "--bundle", str(open_bundle.path)]
    steps = _kill_at_each_step(rig, tally, args, "create-userns")
    _kill_at_random(rig, tally, args, "create-userns-rnd", random.Random(SEED + 1), RANDOM_TRIALS // 2)
    _report(capsys, tally, "create (user namespace, netDevices) killed", steps)
    assert not tally.problems(), "\n".join(tally.problems())


def test_run_killed_at_every_step(tmp_path, bundle, subreaped, capsys):
    _configure(bundle, userns=False, netdev=False)
    bundle.args("true")
    rig = Rig(tmp_path, bundle)
    tally = Tally()
    args = ["run", "--bundle", str(bundle.path)]
    steps = _kill_at_each_step(rig, tally, args, "run")
    _kill_at_random(rig, tally, args, "run-rnd", random.Random(SEED + 2), RANDOM_TRIALS // 3)
    _report(capsys, tally, "run killed", steps)
    assert not tally.problems(), "\n".join(tally.problems())


def test_exec_killed_at_every_step(tmp_path, bundle, subreaped, capsys):
    _configure(bundle, userns=False, netdev=False)
    rig = Rig(tmp_path, bundle)
    tally = Tally()

    def running(cid: str) -> None:
        rc, err = rig.call("run", "--detach", "--bundle", str(bundle.path), cid)
        assert rc == 0, err

    # exec's id comes last: `exec ID CMD` is built by the trial as [*args, cid] -- so the command goes in --process
    proc_file = tmp_path / "process.json"
    import json

    proc_file.write_text(json.dumps({**bundle.process, "args": ["sleep", "1000"]}))
    steps = _kill_at_each_step(rig, tally, ["exec", "--detach", "--process", str(proc_file)], "exec", before=running)
    _report(capsys, tally, "exec killed", steps)
    assert not tally.problems(), "\n".join(tally.problems())


def test_delete_killed_at_every_step(tmp_path, bundle, subreaped, capsys):
    _configure(bundle, userns=False, netdev=False)
    rig = Rig(tmp_path, bundle)
    tally = Tally()

    def running(cid: str) -> None:
        rc, err = rig.call("run", "--detach", "--bundle", str(bundle.path), cid)
        assert rc == 0, err

    steps = _kill_at_each_step(rig, tally, ["delete", "--force"], "delete", before=running)
    _report(capsys, tally, "delete --force killed", steps)
    assert not tally.problems(), "\n".join(tally.problems())


def test_half_made_container_is_listed_and_undone_by_the_next_create(tmp_path, bundle, subreaped):
    """docs/cli.md: `list` and `state` show a half-made container as stopped (pid 0); a `create` of the same id
    undoes it and goes on."""
    _configure(bundle, userns=False, netdev=False)
    rig = Rig(tmp_path, bundle)
    cid, probe = rig.trial("half")
    rc, err = rig.call("create", "--bundle", str(bundle.path), cid, env={"OCIPY_FAULT": "create.pid-recorded"})
    assert rc == -signal.SIGKILL, err
    rc, out_err = rig.call("state", cid)
    assert rc == 0, out_err
    listed = subprocess.run(rig.argv("list", "--format", "json"), capture_output=True, text=True, check=True)
    import json

    rows = json.loads(listed.stdout)
    assert [(r["id"], r["status"], r["pid"]) for r in rows] == [(cid, "stopped", 0)]
    rc, err = rig.call("create", "--bundle", str(bundle.path), cid)
    assert rc == 0, err
    listed = subprocess.run(rig.argv("list", "--format", "json"), capture_output=True, text=True, check=True)
    assert [(r["id"], r["status"]) for r in json.loads(listed.stdout)] == [(cid, "created")]
    rc, err = rig.call("delete", "--force", cid)
    assert rc == 0, err
    assert not probe.check(grace=2.0)


def test_an_unrecorded_init_leaves_by_itself(tmp_path, bundle, subreaped):
    """Killed after the init's clone but before its pid is recorded (`create.got-pid`): stage 0 dies with create
    (PR_SET_PDEATHSIG) and the container init, never acknowledged, leaves by itself -- before any `delete`, so it
    holds without a cgroup to find it by too (docs/contracts.md, "Recovery")."""
    _configure(bundle, userns=False, netdev=False)
    bundle.config.pop("hooks")  # no later rendezvous: without the ack the init would wait on the fifo for ever
    rig = Rig(tmp_path, bundle)
    cid, probe = rig.trial("unrecorded")
    rc, err = rig.call("create", "--bundle", str(bundle.path), cid, env={"OCIPY_FAULT": "create.got-pid"})
    assert rc == -signal.SIGKILL, err
    assert h.wait_until(lambda: not probe.processes(), 5), [L._cmdline(p) for p in probe.processes()]
    rc, err = rig.call("delete", "--force", cid)
    assert rc == 0, err
    assert not probe.check(grace=2.0)
