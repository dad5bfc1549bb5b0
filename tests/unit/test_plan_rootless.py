"""The planner's rules for a user namespace that does not own the host (docs/rootless.md), without root: the
config's own user namespace, or the runtime's (rootless Podman: `HostFacts.in_userns`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocipy import mountopts as mo
from ocipy import records
from ocipy.plan import HostFacts, PlanError, compile_create
from ocipy.spec.load import load_config

ARGS: dict[str, Any] = {
    "rootfs": "/run/bundle/rootfs",
    "bundle": "/run/bundle",
    "fifo": "/run/ocipy/c1/exec.fifo",
    "console_fd": None,
    "extra_fds": 0,
    "no_pivot": False,
    "no_new_keyring": False,
}
ROOT_HOST = HostFacts(
    is_dir=lambda p: True,
    is_host_netns=lambda p: False,
    netns_owned=lambda p: p == "/run/owned-netns",
    locked_flags=lambda p: mo.MS_NOSUID | mo.MS_NODEV if p == "/locked" else 0,
)
PODMAN_HOST = records.replace(ROOT_HOST, in_userns=True)  # the runtime in rootless Podman's namespace


def config(namespaces: list[dict[str, str]], mounts: list[dict[str, Any]] = (), **linux: Any) -> Any:  # type: ignore[assignment]
    cfg = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["/bin/true"], "user": {"uid": 0, "gid": 0}},
        "mounts": list(mounts),
        "linux": {"namespaces": namespaces, **linux},
    }
    return load_config(json.dumps(cfg).encode())


def listing(spec: Any, host: HostFacts) -> str:
    return "\n".join(compile_create(spec, host=host, **ARGS).describe())


USERNS = {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
          "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}  # fmt: skip
SYSFS = {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "ro"]}


def test_devices_are_made_by_root_and_bound_in_any_user_namespace() -> None:
    spec = config([{"type": "mount"}])
    assert "MKNOD" in listing(spec, ROOT_HOST) and "BIND_DEV" not in listing(spec, ROOT_HOST)
    assert "BIND_DEV" in listing(spec, PODMAN_HOST) and "MKNOD" not in listing(spec, PODMAN_HOST)
    own = config([{"type": "mount"}, {"type": "user"}], **USERNS)
    assert "BIND_DEV" in listing(own, ROOT_HOST) and "MKNOD" not in listing(own, ROOT_HOST)


@pytest.mark.parametrize(
    ("namespaces", "host", "rbind"),
    [
        ([{"type": "mount"}], ROOT_HOST, False),  # root in the host's namespaces: sysfs
        ([{"type": "mount"}], PODMAN_HOST, True),  # rootless Podman, --network host
        ([{"type": "mount"}, {"type": "network"}], PODMAN_HOST, False),  # its own network namespace
        ([{"type": "mount"}, {"type": "network", "path": "/run/owned-netns"}], PODMAN_HOST, False),  # slirp4netns
        ([{"type": "mount"}, {"type": "network", "path": "/run/other-netns"}], PODMAN_HOST, True),
        ([{"type": "mount"}, {"type": "user"}], ROOT_HOST, True),  # a new user namespace owns no older netns
        ([{"type": "mount"}, {"type": "user"}, {"type": "network"}], ROOT_HOST, False),
    ],
)
def test_sysfs_is_mounted_only_in_an_owned_network_namespace(
    namespaces: list[dict[str, str]], host: HostFacts, rbind: bool
) -> None:
    extra = USERNS if {"type": "user"} in namespaces else {}
    text = listing(config(namespaces, [SYSFS], **extra), host)
    assert ("rbind /sys on /sys (no network namespace for sysfs)" in text) is rbind, text
    assert ("# sysfs on /sys" in text) is not rbind, text


def test_locked_flags_cannot_be_cleared_in_a_user_namespace() -> None:
    bind = {"destination": "/mnt", "type": "bind", "source": "/locked", "options": ["rbind", "rw", "suid"]}
    # root without a user namespace may clear them
    listing(config([{"type": "mount"}], [bind]), ROOT_HOST)
    with pytest.raises(PlanError) as err:
        listing(config([{"type": "mount"}], [bind]), PODMAN_HOST)
    assert err.value.pointer == "/mounts/0/options/2"
    assert "suid: /locked is mounted nosuid" in str(err.value)
    keep = {**bind, "options": ["rbind", "rw"]}  # not asking to clear: kept (the init re-applies them)
    listing(config([{"type": "mount"}], [keep]), PODMAN_HOST)
    dev = {**bind, "options": ["bind", "dev"]}
    with pytest.raises(PlanError, match="dev: /locked is mounted nodev"):
        listing(config([{"type": "mount"}, {"type": "user"}], [dev], **USERNS), ROOT_HOST)


def test_locked_atime_cannot_change_in_a_user_namespace() -> None:
    host = records.replace(PODMAN_HOST, locked_flags=lambda p: mo.MS_NOATIME if p == "/locked" else mo.MS_RELATIME)
    same = {"destination": "/mnt", "type": "bind", "source": "/locked", "options": ["rbind", "noatime"]}
    listing(config([{"type": "mount"}], [same]), host)
    other = {**same, "options": ["rbind", "rw", "relatime"]}
    with pytest.raises(PlanError) as err:
        listing(config([{"type": "mount"}], [other]), host)
    assert err.value.pointer == "/mounts/0/options/2"
    assert "relatime: /locked is mounted noatime" in str(err.value)
    listing(config([{"type": "mount"}], [other]), ROOT_HOST)  # root may
    free = {**other, "source": "/elsewhere"}  # a relatime source asked relatime: fine
    listing(config([{"type": "mount"}], [free]), host)
