"""Generated configs, valid and with one mutation, get the same verdict from the official schema and the models.

Generated values stay where both sides mean the same thing (absolute paths where ocipy insists on them, known
capability names, semver versions); the mutations are ones the official schema also judges: a wrong JSON type, a
dropped key, an out-of-range integer, a non-member of an enum, an unknown key. When the verdict is "invalid", the
models must also name the mutated field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocipy.spec.checks import CAPABILITIES, RLIMITS
from ocipy.spec.config import Spec
from ocipy.spec.load import SpecError, validate

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "shared" / "runtime-spec" / "schema"

pytestmark = pytest.mark.skipif(
    not SCHEMA_DIR.is_dir(), reason=f"official runtime-spec schemas not found at {SCHEMA_DIR}"
)

U32 = 2**32 - 1
I64 = 2**63 - 1
U64 = 2**64 - 1


def _official() -> Any:
    from jsonschema import Draft4Validator  # type: ignore[import-untyped]
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    base = SCHEMA_DIR.as_uri() + "/"
    registry: Registry[Any] = Registry().with_resources(
        (base + p.name, Resource.from_contents(json.loads(p.read_text()), default_specification=DRAFT4))
        for p in sorted(SCHEMA_DIR.glob("*.json"))
    )
    return Draft4Validator({"$ref": base + "config-schema.json"}, registry=registry)


_VALIDATOR: list[Any] = []


def official_valid(doc: Any) -> bool:
    if not _VALIDATOR:
        _VALIDATOR.append(_official())
    return bool(_VALIDATOR[0].is_valid(doc))


# --- value strategies ---------------------------------------------------------------------------------------------

# Printable text without newlines: JSON-schema regexes (`$`, `.`) and Python's differ on "\n".
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
key = text.filter(lambda s: len(s) > 0)
abs_path = st.lists(st.from_regex(r"[a-z0-9_.-]{1,8}", fullmatch=True), max_size=4).map(lambda p: "/" + "/".join(p))
u32 = st.integers(0, U32)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), I64)
u64 = st.integers(0, U64)
u16 = st.integers(0, 2**16 - 1)
strs = st.lists(text, max_size=3)
str_map = st.dictionaries(key, text, max_size=3)


def obj(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with every required key and any subset of the optional ones."""
    return st.fixed_dictionaries(required, optional=optional)


def lst(s: st.SearchStrategy[Any], min_size: int = 0) -> st.SearchStrategy[list[Any]]:
    return st.lists(s, min_size=min_size, max_size=3)


idmap = obj({"containerID": u32, "hostID": u32, "size": u32}, {})
caps = lst(st.sampled_from(CAPABILITIES))
hook = obj({"path": abs_path}, {"args": strs, "env": strs, "timeout": st.integers(1, 100)})

process = obj(
    {"cwd": abs_path},
    {
        "terminal": st.booleans(),
        "consoleSize": obj({"height": u64, "width": u64}, {}),
        "user": obj({}, {"uid": u32, "gid": u32, "umask": u32, "additionalGids": lst(u32), "username": text}),
        "args": strs,
        "commandLine": text,
        "env": strs,
        "capabilities": obj({}, {k: caps for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}),
        "rlimits": lst(obj({"type": st.sampled_from(RLIMITS), "soft": u64, "hard": u64}, {})),
        "noNewPrivileges": st.booleans(),
        "apparmorProfile": text,
        "oomScoreAdj": st.integers(-1000, 1000),
        "selinuxLabel": text,
        "scheduler": obj(
            {"policy": st.sampled_from(["SCHED_OTHER", "SCHED_FIFO", "SCHED_DEADLINE"])},
            {"nice": i32, "priority": i32, "flags": lst(st.sampled_from(["SCHED_FLAG_RECLAIM"])), "runtime": u64},
        ),
        "ioPriority": obj({"class": st.sampled_from(["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE"])}, {"priority": i32}),
        "execCPUAffinity": obj({}, {"initial": st.from_regex(r"[0-9, -]{0,6}", fullmatch=True)}),
    },
)

