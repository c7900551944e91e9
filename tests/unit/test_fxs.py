"""FXS line machine on a fake clock: hook events and digits in, exact commands/call events out."""

from __future__ import annotations

import pytest

from board import port
from board.callerid import CallerId, CallerIdReceiver, CallerIdSender
from board.driver import LineAudio, decode
from board.fxs import G711, Flash, FxsConfig, FxsLine, FxsState, SwapCalls, prefix_plan
from board.regions import REGIONS
from firmware import events as ev

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
    assert drain(line) == []      # A9812345678C is 12 digits of 140 ms: still being sent
    advance(line, 1.9)
    assert drain(line) == [port.Ring(REGIONS["in"].ring_cadence)]
    line.handle_call_event(ev.Release("cancel"), 9.0)
    assert drain(line) == [port.StopRing()]
    assert line.state is FxsState.IDLE and line.get_timer() is None


# --- Japan: NTT Number Display (CAR, primary response, FSK off hook, then ringing) -----------

JP_RING = port.Ring(REGIONS["jp"].ring_cadence)


def sent_caller_id(cmd: port.SendCallerId) -> CallerId | None:
    """What an NTT receiver decodes from the audio the port plays for ``cmd``."""
    audio = LineAudio(REGIONS["jp"])
    audio.send_caller_id(cmd.cid)
    rx = CallerIdReceiver("ntt")
    got = None
    while audio.signalling:
        got = got or rx.feed(decode(audio.law, audio.next_frame()))
    return got


def test_japan_car_then_caller_id_to_the_off_hook_phone_then_ringing():
    line = FxsLine("jp", "201", PLAN)
    cid = CallerId(number="0312345678")
    assert line.ring(cid, 0.0)
    assert drain(line) == [port.Ring((0.5, 0.5))]            # CAR, not the 1 s ring
    advance(line, 0.4)
    assert drain(line) == []
    line.on_event(port.OffHook(), 0.5)                      # primary response
    assert drain(line) == [port.StopRing()]                 # no Answer: nobody answered yet
    assert line.state is FxsState.RINGING
    advance(line, 0.69)
    assert drain(line) == []
    advance(line, 0.7)                                      # cid_after_answer later: the FSK
    [cmd] = drain(line)
    assert isinstance(cmd, port.SendCallerId) and sent_caller_id(cmd) == cid
    line.on_event(port.OnHook(), 1.1)                       # "received": now it rings
    assert drain(line) == [JP_RING]
    advance(line, 30.0)                                     # that on-hook was no hang-up
    assert drain(line) == [] and line.state is FxsState.RINGING
    line.on_event(port.OffHook(), 31.0)
    assert drain(line) == [port.StopRing(), ev.Answer(G711)]


def test_japan_phone_that_never_answers_car_is_rung_without_caller_id():
    line = FxsLine("jp", "201", PLAN)
    line.ring(CallerId(number="0312345678"), 0.0)
    assert drain(line) == [port.Ring((0.5, 0.5))]
    advance(line, FxsConfig().car_timeout - 0.01)
    assert drain(line) == []
    advance(line, FxsConfig().car_timeout)
    assert drain(line) == [port.StopRing(), JP_RING]
    advance(line, 60.0)
    assert drain(line) == []                                # and no caller ID later either
    line.on_event(port.OffHook(), 61.0)
    assert drain(line) == [port.StopRing(), ev.Answer(G711)]


def test_japan_handset_lifted_during_car_is_answered_after_the_caller_id():
    cfg = FxsConfig()
    line = FxsLine("jp", "201", PLAN, config=cfg)
    cid = CallerId(number="0312345678")
    line.ring(cid, 0.0)
    line.on_event(port.OffHook(), 0.3)                      # a person, not the ID circuit
    advance(line, 0.5)
    out = drain(line)
    assert out[:2] == [port.Ring((0.5, 0.5)), port.StopRing()]
    assert len(out) == 3 and isinstance(out[2], port.SendCallerId)
    sent = CallerIdSender(region="jp").duration(cid)
    advance(line, 0.5 + sent + cfg.cid_release_timeout - 0.01)
    assert drain(line) == []
    advance(line, 0.5 + sent + cfg.cid_release_timeout)
    assert drain(line) == [ev.Answer(G711)] and line.state is FxsState.CONNECTED


def test_japan_caller_gives_up_while_the_phone_takes_its_caller_id():
    line = FxsLine("jp", "201", PLAN)
    line.ring(CallerId(number="0312345678"), 0.0)
    line.on_event(port.OffHook(), 0.5)
    drain(line)
    line.handle_call_event(ev.Release("cancel"), 0.6)
    line.on_event(port.OnHook(), 1.0)                       # the phone's "received"
    advance(line, 30.0)
    assert drain(line) == [] and line.state is FxsState.IDLE and line.get_timer() is None


