"""Call waiting on an FXS port, end to end: a real `linebox run` with the simulated HAT (US
region) and two pjsua2 phones. a (1001, 600 Hz) calls the analog phone 1003, which answers and
talks (850 Hz); b (1002, 1400 Hz) calls 1003 too and hears ringback while the analog phone hears
the call-waiting bursts (440 Hz) over the conversation; each hook flash swaps the two calls (the
held one hears music, not the analog phone); a hangs up; the analog phone hangs up with b held,
is rung back and talks to b again. Audio is checked at every step, both ways."""
from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.box import Box
from tests.e2e.test_analog import FXS_TONE, heard_for, sim
from tests.e2e.test_calls import HIGH, LOW, heard
from tests.peers import audio
from tests.peers.netutil import wait_until
from tests.peers.phone import Phone

CW_TONE = 440.0          # US call-waiting tone: 300 ms every 10 s
MOH_NOTES = (523.25, 659.25, 783.99)  # the box's music on hold


def cw_box(box_factory) -> Box:
    box = box_factory("cw", start=False, settings={
        "analog.driver": "sim", "analog.region": "us", "analog.sim_fxs": 1, "analog.sim_fxo": 0})
    box.cli("port", "set", "fxs1", "--extension", "1003")
    box.start()
    return box


def listen(ph: Phone, path: Path, packets: int = 150) -> tuple[int, list[int]]:
    """What the SIP phone hears for the next ``packets`` RTP packets."""
    ph.record(path)
    ph.wait_rx_packets(ph.stream_stat()["rx_pkt"] + packets, timeout=15)
    ph.stop_record()
    return audio.read_wav(path)


def hears(ph: Phone, path: Path, freq: float, other: float) -> tuple[bool, str]:
    listen(ph, path)
    return heard(path, freq, other)


def analog_hears(box: Box, freq: float, since: float = 0.0) -> None:
    """The analog phone hears ``freq`` for a second more than ``since`` (what it had heard of
    it in the last 10 s before: that can only shrink, so the growth is new audio)."""
    wait_until(lambda: heard_for(box, "phone", "fxs1", freq) >= since + 1.0, 10,
               what=f"the analog phone hears {freq:g} Hz")


