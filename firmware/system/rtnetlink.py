"""The kernel's routing socket (rtnetlink(7)), only as far as the network settings need it:
list links, IPv4 addresses and routes; add or delete an address and a default route.

Not pyroute2: importing it costs the web admin 10.5 MiB (asyncio, ssl, its own netlink stack)
for the life of the process, against the 30 MB it must idle under (docs/web.md, "Memory").
This is the stdlib's ``socket.AF_NETLINK`` and ``struct``, already loaded there.

The core is pure: ``Message`` is the wire type (``parse_all`` a datagram, ``bytes()`` back),
the request builders return Messages, ``Link``/``Addr``/``Route`` read the kernel's answers,
and ``Reply`` takes the datagrams of one answer and says when it is complete, raising
OSError(errno) when the kernel refused. ``Rtnetlink`` is the blocking socket around them; an
answer they refuse as malformed (ValueError) it raises as OSError(EBADMSG), the error its
callers handle.

Numbers are host byte order, as netlink is, except addresses, which are network order.
Every attribute and every message starts on a 4-byte boundary (NLA_ALIGN, NLMSG_ALIGN).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from dataclasses import dataclass, replace
from typing import Callable, Iterator, TypeVar

__all__ = ["Message", "Link", "Addr", "Route", "Reply", "Rtnetlink", "attrs", "attr", "align",
           "link_dump", "link_get", "addr_dump", "route_dump", "addr_change", "default_route_change"]

# linux/netlink.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP_INTR = 0x1, 0x2, 0x4, 0x10
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400  # for NEW requests: the same bits mean something else there
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

# linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
IFLA_ADDRESS, IFLA_IFNAME, IFLA_EXT_MASK = 1, 3, 29
RTEXT_FILTER_SKIP_STATS = 1 << 3  # the dumps need no counters: smaller answers
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_UNSPEC, RTPROT_STATIC = 0, 4
RT_SCOPE_UNIVERSE = 0
RTN_UNSPEC, RTN_UNICAST = 0, 1

HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
NLA = struct.Struct("=HH")  # nlattr: len, type
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
ERRNO = struct.Struct("=i")  # nlmsgerr.error (the request's header follows); NLMSG_DONE's status

RECV_SIZE = 65536  # a dump datagram is at most about 32 KiB; a larger one is refused, not cut
DUMP_TRIES = 3


def align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    """One attribute: its length counts the value, not the padding after it."""
    return NLA.pack(NLA.size + len(value), kind) + value + b"\0" * (align(len(value)) - len(value))


def attrs(data: bytes) -> dict[int, bytes]:
    """The attributes packed in ``data`` by type (flags stripped; a repeated type: the last)."""
    found: dict[int, bytes] = {}
    pos = 0
    while pos + NLA.size <= len(data):
        length, kind = NLA.unpack_from(data, pos)
        if length < NLA.size or pos + length > len(data):
            raise ValueError(f"netlink attribute of length {length} at {pos} of {len(data)} bytes")
        found[kind & NLA_TYPE_MASK] = data[pos + NLA.size:pos + length]
        pos += align(length)
    return found


@dataclass(frozen=True)
class Message:
    """One netlink message; ``body`` is everything after the header up to nlmsg_len."""

    type: int
    flags: int = 0
    seq: int = 0
    pid: int = 0
    body: bytes = b""

    @classmethod
    def parse_all(cls, data: bytes) -> list[Message]:
        """The messages of one datagram. ValueError if it is not a whole number of them."""
        out: list[Message] = []
        pos = 0
        while pos < len(data):
            if pos + HEADER.size > len(data):
                raise ValueError(f"{len(data) - pos} bytes after the last netlink message")
            length, kind, flags, seq, pid = HEADER.unpack_from(data, pos)
            if length < HEADER.size or pos + length > len(data):
                raise ValueError(f"netlink message of length {length} at {pos} of {len(data)} bytes")
            out.append(cls(kind, flags, seq, pid, bytes(data[pos + HEADER.size:pos + length])))
            pos += align(length)
        return out

    def __bytes__(self) -> bytes:
        n = HEADER.size + len(self.body)
        return HEADER.pack(n, self.type, self.flags, self.seq, self.pid) + self.body + b"\0" * (align(n) - n)

    def __repr__(self) -> str:
        return f"Message(type={self.type}, flags={self.flags:#x}, seq={self.seq}, body={len(self.body)} bytes)"

    def error(self) -> int:
        """The errno an NLMSG_ERROR or NLMSG_DONE carries (positive; 0 for an ACK or a clean end).
        An NLMSG_ERROR too short to carry one is EBADMSG: taken as an ACK, a refused change
        would pass for done."""
        if self.type not in (NLMSG_ERROR, NLMSG_DONE):
            return 0
        if len(self.body) < ERRNO.size:
            return errno.EBADMSG if self.type == NLMSG_ERROR else 0
        return -ERRNO.unpack_from(self.body)[0]


def _fixed(part: struct.Struct, body: bytes, what: str) -> tuple:
    """The fixed part a record's body starts with; ValueError, as from attrs(), if it is cut."""
    if len(body) < part.size:
        raise ValueError(f"{what} of {len(body)} bytes, not {part.size}")
    return part.unpack_from(body)


