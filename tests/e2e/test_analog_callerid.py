"""Caller ID on the analog ports end to end, through a real `linebox run` on the simulated HAT,
pjsua2 phones as the extensions, and what the simulated phone and exchange decode from the line
audio: Japan's NTT Number Display both ways (the exchange's CAR answered by the box, the box's
CAR answered by the phone), and an extension's configured name shown on the analog phone in the
regions whose caller ID carries a name."""
from __future__ import annotations

import pytest

from tests.e2e.box import Box
from tests.e2e.test_analog import analog_box, sim
from tests.peers.netutil import wait_until

PROBE = "PROBE ONE"


def caller_id_shown(box: Box, port: str = "fxs1") -> dict | None:
    return sim(box, "phone", port, "status")["cid"]


def test_japan_a_line_call_reaches_the_extension_with_its_number(box_factory, phones) -> None:
    box = analog_box(box_factory, region="jp")
    a = phones("a1001")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    sim(box, "co", "fxo1", "ring", "--cid", "2125550147")
    inc = a.wait_incoming(timeout=15)   # CAR, the box's primary response, FSK, then a ring
    assert "2125550147" in inc["from"] and "anonymous" not in inc["from"].lower(), inc
    a.answer()
    a.wait_state("CONFIRMED")
    calls = box.calls()
    assert len(calls) == 1 and calls[0]["caller"] == "2125550147", calls
    a.hangup()
    wait_until(lambda: sim(box, "co", "fxo1", "status")["box_hook"] == "on", 10,
               what="the box freed the line")


def test_japan_an_extension_calls_the_analog_phone_which_shows_its_number(box_factory,
                                                                         phones) -> None:
    box = analog_box(box_factory, region="jp")
    a = phones("a1001")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    a.call("1003")
    wait_until(lambda: caller_id_shown(box) is not None, 15, what="caller ID on the analog phone")
    cid = caller_id_shown(box)
    assert (cid["number"], cid["standard"]) == ("1001", "ntt"), cid
    # the ordinary ringing comes after the caller ID: a 1 s ring after the 0.5 s CAR burst
    wait_until(lambda: len(sim(box, "phone", "fxs1", "status")["ring_cadence_ms"]) >= 2, 10,
               what="a ring after the caller ID")
    car, ring = sim(box, "phone", "fxs1", "status")["ring_cadence_ms"][:2]
    assert abs(car - 500) <= 60 and abs(ring - 1000) <= 60, (car, ring)
    sim(box, "phone", "fxs1", "lift")
    a.wait_state("CONFIRMED")
    sim(box, "phone", "fxs1", "hangup")
    a.wait_state("DISCONNECTED", timeout=10)
    row = box.wait_cdr(1)[0]
    assert (row["caller"], row["callee"], row["disposition"]) == ("1001", "1003", "ANSWERED"), row


@pytest.mark.parametrize("region, standard", [("us", "bell"), ("uk", "etsi"), ("de", "etsi")])
def test_the_analog_phone_shows_the_calling_extensions_name(box_factory, phones, region,
                                                            standard) -> None:
    box = box_factory("analog", start=False, extensions=("1002", "1003"), settings={
        "analog.driver": "sim", "analog.region": region, "analog.sim_fxs": 1, "analog.sim_fxo": 0})
    box.add_extension("1001", name=PROBE)
    box.cli("port", "set", "fxs1", "--extension", "1003")
    box.start()
    a = phones("a1001")   # registers as sip:1001@...: no display name in its From
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    a.call("1003")
    wait_until(lambda: caller_id_shown(box) is not None, 15, what="caller ID on the analog phone")
    cid = caller_id_shown(box)
    assert (cid["number"], cid["name"], cid["standard"]) == ("1001", PROBE, standard), cid
    a.hangup()
    a.wait_state("DISCONNECTED", timeout=10)
