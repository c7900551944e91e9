"""Queue strategies: which free agents a waiting call is offered to, in what order.

Each strategy is a small pure function over read-only views (STYLE.md §6)::

    pick(agents, call, now, state, rng) -> list[agent_id]   # best candidate first

``agents`` are the agents free to take a call right now (the queue has already left out
anyone logged out, paused, ringing, on a call or in wrap-up), in member order. A strategy
never changes ``state``; the queue records what it offered (``StrategyState.last_order``)
so round robin can remember where it stopped. ``STRATEGIES`` is the table a queue's
configured name is looked up in; ``Strategy.ring_all`` says whether the queue rings every
candidate at once or only the first.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

__all__ = [
    "AgentView",
    "CallView",
    "StrategyState",
    "Strategy",
    "STRATEGIES",
    "ring_all",
    "linear",
    "least_recent",
    "fewest_calls",
    "rr_memory",
    "random_order",
    "skills_based",
    "required_skills",
    "next_widening",
]


@dataclass(frozen=True)
class AgentView:
    """What a strategy may know about a free agent."""

    id: str
    order: int  # member order: static members as configured, then dynamic ones as they logged in
    skills: Mapping[str, int] = field(default_factory=dict)
    last_call_end: float | None = None  # None: has not taken a call yet
    calls_taken: int = 0


@dataclass(frozen=True)
class CallView:
    """What a strategy may know about the waiting call."""

    call_id: str
    caller_number: str
    joined: float
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)  # skill -> minimum level wanted


@dataclass
class StrategyState:
    """Memory a queue keeps for its strategy; written by the queue, read by strategies."""

    last_order: int | None = None  # member order of the agent last offered a call (rrmemory)
    widen_after: float = 30.0  # skills: every this many seconds of waiting ...
    widen_step: int = 1  # ... every wanted level drops by this much (at 0 the skill is not needed)


Pick = Callable[[Sequence[AgentView], CallView, float, StrategyState, random.Random], list[str]]


@dataclass(frozen=True)
class Strategy:
    pick: Pick
    ring_all: bool = False  # ring every candidate at once instead of the first only


def _by_order(agents: Sequence[AgentView]) -> list[AgentView]:
    return sorted(agents, key=lambda a: a.order)


def ring_all(agents: Sequence[AgentView], call: CallView, now: float, state: StrategyState,
             rng: random.Random) -> list[str]:
    """Every free agent (the queue rings them all; the first to answer wins)."""
    return [a.id for a in _by_order(agents)]


def linear(agents: Sequence[AgentView], call: CallView, now: float, state: StrategyState,
           rng: random.Random) -> list[str]:
    """Always member order: the first listed free agent takes the call."""
    return [a.id for a in _by_order(agents)]


def least_recent(agents: Sequence[AgentView], call: CallView, now: float, state: StrategyState,
                 rng: random.Random) -> list[str]:
    """The agent whose last call ended longest ago (never had one: first); ties by order."""
    return [a.id for a in sorted(agents, key=lambda a: (
        -math.inf if a.last_call_end is None else a.last_call_end, a.order))]


def fewest_calls(agents: Sequence[AgentView], call: CallView, now: float, state: StrategyState,
                 rng: random.Random) -> list[str]:
    """The agent who has taken the fewest calls; ties by order."""
    return [a.id for a in sorted(agents, key=lambda a: (a.calls_taken, a.order))]


def rr_memory(agents: Sequence[AgentView], call: CallView, now: float, state: StrategyState,
              rng: random.Random) -> list[str]:
    """Round robin that remembers: start after the agent last offered, wrap around."""
    ordered = _by_order(agents)
    if state.last_order is None:
        return [a.id for a in ordered]
    after = [a for a in ordered if a.order > state.last_order]
    before = [a for a in ordered if a.order <= state.last_order]
    return [a.id for a in after + before]


def random_order(agents: Sequence[AgentView], call: CallView, now: float, state: StrategyState,
                 rng: random.Random) -> list[str]:
    """A random order from the rng the queue was given (seeded in tests)."""
    ids = [a.id for a in _by_order(agents)]
    rng.shuffle(ids)
    return ids


def required_skills(call: CallView, now: float, state: StrategyState) -> dict[str, int]:
    """The levels still required after widening: each drops by ``widen_step`` per
    ``widen_after`` seconds waited; a skill whose level reaches 0 is no longer required."""
    steps = 0
    if state.widen_after > 0:
        steps = int(max(0.0, now - call.joined) // state.widen_after)
    drop = steps * state.widen_step
    return {s: lvl - drop for s, lvl in call.skills.items() if lvl - drop > 0}


def next_widening(call: CallView, now: float, state: StrategyState) -> float | None:
    """When the required match next widens, or None if it cannot widen any more."""
    if not required_skills(call, now, state) or state.widen_after <= 0 or state.widen_step <= 0:
        return None
    steps = int(max(0.0, now - call.joined) // state.widen_after)
    return call.joined + (steps + 1) * state.widen_after


def skills_based(agents: Sequence[AgentView], call: CallView, now: float, state: StrategyState,
                 rng: random.Random) -> list[str]:
    """Agents meeting every (widened) required level, best match first.

    The match is the sum of the agent's levels in the skills the call asks for, so the
    strongest agent for this caller's needs is offered first; ties go by member order.
    """
    need = required_skills(call, now, state)
    fit = [a for a in agents if all(a.skills.get(s, 0) >= lvl for s, lvl in need.items())]
    return [a.id for a in sorted(fit, key=lambda a: (
        -sum(a.skills.get(s, 0) for s in call.skills), a.order))]


STRATEGIES: dict[str, Strategy] = {
    "ringall": Strategy(ring_all, ring_all=True),
    "linear": Strategy(linear),
    "leastrecent": Strategy(least_recent),
    "fewestcalls": Strategy(fewest_calls),
    "rrmemory": Strategy(rr_memory),
    "random": Strategy(random_order),
    "skills": Strategy(skills_based),
}
