"""The binary plan the C init executes: the Python mirror of shim/plan.h.

A plan is a flat list of operations, each tagged with the config field (a JSON pointer) it came from, so that an
error the init reports as (op index, errno, detail) becomes one line naming the field. Stdlib only.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # `collections.abc` imports the `collections` package (~1 ms on every exec): annotations only
    from collections.abc import Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs ~3 ms (it imports `re`): annotations only
    from typing import Self

MAGIC = b"OCIPLAN2"
NOSTR = 0xFFFFFFFF
HEADER = struct.Struct("<8sII")
OP = struct.Struct("<II4I5q")
SYNC_MSG = struct.Struct("<Iiii240s")

# sync message types (struct sync_msg.type)
MSG_ERROR = 1
MSG_USERMAP = 2
MSG_PID = 3
MSG_HOOKS = 4
MSG_CREATED = 5
MSG_ACK = 6
MSG_SYNC = 7
MSG_TRACE = 8  # --debug: an op is done (init started with "trace"); no reply

# operation codes (enum plan_code)
OP_SETNS = 1
OP_UNSHARE = 2
OP_SYNC_USERMAP = 3
OP_TIMENS_OFFSETS = 4
OP_CLONE = 5
OP_MOUNT_PROPAGATION = 10
OP_BIND_ROOT = 11
OP_OPEN_ROOT = 12
OP_MOUNT = 13
OP_MKNOD = 14
OP_BIND_DEV = 15
OP_SYMLINK = 16
OP_MKDIR = 17
OP_OPEN_DEVNULL = 18
OP_OPEN_FIFO = 19
OP_PIVOT_ROOT = 20
OP_CHROOT = 21
OP_MASK_PATH = 30
OP_READONLY_PATH = 31
OP_SYSCTL = 32
OP_REMOUNT_ROOT_RO = 33
OP_SETHOSTNAME = 34
OP_SETDOMAINNAME = 35
OP_WRITE_PROC = 36
OP_CONSOLE = 37  # a3 = 1: no /dev/console bind (exec)
OP_SETRLIMIT = 40
OP_PERSONALITY = 41
OP_SCHEDULER = 42
OP_IOPRIO = 43
OP_CPU_AFFINITY = 44
OP_NEW_KEYRING = 45
OP_CAP_BOUNDING = 46
OP_SETGROUPS = 47
OP_SETGID = 48
OP_SETUID = 49
OP_CAPSET = 50
OP_NO_NEW_PRIVS = 51
OP_SECCOMP = 52
OP_UMASK = 53
OP_CHDIR = 54
OP_FIND_EXEC = 55
OP_SIGNAL_CREATED = 56
OP_WAIT_START = 57
OP_CLOSE_FDS = 58
OP_EXEC = 59
OP_SYNC = 60
OP_SYNC_HOOKS = 61
OP_SETSID = 62
OP_JOIN_CGROUP = 64
OP_REPORT = 65
OP_LOOPBACK_UP = 66
OP_MEMPOLICY = 67  # a0 = mode | flags, s0 = node list

# OP_SYNC a0 (what the runtime does; the init ignores it)
SYNC_MOUNT_TREES = 1

# OP_MOUNT's slots (plan.h): op.s[MOUNT_SOURCE] ..., op.a[MOUNT_FLAGS] ...
MOUNT_SOURCE, MOUNT_DEST, MOUNT_FSTYPE, MOUNT_DATA = range(4)
MOUNT_FLAGS, MOUNT_REMOUNT, MOUNT_PROPAGATION, MOUNT_ATTRS, MOUNT_MNTF = range(5)
# OP_SYNC's: op.a[SYNC_WHAT] is what the runtime does (SYNC_MOUNT_TREES); OP_REPORT's
SYNC_WHAT = 0
REPORT_LOG, REPORT_TEXTS = range(2)
REPORT_JSON, REPORT_FIRST, REPORT_COUNT = range(3)

# OP_MOUNT a4 bits
MNTF_MKDIR = 0x1
MNTF_MKFILE = 0x2
MNTF_PROC = 0x4
MNTF_IDMAP = 0x8
MNTF_IDMAP_REC = 0x40
MNTF_TMPFS_MODE = 0x80
MNTF_COPYUP = 0x100
MNTF_TREE = 0x200


def mount_attrs(attr_set: int, attr_clr: int) -> int:
    """OP_MOUNT a3: mount_setattr attr_set in the low 32 bits, attr_clr in the high 32 bits."""
    return (attr_clr & 0xFFFFFFFF) << 32 | (attr_set & 0xFFFFFFFF)


NAMES = {v: k for k, v in globals().items() if k.startswith("OP_") and isinstance(v, int)}

Str = str | bytes | None


class Op(tuple[int, int, tuple[int, ...], tuple[int, ...]]):
    """One operation as plan.h's `struct plan_op` holds it: `code` (OP_*), `field` (its config field, an index into
    Plan.fields), `s` (four string-table offsets, NOSTR for none) and `a` (five integers). What each slot of an op
    means is plan.h's comment of the op; the slots Python reads back have names here (MOUNT_MNTF, ...). A tuple, so
    `(code, field, s, a) = op` and the encoder work unchanged."""

    __slots__ = ()

    def __new__(cls, code: int, field: int, s: tuple[int, ...], a: tuple[int, ...]) -> Self:
        return tuple.__new__(cls, (code, field, s, a))

    @property
    def code(self) -> int:
        return self[0]

    @property
    def field(self) -> int:
        return self[1]

    @property
    def s(self) -> tuple[int, ...]:
        return self[2]

    @property
    def a(self) -> tuple[int, ...]:
        return self[3]


class Plan:
    """Operations in execution order plus the string table they point into."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.fields: list[str] = []
        self.what: list[str] = []  # a short human description of each op ("proc on /proc")
        self._strtab = bytearray()
        self._field_index: dict[str, int] = {}

    def _str(self, value: Str) -> int:
        if value is None:
            return NOSTR
        raw = value.encode() if isinstance(value, str) else value
        if b"\0" in raw:
            raise ValueError("string contains a NUL byte")
        off = len(self._strtab)
        self._strtab += raw + b"\0"
        return off

    def strv(self, values: Sequence[str]) -> int:
        """Store strings back to back; return the offset of the first (the op carries the count), NOSTR if none."""
        if not values:
            return NOSTR
        off = len(self._strtab)
        for v in values:
            raw = v.encode()
            if b"\0" in raw:
                raise ValueError("string contains a NUL byte")
            self._strtab += raw + b"\0"
        return off

    def blob(self, data: bytes) -> int:
        """Store raw bytes (may contain NULs); the op carries the length."""
        off = len(self._strtab)
        self._strtab += data + b"\0"
        return off

    def op(
        self,
        code: int,
        field: str,
        s: Sequence[Str | int] = (),
        a: Sequence[int] = (),
        what: str = "",
    ) -> int:
        """Append an op. Entries of `s` are strings (stored now) or offsets already returned by strv()/blob()."""
        fidx = self._field_index.setdefault(field, len(self._field_index))
        if fidx == len(self.fields):
            self.fields.append(field)
        self.ops.append(Op(code, fidx, *self._slots(s, a)))
        self.what.append(what)
        return len(self.ops) - 1

    def fill(self, index: int, s: Sequence[Str | int] = (), a: Sequence[int] = ()) -> None:
        """Set the arguments of an op added earlier (one whose values are known only once the plan is complete)."""
        op = self.ops[index]
        self.ops[index] = Op(op.code, op.field, *self._slots(s, a))

    def _slots(self, s: Sequence[Str | int], a: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if len(s) > 4 or len(a) > 5:
            raise ValueError("too many op arguments")
        offs = tuple(v if isinstance(v, int) else self._str(v) for v in s) + (NOSTR,) * (4 - len(s))
        return offs, tuple(a) + (0,) * (5 - len(a))

    def field_of(self, index: int) -> str:
        if 0 <= index < len(self.ops):
            return self.fields[self.ops[index].field]
        return ""

    def encode(self) -> bytes:
        out = bytearray(HEADER.pack(MAGIC, len(self.ops), len(self._strtab)))
        for code, fidx, offs, ints in self.ops:
            out += OP.pack(code, fidx, *offs, *ints)
        out += self._strtab
        return bytes(out)

    def describe(self) -> list[str]:
        """A readable listing, one line per op: the golden form tests compare."""
        lines = []
        for i, (code, fidx, offs, ints) in enumerate(self.ops):
            strs = [self._read(o) for o in offs if o != NOSTR]
            args = [str(x) for x in ints]
            while args and args[-1] == "0":
                args.pop()
            lines.append(
                f"{NAMES.get(code, code)} {self.fields[fidx] or '-'} s={strs!r} a=[{', '.join(args)}]"
                + (f" # {self.what[i]}" if self.what[i] else "")
            )
        return lines

    def string_at(self, off: int) -> str:
        """The string stored at `off` (an op's s[i])."""
        return self._read(off)

    def _read(self, off: int) -> str:
        end = self._strtab.index(b"\0", off)
        return self._strtab[off:end].decode(errors="replace")