def _ipv4(raw: bytes | None) -> str | None:
    return socket.inet_ntoa(raw) if raw is not None and len(raw) == 4 else None


def _u32(raw: bytes | None) -> int | None:
    return struct.unpack("=I", raw)[0] if raw is not None and len(raw) == 4 else None


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    up: bool  # administratively (IFF_UP), as `ip link` shows UP in the flags
    mac: str  # "aa:bb:cc:dd:ee:ff"; "" for a link without a hardware address

    @classmethod
    def parse(cls, body: bytes) -> Link:
        _family, _type, index, flags, _change = _fixed(IFINFOMSG, body, "ifinfomsg")
        a = attrs(body[IFINFOMSG.size:])
        name = a.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode("utf-8", "replace")
        return cls(index, name, bool(flags & IFF_UP), ":".join(f"{b:02x}" for b in a.get(IFLA_ADDRESS, b"")))


@dataclass(frozen=True)
class Addr:
    index: int
    prefixlen: int
    address: str  # IFA_ADDRESS: the peer's on a point-to-point link, else the same as IFA_LOCAL

    @classmethod
    def parse(cls, body: bytes) -> Addr:
        _family, prefixlen, _flags, _scope, index = _fixed(IFADDRMSG, body, "ifaddrmsg")
        a = attrs(body[IFADDRMSG.size:])
        return cls(index, prefixlen, _ipv4(a.get(IFA_ADDRESS, a.get(IFA_LOCAL))) or "")


@dataclass(frozen=True)
class Route:
    table: int
    dst: str | None  # None for the default route
    dst_len: int
    gateway: str | None
    oif: int | None  # None for a multipath or a blackhole route

    @classmethod
    def parse(cls, body: bytes) -> Route:
        _family, dst_len, _src_len, _tos, table, _proto, _scope, _type, _flags = _fixed(RTMSG, body, "rtmsg")
        a = attrs(body[RTMSG.size:])
        # rtm_table is one byte: a table past 255 is only in RTA_TABLE.
        return cls(_u32(a.get(RTA_TABLE)) or table, _ipv4(a.get(RTA_DST)), dst_len, _ipv4(a.get(RTA_GATEWAY)),
                   _u32(a.get(RTA_OIF)))


# --- requests (seq 0: the socket numbers them) ---------------------------------------------------

_SKIP_STATS = attr(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))


def link_dump() -> Message:
    return Message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, body=IFINFOMSG.pack(0, 0, 0, 0, 0) + _SKIP_STATS)


def link_get(name: str) -> Message:
    """One link by name; the kernel answers ENODEV if there is none."""
    return Message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK,
                   body=IFINFOMSG.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name.encode() + b"\0") + _SKIP_STATS)


def addr_dump(family: int = socket.AF_INET) -> Message:
    return Message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, body=IFADDRMSG.pack(family, 0, 0, 0, 0))


def route_dump(family: int = socket.AF_INET) -> Message:
    """Every table's routes: without strict checking the kernel ignores a table asked for."""
    return Message(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, body=RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0))


def _change_flags(add: bool) -> int:
    # EXCL: adding what is already there is an error (EEXIST), not a silent success.
    return NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if add else 0)


def addr_change(add: bool, index: int, address: str, prefixlen: int) -> Message:
    ip = socket.inet_aton(address)
    return Message(RTM_NEWADDR if add else RTM_DELADDR, _change_flags(add),
                   body=IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
                   + attr(IFA_LOCAL, ip) + attr(IFA_ADDRESS, ip))