def connected(region: str = "us") -> FxsLine:
    line = lifted(region)
    for d in "105":
        line.digit(d, 1.0)
    line.handle_call_event(ev.Answer(G711), 2.0)
    drain(line)
    return line


FLASHED = [Flash(), ev.Hold("sendonly"), port.PlayTone("dial")]  # the other party held, dial tone


@pytest.mark.parametrize("region, down, expect", [
    ("us", 0.5, FLASHED),
    ("us", 0.2, []),                       # too short for the US window: a bounce
    ("de", 0.1, FLASHED),                  # TBR-style 100 ms recall
])
def test_hook_flash_during_a_call(region, down, expect):
    line = connected(region)
    line.on_event(port.OnHook(), 10.0)
    line.on_event(port.OffHook(), 10.0 + down)
    advance(line, 20.0)
    assert drain(line) == expect
    assert line.state is (FxsState.DIALTONE if expect else FxsState.CONNECTED)


def test_flash_then_a_number_transfers_the_call():
    line = connected()
    line.on_event(port.HookFlash(), 5.0)
    assert drain(line) == FLASHED
    for i, d in enumerate("107"):
        line.digit(d, 6.0 + i)
    assert drain(line) == [port.StopTone(), ev.Transfer("107")]
    assert line.state is FxsState.LOCKOUT  # silence until the phone hangs up
    line.handle_call_event(ev.Release("transferred"), 9.0)
    assert drain(line) == []
    line.on_event(port.OnHook(), 10.0)
    advance(line, 12.0)
    assert drain(line) == [] and line.state is FxsState.IDLE  # no second release of the call


@pytest.mark.parametrize("how", ["flash", "timeout", "bad-number"])
def test_a_transfer_given_up_returns_to_the_call(how):
    line = connected()
    line.on_event(port.HookFlash(), 5.0)
    drain(line)
    if how == "flash":
        line.on_event(port.HookFlash(), 6.0)
    elif how == "timeout":
        advance(line, 5.0 + 16.1)
    else:
        line.digit("9", 6.0)  # no number starts with 9 in this plan
    assert drain(line)[-1] == ev.Hold("sendrecv")
    assert line.state is FxsState.CONNECTED


def test_hanging_up_while_dialling_a_transfer_ends_the_call():
    line = connected()
    line.on_event(port.HookFlash(), 5.0)
    drain(line)
    line.on_event(port.OnHook(), 6.0)
    advance(line, 8.0)
    assert drain(line)[-1] == ev.Release("caller-hangup")


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
    assert drain(line) == FLASHED


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


@pytest.mark.parametrize("ratio", [(0.060, 0.040), (0.066, 0.033)], ids=["60/40", "66/33"])
@pytest.mark.parametrize("seed", range(5))
def test_pulse_dialing_every_digit_with_make_break_jitter(ratio, seed):
    """10 pps rotary dials at 60/40 and 66/33 break/make, every break and make off by up to
    +-10 % (a worn governor), inter-digit pauses of 300-800 ms: all ten digits come out right."""
    import random
    rng = random.Random(seed)
    brk, make = ratio
    number = "1" + "".join(rng.sample("0123456789", 10))
    line = FxsLine("us", "201", prefix_plan("X" * len(number)))
    line.on_event(port.OffHook(), 0.0)
    t = 1.0
    for d in number:
        for _ in range(int(d) or 10):
            line.on_event(port.OnHook(), t)
            t += brk * rng.uniform(0.9, 1.1)
            line.on_event(port.OffHook(), t)
            advance(line, t)
            t += make * rng.uniform(0.9, 1.1)
        t += rng.uniform(0.3, 0.8)
        advance(line, t)
    advance(line, t + 1.0)
    out = drain(line)
    assert out[-1] == ev.Setup(caller="201", caller_name="", callee=number, codecs=G711)
    assert line.state is FxsState.CALLING


def test_pulse_break_too_long_is_not_a_pulse():
    """A 120 ms break (outside 40-80 ms, below the flash window) is neither pulse nor digit."""
    line = lifted()
    drain(line)
    for i in range(3):
        line.on_event(port.OnHook(), 1.0 + i * 0.2)
        line.on_event(port.OffHook(), 1.12 + i * 0.2)
    advance(line, 3.0)
    assert line.number == "" and drain(line) == []


