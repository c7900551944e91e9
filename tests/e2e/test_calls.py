"""Calls through `linebox run` between real pjsua2 phones: audio both ways (tones
detected at the far end), RFC 4733 DTMF, hang-up from either side, the CDR row,
404/480/486/no-answer/cancel, hold/resume, media anchoring, µ-law↔A-law, and
dead-call detection."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.e2e.box import Box
from tests.peers import audio
from tests.peers.netutil import wait_until
from tests.peers.phone import Phone

LOW, HIGH = 600.0, 1400.0  # a plays LOW, b plays HIGH


def _user(value: Any) -> str:
    """The user part of a CDR party ("1001", "sip:1001@host", '"A" <sip:1001@h>')."""
    s = str(value)
    m = re.search(r"sips?:([^@;>]+)@", s)
    return m.group(1) if m else s.strip()


def heard(path: Path, freq: float, other: float, min_seconds: float = 1.0) -> tuple[bool, str]:
    rate, samples = audio.read_wav(path)
    return (audio.tone_present(samples, rate, freq, min_seconds=min_seconds, others=(other,)),
            audio.describe(samples, rate, (freq, other)))


def connect(a: Phone, b: Phone, number: str = "1002") -> None:
    """a dials `number`, b answers; both CONFIRMED."""
    a.call(number)
    inc = b.wait_incoming(timeout=10)
    assert "1001" in inc["from"], f"b sees the caller as {inc['from']}"
    assert a.wait_state("EARLY", timeout=10)["code"] in (180, 183)
    b.answer()
    a.wait_state("CONFIRMED")
    b.wait_state("CONFIRMED")


def newest_cdr(box: Box, timeout: float = 10) -> dict[str, Any]:
    return box.wait_cdr(1, timeout)[0]


def assert_answered_row(row: dict[str, Any], cause: str) -> None:
    assert _user(row["caller"]) == "1001", row
    assert _user(row["callee"]) == "1002", row
    assert row["disposition"] == "ANSWERED", row
    assert row["cause"] == cause, row
    assert row["duration"] > 0, row
    assert 0 < row["billsec"] <= row["duration"], row
    assert row["answer"] is not None and row["end"] is not None and row["call_id"], row
    if type(row["start"]) is type(row["answer"]) is type(row["end"]):
        assert row["start"] <= row["answer"] <= row["end"], row


def assert_failed_row(row: dict[str, Any], dispositions: tuple[str, ...], cause: str,
                      callee: str = "1002") -> None:
    assert _user(row["caller"]) == "1001", row
    assert _user(row["callee"]) == callee, row
    assert row["disposition"] in dispositions, row
    assert row["cause"] == cause, row
    assert row["billsec"] == 0, row
    assert row["answer"] in (None, ""), row


def assert_anchored(ph: Phone, box: Box) -> None:
    info = ph.call_info()
    host, _, port = info["remote_rtp"].rpartition(":")
    assert host == "127.0.0.1" and box.rtp_lo <= int(port) <= box.rtp_hi, \
        f"{ph.name}'s remote RTP {info['remote_rtp']} is not in the box's {box.rtp_lo}-{box.rtp_hi}"


def test_tones_both_ways_anchored_caller_hangup_and_cdr(box: Box, registered, tmp_path):
    a, b = registered
    a.play_tone(LOW)
    b.play_tone(HIGH)
    a.record(tmp_path / "a-hears.wav")
    b.record(tmp_path / "b-hears.wav")
    connect(a, b)
    assert a.call_info()["codec"] == b.call_info()["codec"] == "PCMU"
    assert_anchored(a, box)
    assert_anchored(b, box)
    h = box.health()
    assert h["calls"] == 1, h
    assert len(box.calls()) == 1

    a.wait_rx_packets(100, timeout=15)
    b.wait_rx_packets(100, timeout=15)
    a.stop_record()
    b.stop_record()

    a.hangup()
    assert b.wait_state("DISCONNECTED")["code"] in (200,), "b's leg did not end with a BYE"
    a.wait_state("DISCONNECTED")
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls after hang-up")

    ok, desc = heard(tmp_path / "a-hears.wav", HIGH, LOW)
    assert ok, f"a should hear b's {HIGH:g} Hz: {desc}"
    ok, desc = heard(tmp_path / "b-hears.wav", LOW, HIGH)
    assert ok, f"b should hear a's {LOW:g} Hz: {desc}"
    ok, desc = heard(tmp_path / "a-hears.wav", LOW, HIGH, min_seconds=0.1)
    assert not ok, f"a hears its own tone (echo through the box?): {desc}"

    assert_answered_row(newest_cdr(box), "caller-hangup")


def test_dtmf_rfc4733_is_relayed(box: Box, registered):
    a, b = registered
    connect(a, b)
    b.wait_rx_packets(10)
    a.send_dtmf("1234#")
    got = b.wait_dtmf("1234#", timeout=10)
    assert got == "1234#", got
    assert {e["method"] for e in b.events("dtmf")} == {"rfc2833"}
    b.send_dtmf("9*")
    assert a.wait_dtmf("9*", timeout=10) == "9*"
    a.hangup()
    b.wait_state("DISCONNECTED")


def test_callee_hangup_ends_both_legs_and_cdr(box: Box, registered):
    a, b = registered
    connect(a, b)
    a.wait_rx_packets(50)
    b.hangup()
    assert a.wait_state("DISCONNECTED")["code"] == 200
    b.wait_state("DISCONNECTED")
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls after hang-up")
    assert_answered_row(newest_cdr(box), "callee-hangup")


def test_unknown_extension_gets_404(box: Box, registered):
    a, b = registered
    a.call("9999")
    assert a.wait_state("DISCONNECTED")["code"] == 404
    assert_failed_row(newest_cdr(box), ("FAILED",), "not-found", callee="9999")
    assert b.events("incoming") == []


def test_not_registered_extension_gets_480(box: Box, registered):
    a, _ = registered
    a.call("1003")
    assert a.wait_state("DISCONNECTED")["code"] == 480
    assert_failed_row(newest_cdr(box), ("FAILED", "NO ANSWER"), "not-registered", callee="1003")


def test_busy_callee_gives_486(box: Box, registered):
    a, b = registered
    a.call("1002")
    b.wait_incoming()
    b.reject(486)
    assert a.wait_state("DISCONNECTED")["code"] == 486
    assert_failed_row(newest_cdr(box), ("BUSY",), "busy")
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls after busy")


def test_cancel_while_ringing_stops_the_callee_ringing(box: Box, registered):
    a, b = registered
    a.call("1002")
    b.wait_incoming()
    assert a.wait_state("EARLY")["code"] == 180
    a.hangup()  # CANCEL
    b.wait_state("DISCONNECTED", timeout=10)
    assert a.wait_state("DISCONNECTED")["code"] == 487
    assert_failed_row(newest_cdr(box), ("NO ANSWER",), "cancel")
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls after cancel")


def test_no_answer_timeout(box: Box, registered):
    a, b = registered
    box.set("call.no_answer_timeout", 3)  # applied live
    a.call("1002")
    b.wait_incoming()
    try:
        ended = a.wait_state("DISCONNECTED", timeout=15)
    except AssertionError as e:
        raise AssertionError("call.no_answer_timeout=3, set with `linebox set` while the box "
                             f"runs, did not end the ringing call:\n{e}") from None
    assert ended["code"] in (480, 408), ended
    b.wait_state("DISCONNECTED", timeout=5)
    assert_failed_row(newest_cdr(box), ("NO ANSWER",), "no-answer")


def test_hold_and_resume_are_seen_by_the_other_phone(box: Box, registered):
    a, b = registered
    connect(a, b)
    a.hold()
    wait_until(lambda: b.call_info()["media_status"] == "REMOTE_HOLD", 5, what="b sees hold")
    wait_until(lambda: a.call_info()["media_status"] == "LOCAL_HOLD", 5, what="a is on hold")
    a.unhold()
    wait_until(lambda: b.call_info()["media_status"] == "ACTIVE", 5, what="b sees resume")
    wait_until(lambda: a.call_info()["media_status"] == "ACTIVE", 5, what="a resumed")
    # media flows again after the resume
    before = b.stream_stat()["rx_pkt"]
    b.wait_rx_packets(before + 25)
    assert_anchored(a, box)
    assert_anchored(b, box)
    b.hangup()
    a.wait_state("DISCONNECTED")


def test_ulaw_phone_calls_alaw_phone_and_both_hear(box: Box, phones, tmp_path):
    a = phones("ulaw1001", codecs=["PCMU"])
    b = phones("alaw1002", codecs=["PCMA"])
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    assert b.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    a.play_tone(LOW)
    b.play_tone(HIGH)
    a.record(tmp_path / "a-hears.wav")
    b.record(tmp_path / "b-hears.wav")
    connect(a, b)
    assert a.call_info()["codec"] == "PCMU"
    assert b.call_info()["codec"] == "PCMA"
    a.wait_rx_packets(100, timeout=15)
    b.wait_rx_packets(100, timeout=15)
    a.stop_record()
    b.stop_record()
    a.hangup()
    b.wait_state("DISCONNECTED")
    ok, desc = heard(tmp_path / "a-hears.wav", HIGH, LOW)
    assert ok, f"the µ-law phone should hear the A-law phone's {HIGH:g} Hz: {desc}"
    ok, desc = heard(tmp_path / "b-hears.wav", LOW, HIGH)
    assert ok, f"the A-law phone should hear the µ-law phone's {LOW:g} Hz: {desc}"


def test_media_timeout_releases_both_legs(box: Box, registered):
    a, b = registered
    box.set("rtp.timeout", 3)  # applied live
    connect(a, b)
    a.wait_rx_packets(25)
    b.wait_rx_packets(25)
    b.kill()  # the phone dies: its RTP stops, it will never send BYE
    ended = a.wait_state("DISCONNECTED", timeout=15)
    assert ended["code"] == 200, f"a's leg should end with a BYE from the box: {ended}"
    row = box.wait_cdr(1, 10, pred=lambda r: r.get("cause") == "media-timeout")[0]
    assert row["disposition"] == "ANSWERED", row
    assert _user(row["caller"]) == "1001" and _user(row["callee"]) == "1002", row
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls after the media timeout")


def test_the_held_party_hears_music_and_then_the_other_again(box: Box, registered, tmp_path):
    a, b = registered  # a plays LOW
    connect(a, b)
    a.hold()
    wait_until(lambda: b.call_info()["media_status"] == "REMOTE_HOLD", 5, what="b sees hold")
    b.record(tmp_path / "held.wav")
    b.wait_rx_packets(b.stream_stat()["rx_pkt"] + 150, timeout=10)
    b.stop_record()
    rate, s = audio.read_wav(tmp_path / "held.wav")
    for note in (523.25, 659.25, 783.99):  # the box's music on hold (a C major arpeggio)
        assert audio.tone_present(s, rate, note, min_seconds=0.2, others=(LOW, HIGH)), \
            f"no {note:g} Hz note while held: {audio.describe(s, rate)}"
    assert not audio.tone_present(s, rate, LOW, min_seconds=0.2, others=(HIGH,)), "the holder is still heard"
    a.unhold()
    wait_until(lambda: b.call_info()["media_status"] == "ACTIVE", 5, what="b sees resume")
    b.record(tmp_path / "resumed.wav")
    b.wait_rx_packets(b.stream_stat()["rx_pkt"] + 100, timeout=10)
    b.stop_record()
    ok, desc = heard(tmp_path / "resumed.wav", LOW, HIGH)
    assert ok, f"after the resume b should hear a's {LOW:g} Hz again: {desc}"
    b.hangup()
    a.wait_state("DISCONNECTED")
