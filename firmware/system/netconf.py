"""The box's network: what its interfaces, addresses and routes are, and changing an address
without locking the admin out.

An admin who gives the box a new address from a browser loses the page they are on. So a
change is applied with a way back: ``NetChanger.change`` applies it and arms a roll-back; the
admin must confirm *from the new address* within ``window`` seconds (proof the new address is
reachable from where they are), else the old addresses and routes come back by themselves.

The planning is pure (``plan_static`` turns a wanted state into operations and their inverse);
``Netlink`` is the thin adapter over rtnetlink that reads and carries them out. A change is
written to ``network.json`` in the data directory once confirmed, for the next boot.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from firmware.system.rtnetlink import RT_TABLE_MAIN, Rtnetlink

__all__ = ["Address", "Route", "Interface", "NetState", "Op", "NetError", "plan_static", "Netlink", "NetChanger"]

SAVED = "network.json"


class NetError(ValueError):
    """A network change refused; the message names the field and the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Address:
    address: str
    prefix: int

    def __str__(self) -> str:
        return f"{self.address}/{self.prefix}"


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or a CIDR
    gateway: str | None
    ifname: str


@dataclass(frozen=True)
class Interface:
    name: str
    up: bool
    mac: str
    addresses: tuple[Address, ...] = ()


@dataclass(frozen=True)
class NetState:
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...]

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)


@dataclass(frozen=True)
class Op:
    """One netlink operation: add/del an address or a default route."""

    verb: str  # "addr-add" | "addr-del" | "route-add" | "route-del"
    ifname: str
    address: Address | None = None
    gateway: str | None = None

    def inverse(self) -> Op:
        flip = {"addr-add": "addr-del", "addr-del": "addr-add", "route-add": "route-del", "route-del": "route-add"}
        return Op(flip[self.verb], self.ifname, self.address, self.gateway)


def plan_static(state: NetState, ifname: str, address: str, prefix: str | int,
                gateway: str | None) -> tuple[list[Op], list[Op]]:
    """The operations that give ``ifname`` exactly ``address/prefix`` and its default route via
    ``gateway`` (blank: the one it has, if still on the network), and those that undo them.
    NetError names the bad field."""
    iface = state.interface(ifname)
    if iface is None:
        raise NetError("interface", f"no interface {ifname!r}")
    if ifname == "lo":
        raise NetError("interface", "the loopback interface keeps its address")
    try:
        ip = ipaddress.IPv4Address(address.strip())
    except ValueError:
        raise NetError("address", f"{address!r} is not an IPv4 address like 192.168.1.20") from None
    try:
        plen = int(prefix)
        if not 1 <= plen <= 32:
            raise ValueError
    except (TypeError, ValueError):
        raise NetError("prefix", f"the prefix length is 1-32 (24 for 255.255.255.0), not {prefix!r}") from None
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified:
        raise NetError("address", f"{ip} cannot be an interface's address")
    net = ipaddress.IPv4Network(f"{ip}/{plen}", strict=False)
    if plen < 31 and ip in (net.network_address, net.broadcast_address):
        raise NetError("address", f"{ip} is the network's {'network' if ip == net.network_address else 'broadcast'} "
                                  f"address in {net}")
    gw = None
    if gateway:
        try:
            gw = ipaddress.IPv4Address(gateway.strip())
        except ValueError:
            raise NetError("gateway", f"{gateway!r} is not an IPv4 address") from None
        if gw not in net or gw == ip:
            raise NetError("gateway", f"the gateway must be another address in {net}")
    new = Address(str(ip), plen)
    gone = [old for old in iface.addresses if old != new and ":" not in old.address]
    # Only default routes that leave by ifname: a multipath or blackhole one has no interface
    # ("?", which no link is called), and another interface's route is not this change's to touch.
    mine = [r for r in state.routes if r.dst == "default" and r.ifname == ifname]
    drop: list[Route] = []
    add: list[str | None] = []  # the gateway of the default route to add; None: one without
    if gone:
        # Deleting an interface's last address takes every route that leaves by it, whatever its
        # gateway, and a route-del after that fails (ESRCH) and rolls the whole change back. So
        # they all go first and the one wanted comes back after the new address (the kernel
        # needs it to reach the gateway); the undo, the reverse, does the same for the old ones.
        drop = mine
        if gw is not None:
            add = [str(gw)]
        elif mine:
            # A route without a gateway (a device route) does not depend on the network.
            add = [r.gateway for r in mine
                   if r.gateway is None or (ipaddress.IPv4Address(r.gateway) in net and r.gateway != str(ip))][:1]
            if not add:
                # A blank gateway keeps the old one. When it is not on the new network, dropping
                # the default route quietly would leave a box the admin can still reach and
                # confirm from the LAN, but that no longer reaches its trunks or a time server.
                raise NetError("gateway", f"the current gateway {mine[0].gateway} is not in {net}: "
                                          f"give the gateway for the new address")
    elif gw is not None:
        drop = [r for r in mine if r.gateway != str(gw)]
        add = [] if any(r.gateway == str(gw) for r in mine) else [str(gw)]
    ops = [Op("route-del", ifname, gateway=r.gateway) for r in drop]
    ops += [Op("addr-del", ifname, old) for old in gone]
    if new not in iface.addresses:
        ops.append(Op("addr-add", ifname, new))
    ops += [Op("route-add", ifname, gateway=g) for g in add]
    # Undo in reverse order: routes before the addresses they need.
    return ops, [op.inverse() for op in reversed(ops)]


