"""linux.memoryPolicy validation (ocipy/mempolicy.py), checked against runc 1.5.1's rules and messages."""

from __future__ import annotations

import pytest

from ocipy import mempolicy


@pytest.mark.parametrize(
    ("text", "nodes"),
    [("", []), ("0", [0]), ("0-3,7", [0, 1, 2, 3, 7]), (" 1 , ,0,", [0, 1]), ("3-3", [3]), ("1023", [1023])],
)
def test_node_lists_runc_accepts(text, nodes):
    assert mempolicy.parse_nodes(text) == nodes


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (",", "no node in ','"),
        (" ", "no node in ' '"),
        ("1-0", "invalid range '1-0'"),
        ("+1", "'+1' is not a node number"),
        ("-1", "'' is not a node number"),
        ("1 - 2", "'1 ' is not a node number"),
        ("0x1", "'0x1' is not a node number"),
        ("1_0", "'1_0' is not a node number"),
        ("1024", "nodes above 1023 are not supported"),
        ("0-1024", "nodes above 1023 are not supported"),
    ],
)
def test_node_lists_runc_refuses(text, why):
    with pytest.raises(ValueError, match=why.replace("+", r"\+")):
        mempolicy.parse_nodes(text)


def test_node_list_for_the_init_is_normalised():
    assert mempolicy.node_list(mempolicy.parse_nodes("7, 0-2,3,9-10")) == "0-3,7,9-10"


def test_mode_and_flags_become_one_set_mempolicy_value():
    value, nodes, what = mempolicy.compile_policy("MPOL_BIND", "0", ["MPOL_F_STATIC_NODES"])
    assert value == 2 | 1 << 15 and nodes == "0" and what == "MPOL_BIND MPOL_F_STATIC_NODES on nodes 0"
    assert mempolicy.compile_policy("MPOL_PREFERRED", None, None) == (1, "", "MPOL_PREFERRED")


@pytest.mark.parametrize(
    ("args", "pointer", "why"),
    [
        ((None, "0", None), "/linux/memoryPolicy/mode", "a mode is required"),
        (("MPOL_NOPE", "0", None), "/linux/memoryPolicy/mode", "unknown mode 'MPOL_NOPE'"),
        (("MPOL_DEFAULT", "0", None), "/linux/memoryPolicy/nodes", "MPOL_DEFAULT takes no nodes"),
        (("MPOL_LOCAL", "0-1", None), "/linux/memoryPolicy/nodes", "MPOL_LOCAL takes no nodes"),
        (("MPOL_BIND", "", None), "/linux/memoryPolicy/nodes", "MPOL_BIND needs at least one node"),
        (("MPOL_INTERLEAVE", None, None), "/linux/memoryPolicy/nodes", "MPOL_INTERLEAVE needs at least one node"),
        (("MPOL_WEIGHTED_INTERLEAVE", None, None), "/linux/memoryPolicy/nodes", "needs at least one node"),
        (("MPOL_PREFERRED_MANY", None, None), "/linux/memoryPolicy/nodes", "needs at least one node"),
        (("MPOL_BIND", "0", ["MPOL_F_STATIC_NODES", "X"]), "/linux/memoryPolicy/flags/1", "unknown flag 'X'"),
    ],
)
def test_policies_runc_refuses_name_the_field(args, pointer, why):
    with pytest.raises(mempolicy.PolicyError, match=why) as info:
        mempolicy.compile_policy(*args)
    assert info.value.pointer == pointer


def test_the_init_and_the_planner_agree_on_the_node_limit():
    from pathlib import Path

    header = (Path(__file__).parents[2] / "shim" / "init" / "init.h").read_text()
    assert f"#define MEMPOLICY_MAX_NODES {mempolicy.MAX_NODES} " in header