mount = obj(
    {"destination": abs_path},
    {"source": text, "type": text, "options": strs, "uidMappings": lst(idmap), "gidMappings": lst(idmap)},
)

device_cgroup = obj(
    {"allow": st.booleans()},
    {"type": st.sampled_from("acb"), "major": i64, "minor": i64, "access": st.sampled_from(["", "r", "rw", "rwm"])},
)
resources = obj(
    {},
    {
        "devices": lst(device_cgroup),
        "memory": obj({}, {"limit": i64, "swap": i64, "swappiness": u64, "disableOOMKiller": st.booleans()}),
        "cpu": obj({}, {"shares": u64, "quota": i64, "period": u64, "cpus": text, "idle": i64}),
        "pids": obj({"limit": i64}, {}),
        "blockIO": obj(
            {},
            {
                "weight": u16,
                "weightDevice": lst(obj({"major": i64, "minor": i64}, {"weight": u16, "leafWeight": u16})),
                "throttleReadBpsDevice": lst(obj({"major": i64, "minor": i64}, {"rate": u64})),
            },
        ),
        "hugepageLimits": lst(obj({"pageSize": st.sampled_from(["2MB", "1GB", "64KB"]), "limit": u64}, {})),
        "network": obj({}, {"classID": u32, "priorities": lst(obj({"name": text, "priority": u32}, {}))}),
        "rdma": st.dictionaries(key, obj({}, {"hcaHandles": u32, "hcaObjects": u32}), max_size=2),
        "unified": str_map,
    },
)
seccomp = obj(
    {"defaultAction": st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL"])},
    {
        "defaultErrnoRet": u32,
        "architectures": lst(st.sampled_from(["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"])),
        "flags": lst(st.sampled_from(["SECCOMP_FILTER_FLAG_LOG"])),
        "listenerPath": text,
        "syscalls": lst(
            obj(
                {"names": lst(text, min_size=1), "action": st.sampled_from(["SCMP_ACT_ERRNO", "SCMP_ACT_LOG"])},
                {
                    "errnoRet": u32,
                    "args": lst(
                        obj(
                            {"index": u32, "value": u64, "op": st.sampled_from(["SCMP_CMP_EQ", "SCMP_CMP_NE"])},
                            {"valueTwo": u64},
                        )
                    ),
                },
            )
        ),
    },
)
linux = obj(
    {},
    {
        "namespaces": lst(
            obj({"type": st.sampled_from(["pid", "network", "mount", "user", "time"])}, {"path": abs_path})
        ),
        "uidMappings": lst(idmap),
        "gidMappings": lst(idmap),
        "timeOffsets": obj({}, {"boottime": obj({}, {"secs": i64, "nanosecs": u32})}),
        "devices": lst(
            obj(
                {"type": st.sampled_from("cbup"), "path": abs_path},
                {"major": i64, "minor": i64, "fileMode": st.integers(0, 511), "uid": u32, "gid": u32},
            )
        ),
        "netDevices": st.dictionaries(key, obj({}, {"name": text}), max_size=2),
        "cgroupsPath": text,
        "resources": resources,
        "rootfsPropagation": st.sampled_from(["private", "shared", "slave", "unbindable"]),
        "seccomp": seccomp,
        "sysctl": str_map,
        "maskedPaths": lst(abs_path),
        "readonlyPaths": lst(abs_path),
        "mountLabel": text,
        "intelRdt": obj({}, {"closID": text, "memBwSchema": text.map(lambda s: "MB:" + s)}),
        "memoryPolicy": obj({}, {"mode": st.sampled_from(["MPOL_BIND", "MPOL_LOCAL"]), "nodes": text}),
        "personality": obj({}, {"domain": st.sampled_from(["LINUX", "LINUX32"]), "flags": strs}),
    },
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | text, lambda c: st.lists(c, max_size=2) | st.dictionaries(key, c)
)

config = obj(
    {"ociVersion": st.sampled_from(["1.0.0", "1.0.2-dev", "1.2.1", "1.3.0", "0.5.0-dev"])},
    {
        "root": obj({"path": text}, {"readonly": st.booleans()}),
        "mounts": lst(mount),
        "process": process,
        "hostname": text,
        "domainname": text,
        "hooks": obj({}, {k: lst(hook) for k in ("prestart", "createRuntime", "poststart", "poststop")}),
        "annotations": str_map,
        "linux": linux,
        "x-vendor-extension": json_value,
    },
)

# Strings where both sides enforce an enum or a pattern that "BOGUS" breaks.
ENUM_PATHS = re.compile(
    r"^(/linux/namespaces/\d+/type|/linux/rootfsPropagation|/linux/seccomp/defaultAction"
    r"|/linux/seccomp/syscalls/\d+/(action|args/\d+/op)|/linux/seccomp/(architectures|flags)/\d+"
    r"|/process/scheduler/(policy|flags/\d+)|/process/ioPriority/class|/process/rlimits/\d+/type"
    r"|/linux/devices/\d+/type|/linux/memoryPolicy/mode|/linux/personality/domain"
    r"|/linux/resources/hugepageLimits/\d+/pageSize)$"
)
ODD_INTS = [-1, 0, 256, 512, 65536, 2**31, 2**32, 2**63, 2**64, -(2**31) - 1, -(2**63) - 1]


def _nodes(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _nodes(v, (*path, i))
    return out


def _ptr(path: tuple[Any, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _other_type(value: Any) -> list[Any]:
    candidates: list[Any] = [None, True, 7, 1.5, "s", [], {}]
    if isinstance(value, int) and not isinstance(value, bool):
        candidates.append(float(value))  # 3.0 is not an integer in draft-04, nor for strict models
    return [c for c in candidates if type(c) is not type(value)]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    doc = draw(config)
    kind = draw(st.sampled_from(["none", "type", "drop", "int", "enum", "extra"]))
    nodes = [p for p in _nodes(doc) if p[0] != "x-vendor-extension"]
    if kind == "type":
        path = draw(st.sampled_from(nodes))
        new = draw(st.sampled_from(_other_type(_get(doc, path))))
    elif kind == "drop":
        path = draw(st.sampled_from([p for p in nodes if isinstance(p[-1], str)]))
        del _get(doc, path[:-1])[path[-1]]
        return doc, _ptr(path)
    elif kind == "int":
        ints = [p for p in nodes if type(_get(doc, p)) is int]
        if not ints:
            return doc, None
        path = draw(st.sampled_from(ints))
        new = draw(st.sampled_from(ODD_INTS))
    elif kind == "enum":
        enums = [p for p in nodes if ENUM_PATHS.match(_ptr(p))]
        if not enums:
            return doc, None
        path = draw(st.sampled_from(enums))
        new = "BOGUS"
    elif kind == "extra":
        objs = [()] + [p for p in nodes if isinstance(_get(doc, p), dict)]
        path = draw(st.sampled_from(objs))
        _get(doc, path)["xUnknownKey"] = draw(json_value)
        return doc, None
    else:
        return doc, None
    _get(doc, path[:-1])[path[-1]] = new
    return doc, _ptr(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(config)
def test_generated_configs_are_valid_for_both(doc: dict[str, Any]) -> None:
    assert official_valid(doc)
    validate(Spec, doc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_configs_same_verdict(case: tuple[dict[str, Any], str | None]) -> None:
    doc, where = case
    official = official_valid(doc)
    try:
        validate(Spec, doc)
        ours = True
        problems: list[tuple[str, str]] = []
    except SpecError as exc:
        ours = False
        problems = exc.problems
    assert ours == official, (where, problems)
    if not ours and where is not None:
        assert where in [p for p, _ in problems], (where, problems)
