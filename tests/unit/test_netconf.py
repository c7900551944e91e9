"""Network changes: planning is pure, and a change not confirmed from the new address rolls back."""
from __future__ import annotations

import errno
import ipaddress
import threading
import time
from pathlib import Path

import pytest

from firmware.system.netconf import Address, Interface, NetChanger, NetError, NetState, Op, Route, plan_static

STATE = NetState(
    (Interface("lo", True, "", (Address("127.0.0.1", 8),)),
     Interface("eth0", True, "aa:bb", (Address("192.168.1.10", 24), Address("fe80::1", 64)))),
    (Route("default", "192.168.1.1", "eth0"), Route("192.168.1.0/24", None, "eth0")))


def test_plan_replaces_the_address_and_the_default_route_and_undoes_in_reverse():
    ops, undo = plan_static(STATE, "eth0", "10.0.0.5", "24", "10.0.0.1")
    assert ops == [Op("route-del", "eth0", gateway="192.168.1.1"), Op("addr-del", "eth0", Address("192.168.1.10", 24)),
                   Op("addr-add", "eth0", Address("10.0.0.5", 24)), Op("route-add", "eth0", gateway="10.0.0.1")]
    assert undo == [Op("route-del", "eth0", gateway="10.0.0.1"), Op("addr-del", "eth0", Address("10.0.0.5", 24)),
                    Op("addr-add", "eth0", Address("192.168.1.10", 24)), Op("route-add", "eth0", gateway="192.168.1.1")]


@pytest.mark.parametrize("iface, addr, prefix, gw, field", [
    ("eth9", "10.0.0.5", 24, None, "interface"),
    ("lo", "10.0.0.5", 24, None, "interface"),
    ("eth0", "10.0.0.300", 24, None, "address"),
    ("eth0", "10.0.0.0", 24, None, "address"),      # the network address
    ("eth0", "10.0.0.255", 24, None, "address"),    # the broadcast address
    ("eth0", "10.0.0.5", 33, None, "prefix"),
    ("eth0", "10.0.0.5", "x", None, "prefix"),
    ("eth0", "10.0.0.5", 24, "10.0.1.1", "gateway"),  # not on the new network
    ("eth0", "10.0.0.5", 24, "10.0.0.5", "gateway"),
])
def test_bad_fields_are_named(iface, addr, prefix, gw, field):
    with pytest.raises(NetError) as e:
        plan_static(STATE, iface, addr, prefix, gw)
    assert e.value.field == field


class FakeKernel:
    """The netlink boundary: a state that operations change (the planner's output is real), and
    refuse as Linux does. Like Linux, it takes every route that leaves by an interface when its
    last IPv4 address goes, and an address brings its network's route."""

    def __init__(self, state: NetState, fail_on: str | None = None) -> None:
        self.st, self.fail_on, self.log = state, fail_on, []

    def state(self) -> NetState:
        return self.st

    def apply(self, ops):
        for op in ops:
            if op.verb == self.fail_on:
                self.fail_on = None  # once: the gateway was not reachable, say
                raise OSError("ENETUNREACH")
            iface = self.st.interface(op.ifname)
            if iface is None:
                raise OSError(errno.ENODEV, f"no link named {op.ifname!r}")
            addrs, routes = list(iface.addresses), list(self.st.routes)
            if op.verb == "addr-add":
                if op.address in addrs:
                    raise OSError(errno.EEXIST, str(op.address))
                addrs.append(op.address)
                if connected(op.address, op.ifname) not in routes:
                    routes.append(connected(op.address, op.ifname))
            elif op.verb == "addr-del":
                if op.address not in addrs:
                    raise OSError(errno.EADDRNOTAVAIL, str(op.address))
                addrs.remove(op.address)
                network = connected(op.address, op.ifname)
                if network in routes and not any(connected(a, op.ifname) == network for a in addrs):
                    routes.remove(network)
                if not any(":" not in a.address for a in addrs):
                    routes = [r for r in routes if r.ifname != op.ifname]
            elif op.verb == "route-add":
                route = Route("default", op.gateway, op.ifname)
                if route in routes:
                    raise OSError(errno.EEXIST, "default route")
                if op.gateway is not None and not any(ipaddress.ip_address(op.gateway) in on(a) for a in addrs):
                    raise OSError(errno.ENETUNREACH, f"{op.gateway} is on none of {op.ifname}'s networks")
                routes.append(route)
            else:  # route-del: no gateway matches any, as in the kernel
                left = [r for r in routes if not (r.dst == "default" and r.ifname == op.ifname
                                                  and op.gateway in (None, r.gateway))]
                if left == routes:
                    raise OSError(errno.ESRCH, "no such default route")
                routes = left
            self.log.append(op)
            self.st = NetState(tuple(Interface(i.name, i.up, i.mac, tuple(addrs)) if i is iface else i
                                     for i in self.st.interfaces), tuple(routes))


