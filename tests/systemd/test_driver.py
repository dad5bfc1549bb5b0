"""The systemd cgroup driver against a real systemd (252, Debian 12) booted in the nspawn rig: the scope unit, its
properties as `systemctl show` reports them, the limits as the container sees them, update, pause/resume, exec,
delete, and the failure paths (unreachable, unit exists, job fails) leaving nothing behind."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root

SLEEP = ["sh", "-c", "sleep 300"]
OCIPY_BIN = "/usr/local/bin/ocipy"
PROJECT = Path(__file__).resolve().parents[2]


def cid(prefix: str = "sd") -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def scope_dirs(rig: Any, unit: str) -> list[str]:
    return rig.enter(["find", "/sys/fs/cgroup", "-name", unit]).stdout.split()


def assert_gone(rig: Any, ocipy: Any, name: str, unit: str) -> None:
    assert rig.show(unit, "LoadState")["LoadState"] == "not-found"
    assert scope_dirs(rig, unit) == []
    assert name not in ocipy("list", "--quiet").stdout.split()


def in_container(ocipy: Any, name: str, cmd: str) -> str:
    return ocipy("exec", name, "sh", "-c", cmd).stdout


def test_scope_limits_update_pause_exec_delete(rig: Any, bundles: Any, ocipy: Any) -> None:
    name = cid()
    unit = f"ocipy-{name}.scope"
    res = {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20},
        "pids": {"limit": 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "blockIO": {"weight": 300},
    }
    b = bundles.make(SLEEP, res, f"ocipytest-a.slice:ocipy:{name}")
    ocipy("--systemd-cgroup", "create", "--bundle", str(b), name)
    try:
        show = rig.show(
            unit, "ActiveState", "Slice", "Delegate", "Description", "ControlGroup", "MemoryMax", "MemoryLow",
            "TasksMax", "CPUShares", "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "AllowedCPUs", "BlockIOWeight",
            "DevicePolicy",
        )  # fmt: skip
        assert show["ActiveState"] == "active"
        assert show["Slice"] == "ocipytest-a.slice"
        assert show["ControlGroup"] == f"/ocipytest.slice/ocipytest-a.slice/{unit}"
        assert show["Delegate"] == "yes"
        assert show["Description"] == f"ocipy container {name}"
        assert show["MemoryMax"] == str(64 << 20)
        assert show["MemoryLow"] == str(32 << 20)
        assert show["TasksMax"] == "20"
        assert show["CPUShares"] == "512"
        assert show["CPUQuotaPerSecUSec"] == "500ms"
        assert show["CPUQuotaPeriodUSec"] == "100ms"
        assert show["AllowedCPUs"] == "0"
        assert show["BlockIOWeight"] == "300"
        # the scope's cgroup in every v1 hierarchy, the ones systemd does not manage made by ocipy (as runc)
        dirs = scope_dirs(rig, unit)
        for h in ("memory", "pids", "cpu", "cpuset", "freezer", "devices", "systemd"):
            assert f"/sys/fs/cgroup/{h}/ocipytest.slice/ocipytest-a.slice/{unit}" in dirs
        # only the init is in the scope: the placeholder that held it until the init joined has left
        procs = rig.enter(["cat", f"/sys/fs/cgroup/systemd/ocipytest.slice/ocipytest-a.slice/{unit}/cgroup.procs"])
        assert len(procs.stdout.split()) == 1
        ocipy("start", name)
        # from inside the container (its cgroup namespace is rooted at the scope)
        seen = in_container(
            ocipy,
            name,
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
            "/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpuset/cpuset.cpus",
        ).split()
        assert seen == [str(64 << 20), "20", "512", "50000", "0"]
        # exec joins the scope's cgroup
        procs = in_container(ocipy, name, "cat /proc/self/cgroup")
        assert all(line.endswith(":/") for line in procs.split()), procs
        # update: the unit's properties and the files
        ocipy("--systemd-cgroup", "update", "--memory", "128m", "--pids-limit", "30", name)
        show = rig.show(unit, "MemoryMax", "TasksMax")
        assert show == {"MemoryMax": str(128 << 20), "TasksMax": "30"}
        seen = in_container(ocipy, name, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
        assert seen.split() == [str(128 << 20), "30"]
        # pause/resume freeze the scope
        ocipy("pause", name)
        assert '"paused"' in ocipy("state", name).stdout
        freezer = f"/sys/fs/cgroup/freezer/ocipytest.slice/ocipytest-a.slice/{unit}/freezer.state"
        assert rig.enter(["cat", freezer]).stdout.strip() == "FROZEN"
        ocipy("resume", name)
        assert rig.enter(["cat", freezer]).stdout.strip() == "THAWED"
    finally:
        ocipy("delete", "--force", name, check=False)
    assert_gone(rig, ocipy, name, unit)


def test_default_cgroups_path(rig: Any, bundles: Any, ocipy: Any) -> None:
    """An empty cgroupsPath: runc's form with ocipy's prefix, system.slice:ocipy:<id>."""
    name = cid()
    unit = f"ocipy-{name}.scope"
    b = bundles.make(["true"], {"memory": {"limit": 32 << 20}})
    out = ocipy("--systemd-cgroup", "run", "--bundle", str(b), "--detach", name)
    try:
        assert rig.show(unit, "ControlGroup")["ControlGroup"] in (f"/system.slice/{unit}", "")
    finally:
        ocipy("delete", "--force", name, check=False)
    assert out.returncode == 0
    assert_gone(rig, ocipy, name, unit)


def test_run_attached_exit_code_and_memory_enforced(rig: Any, bundles: Any, ocipy: Any) -> None:
    """The memory limit is enforced: a process allocating past it is OOM-killed in the scope."""
    name = cid()
    b = bundles.make(["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"],
                     {"memory": {"limit": 16 << 20, "swap": 16 << 20}})  # fmt: skip
    out = ocipy("--systemd-cgroup", "run", "--bundle", str(b), name, check=False)
    ocipy("delete", "--force", name, check=False)
    assert "survived" not in out.stdout
    assert out.returncode != 0
    assert_gone(rig, ocipy, name, f"ocipy-{name}.scope")


def test_unit_exists(rig: Any, bundles: Any, ocipy: Any) -> None:
    first, second = cid(), cid()
    path = f"system.slice:ocipytest:{first}"
    unit = f"ocipytest-{first}.scope"
    ocipy("--systemd-cgroup", "create", "--bundle", str(bundles.make(SLEEP, None, path)), first)
    try:
        out = ocipy("--systemd-cgroup", "create", "--bundle", str(bundles.make(SLEEP, None, path)), second, check=False)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, out.stderr
        assert lines[0].startswith("ocipy: /linux/cgroupsPath: ")
        assert f"systemd unit {unit} already exists" in lines[0]
        # the first container is untouched, the second left nothing
        assert rig.show(unit, "ActiveState")["ActiveState"] == "active"
        assert second not in ocipy("list", "--quiet").stdout.split()
    finally:
        ocipy("delete", "--force", first, check=False)
    assert_gone(rig, ocipy, first, unit)


def test_job_fails(rig: Any, bundles: Any, ocipy: Any) -> None:
    """A slice whose start fails (an assertion that does not hold): the scope's job ends 'dependency'."""
    slice_ = f"ocipybad{secrets.token_hex(2)}.slice"
    rig.enter(["sh", "-c", f"printf '[Unit]\\nAssertPathExists=/nonexistent\\n' > /run/systemd/system/{slice_}"])
    rig.enter(["systemctl", "daemon-reload"])
    name = cid()
    unit = f"ocipy-{name}.scope"
    try:
        b = bundles.make(SLEEP, {"memory": {"limit": 32 << 20}}, f"{slice_}:ocipy:{name}")
        out = ocipy("--systemd-cgroup", "create", "--bundle", str(b), name, check=False)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, out.stderr
        assert lines[0] == (
            f"ocipy: /linux/cgroupsPath: systemd could not start {unit} in {slice_}: the job ended 'dependency'"
        )
        assert_gone(rig, ocipy, name, unit)
        # no process left: the placeholder went, nothing in the slice
        assert rig.enter(["find", "/sys/fs/cgroup/memory", "-name", slice_]).stdout.strip() in ("",) or not [
            p
            for d in rig.enter(["find", "/sys/fs/cgroup/memory", "-name", slice_]).stdout.split()
            for p in rig.enter(["cat", f"{d}/cgroup.procs"]).stdout.split()
        ]
    finally:
        rig.enter(["rm", "-f", f"/run/systemd/system/{slice_}"])
        rig.enter(["systemctl", "daemon-reload"])


