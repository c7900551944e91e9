"""Queue strategies: pure functions, and each one distributing a scripted burst of calls.

The burst (agents a, b, c, no wrap-up; every offered agent answers at once; for ring-all
the first agent rung answers):

    t0 c1 joins   t1 c2 joins   t2 c2 ends   t3 c3 joins   t4 c3 ends   t5 c4 joins
    t6 c4 ends    t7 c1 ends    t8 c5 joins  t9 c5 ends    t10 c6 joins t11 c6 ends

The expected offers below were worked out by hand from each strategy's rule.
"""

from __future__ import annotations

import random

import pytest

from firmware.acd.queue import Connect, Member, Queue, QueueConfig, RingAgents
from firmware.acd.strategies import (STRATEGIES, AgentView, CallView, StrategyState,
                                     fewest_calls, least_recent, next_widening, random_order,
                                     required_skills, rr_memory, skills_based)

SCRIPT = [
    (0, "join", "c1"), (1, "join", "c2"), (2, "end", "c2"), (3, "join", "c3"),
    (4, "end", "c3"), (5, "join", "c4"), (6, "end", "c4"), (7, "end", "c1"),
    (8, "join", "c5"), (9, "end", "c5"), (10, "join", "c6"), (11, "end", "c6"),
]


def burst(strategy: str, seed: int = 7) -> list[tuple[str, ...]]:
    cfg = QueueConfig("q", strategy=strategy, wrapup=0, announce_every=0,
                      members=(Member("a"), Member("b"), Member("c")))
    q = Queue(cfg, now=0.0, rng=random.Random(seed))
    offers: list[tuple[str, ...]] = []
    for t, what, call in SCRIPT:
        if what == "join":
            q.caller_joined(call, "n" + call, 0, now=t)
            act = q.next_action()
            assert isinstance(act, RingAgents) and act.call_id == call
            offers.append(act.agents)
            q.agent_answered(act.agents[0], call, now=t)
            while (a := q.next_action()) is not None and not isinstance(a, Connect):
                pass
            assert a == Connect(call, act.agents[0])
        else:
            q.call_ended(call, now=t)
        assert q.next_action() is None
    return offers


@pytest.mark.parametrize("strategy, expected", [
    ("linear", ["a", "b", "b", "b", "a", "a"]),
    ("leastrecent", ["a", "b", "c", "b", "c", "b"]),
    ("fewestcalls", ["a", "b", "c", "b", "a", "c"]),
    ("rrmemory", ["a", "b", "c", "b", "c", "a"]),
])
def test_burst_one_agent_at_a_time(strategy: str, expected: list[str]) -> None:
    assert burst(strategy) == [(x,) for x in expected]


def test_burst_ring_all_rings_every_free_agent() -> None:
    assert burst("ringall") == [("a", "b", "c"), ("b", "c"), ("b", "c"), ("b", "c"),
                                ("a", "b", "c"), ("a", "b", "c")]


def test_burst_random_is_seeded_and_only_offers_free_agents() -> None:
    first = burst("random", seed=7)
    assert first == burst("random", seed=7)  # deterministic for a seed
    assert all(len(o) == 1 for o in first)
    # c1 (joined t0) is connected until t7: nobody else is offered the agent it took
    busy_with_c1 = first[0][0]
    assert busy_with_c1 not in {o[0] for o in first[1:4]}
    seeds = {tuple(burst("random", seed=s)) for s in range(10)}
    assert len(seeds) > 1  # the order does come from the rng


def test_random_order_matches_the_rng_it_is_given() -> None:
    agents = [AgentView(x, i) for i, x in enumerate("abcd")]
    call = CallView("c", "n", 0.0)
    expected = list("abcd")
    random.Random(3).shuffle(expected)
    assert random_order(agents, call, 0.0, StrategyState(), random.Random(3)) == expected


