"""The compiled validator (ocipy/spec/fast.py + compiled.py) and the models give the same verdict and the same values.

`create`, `run` and `exec` decide validity with the compiled validator and import pydantic only to word a problem,
so any difference between the two would let `create` run a config `validate` refuses, or the reverse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ocipy.spec import compiled, fast, schemagen
from ocipy.spec.config import Process, Spec

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = PROJECT.parent / "shared" / "runtime-spec" / "schema" / "test" / "config"

# the generated configs of the models' own hypothesis test, valid ones and ones with a mutation
from test_spec_hypothesis import config, mutated, process


def plain(value: Any) -> Any:
    """A model or a record as nested dicts of its fields and extra keys (by field name), for comparison."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, BaseModel | compiled.Record):
        fields = {k: plain(v) for k, v in vars(value).items() if not k.startswith("__")}
        extra = getattr(value, "__pydantic_extra__", None) or {}
        return {"<type>": type(value).__name__, **fields, **{f"extra:{k}": plain(v) for k, v in extra.items()}}
    return value


def same_verdict(model: type[BaseModel], doc: Any) -> None:
    try:
        expected: Any = model.model_validate(doc)
    except ValidationError:
        expected = None
    got = fast.validate(model.__name__, doc)
    assert (got is None) == (expected is None), f"models: {'valid' if expected else 'invalid'}, compiled: other"
    if got is not None:
        assert type(got) is getattr(compiled, model.__name__)
        assert plain(got) == plain(expected)


def test_compiled_module_is_fresh() -> None:
    assert (PROJECT / "ocipy" / "spec" / "compiled.py").read_text() == schemagen.render_compiled(), (
        "ocipy/spec/compiled.py is stale: run python -m ocipy.spec.schemagen"
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
        pytest.skip("not json: both read it with the same parser")
    same_verdict(Spec, doc)
    if isinstance(doc, dict) and "process" in doc:
        same_verdict(Process, doc["process"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_generated_configs(case: tuple[dict[str, Any], str | None]) -> None:
    same_verdict(Spec, case[0])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(config, st.data())
def test_generated_processes(doc: dict[str, Any], data: st.DataObject) -> None:
    proc = doc.get("process") or data.draw(process)
    same_verdict(Process, proc)
    broken = dict(proc, **{data.draw(st.sampled_from(["args", "cwd", "env", "user", "rlimits"])): 7})
    same_verdict(Process, broken)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        "x",
        {},
        {"ociVersion": "1.0.0", "root": None},
        {"ociVersion": "1.0.0", "process": {"cwd": "/", "capabilities": {"bounding": ["CAP_BOGUS"]}}},
        {"ociVersion": "1.0.0", "process": {"cwd": "/", "rlimits": [{"type": "RLIMIT_X", "soft": 1, "hard": 1}]}},
        {"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": True}}},
        {"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": 1.0}}},
        {"ociVersion": "1.0.0", "process": {"cwd": "relative"}},
        {"ociVersion": "1.0.0", "linux": {"resources": {"memory": {"limit": 2**63}}}},
        {"ociVersion": "1.0.0", "linux": {"namespaces": [{"type": "bogus"}]}},
        {"ociVersion": "v1", "x": {"anything": [1, None]}},
    ],
)
def test_edge_documents(doc: Any) -> None:
    same_verdict(Spec, doc)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-IS", "-c", f"import sys; sys.path[:0] = {[str(PROJECT), *sys.path]!r}\n{code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_valid_bundle_loads_without_pydantic(tmp_path: Path) -> None:
    os.mkdir(tmp_path / "rootfs")
    cfg = {"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "process": {"args": ["/bin/true"], "cwd": "/"}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out = _run(
        "from ocipy.bundle import load_bundle\n"
        f"spec, rootfs, doc = load_bundle({str(tmp_path)!r})\n"
        "print(spec.process.args, rootfs.endswith('rootfs'), sorted(m for m in sys.modules if m.startswith('pydantic')))"
    )
    assert out.returncode == 0, out.stderr
    # checked by ocipy/spec/light.py: not even pydantic-core's extension is loaded for a valid config (issue 15)
    assert out.stdout.split() == ["['/bin/true']", "True", "[]"]


def test_an_invalid_bundle_is_worded_by_the_models(tmp_path: Path) -> None:
    os.mkdir(tmp_path / "rootfs")
    cfg = {"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "process": {"args": ["/bin/true"], "cwd": 7}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out = _run(f"from ocipy.bundle import load_bundle\nload_bundle({str(tmp_path)!r})")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].endswith("OcipyError: /process/cwd: must be a string")


def test_pydantic_after_the_extension_was_loaded_alone() -> None:
    """fast.py registers the extension under its own name, so a later `import pydantic` (to word a problem) works."""
    out = _run(
        "from ocipy.spec import fast\n"
        "assert fast.validate('Spec', {'ociVersion': 1}) is None\n"
        "from ocipy.spec.load import SpecError, load_config\n"
        "try:\n    load_config(b'{\"ociVersion\": 1}')\nexcept SpecError as exc:\n    print(exc)"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "/ociVersion: must be a string"
