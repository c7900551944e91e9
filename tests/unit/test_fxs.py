"""FXS line machine on a fake clock: hook events and digits in, exact commands/call events out."""

from __future__ import annotations

import pytest

from board import port
from board.callerid import CallerId
from board.fxs import G711, Flash, FxsConfig, FxsLine, FxsState, prefix_plan
from board.regions import REGIONS
from firmware.pbx import events as ev

PLAN = prefix_plan("1XX", "0NXXXXXX")   # 3-digit extensions, 0 + 7-digit outside numbers


def drain(line: FxsLine) -> list[object]:
    out = []
    while (o := line.next_output()) is not None:
        out.append(o)
    return out


def advance(line: FxsLine, until: float) -> None:
    """Fire every deadline up to ``until``, as the loop would."""
    while (t := line.get_timer()) is not None and t <= until:
        line.handle_timer(t)


def lifted(region: str = "us", **kw) -> FxsLine:
    line = FxsLine(region, "201", PLAN, name="Front desk", **kw)
    line.on_event(port.OffHook(), 0.0)
    return line


def setup(callee: str) -> ev.Setup:
    return ev.Setup(caller="201", caller_name="Front desk", callee=callee, codecs=G711)


def test_dial_tone_on_lift_then_digits_to_setup():
    line = lifted()
    assert drain(line) == [port.PlayTone("dial")]
    line.digit("1", 1.0)
    assert drain(line) == [port.StopTone()]
    line.digit("0", 1.5)
    line.digit("5", 2.0)
    assert drain(line) == [setup("105")]
    assert line.state is FxsState.CALLING
    assert line.get_timer() is None


def test_ringback_answer_and_far_end_hangup_plays_busy():
    line = lifted()
    for i, d in enumerate("105"):
        line.digit(d, 1.0 + i)
    drain(line)
    line.handle_call_event(ev.Alerting(), 4.0)
    line.handle_call_event(ev.Answer(G711), 9.0)
    line.digit("5", 10.0)
    line.handle_call_event(ev.Release("callee-hangup"), 20.0)
    assert drain(line) == [port.PlayTone("ringback"), port.StopTone(), ev.Digit("5"),
                           port.PlayTone("busy")]
    advance(line, 100.0)
    assert drain(line) == [port.StopTone()]
    assert line.state is FxsState.LOCKOUT
    line.on_event(port.OnHook(), 101.0)
    advance(line, 200.0)
    assert drain(line) == [] and line.state is FxsState.IDLE


def test_far_end_congestion_cause_plays_congestion():
    line = lifted()
    for d in "105":
        line.digit(d, 1.0)
    drain(line)
    line.handle_call_event(ev.Release("not-found", 404), 2.0)
    assert drain(line) == [port.PlayTone("congestion")]


def test_inter_digit_timeout_with_incomplete_number_gives_congestion():
    line = lifted()
    line.digit("0", 1.0)
    line.digit("2", 2.0)
    assert line.get_timer() == 2.0 + FxsConfig().inter_digit_timeout
    advance(line, 9.9)
    assert drain(line) == [port.PlayTone("dial"), port.StopTone()]
    advance(line, 10.0)
    assert drain(line) == [port.PlayTone("congestion")]
    assert line.state is FxsState.FAILED


def test_invalid_number_gives_congestion_at_once():
    line = lifted()
    line.digit("9", 1.0)
    assert drain(line) == [port.PlayTone("dial"), port.StopTone(), port.PlayTone("congestion")]


def test_off_hook_without_digits_times_out_to_congestion_then_silence():
    line = lifted()
    drain(line)
    advance(line, 15.9)
    assert drain(line) == []
    advance(line, 16.0)
    assert drain(line) == [port.StopTone(), port.PlayTone("congestion")]
    advance(line, 46.0)
    assert drain(line) == [port.StopTone()]
    assert line.state is FxsState.LOCKOUT and line.get_timer() is None


def test_stutter_dial_tone_while_voicemail_waits():
    line = FxsLine("us", "201", PLAN)
    line.set_mwi(True)
    line.on_event(port.OffHook(), 0.0)
    assert drain(line) == [port.SetMwi(True), port.PlayTone("stutter_dial")]
    line.on_event(port.OnHook(), 1.0)
    advance(line, 5.0)
    line.set_mwi(False)
    line.on_event(port.OffHook(), 6.0)
    assert drain(line) == [port.StopTone(), port.SetMwi(False), port.PlayTone("dial")]


def test_us_ring_then_caller_id_after_first_ring_then_answer():
    line = FxsLine("us", "201", PLAN)
    cid = CallerId(number="5551234", name="ALICE")
    assert line.ring(cid, 0.0)
    assert drain(line) == [port.Ring((2.0, 4.0))]
    assert line.get_timer() == 2.5          # GR-30: >= 500 ms after the first ring ends
    advance(line, 2.5)
    assert drain(line) == [port.SendCallerId(cid, before_ring=False)]
    line.on_event(port.OffHook(), 7.0)
    assert drain(line) == [port.StopRing(), ev.Answer(G711)]
    assert line.state is FxsState.CONNECTED
    assert not line.ring(cid, 8.0)          # busy
    line.on_event(port.OnHook(), 30.0)
    advance(line, 40.0)
    assert drain(line) == [ev.Release("callee-hangup")]


