"""Shared building blocks of the spec models: base class, integer ranges, paths, names.

Validation is strict (no "1" -> 1, no 1.0 -> 1, no 0 -> False) because the official draft-04 schema is: an int
where a string belongs is an error there too. Explicit JSON null for an optional field is rejected for the same
reason, while an absent field reads as None.
"""

from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from ocipy.caps import NAMES

T = TypeVar("T")


def _reject_null(value: Any) -> Any:
    # Defaults are not validated, so this only sees a null that was written in the document.
    if value is None:
        raise PydanticCustomError("null_value", "must not be null")
    return value


# An optional field: absent -> None, present -> must be a T (never null).
Opt = Annotated[T | None, BeforeValidator(_reject_null)]


class SpecModel(BaseModel):
    """Base of every spec object: strict types, unknown keys kept, JSON keys as aliases."""

    model_config = ConfigDict(
        strict=True,
        extra="allow",
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        regex_engine="rust-regex",
    )


Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Uint8 = Annotated[int, Field(ge=0, le=2**8 - 1)]
Uint16 = Annotated[int, Field(ge=0, le=2**16 - 1)]
Uint32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
Uint64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
FileMode = Annotated[int, Field(ge=0, le=511)]

StrList = list[str]
StrMap = dict[str, str]

# POSIX absolute, or Windows drive/UNC absolute (the spec's "absolute" covers both platforms).
ABS_PATH_PATTERN = r"^(/|[A-Za-z]:[\\/]|\\\\)"
AbsPath = Annotated[str, Field(pattern=ABS_PATH_PATTERN)]

# SemVer 2.0.0 (semver.org grammar); the supported range is a runtime question, see load.check_oci_version.
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
OciVersion = Annotated[str, Field(pattern=SEMVER_PATTERN)]

# Linux capability names in kernel number order (index == CAP_* value): the table lives in ocipy/caps.py.
CAPABILITIES: tuple[str, ...] = NAMES
_CAPABILITY_SET = frozenset(CAPABILITIES)


def _check_capability(name: str) -> str:
    if name not in _CAPABILITY_SET:
        raise PydanticCustomError("capability", "unknown capability {name}", {"name": name})
    return name


# A custom check (one clear message) published in the JSON schema as the enum it is.
Capability = Annotated[
    str,
    AfterValidator(_check_capability),
    WithJsonSchema({"type": "string", "enum": list(CAPABILITIES)}),
]

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


def _check_rlimit(name: str) -> str:
    if name not in _RLIMIT_SET:
        raise PydanticCustomError("rlimit", "unknown rlimit type {name}", {"name": name})
    return name


_RLIMIT_SET = frozenset(RLIMITS)
RlimitType = Annotated[
    str,
    AfterValidator(_check_rlimit),
    WithJsonSchema({"type": "string", "enum": list(RLIMITS)}),
]
