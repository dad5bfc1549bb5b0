"""The engines in their systemd configurations, inside the rig, each running ocipy: Podman with
`cgroup_manager = "systemd"`, Docker with `native.cgroupdriver=systemd`, and containerd's runc v2 shim with
`SystemdCgroup = true` in its runc options (what Kubernetes asks for; `ctr run --runc-systemd-cgroup` sets that
field). Each engine passes `--systemd-cgroup` and a `slice:prefix:name` cgroupsPath; the limits are read inside
the container and from the unit (`systemctl show`), whose description says ocipy made it. The rig's root is a
throw-away overlay, so the engines are configured system-wide there and started as the rig's services."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = [pytest.mark.root, pytest.mark.engines]

MEM = 64 << 20
IMAGE = "localhost/busybox:latest"
CAPS = [
    "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
    "SYS_CHROOT", "NET_RAW", "MKNOD", "AUDIT_WRITE",
]  # fmt: skip
CONTAINERS_CONF = f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
init_path = "/usr/bin/catatonit"
default_capabilities = {json.dumps(CAPS)}
[engine]
cgroup_manager = "systemd"
runtime = "ocipy"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "ocipy"]
[engine.runtimes]
ocipy = ["/usr/local/bin/ocipy"]
"""
DAEMON_JSON = {
    "exec-opts": ["native.cgroupdriver=systemd"],
    "runtimes": {"ocipy": {"path": "/usr/local/bin/ocipy"}},
    "default-runtime": "ocipy",
    "iptables": False,
    "ip-masq": False,
    "bridge": "none",
    "storage-driver": "overlay2",
}


def write(rig: Any, path: str, text: str) -> None:
    rig.enter(["sh", "-c", f'mkdir -p "$(dirname {path})" && cat > {path}'], input=text)


@pytest.fixture(scope="module")
def images(rig: Any) -> Iterator[dict[str, str]]:
    """The busybox image as a tar (Podman, Docker import it) and as an OCI archive (containerd), in the rig's
    shared dir; Podman is configured on the way."""
    share = rig.share
    rootfs = share / "engine-rootfs"
    subprocess.run([str(rig_project(rig) / "scripts" / "make-rootfs"), str(rootfs)], check=True, capture_output=True)
    tar = share / "busybox.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    subprocess.run(["rm", "-rf", str(rootfs)], check=True)
    write(rig, "/etc/containers/containers.conf", CONTAINERS_CONF)
    write(rig, "/etc/containers/registries.conf", "unqualified-search-registries = []\n")
    rig.run(["podman", "import", str(tar), IMAGE])
    archive = share / "busybox-oci.tar"
    rig.run(["podman", "save", "--format", "oci-archive", "-o", str(archive), IMAGE])
    yield {"tar": str(tar), "oci": str(archive)}


def rig_project(rig: Any) -> Any:
    from ocipy_systemd_rig import PROJECT

    return PROJECT


def check_scope(rig: Any, unit: str, slice_: str, cid: str) -> None:
    show = rig.show(unit, "ActiveState", "Slice", "Description", "MemoryMax", "TasksMax", "Delegate")
    assert show["ActiveState"] == "active", show
    assert show["Slice"] == slice_
    assert show["Description"] == f"ocipy container {cid}"  # ocipy made it, through the systemd driver
    assert show["MemoryMax"] == str(MEM)
    assert show["TasksMax"] == "20"
    assert show["Delegate"] == "yes"


def scope_gone(rig: Any, unit: str) -> bool:
    return (
        rig.show(unit, "LoadState")["LoadState"] == "not-found"
        and not rig.enter(["find", "/sys/fs/cgroup", "-name", unit]).stdout.strip()
    )


LIMITS = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"


