"""`ocipy` run directly by an unprivileged user (no capabilities, no setuid helper unless named): `spec --rootless`
and `run`, the lifecycle verbs, the state root, and what an unprivileged user namespace refuses, each handled the
way runc 1.5.1 does (docs/rootless.md)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Bundle
from rootlessctl import RootlessUser

pytestmark = [pytest.mark.rootless, pytest.mark.timeout(120)]


def ocipy(  # type: ignore[no-untyped-def]
    user: RootlessUser, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
):
    # create and run --detach leave the container holding stdout/stderr: files, not pipes
    files = args[0] == "create" or (args[0] == "run" and "--detach" in args)
    return user.run([user.runtime, *args], env=env, cwd=cwd, files=files)


def show(p: subprocess.CompletedProcess[str]) -> str:
    return f"\nargv: {p.args}\nexit: {p.returncode}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"


def run_ok(user: RootlessUser, b: Path, cid: str, code: int = 0) -> str:
    p = ocipy(user, "run", "--bundle", str(b), cid)
    assert p.returncode == code, show(p)
    return p.stdout


def run_fails(user: RootlessUser, b: Path, cid: str) -> str:
    p = ocipy(user, "run", "--bundle", str(b), cid)
    assert p.returncode == 1, show(p)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocipy: "), show(p)
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr
    # nothing left behind: no state directory
    assert not (user.xdg / "ocipy" / cid).exists()
    return lines[0]


# --- spec --rootless ------------------------------------------------------------------------------------------------


def test_spec_rootless_is_runcs(user: RootlessUser, runc: str) -> None:
    """`ocipy spec --rootless` writes what `runc spec --rootless` writes (the same user, the same directory kind)."""
    ours, theirs = user.files("spec", "ocipy"), user.files("spec", "runc")
    assert ocipy(user, "spec", "--rootless", cwd=ours).returncode == 0
    assert user.run([runc, "spec", "--rootless"], cwd=theirs).returncode == 0
    a = json.loads((ours / "config.json").read_text())
    b = json.loads((theirs / "config.json").read_text())
    for cfg in (a, b):
        cfg.pop("ociVersion")
        cfg.pop("hostname")
        # ocipy's defaults beside runc's (docs/rootless.md): a cgroup namespace on every host (runc: pure v2 only),
        # and two more masked paths
        cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "cgroup"]
        cfg["linux"]["maskedPaths"] = [p for p in cfg["linux"]["maskedPaths"] if "/devices/virtual/" not in p]
    assert a["linux"]["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert a["linux"]["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]
    assert "resources" not in a["linux"]
    types = [ns["type"] for ns in a["linux"]["namespaces"]]
    assert "user" in types and "network" not in types
    sysmount = next(m for m in a["mounts"] if m["destination"] == "/sys")
    assert sysmount == {
        "destination": "/sys",
        "type": "none",
        "source": "/sys",
        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
    }
    devpts = next(m for m in a["mounts"] if m["destination"] == "/dev/pts")
    assert not any(o.startswith("gid=") for o in devpts["options"])
    assert a == b


def test_run_as_a_plain_user(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    b = bundle(["sh", "-c", "id -u; cat /proc/self/uid_map; cat /proc/self/setgroups; echo to-err >&2; exit 7"])
    p = ocipy(user, "run", "--bundle", str(b), cid)
    assert p.returncode == 7, show(p)
    lines = p.stdout.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(user.uid), "1"]
    assert lines[2] == "deny"  # one gid mapped: setgroups denied before gid_map (the kernel's rule, runc's way)
    assert "to-err" in p.stderr
    assert not (user.xdg / "ocipy" / cid).exists()  # run deletes what it made


def test_state_root_is_xdg_runtime_dir(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    b = bundle(["sleep", "30"])
    p = ocipy(user, "create", "--bundle", str(b), cid)
    assert p.returncode == 0, show(p)
    try:
        assert (user.xdg / "ocipy" / cid / "state.json").exists()
        st = json.loads(ocipy(user, "state", cid).stdout)
        assert st["status"] == "created" and st["pid"] > 0
        assert ocipy(user, "list", "-q").stdout.split() == [cid]
        # the host's view: the init runs as the user
        assert os.stat(f"/proc/{st['pid']}").st_uid == user.uid
        # ...and is not dumpable while it waits (the id-map window closed): its /proc files are not the user's
        assert os.stat(f"/proc/{st['pid']}/environ").st_uid == 0
        assert user.run(["cat", f"/proc/{st['pid']}/environ"]).returncode != 0
        assert ocipy(user, "start", cid).returncode == 0
        assert json.loads(ocipy(user, "state", cid).stdout)["status"] == "running"
        p = ocipy(user, "exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; exit 3")
        assert p.returncode == 3, show(p)
        assert p.stdout.split("\n")[0] == "0" and p.stdout.split("\n")[1].split() == ["0", str(user.uid), "1"]
        assert ocipy(user, "kill", "--all", cid, "KILL").returncode == 0  # no cgroup: the init
        for _ in range(100):
            if json.loads(ocipy(user, "state", cid).stdout)["status"] == "stopped":
                break
            time.sleep(0.05)
        assert json.loads(ocipy(user, "state", cid).stdout)["status"] == "stopped"
    finally:
        p = ocipy(user, "delete", "--force", cid)
    assert p.returncode == 0, show(p)
    assert not (user.xdg / "ocipy" / cid).exists()


def test_state_root_errors_name_xdg_runtime_dir(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    b = bundle(["true"])
    p = ocipy(user, "run", "--bundle", str(b), cid, env={"XDG_RUNTIME_DIR": ""})
    assert p.returncode == 1, show(p)
    assert "$XDG_RUNTIME_DIR is not set" in p.stderr and "--root" in p.stderr, show(p)
    p = ocipy(user, "run", "--bundle", str(b), cid, env={"XDG_RUNTIME_DIR": "/proc"})
    assert p.returncode == 1, show(p)
    assert "state root /proc/ocipy (from $XDG_RUNTIME_DIR)" in p.stderr, show(p)
    # --root always wins
    own = user.files("altroot")
    p = ocipy(user, "--root", str(own), "run", "--bundle", str(b), cid, env={"XDG_RUNTIME_DIR": ""})
    assert p.returncode == 0, show(p)


# --- what an unprivileged user namespace refuses ----------------------------------------------------------------------


def test_linux_devices_are_bound_from_the_host(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    """mknod is refused in a user namespace: the host's node is bind-mounted instead (runc's rule)."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]

    out = run_ok(user, bundle(["sh", "-c", "stat -c '%F %t:%T' /dev/fuse /dev/null"], edit), cid)
    assert out.split("\n")[:2] == ["character special file a:e5", "character special file 1:3"]


