"""Analog lines end to end, on the simulated HAT of a real `linebox run`, driven from outside
with `linebox sim` as a test script or an installer would: an FXO line rings with UK caller ID
and a pjsua2 extension answers and talks both ways; the exchange hangs up with busy tone and the
box releases the call; a pjsua2 phone calls an FXS port, whose phone rings with the UK cadence,
decodes the caller ID, answers and talks; the FXS phone dials a SIP extension."""
from __future__ import annotations

import json
import time
from typing import Any

from tests.e2e.box import Box
from tests.e2e.test_calls import HIGH, LOW, heard
from tests.peers.netutil import wait_until

CO_TONE, FXS_TONE = 1000.0, 850.0  # what the exchange's far party and the analog phone send


def analog_box(box_factory, region: str = "uk") -> Box:
    box = box_factory("analog", start=False, settings={
        "analog.driver": "sim", "analog.region": region, "analog.sim_fxs": 1, "analog.sim_fxo": 1})
    box.cli("port", "set", "fxo1", "--inbound", "1001")
    box.cli("port", "set", "fxs1", "--extension", "1003")
    box.start()
    return box


def sim(box: Box, *argv: str) -> dict[str, Any]:
    return json.loads(box.cli("sim", *argv).stdout)


def heard_for(box: Box, who: str, port: str, freq: float) -> float:
    return sim(box, who, port, "heard", f"{freq:g}")["heard"]["seconds"]


def test_fxo_line_rings_with_uk_caller_id_and_the_extension_talks_both_ways(box_factory, phones, tmp_path) -> None:
    box = analog_box(box_factory)
    listed = json.loads(box.cli("port", "list", "--json").stdout)
    assert {(p["port"], p["kind"], p["region"]) for p in listed} == {("fxs1", "fxs", "uk"), ("fxo1", "fxo", "uk")}
    a = phones("a1001")  # plays LOW
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200

    sim(box, "co", "fxo1", "tone", f"{CO_TONE:g}")
    sim(box, "co", "fxo1", "ring", "--cid", "01632960123", "--name", "ALICE SMITH")
    inc = a.wait_incoming(timeout=15)  # UK: polarity reversal, V.23 FSK, then the first ring
    assert "01632960123" in inc["from"], inc
    assert "ALICE SMITH" in inc["from"], inc
    a.record(tmp_path / "a.wav")
    a.answer()
    a.wait_state("CONFIRMED")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150)
    a.stop_record()
    ok, desc = heard(tmp_path / "a.wav", CO_TONE, LOW)
    assert ok, f"the extension should hear the caller on the line ({CO_TONE:g} Hz): {desc}"
    assert heard_for(box, "co", "fxo1", LOW) > 1.0, "the caller on the line should hear the extension"
    calls = box.calls()
    assert len(calls) == 1 and calls[0]["caller"] == "01632960123", calls

    # The far end hangs up: the exchange plays busy tone, which the box must take as the end.
    hung_up = time.monotonic()
    sim(box, "co", "fxo1", "hangup", "--busy")
    a.wait_state("DISCONNECTED", timeout=15)
    took = time.monotonic() - hung_up
    assert took < 10, f"released {took:.1f} s after the far end hung up"
    row = box.wait_cdr(1)[0]
    assert (row["caller"], row["callee"], row["disposition"]) == ("01632960123", "1001", "ANSWERED"), row
    wait_until(lambda: sim(box, "co", "fxo1", "status")["box_hook"] == "on", 10, what="the box freed the line")


def test_a_sip_phone_calls_the_fxs_phone_which_rings_decodes_caller_id_and_talks(box_factory, phones,
                                                                                 tmp_path) -> None:
    box = analog_box(box_factory)
    b = phones("b1002")  # plays HIGH
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    b.call("1003")
    wait_until(lambda: len(sim(box, "phone", "fxs1", "status")["ring_cadence_ms"]) >= 4, 15,
               what="two UK rings")
    st = sim(box, "phone", "fxs1", "status")
    on1, off1, on2, off2 = st["ring_cadence_ms"][:4]  # UK: 0.4 on, 0.2 off, 0.4 on, 2.0 off
    for got, want in ((on1, 400), (off1, 200), (on2, 400), (off2, 2000)):
        assert abs(got - want) <= 60, st["ring_cadence_ms"]
    assert st["caller_id"] and "1002" in st["caller_id"], st
    sim(box, "phone", "fxs1", "tone", f"{FXS_TONE:g}")
    sim(box, "phone", "fxs1", "lift")
    b.wait_state("CONFIRMED")
    b.record(tmp_path / "b.wav")
    b.wait_rx_packets(b.stream_stat()["rx_pkt"] + 150)
    b.stop_record()
    ok, desc = heard(tmp_path / "b.wav", FXS_TONE, HIGH)
    assert ok, f"the SIP phone should hear the analog phone ({FXS_TONE:g} Hz): {desc}"
    assert heard_for(box, "phone", "fxs1", HIGH) > 1.0, "the analog phone should hear the SIP phone"
    sim(box, "phone", "fxs1", "hangup")
    b.wait_state("DISCONNECTED", timeout=10)
    row = box.wait_cdr(1)[0]
    assert (row["caller"], row["callee"], row["disposition"]) == ("1002", "1003", "ANSWERED"), row


