"""FXO line machine on a fake clock: ring/hook/line events in, exact commands/call events out."""

from __future__ import annotations

import pytest

from board import port
from board.callerid import CallerId, CallerIdReceiver, CallerIdSender
from board.fxo import G711, FxoConfig, FxoLine, FxoState
from board.regions import CID_AFTER_FIRST_RING, REGIONS, region
from firmware.media.tones import TONES
from firmware import events as ev

ALICE = CallerId(number="5551234", name="ALICE")


def drain(line: FxoLine) -> list[object]:
    out = []
    while (o := line.next_output()) is not None:
        out.append(o)
    return out


def advance(line: FxoLine, until: float) -> None:
    while (t := line.get_timer()) is not None and t <= until:
        line.handle_timer(t)


def ring(line: FxoLine, cadence: tuple[float, ...], t: float) -> float:
    """One ring cycle of ``cadence`` from ``t``; returns the start of the next cycle."""
    for i, length in enumerate(cadence):
        if i % 2 == 0:
            line.on_event(port.RingStart(), t)
            line.on_event(port.RingStop(), t + length)
        t += length
    return t


def inbound_setup(cid: CallerId | None) -> ev.Setup:
    return ev.Setup(caller=(cid.number or "") if cid else "", caller_name=(cid.name or "") if cid else "",
                    callee="s", codecs=G711)


def test_us_ring_then_caller_id_answers_after_the_first_ring():
    line = FxoLine("us")
    ring(line, (2.0, 4.0), 0.0)
    assert line.rings == 1 and line.state is FxoState.RINGING and drain(line) == []
    line.caller_id(ALICE, 3.2)              # decoded in the first silent interval
    assert drain(line) == [port.Seize(), inbound_setup(ALICE)]
    assert line.state is FxoState.CONNECTED


# --- Japan: the box answers CAR for NTT's caller ID, then takes the call on the rings ---------

def ntt_heard(cid: CallerId) -> CallerId | None:
    """What the line's NTT receiver decodes from the exchange's FSK for ``cid``, 20 ms at a time
    (as the analog runner feeds it)."""
    x = CallerIdSender(region="jp").samples(cid)
    rx = CallerIdReceiver(REGIONS["jp"].cid_standard)
    got = None
    for i in range(0, len(x) + 160, 160):
        got = got or rx.feed(x[i:i + 160])
    return got


def test_japan_car_is_answered_briefly_then_the_rings_bring_the_call_with_its_number():
    line = FxoLine("jp")
    cid = CallerId(number="0312345678")
    line.on_event(port.RingStart(), 0.0)
    line.on_event(port.RingStop(), 0.5)                     # a 0.5 s burst: CAR
    assert drain(line) == [port.Seize()]                    # primary response, no call yet
    assert line.state is FxoState.CALLER_ID
    heard = ntt_heard(cid)
    assert heard == cid
    line.caller_id(heard, 0.9)
    assert drain(line) == [port.Release()]                  # back on hook: "received"
    assert line.state is FxoState.RINGING and line.rings == 0
    ring(line, (1.0, 2.0), 1.2)                             # the first ordinary ring
    assert drain(line) == [port.Seize(), inbound_setup(cid)]
    assert line.state is FxoState.CONNECTED


def test_japan_no_caller_id_after_answering_car_goes_back_on_hook_and_rings_in_anyway():
    cfg = FxoConfig(rings_before_answer=2)
    line = FxoLine("jp", config=cfg)
    ring(line, (0.5, 0.5), 0.0)
    assert drain(line) == [port.Seize()]
    advance(line, 0.5 + cfg.cid_wait - 0.01)
    assert drain(line) == []
    advance(line, 0.5 + cfg.cid_wait)
    assert drain(line) == [port.Release()]
    t = ring(line, (1.0, 2.0), 3.5)
    assert drain(line) == []
    ring(line, (1.0, 2.0), t)
    assert drain(line) == [port.Seize(), inbound_setup(None)]


