"""A small simulated call-centre day (issue 4): 60 callers through three queues to eight sipp
agents (ring delays, calls not answered, random handle times, impatient callers, callers who ask
for a callback, dynamic agents who log in by *51, a pause with a reason), then the box's CDR,
queue log and statistics are checked call by call against what the sipps logged
(tests/peers/simday.py). The full day is `scripts/simday.py --calls 500` (docs/simday.md).

The tests after the third are minimal repros of runtime bugs the day found, fixed since and kept
as regression tests: wrap-up across queues, a callback placed only once its caller has hung up,
and an agent answering a callback being busy for the other queues.

The second test feeds the same day's collected data, altered, back to the checks: each kind of
disagreement must be caught, so a green day means the box agreed, not that nothing looked.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from tests.e2e.box import Box
from tests.peers.netutil import LOOPBACK
from tests.peers.simday import (AGENT_XML, AGENTS, CALLBACK_XML, CALLER_XML, DTMF_PCAP, NEVER_MS, SCENARIO_KEYS, AgentCall,
                                CallerCall, DayConfig, DayResult, Outcome, _auth, _write_csv, outcome_of, parse_agent,
                                parse_callers, reanalyse, run_day, write_dtmf_pcap)
from tests.peers.sipp import run_sipp, start_sipp

CALLS = 60

# 60 calls and eight sipp agents load a 2-core machine: scripts/test runs this module by itself
pytestmark = pytest.mark.alone


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> DayResult:
    cfg = DayConfig(calls=CALLS, seed=3, rate=3.0, callback=0.1, impatient=0.4, patience=(1.0, 15.0))
    return run_day(cfg, tmp_path_factory.mktemp("simday"))


def test_a_small_day_agrees_with_the_script_log(day: DayResult) -> None:
    print(day.report())
    assert day.ok, day.failures() + "\n\n" + day.report()
    kinds = {o.kind for o in day.outcomes.values()}
    # The day exercised what it is about: calls connected and callers who gave up waiting.
    assert {"connected", "abandoned"} <= kinds, kinds
    assert sum(r["missed"] for r in day.stats["agents"]) > 0, "no offer rang out (ring-no-answer untested)"
    assert day.peak_rss_kb and day.peak_rss_kb > 0


def _failed(res: DayResult) -> set[str]:
    return {c.name for c in res.checks if not c.ok}


def test_the_checks_catch_each_disagreement(day: DayResult) -> None:
    assert day.raw, "the day kept no inputs"

    def again(mutate) -> set[str]:
        raw = copy.deepcopy(day.raw)
        mutate(raw)
        return _failed(reanalyse(day.cfg, day.plan, day.work, raw))

    assert again(lambda raw: None) == _failed(day)

    # A caller's CDR row lost, or written twice.
    sip_ids = {c.call_id for c in day.callers.values()}

    def a_callers_row(raw) -> int:
        return next(i for i, r in enumerate(raw["cdr"]) if r["call_id"] in sip_ids)

    def drop_row(raw):
        raw["cdr"].pop(a_callers_row(raw))
    assert "every call placed has exactly one CDR row" in again(drop_row)

    def twice(raw):
        raw["cdr"].append(dict(raw["cdr"][a_callers_row(raw)]))
    assert "every call placed has exactly one CDR row" in again(twice)

    # The queue log credits a call to another agent than the one who talked.
    def other_agent(raw):
        ev = next(e for e in raw["qlog"] if e["kind"] == "CONNECT")
        ev["agent"] = next(a for a in AGENTS if a != ev["agent"])
    failed = again(other_agent)
    assert any(f.startswith("per call, the box's outcome") for f in failed), failed

    # Statistics that count one answer too many, or lose an abandoned caller.
    def one_more(raw):
        raw["stats"]["queues"][0]["answered"] += 1
    failed = again(one_more)
    q = day.stats["queues"][0]["queue"]
    assert any(f.startswith(f"{q}: answered == script's connected") for f in failed), failed
    assert f"{q}: offered == answered + abandoned + overflowed + callbacks failed" in failed, failed

    def lost_abandon(raw):
        ev = next(e for e in raw["qlog"] if e["kind"] == "ABANDON")
        raw["qlog"].remove(ev)
    failed = again(lost_abandon)
    assert any(f.startswith("each call's queue log") for f in failed), failed

    # A call still up at the end; an INTERRUPTED row.
    def left(raw):
        raw["calls_left"] = [{"id": "x"}]
    assert "no call left in /api/calls at the end" in again(left)

    def interrupted(raw):
        raw["cdr"][a_callers_row(raw)]["disposition"] = "INTERRUPTED"
    assert "no CDR row INTERRUPTED or left in progress" in again(interrupted)

    # An agent's *51 lost from the queue log.
    def lost_login(raw):
        ev = next(e for e in raw["qlog"] if e["kind"] == "LOGIN" and e["agent"] == "2007")
        raw["qlog"].remove(ev)
    assert any(f.startswith("the queue log has each agent's login") for f in again(lost_login))

    # The pause the box counted is not the one the script made.
    def short_pause(raw):
        raw["pause_log"]["unpause"] -= 5
    failed = again(short_pause)
    assert any("pause" in f for f in failed), failed


def test_outcome_from_both_sides_of_a_call() -> None:
    """The script's verdict on a caller from the caller's and the agents' logs (no box)."""
    caller = CallerCall(1, "c1", "3001", "700", placed=100.0, answered=100.1, bye_rx=110.0)
    talked = AgentCall("2001", "a1", "3001", invited=101.0, answered=102.0, acked=102.01, bye_tx=109.99)
    late = AgentCall("2002", "a2", "3001", invited=101.0, answered=102.05, acked=102.06, bye_rx=102.1)
    rang = AgentCall("2003", "a3", "3001", invited=101.0, cancelled=102.01)
    o = outcome_of(caller, [rang, late, talked])
    assert (o.kind, o.agent) == ("connected", "2001") and o.asa == pytest.approx(1.9) \
        and o.talk == pytest.approx(7.99)
    assert outcome_of(caller, [rang]).kind == "overflowed"  # the box hung up, nobody answered
    gave_up = CallerCall(2, "c2", "3001", "700", placed=100.0, answered=100.1, bye_tx=105.0)
    assert outcome_of(gave_up, [rang]).kind == "abandoned"
    race = AgentCall("2001", "a4", "3001", invited=103.0, answered=104.8, acked=104.81, bye_rx=105.01)
    assert outcome_of(gave_up, [race]) == Outcome("ambiguous", "2001", detail=outcome_of(gave_up, [race]).detail)
    hung_up_talking = AgentCall("2001", "a5", "3001", invited=101.0, answered=102.0, acked=102.01, bye_rx=105.01)
    assert outcome_of(gave_up, [hung_up_talking]).kind == "connected"
    assert outcome_of(CallerCall(3, "c3", "3001", "700", placed=1.0), []).kind == "failed"