def default_route_change(add: bool, index: int, gateway: str | None) -> Message:
    """The default route of the main table via ``gateway`` on link ``index``. Added as a static
    route (what pyroute2 did before); deleted whatever its protocol, so that one DHCP installed
    goes too (the kernel matches a protocol of 0 to any)."""
    proto, kind = (RTPROT_STATIC, RTN_UNICAST) if add else (RTPROT_UNSPEC, RTN_UNSPEC)
    body = RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, proto, RT_SCOPE_UNIVERSE, kind, 0)
    if gateway is not None:
        body += attr(RTA_GATEWAY, socket.inet_aton(gateway))
    return Message(RTM_NEWROUTE if add else RTM_DELROUTE, _change_flags(add),
                   body=body + attr(RTA_OIF, struct.pack("=I", index)))


class Reply:
    """The kernel's answer to request ``seq``, given datagram by datagram: ``done`` once it has
    ended (NLMSG_DONE after a dump, the ACK after a change); ``messages`` are its records."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.messages: list[Message] = []
        self.done = False
        self.interrupted = False  # the kernel's tables changed during the dump: ask again

    def receive(self, data: bytes) -> None:
        for m in Message.parse_all(data):
            if m.seq != self.seq:
                continue  # what is left of an earlier answer on this socket
            if m.flags & NLM_F_DUMP_INTR:
                self.interrupted = True
            if m.type in (NLMSG_DONE, NLMSG_ERROR):
                code = m.error()
                if code:
                    # errno's subclasses (FileExistsError, PermissionError) come with it.
                    raise OSError(code, os.strerror(code))
                self.done = True
                return
            self.messages.append(m)


T = TypeVar("T")


@contextlib.contextmanager
def _malformed() -> Iterator[None]:
    """An answer the parsers refuse, as the OSError the callers (the network page) handle."""
    try:
        yield
    except (ValueError, struct.error) as exc:
        raise OSError(errno.EBADMSG, f"a malformed netlink answer: {exc}") from exc


class Rtnetlink:
    """A blocking NETLINK_ROUTE socket in the caller's network namespace; one request at a
    time, its whole answer read. A kernel silent for ``timeout`` seconds is a TimeoutError."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            self._sock.settimeout(timeout)
            self._sock.bind((0, 0))
        except OSError:
            self._sock.close()
            raise
        self._seq = 0

    def __enter__(self) -> Rtnetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def request(self, msg: Message) -> list[Message]:
        """Sends ``msg`` and returns the answer's records; a dump the kernel's tables changed
        under is asked for again."""
        for _ in range(DUMP_TRIES):
            self._seq += 1
            reply = Reply(self._seq)
            self._sock.sendto(bytes(replace(msg, seq=self._seq)), (0, 0))
            while not reply.done:
                data, _, flags, _ = self._sock.recvmsg(RECV_SIZE)
                if flags & socket.MSG_TRUNC:
                    raise OSError(errno.EMSGSIZE, f"a netlink answer longer than {RECV_SIZE} bytes")
                with _malformed():
                    reply.receive(data)
            if not reply.interrupted:
                return reply.messages
        raise OSError(errno.EAGAIN, "the kernel's tables kept changing during the dump")

    def _records(self, msg: Message, kind: int, parse: Callable[[bytes], T]) -> list[T]:
        """The answer's records of type ``kind``, parsed."""
        found = self.request(msg)
        with _malformed():
            return [parse(m.body) for m in found if m.type == kind]

    def links(self) -> list[Link]:
        return self._records(link_dump(), RTM_NEWLINK, Link.parse)

    def addresses(self) -> list[Addr]:
        """The IPv4 addresses of every link, in the kernel's order."""
        return self._records(addr_dump(), RTM_NEWADDR, Addr.parse)

    def routes(self, table: int = RT_TABLE_MAIN) -> list[Route]:
        """The IPv4 routes of ``table``."""
        return [r for r in self._records(route_dump(), RTM_NEWROUTE, Route.parse) if r.table == table]

    def link_index(self, name: str) -> int:
        """OSError ENODEV if no link has that name."""
        found = self._records(link_get(name), RTM_NEWLINK, Link.parse)
        if not found:
            raise OSError(errno.ENODEV, f"no link named {name!r}")
        return found[0].index

    def change_address(self, add: bool, index: int, address: str, prefixlen: int) -> None:
        self.request(addr_change(add, index, address, prefixlen))

    def change_default_route(self, add: bool, index: int, gateway: str | None) -> None:
        self.request(default_route_change(add, index, gateway))
