"""Outbound routes end to end on the simulated HAT of a real `linebox run`: routes added with
the CLI send dialled numbers out on the lines they name, in hunt order, with digits stripped and
prepended; the exchange hears the rewritten number and both parties hear each other; when every
line of a route is busy the caller gets congestion (analog) or 503 (SIP); an analog phone's
fixed-length number goes out the moment it is complete."""
from __future__ import annotations

from tests.e2e.box import Box
from tests.e2e.test_analog import CO_TONE, heard_for, sim
from tests.e2e.test_calls import LOW, heard
from tests.peers.netutil import wait_until


def routed_box(box_factory) -> Box:
    box = box_factory("routes", start=False, settings={
        "analog.driver": "sim", "analog.region": "us", "analog.sim_fxs": 1, "analog.sim_fxo": 2})
    box.cli("port", "set", "fxo1", "--inbound", "1001")
    box.cli("port", "set", "fxo2", "--inbound", "1001")
    box.cli("port", "set", "fxs1", "--extension", "1003")
    box.cli("route", "add", "911", "--name", "emergency", "--lines", "fxo1")
    box.cli("route", "add", "9NXXXXXX", "--name", "local", "--strip", "1", "--lines", "fxo2,fxo1")
    box.cli("route", "add", "00X.", "--name", "international", "--strip", "2", "--prepend", "011")
    box.start()
    return box


def dialled(box: Box, line: str) -> list[str]:
    return sim(box, "co", line, "status")["calls"]


def test_routes_choose_the_line_and_rewrite_the_number(box_factory, phones, tmp_path) -> None:
    box = routed_box(box_factory)
    out = box.cli("route", "test", "95551234").stdout
    assert "route 'local' (9NXXXXXX) dials 5551234 on fxo2, fxo1" in out, out
    assert box.cli("route", "test", "1002", check=False).returncode == 1
    a, b = phones("a1001"), phones("b1002")
    for p, ext in ((a, "1001"), (b, "1002")):
        assert p.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200

    # "local" hunts fxo2 first; the exchange gets the number without the 9
    sim(box, "co", "fxo2", "tone", f"{CO_TONE:g}")
    a.call("95551234")
    a.wait_state("CONFIRMED", timeout=20)
    # the exchange takes the number when the digits stop (CoConfig.digit_timeout)
    wait_until(lambda: dialled(box, "fxo2"), 10, what="a number dialled on fxo2")
    assert dialled(box, "fxo2") == ["5551234"] and dialled(box, "fxo1") == []
    wait_until(lambda: sim(box, "co", "fxo2", "status")["state"] == "connected", 10, what="far end answers")
    a.record(tmp_path / "a.wav")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150)
    a.stop_record()
    ok, desc = heard(tmp_path / "a.wav", CO_TONE, LOW)
    assert ok, f"the caller should hear the far party on the line: {desc}"
    assert heard_for(box, "co", "fxo2", LOW) > 1.0, "the far party should hear the caller"

    # "international" may use any line: fxo2 is taken, so fxo1; 00 becomes 011
    b.call("0044207946")
    b.wait_state("CONFIRMED", timeout=20)
    wait_until(lambda: dialled(box, "fxo1"), 10, what="a number dialled on fxo1")
    assert dialled(box, "fxo1") == ["01144207946"]

    # Both lines busy: the analog phone's 8-digit number is complete at once and gets congestion
    sim(box, "phone", "fxs1", "lift")
    wait_until(lambda: "dial" in sim(box, "phone", "fxs1", "status")["tones"], 5, what="dial tone")
    sim(box, "phone", "fxs1", "dial", "95559999")
    wait_until(lambda: "congestion" in sim(box, "phone", "fxs1", "status")["tones"], 5,
               what="congestion on the analog phone (all lines busy)")
    sim(box, "phone", "fxs1", "hangup")
    # a break shorter than the region's flash window would be a hook flash, not a hang-up
    wait_until(lambda: any(p["port"] == "fxs1" and p["state"] == "idle"
                           for p in box.http_get("/api/ports")), 10, what="fxs1 hung up in the box")

    # A line frees up: the analog phone's 911 goes out on fxo1 without waiting for more digits
    b.hangup()
    b.wait_state("DISCONNECTED")
    wait_until(lambda: sim(box, "co", "fxo1", "status")["box_hook"] == "on", 10, what="fxo1 freed")
    # the exchange sees the line on hook before the box's line machine is idle again
    wait_until(lambda: any(p["port"] == "fxo1" and not p["in_call"] and p["state"] == "idle"
                           for p in box.http_get("/api/ports")), 10, what="fxo1 idle in the box")
    sim(box, "phone", "fxs1", "lift")
    wait_until(lambda: "dial" in sim(box, "phone", "fxs1", "status")["tones"], 5, what="dial tone")
    sim(box, "phone", "fxs1", "dial", "911")
    wait_until(lambda: dialled(box, "fxo1")[-1:] == ["911"], 10, what="911 dialled on fxo1")
    sim(box, "phone", "fxs1", "hangup")
    a.hangup()
    a.wait_state("DISCONNECTED")
    # Finished rows: the phone sees its BYE answered before the box's writer closes the call's row.
    rows = box.wait_cdr(4, pred=lambda r: r["disposition"] != "in-progress")
    by_callee = {r["callee"]: r for r in rows}
    assert by_callee["95551234"]["disposition"] == "ANSWERED", rows
    assert by_callee["95559999"]["disposition"] != "ANSWERED", rows


def test_a_sip_caller_gets_503_when_the_routes_lines_are_busy(box_factory, phones) -> None:
    box = routed_box(box_factory)
    a, b = phones("a1001"), phones("b1002")
    for p, ext in ((a, "1001"), (b, "1002")):
        assert p.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    a.call("911")
    a.wait_state("CONFIRMED", timeout=20)
    b.call("911")  # emergency may only use fxo1, which a holds
    assert b.wait_state("DISCONNECTED", timeout=10)["code"] == 503
    a.hangup()


def test_bad_routes_are_refused_and_a_line_in_use_by_a_route_stays(box_factory) -> None:
    box = routed_box(box_factory)
    r = box.cli("route", "add", "9Q", check=False)
    assert r.returncode != 0 and "routes[3].pattern: 'Q' at position 2" in r.stderr, r.stderr
    r = box.cli("route", "add", "8X.", "--lines", "fxo7", check=False)
    assert r.returncode != 0 and "'fxo7' is no configured FXO line" in r.stderr, r.stderr
    r = box.cli("port", "set", "fxo1", "--clear", check=False)
    assert r.returncode != 0 and "routes[0].lines: 'fxo1' is no configured FXO line" in r.stderr, r.stderr
    listed = box.cli("route", "list", "--json").stdout
    assert listed.count('"pattern"') == 3, listed
    assert "removed route 'international'" in box.cli("route", "remove", "international").stdout
    assert box.cli("route", "test", "0044207946", check=False).returncode == 1
