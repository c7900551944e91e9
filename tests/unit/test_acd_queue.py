"""The ACD queue engine on a fake clock: time is a number passed in, no sleeps, no sockets."""

from __future__ import annotations

import pytest

from firmware.acd.events import Kind
from firmware.acd.queue import (AgentState, Announce, Connect, Member, Overflow, PlaceCallback,
                                Queue, QueueConfig, QueueError, RingAgents, StopRinging)


def drain(q: Queue) -> list[object]:
    out = []
    while (a := q.next_action()) is not None:
        out.append(a)
    return out


def kinds(q: Queue) -> list[tuple[float, str, str, str]]:
    return [(e.time, e.kind.value, e.call_id, e.agent) for e in q.log]


def cfg(**kw: object) -> QueueConfig:
    base: dict[str, object] = dict(name="q", strategy="linear", announce_every=0, wrapup=0,
                                   members=(Member("a"), Member("b")))
    base.update(kw)
    return QueueConfig(**base)  # type: ignore[arg-type]


def connect(q: Queue, call: str, agent: str, now: float, number: str = "") -> None:
    q.caller_joined(call, number or "n" + call, 0, now=now)
    assert drain(q)[-1] == RingAgents(call, (agent,), q.config.ring_timeout)
    q.agent_answered(agent, call, now=now)
    assert drain(q) == [Connect(call, agent)]


def test_ring_all_first_answer_wins_and_the_others_stop() -> None:
    q = Queue(cfg(strategy="ringall", members=(Member("a"), Member("b"), Member("c"))), now=0)
    q.caller_joined("c1", "100", 0, now=0)
    assert drain(q) == [RingAgents("c1", ("a", "b", "c"), 15.0)]
    q.agent_answered("b", "c1", now=4)
    assert drain(q) == [StopRinging("c1", ("a", "c")), Connect("c1", "b")]
    assert q.agents() == {"a": AgentState.IDLE, "b": AgentState.ON_CALL, "c": AgentState.IDLE}
    # an agent on a call is not offered another
    q.caller_joined("c2", "101", 0, now=5)
    assert drain(q) == [RingAgents("c2", ("a", "c"), 15.0)]
    q.agent_answered("b", "c2", now=6)  # b was never offered c2: ignored
    assert drain(q) == []
    with pytest.raises(QueueError):
        q.caller_joined("c1", "100", 0, now=7)


def test_ring_timeout_then_retry_after_the_pause() -> None:
    q = Queue(cfg(ring_timeout=10, retry=5, members=(Member("a"),)), now=0)
    q.caller_joined("c1", "100", 0, now=0)
    assert drain(q) == [RingAgents("c1", ("a",), 10)]
    assert q.get_timer() == 10
    q.handle_timer(9.9)
    assert drain(q) == []
    q.handle_timer(10)
    assert drain(q) == [StopRinging("c1", ("a",))]
    assert q.get_timer() == 15
    q.handle_timer(15)
    assert drain(q) == [RingAgents("c1", ("a",), 10)]
    assert [e.kind for e in q.log if e.call_id] == [Kind.ENTER, Kind.RING_NO_ANSWER]
    assert q.log[-1].wait == 10


def test_declined_offer_goes_to_the_next_agent_after_retry() -> None:
    q = Queue(cfg(retry=2), now=0)
    q.caller_joined("c1", "100", 0, now=0)
    assert drain(q) == [RingAgents("c1", ("a",), 15)]
    q.agent_no_answer("a", "c1", now=1)
    assert drain(q) == []
    q.handle_timer(3)  # linear: a first again (a missed once, max_misses 3)
    assert drain(q) == [RingAgents("c1", ("a",), 15)]


def test_wrap_up_blocks_offers_until_it_ends() -> None:
    q = Queue(cfg(wrapup=30, members=(Member("a"),)), now=0)
    connect(q, "c1", "a", 0)
    q.call_ended("c1", now=10)
    assert q.agent_state("a") is AgentState.WRAP_UP
    q.caller_joined("c2", "101", 0, now=12)
    assert drain(q) == []
    assert q.get_timer() == 40
    q.handle_timer(39.9)
    assert drain(q) == [] and q.agent_state("a") is AgentState.WRAP_UP
    q.handle_timer(40)
    assert drain(q) == [RingAgents("c2", ("a",), 15)]


