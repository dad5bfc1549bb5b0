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

# Linux capability names in kernel number order (index == CAP_* value).
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
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
