"""The queue event log: what happened in a queue, append-only, one record per fact.

A ``Queue`` appends these as it goes; ``stats`` computes every figure from this log alone,
so the statistics agree with what happened (and can be recomputed from a stored log).
The kinds follow the classic queue_log words (ENTER, CONNECT, COMPLETE, ABANDON...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterator

__all__ = ["Kind", "QueueEvent", "EventLog"]


class Kind(str, enum.Enum):
    ENTER = "ENTER"  # a caller joined; reason = caller number, position = place on joining
    RING_NO_ANSWER = "RING_NO_ANSWER"  # agent rang and did not answer; wait = ring time
    CONNECT = "CONNECT"  # agent and caller talk; wait = seconds since ENTER
    TRANSFER = "TRANSFER"  # agent transferred the call on; talk, wrapup; reason = target
    COMPLETE = "COMPLETE"  # the call ended; talk = seconds since CONNECT, wrapup = seconds
    ABANDON = "ABANDON"  # caller hung up waiting; wait, position when leaving
    OVERFLOW = "OVERFLOW"  # sent elsewhere; reason = timeout | full | joinempty | leaveempty
    CALLBACK = "CALLBACK"  # reason = requested | placed | answered | retry | failed
    PAUSE = "PAUSE"  # reason = pause code ("autopause" after missed calls)
    UNPAUSE = "UNPAUSE"
    LOGIN = "LOGIN"
    LOGOUT = "LOGOUT"


@dataclass(frozen=True)
class QueueEvent:
    """One line of the queue log; fields a kind does not use stay at their defaults."""

    time: float
    queue: str
    kind: Kind
    call_id: str = ""
    agent: str = ""
    wait: float = 0.0
    talk: float = 0.0
    wrapup: float = 0.0
    position: int = 0
    reason: str = ""


class EventLog:
    """Append-only list of QueueEvent; several queues may share one log."""

    def __init__(self) -> None:
        self._events: list[QueueEvent] = []

    def append(self, event: QueueEvent) -> None:
        if self._events and event.time < self._events[-1].time:
            raise ValueError("queue log must be appended in time order")
        self._events.append(event)

    def since(self, index: int) -> list[QueueEvent]:
        """Events from ``index`` on (for a writer that persists the log incrementally)."""
        return self._events[index:]

    def __iter__(self) -> Iterator[QueueEvent]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, i: int) -> QueueEvent:
        return self._events[i]