def test_least_recent_and_fewest_calls_break_ties_by_member_order() -> None:
    agents = [AgentView("a", 1, last_call_end=50.0, calls_taken=2),
              AgentView("b", 2, last_call_end=None, calls_taken=5),
              AgentView("c", 3, last_call_end=10.0, calls_taken=2),
              AgentView("d", 4, last_call_end=None, calls_taken=0)]
    call = CallView("c1", "n", 0.0)
    rng = random.Random(0)
    assert least_recent(agents, call, 99, StrategyState(), rng) == ["b", "d", "c", "a"]
    assert fewest_calls(agents, call, 99, StrategyState(), rng) == ["d", "a", "c", "b"]


def test_rr_memory_starts_after_the_last_offered_even_if_that_agent_is_busy() -> None:
    agents = [AgentView("a", 1), AgentView("c", 3), AgentView("d", 4)]  # b (2) is busy
    st = StrategyState(last_order=2)
    assert rr_memory(agents, CallView("x", "n", 0), 0, st, random.Random(0)) == ["c", "d", "a"]
    st.last_order = 4
    assert rr_memory(agents, CallView("x", "n", 0), 0, st, random.Random(0)) == ["a", "c", "d"]


def test_skills_best_match_first_and_only_qualified() -> None:
    agents = [AgentView("a", 1, {"en": 1}), AgentView("b", 2, {"en": 3, "es": 2}),
              AgentView("c", 3, {"es": 3})]
    st = StrategyState(widen_after=30, widen_step=1)
    rng = random.Random(0)
    assert skills_based(agents, CallView("x", "n", 0, skills={"en": 1}), 0, st, rng) == ["b", "a"]
    assert skills_based(agents, CallView("x", "n", 0, skills={"en": 2}), 0, st, rng) == ["b"]
    assert skills_based(agents, CallView("x", "n", 0, skills={"es": 1}), 0, st, rng) == ["c", "b"]
    # es 3 + en 1: nobody has both at first; after 30 s es 2 / en drops out; after 60 s es 1
    call = CallView("x", "n", 0, skills={"es": 3, "en": 1})
    assert skills_based(agents, call, 29.9, st, rng) == []
    assert required_skills(call, 30, st) == {"es": 2}
    assert skills_based(agents, call, 30, st, rng) == ["b", "c"]  # b: en 3 + es 2 = 5 > c: 3
    assert required_skills(call, 90, st) == {}
    assert skills_based(agents, call, 90, st, rng) == ["b", "c", "a"]
    assert next_widening(call, 0, st) == 30 and next_widening(call, 30, st) == 60
    assert next_widening(call, 90, st) is None


def test_table_names() -> None:
    assert set(STRATEGIES) == {"ringall", "linear", "leastrecent", "fewestcalls", "rrmemory",
                               "random", "skills"}
    assert [n for n, s in STRATEGIES.items() if s.ring_all] == ["ringall"]
    with pytest.raises(ValueError):
        QueueConfig("q", strategy="roundrobinish")


def test_skills_queue_widens_after_the_wait() -> None:
    cfg = QueueConfig("q", strategy="skills", wrapup=0, announce_every=0, widen_after=30,
                      members=(Member("a", {"en": 1}), Member("b", {"en": 3, "es": 2}),
                               Member("c", {"es": 3})))
    q = Queue(cfg, now=0.0)
    q.caller_joined("c1", "n1", 0, now=0, skills={"en": 2})
    assert q.next_action() == RingAgents("c1", ("b",), 15.0)
    q.agent_answered("b", "c1", now=1)
    assert q.next_action() == Connect("c1", "b")
    q.caller_joined("c2", "n2", 0, now=2, skills={"es": 1})
    assert q.next_action() == RingAgents("c2", ("c",), 15.0)
    q.agent_answered("c", "c2", now=3)
    q.next_action()
    # c3 needs Spanish 2: only b and c have it and both talk; a (English only) stays free
    q.caller_joined("c3", "n3", 0, now=10, skills={"es": 2})
    assert q.next_action() is None
    # widening: es 2 -> es 1 at 40 s, gone at 70 s (joined at 10)
    assert q.get_timer() == 40
    q.handle_timer(40)
    assert q.next_action() is None  # es 1 still rules a out
    assert q.get_timer() == 70
    q.handle_timer(70)
    assert q.next_action() == RingAgents("c3", ("a",), 15.0)
