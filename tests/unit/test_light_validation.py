"""exec's light checker (ocipy/spec/light.py + lightrules.py) and pydantic-core (ocipy/spec/fast.py) agree.

`exec` decides with light.py and asks pydantic-core only when light.py says invalid: a document light.py accepts and
pydantic-core refuses would run a process `create` would refuse, and objects that differ would plan differently.
For Spec, light.py checks only the fields exec reads (lightrules.LIGHT_SUBSETS): it is compared with pydantic-core
on the document cut down to those fields. `create` checks the whole config with light.py (root "Create"): compared
with pydantic-core's Spec on the whole document.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fast_validation import EXAMPLES_DIR, PROJECT, plain
from test_spec_hypothesis import config, mutated, process

from ocipy.spec import compiled, fast, light, lightrules, schemagen


def cut(doc: Any) -> Any:
    """The document with only the Spec/Linux fields light.py checks (others may be anything there)."""
    if not isinstance(doc, dict):
        return doc
    spec_keys = {k for k in doc if k not in lightrules.MODELS["Spec"][1]}
    out = {k: doc[k] for k in spec_keys}
    linux = out.get("linux")
    if isinstance(linux, dict):
        out["linux"] = {k: v for k, v in linux.items() if k not in lightrules.MODELS["Linux"][1]}
    return out


def light_plain(value: Any) -> Any:
    if isinstance(value, list):
        return [light_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: light_plain(v) for k, v in value.items()}
    if isinstance(value, lightrules.Record):
        fields = {k: light_plain(v) for k, v in vars(value).items() if not k.startswith("__")}
        extra = value.__pydantic_extra__
        return {**fields, **{f"extra:{k}": light_plain(v) for k, v in extra.items()}}
    return value


def trimmed(value: Any) -> Any:
    """pydantic-core's object of a cut document, as light.py leaves it: skipped fields absent, no type names."""
    out = plain(value)
    _drop_skipped(out)
    return out


def _drop_skipped(node: Any) -> None:
    if isinstance(node, list):
        for v in node:
            _drop_skipped(v)
    elif isinstance(node, dict):
        rules = lightrules.MODELS.get(node.pop("<type>", ""))
        if rules is not None:
            attrs = {attr for _key, attr, _rule, _opt in rules[0]}
            for k in [k for k in node if not k.startswith("extra:") and k not in attrs]:
                del node[k]
        for v in node.values():
            _drop_skipped(v)


def untyped(node: Any) -> Any:
    """pydantic-core's object as light.py's whole-config records read: no type names."""
    if isinstance(node, list):
        return [untyped(v) for v in node]
    if isinstance(node, dict):
        return {k: untyped(v) for k, v in node.items() if k != "<type>"}
    return node


def same(kind: str, doc: Any) -> None:
    if kind == "Spec":
        same_create(doc)
        doc = cut(doc)
    expected = fast.validate(kind, doc)
    got = light.validate(kind, doc)
    assert (got is None) == (expected is None), f"pydantic-core: {'valid' if expected else 'invalid'}, light: other"
    if got is not None:
        assert light_plain(got) == trimmed(expected)


def same_create(doc: Any) -> None:
    """create's whole-config check and pydantic-core's Spec: the same verdict, the same object."""
    expected = fast.validate("Spec", doc)
    got = light.validate("Create", doc)
    assert (got is None) == (expected is None), f"pydantic-core: {'valid' if expected else 'invalid'}, light: other"
    if got is not None:
        assert light_plain(got) == untyped(plain(expected))


def test_rules_are_fresh() -> None:
    assert (PROJECT / "ocipy" / "spec" / "lightrules.py").read_text() == schemagen.render_light(), (
        "ocipy/spec/lightrules.py is stale: run python -m ocipy.spec.schemagen"
    )


def _examples() -> list[Any]:
    if not EXAMPLES_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"official examples not found at {EXAMPLES_DIR}"))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in sorted(EXAMPLES_DIR.glob("*/*.json"))]