def on(a: Address) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(str(a), strict=False)


def connected(a: Address, ifname: str) -> Route:
    return Route(str(on(a)), None, ifname)


def defaults(st: NetState) -> list[tuple[str | None, str]]:
    return [(r.gateway, r.ifname) for r in st.routes if r.dst == "default"]


def test_the_fake_kernel_drops_an_interfaces_routes_with_its_last_address():
    k = FakeKernel(STATE)
    k.apply([Op("addr-del", "eth0", Address("192.168.1.10", 24))])
    assert k.st.routes == ()  # the IPv6 address left does not keep IPv4 routes
    with pytest.raises(OSError) as e:
        k.apply([Op("route-del", "eth0", gateway="192.168.1.1")])
    assert e.value.errno == errno.ESRCH


@pytest.mark.parametrize("gateway", ["192.168.1.1", None])
def test_renumbering_on_the_same_network_keeps_the_default_route(gateway):
    # Same gateway, or left blank: the kernel drops the route with the old address all the same.
    ops, undo = plan_static(STATE, "eth0", "192.168.1.20", 24, gateway)
    assert ops == [Op("route-del", "eth0", gateway="192.168.1.1"), Op("addr-del", "eth0", Address("192.168.1.10", 24)),
                   Op("addr-add", "eth0", Address("192.168.1.20", 24)), Op("route-add", "eth0", gateway="192.168.1.1")]
    k = FakeKernel(STATE)
    k.apply(ops)
    assert defaults(k.st) == [("192.168.1.1", "eth0")]
    k.apply(undo)
    assert set(k.st.interface("eth0").addresses) == set(STATE.interface("eth0").addresses)
    assert set(k.st.routes) == set(STATE.routes)


@pytest.mark.parametrize("address, gateway, ops", [
    ("10.0.0.5", "10.0.0.1", [Op("route-del", "eth0", gateway="192.168.1.1"),
                              Op("addr-del", "eth0", Address("192.168.1.10", 24)),
                              Op("addr-add", "eth0", Address("10.0.0.5", 24)),
                              Op("route-add", "eth0", gateway="10.0.0.1")]),
    ("192.168.1.10", "192.168.1.254", [Op("route-del", "eth0", gateway="192.168.1.1"),  # only the gateway
                                       Op("route-add", "eth0", gateway="192.168.1.254")]),
    ("192.168.1.10", "192.168.1.1", []),  # nothing changes
])
def test_a_new_gateway_replaces_the_old_one(address, gateway, ops):
    planned, undo = plan_static(STATE, "eth0", address, 24, gateway)
    assert planned == ops
    k = FakeKernel(STATE)
    k.apply(planned)
    assert defaults(k.st) == [(gateway, "eth0")]
    k.apply(undo)
    assert set(k.st.routes) == set(STATE.routes)


