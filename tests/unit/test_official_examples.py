"""Every official good/bad example must get the same verdict from the official schema and from ocipy's models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocipy.spec.config import Spec
from ocipy.spec.load import SpecError, load_config, load_features, load_state, parse_json, validate

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "runtime-spec"
SCHEMA_DIR = SPEC_DIR / "schema"
EXAMPLES_DIR = SCHEMA_DIR / "test"
GENERATED_DIR = Path(__file__).resolve().parents[2] / "schemas"

pytestmark = pytest.mark.skipif(
    not EXAMPLES_DIR.is_dir(), reason=f"official runtime-spec schemas not found at {SCHEMA_DIR}"
)

KINDS = {"config": "config-schema.json", "state": "state-schema.json", "features": "features-schema.json"}
GENERATED = {"config": "config.schema.json", "state": "state.schema.json", "features": "features.schema.json"}
LOADERS = {"config": None, "state": load_state, "features": load_features}


def official_validator(schema_file: str) -> Any:
    """A draft-04 validator whose $refs resolve to the sibling files only (a local registry, no network)."""
    from jsonschema import Draft4Validator  # type: ignore[import-untyped]
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    base = SCHEMA_DIR.as_uri() + "/"
    resources = [
        (base + p.name, Resource.from_contents(json.loads(p.read_text()), default_specification=DRAFT4))
        for p in sorted(SCHEMA_DIR.glob("*.json"))
    ]
    registry: Registry[Any] = Registry().with_resources(resources)
    return Draft4Validator({"$ref": base + schema_file}, registry=registry)


def generated_validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads((GENERATED_DIR / GENERATED[kind]).read_text()))


def official_verdict(validator: Any, raw: bytes) -> bool:
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    return bool(validator.is_valid(doc))


def model_verdict(kind: str, raw: bytes) -> bool:
    try:
        if kind == "config":
            # The models alone: the supported-version range is a runtime check, made by load_config (see below).
            validate(Spec, parse_json(raw))
        else:
            LOADERS[kind](raw)  # type: ignore[misc]
    except SpecError:
        return False
    return True


def _examples() -> list[Any]:
    if not EXAMPLES_DIR.is_dir():
        return []
    out = []
    for kind in KINDS:
        for verdict in ("good", "bad"):
            for p in sorted((EXAMPLES_DIR / kind / verdict).glob("*.json")):
                out.append(pytest.param(kind, verdict, p, id=f"{kind}/{verdict}/{p.name}"))
    return out


_validators: dict[str, Any] = {}


def _official(kind: str) -> Any:
    if kind not in _validators:
        _validators[kind] = official_validator(KINDS[kind])
    return _validators[kind]


@pytest.mark.parametrize(("kind", "expected", "path"), _examples())
def test_same_verdict_as_official_schema(kind: str, expected: str, path: Path) -> None:
    raw = path.read_bytes()
    official = official_verdict(_official(kind), raw)
    assert official == (expected == "good"), "the official schema disagrees with the folder the example is in"
    assert model_verdict(kind, raw) == official


@pytest.mark.parametrize(("kind", "expected", "path"), _examples())
def test_generated_schema_same_verdict(kind: str, expected: str, path: Path) -> None:
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
    except ValueError:
        pytest.skip("not json")
    assert generated_validator(kind).is_valid(doc) == (expected == "good")


def test_load_config_refuses_only_the_version_of_good_examples() -> None:
    """Good examples written for 0.x parse, but `create` refuses the version; nothing else."""
    for p in sorted((EXAMPLES_DIR / "config" / "good").glob("*.json")):
        try:
            load_config(p.read_bytes())
        except SpecError as exc:
            assert [ptr for ptr, _ in exc.problems] == ["/ociVersion"], p.name
            assert "unsupported version" in exc.problems[0][1]


def test_bad_examples_name_the_field() -> None:
    expected = {
        "freebsd-vnet-disable.json": "/freebsd/jail/vnet",
        "linux-hugepage.json": "/linux/resources/hugepageLimits/0/pageSize",
        "linux-netdevice.json": "/linux/netDevices/eth0/name",
        "linux-rdma.json": "/linux/resources/rdma/mlx5_1/hcaHandles",
        "invalid-json.json": "",
    }
    for name, pointer in expected.items():
        with pytest.raises(SpecError) as info:
            load_config((EXAMPLES_DIR / "config" / "bad" / name).read_bytes())
        assert info.value.problems[0][0] == pointer, name
    with pytest.raises(SpecError) as info:
        load_features((EXAMPLES_DIR / "features" / "bad" / "missing-ociVersionMax.json").read_bytes())
    assert info.value.problems == [("/ociVersionMax", "missing required field")]


def test_our_features_document_is_valid() -> None:
    """`ocipy features` (what containerd 2.x reads) against the official features schema and our model."""
    out = subprocess.run([sys.executable, "-m", "ocipy", "features"], capture_output=True, check=True).stdout
    errors = sorted(e.message for e in official_validator(KINDS["features"]).iter_errors(json.loads(out)))
    assert errors == []
    features = load_features(out)
    assert features is not None