def test_systemd_unreachable(rig: Any, bundles: Any) -> None:
    """Neither the system bus nor /run/systemd/private answers: one line naming both, nothing left."""
    name = cid()
    b = bundles.make(SLEEP, None, f"system.slice:ocipy:{name}")
    hide = "mount -t tmpfs tmpfs /run/dbus && mount --bind /dev/null /run/systemd/private"
    out = rig.ocipy("--systemd-cgroup", "create", "--bundle", str(b), name, check=False,
                    prefix=("unshare", "-m", "sh", "-c", f'{hide} && exec "$@"', "sh"))  # fmt: skip
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("ocipy: /linux/cgroupsPath: --systemd-cgroup: cannot reach systemd: ")
    assert "system bus /run/dbus/system_bus_socket: " in lines[0]
    assert "/run/systemd/private: connection refused" in lines[0]
    assert scope_dirs(rig, f"ocipy-{name}.scope") == []
    assert name not in rig.run(["/usr/local/bin/ocipy", "list", "--quiet"]).stdout.split()


def test_private_socket_fallback(rig: Any, bundles: Any) -> None:
    """No system bus: systemd's private socket is used, as runc falls back to."""
    name = cid()
    b = bundles.make(["true"], {"pids": {"limit": 10}}, f"system.slice:ocipy:{name}")
    hide = "mount -t tmpfs tmpfs /run/dbus"
    out = rig.ocipy("--systemd-cgroup", "run", "--bundle", str(b), name, check=False,
                    prefix=("unshare", "-m", "sh", "-c", f'{hide} && exec "$@"', "sh"))  # fmt: skip
    rig.ocipy("delete", "--force", name)
    assert out.returncode == 0, out.stderr
    assert scope_dirs(rig, f"ocipy-{name}.scope") == []


