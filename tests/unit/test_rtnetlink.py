"""rtnetlink (firmware/system/rtnetlink.py): the kernel's own bytes parsed, requests built to the
byte, errors turned into OSError; and what it reads agrees with iproute2's `ip -j`, a tool we
did not write, on this machine and in a namespace with the harder cases (a peer address, other
tables, multipath and blackhole routes, dumps long enough to take several datagrams)."""
from __future__ import annotations

import errno
import json
import os
import socket
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from firmware.system import rtnetlink as rt
from firmware.system.rtnetlink import Addr, Link, Message, Reply, Route, Rtnetlink

REPO = Path(__file__).resolve().parents[2]


def kernel_dump(request: Message) -> list[bytes]:
    """The datagrams the kernel answers a dump with, read here on a plain socket: the bytes the
    parser is tested on passed through none of our own I/O."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.settimeout(5)
        s.bind((0, 0))
        s.sendto(bytes(replace(request, seq=42)), (0, 0))
        datagrams = []
        while True:
            datagrams.append(s.recv(65536))
            if any(m.type == rt.NLMSG_DONE for m in Message.parse_all(datagrams[-1])):
                return datagrams


def records(datagrams: list[bytes], kind: int) -> list[Message]:
    return [m for d in datagrams for m in Message.parse_all(d) if m.type == kind]


# --- the kernel's bytes --------------------------------------------------------------------------

def test_a_live_link_dump_has_the_loopback_at_index_1():
    datagrams = kernel_dump(rt.link_dump())
    links = [Link.parse(m.body) for m in records(datagrams, rt.RTM_NEWLINK)]
    lo = next(link for link in links if link.name == "lo")
    sysfs = Path("/sys/class/net/lo")
    assert lo.index == 1 == int((sysfs / "ifindex").read_text())
    assert lo.up == bool(int((sysfs / "flags").read_text(), 16) & 0x1)  # up or not, as the kernel says
    assert lo.mac == (sysfs / "address").read_text().strip() == "00:00:00:00:00:00"
    assert sorted(link.name for link in links) == sorted(os.listdir("/sys/class/net"))


def test_the_kernels_messages_round_trip_byte_for_byte():
    for request in (rt.link_dump(), rt.addr_dump(), rt.route_dump()):
        for d in kernel_dump(request):
            msgs = Message.parse_all(d)
            assert msgs and all(m.seq == 42 for m in msgs)
            assert b"".join(bytes(m) for m in msgs) == d


def test_a_live_address_dump_has_127_0_0_1_8_on_the_loopback():
    addrs = [Addr.parse(m.body) for m in records(kernel_dump(rt.addr_dump()), rt.RTM_NEWADDR)]
    assert Addr(1, 8, "127.0.0.1") in addrs


def test_the_socket_reads_the_same_and_names_a_missing_link():
    with Rtnetlink() as nl:
        assert nl.link_index("lo") == 1
        assert Addr(1, 8, "127.0.0.1") in nl.addresses()
        with pytest.raises(OSError) as e:
            nl.link_index("lbnosuchlink0")
        assert e.value.errno == errno.ENODEV


# --- requests, attributes, errors on hand-built bytes -------------------------------------------

def test_attributes_are_padded_to_four_bytes_and_their_length_excludes_the_padding():
    assert rt.attr(rt.IFLA_IFNAME, b"v0\0") == b"\x07\x00\x03\x00v0\x00\x00"
    assert rt.attr(rt.IFA_LOCAL, bytes([10, 0, 0, 1])) == b"\x08\x00\x02\x00\x0a\x00\x00\x01"
    packed = rt.attr(rt.IFLA_IFNAME, b"eth0\0") + rt.attr(0x8000 | 7, b"x") + rt.attr(rt.IFLA_ADDRESS, b"\1" * 6)
    assert len(packed) == 12 + 8 + 12
    # The nested flag is stripped from the type; the attribute after an unaligned one is found.
    assert rt.attrs(packed) == {rt.IFLA_IFNAME: b"eth0\0", 7: b"x", rt.IFLA_ADDRESS: b"\1" * 6}
    with pytest.raises(ValueError):
        rt.attrs(b"\x20\x00\x01\x00abcd")  # says 32 bytes, has 8


def test_link_get_is_a_request_with_ack_naming_the_link():
    m = replace(rt.link_get("eth0"), seq=7)
    raw = bytes(m)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", raw)
    assert (length, kind, flags, seq, pid) == (len(raw), rt.RTM_GETLINK, rt.NLM_F_REQUEST | rt.NLM_F_ACK, 7, 0)
    assert len(raw) == 16 + 16 + 12 + 8  # header, ifinfomsg, "eth0\0" padded, IFLA_EXT_MASK
    assert rt.attrs(raw[32:])[rt.IFLA_IFNAME] == b"eth0\0"
    assert Message.parse_all(raw) == [m]


def test_dumps_ask_for_every_record():
    for m, kind in ((rt.link_dump(), rt.RTM_GETLINK), (rt.addr_dump(), rt.RTM_GETADDR),
                    (rt.route_dump(), rt.RTM_GETROUTE)):
        assert (m.type, m.flags) == (kind, rt.NLM_F_REQUEST | rt.NLM_F_DUMP)
    assert rt.addr_dump().body[0] == rt.route_dump().body[0] == socket.AF_INET


def test_adding_an_address_sends_local_and_address_exclusively():
    raw = bytes(replace(rt.addr_change(True, 3, "198.51.100.2", 24), seq=9))
    flags = rt.NLM_F_REQUEST | rt.NLM_F_ACK | rt.NLM_F_CREATE | rt.NLM_F_EXCL
    assert raw == (struct.pack("=IHHII", 40, rt.RTM_NEWADDR, flags, 9, 0)
                   + struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 3)
                   + b"\x08\x00\x02\x00" + bytes([198, 51, 100, 2]) + b"\x08\x00\x01\x00" + bytes([198, 51, 100, 2]))
    deleting = rt.addr_change(False, 3, "198.51.100.2", 24)
    assert (deleting.type, deleting.flags, deleting.body) == (rt.RTM_DELADDR, rt.NLM_F_REQUEST | rt.NLM_F_ACK,
                                                               Message.parse_all(raw)[0].body)


def test_the_default_route_is_added_static_to_main_and_deleted_whatever_its_protocol():
    gw_oif = b"\x08\x00\x05\x00" + bytes([198, 51, 100, 1]) + b"\x08\x00\x04\x00" + struct.pack("=I", 3)
    add = rt.default_route_change(True, 3, "198.51.100.1")
    assert add.type == rt.RTM_NEWROUTE
    assert add.flags == rt.NLM_F_REQUEST | rt.NLM_F_ACK | rt.NLM_F_CREATE | rt.NLM_F_EXCL
    # family, dst_len 0 (default: no RTA_DST), src_len, tos, table main, static, universe, unicast
    assert add.body == bytes([socket.AF_INET, 0, 0, 0, 254, 4, 0, 1]) + b"\0" * 4 + gw_oif
    delete = rt.default_route_change(False, 3, "198.51.100.1")
    assert (delete.type, delete.flags) == (rt.RTM_DELROUTE, rt.NLM_F_REQUEST | rt.NLM_F_ACK)
    assert delete.body == bytes([socket.AF_INET, 0, 0, 0, 254, 0, 0, 0]) + b"\0" * 4 + gw_oif
    assert rt.default_route_change(False, 3, None).body.endswith(b"\0" * 4 + gw_oif[8:])  # no gateway


def error_message(seq: int, code: int, request: Message) -> Message:
    return Message(rt.NLMSG_ERROR, 0, seq, 4242, struct.pack("=i", code) + bytes(request)[:16])


def test_an_error_carries_its_errno_as_oserror():
    sent = replace(rt.addr_change(True, 3, "198.51.100.2", 24), seq=5)
    reply = Reply(5)
    with pytest.raises(OSError) as e:
        reply.receive(bytes(error_message(5, -errno.EEXIST, sent)))
    assert e.value.errno == errno.EEXIST and isinstance(e.value, FileExistsError)
    assert e.value.strerror == os.strerror(errno.EEXIST)


def test_an_ack_ends_the_reply_and_other_requests_answers_are_ignored():
    sent = replace(rt.addr_change(False, 3, "198.51.100.2", 24), seq=6)
    reply = Reply(6)
    reply.receive(bytes(error_message(5, -errno.EEXIST, sent)))  # a late answer to request 5
    assert not reply.done
    reply.receive(bytes(error_message(6, 0, sent)))
    assert reply.done and reply.messages == []


def test_a_dump_spans_datagrams_until_done():
    link = (struct.pack("=BxHiII", 0, 1, 2, 0x1043, 0) + rt.attr(rt.IFLA_IFNAME, b"eth0\0")
            + rt.attr(rt.IFLA_ADDRESS, bytes.fromhex("0242ac110002")))
    first = Message(rt.RTM_NEWLINK, rt.NLM_F_MULTI, 8, 4242, link)
    reply = Reply(8)
    reply.receive(bytes(first) + bytes(replace(first, flags=rt.NLM_F_MULTI | rt.NLM_F_DUMP_INTR)))
    assert not reply.done and len(reply.messages) == 2
    reply.receive(bytes(Message(rt.NLMSG_DONE, rt.NLM_F_MULTI, 8, 4242, struct.pack("=i", 0))))
    assert reply.done and reply.interrupted
    assert Link.parse(reply.messages[0].body) == Link(2, "eth0", True, "02:42:ac:11:00:02")
    with pytest.raises(OSError) as e:  # a dump the kernel gave up on
        Reply(9).receive(bytes(Message(rt.NLMSG_DONE, rt.NLM_F_MULTI, 9, 0, struct.pack("=i", -errno.EINTR))))
    assert e.value.errno == errno.EINTR


def test_a_cut_datagram_is_refused():
    raw = bytes(rt.link_get("eth0"))
    with pytest.raises(ValueError):
        Message.parse_all(raw[:-4])
    with pytest.raises(ValueError):
        Message.parse_all(raw + raw[:10])


def test_a_record_cut_inside_its_fixed_part_is_refused_as_valueerror():
    # A whole message whose body is shorter than its ifinfomsg/ifaddrmsg/rtmsg: the same
    # ValueError as a cut attribute, not struct.error.
    for parse, whole in ((Link.parse, rt.IFINFOMSG.size), (Addr.parse, rt.IFADDRMSG.size),
                         (Route.parse, rt.RTMSG.size)):
        for cut in (0, whole - 1):
            with pytest.raises(ValueError):
                parse(b"\0" * cut)
    assert Addr.parse(b"\0" * rt.IFADDRMSG.size) == Addr(0, 0, "")  # no attributes is not cut


def test_an_error_message_too_short_for_its_errno_is_an_error_not_an_ack():
    reply = Reply(5)
    with pytest.raises(OSError) as e:
        reply.receive(bytes(Message(rt.NLMSG_ERROR, 0, 5, 4242, b"\0\0")))
    assert e.value.errno == errno.EBADMSG and not reply.done
    done = Reply(6)  # NLMSG_DONE without a status ends a dump cleanly, as it always has
    done.receive(bytes(Message(rt.NLMSG_DONE, rt.NLM_F_MULTI, 6, 4242)))
    assert done.done


class CannedKernel:
    """Stands in for the socket's far end: every request is answered with the datagrams given."""

    def __init__(self, *datagrams: bytes) -> None:
        self.datagrams = list(datagrams)

    def sendto(self, data: bytes, address: object) -> int:
        return len(data)

    def recvmsg(self, size: int) -> tuple[bytes, list, int, object]:
        return self.datagrams.pop(0), [], 0, None

    def close(self) -> None:
        pass