# -- minimal repros of runtime bugs the day found (fixed; regression tests now) -----------------

def _small_box(tmp_path: Path, extensions: tuple[str, ...], queues: list[dict]) -> Box:
    box = Box(tmp_path / "box", extensions=extensions, config={"queues": queues})
    box.setup()
    box.start()
    return box


def _phone(box: Box, tmp_path: Path, ext: str, lines: list[list[int]]):
    """A sipp phone (simday_agent.xml: ring ms, talk ms per offered call) registered as `ext`."""
    proc = start_sipp(AGENT_XML, None, work_dir=tmp_path, name=f"phone-{ext}", keys=SCENARIO_KEYS[AGENT_XML],
                      inf=_write_csv(tmp_path / f"phone-{ext}" / "offers.csv", lines),
                      args=["-trace_logs", "-log_file", str(tmp_path / f"phone-{ext}" / "sipp.log")])
    reg = run_sipp("register.xml", box.sip_addr, work_dir=tmp_path, name=f"register-{ext}", user=ext,
                   password=box.secret(ext), timeout=15,
                   keys={"user": ext, "contact_host": LOOPBACK, "contact_port": proc.port, "expires": 3600})
    if not reg.ok:
        proc.stop()
        raise AssertionError(reg.summary())
    return proc


def _caller(box: Box, tmp_path: Path, name: str, ext: str, number: str, delay_ms: int, press_ms: int | None = None):
    """One caller in the background (simday_caller.xml, or simday_callback.xml pressing 5 then 1)."""
    scenario = CALLER_XML if press_ms is None else CALLBACK_XML
    if press_ms is not None:
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
        write_dtmf_pcap(tmp_path / name / DTMF_PCAP, [(0.2, "5"), (1.2, "1")], seconds=2.0)
    row = [ext, _auth(box, ext), number, delay_ms, 60_000, 0] + ([] if press_ms is None else [press_ms])
    return start_sipp(scenario, box.sip_addr, work_dir=tmp_path, name=name, calls=1, keys=SCENARIO_KEYS[scenario],
                      inf=_write_csv(tmp_path / name / "calls.csv", [row]),
                      args=["-trace_logs", "-log_file", str(tmp_path / name / "sipp.log")])


