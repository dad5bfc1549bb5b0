"""`--version`, `features` and `check`: runc 1.5.1's shapes, honest values, and check agreeing with create's probes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocipy import lsm, version
from ocipy.hostcheck import cgroups as hostcheck_cgroups
from ocipy.operations import check, features
from ocipy.spec.features import Features

PROJECT = Path(__file__).resolve().parents[2]
RUNC = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy")) / "bin" / "runc-1.5.1"

# every key of runc 1.5.1's `features` (its output on this kind of host), as paths
RUNC_KEYS = {
    "ociVersionMin",
    "ociVersionMax",
    "hooks",
    "mountOptions",
    "linux",
    "linux.namespaces",
    "linux.capabilities",
    "linux.cgroup",
    "linux.cgroup.v1",
    "linux.cgroup.v2",
    "linux.cgroup.systemd",
    "linux.cgroup.systemdUser",
    "linux.cgroup.rdma",
    "linux.seccomp",
    "linux.seccomp.enabled",
    "linux.seccomp.actions",
    "linux.seccomp.operators",
    "linux.seccomp.archs",
    "linux.seccomp.knownFlags",
    "linux.seccomp.supportedFlags",
    "linux.apparmor",
    "linux.apparmor.enabled",
    "linux.selinux",
    "linux.selinux.enabled",
    "linux.intelRdt",
    "linux.intelRdt.enabled",
    "linux.intelRdt.schemata",
    "linux.intelRdt.monitoring",
    "linux.memoryPolicy",
    "linux.memoryPolicy.modes",
    "linux.memoryPolicy.flags",
    "linux.mountExtensions",
    "linux.mountExtensions.idmap",
    "linux.mountExtensions.idmap.enabled",
    "linux.netDevices",
    "linux.netDevices.enabled",
    "annotations",
    "potentiallyUnsafeConfigAnnotations",
}


def ocipy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(PROJECT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ocipy", *args], capture_output=True, text=True, env=full, timeout=120, check=False
    )


def key_paths(doc: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for k, v in doc.items():
        if prefix == "annotations.":
            continue
        out.add(prefix + k)
        if isinstance(v, dict) and k != "annotations":
            out |= key_paths(v, prefix + k + ".")
    return out


def test_version_has_runc_lines() -> None:
    res = ocipy("--version")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"ocipy version {version.VERSION}"
    assert lines[1].startswith("commit: ")
    assert lines[2] == "spec: 1.3.0"
    assert lines[3].startswith("python: cpython 3.")
    # this checkout is a git worktree: the commit is its HEAD
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "HEAD"], check=False, capture_output=True, text=True)
    if head.returncode == 0:
        assert lines[1] == f"commit: {head.stdout.strip()}"
    if version.libseccomp():
        assert lines[4] == f"libseccomp: {version.libseccomp()}"


def test_features_has_every_key_runc_has_and_validates() -> None:
    res = ocipy("features")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    Features.model_validate(doc)
    assert RUNC_KEYS <= key_paths(doc), sorted(RUNC_KEYS - key_paths(doc))
    assert doc["linux"]["netDevices"] == {"enabled": True}
    assert {"tmpcopyup", "rro", "idmap", "nosymfollow"} <= set(doc["mountOptions"])
    # what ocipy does not do is false / empty, not left out
    assert doc["linux"]["memoryPolicy"]["flags"] == [
        "MPOL_F_NUMA_BALANCING",
        "MPOL_F_RELATIVE_NODES",
        "MPOL_F_STATIC_NODES",
    ]
    assert len(doc["linux"]["memoryPolicy"]["modes"]) == 7
    assert doc["linux"]["intelRdt"] == {"enabled": False, "schemata": False, "monitoring": False}
    ann = doc["annotations"]
    assert ann["org.opencontainers.ocipy.version"] == version.VERSION
    assert "org.opencontainers.ocipy.commit" in ann
    if version.libseccomp():
        assert ann["io.github.seccomp.libseccomp.version"] == version.libseccomp()
    assert doc["linux"]["seccomp"]["archs"] == sorted(doc["linux"]["seccomp"]["archs"])
    assert "SCMP_ARCH_X86_64" in doc["linux"]["seccomp"]["archs"]
    assert list(doc) == [
        "ociVersionMin",
        "ociVersionMax",
        "hooks",
        "mountOptions",
        "linux",
        "annotations",
        "potentiallyUnsafeConfigAnnotations",
    ]


@pytest.mark.skipif(not RUNC.exists(), reason=f"runc 1.5.1 not built at {RUNC} (scripts/refs)")
def test_features_keys_match_runc_151() -> None:
    runc = json.loads(subprocess.run([str(RUNC), "features"], capture_output=True, text=True, check=True).stdout)
    ours = json.loads(ocipy("features").stdout)
    assert key_paths(runc) <= key_paths(ours), sorted(key_paths(runc) - key_paths(ours))
    assert [k for k in runc["linux"]] == [k for k in ours["linux"]]
    # every mount option runc applies, ocipy applies (plus idmap/ridmap, which runc lists as mountExtensions only)
    assert set(runc["mountOptions"]) <= set(ours["mountOptions"]), set(runc["mountOptions"]) - set(ours["mountOptions"])


def test_check_json_sections_summary_and_exit() -> None:
    res = ocipy("check", "--format", "json")
    rep = json.loads(res.stdout)
    for section in ("versions", "state", "namespaces", "cgroups", "drivers", "security", "kernel", "rootless"):
        assert section in rep, section
        for name, it in rep[section].items():
            assert set(it) == {"available", "detail", "meaning", "needed"}, (section, name)
    assert {"ocipy", "python", "libseccomp", "kernel"} <= set(rep["versions"])
    assert {"cgroupfs", "systemd"} <= set(rep["drivers"])
    assert {"subuid", "subgid", "newuidmap", "newgidmap", "xdg_runtime_dir"} <= set(rep["rootless"])
    assert "criu" in rep["checkpoint"]
    summary = rep["summary"]
    assert res.returncode == (1 if summary["needed_missing"] else 0), res.stderr
    text = ocipy("check")
    assert text.stdout.rstrip().splitlines()[-1] == f"summary: {summary['text']}"


def test_check_exits_1_when_the_state_root_cannot_be_made(tmp_path: Path) -> None:
    res = ocipy("--root", "/proc/ocipy-nope/state", "check", "--format", "json")
    assert res.returncode == 1
    rep = json.loads(res.stdout)
    assert rep["state"]["root"]["available"] is False
    assert "state.root" in rep["summary"]["needed_missing"]
    ok = json.loads(ocipy("--root", str(tmp_path / "s"), "check", "--format", "json").stdout)
    assert ok["state"]["root"]["available"] is True
    assert not (tmp_path / "s").exists(), "check must not leave the state root behind"
    assert list(tmp_path.iterdir()) == []


def test_check_lsm_answers_are_creates() -> None:
    rep = check.security()
    active = lsm.active()
    assert rep["apparmor"]["available"] == ("apparmor" in active)
    assert rep["selinux"]["available"] == ("selinux" in active)
    # features says what ocipy supports; both LSMs are supported whether or not this host runs them
    doc = features.features()
    assert doc["linux"]["apparmor"] == {"enabled": True} and doc["linux"]["selinux"] == {"enabled": True}


def test_check_blkio_weight_needs_a_weighting_scheduler() -> None:
    it = check.cgroups()["blkio_weight"]
    scheds = hostcheck_cgroups.schedulers()
    if it["available"]:
        assert any(s in ("bfq", "cfq") for s in scheds.values())
    if scheds and not any(s in ("bfq", "cfq") for s in scheds.values()):
        assert it["available"] is False
        assert "NOT honoured" in it["meaning"] or "cannot be set" in it["meaning"]


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a private mount namespace)")
def test_check_says_libseccomp_missing_when_it_cannot_be_loaded() -> None:
    # the library dlopen would load, hidden by an empty file in a private mount namespace: check must say so and
    # exit 1, as create would then fail on any config with seccomp
    from ocipy import seccomp

    found = seccomp.find_libseccomp()
    if found is None:
        pytest.skip("no libseccomp.so.2 on this host")
    lib = os.path.realpath(found[0])
    script = (
        f"mount --bind /dev/null {lib} && "
        f"PYTHONPATH={PROJECT} {sys.executable} -m ocipy check --format json; echo rc=$?"
    )
    res = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out, _, rc = res.stdout.rpartition("rc=")
    rep = json.loads(out)
    assert rep["security"]["libseccomp"]["available"] is False, rep["security"]["libseccomp"]
    assert "security.libseccomp" in rep["summary"]["needed_missing"]
    assert rc.strip() == "1"


def test_create_refuses_a_memory_policy_runc_refuses(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    (bundle / "rootfs").mkdir(parents=True)
    assert ocipy("spec", "--bundle", str(bundle)).returncode == 0
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND"}
    (bundle / "config.json").write_text(json.dumps(config))
    res = ocipy("--root", str(tmp_path / "state"), "create", "--bundle", str(bundle), "mp")
    assert res.returncode == 1
    assert res.stderr.strip() == "ocipy: /linux/memoryPolicy/nodes: MPOL_BIND needs at least one node"
    assert not (tmp_path / "state" / "mp").exists()


def test_systemd_driver_is_needed_where_systemd_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Podman's and the kubelet's default cgroup manager on a systemd host is systemd: if ocipy's driver cannot work
    # there, a default container cannot run, and check says so (exit 1)
    from ocipy.cgroups import systemd

    monkeypatch.setattr(systemd, "usable", lambda: (False, "no bus"))
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda p: True if p == "/run/systemd/system" else real_isdir(p))
    item = check.drivers()["systemd"]
    assert item["available"] is False and item["needed"] is True
    monkeypatch.setattr(os.path, "isdir", lambda p: False if p == "/run/systemd/system" else real_isdir(p))
    assert check.drivers()["systemd"]["needed"] is False