def test_the_socket_raises_a_malformed_answer_as_the_oserror_its_callers_handle():
    # Seq 1: the socket's first request. The network page and netconf catch OSError only.
    done = bytes(Message(rt.NLMSG_DONE, rt.NLM_F_MULTI, 1, 0, struct.pack("=i", 0)))
    short_link = bytes(Message(rt.RTM_NEWLINK, rt.NLM_F_MULTI, 1, 0, b"\0" * 8))
    for datagrams, ask in (([short_link + done], Rtnetlink.links),  # a record cut short
                           ([done[:-2]], Rtnetlink.routes),  # a datagram cut short
                           ([bytes(Message(rt.NLMSG_ERROR, 0, 1, 0, b"\0\0"))],  # an error without its errno
                            lambda nl: nl.change_address(True, 1, "198.51.100.2", 24))):
        nl = Rtnetlink()
        nl._sock.close()
        nl._sock = CannedKernel(*datagrams)
        with nl, pytest.raises(OSError) as e:
            ask(nl)
        assert e.value.errno == errno.EBADMSG, datagrams


def test_a_route_in_a_table_past_255_is_told_by_rta_table():
    body = (bytes([socket.AF_INET, 16, 0, 0, 252, 4, 0, 1]) + b"\0" * 4 + rt.attr(rt.RTA_TABLE, struct.pack("=I", 1000))
            + rt.attr(rt.RTA_DST, bytes([10, 50, 0, 0])))
    assert Route.parse(body) == Route(1000, "10.50.0.0", 16, None, None)


