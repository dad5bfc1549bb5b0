"""The systemd driver's pure parts: resources -> unit properties (runc's conversions), device rules -> DevicePolicy
and DeviceAllow, CPU ranges -> bitmasks. Driving a real systemd is tests/systemd (the nspawn rig)."""

from __future__ import annotations

import pytest

from ocipy.cgroups import CgroupError, devices
from ocipy.cgroups import systemd as sd

INF = (1 << 64) - 1


def props(res: dict, **kw: bool) -> dict:
    return dict(sd.properties(res, **kw)[0])


def test_legacy_mapping() -> None:
    p = props(
        {
            "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-2,5", "mems": "0"},
            "blockIO": {"weight": 300},
            "pids": {"limit": 20},
        },
        unified=False,
    )
    assert p["MemoryMax"] == ("t", 64 << 20)
    assert p["MemoryLow"] == ("t", 32 << 20)
    assert "MemorySwapMax" not in p  # v1: memsw goes to the file only
    assert p["CPUShares"] == ("t", 512)
    assert p["CPUQuotaPerSecUSec"] == ("t", 500000)
    assert p["CPUQuotaPeriodUSec"] == ("t", 100000)
    assert p["AllowedCPUs"] == ("ay", bytes([0b100111]))
    assert p["AllowedMemoryNodes"] == ("ay", b"\x01")
    assert p["BlockIOWeight"] == ("t", 300)
    assert "TasksMax" not in p  # at create it waits until the init is set up


def test_unified_mapping_and_update() -> None:
    p = props(
        {
            "memory": {"limit": 100, "swap": 300},
            "cpu": {"shares": 1024},
            "blockIO": {"weight": 500},
            "pids": {"limit": 0},
            "unified": {"memory.high": "max", "memory.min": "7"},
        },
        unified=True,
        create=False,
    )
    assert p["MemorySwapMax"] == ("t", 200)  # runc: swap - limit
    assert p["CPUWeight"] == ("t", 1 + (1024 - 2) * 9999 // 262142)
    assert p["IOWeight"] == ("t", 1 + (500 - 10) * 9999 // 990)
    assert p["TasksMax"] == ("t", 1)  # systemd refuses 0
    assert p["MemoryHigh"] == ("t", INF)
    assert p["MemoryMin"] == ("t", 7)
    assert props({"memory": {"limit": -1}}, unified=True)["MemoryMax"] == ("t", INF)
    assert props({"pids": {"limit": -1}}, unified=True, create=False)["TasksMax"] == ("t", INF)


def test_quota_rounding_is_written_back() -> None:
    # 1/3 of a CPU is 33.3 %: systemd keeps whole percents, so 34 % is asked and the file gets the same
    plist, files = sd.properties({"cpu": {"quota": 33333, "period": 100000}}, unified=False)
    assert dict(plist)["CPUQuotaPerSecUSec"] == ("t", 340000)
    assert files["cpu"]["quota"] == 34000
    # no quota: period only, and "infinity" per second
    assert dict(sd.properties({"cpu": {"period": 50000}}, unified=False)[0])["CPUQuotaPerSecUSec"] == ("t", INF)


def test_device_properties() -> None:
    rules = devices.effective_rules(
        [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}]
    )
    p = dict(sd.device_properties(rules))
    assert p["DevicePolicy"] == ("s", "strict")
    allow = dict(p["DeviceAllow"][1])
    assert allow["/dev/char/10:200"] == "rw"
    assert allow["/dev/char/1:3"] == "rwm"  # the defaults every container gets
    assert allow["char-*"] == "m" and allow["block-*"] == "m"
    assert allow["char-136"] == "rwm"
    # allow everything: systemd's own "auto"
    everything = dict(sd.device_properties(devices.effective_rules([{"allow": True, "access": "rwm"}])))
    assert everything["DevicePolicy"] == ("s", "auto") and everything["DeviceAllow"] == ("a(ss)", [])
    # a deny after an allow removes the entry
    rules = devices.parse_rules(
        [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
        ]
    )
    assert dict(sd.device_properties(rules))["DeviceAllow"] == ("a(ss)", [("/dev/char/1:3", "rm")])
    # a deny-list cannot be said to systemd: strict and empty (the files carry the exact rules), as runc
    rules = devices.parse_rules(
        [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    )
    assert dict(sd.device_properties(rules))["DeviceAllow"] == ("a(ss)", [])


def test_ranges() -> None:
    assert sd.range_to_bits("0", "/p") == b"\x01"
    assert sd.range_to_bits("8-9", "/p") == b"\x00\x03"
    for bad in ("x", "3-1", ""):
        with pytest.raises(CgroupError) as e:
            sd.range_to_bits(bad, "/linux/resources/cpu/cpus")
        assert e.value.pointer == "/linux/resources/cpu/cpus"


def test_bad_values_name_the_field() -> None:
    with pytest.raises(CgroupError) as e:
        sd.properties({"memory": {"limit": "64M"}}, unified=False)
    assert e.value.pointer == "/linux/resources/memory/limit"
    with pytest.raises(CgroupError) as e:
        sd.properties({"unified": {"memory.high": "lots"}}, unified=True)
    assert e.value.pointer == "/linux/resources/unified/memory.high"