def test_japan_line_without_number_display_rings_normally():
    line = FxoLine("jp", config=FxoConfig(rings_before_answer=2))
    t = ring(line, (1.0, 2.0), 0.0)                         # 1 s: a ring, not CAR
    assert drain(line) == [] and line.rings == 1
    ring(line, (1.0, 2.0), t)
    assert drain(line) == [port.Seize(), inbound_setup(None)]


def test_japan_caller_gives_up_after_the_caller_id():
    cfg = FxoConfig()
    line = FxoLine("jp", config=cfg)
    ring(line, (0.5, 0.5), 0.0)
    line.caller_id(CallerId(number="0312345678"), 0.9)
    assert drain(line) == [port.Seize(), port.Release()]
    assert not line.dial("117", 2.0)                        # the line is taken by the call
    advance(line, 0.9 + cfg.ring_timeout)
    assert drain(line) == [] and line.state is FxoState.IDLE and line.cid is None
    assert line.get_timer() is None


def test_without_caller_id_answers_after_n_rings():
    line = FxoLine("us", config=FxoConfig(rings_before_answer=3))
    t = ring(line, (2.0, 4.0), 0.0)
    t = ring(line, (2.0, 4.0), t)
    assert drain(line) == [] and line.rings == 2
    ring(line, (2.0, 4.0), t)
    assert drain(line) == [port.Seize(), inbound_setup(None)]


def test_uk_caller_id_before_the_ring_double_ring_counts_once():
    line = FxoLine("uk", config=FxoConfig(rings_before_answer=2, answer_on_cid=False))
    line.on_event(port.PolarityReversal(), 0.0)   # idle: caller ID is coming, not a disconnect
    line.caller_id(ALICE, 0.6)
    t = ring(line, REGIONS["uk"].ring_cadence, 1.0)
    assert line.rings == 1 and drain(line) == []
    ring(line, REGIONS["uk"].ring_cadence, t)
    assert drain(line) == [port.Seize(), inbound_setup(ALICE)]


def test_uk_caller_id_before_ring_answers_on_first_ring():
    line = FxoLine("uk")
    line.caller_id(ALICE, 0.6)
    ring(line, REGIONS["uk"].ring_cadence, 1.0)
    assert drain(line) == [port.Seize(), inbound_setup(ALICE)]


def test_a_single_spurious_ring_pulse_is_ignored():
    line = FxoLine("us")
    line.on_event(port.RingStart(), 0.0)
    line.on_event(port.RingStop(), 0.05)
    assert line.rings == 0 and line.state is FxoState.IDLE
    assert drain(line) == [] and line.get_timer() is None


def test_rings_that_stop_before_answer_leave_the_line_idle():
    line = FxoLine("us", config=FxoConfig(rings_before_answer=4, answer_on_cid=False))
    ring(line, (2.0, 4.0), 0.0)
    advance(line, 100.0)
    assert drain(line) == [] and line.state is FxoState.IDLE and line.rings == 0


def dialed(region: str = "us", **kw) -> FxoLine:
    line = FxoLine(region, config=FxoConfig(**kw))
    line.handle_call_event(ev.Setup(caller="201", caller_name="", callee="5551234", codecs=G711), 0.0)
    line.tone_detected("dial", 0.3)
    advance(line, 10.0)
    return line


def test_dial_out_waits_for_dial_tone_then_sends_dtmf():
    line = FxoLine("us")
    assert line.dial("911", 0.0)
    assert drain(line) == [port.Seize()]
    assert line.get_timer() == 1.0
    line.tone_detected("dial", 0.5)         # earlier than the wait
    assert drain(line) == [port.SendDigit("9")]
    assert line.get_timer() == 0.7
    advance(line, 0.75)
    assert drain(line) == [port.SendDigit("1")]
    advance(line, 1.0)
    assert drain(line) == [port.SendDigit("1"), ev.Answer(G711)]
    assert line.state is FxoState.CONNECTED and not line.dial("1", 1.0)


def test_dial_out_without_dial_tone_report_waits_the_configured_time():
    line = FxoLine("us", config=FxoConfig(dial_tone_wait=2.0))
    line.dial("5", 0.0)
    advance(line, 1.99)
    assert drain(line) == [port.Seize()]
    advance(line, 2.0)
    assert drain(line) == [port.SendDigit("5"), ev.Answer(G711)]