def test_podman_cgroup_manager_systemd(rig: Any, images: dict[str, str]) -> None:
    name = f"pm{secrets.token_hex(3)}"
    out = rig.run(
        ["podman", "run", "-d", "--name", name, "--network", "none", "--memory", str(MEM), "--pids-limit", "20",
         IMAGE, "sleep", "300"]
    )  # fmt: skip
    cid = out.stdout.strip().splitlines()[-1]
    unit = f"libpod-{cid}.scope"
    try:
        check_scope(rig, unit, "machine.slice", cid)
        seen = rig.run(["podman", "exec", name, "sh", "-c", LIMITS]).stdout.split()
        assert seen == [str(MEM), "20"]
        # podman update goes through `ocipy update`: SetUnitProperties and the files
        rig.run(["podman", "update", "--memory", str(2 * MEM), name])
        assert rig.show(unit, "MemoryMax")["MemoryMax"] == str(2 * MEM)
        seen = rig.run(["podman", "exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
        assert seen.stdout.strip() == str(2 * MEM)
    finally:
        rig.run(["podman", "rm", "--force", "--time", "0", name], check=False)
    assert scope_gone(rig, unit)


def test_docker_native_cgroupdriver_systemd(rig: Any, images: dict[str, str]) -> None:
    write(rig, "/etc/docker/daemon.json", json.dumps(DAEMON_JSON))
    rig.enter(["systemctl", "start", "containerd.service", "docker.service"], timeout=120)
    try:
        info = rig.run(["docker", "info", "--format", "{{.CgroupDriver}} {{.DefaultRuntime}}"]).stdout.split()
        assert info == ["systemd", "ocipy"]
        rig.run(["docker", "import", images["tar"], "busybox:ocipy"])
        name = f"dk{secrets.token_hex(3)}"
        out = rig.run(
            ["docker", "run", "-d", "--name", name, "--network", "none", "--memory", str(MEM), "--pids-limit", "20",
             "busybox:ocipy", "sleep", "300"]
        )  # fmt: skip
        cid = out.stdout.strip().splitlines()[-1]
        unit = f"docker-{cid}.scope"
        try:
            check_scope(rig, unit, "system.slice", cid)
            seen = rig.run(["docker", "exec", name, "sh", "-c", LIMITS]).stdout.split()
            assert seen == [str(MEM), "20"]
            # docker update goes through `ocipy update`: SetUnitProperties and the files
            rig.run(["docker", "update", "--memory", str(2 * MEM), "--memory-swap", "-1", name])
            assert rig.show(unit, "MemoryMax")["MemoryMax"] == str(2 * MEM)
            seen = rig.run(["docker", "exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
            assert seen.stdout.strip() == str(2 * MEM)
        finally:
            rig.run(["docker", "rm", "--force", name], check=False)
        assert scope_gone(rig, unit)
    finally:
        rig.enter(["systemctl", "stop", "docker.service", "docker.socket"], check=False, timeout=120)


def test_containerd_systemd_cgroup(rig: Any, images: dict[str, str]) -> None:
    rig.enter(["systemctl", "start", "containerd.service"], timeout=120)
    ctr = ["ctr", "--namespace", "ocipytest"]
    rig.run([*ctr, "image", "import", "--base-name", "localhost/busybox", images["oci"]])
    cid = f"cd{secrets.token_hex(3)}"
    unit = f"ctr-{cid}.scope"
    try:
        rig.run(
            [*ctr, "run", "-d", "--runc-binary", "/usr/local/bin/ocipy", "--runc-systemd-cgroup",
             "--cgroup", f"system.slice:ctr:{cid}", "--memory-limit", str(MEM),
             "--mount", f"type=bind,src=/sys/fs/cgroup/memory/system.slice/{unit},dst=/cgroup-memory,options=rbind:ro",
             IMAGE, cid, "sleep", "300"]
        )  # fmt: skip
        show = rig.show(unit, "ActiveState", "Slice", "Description", "MemoryMax", "Delegate")
        assert show == {
            "ActiveState": "active",
            "Slice": "system.slice",
            "Description": f"ocipy container {cid}",
            "MemoryMax": str(MEM),
            "Delegate": "yes",
        }
        # ctr's default spec mounts no cgroupfs: the scope's memory dir is bound in (ocipy, like runc, makes the
        # cgroup before the init mounts anything), and /proc/self/cgroup shows the exec joined the scope
        seen = rig.run([*ctr, "task", "exec", "--exec-id", "lim", cid, "sh", "-c",
                        "cat /cgroup-memory/memory.limit_in_bytes; grep :memory: /proc/self/cgroup"])  # fmt: skip
        limit, line = seen.stdout.split()
        assert limit == str(MEM)
        assert line.endswith(f":memory:/system.slice/{unit}")
    finally:
        rig.run([*ctr, "task", "kill", "--signal", "SIGKILL", cid], check=False)
        wait_delete = (
            f"for i in $(seq 50); do ctr -n ocipytest task ls -q | grep -q {cid} || break; "
            f"ctr -n ocipytest task delete {cid} >/dev/null 2>&1 && break; sleep 0.1; done"
        )
        rig.run(["sh", "-c", wait_delete], check=False)
        rig.run([*ctr, "container", "delete", cid], check=False)
    assert scope_gone(rig, unit)