def _log(tmp_path: Path, name: str) -> Path:
    return tmp_path / name / "sipp.log"


class WrapUpIgnored(AssertionError):
    """An agent rung by another queue before the wrap-up of the call's queue was over."""


# Found by the simulated day (an agent in two queues rung by the other queue 0.00 s after hanging
# up); fixed in f56c7a3. Kept as the regression test.
def test_wrapup_holds_across_queues(tmp_path: Path) -> None:
    """Agent 2001, a static member of two queues with 5 s wrap-up, talks 2 s with a caller of
    queue 700; a caller of queue 701 waits meanwhile. The agent must not be rung for the second
    caller until 5 s after hanging up on the first."""
    wrapup = 5
    box = _small_box(tmp_path, ("2001", "3001", "3002"), [
        {"id": qid, "number": num, "strategy": "ringall", "members": [{"agent": "2001"}], "wrapup": wrapup,
         "ring_timeout": 10, "retry": 1, "announce_every": 0} for qid, num in (("one", "700"), ("two", "701"))])
    try:
        with _phone(box, tmp_path, "2001", [[300, 2000]] * 4):
            first, second = (_caller(box, tmp_path, "first", "3001", "700", 0),
                             _caller(box, tmp_path, "second", "3002", "701", 500))
            r1, r2 = first.wait(40), second.wait(40)
            assert r1.ok and r2.ok, r1.summary() + r2.summary() + box.log_tail()
    finally:
        box.stop()
    offers = parse_agent("2001", _log(tmp_path, "phone-2001"))
    first_call = next(a for a in offers if a.caller == "3001" and a.acked is not None)
    second_call = next(a for a in offers if a.caller == "3002")
    assert first_call.bye_tx is not None, offers
    gap = second_call.invited - first_call.bye_tx
    if gap < wrapup - 0.2:
        raise WrapUpIgnored(f"agent 2001 rung by queue 701 {gap:.2f} s after hanging up a call of queue 700 "
                            f"(wrap-up {wrapup} s)")


class CallbackTooSoon(AssertionError):
    """The runtime bug test_callback_waits_for_the_caller_to_hang_up shows."""