def test_an_open_ended_number_is_dialled_at_the_inter_digit_timeout():
    # "0" then any digits: the plan cannot know when an outside number ends, so the phone's
    # pause says it (as on every ATA); an incomplete number still gets congestion
    def plan(number: str, final: bool = False):
        if not number.startswith("0"):
            return False
        return len(number) >= 3 if final else None
    line = FxsLine("us", "201", plan)
    line.on_event(port.OffHook(), 0.0)
    for i, d in enumerate("012345"):
        line.digit(d, 1.0 + i * 0.2)
    drain(line)
    assert line.state is FxsState.DIALING
    line.handle_timer(2.0 + FxsConfig().inter_digit_timeout)
    out = drain(line)
    assert line.state is FxsState.CALLING
    assert [o.callee for o in out if isinstance(o, ev.Setup)] == ["012345"]


# --- call waiting -----------------------------------------------------------------------------

BOB = CallerId(number="5550002", name="BOB")
BEEP = [port.PlayTone("call_waiting"), port.StopTone()]   # one burst


def answered_incoming(region: str = "us") -> FxsLine:
    """The phone was rung and answered at t=5: the active call is incoming."""
    line = FxsLine(region, "201", PLAN)
    line.ring(CallerId(number="5550001"), 0.0)
    line.on_event(port.OffHook(), 5.0)
    drain(line)
    return line


def waiting(region: str = "us") -> FxsLine:
    line = answered_incoming(region)
    line.handle_call_event(ev.Setup(caller="5550002", caller_name="BOB", callee="201",
                                    codecs=G711), 10.0)
    return line


def test_a_second_call_while_talking_gets_call_waiting_bursts_not_rings():
    line = waiting()
    assert drain(line) == [port.PlayTone("call_waiting")]
    assert line.state is FxsState.CONNECTED and line.other is not None and not line.other.held
    advance(line, 10.29)
    assert drain(line) == []
    advance(line, 10.3)                      # US: 300 ms of 440 Hz ...
    assert drain(line) == [port.StopTone()]
    advance(line, 19.99)
    assert drain(line) == []
    advance(line, 20.3)                      # ... every 10 s
    assert drain(line) == BEEP
    line.digit("5", 21.0)                    # the conversation goes on meanwhile
    assert drain(line) == [ev.Digit("5")]
    assert not line.wait(BOB, 22.0)          # a third call: busy


def test_uk_call_waiting_cadence():
    line = waiting("uk")
    drain(line)
    advance(line, 10.1)
    assert drain(line) == [port.StopTone()]  # BT: 100 ms ...
    advance(line, 14.1)
    assert drain(line) == [port.PlayTone("call_waiting")]   # ... every 4.1 s


def test_flash_answers_the_waiting_call_and_each_flash_swaps():
    line = waiting()
    drain(line)
    advance(line, 11.0)
    assert drain(line) == [port.StopTone()]
    line.on_event(port.OnHook(), 11.0)
    line.on_event(port.OffHook(), 11.5)
    advance(line, 12.0)
    # the first call held, then the waiting one answered: events after SwapCalls are about it
    assert drain(line) == [ev.Hold("sendonly"), SwapCalls(), ev.Answer(G711)]
    assert line.state is FxsState.CONNECTED and line.other is not None and line.other.held
    assert line.get_timer() is None          # no more bursts
    line.on_event(port.HookFlash(), 20.0)
    assert drain(line) == [ev.Hold("sendonly"), SwapCalls(), ev.Hold("sendrecv")]
    line.on_event(port.HookFlash(), 30.0)
    assert drain(line) == [ev.Hold("sendonly"), SwapCalls(), ev.Hold("sendrecv")]
    assert line.state is FxsState.CONNECTED


def test_flash_during_a_burst_cuts_it():
    line = waiting()
    line.on_event(port.HookFlash(), 10.1)
    assert drain(line) == [port.PlayTone("call_waiting"), port.StopTone(), ev.Hold("sendonly"),
                           SwapCalls(), ev.Answer(G711)]


def test_the_waiting_caller_gives_up_and_nothing_else_changes():
    line = waiting()
    drain(line)
    line.handle_call_event(ev.Release("cancel"), 10.1, other=True)
    assert drain(line) == [port.StopTone()]
    assert line.other is None and line.state is FxsState.CONNECTED and line.get_timer() is None
    line.on_event(port.HookFlash(), 12.0)    # a flash is a transfer again
    assert drain(line) == FLASHED
    # released between bursts: no StopTone needed
    line = waiting()
    advance(line, 11.0)
    drain(line)
    line.handle_call_event(ev.Release("no-answer"), 12.0, other=True)
    assert drain(line) == [] and line.get_timer() is None


