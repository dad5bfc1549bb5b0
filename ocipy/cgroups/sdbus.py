"""A small client of systemd's D-Bus API (org.freedesktop.systemd1.Manager), built on jeepney (pure Python).

Imported only by the systemd cgroup driver (`--systemd-cgroup`): no lifecycle verb of a cgroupfs container loads it.
Connects to the system bus (`$DBUS_SYSTEM_BUS_ADDRESS`, else /run/dbus/system_bus_socket) and, when that fails and
we are root, to systemd's private socket /run/systemd/private (a direct peer connection, no bus daemon), as runc
(go-systemd) does. docs/cgroups.md says why jeepney.

Every failure is a `SystemdError` whose text names what failed (the socket, the method, the unit) and the reason.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from typing import Any, Self

from jeepney import DBusAddress, HeaderFields, MatchRule, MessageType, new_method_call
from jeepney.io.blocking import DBusConnection, prep_socket
from jeepney.low_level import Message

from ocipy.errors import OcipyError, os_reason

SYSTEM_BUS = "/run/dbus/system_bus_socket"
PRIVATE = "/run/systemd/private"
DEST = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER_IFACE = "org.freedesktop.systemd1.Manager"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
JOB_TIMEOUT = 30.0
CALL_TIMEOUT = 25.0

# A unit property as sent: (name, (D-Bus signature, value)), e.g. ("MemoryMax", ("t", 67108864)).
Prop = tuple[str, tuple[str, Any]]


class SystemdError(OcipyError):
    """A D-Bus or job failure; `name` is the D-Bus error name when systemd sent one. The driver words it as a
    CgroupError naming the field (ocipy/cgroups/systemd.py); one that escapes is still one line."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class _PeerConnection(DBusConnection):  # type: ignore[misc]
    """A jeepney connection to a peer (systemd's private socket): no bus daemon, so no Hello."""

    def __init__(self, sock: socket.socket) -> None:
        # DBusConnectionBase's init only: DBusConnection's would say Hello to a bus daemon that is not there
        super(DBusConnection, self).__init__(sock, False)
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import Proxy
        from jeepney.io.common import MessageFilters

        self._filters = MessageFilters()
        self.bus_proxy = Proxy(message_bus, self)
        self.unique_name = None


