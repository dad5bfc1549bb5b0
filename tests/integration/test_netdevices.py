"""linux.netDevices (spec 1.3): a host device moved into the container, renamed, its address kept, set up."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import ocipy_it_helpers as h  # loaded by conftest.py
import pytest

pytestmark = h.pytestmark()


@pytest.fixture
def veth() -> Iterator[str]:
    """A veth pair on the host; one end carries an address from the documentation range (no traffic is sent)."""
    name = f"ocv{uuid.uuid4().hex[:8]}"
    peer = name + "p"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "192.0.2.10/24", "dev", name], check=True)
        # and an IPv6 one (nodad: permanent, global, never tentative)
        subprocess.run(["ip", "addr", "add", "2001:db8::10/64", "dev", name, "nodad"], check=True)
        yield name
    finally:
        # the moved end dies with the container's namespace, and takes its peer with it; whatever is left goes
        subprocess.run(["ip", "link", "del", peer], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def test_device_is_moved_renamed_addressed_and_up(rt, bundle, veth):
    bundle.linux["netDevices"] = {veth: {"name": "eth7"}}
    bundle.sh("ip addr show eth7")
    res = rt.run(bundle).ok()
    assert "inet 192.0.2.10/24" in res.out, res.out
    assert "inet6 2001:db8::10/64" in res.out, res.out
    assert ",UP" in res.out or "<UP" in res.out, res.out
    shown = subprocess.run(["ip", "link", "show", veth], check=False, capture_output=True)
    assert shown.returncode != 0, "the device must have left the host's namespace"


def test_name_template_lets_the_kernel_choose(rt, bundle, veth):
    bundle.linux["netDevices"] = {veth: {"name": "net%d"}}
    bundle.sh("ip -o link show | grep -o 'net[0-9]*'")
    assert rt.run(bundle).ok().out.split() == ["net0"]


def test_a_clashing_name_is_an_error(rt, bundle, veth):
    bundle.linux["netDevices"] = {veth: {"name": "lo"}}
    res = rt.run(bundle)
    res.fails(f"/linux/netDevices/{veth}/name")
    assert rt.state_dirs() == []
    assert subprocess.run(["ip", "link", "show", veth], check=False, capture_output=True).returncode == 0


def test_a_missing_device_is_an_error(rt, bundle):
    bundle.linux["netDevices"] = {"ocipy-nope0": {}}
    rt.run(bundle).fails("/linux/netDevices/ocipy-nope0: no network device")
    assert rt.state_dirs() == []