def test_callback_waits_for_the_caller_to_hang_up(tmp_path: Path) -> None:
    """Agent 2001 talks 1.5 s with caller 3001; caller 4001 waits meanwhile, asks for a callback
    (RFC 4733 '5', then '1') and is told goodbye; the agent becomes free (no wrap-up). The box
    must not ring 4001's phone before 4001's first call has ended."""
    box = _small_box(tmp_path, ("2001", "3001", "4001"), [
        {"id": "one", "number": "700", "strategy": "ringall", "members": [{"agent": "2001"}], "wrapup": 0,
         "ring_timeout": 10, "retry": 1, "announce_every": 0, "callback_key": "5"}])
    try:
        with _phone(box, tmp_path, "2001", [[300, 1500]] * 4), _phone(box, tmp_path, "4001", [[800, NEVER_MS]] * 4):
            first = _caller(box, tmp_path, "first", "3001", "700", 0)
            second = _caller(box, tmp_path, "second", "4001", "700", 300, press_ms=500)
            r1, r2 = first.wait(30), second.wait(30)
            assert r1.ok and r2.ok, r1.summary() + r2.summary() + box.log_tail()
            _until(lambda: any(c.end for c in parse_agent("4001", _log(tmp_path, "phone-4001"))), 20)
    finally:
        box.stop()
    b = parse_callers(_log(tmp_path, "second"))[0]
    calls = parse_agent("4001", _log(tmp_path, "phone-4001"))
    assert b.key is not None and b.bye_rx is not None, b
    assert calls and calls[0].caller == "2001" and calls[0].answered, calls
    early = b.bye_rx - calls[0].invited
    if early > 0:
        raise CallbackTooSoon(f"4001's phone rung for the callback {early:.2f} s before the box hung up 4001's first "
                              f"call (keys at {b.key - b.answered:.2f} s after the queue answered)")


class RungWhileOnCallback(AssertionError):
    """The runtime bug test_callback_agent_is_busy_in_other_queues shows."""


def test_callback_agent_is_busy_in_other_queues(tmp_path: Path) -> None:
    """Agent 2001 serves queues 700 (callback key 5) and 701. Caller 3001 talks with the agent
    on 700 while caller 4001 asks for a callback there; when the agent is free the callback rings
    the agent (answers) and then 4001's phone, which rings 4 s. Caller 3002 joins 701 meanwhile:
    the agent, on the callback, must not be rung for 3002 until that call is over."""
    box = _small_box(tmp_path, ("2001", "3001", "3002", "4001"), [
        {"id": "one", "number": "700", "strategy": "ringall", "members": [{"agent": "2001"}], "wrapup": 0,
         "ring_timeout": 10, "retry": 1, "announce_every": 0, "callback_key": "5"},
        {"id": "two", "number": "701", "strategy": "ringall", "members": [{"agent": "2001"}], "wrapup": 0,
         "ring_timeout": 10, "retry": 1, "announce_every": 0}])
    try:
        with _phone(box, tmp_path, "2001", [[300, 2500], [300, 8000], [300, 1000], [300, 1000]]), \
                _phone(box, tmp_path, "4001", [[4000, NEVER_MS]] * 4):
            first = _caller(box, tmp_path, "first", "3001", "700", 0)
            second = _caller(box, tmp_path, "second", "4001", "700", 300, press_ms=300)
            # the callback is placed once 4001's first call has ended (the goodbye: about 6 s in);
            # its caller's phone then rings 4 s, while 3002 joins queue 701
            third = _caller(box, tmp_path, "third", "3002", "701", 8000)
            results = [p.wait(40) for p in (first, second, third)]
            assert all(r.ok for r in results), "\n".join(r.summary() for r in results) + box.log_tail()
    finally:
        box.stop()
    offers = sorted(parse_agent("2001", _log(tmp_path, "phone-2001")), key=lambda a: a.invited)
    back = next((a for a in offers if a.callback and a.answered is not None), None)
    assert back is not None and back.end is not None, offers
    phone = parse_agent("4001", _log(tmp_path, "phone-4001"))
    assert phone and phone[0].answered is not None and phone[0].answered > back.answered + 2, (phone, back)
    during = [a for a in offers if a.caller == "3002" and back.answered < a.invited < back.end]
    if during:
        raise RungWhileOnCallback(f"agent 2001 rung for 3002 (queue 701) {during[0].invited - back.answered:.2f} s "
                                  f"after answering 4001's callback, {phone[0].answered - during[0].invited:.2f} s "
                                  f"before 4001's phone answered")


def _until(pred, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not pred():
        time.sleep(0.2)
