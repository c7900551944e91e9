"""The guided line test against simulated exchanges of several countries: the settings it
proposes are the ones the exchange was built with."""

from __future__ import annotations

import pytest

from board import port
from board.cadence import cadence_matches
from board.driver import decode
from board.linetest import Finished, LineTest, LineTestConfig, LineTestReport, Phase, Prompt
from board.regions import REGIONS
from board.sim import CoConfig, SimHat
from firmware.media.tones import TONES

PORT_COMMANDS = (port.Seize, port.Release, port.SendDigit)


def run(region: str, co: CoConfig, *, seed: int = 0, inbound: bool = True,
        far_tone: bool = True, hang_up: bool = True, hold: float = 6.0, limit: float = 240.0
        ) -> tuple[LineTestReport, SimHat, list[Prompt]]:
    """Run the test on a simulated line; the harness plays the installer: it calls in when
    asked, and when its phone rings it answers, presses a key, stays silent and hangs up."""
    hat = SimHat(fxs=0, fxo=1, region=region, co_config=co, seed=seed)
    exch, p = hat.co("fxo1"), hat.port("fxo1")
    lt = LineTest(LineTestConfig("5551234", inbound=inbound))
    prompts: list[Prompt] = []
    done: list[LineTestReport] = []
    timer = [None]
    person = {"call_in_at": None, "hang_up_at": None, "answered": None}

    def pump() -> None:
        while (o := lt.next_output()) is not None:
            if isinstance(o, PORT_COMMANDS):
                p.send(o)
            elif isinstance(o, Prompt):
                prompts.append(o)
                if o.kind == "call-in":
                    person["call_in_at"] = hat.now + 3.0
            elif isinstance(o, Finished):
                done.append(o.report)
        if timer[0] is not None:
            timer[0].cancel()
        when = lt.get_timer()
        timer[0] = hat.clock.call_at(when, fire) if when is not None else None

    def fire() -> None:
        lt.handle_timer(hat.now)
        pump()

    p.on_event = lambda e, now: (lt.on_event(e, now), pump())
    hat.on_audio = lambda q, f: (lt.on_audio(decode(q.law, f), hat.now), pump())
    lt.start(hat.now)
    pump()
    while not done and hat.now < limit:
        hat.tick()
        if person["call_in_at"] is not None and hat.now >= person["call_in_at"]:
            person["call_in_at"] = None
            exch.ring("01632960123", "INSTALLER" if REGIONS[region].cid_standard != "dtmf" else None)
        if exch.state == "connected" and lt.phase is Phase.CALL and person["answered"] is None:
            person["answered"] = hat.now
            if far_tone:
                exch.far_dtmf("5")
            if hang_up:
                person["hang_up_at"] = hat.now + hold
        if person["hang_up_at"] is not None and hat.now >= person["hang_up_at"]:
            person["hang_up_at"] = None
            exch.hangup()
    assert done, f"the line test did not finish (phase {lt.phase})"
    assert exch.state == "idle" and not exch.box_off_hook
    return done[0], hat, prompts


CASES = {
    # region: (exchange behaviour, expected disconnect tone name)
    "us": (CoConfig(answer_polarity=True, hangup_polarity=False, loop_drop_ms=300), "busy"),
    "uk": (CoConfig(answer_polarity=False, hangup_polarity=True, noise_dbm0=-50.0), "busy"),
    "de": (CoConfig(answer_polarity=False, hangup_polarity=False, hangup_tone="congestion"),
           "congestion"),
    "cn": (CoConfig(answer_polarity=True, hangup_polarity=True), "busy"),
    "in": (CoConfig(), "busy"),
}


