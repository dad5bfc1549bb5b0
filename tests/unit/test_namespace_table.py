"""One table of namespace kinds (ocipy/namespaces.py); the planner, hooks/exec, `features`, `check` and
checkpoint/restore read it instead of keeping their own copies."""

from __future__ import annotations

import os

from ocipy import hooks, namespaces
from ocipy.criu import externals
from ocipy.hostcheck import kernel as check
from ocipy.operations import features
from ocipy.plan import NAMESPACES as PLANNER_NAMESPACES


def test_each_kind_once_with_its_own_flag() -> None:
    kinds = [k[0] for k in namespaces.KINDS]
    flags = [k[2] for k in namespaces.KINDS]
    assert len(set(kinds)) == len(kinds) == 8
    assert len(set(flags)) == len(flags)
    assert all(f & (f - 1) == 0 for f in flags), "each CLONE_NEW* flag is a single bit"


def test_join_order_is_user_first_and_mount_last() -> None:
    order = [proc for proc, _flag in namespaces.JOIN_ORDER]
    assert order[0] == "user"
    assert order[-1] == "mnt"
    assert sorted(order) == sorted(namespaces.PROC_NAMES.values())


def test_every_reader_takes_the_table() -> None:
    assert PLANNER_NAMESPACES == namespaces.CLONE_FLAGS
    assert hooks.JOIN_ORDER is namespaces.JOIN_ORDER
    assert features.NAMESPACES == sorted(namespaces.CLONE_FLAGS)
    assert set(check.NAMESPACES) == set(namespaces.PROC_NAMES.values())
    assert all(externals.CRIU_NS_NAMES[k] == namespaces.PROC_NAMES[k] for k in externals.CRIU_NS_NAMES)


def test_proc_names_are_the_kernels() -> None:
    present = set(os.listdir("/proc/self/ns"))
    assert set(namespaces.PROC_NAMES.values()) <= present


def test_the_models_literal_names_the_same_kinds() -> None:
    """The spec model keeps its own Literal (pydantic and mypy need one); it must name exactly the table's kinds."""
    import typing

    from ocipy.spec.linux import NamespaceType

    assert set(typing.get_args(NamespaceType)) == set(namespaces.CLONE_FLAGS)
