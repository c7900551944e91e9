"""The network page in a network namespace of its own (a veth pair; nothing leaves the machine):
the web admin, run inside the namespace, shows its interfaces read over rtnetlink, refuses a bad
address with the message next to the field, and applies a new address that rolls back by
itself unless confirmed from that new address; confirmed, it stays and is saved."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.box import run_cli
from tests.peers.netns import ip, veth_namespace
from tests.web.conftest import create_admin, login, skip_to_dashboard
from tests.web.webproc import Web

OLD, NEW, HOST_SIDE = "198.51.100.2", "198.51.100.3", "198.51.100.1"  # TEST-NET-2, inside our own veth
OLD_GATEWAY = "198.51.100.254"
ROLLBACK = 4.0


@pytest.fixture
def netns() -> Iterator[tuple[str, str]]:
    with veth_namespace("lbweb", host=HOST_SIDE, inside=OLD) as pair:
        yield pair


class NetnsWeb(Web):
    """The web admin started inside the namespace, reached over the veth pair."""

    def __init__(self, root: Path, ns: str, **kw) -> None:
        super().__init__(root, args=("--host", "0.0.0.0", "--network-rollback", str(ROLLBACK)), **kw)
        self.ns = ns
        self.host = OLD

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *super().argv()]


def addresses(ns: str, ifname: str) -> list[str]:
    return [a["local"] for i in json.loads(ip("-j", "-4", "addr", "show", "dev", ifname, ns=ns))
            for a in i.get("addr_info", [])]


def gateways(ns: str) -> list[str | None]:
    """The default routes' gateways."""
    return [r.get("gateway") for r in json.loads(ip("-j", "route", "show", "default", ns=ns))]


@pytest.fixture
def web(netns, tmp_path: Path) -> Iterator[NetnsWeb]:
    data = tmp_path / "data"
    assert run_cli(data, "init").returncode == 0
    w = NetnsWeb(tmp_path / "web", netns[0], data=data, api=None).start()
    try:
        yield w
    finally:
        w.stop()


def test_address_change_rolls_back_unless_confirmed_from_the_new_address(page, web, netns) -> None:
    ns, ifname = netns
    # A default route that leaves by the old address: the kernel drops it with that address, so
    # every change here must take it away first and put back the one wanted.
    ip("route", "add", "default", "via", OLD_GATEWAY, "dev", ifname, ns=ns)
    create_admin(page, web)
    page.goto(web.url("/network"))
    assert OLD in page.inner_text(f"#if-{ifname}")

    # A bad address: its message by the field, nothing changed.
    page.fill("#interface", ifname)
    page.fill("#address", "198.51.100.300")
    page.click("main form button[type=submit]")
    assert "not an IPv4 address" in page.inner_text("#address-error")
    assert addresses(ns, ifname) == [OLD]

    # Applied, not confirmed: back by itself. The gateway left blank, the old one (on the new
    # address's network too) is kept, and the roll-back puts it back after the old address.
    page.fill("#address", NEW)
    page.click("main form button[type=submit]")
    link = page.get_attribute("#confirm-link", "href")
    assert link and link.startswith(f"http://{NEW}:{web.port}/network/confirm/"), link
    deadline = time.monotonic() + 5
    while (addresses(ns, ifname), gateways(ns)) != ([NEW], [OLD_GATEWAY]):
        assert time.monotonic() < deadline, (addresses(ns, ifname), gateways(ns))
        time.sleep(0.1)
    time.sleep(ROLLBACK + 1.5)
    assert addresses(ns, ifname) == [OLD]
    assert gateways(ns) == [OLD_GATEWAY]

    # Applied and confirmed from the new address (where the browser has no session yet): kept,
    # with the gateway given in place of the old one.
    page.goto(web.url("/network"))
    if "/login" in page.url:
        login(page, web)
        page.goto(web.url("/network"))
    page.fill("#interface", ifname)
    page.fill("#address", NEW)
    page.fill("#gateway", HOST_SIDE)
    page.click("main form button[type=submit]")
    link = page.get_attribute("#confirm-link", "href")
    deadline = time.monotonic() + 5
    while addresses(ns, ifname) != [NEW]:
        assert time.monotonic() < deadline, addresses(ns, ifname)
        time.sleep(0.1)
    page.goto(link)
    page.click("#keep")
    assert "kept" in page.inner_text("#confirmed")
    time.sleep(ROLLBACK + 1.0)
    assert addresses(ns, ifname) == [NEW]
    assert gateways(ns) == [HOST_SIDE]
    saved = json.loads((web.data / "network.json").read_text())
    assert saved == {"interface": ifname, "address": f"{NEW}/24", "gateway": HOST_SIDE}


def test_the_wizard_shows_the_analog_ports_and_checks_a_fixed_address(box_factory, web_factory, page) -> None:
    box = box_factory("box", extensions=("1001",), settings={"analog.driver": "sim", "analog.sim_fxs": 1,
                                                             "analog.sim_fxo": 1})
    box.cli("port", "set", "fxs1", "--extension", "1001")
    web = web_factory(box)
    create_admin(page, web)  # on to the region step
    ports = page.inner_text("#wizard-ports")
    assert "fxs1: a phone socket (FXS), extension 1001" in ports and "fxo1: a line socket (FXO)" in ports, ports
    page.select_option("#region", "uk")
    page.check("#net-static")
    page.fill("#interface", "lo")
    page.fill("#address", "127.0.0.2")
    page.click("main button[type=submit]")
    assert "loopback" in page.inner_text("#interface-error")
    assert "/setup/region" in page.url  # nothing applied, still on the step
    page.check("input[name=net][value=dhcp]")
    page.click("main button[type=submit]")
    page.wait_for_url("**/setup/extensions")
    # The dashboard's line status follows the port live: the analog phone lifted is "dialtone".
    skip_to_dashboard(page)
    assert "extension 1001" in page.inner_text("#port-fxs1")
    box.cli("sim", "phone", "fxs1", "lift")
    page.wait_for_selector("#port-fxs1 td:text-is('dialtone')", timeout=15_000)
