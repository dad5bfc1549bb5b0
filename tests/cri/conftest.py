"""Session fixtures for the CRI suite: one private containerd with CRI (cririg.py) serving both runtime handlers,
`ocipy` (the code under test) and `runc` (runc 1.5.1, the reference), and a CRI client (criclient.py). Every test
runs once per handler. The rig is stopped by pid at the end and leaves nothing (it fails the session if it did)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

NOT_ROOT = os.geteuid() != 0
BINARIES = ("containerd", "ctr", "containerd-shim-runc-v2", "nsenter", "ip", "cc", "tar", "/bin/busybox")


def _need() -> None:
    if NOT_ROOT:
        pytest.skip("the CRI suite needs root")
    from enginectl import missing_binaries

    missing = missing_binaries(*BINARIES)
    if not os.path.exists("/usr/lib/cni/bridge"):
        missing.append("/usr/lib/cni/bridge")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/engines installs them)")
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        pytest.skip("grpcio-tools not installed (pip install -e '.[test]')")


@pytest.fixture(scope="session")
def rig() -> Iterator[Any]:
    import cririg

    _need()
    work = cririg.private_dir("ocipy-cri-")
    r = None
    client = None
    try:
        r = cririg.make_rig(work)
        import criclient

        client = criclient.Cri(r.sock, r.logs, r.cgroup_parent)
        r.client = client
        yield r
    finally:
        leftovers = r.stop(client) if r is not None else []
        if client is not None:
            client.close()
        assert not leftovers, f"the CRI rig left: {leftovers}"


@pytest.fixture(scope="session")
def cri(rig: Any) -> Any:
    return rig.client


@pytest.fixture(params=["ocipy", "runc"])
def handler(request: pytest.FixtureRequest, rig: Any) -> str:
    import cririg

    if request.param == "runc" and Path(rig.runc) != cririg.RUNC_REF:
        pytest.skip(f"runc 1.5.1 not built at {cririg.RUNC_REF} (scripts/refs builds it)")
    return str(request.param)


@pytest.fixture
def pods(cri: Any, handler: str) -> Iterator[Callable[..., Any]]:
    """pods(**kw) runs a pod with this test's handler; every pod made is stopped and removed afterwards."""
    made: list[Any] = []

    def make(**kw: Any) -> Any:
        pod = cri.run_pod(handler, **kw)
        made.append(pod)
        return pod

    yield make
    for pod in made:
        if pod.id in cri.pods:
            cri.remove_pod(pod)
