"""A minimal protocol-buffers (proto2) wire codec: just enough for CRIU's RPC messages (images/rpc.proto).

A message schema is a dict `name -> Field`. Scalars are varints (int32, uint32, bool, enum) or length-delimited
(string, bytes, nested message); `repeated` fields are lists. Encoding writes the fields in the schema's order and
skips `None`; decoding returns a dict with every known field that was present (unknown fields are skipped, as the
protocol requires, so a newer CRIU that answers with more fields still decodes).

Why hand-written: ocipy sends one request and reads a handful of answers per checkpoint; the `protobuf` package costs
~40 ms to import and a generated module to keep in step, for ~30 fields of plain scalars.
"""

from __future__ import annotations

from typing import Any

from ocipy.errors import OcipyError

VARINT, LEN = 0, 2
_VARINT_KINDS = frozenset({"int32", "uint32", "bool", "enum"})


class Field:
    """One field: its number, kind (int32 | uint32 | bool | enum | string | bytes | message), the schema of a
    message field, and whether it repeats. (No dataclass: `dataclasses` imports `inspect`, ~10 ms.)"""

    __slots__ = ("kind", "number", "repeated", "schema")

    def __init__(self, number: int, kind: str, schema: dict[str, Field] | None = None, repeated: bool = False) -> None:
        self.number = number
        self.kind = kind
        self.schema = schema
        self.repeated = repeated


class WireError(OcipyError):
    """A message that does not fit its schema: CRIU's answer garbled, or a bug in a request."""

    def __init__(self, message: str) -> None:
        super().__init__(f"criu rpc: {message}")


def _varint(value: int) -> bytes:
    if value < 0:
        value &= (1 << 64) - 1  # negative int32: ten bytes, two's complement (proto2)
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def _encode_one(f: Field, value: Any) -> bytes:
    if f.kind in _VARINT_KINDS:
        return _varint((f.number << 3) | VARINT) + _varint(int(value))
    if f.kind == "string":
        payload = str(value).encode()
    elif f.kind == "bytes":
        payload = bytes(value)
    elif f.kind == "message":
        assert f.schema is not None
        payload = encode(f.schema, value)
    else:
        raise WireError(f"unknown kind {f.kind}")
    return _varint((f.number << 3) | LEN) + _varint(len(payload)) + payload


def encode(schema: dict[str, Field], message: dict[str, Any]) -> bytes:
    unknown = set(message) - set(schema)
    if unknown:
        raise WireError(f"unknown field(s) {sorted(unknown)}")
    out = bytearray()
    for name, f in schema.items():
        value = message.get(name)
        if value is None:
            continue
        for item in value if f.repeated else [value]:
            out += _encode_one(f, item)
    return bytes(out)


def _signed32(value: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    return value


def decode(schema: dict[str, Field], data: bytes) -> dict[str, Any]:
    by_number = {f.number: (name, f) for name, f in schema.items()}
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wtype = key >> 3, key & 7
        if wtype == VARINT:
            raw, pos = _read_varint(data, pos)
            value: Any = raw
        elif wtype == LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise WireError("truncated field")
            value = data[pos : pos + size]
            pos += size
        elif wtype == 1:  # fixed64
            pos += 8
            continue
        elif wtype == 5:  # fixed32
            pos += 4
            continue
        else:
            raise WireError(f"unsupported wire type {wtype}")
        if number not in by_number:
            continue
        name, f = by_number[number]
        if f.kind in _VARINT_KINDS:
            if wtype != VARINT:
                raise WireError(f"{name}: expected a varint")
            value = bool(value) if f.kind == "bool" else _signed32(value) if f.kind == "int32" else value
        else:
            if wtype != LEN:
                raise WireError(f"{name}: expected a length-delimited field")
            if f.kind == "string":
                value = value.decode("utf-8", "replace")
            elif f.kind == "message":
                assert f.schema is not None
                value = decode(f.schema, value)
        if f.repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out
