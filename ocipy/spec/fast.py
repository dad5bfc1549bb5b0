"""Validating config.json and process.json on the create/run/exec path without importing pydantic.

`import pydantic` and building the models costs ~120 ms here, more than everything else `create` does. The models
stay the one definition of what is valid: `python -m ocipy.spec.schemagen` compiles their pydantic-core schemas
into `compiled.py` (plain data, plus record classes standing in for the models and the checks of `checks.py`), and
this module hands that schema to pydantic-core's own validator: ~10 ms, the same engine with the same verdicts
(tests/unit/test_fast_validation.py holds them equal on every upstream example and on generated configs).

Only the verdict and the validated objects come from here. When a document is invalid the caller validates it
again with the models, whose errors are what the user sees (`ocipy.spec.load.problems_from`).

pydantic-core's extension is loaded without its Python package, whose `typing`/`typing_extensions` imports alone
cost ~20 ms; it is registered under its own name, so a later `import pydantic` in the same process reuses it.
"""

from __future__ import annotations

import sys
from importlib.machinery import ExtensionFileLoader, PathFinder

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Any

_EXTENSION = "pydantic_core._pydantic_core"


def _load_extension() -> Any:
    loaded = sys.modules.get(_EXTENSION)
    if loaded is not None:
        return loaded
    package = PathFinder.find_spec("pydantic_core")
    where = package.submodule_search_locations if package is not None else None
    spec = PathFinder.find_spec(_EXTENSION, where) if where else None
    if spec is None or not isinstance(spec.loader, ExtensionFileLoader):
        raise ImportError("pydantic-core's extension module was not found")
    module = spec.loader.create_module(spec)
    spec.loader.exec_module(module)
    module.__spec__ = spec
    sys.modules[_EXTENSION] = module
    return module


_core = _load_extension()
PydanticCustomError = _core.PydanticCustomError
ValidationError = _core.ValidationError

_validators: dict[str, Any] = {}


def validate(kind: str, document: Any) -> Any:
    """The validated record of a parsed document (`kind`: "Spec" or "Process"), or None when it is invalid."""
    validator = _validators.get(kind)
    if validator is None:
        from ocipy.spec.compiled import SCHEMAS

        validator = _validators[kind] = _core.SchemaValidator(SCHEMAS[kind])
    try:
        return validator.validate_python(document)
    except ValidationError:
        return None


def check_config(document: Any) -> tuple[Any, list[tuple[str, str]]]:
    """(config object, []) for a config.json document that is valid and of a version ocipy implements, else
    (None, every problem, worded by the models)."""
    obj = validate("Spec", document)
    if obj is not None:
        from ocipy.spec.checks import version_problem  # on use: checks imports this module

        vp = version_problem(document.get("ociVersion"))
        return (None, [vp]) if vp else (obj, [])
    from ocipy.spec.load import config_problems

    return config_problems(document)  # a model object too if they accept it: only if compiled.py is stale


def validated(kind: str, document: Any) -> Any:
    """The object of a document built in memory; SpecError (worded by the models) when it is invalid."""
    obj = validate(kind, document)
    if obj is None:
        from ocipy.spec import load as load_mod

        obj = load_mod.validate(_model(kind), document)  # raises SpecError with every problem
    return obj


def _model(kind: str) -> Any:
    from ocipy.spec import config

    return getattr(config, kind)
