"""linux.memoryPolicy: applied with set_mempolicy(2) in the init (the container's process inherits it) and
validated as runc 1.5.1 does. What the kernel holds is read back from /proc/self/numa_maps, which shows the task's
policy beside every mapping without one of its own ("bind:0", "interleave=static:0", "default")."""

from __future__ import annotations

import json

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


def _online_nodes() -> str:
    with open("/sys/devices/system/node/online") as f:
        return f.read().strip()


def _policy_shown(numa_maps: str) -> str:
    """The policy word of the first mapping (the program's text, which has no policy of its own)."""
    first = numa_maps.splitlines()[0].split()
    # "prefer (many):0" and "weighted interleave:0" contain a space
    return " ".join(first[1:3]) if first[1] in ("prefer", "weighted") else first[1]


@pytest.mark.parametrize(
    ("policy", "shown"),
    [
        ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
        ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
        ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
        ({"mode": "MPOL_PREFERRED_MANY", "nodes": "0"}, "prefer (many):0"),
        ({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"}, "weighted interleave:0"),
        ({"mode": "MPOL_LOCAL"}, "local"),
        ({"mode": "MPOL_DEFAULT"}, "default"),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
        ({"mode": "MPOL_INTERLEAVE", "nodes": " 0 ,", "flags": ["MPOL_F_RELATIVE_NODES"]}, "interleave=relative:0"),
    ],
    ids=lambda v: v if isinstance(v, str) else v["mode"],
)
def test_memory_policy_is_what_the_process_runs_with(rt, bundle, policy, shown):
    if _online_nodes() != "0" and "0" not in _online_nodes().split(","):
        pytest.skip("node 0 is not online")
    bundle.linux["memoryPolicy"] = policy
    assert _policy_shown(rt.probe(bundle, "cat /proc/self/numa_maps")) == shown


def test_memory_policy_reaches_exec_too(rt, bundle):
    """runc sets the policy in `exec` as well (setns init): an exec'd process runs with it, not the runtime's."""
    bundle.linux["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    bundle.args("sleep", "30")
    cid, _ = rt.create_ok(bundle)
    rt.start(cid).ok()
    out = rt.call("exec", cid, "cat", "/proc/self/numa_maps").ok().out
    assert _policy_shown(out) == "bind:0", out
    rt.kill(cid, "KILL")


@pytest.mark.parametrize(
    ("policy", "phrases"),
    [
        ({"nodes": "0"}, ["/linux/memoryPolicy/mode: ", "a mode is required"]),
        ({"mode": "MPOL_DEFAULT", "nodes": "0"}, ["/linux/memoryPolicy/nodes: ", "MPOL_DEFAULT takes no nodes"]),
        ({"mode": "MPOL_LOCAL", "nodes": "0-1"}, ["/linux/memoryPolicy/nodes: ", "MPOL_LOCAL takes no nodes"]),
        ({"mode": "MPOL_BIND"}, ["/linux/memoryPolicy/nodes: ", "MPOL_BIND needs at least one node"]),
        ({"mode": "MPOL_INTERLEAVE", "nodes": ","}, ["/linux/memoryPolicy/nodes: ", "no node in ','"]),
        ({"mode": "MPOL_BIND", "nodes": "1-0"}, ["/linux/memoryPolicy/nodes: ", "invalid range '1-0'"]),
        ({"mode": "MPOL_BIND", "nodes": "zero"}, ["/linux/memoryPolicy/nodes: ", "'zero' is not a node number"]),
        ({"mode": "MPOL_BIND", "nodes": "+1"}, ["/linux/memoryPolicy/nodes: ", "'+1' is not a node number"]),
        ({"mode": "MPOL_BIND", "nodes": "1024"}, ["/linux/memoryPolicy/nodes: ", "nodes above 1023"]),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_BOGUS"]}, ["/linux/memoryPolicy/flags/0"]),
        ({"mode": "MPOL_BOGUS", "nodes": "0"}, ["/linux/memoryPolicy/mode"]),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else "",
)
def test_memory_policy_validated_as_runc_does(rt, bundle, policy, phrases):
    bundle.linux["memoryPolicy"] = policy
    bundle.args("true")
    res = rt.run(bundle).fails(*phrases)
    assert len(res.err.strip().splitlines()) == 1, res.describe()
    assert rt.state_dirs() == []


@pytest.mark.parametrize(
    ("policy", "phrases"),
    [
        # node 1000 exists on no host this runs on: the kernel refuses a mask with no node it can use
        ({"mode": "MPOL_BIND", "nodes": "1000"}, ["/linux/memoryPolicy", "set_mempolicy", "invalid argument"]),
        # the kernel takes one of the two node-numbering flags at most
        (
            {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]},
            ["/linux/memoryPolicy", "set_mempolicy", "invalid argument"],
        ),
    ],
    ids=["node-not-on-this-host", "static-and-relative"],
)
def test_memory_policy_the_kernel_refuses_is_one_line_naming_the_field(rt, bundle, policy, phrases):
    bundle.linux["memoryPolicy"] = policy
    bundle.args("true")
    res = rt.run(bundle).fails(*phrases)
    assert len(res.err.strip().splitlines()) == 1, res.describe()
    assert rt.state_dirs() == []


def test_features_lists_the_memory_policy_modes_and_flags(rt):
    """As runc 1.5.1's `features`: every mode and flag it applies, sorted."""
    features = json.loads(rt.call("features").ok().out)
    assert features["linux"]["memoryPolicy"] == {
        "modes": [
            "MPOL_BIND",
            "MPOL_DEFAULT",
            "MPOL_INTERLEAVE",
            "MPOL_LOCAL",
            "MPOL_PREFERRED",
            "MPOL_PREFERRED_MANY",
            "MPOL_WEIGHTED_INTERLEAVE",
        ],
        "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"],
    }
