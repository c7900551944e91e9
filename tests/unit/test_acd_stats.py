"""Statistics from a queue event log, against numbers worked out by hand."""

from __future__ import annotations

import random

import pytest

from firmware.acd.events import EventLog, Kind, QueueEvent
from firmware.acd.queue import Member, Overflow, Queue, QueueConfig, RingAgents
from firmware.acd.stats import AgentStats, agent_stats, queue_stats

K = Kind


def ev(t: float, kind: Kind, call: str = "", agent: str = "", **kw: object) -> QueueEvent:
    return QueueEvent(t, "sales", kind, call, agent, **kw)  # type: ignore[arg-type]


def hand_log() -> EventLog:
    log = EventLog()
    for e in [
        ev(0, K.LOGIN, agent="a"), ev(0, K.LOGIN, agent="b"),
        ev(100, K.ENTER, "c1", position=1, reason="555"),
        ev(110, K.CONNECT, "c1", "a", wait=10),
        ev(200, K.ENTER, "c2", position=1),
        ev(230, K.RING_NO_ANSWER, "c2", "b", wait=15),
        ev(240, K.CONNECT, "c2", "b", wait=40),
        ev(300, K.COMPLETE, "c1", "a", talk=190, wrapup=10),
        ev(400, K.ENTER, "c3", position=1),
        ev(460, K.ABANDON, "c3", wait=60, position=1),
        ev(500, K.PAUSE, agent="a", reason="lunch"),
        ev(540, K.TRANSFER, "c2", "b", talk=300, wrapup=10, reason="201"),
        ev(1100, K.UNPAUSE, agent="a"),
        ev(3000, K.LOGIN, agent="c"), ev(3000, K.PAUSE, agent="c", reason="training"),
        ev(3500, K.ENTER, "c4", position=1),
        ev(3530, K.CALLBACK, "c4", wait=30, reason="requested"),
        ev(3700, K.CALLBACK, "c4", "a", reason="placed"),
        ev(3705, K.CALLBACK, "c4", "a", reason="answered"),
        ev(3705, K.CONNECT, "c4", "a", wait=205),
        ev(3805, K.COMPLETE, "c4", "a", talk=100, wrapup=10),
        ev(3900, K.ENTER, "c5", position=1),
        ev(3960, K.OVERFLOW, "c5", wait=60, reason="timeout"),
        ev(4000, K.LOGOUT, agent="b"),
    ]:
        log.append(e)
    return log


def test_queue_stats_per_hour() -> None:
    st = queue_stats(hand_log(), period=3600, service_level=20)
    assert set(st) == {("sales", 0), ("sales", 3600)}
    h0 = st[("sales", 0)]
    # c1..c4 entered in the first hour (c4 is answered in the second, counted with its entry)
    assert (h0.offered, h0.answered, h0.abandoned, h0.overflowed) == (4, 3, 1, 0)
    assert h0.answered_within_sl == 1 and h0.service_level == 0.25  # only c1 (10 s <= 20 s)
    assert h0.asa == 85  # (10 + 40 + 205) / 3
    assert h0.average_talk == pytest.approx(590 / 3)  # 190 + 300 + 100
    assert h0.aht == pytest.approx(620 / 3)  # plus 3 x 10 s wrap-up
    assert h0.abandon_waits == [60] and h0.average_abandon_wait == 60
    assert h0.longest_wait == 205
    assert (h0.callbacks_requested, h0.callbacks_answered, h0.callbacks_failed) == (1, 1, 0)
    assert h0.transferred == 1
    h1 = st[("sales", 3600)]
    assert (h1.offered, h1.answered, h1.overflowed, h1.longest_wait) == (1, 0, 1, 60)
    assert h1.service_level == 0.0 and h1.asa is None and h1.aht is None


def test_queue_stats_whole_log_and_per_day() -> None:
    whole = queue_stats(hand_log())[("sales", None)]
    assert (whole.offered, whole.answered, whole.abandoned, whole.overflowed) == (5, 3, 1, 1)
    assert whole.service_level == 0.2
    day = queue_stats(hand_log(), period=86400)
    assert list(day) == [("sales", 0)] and day[("sales", 0)].offered == 5


