"""The committed schemas/ files are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocipy.spec import schemagen

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(schemagen.TARGETS))
def test_committed_schema_is_current(name: str) -> None:
    model, description = schemagen.TARGETS[name]
    committed = (SCHEMAS / name).read_text(encoding="utf-8")
    assert committed == schemagen.render(model, description), (
        f"schemas/{name} is stale: run python -m ocipy.spec.schemagen"
    )


def test_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert schemagen.main(["--out", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert schemagen.main(["--out", str(tmp_path)]) == 0
    assert schemagen.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "state.schema.json").write_text("{}\n", encoding="utf-8")
    assert schemagen.main(["--out", str(tmp_path), "--check"]) == 1


def test_output_is_deterministic_and_well_formed() -> None:
    for model, description in schemagen.TARGETS.values():
        text = schemagen.render(model, description)
        assert text == schemagen.render(model, description)
        assert text.endswith("}\n") and not text.endswith("\n\n")
        body = json.loads(text)
        assert json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text
        assert body["$schema"].startswith("https://json-schema.org/")


def test_generated_schemas_are_valid_json_schemas() -> None:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    for name in schemagen.TARGETS:
        Draft202012Validator.check_schema(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))


def test_optional_fields_are_not_nullable() -> None:
    text = (SCHEMAS / "config.schema.json").read_text(encoding="utf-8")
    assert '"null"' not in text
    assert '"default": null' not in text
