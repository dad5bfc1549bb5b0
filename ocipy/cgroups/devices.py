"""Device access rules: the effective rule list, v1 `devices.allow`/`devices.deny` writes, and the cgroup v2 eBPF
program (BPF_PROG_TYPE_CGROUP_DEVICE) built here as raw instructions and loaded/attached with `bpf(2)` through the
shim (`ocipy._shim.bpf`: not ctypes, whose import cost ~1.5 ms of every create).

The effective list is `linux.resources.devices` in order, then (as runc) the devices every container gets -- mknod
of anything, null, zero, full, random, urandom, tty, console, ptmx and the pts. `linux.devices` adds nothing. Unlike
runc, a default is left out when a config rule names that exact device: a config that denies /dev/null gets it denied
(runc re-allows it, which its own comments call questionable).

Program semantics: the last rule matching (type, major, minor, and every requested access bit) decides; no match
denies. That is what the v1 lists do for the lists runtimes write (deny all, then allow some).
"""

from __future__ import annotations

import errno
import posix as os  # not `os` (~1.2 ms of every create: ocipy/posixlite.py); the same functions
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # `dataclasses` imports `inspect`, `typing` imports `re` (~10 ms per create): see ocipy/records.py
    from dataclasses import dataclass
    from typing import Any
else:
    from ocipy.records import dataclass

from ocipy import _shim
from ocipy import posixlite as px
from ocipy.errors import os_reason

from . import CgroupError

POINTER = "/linux/resources/devices"


@dataclass(frozen=True)
class Rule:
    allow: bool
    type: str  # "a", "c", "b"
    major: int  # -1 = any
    minor: int  # -1 = any
    access: str  # subset of "rwm"

    def v1_line(self) -> str:
        if self.type == "a" and self.major < 0 and self.minor < 0 and set(self.access) >= set("rwm"):
            return "a"
        maj = "*" if self.major < 0 else str(self.major)
        mnr = "*" if self.minor < 0 else str(self.minor)
        return f"{self.type} {maj}:{mnr} {self.access}"


DEFAULT_ALLOWED = (
    Rule(True, "c", -1, -1, "m"),
    Rule(True, "b", -1, -1, "m"),
    Rule(True, "c", 1, 3, "rwm"),  # null
    Rule(True, "c", 1, 8, "rwm"),  # random
    Rule(True, "c", 1, 7, "rwm"),  # full
    Rule(True, "c", 5, 0, "rwm"),  # tty
    Rule(True, "c", 1, 5, "rwm"),  # zero
    Rule(True, "c", 1, 9, "rwm"),  # urandom
    Rule(True, "c", 5, 1, "rwm"),  # console
    Rule(True, "c", 136, -1, "rwm"),  # pts
    Rule(True, "c", 5, 2, "rwm"),  # ptmx
)


def parse_rules(entries: Any, pointer: str = POINTER) -> list[Rule]:
    rules: list[Rule] = []
    for i, e in enumerate(entries or []):
        ptr = f"{pointer}/{i}"
        if not isinstance(e, dict) or not isinstance(e.get("allow"), bool):
            raise CgroupError(ptr, "an entry needs a boolean allow")
        typ = e.get("type") or "a"
        if typ not in ("a", "c", "b", "u", "p"):
            raise CgroupError(f"{ptr}/type", f"{typ!r}: must be a, c or b")
        typ = "c" if typ == "u" else typ
        if typ == "p":
            continue  # fifos are not device-controlled
        access = e.get("access") or "rwm"
        if not isinstance(access, str) or not access or set(access) - set("rwm"):
            raise CgroupError(f"{ptr}/access", f"{access!r}: must be made of r, w and m")
        access = "".join(c for c in "rwm" if c in access)
        maj, mnr = e.get("major"), e.get("minor")
        for name, v in (("major", maj), ("minor", mnr)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < -1 or v > 0xFFFFFFFF):
                raise CgroupError(f"{ptr}/{name}", f"{v!r}: not a device number")
        major = -1 if maj is None else maj
        minor = -1 if mnr is None else mnr
        if typ == "a" and (major >= 0 or minor >= 0 or access != "rwm"):
            # v1 cannot express a partial "all": spell it for both kinds
            rules.append(Rule(e["allow"], "c", major, minor, access))
            rules.append(Rule(e["allow"], "b", major, minor, access))
        else:
            rules.append(Rule(e["allow"], typ, major, minor, access))
    return rules