# --- against iproute2 ----------------------------------------------------------------------------

def in_namespace(ns: str, expression: str) -> list:
    """``expression`` (a list of lists of records) evaluated with ``nl`` an Rtnetlink in namespace
    ``ns``, through a child there: a socket belongs to the namespace it was made in."""
    script = ("import json; from dataclasses import astuple; from firmware.system.rtnetlink import Rtnetlink\n"
              "with Rtnetlink() as nl:\n"
              f"    print(json.dumps([[astuple(x) for x in xs] for xs in {expression}]))\n")
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def ours(ns: str | None) -> tuple[list[Link], list[Addr], list[Route]]:
    """What rtnetlink reads, here or in namespace ``ns``."""
    if ns is None:
        with Rtnetlink() as nl:
            return nl.links(), nl.addresses(), nl.routes()
    links, addrs, routes = in_namespace(ns, "(nl.links(), nl.addresses(), nl.routes())")
    return [Link(*x) for x in links], [Addr(*x) for x in addrs], [Route(*x) for x in routes]


def iproute2(ns: str | None, *args: str) -> list[dict]:
    argv = ["ip", *(["-n", ns] if ns else []), "-j", *args]
    return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def assert_agrees_with_ip(ns: str | None = None) -> tuple[list[Link], list[Addr], list[Route]]:
    links, addrs, routes = ours(ns)
    shown = iproute2(ns, "addr")
    assert [(link.index, link.name, link.up) for link in links] == \
           [(i["ifindex"], i["ifname"], "UP" in i["flags"]) for i in shown]
    for link, i in zip(links, shown):
        if i.get("link_type") in ("ether", "loopback"):
            assert link.mac == i["address"], i["ifname"]
        # IFA_ADDRESS: `ip` shows it as "address" only where it differs from IFA_LOCAL (a peer).
        assert [(a.address, a.prefixlen) for a in addrs if a.index == link.index] == \
               [(a.get("address", a["local"]), a["prefixlen"]) for a in i["addr_info"] if a["family"] == "inet"]
    names = {link.index: link.name for link in links}
    assert [("default" if r.dst is None else r.dst if r.dst_len == 32 else f"{r.dst}/{r.dst_len}",
             r.gateway, names.get(r.oif)) for r in routes] == \
           [(r["dst"], r.get("gateway"), r.get("dev")) for r in iproute2(ns, "route", "show", "table", "main")]
    return links, addrs, routes