def test_auto_pause_after_n_misses_in_a_row() -> None:
    q = Queue(cfg(max_misses=2, ring_timeout=10, retry=5), now=0)
    q.caller_joined("c1", "100", 0, now=0)
    assert drain(q) == [RingAgents("c1", ("a",), 10)]
    q.handle_timer(10)
    q.handle_timer(15)
    assert drain(q) == [StopRinging("c1", ("a",)), RingAgents("c1", ("a",), 10)]
    q.handle_timer(25)  # second miss in a row: a is paused
    assert q.agent_state("a") is AgentState.PAUSED
    q.handle_timer(30)
    assert drain(q) == [StopRinging("c1", ("a",)), RingAgents("c1", ("b",), 10)]
    assert [(t, k, c, ag) for t, k, c, ag in kinds(q) if c or k == "PAUSE"] == [
        (0, "ENTER", "c1", ""), (10, "RING_NO_ANSWER", "c1", "a"),
        (25, "RING_NO_ANSWER", "c1", "a"), (25, "PAUSE", "", "a")]
    assert q.log[-1].reason == "autopause"
    # unpausing starts the count again
    q.agent_unpause("a", now=31)
    assert q.agent_state("a") is AgentState.IDLE


def test_answer_resets_the_miss_count() -> None:
    q = Queue(cfg(max_misses=2, ring_timeout=10, retry=0, members=(Member("a"),)), now=0)
    q.caller_joined("c1", "100", 0, now=0)
    q.handle_timer(10)  # miss 1, re-offered at once (retry 0)
    q.agent_answered("a", "c1", now=12)
    q.call_ended("c1", now=20)
    q.caller_joined("c2", "101", 0, now=21)
    q.handle_timer(31)  # miss 1 again, not 2
    assert q.agent_state("a") is AgentState.RINGING


def test_pause_with_reason_logout_and_dynamic_login() -> None:
    q = Queue(cfg(members=(Member("a"),)), now=0)
    q.agent_pause("a", now=1, reason="lunch")
    q.caller_joined("c1", "100", 0, now=2)
    assert drain(q) == []
    q.agent_login("d", now=3)  # a dynamic agent
    assert drain(q) == [RingAgents("c1", ("d",), 15)]
    q.agent_logout("d", now=4)  # logging out while rung withdraws the offer
    assert drain(q) == [StopRinging("c1", ("d",))]
    with pytest.raises(QueueError) as exc:
        q.agent_logout("a", now=5)
    assert exc.value.prompt == "agent-static"
    with pytest.raises(QueueError):
        q.agent_pause("nobody", now=5)
    q.agent_unpause("a", now=6)
    assert drain(q) == [RingAgents("c1", ("a",), 15)]
    assert [(e.kind.value, e.agent, e.reason) for e in q.log if not e.call_id] == [
        ("LOGIN", "a", ""), ("PAUSE", "a", "lunch"), ("LOGIN", "d", ""), ("LOGOUT", "d", ""),
        ("UNPAUSE", "a", "")]


def test_agent_busy_elsewhere_is_not_offered() -> None:
    q = Queue(cfg(), now=0)
    q.agent_in_use("a", True, now=0)
    q.caller_joined("c1", "100", 0, now=1)
    assert drain(q) == [RingAgents("c1", ("b",), 15)]
    assert q.agent_state("a") is AgentState.ON_CALL


def test_sticky_agent_is_offered_first_when_free() -> None:
    q = Queue(cfg(sticky_seconds=300), now=0)
    connect(q, "x", "a", 0, number="900")  # keeps a busy
    connect(q, "c1", "b", 1, number="555")  # 555 speaks with b
    q.call_ended("c1", now=60)
    q.call_ended("x", now=61)
    q.caller_joined("c2", "555", 0, now=100)  # linear would pick a; sticky says b
    assert drain(q) == [RingAgents("c2", ("b",), 15)]
    q.agent_answered("b", "c2", now=101)
    q.call_ended("c2", now=200)
    drain(q)
    # b busy: the caller is not kept waiting for them
    connect(q, "y", "a", 201, number="901")
    q.agent_pause("a", now=202, reason="x")  # a on call and paused: b only
    q.call_ended("y", now=203)
    q.agent_unpause("a", now=204)
    q.agent_in_use("b", True, now=205)
    q.caller_joined("c3", "555", 0, now=206)
    assert drain(q) == [RingAgents("c3", ("a",), 15)]
    q.caller_left("c3", now=207)
    q.agent_in_use("b", False, now=208)
    drain(q)
    # after sticky_seconds the strategy decides again
    q.caller_joined("c4", "555", 0, now=200 + 301)
    assert drain(q) == [RingAgents("c4", ("a",), 15)]


