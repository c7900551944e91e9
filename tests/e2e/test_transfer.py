"""Blind transfer (SIP REFER) through the box: the transferor leaves, the party left behind hears
ringback and then talks to the target; a queue call transferred by its agent is logged as such."""
from __future__ import annotations

from pathlib import Path

from tests.e2e.box import Box
from tests.e2e.test_calls import HIGH, LOW, connect, heard
from tests.e2e.test_queue import configure, agent_says, wait_kinds

C_TONE = 1000.0  # conftest: a phone whose name starts with c plays 1000 Hz


def test_the_callee_transfers_the_caller_to_a_third_phone(box: Box, registered, phones, tmp_path: Path) -> None:
    a, b = registered
    c = phones("c1003")
    assert c.register(server=box.sip_addr, user="1003", password=box.secret("1003")) == 200
    connect(a, b)
    b.transfer(f"sip:1003@{box.sip_addr}")
    b.wait_state("DISCONNECTED", timeout=10)  # the transferor leaves
    c.wait_incoming(timeout=10)
    a.record(tmp_path / "a.wav")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 50)  # a second of ringback
    c.answer()
    c.wait_state("CONFIRMED")
    c.record(tmp_path / "c.wav")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150)
    a.stop_record()
    c.stop_record()
    a.hangup()
    c.wait_state("DISCONNECTED")
    from tests.peers import audio

    rate, s = audio.read_wav(tmp_path / "a.wav")
    assert audio.tone_present(s, rate, 440.0, min_seconds=0.5, others=(LOW, C_TONE)), "no ringback for a"
    ok, desc = heard(tmp_path / "a.wav", C_TONE, LOW)
    assert ok, f"a should hear c's {C_TONE:g} Hz after the transfer: {desc}"
    ok, desc = heard(tmp_path / "c.wav", LOW, C_TONE)
    assert ok, f"c should hear a's {LOW:g} Hz: {desc}"
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls left")


def test_an_agent_transfers_a_queue_call_and_the_queue_logs_it(box: Box, registered, phones, tmp_path: Path) -> None:
    a, b = registered
    c = phones("c1003")
    assert c.register(server=box.sip_addr, user="1003", password=box.secret("1003")) == 200
    configure(box, tmp_path, announce_every=0, recording="never")
    agent_says(box, b, "*51", "agent-logged-in", tmp_path)
    a.call("600")
    b.wait_incoming(timeout=10)
    b.answer()
    b.wait_state("CONFIRMED")
    # 60 packets, not 50: the talk time must pass 1 s even when a burst arrives a little early
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 60)
    b.transfer(f"sip:1003@{box.sip_addr}")
    b.wait_state("DISCONNECTED", timeout=10)
    c.wait_incoming(timeout=10)
    c.answer()
    c.wait_state("CONFIRMED")
    a.hangup()
    c.wait_state("DISCONNECTED")
    events = wait_kinds(box, ["ENTER", "CONNECT", "TRANSFER"])
    t = [e for e in events if e["kind"] == "TRANSFER"][0]
    assert (t["agent"], t["reason"]) == ("1002", "1003") and t["talk"] >= 1.0, t
    assert not [e for e in events if e["kind"] == "COMPLETE"], events  # one end per queue call


def test_a_recording_follows_the_call_through_a_transfer(box: Box, registered, phones, tmp_path: Path) -> None:
    """One file, linked from the one CDR row: the caller on the left all along, on the right
    first the callee, then (after the ringing, silent) the party the call was transferred to."""
    from tests.e2e.test_recording import recording_of
    from tests.peers import audio
    from tests.peers.netutil import wait_until

    a, b = registered
    c = phones("c1003")
    assert c.register(server=box.sip_addr, user="1003", password=box.secret("1003")) == 200
    box.set("recording.calls", "always")
    connect(a, b)
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 100)
    b.transfer(f"sip:1003@{box.sip_addr}")
    b.wait_state("DISCONNECTED", timeout=10)
    c.wait_incoming(timeout=10)
    c.answer()
    c.wait_state("CONFIRMED")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 100)
    a.hangup()
    c.wait_state("DISCONNECTED")
    row = box.wait_cdr(1)[0]
    path = recording_of(box, row)
    wait_until(path.exists, 10, what=f"{path.name} finished")
    assert [p.name for p in (box.data / "recordings").glob("*.wav")] == [path.name]  # one file
    rate, right = audio.read_wav(path, channel=1)
    half = len(right) // 2
    assert audio.tone_present(right[:half], rate, HIGH, min_seconds=1.0, others=(C_TONE,)), \
        audio.describe(right[:half], rate, (HIGH, C_TONE))
    assert audio.tone_present(right[half:], rate, C_TONE, min_seconds=1.0, others=(HIGH,)), \
        audio.describe(right[half:], rate, (HIGH, C_TONE))
    rate, left = audio.read_wav(path, channel=0)
    assert audio.tone_present(left, rate, LOW, min_seconds=3.0, others=(HIGH, C_TONE))


def test_attended_transfer_joins_the_held_caller_with_the_consulted_phone(box: Box, registered, phones,
                                                                        tmp_path: Path) -> None:
    """b answers a, puts a on hold and calls c (consultation), talks to c, then presses transfer:
    the phone sends REFER with Replaces naming the consultation; a and c talk, b is gone."""
    a, b = registered
    c = phones("c1003")
    assert c.register(server=box.sip_addr, user="1003", password=box.secret("1003")) == 200
    connect(a, b)
    b.consult("1003")
    assert "1002" in c.wait_incoming(timeout=10)["from"]
    c.answer()
    b.wait_state("CONFIRMED")
    b.record(tmp_path / "b.wav")
    b.wait_rx_packets(b.stream_stat()["rx_pkt"] + 75)
    b.stop_record()
    ok, desc = heard(tmp_path / "b.wav", C_TONE, HIGH)
    assert ok, f"b should talk to c during the consultation: {desc}"
    assert box.wait_health(lambda h: h["calls"] == 2, 5, "two calls: a-b held, b-c")

    b.transfer_attended()
    b.wait_state("DISCONNECTED", timeout=10)        # the consultation ends for b...
    b.wait_held_state("DISCONNECTED", timeout=10)   # ...and so does the held call
    a.record(tmp_path / "a.wav")
    c.record(tmp_path / "c.wav")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150)
    c.wait_rx_packets(c.stream_stat()["rx_pkt"] + 50)
    a.stop_record()
    c.stop_record()
    ok, desc = heard(tmp_path / "a.wav", C_TONE, HIGH)
    assert ok, f"a should hear c's {C_TONE:g} Hz after the transfer (and no more of b): {desc}"
    ok, desc = heard(tmp_path / "c.wav", LOW, HIGH)
    assert ok, f"c should hear a's {LOW:g} Hz: {desc}"
    assert box.wait_health(lambda h: h["calls"] == 1, 5, "one call left: a-c")
    a.hangup()
    c.wait_state("DISCONNECTED", timeout=10)
    rows = box.wait_cdr(2)
    by_pair = {(r["caller"], r["callee"]): r for r in rows}
    assert by_pair[("1002", "1003")]["cause"] == "transferred", rows
    assert by_pair[("1001", "1002")]["disposition"] == "ANSWERED", rows
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls left")