def test_agent_time_by_state_and_reason_split_at_the_hour() -> None:
    st = agent_stats(hand_log(), until=4000, period=3600)
    # a: idle 0-110, talk 110-300, wrap 300-310, idle 310-500, lunch 500-1100, idle 1100-3600
    assert st[("sales", "a", 0)] == AgentStats(
        answered=1, talk_time=190, wrapup_time=10, idle_time=110 + 190 + 2500,
        pause_time={"lunch": 600})
    # then idle 3600-3700, on the callback 3700-3805 (5 s of it dialling the caller),
    # wrap to 3815, idle to 4000
    assert st[("sales", "a", 3600)] == AgentStats(
        answered=1, talk_time=105, wrapup_time=10, idle_time=100 + 185)
    # b: idle 0-240 (rang and missed at 230), talk 240-540 then transferred, wrap to 550
    b0 = st[("sales", "b", 0)]
    assert b0 == AgentStats(answered=1, missed=1, transferred=1, talk_time=300,
                            wrapup_time=10, idle_time=240 + 3050)
    assert b0.offered == 2
    assert st[("sales", "b", 3600)].idle_time == 400  # logged out at 4000
    # c: paused for training 3000-4000 across the hour boundary
    assert st[("sales", "c", 0)].pause_time == {"training": 600}
    assert st[("sales", "c", 3600)].pause_time == {"training": 400}
    # every logged-in second is accounted for exactly once
    a_total = sum(s.talk_time + s.wrapup_time + s.idle_time + sum(s.pause_time.values())
                  for (q, ag, _), s in st.items() if ag == "a")
    assert a_total == 4000


def test_log_is_append_only_in_time_order() -> None:
    log = hand_log()
    with pytest.raises(ValueError):
        log.append(ev(10, K.LOGIN, agent="z"))
    assert len(log.since(len(log) - 1)) == 1


def test_stats_agree_with_a_simulated_queue() -> None:
    """Drive a queue with random callers and agents; the log's figures match the script's."""
    rng = random.Random(1234)
    log = EventLog()
    q = Queue(QueueConfig("sales", strategy="leastrecent", wrapup=10, max_wait=300,
                          overflow="vm", announce_every=45,
                          members=(Member("a"), Member("b"), Member("c"))),
              now=0.0, log=log, rng=random.Random(1))
    ends: dict[str, float] = {}
    patience = {}
    mine = {"offered": 0, "answered": 0, "abandoned": 0, "overflow": 0}
    t = 0
    next_call = 0
    while t < 7200:
        t += 1
        if t >= next_call and t < 6000:
            cid = f"c{t}"
            patience[cid] = t + rng.randint(20, 400)
            mine["offered"] += 1
            q.caller_joined(cid, str(rng.randint(1, 50)), rng.choice([0, 0, 0, 1]), now=t)
            next_call = t + rng.randint(5, 120)
        for cid, end in list(ends.items()):
            if end <= t:
                del ends[cid]
                q.call_ended(cid, now=t)
        for cid in q.waiting():
            if patience.get(cid, 1e9) <= t:
                mine["abandoned"] += 1
                q.caller_left(cid, now=t)
        timer = q.get_timer()
        if timer is not None and timer <= t:
            q.handle_timer(t)
        while (act := q.next_action()) is not None:
            if isinstance(act, RingAgents):
                if rng.random() < 0.8:
                    q.agent_answered(act.agents[0], act.call_id, now=t)
                    mine["answered"] += 1
                    ends[act.call_id] = t + rng.randint(30, 600)
            elif isinstance(act, Overflow):
                mine["overflow"] += 1
    whole = queue_stats(log)[("sales", None)]
    still = len(q.waiting())
    assert (whole.offered, whole.answered, whole.abandoned, whole.overflowed) == (
        mine["offered"], mine["answered"], mine["abandoned"], mine["overflow"])
    assert whole.offered == whole.answered + whole.abandoned + whole.overflowed + still
    assert whole.offered > 50 and whole.answered > 20
    agents = agent_stats(log, until=7200)
    assert sum(s.answered for s in agents.values()) == whole.answered
    for s in agents.values():  # static members logged in all along: 7200 s each
        assert s.talk_time + s.wrapup_time + s.idle_time + sum(s.pause_time.values()) == 7200
    # 20 % of offers go unanswered: some agent missed 3 in a row and was paused for it
    paused = {e.agent for e in log if e.kind is Kind.PAUSE}
    assert paused and all(set(agents[("sales", a, None)].pause_time) == {"autopause"}
                          for a in paused)
