"""The hand-written protobuf codec and CRIU message schemas (no CRIU needed), the log reader and the externals."""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path

import pytest

from ocipy.criu import externals, log, messages, wire

SHARED = Path(os.environ.get("OCIPY_SHARED", Path(__file__).resolve().parents[3] / "shared"))
CRIU_TARBALL = SHARED / "criu" / "criu-4.2-src.tar.gz"


def test_varints_and_negative_int32_round_trip() -> None:
    schema = {"a": wire.Field(1, "int32"), "b": wire.Field(2, "uint32"), "c": wire.Field(3, "bool")}
    for value in (0, 1, 127, 128, 300, 2**31 - 1, -1, -(2**31)):
        data = wire.encode(schema, {"a": value, "b": abs(value), "c": value != 0})
        assert wire.decode(schema, data) == {"a": value, "b": abs(value), "c": value != 0}
    assert wire.encode(schema, {"a": -1})[1:] == b"\xff" * 9 + b"\x01"  # ten bytes, as protobuf writes it


def test_known_encoding_of_a_request() -> None:
    # criu_req{type: DUMP, opts{images_dir_fd: 5, log_file: "dump.log", ext_mnt[{key: "/a", val: "/b"}]}}
    data = wire.encode(
        messages.REQ,
        {
            "type": messages.DUMP,
            "opts": {"images_dir_fd": 5, "log_file": "dump.log", "ext_mnt": [{"key": "/a", "val": "/b"}]},
        },
    )
    opts = b"\x08\x05" + b"\x52\x08dump.log" + b"\xba\x01\x08\x0a\x02/a\x12\x02/b"
    assert data == b"\x08\x01" + b"\x12" + bytes([len(opts)]) + opts
    assert wire.decode(messages.REQ, data)["opts"]["ext_mnt"] == [{"key": "/a", "val": "/b"}]


def test_unknown_fields_are_skipped_and_bad_input_is_an_error() -> None:
    schema = {"a": wire.Field(1, "int32")}
    data = b"\x08\x07" + b"\x12\x03abc" + b"\x1d\x00\x00\x00\x00" + b"\x21" + b"\x00" * 8
    assert wire.decode(schema, data) == {"a": 7}
    with pytest.raises(wire.WireError):
        wire.decode(schema, b"\x12\x05ab")
    with pytest.raises(wire.WireError):
        wire.encode(schema, {"nope": 1})


def _proto_fields(text: str, message: str) -> dict[str, int]:
    body = re.search(r"message\s+" + message + r"\s*\{(.*?)\n\}", text, re.DOTALL)
    assert body, message
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+)\s*=\s*(\d+)", body.group(1))}


@pytest.mark.skipif(not CRIU_TARBALL.exists(), reason=f"{CRIU_TARBALL} is absent")
def test_field_numbers_match_criu_rpc_proto() -> None:
    with tarfile.open(CRIU_TARBALL) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("images/rpc.proto"))
        f = tar.extractfile(member)
        assert f is not None
        text = f.read().decode()
    for schema, name in (
        (messages.OPTS, "criu_opts"),
        (messages.REQ, "criu_req"),
        (messages.RESP, "criu_resp"),
        (messages.VERSION_MSG, "criu_version"),
        (messages.FEATURES, "criu_features"),
        (messages.INHERIT_FD, "inherit_fd"),
        (messages.CGROUP_ROOT, "cgroup_root"),
        (messages.JOIN_NAMESPACE, "join_namespace"),
        (messages.KEY_VAL, "ext_mount_map"),
    ):
        proto = _proto_fields(text, name)
        for field_name, f in schema.items():
            assert proto.get(field_name) == f.number, (name, field_name)


def test_first_error_skips_noise_and_generic_lines(tmp_path: Path) -> None:
    path = tmp_path / "dump.log"
    path.write_text(
        "(00.05) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n"
        "(00.10) some info\n"
        "(00.16) Error (criu/cr-dump.c:1681): A session leader of 10454(1) is outside of its pid namespace\n"
        "(00.24) Error (criu/cr-dump.c:2128): Dumping FAILED.\n"
    )
    assert log.first_error(str(path)) == "A session leader of 10454(1) is outside of its pid namespace"
    path.write_text("(00.24) Error (criu/cr-dump.c:2128): Dumping FAILED.\n")
    assert log.first_error(str(path)) == "Dumping FAILED"
    assert log.first_error(str(tmp_path / "missing.log")) is None


MOUNTINFO = """\
100 90 254:0 /tmp/b/rootfs / rw,relatime - ext4 /dev/vda rw
101 100 0:59 / /proc rw,nosuid - proc proc rw
102 100 0:60 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
103 100 0:5 /null /proc/kcore ro - devtmpfs udev rw,size=10k
104 100 0:61 / /sys/fs/cgroup ro - tmpfs tmpfs rw,mode=755
105 104 0:29 /ocipy/c1 /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct
106 104 0:37 /ocipy/c1 /sys/fs/cgroup/systemd ro - cgroup cgroup rw,xattr,name=systemd
107 104 0:38 /ocipy/c1 /sys/fs/cgroup/unified ro - cgroup2 cgroup2 rw,nsdelegate
108 100 254:0 /data /mnt/data rw - ext4 /dev/vda rw
"""


def test_externals_for_dump_and_restore() -> None:
    doc = {
        "mounts": [
            {"destination": "/mnt/data/", "source": "data", "options": ["rbind"]},
            {"destination": "/proc", "type": "proc", "source": "proc"},
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }
    plan = externals.for_dump(doc, externals.parse_mountinfo(MOUNTINFO))
    assert plan.ext_mnt == [
        ("/mnt/data", "/mnt/data"),
        ("/proc/kcore", "/dev/null"),
        ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
        ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/systemd"),
        ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified"),
    ]
    assert [r.get("hierarchy") for r in plan.record if r["kind"] == "cgroup"] == ["cpu,cpuacct", "name=systemd", ""]
    new_cgroups = {
        "v1": {"cpu": "/sys/fs/cgroup/cpu,cpuacct/ocipy/c2", "name=systemd": "/sys/fs/cgroup/systemd/ocipy/c2"},
        "v2": "/sys/fs/cgroup/unified/ocipy/c2",
    }
    pairs = externals.for_restore(doc, "/bundle", plan.record, new_cgroups, [])
    assert pairs == [
        ("/mnt/data", "/bundle/data"),
        ("/dev/null", "/dev/null"),
        ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/ocipy/c2"),
        ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/systemd/ocipy/c2"),
        ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified/ocipy/c2"),
    ]


def test_a_cgroup_namespace_makes_cgroup_mounts_the_containers_own() -> None:
    doc = {"linux": {"namespaces": [{"type": "cgroup"}]}}
    plan = externals.for_dump(doc, externals.parse_mountinfo(MOUNTINFO))
    assert all(r["kind"] != "cgroup" for r in plan.record)


def test_joined_network_namespace_is_external(tmp_path: Path) -> None:
    ns = tmp_path / "netns"
    ns.write_text("")
    doc = {"linux": {"namespaces": [{"type": "network", "path": str(ns)}, {"type": "pid"}]}}
    plan = externals.for_dump(doc, [])
    assert plan.external == [f"net[{ns.stat().st_ino}]:extRootNetNS"]