def test_hang_up_with_a_held_call_rings_the_phone_back_and_lifting_resumes_it():
    line = waiting()
    line.on_event(port.HookFlash(), 11.0)    # talking to the second caller, the first held
    drain(line)
    line.on_event(port.OnHook(), 20.0)
    advance(line, 22.0)
    # the active call ends (the phone was rung for it), then the phone rings for the held one
    assert drain(line) == [ev.Release("callee-hangup"), SwapCalls(), port.Ring((2.0, 4.0))]
    assert line.state is FxsState.RINGING and line.other is None
    line.on_event(port.OffHook(), 25.0)
    assert drain(line) == [port.StopRing(), ev.Hold("sendrecv")]
    assert line.state is FxsState.CONNECTED
    line.on_event(port.OnHook(), 30.0)
    advance(line, 32.0)
    assert drain(line) == [ev.Release("callee-hangup")]
    assert line.state is FxsState.IDLE


def test_a_recall_not_answered_releases_the_held_call():
    line = waiting()
    line.on_event(port.HookFlash(), 11.0)
    line.on_event(port.OnHook(), 20.0)
    advance(line, 22.0)
    drain(line)
    advance(line, 21.1 + FxsConfig().recall_timeout)
    assert drain(line) == [port.StopRing(), ev.Release("callee-hangup")]
    assert line.state is FxsState.IDLE and line.get_timer() is None


def test_hang_up_with_a_waiting_call_rings_for_it_with_caller_id():
    line = waiting()
    advance(line, 11.0)
    drain(line)
    line.on_event(port.OnHook(), 12.0)
    advance(line, 14.0)
    assert drain(line) == [ev.Release("callee-hangup"), SwapCalls(), port.Ring((2.0, 4.0))]
    advance(line, 20.0)
    assert drain(line) == [port.SendCallerId(BOB, before_ring=False)]
    line.on_event(port.OffHook(), 21.0)
    assert drain(line) == [port.StopRing(), ev.Answer(G711)]   # an ordinary answer


def test_far_end_of_the_active_call_hangs_up_then_flash_takes_the_other():
    line = waiting()
    line.on_event(port.HookFlash(), 11.0)    # second caller active, first held
    drain(line)
    line.handle_call_event(ev.Release("caller-hangup"), 15.0)
    assert drain(line) == []                 # silence, no busy tone
    assert line.state is FxsState.LOCKOUT
    line.on_event(port.HookFlash(), 16.0)
    assert drain(line) == [SwapCalls(), ev.Hold("sendrecv")]   # nothing left to hold
    assert line.state is FxsState.CONNECTED and line.other is None


def test_the_held_party_hangs_up():
    line = waiting()
    line.on_event(port.HookFlash(), 11.0)
    drain(line)
    line.handle_call_event(ev.Release("caller-hangup"), 15.0, other=True)
    assert drain(line) == [] and line.other is None
    line.on_event(port.OnHook(), 20.0)
    advance(line, 22.0)
    assert drain(line) == [ev.Release("callee-hangup")] and line.state is FxsState.IDLE


def test_no_call_waiting_while_dialling_a_transfer_ringing_or_when_turned_off():
    line = connected()
    line.on_event(port.HookFlash(), 5.0)     # dial tone for a transfer
    assert not line.wait(BOB, 6.0)
    line = FxsLine("us", "201", PLAN)
    line.ring(CallerId(number="5550001"), 0.0)
    assert not line.wait(BOB, 1.0)
    line = FxsLine("us", "201", PLAN, config=FxsConfig(call_waiting=False))
    line.ring(CallerId(number="5550001"), 0.0)
    line.on_event(port.OffHook(), 1.0)
    drain(line)
    assert not line.wait(BOB, 2.0) and drain(line) == []


def test_call_waiting_on_a_call_the_phone_made():
    line = connected()                       # the phone dialled 105
    line.handle_call_event(ev.Setup(caller="107", caller_name="", callee="201", codecs=G711), 3.0)
    line.on_event(port.HookFlash(), 4.0)
    assert drain(line) == [port.PlayTone("call_waiting"), port.StopTone(), ev.Hold("sendonly"),
                           SwapCalls(), ev.Answer(G711)]
    line.on_event(port.OnHook(), 5.0)
    advance(line, 7.0)
    # the call answered by the flash was incoming; the recalled one was the phone's own
    assert drain(line) == [ev.Release("callee-hangup"), SwapCalls(), port.Ring((2.0, 4.0))]
    line.on_event(port.OffHook(), 8.0)
    line.on_event(port.OnHook(), 9.0)
    advance(line, 11.0)
    assert drain(line) == [port.StopRing(), ev.Hold("sendrecv"), ev.Release("caller-hangup")]