def test_priority_callers_go_ahead_of_the_line() -> None:
    q = Queue(cfg(members=(Member("a"),)), now=0)
    connect(q, "x", "a", 0)
    q.caller_joined("c1", "1", 0, now=1)
    q.caller_joined("c2", "2", 0, now=2)
    q.caller_joined("vip", "3", 5, now=3)
    q.caller_joined("c3", "4", 0, now=4)
    assert q.waiting() == ["vip", "c1", "c2", "c3"]
    assert q.position("c1") == 2
    assert q.log[-2].position == 1  # vip entered at position 1
    q.call_ended("x", now=10)
    assert drain(q) == [RingAgents("vip", ("a",), 15)]


def test_callback_keeps_its_place_counts_in_positions_and_calls_the_agent_first() -> None:
    q = Queue(cfg(members=(Member("a"),)), now=0)
    connect(q, "x", "a", 0)
    q.caller_joined("c1", "100", 0, now=1)
    q.caller_joined("c2", "200", 0, now=2)
    q.callback_requested("c1", "+15551234", now=3)  # c1 hangs up, keeps the place
    assert q.waiting() == ["c1", "c2"] and q.position("c2") == 2
    q.caller_joined("c3", "300", 0, now=4)
    assert q.position("c3") == 3
    q.call_ended("x", now=10)
    assert drain(q) == [PlaceCallback("c1", "+15551234", "a")]
    q.agent_answered("a", "c1", now=12)  # the agent's leg answers: now dial the caller
    assert drain(q) == [] and q.position("c2") == 2
    q.callback_answered("c1", now=15)
    assert drain(q) == [Connect("c1", "a")]
    assert q.waiting() == ["c2", "c3"]
    assert [(e.kind.value, e.reason) for e in q.log if e.call_id == "c1"] == [
        ("ENTER", "100"), ("CALLBACK", "requested"), ("CALLBACK", "placed"),
        ("CALLBACK", "answered"), ("CONNECT", "")]
    assert q.log[-1].wait == 14  # ENTER at 1, CONNECT at 15


def test_callback_retries_in_place_then_gives_up() -> None:
    q = Queue(cfg(members=(Member("a"),), callback_attempts=2, callback_retry=60), now=0)
    connect(q, "x", "a", 0)
    q.caller_joined("c1", "100", 0, now=1)
    q.callback_requested("c1", "555", now=2)
    q.call_ended("x", now=10)
    assert drain(q) == [PlaceCallback("c1", "555", "a")]
    q.agent_answered("a", "c1", now=11)
    q.callback_failed("c1", now=40)  # caller did not answer: retry in 60 s, keeps place
    q.caller_joined("c2", "200", 0, now=41)
    assert drain(q) == [RingAgents("c2", ("a",), 15)]  # agent is not idle waiting for it
    q.agent_answered("a", "c2", now=42)
    q.call_ended("c2", now=50)
    assert drain(q) == [Connect("c2", "a")]
    assert q.waiting() == ["c1"] and q.get_timer() == 100
    q.handle_timer(100)
    assert drain(q) == [PlaceCallback("c1", "555", "a")]
    q.agent_answered("a", "c1", now=101)
    q.callback_failed("c1", now=130)
    assert q.waiting() == []
    assert [e.reason for e in q.log if e.kind is Kind.CALLBACK] == [
        "requested", "placed", "retry", "placed", "failed"]


def test_ewt_announcements_never_go_up_even_when_agents_log_out() -> None:
    q = Queue(QueueConfig("q", strategy="linear", wrapup=0, announce_every=30,
                          default_handle_time=120), now=0)
    for i, ag in enumerate("abc"):
        q.agent_login(ag, now=0)
        connect(q, f"x{i}", ag, 0)
    q.caller_joined("c1", "1", 0, now=1)
    q.caller_joined("c2", "2", 0, now=2)
    # position 1 of 3 busy-but-available agents, 120 s handle time -> 40 s; position 2 -> 80 s
    assert drain(q) == [Announce("c1", 1, 40), Announce("c2", 2, 80)]
    q.agent_logout("b", now=10)
    q.agent_logout("c", now=11)  # on calls still, but no longer available
    q.handle_timer(31)
    # honest figures would be 120 and 240: not said, rather than said going up
    assert drain(q) == [Announce("c1", 1, None)]
    q.caller_left("c1", now=32)  # c2 moves up to 1: 120 s, still above 80
    q.handle_timer(32)
    assert drain(q) == [Announce("c2", 1, None)]
    q.agent_login("b", now=40)
    q.agent_login("c", now=41)
    q.handle_timer(62)
    assert drain(q) == [Announce("c2", 1, 40)]
    q.agent_pause("a", now=63, reason="break")
    q.agent_pause("b", now=63, reason="break")
    q.agent_pause("c", now=63, reason="break")
    q.handle_timer(92)
    assert drain(q) == [Announce("c2", 1, None)]  # nobody available: no estimate at all


