"""Generate JSON Schemas of config.json, state.json and features.json from the models.

`python -m ocipy.spec.schemagen [--out DIR]` writes them (default: the project's schemas/ folder);
`--check` writes nothing and exits 1 when a file is missing or differs.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from ocipy.spec.config import Spec
from ocipy.spec.features import Features
from ocipy.spec.state import State

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "schemas"

TARGETS: dict[str, tuple[type[BaseModel], str]] = {
    "config.schema.json": (
        Spec,
        "OCI runtime-spec v1.3.0 container configuration (config.json), as ocipy checks it",
    ),
    "state.schema.json": (
        State,
        "OCI runtime-spec v1.3.0 container state, as ocipy checks it",
    ),
    "features.schema.json": (
        Features,
        "OCI runtime-spec v1.3.0 runtime features document, as ocipy checks it",
    ),
}


class _Generator(GenerateJsonSchema):
    """Spec-shaped output: optional fields are "absent or T" (never null) and carry no default."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def schema_for(model: type[BaseModel], description: str) -> dict[str, Any]:
    body = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Generator)
    body["description"] = description
    return {"$schema": _Generator.schema_dialect, **body}


def render(model: type[BaseModel], description: str) -> str:
    return json.dumps(schema_for(model, description), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocipy.spec.schemagen", description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare instead of writing; exit 1 on a difference",
    )
    args = parser.parse_args(argv)
    stale = []
    for name, (model, description) in TARGETS.items():
        path = args.out / name
        text = render(model, description)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(
            f"schemas out of date: {', '.join(stale)} (run python -m ocipy.spec.schemagen)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