def test_sysfs_without_an_owned_netns_is_the_hosts_bound(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    """A sysfs mount needs a network namespace the user namespace owns: without one, the host's /sys is rbound
    read-only (what `spec --rootless` asks for anyway); with a new network namespace, a real sysfs is mounted."""

    def sysfs(cfg: dict[str, Any]) -> None:
        for m in cfg["mounts"]:
            if m["destination"] == "/sys":
                m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])

    host_ifaces = sorted(os.listdir("/sys/class/net"))
    out = run_ok(user, bundle(["ls", "/sys/class/net"], sysfs), cid)
    assert sorted(out.split()) == host_ifaces

    def own_netns(cfg: dict[str, Any]) -> None:
        sysfs(cfg)
        cfg["linux"]["namespaces"].append({"type": "network"})

    out = run_ok(user, bundle(["sh", "-c", "ls /sys/class/net; grep ' /sys ' /proc/mounts"], own_netns), cid + "n")
    assert out.split("\n")[0] == "lo"
    assert " sysfs ro," in out or "sysfs /sys sysfs ro" in out, out


def test_additional_gids_need_mapped_gids(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["process"]["user"]["additionalGids"] = [5]

    line = run_fails(user, bundle(["id"], edit), cid)
    assert line.startswith("ocipy: /process/user/additionalGids/0:"), line


def test_subordinate_ids_go_through_newuidmap(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    """Maps beyond the caller's own id use the setuid helpers and /etc/subuid, /etc/subgid (setgroups allowed)."""
    (uid_start, uid_count), (gid_start, gid_count) = user.subids()[0][0], user.subids()[1][0]

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["uidMappings"] = [
            {"containerID": 0, "hostID": user.uid, "size": 1},
            {"containerID": 1, "hostID": uid_start, "size": uid_count},
        ]
        cfg["linux"]["gidMappings"] = [
            {"containerID": 0, "hostID": user.gid, "size": 1},
            {"containerID": 1, "hostID": gid_start, "size": gid_count},
        ]
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}

    out = run_ok(user, bundle(["sh", "-c", "id; cat /proc/self/setgroups"], edit), cid)
    assert out == "uid=1000 gid=1000 groups=5\nallow\n", out

    def too_many(cfg: dict[str, Any]) -> None:
        edit(cfg)
        cfg["linux"]["uidMappings"][1]["size"] = uid_count + 1

    line = run_fails(user, bundle(["true"], too_many), cid + "x")
    assert line.startswith("ocipy: /linux/uidMappings: newuidmap:"), line


def test_raising_a_hard_rlimit_is_refused(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def raise_(cfg: dict[str, Any]) -> None:
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard + 1, "soft": 1024}]

    line = run_fails(user, bundle(["true"], raise_), cid)
    assert line.startswith("ocipy: /process/rlimits/0") and "operation not permitted" in line, line

    def lower(cfg: dict[str, Any]) -> None:
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]

    assert run_ok(user, bundle(["sh", "-c", "ulimit -Sn; ulimit -Hn"], lower), cid + "l") == "256\n512\n"