def _peer_socket(path: str, timeout: float = 2.0) -> socket.socket:
    """Connect and authenticate (EXTERNAL) to a peer, pipelining BEGIN like sd-bus clients do: systemd 252's server
    leaves a message that arrives in the same read as BEGIN unprocessed until more data comes, so jeepney's
    AUTH-wait-BEGIN-send order hangs on /run/systemd/private (the reply never comes)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        uid = str(os.geteuid()).encode().hex().encode()
        sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\nBEGIN\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(1)  # byte by byte: nothing after the OK line may be consumed here
            if not chunk:
                raise ConnectionResetError("connection closed during authentication")
            reply += chunk
        if not reply.startswith(b"OK "):
            raise ConnectionRefusedError(f"authentication refused: {reply.strip().decode(errors='replace')}")
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise


def _system_bus_path() -> str:
    addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
    for part in addr.split(";"):
        if part.startswith("unix:path="):
            return part[len("unix:path=") :].split(",")[0]
    return SYSTEM_BUS


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return os_reason(exc)
    return str(exc) or type(exc).__name__


class Systemd:
    """One connection to systemd's manager."""

    def __init__(self, conn: DBusConnection, where: str, *, bus: bool) -> None:
        self.conn = conn
        self.where = where
        self.bus = bus
        self._manager = DBusAddress(MANAGER_PATH, bus_name=DEST, interface=MANAGER_IFACE)
        self._subscribed = False

    @classmethod
    def connect(cls) -> Systemd:
        errors = []
        path = _system_bus_path()
        try:
            sock = prep_socket(path, False, timeout=2.0)
            conn = DBusConnection(sock, False)
            return cls(conn, path, bus=True)
        except Exception as exc:  # noqa: BLE001 -- any failure here means: try the private socket
            errors.append(f"system bus {path}: {_reason(exc)}")
        if os.geteuid() == 0:
            try:
                sock = _peer_socket(PRIVATE)
                return cls(_PeerConnection(sock), PRIVATE, bus=False)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{PRIVATE}: {_reason(exc)}")
        raise SystemdError("cannot reach systemd: " + "; ".join(errors))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        signature: str | None = None,
        body: tuple[Any, ...] = (),
        *,
        address: DBusAddress | None = None,
        what: str = "",
    ) -> tuple[Any, ...]:
        msg = new_method_call(address or self._manager, method, signature, body)
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=CALL_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise SystemdError(f"{method}{' ' + what if what else ''}: {_reason(exc)} ({self.where})") from None
        if reply.header.message_type == MessageType.error:
            name = str(reply.header.fields.get(HeaderFields.error_name, ""))
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else name
            raise SystemdError(f"{method}{' ' + what if what else ''}: {text}", name)
        return tuple(reply.body)

    def _subscribe(self) -> None:
        """Ask for JobRemoved signals (Subscribe; on the bus also a match rule)."""
        if self._subscribed:
            return
        if self.bus:
            rule = MatchRule(type="signal", interface=MANAGER_IFACE, member="JobRemoved", path=MANAGER_PATH)
            self.call(
                "AddMatch",
                "s",
                (rule.serialise(),),
                address=DBusAddress("/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus"),
            )
        self.call("Subscribe")
        self._subscribed = True

    def _run_job(self, method: str, signature: str, body: tuple[Any, ...], unit: str) -> str:
        """Call a job-returning method and wait for its JobRemoved signal; the job's result ("done", "failed",
        "timeout", "canceled", "dependency", "skipped")."""
        self._subscribe()
        rule = MatchRule(type="signal", interface=MANAGER_IFACE, member="JobRemoved", path=MANAGER_PATH)
        queue: deque[Message] = deque()
        with self.conn.filter(rule, queue=queue):
            (job,) = self.call(method, signature, body, what=unit)
            seen: dict[str, str] = {}
            while True:
                while queue:
                    m = queue.popleft()
                    _id, path, _unit, result = m.body
                    seen[path] = result
                if job in seen:
                    return seen[job]
                try:
                    queue.append(self.conn.recv_until_filtered(queue, timeout=JOB_TIMEOUT))
                except (OSError, TimeoutError) as exc:
                    raise SystemdError(f"{method} {unit}: waiting for job {job}: {_reason(exc)}") from None

    # --- the manager's methods --------------------------------------------------------------------------------
    def start_transient_unit(self, unit: str, props: list[Prop]) -> str:
        return self._run_job("StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", props, []), unit)

    def stop_unit(self, unit: str) -> str:
        return self._run_job("StopUnit", "ss", (unit, "replace"), unit)

    def reset_failed_unit(self, unit: str) -> None:
        self.call("ResetFailedUnit", "s", (unit,), what=unit)

    def set_unit_properties(self, unit: str, props: list[Prop], runtime: bool = True) -> None:
        self.call("SetUnitProperties", "sba(sv)", (unit, runtime, props), what=unit)

    def unit_path(self, unit: str) -> str | None:
        """The unit's object path when it is loaded, else None."""
        try:
            (path,) = self.call("GetUnit", "s", (unit,), what=unit)
        except SystemdError as exc:
            if exc.name == "org.freedesktop.systemd1.NoSuchUnit":
                return None
            raise
        return str(path)

    def unit_property(self, unit: str, interface: str, name: str) -> Any:
        path = self.unit_path(unit)
        if path is None:
            return None
        addr = DBusAddress(path, bus_name=DEST, interface=PROPS_IFACE)
        ((_sig, value),) = self.call("Get", "ss", (interface, name), address=addr, what=f"{unit} {name}")
        return value

    def version(self) -> int:
        """systemd's version number (e.g. 252 from "252.39-1~deb12u2"), 0 when unknown."""
        addr = DBusAddress(MANAGER_PATH, bus_name=DEST, interface=PROPS_IFACE)
        ((_sig, value),) = self.call("Get", "ss", (MANAGER_IFACE, "Version"), address=addr)
        digits = ""
        for ch in str(value).lstrip('"v'):
            if not ch.isdigit():
                break
            digits += ch
        return int(digits) if digits else 0


__all__ = ["Prop", "Systemd", "SystemdError"]