def test_answer_by_polarity_then_disconnect_by_polarity():
    line = dialed("fr", answer_polarity=True)
    assert drain(line)[-1] == ev.Alerting()
    line.on_event(port.PolarityReversal(), 12.0)
    assert drain(line) == [ev.Answer(G711)]
    line.on_event(port.PolarityReversal(), 30.0)
    assert drain(line) == [port.Release(), ev.Release("callee-hangup", reason="polarity")]
    assert line.state is FxoState.IDLE


def test_polarity_reversal_ignored_where_region_does_not_supervise():
    line = dialed("us")
    drain(line)
    line.on_event(port.PolarityReversal(), 12.0)
    assert drain(line) == [] and line.state is FxoState.CONNECTED


@pytest.mark.parametrize("ms, gone", [(100, False), (249, False), (250, True), (900, True)])
def test_disconnect_by_loop_current_drop(ms, gone):
    line = dialed("us")
    drain(line)
    line.on_event(port.LoopCurrentDrop(ms), 20.0)
    assert drain(line) == ([port.Release(), ev.Release("callee-hangup", reason="loop-drop")]
                           if gone else [])


def test_disconnect_by_busy_tone_on_an_inbound_call():
    line = FxoLine("de")
    ring(line, (1.0, 4.0), 0.0)
    ring(line, (1.0, 4.0), 5.0)
    drain(line)
    line.tone_detected("busy", 40.0)
    assert drain(line) == [port.Release(), ev.Release("caller-hangup", reason="busy")]


def test_busy_before_the_answer_reversal_is_a_busy_callee():
    line = dialed("cn", answer_polarity=True)
    drain(line)
    line.tone_detected("busy", 5.0)
    assert drain(line) == [port.Release(), ev.Release("busy", reason="busy")]


def test_silence_timeout_and_voice_activity():
    line = dialed("us", silence_timeout=30.0)
    drain(line)
    line.voice_activity(20.0)
    advance(line, 49.9)
    assert drain(line) == []
    advance(line, 50.0)
    assert drain(line) == [port.Release(), ev.Release("callee-hangup", reason="silence")]


def test_controller_release_hangs_up_and_digits_are_dialed():
    line = dialed("us")
    drain(line)
    line.handle_call_event(ev.Digit("7"), 11.0)
    line.handle_call_event(ev.Release("caller-hangup"), 12.0)
    assert drain(line) == [port.SendDigit("7"), port.Release()]
    assert line.state is FxoState.IDLE


def test_setup_while_busy_is_refused():
    line = dialed("us")
    drain(line)
    line.handle_call_event(ev.Setup(caller="202", caller_name="", callee="1", codecs=G711), 11.0)
    assert drain(line) == [ev.Release("busy", 486)]


def test_alarm_during_a_call_releases_it():
    line = dialed("us")
    drain(line)
    line.on_event(port.Alarm("no battery"), 11.0)
    assert drain(line) == [port.Release(), ev.Release("callee-hangup", reason="alarm")]


@pytest.mark.parametrize("code", sorted(REGIONS))
def test_per_region_defaults(code):
    r = region(code.upper())
    line = FxoLine(code)
    assert line.disconnect_polarity is r.disconnect_polarity
    assert line.loop_drop_ms == r.loop_drop_ms
    assert r.tone_zone in TONES
    assert r.busy_cadence == TONES[r.tone_zone]["busy"].cadence and r.busy_cadence
    assert r.flash_min < r.flash_max and sum(r.ring_cadence) > 0 and len(r.ring_cadence) % 2 == 0
    assert (r.cid_standard is None) == (r.cid_start is None)
    assert FxoLine(code, config=FxoConfig(disconnect_polarity=False, loop_drop_ms=600)).loop_drop_ms == 600


def test_region_table_spot_checks():
    assert REGIONS["us"].cid_start == CID_AFTER_FIRST_RING and REGIONS["us"].impedance == "600R"
    assert REGIONS["uk"].cid_before_ring and REGIONS["fr"].disconnect_polarity
    assert not REGIONS["us"].disconnect_polarity
    with pytest.raises(KeyError, match="known"):
        region("xx")