def test_lowering_oom_score_adj_is_refused(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    current = int(Path("/proc/self/oom_score_adj").read_text())

    def lower(cfg: dict[str, Any]) -> None:
        cfg["process"]["oomScoreAdj"] = current - 1

    line = run_fails(user, bundle(["true"], lower), cid)
    assert line.startswith("ocipy: /process/oomScoreAdj"), line
    assert "permission denied" in line or "operation not permitted" in line, line

    def raise_(cfg: dict[str, Any]) -> None:
        cfg["process"]["oomScoreAdj"] = min(current + 100, 1000)

    out = run_ok(user, bundle(["cat", "/proc/self/oom_score_adj"], raise_), cid + "r")
    assert out == f"{min(current + 100, 1000)}\n"


def test_locked_mount_flags_are_kept_on_binds(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    """A bind of a nosuid,nodev,noexec host mount keeps those flags (the kernel locks them in a user namespace);
    asking to clear one fails naming the mount."""
    src = user.files("locked")
    # a host mount with every lockable flag, owned by root and visible to the user
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev,noexec,mode=0755", "tmpfs", str(src)], check=True)
    try:

        def bind(options: list[str]):  # type: ignore[no-untyped-def]
            def edit(cfg: dict[str, Any]) -> None:
                cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(src), "options": options})

            return edit

        out = run_ok(user, bundle(["grep", " /mnt ", "/proc/mounts"], bind(["rbind", "rw"])), cid)
        flags = out.split()[3].split(",")
        assert {"nosuid", "nodev", "noexec"} <= set(flags), out
        line = run_fails(user, bundle(["true"], bind(["rbind", "rw", "suid"])), cid + "c")
        assert line.startswith("ocipy: /mounts/") and "/options/2: suid:" in line and "locked" in line, line
    finally:
        subprocess.run(["umount", str(src)], check=True)