def test_uk_caller_id_before_ring_with_polarity_reversal():
    line = FxsLine("uk", "201", PLAN)
    cid = CallerId(number="02079460000")
    line.handle_call_event(ev.Setup(caller="02079460000", caller_name="", callee="201",
                                    codecs=G711), 0.0)
    assert drain(line) == [port.SetPolarity(True)]
    advance(line, 0.25)
    assert drain(line) == [port.SendCallerId(cid, before_ring=True)]
    advance(line, 1.75)
    assert drain(line) == [port.Ring((0.4, 0.2, 0.4, 2.0))]
    line.on_event(port.OffHook(), 3.0)
    assert drain(line) == [port.StopRing(), port.SetPolarity(False), ev.Answer(G711)]


def test_india_dtmf_caller_id_before_ring_and_caller_gives_up():
    line = FxsLine("in", "201", PLAN)
    cid = CallerId(number="9812345678")
    line.ring(cid, 0.0)
    assert drain(line) == [port.SendCallerId(cid, before_ring=True)]
    advance(line, 1.5)
    assert drain(line) == [port.Ring(REGIONS["in"].ring_cadence)]
    line.handle_call_event(ev.Release("cancel"), 9.0)
    assert drain(line) == [port.StopRing()]
    assert line.state is FxsState.IDLE and line.get_timer() is None


def test_japan_rings_without_caller_id():
    line = FxsLine("jp", "201", PLAN)
    line.ring(CallerId(number="0312345678"), 0.0)
    advance(line, 10.0)
    assert drain(line) == [port.Ring((1.0, 2.0))]


def connected(region: str = "us") -> FxsLine:
    line = lifted(region)
    for d in "105":
        line.digit(d, 1.0)
    line.handle_call_event(ev.Answer(G711), 2.0)
    drain(line)
    return line


@pytest.mark.parametrize("region, down, expect", [
    ("us", 0.5, [Flash()]),
    ("us", 0.2, []),                       # too short for the US window: a bounce
    ("de", 0.1, [Flash()]),                # TBR-style 100 ms recall
])
def test_hook_flash_during_a_call(region, down, expect):
    line = connected(region)
    line.on_event(port.OnHook(), 10.0)
    line.on_event(port.OffHook(), 10.0 + down)
    advance(line, 20.0)
    assert drain(line) == expect
    assert line.state is FxsState.CONNECTED


def test_on_hook_longer_than_flash_max_is_a_hang_up():
    line = connected("us")
    line.on_event(port.OnHook(), 10.0)
    advance(line, 11.0)
    assert drain(line) == []
    advance(line, 11.1)
    assert drain(line) == [ev.Release("caller-hangup")]
    line.on_event(port.OffHook(), 12.0)     # a new call
    assert drain(line) == [port.PlayTone("dial")]


def test_driver_reported_flash():
    line = connected()
    line.on_event(port.HookFlash(), 5.0)
    assert drain(line) == [Flash()]


def pulse(line: FxsLine, digit: int, t: float, brk: float = 0.06, make: float = 0.04) -> float:
    """Dial one pulse digit starting at t; returns when the loop closed after the last break."""
    for _ in range(digit or 10):
        line.on_event(port.OnHook(), t)
        t += brk
        line.on_event(port.OffHook(), t)
        t += make
    return t - make


def test_pulse_dialing_305():
    line = FxsLine("us", "201", prefix_plan("305"))
    line.on_event(port.OffHook(), 0.0)
    t = 1.0
    for i, d in enumerate((3, 0, 5)):
        # make/break jitter: breaks 55..65 ms
        t = pulse(line, d, t, brk=0.055 + 0.005 * i)
        advance(line, t + 0.7)
        t += 0.7
    assert drain(line) == [port.PlayTone("dial"), port.StopTone(),
                           ev.Setup(caller="201", caller_name="", callee="305", codecs=G711)]


def test_bounce_between_pulse_and_flash_is_ignored_while_dialing():
    line = lifted()
    drain(line)
    line.on_event(port.OnHook(), 1.0)
    line.on_event(port.OffHook(), 1.01)     # 10 ms bounce
    line.on_event(port.OnHook(), 2.0)
    line.on_event(port.OffHook(), 2.2)      # 200 ms: neither pulse nor (while dialing) a flash
    advance(line, 3.0)
    assert drain(line) == [] and line.number == ""


def test_setup_without_a_number_sends_unavailable_caller_id():
    line = FxsLine("us", "201", PLAN)
    line.handle_call_event(ev.Setup(caller="", caller_name="", callee="201", codecs=G711), 0.0)
    advance(line, 3.0)
    assert drain(line) == [port.Ring((2.0, 4.0)), port.SendCallerId(CallerId(absence="O"), False)]
