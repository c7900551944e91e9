"""ACD: call-centre queues as pure state machines over call events (STYLE.md §4–6).

``queue.Queue`` is the engine (callers, agents, timers, announcements, callbacks),
``strategies`` the table of pure functions that order free agents for a call,
``events`` the append-only queue log the engine writes, and ``stats`` the figures computed
from that log alone.
"""

from .events import EventLog, Kind, QueueEvent
from .queue import (Announce, AgentState, Connect, Member, Overflow, PlaceCallback, Queue,
                    QueueConfig, QueueError, RingAgents, StopRinging)
from .stats import AgentStats, QueueStats, agent_stats, queue_stats
from .strategies import STRATEGIES, AgentView, CallView, StrategyState

__all__ = [
    "EventLog", "Kind", "QueueEvent",
    "Announce", "AgentState", "Connect", "Member", "Overflow", "PlaceCallback", "Queue",
    "QueueConfig", "QueueError", "RingAgents", "StopRinging",
    "AgentStats", "QueueStats", "agent_stats", "queue_stats",
    "STRATEGIES", "AgentView", "CallView", "StrategyState",
]