@pytest.mark.parametrize("own", [False, True])
def test_idmapped_mounts_are_refused_as_runc_does(user: RootlessUser, bundle: Bundle, cid: str, own: bool) -> None:
    """runc 1.5.1: "id-mapped mounts are not supported for rootless containers". The kernel idmaps a mount only for
    a caller privileged over its filesystem's user namespace (the host's, for a bind of a host directory), with the
    container's mappings or mappings of the mount's own: one line naming the field, before anything is made."""
    src = user.files("idmapped")

    def edit(cfg: dict[str, Any]) -> None:
        m: dict[str, Any] = {"destination": "/mnt", "type": "bind", "source": str(src), "options": ["bind", "idmap"]}
        if own:
            m["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1}]
            m["gidMappings"] = [{"containerID": 0, "hostID": user.gid, "size": 1}]
        cfg["mounts"].append(m)

    line = run_fails(user, bundle(["true"], edit), cid)
    assert line.startswith("ocipy: /mounts/"), line
    assert "/options/1: idmapped mounts are not supported for rootless containers" in line, line


def test_cgroup_limits_without_a_writable_cgroup_fail_naming_the_field(
    user: RootlessUser, bundle: Bundle, cid: str
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}

    line = run_fails(user, bundle(["true"], edit), cid)
    assert line.startswith("ocipy: /linux/resources/memory"), line
    assert "rootless" in line, line


def test_verbs_that_need_a_cgroup_say_why(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    b = bundle(["sleep", "30"])
    p = ocipy(user, "run", "--detach", "--bundle", str(b), cid)
    assert p.returncode == 0, show(p)
    try:
        for args in (["pause", cid], ["update", "--memory", "64m", cid], ["events", "--stats", cid]):
            p = ocipy(user, *args)
            assert p.returncode == 1, show(p)
            assert "no cgroup" in p.stderr and "rootless" in p.stderr, show(p)
        # ps has the init's pid without a cgroup
        p = ocipy(user, "ps", "--format", "json", cid)
        assert p.returncode == 0 or ("no cgroup" in p.stderr and "rootless" in p.stderr), show(p)
    finally:
        ocipy(user, "delete", "--force", cid)


# --- a delegated cgroup v2 subtree ------------------------------------------------------------------------------------


def _unified_mount() -> Path | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[:1] == ["cgroup2"]:
                return Path(pre.split()[4])
    return None


def test_a_delegated_cgroup_v2_subtree_is_used(user: RootlessUser, bundle: Bundle, cid: str) -> None:
    """What systemd's Delegate=yes gives a user session, made by hand: a v2 cgroup owned by the user, the runtime
    started inside it. ocipy then puts the container there (the v1 hierarchies it cannot write are left out), applies
    the limits that cgroup can hold, and pause works through cgroup.freeze."""
    unified = _unified_mount()
    if unified is None:
        pytest.skip("no cgroup v2 hierarchy on this host")
    deleg = unified / f"ocipy-rl-{user.name}"
    runtime_cg = deleg / "runtime"
    runtime_cg.mkdir(parents=True)
    try:
        for p in (deleg, runtime_cg):
            for name in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
                os.chown(p / name if name else p, user.uid, user.gid)

        def edit(cfg: dict[str, Any]) -> None:
            cfg["linux"]["cgroupsPath"] = f"/{deleg.name}/c1"
            cfg["linux"]["resources"] = {"unified": {"cgroup.max.depth": "2"}}

        b = bundle(["sh", "-c", "echo ready; while :; do sleep 0.1; done"], edit)
        # the user's runtime starts in the delegated cgroup (a login session's would, under systemd)
        enter = ["sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh", str(runtime_cg),
                 "setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "--"]  # fmt: skip
        with tempfile.TemporaryFile() as err:  # not a pipe: the container keeps its stderr
            rc = subprocess.run([*enter, user.runtime, "run", "--detach", "--bundle", str(b), cid], env=user.env,
                                cwd=str(user.home), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                timeout=60, check=False).returncode  # fmt: skip
            err.seek(0)
            assert rc == 0, err.read().decode()
        try:
            st = json.loads(ocipy(user, "state", cid).stdout)
            cg = Path(f"/proc/{st['pid']}/cgroup").read_text()
            assert f"0::/{deleg.name}/c1\n" in cg, cg
            assert (deleg / "c1" / "cgroup.max.depth").read_text().strip() == "2"
            p = ocipy(user, "pause", cid)
            assert p.returncode == 0, show(p)
            assert json.loads(ocipy(user, "state", cid).stdout)["status"] == "paused"
            assert (deleg / "c1" / "cgroup.freeze").read_text().strip() == "1"
            assert ocipy(user, "resume", cid).returncode == 0
            assert json.loads(ocipy(user, "state", cid).stdout)["status"] == "running"
            p = ocipy(user, "ps", "--format", "json", cid)
            assert p.returncode == 0 and json.loads(p.stdout) == [st["pid"]] or st["pid"] in json.loads(p.stdout)
        finally:
            ocipy(user, "delete", "--force", cid)
        assert not (deleg / "c1").exists()
    finally:
        with contextlib.suppress(Exception):  # the cgroups below must go whatever failed above
            ocipy(user, "delete", "--force", cid)
        for _ in range(50):  # what is still in them is ours (the test user's): killed by pid
            pids = [int(x) for f in deleg.glob("**/cgroup.procs") for x in f.read_text().split()]
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            time.sleep(0.1)
        for top, _dirs, _files in os.walk(deleg, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(top)
        assert not deleg.exists()
