"""The planner's side of idmapped mounts with their own mappings (or none, or a joined user namespace) and of
linux.memoryPolicy: which user namespace each idmapped bind takes, where the runtime hands the trees over, what is
refused (config.md and runc 1.5.1's validation), and the OP_MEMPOLICY op in create and exec plans."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocipy import planfmt
from ocipy.errors import ConfigError
from ocipy.execplan import compile_exec
from ocipy.plan import CreatePlan, HostFacts, PlanError, compile_create
from ocipy.spec.load import load_config

HOST = HostFacts(has_kcore=True, cap_last_cap=40, is_dir=lambda p: True)
ARGS: dict[str, Any] = {
    "rootfs": "/run/bundle/rootfs",
    "bundle": "/run/bundle",
    "fifo": "/run/ocipy/c1/exec.fifo",
    "console_fd": None,
    "extra_fds": 0,
    "no_pivot": False,
    "no_new_keyring": False,
}
USERNS = {
    "namespaces": [{"type": "mount"}, {"type": "user"}],
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
}


def config(mounts: list[dict[str, Any]], **linux: Any) -> Any:
    cfg: dict[str, Any] = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["/bin/true"], "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "mount"}], **linux},
        "mounts": mounts,
    }
    return load_config(json.dumps(cfg).encode())


def compile_(cfg: Any, **kw: Any) -> CreatePlan:
    return compile_create(cfg, host=HOST, **{**ARGS, **kw})


def bind(**extra: Any) -> dict[str, Any]:
    return {"destination": "/m", "type": "bind", "source": "/srv", "options": ["bind"], **extra}


def maps(text: str) -> list[dict[str, int]]:
    c, h, n = (int(x) for x in text.split(":"))
    return [{"containerID": c, "hostID": h, "size": n}]


def idmapped(plan: CreatePlan) -> list[int]:
    return [i for i, op in enumerate(plan.ops) if op[0] == planfmt.OP_MOUNT and op[3][4] & planfmt.MNTF_IDMAP]


def tree_syncs(plan: CreatePlan) -> list[int]:
    return [i for i, op in enumerate(plan.ops) if op[0] == planfmt.OP_SYNC and op[3][0] == planfmt.SYNC_MOUNT_TREES]


# -- idmapped mounts


def test_own_mappings_without_a_user_namespace_get_a_tree_sync_before_the_first_idmapped_mount() -> None:
    plan = compile_(
        config(
            [
                bind(uidMappings=maps("0:1000:10"), gidMappings=maps("0:2000:10")),
                {
                    **bind(destination="/n", options=["rbind", "ridmap"]),
                    "uidMappings": maps("1:2:3"),
                    "gidMappings": maps("1:2:3"),
                },
            ]
        )
    )
    first, second = idmapped(plan)
    assert tree_syncs(plan) == [first - 1], "one sync, right before the first idmapped mount"
    assert plan.field_of(first - 1) == "/mounts/0"
    assert plan.idmap_userns == {first: ("0 1000 10\n", "0 2000 10\n"), second: ("1 2 3\n", "1 2 3\n")}
    assert plan.ops[second][3][4] & planfmt.MNTF_IDMAP_REC
    assert not plan.ops[first][3][4] & planfmt.MNTF_IDMAP_REC, "mappings without idmap/ridmap: idmap, as runc"


def test_in_a_new_user_namespace_the_trees_come_with_the_usermap_ack() -> None:
    plan = compile_(
        config(
            [
                bind(options=["bind", "idmap"]),
                bind(destination="/n", uidMappings=maps("0:5:1"), gidMappings=maps("0:5:1")),
            ],
            **USERNS,
        )
    )
    container, own = idmapped(plan)
    assert tree_syncs(plan) == []
    assert container not in plan.idmap_userns, "the container's user namespace"
    assert plan.idmap_userns[own] == ("0 5 1\n", "0 5 1\n")


def test_a_joined_user_namespace_is_the_one_an_idmap_without_mappings_takes() -> None:
    linux = {"namespaces": [{"type": "mount"}, {"type": "user", "path": "/proc/77/ns/user"}]}
    plan = compile_(config([bind(options=["bind", "idmap"])], **linux))
    (index,) = idmapped(plan)
    assert plan.idmap_userns == {index: "/proc/77/ns/user"}
    assert tree_syncs(plan) == [index - 1]


@pytest.mark.parametrize(
    ("mount", "linux", "message"),
    [
        (bind(uidMappings=maps("0:0:1")), {}, "/mounts/0/gidMappings: must be given with uidMappings"),
        (bind(gidMappings=maps("0:0:1")), {}, "/mounts/0/uidMappings: must be given with gidMappings"),
        (bind(uidMappings=[], gidMappings=maps("0:0:1")), {}, "/mounts/0/uidMappings: is empty"),
        (bind(uidMappings=maps("0:0:1"), gidMappings=[]), {}, "/mounts/0/gidMappings: is empty"),
        (bind(options=["rbind", "ridmap"]), {}, "/mounts/0/options/1: idmap with no uidMappings/gidMappings"),
        (
            {
                "destination": "/m",
                "type": "tmpfs",
                "source": "t",
                "uidMappings": maps("0:0:1"),
                "gidMappings": maps("0:0:1"),
            },
            {},
            "/mounts/0/options: idmapped mounts are only supported on bind mounts",
        ),
    ],
)
def test_refused_as_config_md_and_runc_say(mount: dict[str, Any], linux: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as err:
        compile_(config([mount], **linux))
    assert str(err.value).startswith(message), str(err.value)


def test_rootless_runtime_refuses_idmapped_mounts_as_runc() -> None:
    with pytest.raises(PlanError, match=r"^/mounts/0/options/1: idmapped mounts are not supported for rootless"):
        compile_(config([bind(options=["bind", "idmap"])], **USERNS), host_uid=1000)


# -- memory policy


def test_memory_policy_is_one_op_before_the_ids_and_seccomp() -> None:
    policy = {"mode": "MPOL_INTERLEAVE", "nodes": "3, 0-1", "flags": ["MPOL_F_STATIC_NODES"]}
    plan = compile_(config([], memoryPolicy=policy))
    (index,) = [i for i, op in enumerate(plan.ops) if op[0] == planfmt.OP_MEMPOLICY]
    op = plan.ops[index]
    assert op[3][0] == 3 | 1 << 15
    assert plan.string_at(op[2][0]) == "0-1,3"
    assert plan.field_of(index) == "/linux/memoryPolicy"
    later = [planfmt.NAMES[o[0]] for o in plan.ops[index:]]
    assert "OP_SETUID" in later and "OP_EXEC" in later


def test_memory_policy_without_nodes_has_no_node_list() -> None:
    plan = compile_(config([], memoryPolicy={"mode": "MPOL_LOCAL"}))
    (op,) = [op for op in plan.ops if op[0] == planfmt.OP_MEMPOLICY]
    assert op[2][0] == planfmt.NOSTR and op[3][0] == 4


def test_memory_policy_error_names_the_field() -> None:
    # mempolicy's PolicyError: a ConfigError naming the field, as a PlanError is (docs/errors.md)
    with pytest.raises(ConfigError, match=r"^/linux/memoryPolicy/nodes: MPOL_DEFAULT takes no nodes"):
        compile_(config([], memoryPolicy={"mode": "MPOL_DEFAULT", "nodes": "0"}))


def test_exec_sets_the_memory_policy_too() -> None:
    """runc's setns init applies it: an exec'd process does not run with the runtime's policy."""
    cfg = config([], memoryPolicy={"mode": "MPOL_BIND", "nodes": "0"})
    plan = compile_exec(cfg, cfg.process, init_pid=42, host=HOST, joins=["mnt", "pid"])
    assert [op[3][0] for op in plan.ops if op[0] == planfmt.OP_MEMPOLICY] == [2]