def effective_rules(resource_devices: Any) -> list[Rule]:
    rules = parse_rules(resource_devices)
    named = {(r.type, r.major, r.minor) for r in rules if r.major >= 0 and r.minor >= 0}
    rules += [r for r in DEFAULT_ALLOWED if (r.type, r.major, r.minor) not in named]
    # `linux.devices` only makes nodes: access is what linux.resources.devices allows (as runc: a device made but
    # not allowed cannot be opened, and a later deny entry keeps its effect)
    return rules


# --- v1 -----------------------------------------------------------------------------------------------------------
def apply_v1(directory: str, rules: list[Rule]) -> None:
    """Deny everything, then write the rules in order (a fresh v1 devices cgroup starts with its parent's list)."""
    writes = [("devices.deny", "a")] + [("devices.allow" if r.allow else "devices.deny", r.v1_line()) for r in rules]
    # one fd per file, one write(2) per rule (the kernel parses each write alone): not an open(..., "w") text file
    # per rule (~0.3 ms of a create for the ~14 rules of a default config)
    fds: dict[str, int] = {}
    try:
        for fname, line in writes:
            path = px.join(directory, fname)
            try:
                fd = fds.get(fname)
                if fd is None:
                    fd = fds[fname] = px.open(path, px.O_WRONLY | px.O_CLOEXEC)
                px.write(fd, line.encode())
            except OSError as exc:
                raise CgroupError(POINTER, f"{path}: write {line!r}: {os_reason(exc)}") from None
    finally:
        for fd in fds.values():
            px.close(fd)


# --- v2: the eBPF program -------------------------------------------------------------------------------------------
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 5, 8, 9, 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
DEV_BLOCK, DEV_CHAR = 1, 2
ACC = {"m": 1, "r": 2, "w": 4}

# opcodes (linux/bpf.h, linux/bpf_common.h)
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_MOV64_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_EXIT = 0x95  # BPF_JMP | BPF_EXIT


def _ins(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    if imm > 0x7FFFFFFF:
        imm -= 1 << 32
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def build_program(rules: list[Rule]) -> bytes:
    """The instructions: load (type, access, major, minor) from `struct bpf_cgroup_dev_ctx`, test the rules from the
    last to the first (the first match returns its verdict), deny when none matches."""
    prog = [
        _ins(_LDX_W, 2, 1, 0),  # r2 = ctx->access_type  (access << 16 | type)
        _ins(_MOV32_X, 3, 2),  # r3 = r2
        _ins(_AND32_K, 3, imm=0xFFFF),  # r3 = type
        _ins(_RSH32_K, 2, imm=16),  # r2 = access
        _ins(_LDX_W, 4, 1, 4),  # r4 = major
        _ins(_LDX_W, 5, 1, 8),  # r5 = minor
    ]
    for r in reversed(rules):
        body: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm); jumps get their offset below
        if r.type != "a":
            body.append((_JNE_K, 3, 0, DEV_BLOCK if r.type == "b" else DEV_CHAR))
        if r.major >= 0:
            body.append((_JNE_K, 4, 0, r.major))
        if r.minor >= 0:
            body.append((_JNE_K, 5, 0, r.minor))
        mask = sum(ACC[c] for c in r.access)
        if mask != 7:
            body.append((_MOV32_X, 1, 2, 0))
            body.append((_AND32_K, 1, 0, ~mask & 7))
            body.append((_JNE_K, 1, 0, 0))
        body.append((_MOV64_K, 0, 0, 1 if r.allow else 0))
        body.append((_EXIT, 0, 0, 0))
        n = len(body)
        for i, (code, dst, src, imm) in enumerate(body):
            off = n - i - 1 if code == _JNE_K else 0
            prog.append(_ins(code, dst, src, off, imm))
        if n == 2:
            # matches everything: what comes after could never run (and the verifier refuses unreachable code)
            return b"".join(prog)
    prog.append(_ins(_MOV64_K, 0, imm=0))
    prog.append(_ins(_EXIT))
    return b"".join(prog)


