"""Loads common.py once as `ocipy_security_common` (with the integration helpers behind it) and registers the
runtime fixtures, so the test modules just `import ocipy_security_common as c`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "ocipy_security_common"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("common.py"))
    assert _spec is not None and _spec.loader is not None
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _mod
    _spec.loader.exec_module(_mod)

sys.modules[_NAME].h.load_helpers_fixtures(globals())
