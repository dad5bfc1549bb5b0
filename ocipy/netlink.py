"""A minimal rtnetlink client: the five requests `linux.netDevices` needs (ocipy/netdev.py), over a raw
AF_NETLINK socket, in ~1 ms of imports instead of pyroute2's ~200 ms (docs/netdevices.md says why).

Each request carries NLM_F_ACK and is read until its answer (or the end of a dump); a negative answer raises
OSError with the kernel's errno, as pyroute2's NetlinkError carried it. A `Route` opened with a network namespace's
fd makes its socket in that namespace (setns on this thread and back): the socket keeps talking to it afterwards.
"""

from __future__ import annotations

import _socket
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

NETLINK_ROUTE = 0
CLONE_NEWNET = 0x40000000

# message types (linux/rtnetlink.h, linux/netlink.h)
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

IFLA_IFNAME = 3
IFLA_NET_NS_PID = 19
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_FLAGS = 8
IFF_UP = 0x1

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTATTR = struct.Struct("=HH")  # len, type
_U32 = struct.Struct("=I")
_RECV_SIZE = 1 << 16


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, data: bytes) -> bytes:
    size = _RTATTR.size + len(data)
    return _RTATTR.pack(size, kind) + data + b"\0" * (_align(size) - size)


def attrs(data: bytes, offset: int) -> dict[int, bytes]:
    """The rtattrs of a message body from `offset` (the first of each type)."""
    out: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(data):
        size, kind = _RTATTR.unpack_from(data, offset)
        if size < _RTATTR.size:
            break
        out.setdefault(kind & 0x3FFF, data[offset + _RTATTR.size : offset + size])  # without NLA_F_NESTED & co
        offset += _align(size)
    return out


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _socket_in(netns: str | None) -> _socket.socket:
    if netns is None:
        return _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                return _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_ROUTE)
            finally:
                _setns(home)  # never left in the container's namespace
        finally:
            os.close(home)
    finally:
        os.close(target)


class Route:
    """An rtnetlink socket in this network namespace, or in the one at the path `netns` (/proc/PID/ns/net)."""

    def __init__(self, netns: str | None = None) -> None:
        self.sock = _socket_in(netns)
        self.seq = 0
        try:
            self.sock.bind((0, 0))
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def request(self, kind: int, flags: int, body: bytes, dump: bool = False) -> list[tuple[int, bytes]]:
        """Send one request; the (type, body) of every answer until its ACK or the end of its dump. (A dump's
        flag bits overlap NLM_F_EXCL/NLM_F_CREATE's, hence `dump` apart.)"""
        self.seq += 1
        seq = self.seq
        flags |= NLM_F_REQUEST | NLM_F_DUMP if dump else NLM_F_REQUEST | NLM_F_ACK  # a dump ends with NLMSG_DONE
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body)
        out: list[tuple[int, bytes]] = []
        while True:
            for mtype, mseq, payload in self._messages():
                if mseq != seq:
                    continue  # not an answer to this request
                if mtype in (NLMSG_ERROR, NLMSG_DONE):
                    err = struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                    if err < 0:
                        raise OSError(-err, os.strerror(-err))
                    return out  # the ACK, or the end of the dump
                out.append((mtype, payload))

    def _messages(self) -> Iterator[tuple[int, int, bytes]]:
        data = self.sock.recv(_RECV_SIZE)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            size, mtype, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if size < _NLMSGHDR.size:
                break
            yield mtype, mseq, data[offset + _NLMSGHDR.size : offset + size]
            offset += _align(size)

    # -- links

    def link_index(self, name: str) -> int | None:
        """The index of the device `name`, None when there is none."""
        body = _IFINFOMSG.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, name.encode() + b"\0")
        try:
            answers = self.request(RTM_GETLINK, 0, body)
        except OSError as exc:
            if exc.errno == 19:  # ENODEV
                return None
            raise
        for mtype, payload in answers:
            if mtype == RTM_NEWLINK:
                return int(_IFINFOMSG.unpack_from(payload)[2])
        return None

    def link_names(self) -> set[str]:
        names = set()
        for mtype, payload in self.request(RTM_GETLINK, 0, _IFINFOMSG.pack(0, 0, 0, 0, 0), dump=True):
            if mtype == RTM_NEWLINK:
                name = attrs(payload, _IFINFOMSG.size).get(IFLA_IFNAME)
                if name is not None:
                    names.add(name.rstrip(b"\0").decode(errors="surrogateescape"))
        return names

    def link_move(self, index: int, pid: int, name: str) -> None:
        """Move the device into the network namespace of `pid`, renamed to `name`, in one request."""
        body = _IFINFOMSG.pack(0, 0, index, 0, 0)
        body += _attr(IFLA_NET_NS_PID, _U32.pack(pid)) + _attr(IFLA_IFNAME, name.encode() + b"\0")
        self.request(RTM_NEWLINK, 0, body)

    def link_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, 0, _IFINFOMSG.pack(0, 0, index, IFF_UP, IFF_UP))

    # -- addresses

    def addresses(self, index: int) -> list[tuple[int, int, int, int, bytes]]:
        """(family, prefixlen, flags, scope, address) of each address of the device; flags from IFA_FLAGS when
        the kernel sends it and it is not 0, else the 8-bit ifa_flags (as pyroute2 read them)."""
        out = []
        for mtype, payload in self.request(RTM_GETADDR, 0, _IFADDRMSG.pack(0, 0, 0, 0, 0), dump=True):
            if mtype != RTM_NEWADDR:
                continue
            family, prefixlen, flags, scope, ifindex = _IFADDRMSG.unpack_from(payload)
            found = attrs(payload, _IFADDRMSG.size)
            address = found.get(IFA_ADDRESS)
            if ifindex != index or address is None:
                continue
            extended = found.get(IFA_FLAGS)
            if extended is not None and len(extended) == 4 and _U32.unpack(extended)[0]:
                flags = _U32.unpack(extended)[0]
            out.append((family, prefixlen, flags, scope, address))
        return out

    def address_add(self, index: int, family: int, prefixlen: int, address: bytes) -> None:
        """Add an address; an IPv4 one is also the local address (IFA_LOCAL), as `ip addr add` and pyroute2 do."""
        body = _IFADDRMSG.pack(family, prefixlen, 0, 0, index)
        if family == _socket.AF_INET:
            body += _attr(IFA_LOCAL, address)
        body += _attr(IFA_ADDRESS, address)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)
