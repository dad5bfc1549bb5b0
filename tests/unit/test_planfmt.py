"""ocipy/planfmt.py must say exactly what shim/plan.h says: every constant, and the layout of every struct (checked
by parsing the header's text, so no compiler is needed)."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from ocipy import planfmt

PLAN_H = Path(__file__).resolve().parents[2] / "shim" / "plan.h"


def header_text() -> str:
    text = PLAN_H.read_text()
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)  # drop comments


def enum_values(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for body in re.findall(r"enum\s+\w+\s*\{(.*?)\}", text, flags=re.DOTALL):
        for name, value in re.findall(r"(\w+)\s*=\s*(\w+)\s*,?", body):
            values[name] = int(value, 0)
    return values


def define_values(text: str) -> dict[str, int | bytes]:
    values: dict[str, int | bytes] = {}
    for name, value in re.findall(r"^#define\s+(\w+)\s+(\S+)", text, flags=re.MULTILINE):
        if value.startswith('"'):
            values[name] = value.strip('"').encode()
        else:
            try:
                values[name] = int(value.rstrip("uU"), 0)
            except ValueError:
                continue
    return values


C_TYPES = {"uint32_t": ("I", 4), "int32_t": ("i", 4), "int64_t": ("q", 8), "uint64_t": ("Q", 8), "char": ("c", 1)}


def struct_layout(text: str, name: str) -> list[str]:
    """The struct's fields as struct-module codes, one per element (char arrays as one 'Ns')."""
    m = re.search(r"struct\s+" + name + r"\s*\{(.*?)\};", text, flags=re.DOTALL)
    assert m, f"struct {name} not found in plan.h"
    codes: list[str] = []
    for ctype, _field, count in re.findall(r"(\w+)\s+(\w+)\s*(?:\[(\d+)\])?\s*;", m.group(1)):
        code, _size = C_TYPES[ctype]
        n = int(count) if count else 1
        codes += [f"{n}s"] if code == "c" else [code] * n
    return codes


def expand(fmt: str) -> list[str]:
    codes: list[str] = []
    for count, code in re.findall(r"(\d*)([a-zA-Z])", fmt.lstrip("<=!>@")):
        n = int(count) if count else 1
        codes += [f"{n}s"] if code == "s" else [code] * n
    return codes


@pytest.mark.parametrize(
    ("cname", "pystruct", "size"),
    [("plan_header", planfmt.HEADER, 16), ("plan_op", planfmt.OP, 64), ("sync_msg", planfmt.SYNC_MSG, 256)],
)
def test_struct_layouts_match(cname: str, pystruct: struct.Struct, size: int) -> None:
    assert pystruct.format.startswith("<"), "little endian, no native alignment"
    assert expand(pystruct.format) == struct_layout(header_text(), cname)
    assert pystruct.size == size


def test_every_enum_value_matches() -> None:
    values = enum_values(header_text())
    assert len(values) > 50
    for name, value in values.items():
        assert getattr(planfmt, name, None) == value, name


def test_every_python_constant_is_in_the_header() -> None:
    values = enum_values(header_text()) | define_values(header_text())
    for name in dir(planfmt):
        if re.fullmatch(r"(OP|MSG|MNTF)_[A-Z0-9_]+", name):
            assert name in values, f"planfmt.{name} is not in plan.h"
            assert values[name] == getattr(planfmt, name), name


def test_defines_match() -> None:
    defines = define_values(header_text())
    assert defines["PLAN_MAGIC"] == planfmt.MAGIC
    assert defines["PLAN_NOSTR"] == planfmt.NOSTR
    for name, value in defines.items():
        if name.startswith(("MNTF_", "SYNC_")):
            assert getattr(planfmt, name) == value, name


def test_encode_layout() -> None:
    p = planfmt.Plan()
    p.op(planfmt.OP_SETHOSTNAME, "/hostname", s=["box"], a=[1, -1])
    data = p.encode()
    magic, n_ops, strtab_len = planfmt.HEADER.unpack_from(data)
    assert (magic, n_ops, strtab_len) == (planfmt.MAGIC, 1, 4)
    code, field, *rest = planfmt.OP.unpack_from(data, planfmt.HEADER.size)
    assert (code, field) == (planfmt.OP_SETHOSTNAME, 0)
    assert rest[:4] == [0, planfmt.NOSTR, planfmt.NOSTR, planfmt.NOSTR]
    assert rest[4:] == [1, -1, 0, 0, 0]
    assert data[planfmt.HEADER.size + planfmt.OP.size :] == b"box\0"


def test_every_op_code_has_its_handler_row() -> None:
    """shim/init/main.c dispatches through a table indexed by op code: one `[OP_X] = op_x` row per code of plan.h's
    enum plan_code, and no row for anything else (its size is asserted against OP__COUNT at compile time)."""
    main_c = (PLAN_H.parent / "init" / "main.c").read_text()
    m = re.search(r"static const op_fn handlers\[\] = \{(.*?)\};", main_c, flags=re.DOTALL)
    assert m, "the handler table is not in shim/init/main.c"
    rows = re.findall(r"\[(\w+)\]\s*=\s*(\w+),", m.group(1))
    codes = sorted(n for n in enum_values(header_text()) if n.startswith("OP_"))
    assert sorted(code for code, _fn in rows) == codes
    assert all(fn == code.lower() for code, fn in rows), "each op's handler is op_<name>"
    assert sorted(planfmt.NAMES.values()) == codes
