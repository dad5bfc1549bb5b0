"""The planner: a validated OCI config compiled into the plan the C init executes (docs/plan.md: the op order and why).

Pure: nothing here changes the host. It looks at the host read-only through `HostFacts`, which tests replace with
fixed answers, and reads the config only through attribute access (the `ocipy.spec` models or any stand-in with the
same snake_case attribute names, see docs/contracts.md). One module per spec section:

- `base.py`: `PlanError`, `CreatePlan`, JSON pointers, the spec readers, `Section` (the state sections share)
- `host.py`: `HostFacts`, the read-only look at the host
- `namespaces.py`: linux.namespaces, id mappings, uts/time checks; stage 0 (setns, unshare, clone)
- `mounts.py` (+ `cgroupmounts.py`): the config's mounts; `devices.py`: linux.devices and the /dev links
- `sysctl.py`: linux.sysctl; `process.py`: the process section (create and exec share it)
- `create.py`: `compile_create`, the create plan composed from the sections

The names below are loaded on first use, so `import ocipy.plan.process` does not load the create plan's sections.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ocipy.plan.base import CreatePlan, PlanError, pointer
    from ocipy.plan.create import compile_create
    from ocipy.plan.host import HostFacts
    from ocipy.plan.namespaces import (
        CLONE_NEWCGROUP,
        CLONE_NEWIPC,
        CLONE_NEWNET,
        CLONE_NEWNS,
        CLONE_NEWPID,
        CLONE_NEWTIME,
        CLONE_NEWUSER,
        CLONE_NEWUTS,
        NAMESPACES,
    )

_WHERE = {
    "CreatePlan": "base",
    "PlanError": "base",
    "pointer": "base",
    "compile_create": "create",
    "HostFacts": "host",
    "NAMESPACES": "namespaces",
    "CLONE_NEWCGROUP": "namespaces",
    "CLONE_NEWIPC": "namespaces",
    "CLONE_NEWNET": "namespaces",
    "CLONE_NEWNS": "namespaces",
    "CLONE_NEWPID": "namespaces",
    "CLONE_NEWTIME": "namespaces",
    "CLONE_NEWUSER": "namespaces",
    "CLONE_NEWUTS": "namespaces",
}
__all__ = [
    "CLONE_NEWCGROUP",
    "CLONE_NEWIPC",
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWTIME",
    "CLONE_NEWUSER",
    "CLONE_NEWUTS",
    "NAMESPACES",
    "CreatePlan",
    "HostFacts",
    "PlanError",
    "compile_create",
    "pointer",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ocipy.plan' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"ocipy.plan.{module}"), name)
    globals()[name] = value
    return value