def test_features_and_check(rig: Any, ocipy: Any) -> None:
    assert '"systemd": true' in ocipy("features").stdout
    out = ocipy("check").stdout
    line = next(ln for ln in out.splitlines() if " systemd " in ln)
    assert line.split()[0] == "yes" or "answers on" in line, out
    assert "systemd 252 answers on /run/dbus/system_bus_socket" in out


def test_file_write_fails_after_the_unit_started(rig: Any, bundles: Any, ocipy: Any) -> None:
    """A resource only the files carry fails after systemd made the scope: the unit is stopped and the directories
    ocipy made go too."""
    name = cid()
    unit = f"ocipy-{name}.scope"
    b = bundles.make(SLEEP, {"memory": {"limit": 32 << 20, "swappiness": 101}}, f"ocipytest-b.slice:ocipy:{name}")
    out = ocipy("--systemd-cgroup", "create", "--bundle", str(b), name, check=False)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("ocipy: /linux/resources/memory/swappiness: ")
    assert_gone(rig, ocipy, name, unit)


def test_create_killed_at_every_step_leaves_nothing(rig: Any, bundles: Any, ocipy: Any) -> None:
    """create SIGKILLed at each of its step boundaries (OCIPY_FAULT, ocipy/faults.py), then `delete --force`
    (recovery): no unit stays loaded, no cgroup directory in any hierarchy, no container."""
    b = bundles.make(SLEEP, {"memory": {"limit": 32 << 20}, "pids": {"limit": 10}})
    trace = rig.share / f"trace-{secrets.token_hex(3)}"
    name = cid("tr")
    rig.run([OCIPY_BIN, "--systemd-cgroup", "create", "--bundle", str(b), name], env={"OCIPY_FAULT_TRACE": str(trace)})
    ocipy("delete", "--force", name)
    steps = [s for s in trace.read_text().split() if s.startswith("create.")]
    assert steps, "no step boundaries traced"
    for n in range(1, len(steps) + 1):
        name = cid("kf")
        unit = f"ocipy-{name}.scope"
        out = rig.run([OCIPY_BIN, "--systemd-cgroup", "create", "--bundle", str(b), name], check=False,
                      env={"OCIPY_FAULT": str(n)})  # fmt: skip
        assert out.returncode != 0, f"create survived step {n} ({steps[n - 1]})"
        ocipy("delete", "--force", name, check=False)
        for _ in range(50):  # a scope emptied by the kill is collected by systemd asynchronously
            if rig.show(unit, "LoadState")["LoadState"] == "not-found":
                break
            time.sleep(0.1)
        assert_gone(rig, ocipy, name, unit)


def test_exec_finds_its_own_cgroup_for_the_early_grace_period(rig: Any, bundles: Any, ocipy: Any) -> None:
    """exec's early grace-period write (ocipy/cgroups/graceperiod.py) needs the unified cgroup.procs that lists
    the exec itself. A systemd record (`slice:prefix:name`) does not give the mount point, and in this rig
    /proc/self/cgroup names host paths: the search must still find the file, and the write must move nothing."""
    name = cid()
    b = bundles.make(SLEEP)
    ocipy("--systemd-cgroup", "run", "--bundle", str(b), "--detach", name)
    try:
        code = (
            "import json, time; from ocipy.cgroups import graceperiod as g\n"
            f"rec = json.load(open('/run/ocipy/{name}/state.json'))['ocipy']['cgroup']\n"
            "assert rec['path'].endswith(':ocipy:" + name + "'), rec\n"
            "fd = g._open_own_procs(g._own_procs_files(rec))\n"
            "assert fd is not None, g._own_procs_files(rec)\n"
            "before = open('/proc/self/cgroup').read(); g.start(rec); time.sleep(0.2)\n"
            "assert open('/proc/self/cgroup').read() == before\n"
            "print('found')\n"
        )
        out = rig.run([str(PROJECT / ".venv" / "bin" / "python"), "-c", code], check=False)
        assert out.returncode == 0 and out.stdout.strip() == "found", out.stderr
        assert in_container(ocipy, name, "echo ok").strip() == "ok"
    finally:
        ocipy("delete", "--force", name, check=False)
