"""Call-centre statistics computed from the queue event log alone.

Nothing here asks a queue anything: every figure is derived from ``QueueEvent`` records,
so the statistics agree with what happened and can be recomputed from a stored log.

* ``queue_stats(log, period=3600)`` -> {(queue, period_start): QueueStats}. A call counts in
  the period it entered the queue, so offered = answered + abandoned + overflowed +
  callbacks given up + still waiting.
* ``agent_stats(log, until=..., period=3600)`` -> {(queue, agent, period_start): AgentStats}.
  Times (talk, wrap-up, pause by reason, idle) are split exactly at period boundaries.

``period=None`` gives one bucket for the whole log (``period_start`` None); 3600 is per hour
and 86400 per day (times are seconds since the epoch, UTC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from .events import Kind, QueueEvent

# The periods a report is cut into, by name (`linebox queue stats --period`); None: one row.
PERIODS: dict[str, float | None] = {"hour": 3600.0, "day": 86400.0, "all": None}

__all__ = ["QueueStats", "AgentStats", "queue_stats", "agent_stats"]


@dataclass
class QueueStats:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    answered_within_sl: int = 0  # answered within the service-level threshold
    abandon_waits: list[float] = field(default_factory=list)  # how long each abandoner waited
    answer_waits: list[float] = field(default_factory=list)
    talk_times: list[float] = field(default_factory=list)  # per completed/transferred call
    wrapup_times: list[float] = field(default_factory=list)
    longest_wait: float = 0.0  # answered, abandoned or overflowed
    callbacks_requested: int = 0
    callbacks_answered: int = 0
    callbacks_retried: int = 0
    callbacks_failed: int = 0
    transferred: int = 0

    @property
    def service_level(self) -> float | None:
        """Share of offered calls answered within the threshold."""
        return self.answered_within_sl / self.offered if self.offered else None

    @property
    def asa(self) -> float | None:
        """Average speed of answer (seconds from entering to connect)."""
        return _mean(self.answer_waits)

    @property
    def average_talk(self) -> float | None:
        return _mean(self.talk_times)

    @property
    def aht(self) -> float | None:
        """Average handle time: talk plus wrap-up."""
        if not self.talk_times:
            return None
        return (sum(self.talk_times) + sum(self.wrapup_times)) / len(self.talk_times)

    @property
    def average_abandon_wait(self) -> float | None:
        return _mean(self.abandon_waits)


@dataclass
class AgentStats:
    answered: int = 0
    missed: int = 0  # ring-no-answer
    transferred: int = 0
    talk_time: float = 0.0
    wrapup_time: float = 0.0
    idle_time: float = 0.0  # logged in, available, not on a call (ringing counts as idle)
    pause_time: dict[str, float] = field(default_factory=dict)  # by reason

    @property
    def offered(self) -> int:
        return self.answered + self.missed


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _bucket(t: float, period: float | None) -> float | None:
    return None if period is None else math.floor(t / period) * period


def queue_stats(log: Iterable[QueueEvent], *, period: float | None = None,
                service_level: float = 20.0) -> dict[tuple[str, float | None], QueueStats]:
    """Per queue and period: what happened to the calls that entered in that period."""
    out: dict[tuple[str, float | None], QueueStats] = {}
    entered: dict[tuple[str, str], QueueStats] = {}  # (queue, call) -> its period's stats

    def of(ev: QueueEvent) -> QueueStats | None:
        return entered.get((ev.queue, ev.call_id))

    for ev in log:
        if ev.kind is Kind.ENTER:
            s = out.setdefault((ev.queue, _bucket(ev.time, period)), QueueStats())
            s.offered += 1
            entered[(ev.queue, ev.call_id)] = s
            continue
        s = of(ev) if ev.call_id else None
        if s is None:
            continue
        if ev.kind is Kind.CONNECT:
            s.answered += 1
            s.answer_waits.append(ev.wait)
            s.answered_within_sl += ev.wait <= service_level
            s.longest_wait = max(s.longest_wait, ev.wait)
        elif ev.kind is Kind.ABANDON:
            s.abandoned += 1
            s.abandon_waits.append(ev.wait)
            s.longest_wait = max(s.longest_wait, ev.wait)
        elif ev.kind is Kind.OVERFLOW:
            s.overflowed += 1
            s.longest_wait = max(s.longest_wait, ev.wait)
        elif ev.kind in (Kind.COMPLETE, Kind.TRANSFER):
            s.talk_times.append(ev.talk)
            s.wrapup_times.append(ev.wrapup)
            s.transferred += ev.kind is Kind.TRANSFER
        elif ev.kind is Kind.CALLBACK:
            if ev.reason == "requested":
                s.callbacks_requested += 1
            elif ev.reason == "answered":
                s.callbacks_answered += 1
            elif ev.reason == "retry":
                s.callbacks_retried += 1
            elif ev.reason == "failed":
                s.callbacks_failed += 1
    return out


@dataclass
class _AgentTrack:
    last: float
    logged_in: bool = True
    paused: str | None = None
    on_call: bool = False
    wrap_until: float = 0.0


def agent_stats(log: Iterable[QueueEvent], *, until: float, period: float | None = None
                ) -> dict[tuple[str, str, float | None], AgentStats]:
    """Per queue, agent and period: calls and where the agent's logged-in time went.

    An agent's time is, in this precedence: talk (connected, or holding for a callback's
    caller to answer), pause (by reason), wrap-up, idle. Open intervals are closed at ``until``.
    """
    out: dict[tuple[str, str, float | None], AgentStats] = {}
    track: dict[tuple[str, str], _AgentTrack] = {}

    def stats(q: str, agent: str, t: float) -> AgentStats:
        return out.setdefault((q, agent, _bucket(t, period)), AgentStats())

    def spend(q: str, agent: str, start: float, end: float, label: str) -> None:
        while start < end:
            b = _bucket(start, period)
            stop = end if b is None or period is None else min(end, b + period)
            s = stats(q, agent, start)
            d = stop - start
            if label == "talk":
                s.talk_time += d
            elif label == "wrapup":
                s.wrapup_time += d
            elif label == "idle":
                s.idle_time += d
            else:
                s.pause_time[label] = s.pause_time.get(label, 0.0) + d
            start = stop

    def advance(q: str, agent: str, t: float) -> None:
        k = track[(q, agent)]
        start = k.last
        if k.logged_in and start < t:
            if k.on_call:
                spend(q, agent, start, t, "talk")
            elif k.paused is not None:
                spend(q, agent, start, t, k.paused)
            else:
                mid = min(max(k.wrap_until, start), t)
                spend(q, agent, start, mid, "wrapup")
                spend(q, agent, mid, t, "idle")
        k.last = t

    for ev in log:
        if not ev.agent:
            continue
        key = (ev.queue, ev.agent)
        if key not in track:
            track[key] = _AgentTrack(ev.time, logged_in=False)
        advance(ev.queue, ev.agent, ev.time)
        k = track[key]
        kind = ev.kind
        if kind is Kind.LOGIN:
            k.logged_in, k.paused = True, None
        elif kind is Kind.LOGOUT:
            k.logged_in, k.paused = False, None
        elif kind is Kind.PAUSE:
            k.paused = ev.reason or "pause"
        elif kind is Kind.UNPAUSE:
            k.paused = None
        elif kind is Kind.CONNECT:
            k.on_call = True
            stats(ev.queue, ev.agent, ev.time).answered += 1
        elif kind is Kind.CALLBACK and ev.reason == "placed":
            k.on_call = True  # the agent's leg answered and waits while the caller is dialled
        elif kind is Kind.CALLBACK and ev.reason in ("retry", "failed"):
            k.on_call = False
        elif kind is Kind.RING_NO_ANSWER:
            stats(ev.queue, ev.agent, ev.time).missed += 1
        elif kind in (Kind.COMPLETE, Kind.TRANSFER):
            k.on_call = False
            k.wrap_until = ev.time + ev.wrapup
            if kind is Kind.TRANSFER:
                stats(ev.queue, ev.agent, ev.time).transferred += 1
    for (q, agent) in track:
        advance(q, agent, until)
    return out
