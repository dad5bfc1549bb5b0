"""Shared building blocks of the spec models: base class, integer ranges, paths, names.

Validation is strict (no "1" -> 1, no 1.0 -> 1, no 0 -> False) because the official draft-04 schema is: an int
where a string belongs is an error there too. Explicit JSON null for an optional field is rejected for the same
reason, while an absent field reads as None.
"""

from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from ocipy.spec.checks import CAPABILITIES, RLIMITS, check_capability, check_rlimit, reject_null

T = TypeVar("T")


# An optional field: absent -> None, present -> must be a T (never null).
Opt = Annotated[T | None, BeforeValidator(reject_null)]


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

# A custom check (one clear message) published in the JSON schema as the enum it is.
Capability = Annotated[
    str,
    AfterValidator(check_capability),
    WithJsonSchema({"type": "string", "enum": list(CAPABILITIES)}),
]

RlimitType = Annotated[
    str,
    AfterValidator(check_rlimit),
    WithJsonSchema({"type": "string", "enum": list(RLIMITS)}),
]