@pytest.mark.parametrize("path", _examples())
def test_upstream_examples(path: Path) -> None:
    try:
        doc = json.loads(path.read_bytes())
    except ValueError:
        pytest.skip("not json")
    same("Spec", doc)
    if isinstance(doc, dict) and "process" in doc:
        same("Process", doc["process"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_generated_configs(case: tuple[dict[str, Any], str | None]) -> None:
    same("Spec", case[0])
    if isinstance(case[0].get("process"), dict):
        same("Process", case[0]["process"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(config, st.data())
def test_generated_processes(doc: dict[str, Any], data: st.DataObject) -> None:
    proc = doc.get("process") or data.draw(process)
    same("Process", proc)
    key = data.draw(st.sampled_from(["args", "cwd", "env", "user", "rlimits", "capabilities", "terminal", "scheduler"]))
    bad = data.draw(st.sampled_from([7, None, "x", [], {}, True, -1, 2**64, [None], ["CAP_BOGUS"]]))
    same("Process", dict(proc, **{key: bad}))


@given(st.text(alphabet="0123456789.+-abAZ٣\n/\\:, cbuprwmKMGB", max_size=14))
@settings(max_examples=500, deadline=None)
def test_patterns(text: str) -> None:
    """The hand-written patterns against pydantic-core's rust regex engine, on the fields that carry them."""
    same("Spec", {"ociVersion": text})
    same("Process", {"cwd": text})
    base = {"ociVersion": "1.0.0"}
    same_create(dict(base, linux={"devices": [{"path": "/dev/x", "type": text}]}))
    same_create(dict(base, linux={"resources": {"devices": [{"allow": True, "access": text}]}}))
    same_create(dict(base, linux={"resources": {"hugepageLimits": [{"pageSize": text, "limit": 1}]}}))
    same_create(dict(base, linux={"intelRdt": {"memBwSchema": text}}))
    same("Process", {"cwd": "/", "execCPUAffinity": {"initial": text}})


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {},
        {"cwd": "/"},
        {"cwd": "C:\\x"},
        {"cwd": "c:/"},
        {"cwd": "\\\\srv"},
        {"cwd": "é:/"},
        {"cwd": "/", "args": None},
        {"cwd": "/", "user": {"uid": True}},
        {"cwd": "/", "user": {"uid": 1.0}},
        {"cwd": "/", "user": {"uid": 2**32}},
        {"cwd": "/", "oomScoreAdj": 2**80},
        {"cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1}]},
        {"cwd": "/", "rlimits": [{"type": "RLIMIT_X", "soft": 1, "hard": 1}]},
        {"cwd": "/", "capabilities": {"bounding": ["CAP_BOGUS"]}},
        {"cwd": "/", "scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RECLAIM"]}},
        {"cwd": "/", "ioPriority": {"class": "IOPRIO_CLASS_RT"}},
        {"cwd": "/", "consoleSize": {"height": 1}},
        {"cwd": "/", "oom_score_adj": "extra", "x": [1, None]},
    ],
)
def test_edge_processes(doc: Any) -> None:
    same("Process", doc)


def test_spec_subset_ignores_what_exec_does_not_read() -> None:
    doc = {"ociVersion": "1.0.0", "root": 7, "linux": {"resources": "bogus", "namespaces": [{"type": "pid"}]}}
    spec = light.validate("Spec", doc)
    assert spec is not None and spec.linux.namespaces[0].type == "pid"
    assert light.validate("Spec", dict(doc, linux={"namespaces": [{"type": "bogus"}]})) is None
    assert not hasattr(spec, "root") and spec.__pydantic_extra__ == {}


def test_light_imports_nothing_heavy() -> None:
    code = (
        f"import sys; sys.path[:0] = {[str(PROJECT)]!r}\n"
        "from ocipy.spec import light\n"
        "assert light.validate('Process', {'cwd': '/', 'args': ['true']}).args == ['true']\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'re', 'pydantic_core', 'enum', 'typing'}"
        " or m in {'ocipy.spec.compiled', 'ocipy.spec.fast'}))"
    )
    out = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_records_are_not_compiled_records() -> None:
    """Two families of records: code reading a spec must use attributes only (the planner's `_get`)."""
    rec = light.validate("Process", {"cwd": "/"})
    assert not isinstance(rec, compiled.Record) and isinstance(rec, lightrules.Record)