def load_program(insns: bytes) -> int:
    """BPF_PROG_LOAD: a program fd. Loaded without the verifier's log first (with it, a load costs ~1.2 ms of CPU
    instead of ~0.35: the log buffer), as cilium/ebpf does for runc; a refused program is loaded again with the log,
    whose first line goes into the error."""
    try:
        return _load(insns, 0)
    except OSError:
        pass
    return _load(insns, 65536)


def _load(insns: bytes, log_size: int) -> int:
    log = bytearray(max(1, log_size))
    keep_insns, insns_at = _shim.address(insns)
    keep_lic, lic_at = _shim.address(b"Apache\0")
    keep_log, log_at = _shim.address(log)
    attr = bytearray(128)
    struct.pack_into(
        "<IIQQIIQII16sII",
        attr,
        0,
        BPF_PROG_TYPE_CGROUP_DEVICE,
        len(insns) // 8,
        insns_at,
        lic_at,
        1 if log_size else 0,
        log_size,
        log_at if log_size else 0,
        0,
        0,
        b"ocipy_dev",
        0,
        BPF_CGROUP_DEVICE,
    )
    try:
        return _shim.bpf(BPF_PROG_LOAD, attr)
    except OSError as exc:
        logged = log.split(b"\0", 1)[0].decode(errors="replace")
        text = [ln for ln in logged.splitlines() if ln and not ln.startswith("processed ")]
        detail = f" (verifier: {text[0]})" if text else ""
        raise OSError(exc.errno, f"{exc.strerror}{detail}") from None
    finally:
        del keep_insns, keep_lic, keep_log


def query_programs(cgroup_fd: int) -> list[int]:
    ids = bytearray(4 * 64)
    keep, ids_at = _shim.address(ids)
    attr = bytearray(128)
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, BPF_CGROUP_DEVICE, 0, 0, ids_at, 64)
    try:
        _shim.bpf(BPF_PROG_QUERY, attr)
    finally:
        del keep
    count = min(struct.unpack_from("<I", attr, 24)[0], 64)
    return list(struct.unpack_from(f"<{count}I", ids))


def _prog_fd_by_id(prog_id: int) -> int:
    attr = bytearray(128)
    struct.pack_into("<I", attr, 0, prog_id)
    return _shim.bpf(BPF_PROG_GET_FD_BY_ID, attr)


def attach_program(directory: str, prog_fd: int, replace_old: bool = True) -> None:
    """Attach (multi) to the cgroup, then detach the programs that were there before (an update)."""
    cg = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = query_programs(cg) if replace_old else []
        attr = bytearray(128)
        struct.pack_into("<IIII", attr, 0, cg, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        _shim.bpf(BPF_PROG_ATTACH, attr)
        for pid_ in old:
            try:
                ofd = _prog_fd_by_id(pid_)
            except OSError:
                continue
            try:
                attr = bytearray(128)
                struct.pack_into("<IIII", attr, 0, cg, ofd, BPF_CGROUP_DEVICE, 0)
                _shim.bpf(BPF_PROG_DETACH, attr)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            finally:
                os.close(ofd)
    finally:
        os.close(cg)


def apply_v2(directory: str, rules: list[Rule]) -> None:
    """Build, load and attach the program; the cgroup keeps it (and frees it when the cgroup goes)."""
    try:
        fd = load_program(build_program(rules))
    except OSError as exc:
        raise CgroupError(POINTER, f"load the device eBPF program: {os_reason(exc)}") from None
    try:
        attach_program(directory, fd)
    except OSError as exc:
        raise CgroupError(POINTER, f"{directory}: attach the device eBPF program: {os_reason(exc)}")
    finally:
        os.close(fd)
