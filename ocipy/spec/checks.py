"""The custom checks of the spec models, importable without pydantic.

The models (`_base.py`) and the compiled validator (`compiled.py`, see `fast.py`) call these same functions, so
both give the same verdict. `PydanticCustomError` comes from pydantic-core's extension, loaded by `fast.py` when a
check fails (importing this module loads no pydantic-core: create's light.py path reads the tables and
version_problem).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Any

from ocipy.caps import NAMES

# Linux capability names in kernel number order (index == CAP_* value): the table lives in ocipy/caps.py.
CAPABILITIES: tuple[str, ...] = NAMES
_CAPABILITY_SET = frozenset(CAPABILITIES)

# RLIMIT_* names in Linux resource number order (index == RLIMIT_* value).
RLIMITS: tuple[str, ...] = (
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
)
_RLIMIT_SET = frozenset(RLIMITS)


def reject_null(value: Any) -> Any:
    # Defaults are not validated, so this only sees a null that was written in the document.
    if value is None:
        from ocipy.spec.fast import PydanticCustomError

        raise PydanticCustomError("null_value", "must not be null")
    return value


def check_capability(name: str) -> str:
    if name not in _CAPABILITY_SET:
        from ocipy.spec.fast import PydanticCustomError

        raise PydanticCustomError("capability", "unknown capability {name}", {"name": name})
    return name


def check_rlimit(name: str) -> str:
    if name not in _RLIMIT_SET:
        from ocipy.spec.fast import PydanticCustomError

        raise PydanticCustomError("rlimit", "unknown rlimit type {name}", {"name": name})
    return name


# Spec versions this runtime implements: 1.0.0 up to 1.3.x (pre-releases of those included).
SUPPORTED_MAJOR = 1
SUPPORTED_MAX_MINOR = 3


def version_problem(version: Any, where: str = "/ociVersion") -> tuple[str, str] | None:
    """The runtime-level check the models leave out: is this spec version one ocipy implements?"""
    if not isinstance(version, str):
        return None  # the model reports the type
    major, _, rest = version.partition(".")
    minor, _, patch = rest.partition(".")
    patch = patch.partition("+")[0].partition("-")[0]
    if not all(p.isascii() and p.isdigit() for p in (major, minor, patch)):
        return None  # the model reports the format
    if int(major) != SUPPORTED_MAJOR or int(minor) > SUPPORTED_MAX_MINOR:
        return (where, f"unsupported version {version}, ocipy implements 1.0.0 to 1.{SUPPORTED_MAX_MINOR}.x")
    return None