def test_a_blank_gateway_off_the_new_network_is_asked_for():
    # Keeping it is impossible; dropping the default route silently would cut the box off from
    # everything beyond its LAN while the admin, on the LAN, confirms the change.
    with pytest.raises(NetError) as e:
        plan_static(STATE, "eth0", "10.0.0.5", 24, None)
    assert e.value.field == "gateway" and "192.168.1.1" in str(e.value) and "10.0.0.0/24" in str(e.value)
    bare = NetState(STATE.interfaces, STATE.routes[1:])  # no default route to keep: nothing to ask
    assert plan_static(bare, "eth0", "10.0.0.5", 24, None)[0] == [
        Op("addr-del", "eth0", Address("192.168.1.10", 24)), Op("addr-add", "eth0", Address("10.0.0.5", 24))]


def test_default_routes_not_leaving_by_the_interface_are_left_alone(tmp_path: Path):
    # A multipath or blackhole default route has no interface ("?": no link has that name), and
    # another interface's is not this change's to touch.
    eth1 = Interface("eth1", True, "cc:dd", (Address("172.20.0.2", 16),))
    state = NetState(STATE.interfaces + (eth1,),
                     STATE.routes + (Route("default", None, "?"), Route("default", "172.20.0.1", "eth1")))
    k = FakeKernel(state)
    NetChanger(k, tmp_path, window=5).change("eth0", "10.0.0.5", 24, "10.0.0.1")
    assert defaults(k.st) == [(None, "?"), ("172.20.0.1", "eth1"), ("10.0.0.1", "eth0")]


def test_unconfirmed_change_rolls_back(tmp_path: Path):
    k = FakeKernel(STATE)
    ch = NetChanger(k, tmp_path, window=0.2)
    ch.change("eth0", "10.0.0.5", 24, "10.0.0.1")
    assert k.st.interface("eth0").addresses[-1] == Address("10.0.0.5", 24)
    time.sleep(0.5)
    assert set(k.st.interface("eth0").addresses) == set(STATE.interface("eth0").addresses)
    assert {r.gateway for r in k.st.routes if r.dst == "default"} == {"192.168.1.1"}
    assert ch.pending is None and ch.saved() is None


def test_an_unconfirmed_renumbering_on_the_same_network_brings_the_old_route_back(tmp_path: Path):
    k = FakeKernel(STATE)
    rolled_back = threading.Event()
    ch = NetChanger(k, tmp_path, window=0.2, on_event=lambda what: "rolled back" in what and rolled_back.set())
    p = ch.change("eth0", "192.168.1.20", 24, None)
    assert defaults(k.st) == [("192.168.1.1", "eth0")]
    assert p.gateway == "192.168.1.1"  # kept, so a confirmed change saves it for the next start
    assert rolled_back.wait(5)
    assert set(k.st.interface("eth0").addresses) == set(STATE.interface("eth0").addresses)
    assert set(k.st.routes) == set(STATE.routes)


def test_confirmation_only_from_the_new_address_keeps_and_saves(tmp_path: Path):
    k = FakeKernel(STATE)
    ch = NetChanger(k, tmp_path, window=0.5)
    p = ch.change("eth0", "10.0.0.5", 24, "10.0.0.1")
    with pytest.raises(NetError):
        ch.confirm(p.id, "192.168.1.10")  # from the old address proves nothing
    assert not ch.confirm("wrong-id", "10.0.0.5")
    assert ch.confirm(p.id, "10.0.0.5")
    time.sleep(0.7)
    assert Address("10.0.0.5", 24) in k.st.interface("eth0").addresses  # no roll-back after confirming
    assert ch.saved() == {"interface": "eth0", "address": "10.0.0.5/24", "gateway": "10.0.0.1"}


def test_a_refused_operation_puts_back_what_was_done(tmp_path: Path):
    k = FakeKernel(STATE, fail_on="route-add")
    ch = NetChanger(k, tmp_path, window=5)
    with pytest.raises(NetError):
        ch.change("eth0", "10.0.0.5", 24, "10.0.0.1")
    assert set(k.st.interface("eth0").addresses) == set(STATE.interface("eth0").addresses)
    assert {r.gateway for r in k.st.routes if r.dst == "default"} == {"192.168.1.1"}
    assert ch.pending is None