@pytest.mark.parametrize("region", list(CASES))
def test_line_test_proposes_the_regions_settings(region):
    co, tone_name = CASES[region]
    report, hat, prompts = run(region, co)
    reg = REGIONS[region]
    zone = TONES[reg.tone_zone]
    s = report.settings
    assert [p.kind for p in prompts] == ["call-in", "answer-then-hang-up"]
    assert report.region == region, report.text()
    assert (s["cid_standard"], s["cid_start"]) == (reg.cid_standard, reg.cid_start), report.text()
    assert s["cid_format"] == reg.cid_format
    assert report.caller_id is not None and report.caller_id.number == "01632960123"
    assert cadence_matches(report.ring_cadence, [round(v * 1000) for v in reg.ring_cadence],
                           tol=0.1)
    assert report.disconnect_tone_name == tone_name
    assert cadence_matches(s["busy_cadence_ms"], zone[tone_name].cadence, tol=0.1)
    assert all(abs(f - w) <= 15 for f, w in zip(s["busy_freqs_hz"], sorted(zone[tone_name].freqs)))
    hangup_pol = co.hangup_polarity if co.hangup_polarity is not None else reg.disconnect_polarity
    assert s["answer_polarity"] == co.answer_polarity, report.text()
    assert s["disconnect_polarity"] == hangup_pol, report.text()
    assert s["loop_drop_ms"] == co.loop_drop_ms
    assert s["disconnect_tones"] == ("busy", "congestion")
    assert report.far_level_dbm0 == pytest.approx(-4.0, abs=1.5)    # the key: 2 x -7 dBm0
    assert report.dial_tone is not None and report.dial_tone.cadence == ()
    assert abs(report.line_loss_db) < 1.5 and s["rx_gain_db"] == 0.0
    text = report.text()
    assert f"Country: {region.upper()}" in text and "Proposed settings:" in text


def test_japan_without_caller_id_and_an_attenuated_line():
    """A JP line without Number Display (no CAR, no caller ID); the dial tone comes in 6 dB
    low: a receive gain is proposed."""
    co = CoConfig(answer_polarity=False, level_db=-6.0, number_display=False)
    report, hat, _ = run("jp", co)
    assert report.cid_standard is None and "none heard" in report.text()
    assert report.region == "jp", report.text()
    assert report.line_loss_db == pytest.approx(6.0, abs=1.0)
    assert report.settings["rx_gain_db"] == pytest.approx(6.0, abs=1.0)
    assert report.settings["disconnect_polarity"] is True       # the JP default
    assert report.far_level_dbm0 == pytest.approx(-10.0, abs=1.5)


def test_japan_number_display_is_answered_and_recognised():
    """A JP line with Number Display rings CAR first: the test answers it as a Number Display
    phone would, hears NTT's message, and times the ringing that follows, not the CAR bursts."""
    report, hat, _ = run("jp", CoConfig(answer_polarity=False))
    reg = REGIONS["jp"]
    log = [what for _, what in hat.co("fxo1").log]
    assert log[:5] == ["ring", "car", "primary response", "caller-id", "caller-id received"], log
    assert (report.cid_standard, report.cid_format, report.cid_start) == \
        (reg.cid_standard, reg.cid_format, reg.cid_start), report.text()
    assert report.caller_id is not None and report.caller_id.number == "01632960123"
    assert cadence_matches(report.ring_cadence, [round(v * 1000) for v in reg.ring_cadence],
                           tol=0.1), report.text()
    assert report.region == "jp", report.text()
    assert "NTT Number Display" in report.text()


def test_outbound_only_and_a_far_end_that_never_hangs_up():
    report, hat, prompts = run("us", CoConfig(), inbound=False, hang_up=False, limit=200.0)
    assert [p.kind for p in prompts] == ["answer-then-hang-up"]
    assert report.caller_id is None and report.ring_cadence is None
    assert any("did not clear" in n for n in report.notes)
    assert report.disconnect_tone is None and report.settings["disconnect_tones"] == ()


def test_bad_config_and_double_start():
    with pytest.raises(ValueError):
        LineTestConfig("555-1234")
    with pytest.raises(ValueError):
        LineTestConfig("")
    lt = LineTest(LineTestConfig("123"))
    lt.start(0.0)
    with pytest.raises(RuntimeError):
        lt.start(1.0)


def test_quick_hang_up_after_the_key_press_still_splits_answer_and_clear():
    """Reversal on answer and on clear, the person hangs up 1.5 s after answering: the key press
    says which reversal was which."""
    co = CoConfig(answer_polarity=True, hangup_polarity=True)
    report, _, _ = run("us", co, inbound=False, hold=1.5)
    s = report.settings
    assert (s["answer_polarity"], s["disconnect_polarity"]) == (True, True), report.text()
    assert s["busy_cadence_ms"] is not None


def test_without_a_key_press_a_long_silence_marks_the_answer():
    co = CoConfig(answer_polarity=True, hangup_polarity=False, hangup_tone="congestion")
    report, _, _ = run("de", co, inbound=False, far_tone=False, hold=9.0)
    s = report.settings
    assert (s["answer_polarity"], s["disconnect_polarity"]) == (True, False), report.text()
    assert report.disconnect_tone_name == "congestion" and report.far_level_dbm0 is None
    assert report.region == "de"