def test_the_fxs_phone_dials_an_extension(box_factory, phones, tmp_path) -> None:
    box = analog_box(box_factory)
    b = phones("b1002")
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    sim(box, "phone", "fxs1", "lift")
    wait_until(lambda: "dial" in sim(box, "phone", "fxs1", "status")["tones"], 5, what="dial tone")
    sim(box, "phone", "fxs1", "dial", "1002")
    inc = b.wait_incoming(timeout=15)
    assert "1003" in inc["from"], inc
    b.answer()
    b.wait_state("CONFIRMED")
    sim(box, "phone", "fxs1", "hangup")
    b.wait_state("DISCONNECTED", timeout=10)
    row = box.wait_cdr(1)[0]
    assert (row["caller"], row["callee"], row["disposition"]) == ("1003", "1002", "ANSWERED"), row


def test_a_bad_port_setting_is_refused_and_changes_nothing(box_factory) -> None:
    box = analog_box(box_factory)
    r = box.cli("port", "set", "fxs1", "--extension", "4242", check=False)
    assert r.returncode != 0 and "ports.fxs1.extension: no extension '4242'" in r.stderr, r.stderr
    r = box.cli("port", "set", "fxo1", "--inbound", "777", check=False)
    assert r.returncode != 0 and "ports.fxo1.inbound" in r.stderr, r.stderr
    r = box.cli("sim", "co", "fxo9", "ring", check=False)
    assert r.returncode != 0 and "no FXO port 'fxo9'" in r.stderr, r.stderr
    r = box.cli("port", "set", "fxo1", "--call-waiting", "off", check=False)
    assert r.returncode != 0 and "--call-waiting is for an FXS port" in r.stderr, r.stderr
    r = box.cli("port", "set", "fxs1", check=False)
    assert r.returncode != 0 and "say what the port is" in r.stderr, r.stderr
    listed = {p["port"]: p for p in json.loads(box.cli("port", "list", "--json").stdout)}
    assert listed["fxs1"]["extension"] == "1003" and listed["fxo1"]["inbound"] == "1001", listed
    assert "call_waiting" not in listed["fxs1"], listed
    # a bad value in a document is refused with its path
    doc = json.loads(box.cli("config", "export").stdout)
    doc["ports"]["fxs1"]["call_waiting"] = "no"
    (box.root / "bad.json").write_text(json.dumps(doc))
    r = box.cli("config", "import", str(box.root / "bad.json"), check=False)
    assert r.returncode != 0 and "ports.fxs1.call_waiting: true or false, not 'no'" in r.stderr, r.stderr
    # changing a line's destination keeps its line settings
    doc["ports"]["fxs1"].pop("call_waiting")
    doc["ports"]["fxo1"]["line"] = {"rings_before_answer": 3}
    (box.root / "good.json").write_text(json.dumps(doc))
    box.cli("config", "import", str(box.root / "good.json"))
    box.cli("port", "set", "fxo1", "--inbound", "1002")
    listed = {p["port"]: p for p in json.loads(box.cli("port", "list", "--json").stdout)}
    assert listed["fxo1"]["inbound"] == "1002" and listed["fxo1"]["line"] == {"rings_before_answer": 3}, listed


def test_hook_flash_transfer_from_the_fxs_phone(box_factory, phones, tmp_path) -> None:
    """b calls the analog phone, which flashes, dials 1001 and hangs up: b talks to a."""
    box = analog_box(box_factory)
    a, b = phones("a1001"), phones("b1002")
    for ph, ext in ((a, "1001"), (b, "1002")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    b.call("1003")
    wait_until(lambda: sim(box, "phone", "fxs1", "status")["ringing"], 10, what="the analog phone rings")
    sim(box, "phone", "fxs1", "lift")
    b.wait_state("CONFIRMED")
    b.wait_rx_packets(50)
    sim(box, "phone", "fxs1", "flash")
    wait_until(lambda: "dial" in sim(box, "phone", "fxs1", "status")["tones"], 5, what="dial tone after the flash")
    sim(box, "phone", "fxs1", "dial", "1001")
    a.wait_incoming(timeout=15)
    sim(box, "phone", "fxs1", "hangup")
    b.record(tmp_path / "b.wav")
    a.answer()
    a.wait_state("CONFIRMED")
    a.record(tmp_path / "a.wav")
    b.wait_rx_packets(b.stream_stat()["rx_pkt"] + 150)
    a.stop_record()
    b.stop_record()
    ok, desc = heard(tmp_path / "b.wav", LOW, HIGH)
    assert ok, f"after the transfer b should hear a's {LOW:g} Hz: {desc}"
    ok, desc = heard(tmp_path / "a.wav", HIGH, LOW)
    assert ok, f"a should hear b's {HIGH:g} Hz: {desc}"
    b.hangup()
    a.wait_state("DISCONNECTED")
    assert "1003 transfers 1002 to 1001" in box.log_text()


def test_a_line_ringing_without_caller_id_reaches_the_extension_as_anonymous(box_factory, phones) -> None:
    box = analog_box(box_factory, region="us")
    a = phones("a1001")
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    sim(box, "co", "fxo1", "ring")  # no --cid: the exchange sends none
    inc = a.wait_incoming(timeout=20)  # answered after the rings the line waits for
    assert "anonymous" in inc["from"].lower(), inc
    a.answer()
    a.wait_state("CONFIRMED")
    a.hangup()
    wait_until(lambda: sim(box, "co", "fxo1", "status")["box_hook"] == "on", 10, what="the box freed the line")
