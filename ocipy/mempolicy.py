"""linux.memoryPolicy: the modes and flags ocipy applies (set_mempolicy(2) in the init, OP_MEMPOLICY) and their
validation, as runc 1.5.1 does it (libcontainer/specconv and configs/validate): a mode is required; MPOL_DEFAULT
and MPOL_LOCAL take no nodes; MPOL_BIND, MPOL_INTERLEAVE, MPOL_PREFERRED_MANY and MPOL_WEIGHTED_INTERLEAVE need at
least one; MPOL_PREFERRED takes any. `nodes` is a list like "0-3,7" (spaces around items and empty items are
allowed, numbers are plain decimals below 1024). What the kernel refuses beyond that (a node this host does not
have, two node-numbering flags) is its error at create, naming the field. Stdlib only (exec plans use it too).
"""

from __future__ import annotations

from ocipy.errors import ConfigError

TYPE_CHECKING = False  # the idiom mypy understands, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Iterable

# linux/mempolicy.h
MODES = {
    "MPOL_DEFAULT": 0,
    "MPOL_PREFERRED": 1,
    "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4,
    "MPOL_PREFERRED_MANY": 5,
    "MPOL_WEIGHTED_INTERLEAVE": 6,
}
FLAGS = {
    "MPOL_F_STATIC_NODES": 1 << 15,
    "MPOL_F_RELATIVE_NODES": 1 << 14,
    "MPOL_F_NUMA_BALANCING": 1 << 13,
}
MAX_NODES = 1024  # shim/init/init.h MEMPOLICY_MAX_NODES; runc's unix.CPUSet

NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")
SOME_NODES = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE")


class PolicyError(ConfigError):
    """A memoryPolicy the runtime refuses: `pointer` is the field (JSON pointer), `message` says why."""


def parse_nodes(text: str) -> list[int]:
    """The sorted node numbers of a list like "0-3, 7" (ValueError says what is wrong); "" is no node."""
    nodes: set[int] = set()

    def number(s: str) -> int:
        if not s.isascii() or not s.isdigit():
            raise ValueError(f"{s!r} is not a node number")
        n = int(s)
        if n >= MAX_NODES:
            raise ValueError(f"nodes above {MAX_NODES - 1} are not supported ({n})")
        return n

    if text == "":
        return []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        lo, dash, hi = item.partition("-")
        first = number(lo)
        last = number(hi) if dash else first
        if first > last:
            raise ValueError(f"invalid range {item!r}")
        nodes.update(range(first, last + 1))
    if not nodes:
        raise ValueError(f"no node in {text!r}")
    return sorted(nodes)


def node_list(nodes: list[int]) -> str:
    """Sorted node numbers as the init reads them: "0-3,7"."""
    parts: list[str] = []
    i = 0
    while i < len(nodes):
        j = i
        while j + 1 < len(nodes) and nodes[j + 1] == nodes[j] + 1:
            j += 1
        parts.append(str(nodes[i]) if i == j else f"{nodes[i]}-{nodes[j]}")
        i = j + 1
    return ",".join(parts)


def compile_policy(mode: str | None, nodes: str | None, flags: Iterable[str] | None) -> tuple[int, str, str]:
    """(set_mempolicy mode | flags, node list for the init, a short description) or PolicyError."""
    base = "/linux/memoryPolicy"
    if mode is None or mode == "":
        raise PolicyError(base + "/mode", f"a mode is required ({', '.join(sorted(MODES))})")
    if mode not in MODES:
        raise PolicyError(base + "/mode", f"unknown mode {mode!r}")
    try:
        numbers = parse_nodes(nodes or "")
    except ValueError as exc:
        raise PolicyError(base + "/nodes", str(exc)) from None
    if mode in NO_NODES and numbers:
        raise PolicyError(base + "/nodes", f"{mode} takes no nodes (got {len(numbers)})")
    if mode in SOME_NODES and not numbers:
        raise PolicyError(base + "/nodes", f"{mode} needs at least one node")
    value = MODES[mode]
    names: list[str] = []
    for i, flag in enumerate(flags or ()):
        if flag not in FLAGS:
            raise PolicyError(f"{base}/flags/{i}", f"unknown flag {flag!r}")
        value |= FLAGS[flag]
        names.append(flag)
    text = node_list(numbers)
    what = " ".join([str(mode), *names]) + (f" on nodes {text}" if text else "")
    return value, text, what