def test_announced_ewt_never_rises_over_a_long_scripted_wait() -> None:
    """Handle times shrink (estimates fall) while agents log out and in (they would rise)."""
    q = Queue(QueueConfig("q", strategy="linear", wrapup=5, announce_every=20,
                          default_handle_time=600), now=0)
    for ag in "abcd":
        q.agent_login(ag, now=0)
    for ag, c in zip("abcd", ["x0", "x1", "x2", "x3"]):
        q.caller_joined(c, c, 0, now=0)
        q.agent_answered(ag, c, now=0)
    for i in range(6):
        q.caller_joined(f"c{i}", str(i), 0, now=1 + i)
    said: dict[str, list[int | None]] = {}
    script = {20: ("logout", "d"), 30: ("end", "x0"), 60: ("end", "x1"), 100: ("logout", "c"),
              140: ("login", "d"), 200: ("end", "c0"), 230: ("logout", "b")}
    talking: set[str] = set()
    for t in range(1, 400):
        if t in script:
            what, who = script[t]
            if what == "logout":
                q.agent_logout(who, now=t)
            elif what == "login":
                q.agent_login(who, now=t)
            else:
                q.call_ended(who, now=t)
        timer = q.get_timer()
        if timer is not None and timer <= t:
            q.handle_timer(t)
        for act in drain(q):
            if isinstance(act, RingAgents):
                q.agent_answered(act.agents[0], act.call_id, now=t)
                talking.add(act.call_id)
            elif isinstance(act, Announce):
                said.setdefault(act.call_id, []).append(act.ewt_seconds)
    for call, values in said.items():
        given = [v for v in values if v is not None]
        assert given == sorted(given, reverse=True), (call, values)
    assert any(len(set(v for v in vs if v is not None)) >= 3 for vs in said.values())
    assert any(None in vs for vs in said.values())  # a rise was withheld, not announced
    assert talking >= {"c0", "c1"}


def test_overflow_on_max_wait() -> None:
    q = Queue(cfg(max_wait=60, overflow="vm:200", members=(Member("a"),)), now=0)
    connect(q, "x", "a", 0)
    q.caller_joined("c1", "1", 0, now=5)
    assert q.get_timer() == 65
    q.handle_timer(65)
    assert drain(q) == [Overflow("c1", "vm:200", "timeout")]
    assert q.waiting() == [] and q.log[-1].kind is Kind.OVERFLOW and q.log[-1].wait == 60


def test_overflow_while_ringing_stops_the_ring() -> None:
    q = Queue(cfg(max_wait=10, ring_timeout=30, overflow="op"), now=0)
    q.caller_joined("c1", "1", 0, now=0)
    drain(q)
    q.handle_timer(10)
    assert drain(q) == [StopRinging("c1", ("a",)), Overflow("c1", "op", "timeout")]
    assert q.agent_state("a") is AgentState.IDLE


def test_overflow_on_max_length_and_join_leave_empty() -> None:
    q = Queue(cfg(max_len=1, overflow="op", members=(Member("a"),)), now=0)
    connect(q, "x", "a", 0)
    q.caller_joined("c1", "1", 0, now=1)
    q.caller_joined("c2", "2", 0, now=2)
    assert drain(q) == [Overflow("c2", "op", "full")]
    empty = Queue(cfg(join_empty=False, leave_empty=True, overflow="vm", members=()), now=0)
    empty.caller_joined("c1", "1", 0, now=1)
    assert drain(empty) == [Overflow("c1", "vm", "joinempty")]
    empty.agent_login("d", now=2)
    empty.agent_pause("d", now=3, reason="meeting")  # paused but logged in: may join
    empty.caller_joined("c2", "2", 0, now=4)
    empty.caller_joined("c3", "3", 0, now=5)
    assert drain(empty) == []
    empty.agent_logout("d", now=6)
    assert drain(empty) == [Overflow("c2", "vm", "leaveempty"), Overflow("c3", "vm", "leaveempty")]


def test_abandon_while_ringing_and_transfer() -> None:
    q = Queue(cfg(wrapup=5), now=0)
    q.caller_joined("c1", "1", 0, now=0)
    drain(q)
    q.caller_left("c1", now=3)
    assert drain(q) == [StopRinging("c1", ("a",))]
    assert q.log[-1].kind is Kind.ABANDON and q.log[-1].wait == 3
    connect(q, "c2", "a", 4)
    q.call_transferred("c2", "201", now=34)
    e = q.log[-1]
    assert (e.kind, e.talk, e.wrapup, e.reason) == (Kind.TRANSFER, 30, 5, "201")
    assert q.agent_state("a") is AgentState.WRAP_UP
    q.caller_left("c2", now=35)  # already gone from the queue: nothing more
    assert q.log[-1] is e
