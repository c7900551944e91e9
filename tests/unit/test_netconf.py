"""Network changes: planning is pure, and a change not confirmed from the new address rolls back."""
from __future__ import annotations

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
    """The netlink boundary: a state that operations change (the planner's output is real)."""

    def __init__(self, state: NetState, fail_on: str | None = None) -> None:
        self.st, self.fail_on, self.log = state, fail_on, []

    def state(self) -> NetState:
        return self.st

    def apply(self, ops):
        for op in ops:
            if op.verb == self.fail_on:
                self.fail_on = None  # once: the gateway was not reachable, say
                raise OSError("ENETUNREACH")
            self.log.append(op)
            ifs = []
            for i in self.st.interfaces:
                if i.name == op.ifname and op.address is not None:
                    addrs = tuple(a for a in i.addresses if a != op.address)
                    if op.verb == "addr-add":
                        addrs += (op.address,)
                    i = Interface(i.name, i.up, i.mac, addrs)
                ifs.append(i)
            routes = list(self.st.routes)
            if op.verb == "route-add":
                routes.append(Route("default", op.gateway, op.ifname))
            elif op.verb == "route-del":
                routes = [r for r in routes if not (r.dst == "default" and r.gateway == op.gateway)]
            self.st = NetState(tuple(ifs), tuple(routes))


def test_unconfirmed_change_rolls_back(tmp_path: Path):
    k = FakeKernel(STATE)
    ch = NetChanger(k, tmp_path, window=0.2)
    ch.change("eth0", "10.0.0.5", 24, "10.0.0.1")
    assert k.st.interface("eth0").addresses[-1] == Address("10.0.0.5", 24)
    time.sleep(0.5)
    assert set(k.st.interface("eth0").addresses) == set(STATE.interface("eth0").addresses)
    assert {r.gateway for r in k.st.routes if r.dst == "default"} == {"192.168.1.1"}
    assert ch.pending is None and ch.saved() is None


def test_confirmation_only_from_the_new_address_keeps_and_saves(tmp_path: Path):
    k = FakeKernel(STATE)
    ch = NetChanger(k, tmp_path, window=0.5)
    p = ch.change("eth0", "10.0.0.5", 24, None)
    with pytest.raises(NetError):
        ch.confirm(p.id, "192.168.1.10")  # from the old address proves nothing
    assert not ch.confirm("wrong-id", "10.0.0.5")
    assert ch.confirm(p.id, "10.0.0.5")
    time.sleep(0.7)
    assert Address("10.0.0.5", 24) in k.st.interface("eth0").addresses  # no roll-back after confirming
    assert ch.saved() == {"interface": "eth0", "address": "10.0.0.5/24", "gateway": None}


def test_a_refused_operation_puts_back_what_was_done(tmp_path: Path):
    k = FakeKernel(STATE, fail_on="route-add")
    ch = NetChanger(k, tmp_path, window=5)
    with pytest.raises(NetError):
        ch.change("eth0", "10.0.0.5", 24, "10.0.0.1")
    assert set(k.st.interface("eth0").addresses) == set(STATE.interface("eth0").addresses)
    assert {r.gateway for r in k.st.routes if r.dst == "default"} == {"192.168.1.1"}
    assert ch.pending is None