def test_this_machines_network_as_ip_shows_it():
    assert_agrees_with_ip()


def test_a_namespace_with_the_hard_cases_as_ip_shows_it():
    # Root, as CI and the other namespace tests (tests/peers/netns.py) run.
    ns = f"lbrtnl{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], capture_output=True, check=True)
    # TEST-NET-2 and private ranges, all inside the namespace: nothing reaches the machine's own.
    commands = ["link set lo up", "link add v0 type veth peer name v1", "link add v2 type veth peer name v3",
                "link set v0 up", "link set v1 up",
                "addr add 198.51.100.2/24 dev v0", "addr add 198.51.100.3/24 dev v0",  # a secondary
                "addr add 10.8.0.1 peer 10.8.0.2/32 dev v1", "addr add 10.7.0.1/16 dev v2",  # v2 is down
                "route add default via 198.51.100.1 dev v0", "route add 10.77.0.5/32 dev v0",
                "route add blackhole 10.66.0.0/16",
                "route add 10.88.0.0/16 nexthop via 198.51.100.1 dev v0 nexthop via 10.8.0.2 dev v1",
                "route add 172.16.0.0/12 via 198.51.100.1 table 100",  # not main
                "route add 10.50.0.0/16 via 198.51.100.1 table 1000"]
    commands += [f"addr add 10.200.{i // 250}.{i % 250 + 1}/32 dev lo" for i in range(300)]  # several datagrams
    commands += [f"link add x{i} type veth peer name y{i}" for i in range(20)]
    try:
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n", text=True, check=True,
                       capture_output=True)
        links, addrs, routes = assert_agrees_with_ip(ns)
        assert len(links) == 45 and len(addrs) == 305
        index = {link.name: link.index for link in links}
        assert Addr(index["v1"], 32, "10.8.0.2") in addrs  # the peer
        # Every table comes in one dump: the other tables' routes are found where they are (1000
        # only by RTA_TABLE, rtm_table being one byte), and not in main.
        in_100, in_1000 = ([Route(*x) for x in xs] for xs in in_namespace(ns, "(nl.routes(100), nl.routes(1000))"))
        assert in_100 == [Route(100, "172.16.0.0", 12, "198.51.100.1", index["v0"])]
        assert in_1000 == [Route(1000, "10.50.0.0", 16, "198.51.100.1", index["v0"])]
        assert len(routes) == 6 and not {r.dst for r in routes} & {"172.16.0.0", "10.50.0.0"}
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
