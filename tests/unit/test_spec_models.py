"""Focused model tests: each kind of error names its field with an RFC 6901 pointer."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocipy.spec.config import Spec
from ocipy.spec.default import default_config
from ocipy.spec.load import SpecError, load_config, load_features, load_state, pointer

ROOT = Path(__file__).resolve().parents[2]


def base() -> dict[str, Any]:
    return {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["sh"]},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs"},
            {"destination": "/sys", "type": "sysfs"},
            {"destination": "/tmp", "type": "tmpfs"},
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }


def problems(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        load_config(json.dumps(doc).encode())
    return info.value.problems


def first(doc: Any) -> tuple[str, str]:
    return problems(doc)[0]


def with_(path: str, value: Any) -> dict[str, Any]:
    """base() with the value at a slash path replaced (created if missing)."""
    doc = base()
    parts = [int(p) if p.isdigit() else p for p in path.strip("/").split("/")]
    node: Any = doc
    for p in parts[:-1]:
        if isinstance(p, str):
            node = node.setdefault(p, {})
        else:
            node = node[p]
    node[parts[-1]] = value
    return doc


def test_base_is_valid() -> None:
    spec = load_config(json.dumps(base()).encode())
    assert spec.oci_version == "1.3.0"
    assert spec.linux is not None and spec.linux.namespaces is not None
    assert spec.linux.namespaces[0].type == "pid"


# --- attribute convention -----------------------------------------------------------------------------------------


def test_snake_case_attributes_and_none_defaults() -> None:
    doc = base()
    doc["process"].update(oomScoreAdj=5, execCPUAffinity={"initial": "0-1"}, ioPriority={"class": "IOPRIO_CLASS_BE"})
    doc["linux"].update(
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
        netDevices={"eth0": {"name": "x"}},
        timeOffsets={"boottime": {"secs": 1}},
    )
    doc["hooks"] = {"createRuntime": [{"path": "/bin/true"}]}
    spec = Spec.model_validate(doc)
    assert spec.process is not None and spec.linux is not None and spec.hooks is not None
    assert spec.process.oom_score_adj == 5
    assert spec.process.exec_cpu_affinity is not None and spec.process.exec_cpu_affinity.initial == "0-1"
    assert spec.process.io_priority is not None and spec.process.io_priority.class_ == "IOPRIO_CLASS_BE"
    assert spec.linux.uid_mappings is not None and spec.linux.uid_mappings[0].container_id == 0
    assert spec.linux.net_devices is not None and spec.linux.net_devices["eth0"].name == "x"
    assert spec.linux.time_offsets is not None
    assert spec.hooks.create_runtime is not None and spec.hooks.poststart is None
    assert spec.process.env is None and spec.process.capabilities is None  # absent stays None, not []


def test_empty_list_stays_distinct_from_absent() -> None:
    spec = Spec.model_validate(with_("/process/env", []))
    assert spec.process is not None and spec.process.env == []


def test_round_trip_keeps_unknown_keys() -> None:
    doc = base()
    doc["org.example.extension"] = {"a": [1, 2]}
    doc["linux"]["someFutureField"] = True
    spec = Spec.model_validate(doc)
    assert spec.model_dump(by_alias=True, exclude_none=True) == doc


def test_populate_by_alias_only() -> None:
    # A JSON key spelled like the attribute is an unknown key, not the field: the official schema agrees.
    doc = with_("/linux/uidMappings", [{"container_id": 0, "hostID": 0, "size": 1}])
    assert first(doc) == ("/linux/uidMappings/0/containerID", "missing required field")


# --- error kinds ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("/hostname", 5, "must be a string"),
        ("/process/terminal", "true", "must be a boolean"),
        ("/process/terminal", 1, "must be a boolean"),
        ("/process/user/uid", "0", "must be an integer"),
        ("/process/user/uid", 1.0, "must be an integer"),
        ("/process/user/uid", True, "must be an integer"),
        ("/process/env", "PATH=/bin", "must be an array"),
        ("/linux", [], "must be an object"),
        ("/annotations", {"k": 1}, None),
        ("/hostname", None, "must not be null"),
    ],
)
def test_wrong_types(path: str, value: Any, message: str | None) -> None:
    ptr, msg = first(with_(path, value))
    if path == "/annotations":
        assert (ptr, msg) == ("/annotations/k", "must be a string")
    else:
        assert (ptr, msg) == (path, message)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/linux/namespaces/0/type", "bogus"),
        ("/linux/rootfsPropagation", "rbogus"),  # rshared & co are accepted, as runc takes them
        ("/linux/seccomp", {"defaultAction": "SCMP_ACT_NOPE"}),
        ("/linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        (
            "/linux/seccomp",
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "EQ"}]}
                ],
            },
        ),
        ("/linux/resources", {"devices": [{"allow": True, "type": "x"}]}),
        ("/linux/devices", [{"type": "z", "path": "/dev/z"}]),
        ("/process/scheduler", {"policy": "SCHED_FAST"}),
        ("/process/ioPriority", {"class": "IOPRIO_CLASS_NONE"}),
    ],
)
def test_enum_values(path: str, value: Any) -> None:
    expected = {
        "/linux/seccomp": None,
        "/linux/resources": "/linux/resources/devices/0/type",
        "/linux/devices": "/linux/devices/0/type",
        "/process/scheduler": "/process/scheduler/policy",
        "/process/ioPriority": "/process/ioPriority/class",
    }
    ptr, msg = first(with_(path, value))
    if path == "/linux/seccomp":
        assert ptr in (
            "/linux/seccomp/defaultAction",
            "/linux/seccomp/architectures/0",
            "/linux/seccomp/syscalls/0/args/0/op",
        )
    else:
        assert ptr == expected.get(path, path)
    assert msg.startswith(("invalid value ", "must match")), msg


def test_capability_names() -> None:
    doc = with_("/process/capabilities", {"bounding": ["CAP_KILL", "CAP_FLY"], "ambient": ["kill"]})
    assert problems(doc) == [
        ("/process/capabilities/bounding/1", "unknown capability CAP_FLY"),
        ("/process/capabilities/ambient/0", "unknown capability kill"),
    ]


def test_rlimit_types() -> None:
    doc = with_(
        "/process/rlimits",
        [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}, {"type": "RLIMIT_FOO", "soft": 1, "hard": 1}],
    )
    assert first(doc) == ("/process/rlimits/1/type", "unknown rlimit type RLIMIT_FOO")


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("/process/cwd", "tmp", "/process/cwd"),
        ("/hooks", {"poststart": [{"path": "hook.sh"}]}, "/hooks/poststart/0/path"),
        ("/linux/namespaces/1", {"type": "net" + "work", "path": "proc/1/ns/net"}, "/linux/namespaces/1/path"),
        ("/linux/devices", [{"type": "c", "path": "dev/null", "major": 1, "minor": 3}], "/linux/devices/0/path"),
        ("/linux/maskedPaths", ["/proc/kcore", "proc/keys"], "/linux/maskedPaths/1"),
        ("/linux/readonlyPaths", ["sys"], "/linux/readonlyPaths/0"),
    ],
)
def test_relative_paths(path: str, value: Any, where: str) -> None:
    assert first(with_(path, value)) == (where, "must be an absolute path")


def test_relative_mount_destination_is_a_bundle_problem_not_a_model_one() -> None:
    # Linux still tolerates it (deprecated); ocipy.bundle refuses it. The model follows the spec text.
    spec = Spec.model_validate(with_("/mounts/3/destination", "tmp"))
    assert spec.mounts is not None and spec.mounts[3].destination == "tmp"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("/process/user/uid", -1, "must be >= 0"),
        ("/process/user/uid", 2**32, "must be <= 4294967295"),
        ("/linux/devices", [{"type": "c", "path": "/dev/x", "fileMode": 512}], "must be <= 511"),
        ("/hooks", {"poststop": [{"path": "/bin/true", "timeout": 0}]}, "must be >= 1"),
        ("/linux/resources", {"pids": {"limit": 2**63}}, "must be <= 9223372036854775807"),
        (
            "/linux/seccomp",
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_LOG"}]},
            None,
        ),
    ],
)
def test_ranges(path: str, value: Any, message: str | None) -> None:
    ptr, msg = first(with_(path, value))
    if message is None:
        assert (ptr, msg) == ("/linux/seccomp/syscalls/0/names", "must have at least 1 item(s)")
    else:
        assert msg == message
        assert ptr.startswith(path)


def test_missing_required() -> None:
    doc = base()
    del doc["process"]["cwd"]
    doc["mounts"][2] = {"type": "sysfs"}
    assert problems(doc) == [
        ("/mounts/2/destination", "missing required field"),
        ("/process/cwd", "missing required field"),
    ]
    assert first({"root": {"path": "r"}}) == ("/ociVersion", "missing required field")


def test_all_problems_are_reported() -> None:
    doc = base()
    doc["process"]["cwd"] = "rel"
    doc["linux"]["namespaces"][0]["type"] = "bogus"
    doc["mounts"][1]["destination"] = 7
    assert [p for p, _ in problems(doc)] == ["/mounts/1/destination", "/process/cwd", "/linux/namespaces/0/type"]


# --- versions -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0-rc.1", "1.2.1", "1.3.0", "1.3.7", "1.3.0+build.5"])
def test_supported_versions(version: str) -> None:
    load_config(json.dumps(with_("/ociVersion", version)).encode())


@pytest.mark.parametrize("version", ["2.0.0", "1.4.0", "1.4.0-dev", "0.5.0", "0.5.0-dev"])
def test_unsupported_versions(version: str) -> None:
    ptr, msg = first(with_("/ociVersion", version))
    assert ptr == "/ociVersion" and msg.startswith(f"unsupported version {version}")


@pytest.mark.parametrize("version", ["abc", "1.0", "v1.0.0", "1.0.0.0", "01.0.0", ""])
def test_malformed_versions(version: str) -> None:
    assert first(with_("/ociVersion", version)) == ("/ociVersion", "must be a semver version (like 1.3.0)")


# --- SpecError and JSON problems ----------------------------------------------------------------------------------


def test_spec_error_str_is_first_problem_one_line() -> None:
    with pytest.raises(SpecError) as info:
        load_config(json.dumps(with_("/mounts/3/destination", 3)).encode())
    assert str(info.value) == "/mounts/3/destination: must be a string"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"{]", "line 1 column 2"),
        (b'{"ociVersion": "1.3.0",\n  "x": }', "line 2 column 8"),
        (b"", "line 1 column 1"),
        (b'{"ociVersion": NaN}', "nan"),
        (b"\xff\xff\xff", "invalid json"),
    ],
)
def test_malformed_json(data: bytes, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        load_config(data)
    ptr, msg = info.value.problems[0]
    assert ptr == "" and msg.startswith("invalid json") and fragment in msg
    assert str(info.value) == msg and msg == msg.lower()


def test_top_level_must_be_object() -> None:
    assert first([1]) == ("", "must be an object")


def test_pointer_escaping() -> None:
    assert pointer(["annotations", "a/b~c", 0]) == "/annotations/a~1b~0c/0"
    assert first(with_("/annotations", {"org.example/key~1": 5})) == (
        "/annotations/org.example~1key~01",
        "must be a string",
    )


def test_messages_are_lower_case_one_line() -> None:
    doc = base()
    doc["process"] = {"cwd": 1, "user": {"uid": "x"}, "rlimits": [{"type": 1}]}
    for ptr, msg in problems(doc):
        assert msg[0].islower() and "\n" not in msg, (ptr, msg)


# --- state and features -------------------------------------------------------------------------------------------


def test_state() -> None:
    st = load_state(b'{"ociVersion": "1.3.0", "id": "c1", "status": "created", "pid": 42, "bundle": "/b"}')
    assert st.status == "created" and st.pid == 42
    with pytest.raises(SpecError) as info:
        load_state(b'{"ociVersion": "1.3.0", "id": "c1", "status": "paused", "bundle": "/b", "pid": -1}')
    assert [p for p, _ in info.value.problems] == ["/status", "/pid"]


def test_features() -> None:
    f = load_features(
        b'{"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "linux": {"capabilities": ["CAP_FUTURE"],'
        b' "intelRdt": {"enabled": true, "schemata": true}, "memoryPolicy": {"modes": ["MPOL_BIND"]}}}'
    )
    assert f.linux is not None and f.linux.capabilities == ["CAP_FUTURE"]
    with pytest.raises(SpecError) as info:
        load_features(b'{"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "linux": {"capabilities": ["kill"]}}')
    assert info.value.problems[0][0] == "/linux/capabilities/0"


# --- default config -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rootless", [False, True])
def test_default_config_is_valid(rootless: bool) -> None:
    cfg = default_config(rootless)
    spec = load_config(json.dumps(cfg).encode())
    assert spec.oci_version == "1.3.0" and spec.hostname == "ocipy"
    assert spec.process is not None and spec.process.args == ["sh"] and spec.process.terminal is True


def test_default_config_runc_shape() -> None:
    cfg = default_config(False)
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    assert cfg["process"]["capabilities"]["bounding"] == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert cfg["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert [m["destination"] for m in cfg["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"
    ]  # fmt: skip
    assert [n["type"] for n in cfg["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert cfg["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"] and "/proc/sys" in cfg["linux"]["readonlyPaths"]


def test_default_config_rootless_shape() -> None:
    cfg = default_config(True)
    types = [n["type"] for n in cfg["linux"]["namespaces"]]
    assert "network" not in types and types[-1] == "user"
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert cfg["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert sys_mount["type"] == "none" and "rbind" in sys_mount["options"]
    assert all(not o.startswith(("uid=", "gid=")) for m in cfg["mounts"] for o in m.get("options", []))
    assert "resources" not in cfg["linux"]


def test_default_config_fresh_each_call() -> None:
    a = default_config(False)
    b = copy.deepcopy(a)
    a["mounts"][1]["options"].append("x")
    assert default_config(False) == b


@pytest.mark.parametrize("module", ["ocipy.spec", "ocipy.spec.default", "ocipy.operations.spec"])
def test_light_modules_do_not_import_pydantic(module: str) -> None:
    code = f"import sys, {module}; print('pydantic' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert out.stdout.strip() == "False"