def two_phones(box: Box, phones) -> tuple[Phone, Phone]:
    a, b = phones("a1001"), phones("b1002")  # play LOW, HIGH
    for ph, ext in ((a, "1001"), (b, "1002")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    return a, b


def analog_answers(box: Box, caller: Phone) -> None:
    """``caller`` calls the analog phone 1003, which rings, answers and talks (FXS_TONE)."""
    caller.call("1003")
    wait_until(lambda: sim(box, "phone", "fxs1", "status")["ringing"], 10, what="the analog phone rings")
    sim(box, "phone", "fxs1", "tone", f"{FXS_TONE:g}")
    sim(box, "phone", "fxs1", "lift")
    caller.wait_state("CONFIRMED")


def test_call_waiting_flash_swaps_and_recall(box_factory, phones, tmp_path) -> None:
    box = cw_box(box_factory)
    a, b = two_phones(box, phones)

    # a calls the analog phone, which answers and talks
    analog_answers(box, a)
    analog_hears(box, LOW)

    # b calls 1003 while it talks: ringback for b, call-waiting bursts for the analog phone
    b.call("1003")
    assert b.wait_state("EARLY", timeout=10)["code"] in (180, 183)
    wait_until(lambda: heard_for(box, "phone", "fxs1", CW_TONE) >= 0.2, 5,
               what="the call-waiting tone on the analog phone")
    st = sim(box, "phone", "fxs1", "status")
    assert st["hook"] == "off" and not st["ringing"], st
    assert len(box.calls()) == 2, box.calls()
    rate, s = listen(a, tmp_path / "a-during-cw.wav")
    assert audio.tone_present(s, rate, FXS_TONE, min_seconds=1.0, others=(LOW, HIGH)), \
        f"a still talks to the analog phone while b waits: {audio.describe(s, rate, (FXS_TONE,))}"

    # flash: a on hold, b answered; b and the analog phone hear each other, a does not
    sim(box, "phone", "fxs1", "flash")
    b.wait_state("CONFIRMED")
    ok, desc = hears(b, tmp_path / "b-1.wav", FXS_TONE, HIGH)
    assert ok, f"b should hear the analog phone ({FXS_TONE:g} Hz): {desc}"
    analog_hears(box, HIGH)
    rate, s = listen(a, tmp_path / "a-held.wav")
    assert not audio.tone_present(s, rate, FXS_TONE, min_seconds=0.2, others=(LOW, HIGH)), \
        f"a (held) still hears the analog phone: {audio.describe(s, rate, (FXS_TONE,))}"
    assert any(audio.tone_present(s, rate, n, min_seconds=0.2, others=(LOW, HIGH)) for n in MOH_NOTES), \
        f"a (held) should hear music on hold: {audio.describe(s, rate)}"

    # flash again: back to a; b held
    before = heard_for(box, "phone", "fxs1", LOW)
    sim(box, "phone", "fxs1", "flash")
    ok, desc = hears(a, tmp_path / "a-2.wav", FXS_TONE, LOW)
    assert ok, f"after the second flash a should hear the analog phone again: {desc}"
    analog_hears(box, LOW, since=before)
    rate, s = listen(b, tmp_path / "b-held.wav")
    assert not audio.tone_present(s, rate, FXS_TONE, min_seconds=0.2, others=(LOW, HIGH)), \
        f"b (held) still hears the analog phone: {audio.describe(s, rate, (FXS_TONE,))}"

    # a hangs up: b stays held; the analog phone hangs up, is rung back for b, lifts, talks to b
    a.hangup()
    a.wait_state("DISCONNECTED")
    sim(box, "phone", "fxs1", "hangup")
    wait_until(lambda: sim(box, "phone", "fxs1", "status")["ringing"], 10, what="the recall ring")
    before = heard_for(box, "phone", "fxs1", HIGH)
    assert b.call_info()["state"] == "CONFIRMED", b.call_info()
    sim(box, "phone", "fxs1", "lift")
    ok, desc = hears(b, tmp_path / "b-3.wav", FXS_TONE, HIGH)
    assert ok, f"after the recall b should hear the analog phone again: {desc}"
    analog_hears(box, HIGH, since=before)

    sim(box, "phone", "fxs1", "hangup")
    b.wait_state("DISCONNECTED", timeout=10)
    rows = box.wait_cdr(2)
    assert sorted((r["caller"], r["callee"], r["disposition"]) for r in rows) == [
        ("1001", "1003", "ANSWERED"), ("1002", "1003", "ANSWERED")], rows
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls left")


def test_the_waiting_caller_gives_up_and_the_call_goes_on(box_factory, phones, tmp_path) -> None:
    box = cw_box(box_factory)
    a, b = two_phones(box, phones)
    analog_answers(box, a)
    b.call("1003")
    b.wait_state("EARLY", timeout=10)
    wait_until(lambda: heard_for(box, "phone", "fxs1", CW_TONE) >= 0.2, 5, what="the call-waiting tone")
    b.hangup()
    b.wait_state("DISCONNECTED")
    wait_until(lambda: len(box.calls()) == 1, 5, what="b's call ended")
    ok, desc = hears(a, tmp_path / "a.wav", FXS_TONE, LOW)
    assert ok, f"a still talks to the analog phone: {desc}"
    # no burst 10 s after the first (the tone stopped with b's call): the last 10 s are clean
    wait_until(lambda: heard_for(box, "phone", "fxs1", CW_TONE) == 0.0, 15, what="no more call-waiting tone")
    sim(box, "phone", "fxs1", "flash")   # without a waiting call, a flash gives dial tone (transfer)
    wait_until(lambda: "dial" in sim(box, "phone", "fxs1", "status")["tones"], 5, what="dial tone after the flash")
    sim(box, "phone", "fxs1", "hangup")
    a.wait_state("DISCONNECTED", timeout=10)


def test_with_call_waiting_off_a_second_caller_gets_busy(box_factory, phones, tmp_path) -> None:
    box = cw_box(box_factory)
    out = box.cli("port", "set", "fxs1", "--call-waiting", "off").stdout
    assert "extension 1003, call waiting off" in out, out
    assert json.loads(box.cli("config", "export").stdout)["ports"]["fxs1"] == \
        {"extension": "1003", "call_waiting": False}
    a, b = two_phones(box, phones)
    analog_answers(box, a)
    b.call("1003")
    assert b.wait_state("DISCONNECTED", timeout=10)["code"] == 486
    assert heard_for(box, "phone", "fxs1", CW_TONE) == 0.0, "no call-waiting tone with call waiting off"
    ok, desc = hears(a, tmp_path / "a.wav", FXS_TONE, LOW)
    assert ok, f"a still talks to the analog phone: {desc}"
    # on again (the number kept): the next caller waits instead
    assert "call waiting on" in box.cli("port", "set", "fxs1", "--call-waiting", "on").stdout
    sim(box, "phone", "fxs1", "hangup")
    a.wait_state("DISCONNECTED", timeout=10)