class Backend(Protocol):
    def state(self) -> NetState: ...
    def apply(self, ops: list[Op]) -> None: ...


class Netlink:
    """The kernel of the current network namespace, over rtnetlink (firmware.system.rtnetlink)."""

    def state(self) -> NetState:
        with Rtnetlink() as nl:
            links, addrs, routes = nl.links(), nl.addresses(), nl.routes(RT_TABLE_MAIN)
        names = {link.index: link.name for link in links}
        ifaces = tuple(Interface(link.name, link.up, link.mac,
                                 tuple(Address(a.address, a.prefixlen) for a in addrs if a.index == link.index))
                       for link in links)
        return NetState(ifaces, tuple(Route(f"{r.dst}/{r.dst_len}" if r.dst else "default", r.gateway,
                                            names.get(r.oif, "?"))
                                      for r in routes))

    def apply(self, ops: list[Op]) -> None:
        with Rtnetlink() as nl:
            for op in ops:
                idx = nl.link_index(op.ifname)
                if op.verb in ("addr-add", "addr-del"):
                    assert op.address is not None
                    nl.change_address(op.verb == "addr-add", idx, op.address.address, op.address.prefix)
                else:
                    nl.change_default_route(op.verb == "route-add", idx, op.gateway)


@dataclass
class Pending:
    id: str
    ifname: str
    address: Address
    gateway: str | None
    undo: list[Op]
    deadline: float
    timer: threading.Timer | None = field(default=None, repr=False)


class NetChanger:
    """Applies address changes with an automatic roll-back unless confirmed from the new address."""

    def __init__(self, backend: Backend, data: Path, *, window: float = 60.0,
                 on_event: Callable[[str], None] | None = None) -> None:
        self.backend = backend
        self.data = data
        self.window = window
        self.on_event = on_event or (lambda what: None)
        self.pending: Pending | None = None
        self._lock = threading.Lock()

    def change(self, ifname: str, address: str, prefix: str | int, gateway: str | None,
               *, delay: float = 0.0) -> Pending:
        """Validates and plans the change now (NetError names a bad field); applies it after
        ``delay`` seconds, so that the page telling the admin where to confirm still reaches them
        over the old address, and arms the roll-back from then."""
        with self._lock:
            if self.pending is not None:
                raise NetError("interface", "a change is waiting for confirmation; confirm it or let it roll back")
            ops, undo = plan_static(self.backend.state(), ifname, address, prefix, gateway or None)
            # A blank gateway may keep the old one: saved, the next start must know it.
            routed = next((op.gateway for op in ops if op.verb == "route-add"), gateway or None)
            p = Pending(secrets.token_urlsafe(12), ifname, Address(address.strip(), int(prefix)), routed,
                        undo, time.time() + delay + self.window)
            self.pending = p
        if delay > 0:
            t = threading.Timer(delay, self._apply, args=(p, ops))
            t.daemon = True
            t.start()
        else:
            self._apply(p, ops)
        return p

    def _apply(self, p: Pending, ops: list[Op]) -> None:
        with self._lock:
            if self.pending is not p:
                return
            for i, op in enumerate(ops):
                try:
                    self.backend.apply([op])
                except Exception as exc:
                    self.backend.apply([o.inverse() for o in reversed(ops[:i])])
                    self.pending = None
                    self.on_event(f"network: the kernel refused {op.verb} on {p.ifname} ({exc}); old settings kept")
                    raise NetError("address", f"the kernel refused {op.verb} ({exc}); the old settings are back") \
                        from None
            p.deadline = time.time() + self.window
            p.timer = threading.Timer(self.window, self._expire, args=(p.id,))
            p.timer.daemon = True
            p.timer.start()
            self.on_event(f"network: {p.ifname} set to {p.address}, waiting {self.window:g} s for confirmation")

    def confirm(self, change_id: str, seen_on: str) -> bool:
        """Confirms from a request that arrived at ``seen_on`` (the box's local address for it)."""
        with self._lock:
            p = self.pending
            if p is None or not secrets.compare_digest(p.id, change_id):
                return False
            if seen_on != p.address.address:
                raise NetError("address", f"confirm from the new address {p.address.address}, "
                                          f"not {seen_on}: that proves it is reachable")
            if p.timer is not None:
                p.timer.cancel()
            self.pending = None
            (self.data / SAVED).write_text(json.dumps({"interface": p.ifname, "address": str(p.address),
                                                        "gateway": p.gateway}) + "\n")
            self.on_event(f"network: {p.ifname} {p.address} confirmed and saved")
            return True

    def _expire(self, change_id: str) -> None:
        with self._lock:
            p = self.pending
            if p is None or p.id != change_id:
                return
            self.pending = None
            self.backend.apply(p.undo)
            self.on_event(f"network: {p.ifname} {p.address} not confirmed in {self.window:g} s; rolled back")

    def saved(self) -> dict[str, Any] | None:
        path = self.data / SAVED
        return json.loads(path.read_text()) if path.exists() else None


def describe(state: NetState) -> dict[str, Any]:
    return {"interfaces": [asdict(i) for i in state.interfaces], "routes": [asdict(r) for r in state.routes]}
