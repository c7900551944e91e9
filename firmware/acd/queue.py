"""An ACD queue as a sans-I/O state machine (STYLE.md §4–6).

The queue owns no socket, no clock and no timer. Callers and agents are call legs handled
elsewhere; the queue is told what happened and says what to do::

    q = Queue(QueueConfig("sales", strategy="leastrecent", members=(Member("alice"),)), now=0.0)
    q.caller_joined("c1", "+4420...", priority=0, now=0.0)
    q.next_action()          # RingAgents("c1", ("alice",), timeout=15.0)
    q.agent_answered("alice", "c1", now=3.0)
    q.next_action()          # Connect("c1", "alice")
    q.get_timer()            # when to call handle_timer(now) next

Inputs are the methods below; outputs are the actions from ``next_action()`` and the
QueueEvent records appended to ``log``. Which free agents a call is offered to is decided by
a strategy from ``strategies.STRATEGIES``; everything else (who is free, the order of the
line, timers, overflow, callbacks, announcements) lives here.

The line: entries are ordered by priority (higher first), then by joining order. A callback
keeps its entry (and so its place, and counts in everyone's position) although its caller
has hung up. Every waiting entry is considered in line order each time something changes;
an entry that is ringing or pausing between ring attempts lets the ones behind it take
agents it is not using.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Mapping

from .events import EventLog, Kind, QueueEvent
from .strategies import STRATEGIES, AgentView, CallView, StrategyState, next_widening

__all__ = [
    "Member",
    "QueueConfig",
    "AgentState",
    "QueueError",
    "RingAgents",
    "StopRinging",
    "Connect",
    "Announce",
    "Overflow",
    "PlaceCallback",
    "Action",
    "Queue",
]


@dataclass(frozen=True)
class Member:
    """A static member: logged in from the start, cannot log out (only pause)."""

    agent: str
    skills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueConfig:
    name: str
    strategy: str = "ringall"
    members: tuple[Member, ...] = ()
    ring_timeout: float = 15.0  # seconds an offer rings before it counts as missed
    retry: float = 5.0  # pause before the same call is offered again after nobody answered
    wrapup: float = 10.0  # seconds after a call before the agent is offered another
    max_misses: int = 3  # auto-pause after this many missed offers in a row (0: never)
    max_wait: float | None = None  # overflow after waiting this long
    max_len: int | None = None  # callers beyond this many overflow on joining
    overflow: str = ""  # where overflowing callers go (the dial plan decides what "" means)
    join_empty: bool = True  # may a caller join while no agent is logged in?
    leave_empty: bool = False  # overflow waiting callers when the last agent logs out
    announce_every: float = 60.0  # position/EWT announcement period (0: never)
    sticky_seconds: float = 0.0  # offer the agent a caller last spoke to within this (0: off)
    skills: Mapping[str, int] = field(default_factory=dict)  # what every caller needs
    widen_after: float = 30.0
    widen_step: int = 1
    default_handle_time: float = 180.0  # for EWT until calls have been handled
    handle_time_window: int = 10  # recent calls averaged for EWT
    callback_attempts: int = 3  # calls to the caller before a callback is given up
    callback_retry: float = 60.0  # wait before calling a callback caller again

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown queue strategy {self.strategy!r}")


class AgentState(enum.Enum):
    LOGGED_OUT = "logged out"
    IDLE = "idle"
    RINGING = "ringing"
    ON_CALL = "on call"
    WRAP_UP = "wrap-up"
    PAUSED = "paused"


class QueueError(Exception):
    """A command the queue refuses; ``prompt`` names what to play to the agent."""

    def __init__(self, msg: str, prompt: str) -> None:
        super().__init__(msg)
        self.prompt = prompt


# Actions (commands to the call controller) --------------------------------------------

@dataclass(frozen=True)
class RingAgents:
    call_id: str
    agents: tuple[str, ...]
    timeout: float


@dataclass(frozen=True)
class StopRinging:
    call_id: str
    agents: tuple[str, ...]


@dataclass(frozen=True)
class Connect:
    call_id: str
    agent: str


@dataclass(frozen=True)
class Announce:
    """Tell the caller their place. A figure is None when it is not to be said: the EWT
    when no agent is available or when the honest figure went up since last said, the
    position when a priority caller pushed it up (never announced as going up)."""

    call_id: str
    position: int | None
    ewt_seconds: int | None


@dataclass(frozen=True)
class Overflow:
    call_id: str
    destination: str
    reason: str


@dataclass(frozen=True)
class PlaceCallback:
    """Call ``agent`` first; when they answer (``agent_answered``) call ``number`` and
    report ``callback_answered`` / ``callback_failed``."""

    call_id: str
    number: str
    agent: str


Action = RingAgents | StopRinging | Connect | Announce | Overflow | PlaceCallback


# State --------------------------------------------------------------------------------

class _Activity(enum.Enum):
    IDLE = 0
    RINGING = 1
    ON_CALL = 2
    WRAP_UP = 3


@dataclass
class _Agent:
    id: str
    order: int
    static: bool
    skills: dict[str, int]
    logged_in: bool = True
    paused: str | None = None  # pause reason
    activity: _Activity = _Activity.IDLE
    call_id: str | None = None  # the call ringing or connected
    wrap_until: float = 0.0
    busy_elsewhere: bool = False  # on a call this queue did not give (direct call, other queue)
    misses: int = 0
    last_call_end: float | None = None
    calls_taken: int = 0
    state_since: float = 0.0

    def free(self) -> bool:
        return (self.logged_in and self.paused is None and self.activity is _Activity.IDLE
                and not self.busy_elsewhere)

    def state(self) -> AgentState:
        if not self.logged_in and self.activity in (_Activity.IDLE, _Activity.WRAP_UP):
            return AgentState.LOGGED_OUT
        if self.activity is _Activity.RINGING:
            return AgentState.RINGING
        if self.activity is _Activity.ON_CALL or self.busy_elsewhere:
            return AgentState.ON_CALL
        if self.paused is not None:
            return AgentState.PAUSED
        if self.activity is _Activity.WRAP_UP:
            return AgentState.WRAP_UP
        return AgentState.IDLE


@dataclass
class _Entry:
    call_id: str
    number: str
    priority: int
    joined: float
    seq: int
    skills: dict[str, int]
    callback: bool = False
    ringing: set[str] = field(default_factory=set)
    ring_started: float = 0.0
    ring_deadline: float | None = None
    next_attempt: float = 0.0
    next_announce: float | None = None
    said_position: int | None = None
    said_ewt: int | None = None
    sticky_done: bool = False
    cb_attempts: int = 0
    cb_agent: str | None = None  # agent answered the callback; dialling the caller

    def key(self) -> tuple[int, int]:
        return (-self.priority, self.seq)

    def view(self) -> CallView:
        return CallView(self.call_id, self.number, self.joined, self.priority, self.skills)


@dataclass
class _Talk:
    agent: str
    number: str
    connected: float


class Queue:
    """One ACD queue. All times are seconds on the caller's clock, passed in as ``now``."""

    def __init__(self, config: QueueConfig, now: float, *, log: EventLog | None = None,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.log = log if log is not None else EventLog()
        self._rng = rng if rng is not None else random.Random(0)
        self._strategy = STRATEGIES[config.strategy]
        self._sstate = StrategyState(widen_after=config.widen_after, widen_step=config.widen_step)
        self._agents: dict[str, _Agent] = {}
        self._order = 0
        self._line: list[_Entry] = []
        self._talks: dict[str, _Talk] = {}
        self._sticky: dict[str, tuple[str, float]] = {}  # caller number -> (agent, call end)
        self._handle_times: deque[float] = deque(maxlen=config.handle_time_window)
        self._actions: deque[Action] = deque()
        self._seq = 0
        self._now = now  # the latest time seen, so get_timer never returns a past widening
        for m in config.members:
            self._add_agent(m.agent, dict(m.skills), static=True, now=now)

    # Outputs ----------------------------------------------------------------------------

    def next_action(self) -> Action | None:
        return self._actions.popleft() if self._actions else None

    def get_timer(self) -> float | None:
        """The next moment ``handle_timer`` has something to do, or None."""
        times: list[float] = []
        for a in self._agents.values():
            if a.activity is _Activity.WRAP_UP:
                times.append(a.wrap_until)
        skills = self.config.strategy == "skills"
        for e in self._line:
            if e.ring_deadline is not None:
                times.append(e.ring_deadline)
            elif e.cb_agent is None:
                if e.next_attempt > 0:
                    times.append(e.next_attempt)
                if skills and e.skills and not e.callback:
                    w = next_widening(e.view(), self._now, self._sstate)
                    if w is not None:
                        times.append(w)
            if e.next_announce is not None:
                times.append(e.next_announce)
            if self.config.max_wait is not None and not e.callback:
                times.append(e.joined + self.config.max_wait)
        return min(times) if times else None

    def pause_reasons(self) -> dict[str, str]:
        """Paused agents and the reason they gave ("autopause" after missed calls)."""
        return {a.id: a.paused for a in self._agents.values() if a.paused is not None and a.logged_in}

    def wrapup_left(self, agent: str, now: float) -> float:
        """Seconds of wrap-up the agent still has in this queue (0 when not in wrap-up)."""
        a = self._agents.get(agent)
        if a is None or a.activity is not _Activity.WRAP_UP:
            return 0.0
        return max(0.0, a.wrap_until - now)

    def agent_state(self, agent: str) -> AgentState:
        return self._agents[agent].state()

    def agents(self) -> dict[str, AgentState]:
        return {a.id: a.state() for a in self._agents.values()}

    def position(self, call_id: str) -> int:
        """1-based place in line (callbacks count); KeyError if the call is not waiting."""
        for i, e in enumerate(self._line):
            if e.call_id == call_id:
                return i + 1
        raise KeyError(call_id)

    def waiting(self) -> list[str]:
        return [e.call_id for e in self._line]

    def entry_info(self, call_id: str) -> dict[str, object]:
        """A waiting entry's number, joining time and whether it is a callback."""
        e = self._entry(call_id)
        if e is None:
            raise KeyError(call_id)
        return {"number": e.number, "joined": e.joined, "callback": e.callback}

    def talks(self) -> dict[str, dict[str, object]]:
        """Connected calls: call id -> {agent, number, connected}."""
        return {cid: {"agent": t.agent, "caller": t.number, "since": t.connected} for cid, t in self._talks.items()}

    def longest_wait(self, now: float) -> float:
        """Seconds the longest-waiting caller (callbacks included) has been in line."""
        return max((now - e.joined for e in self._line), default=0.0)

    def idle(self) -> bool:
        """Nobody waiting, ringing or talking: the queue can be dropped without losing a call."""
        return not self._line and not self._talks

    def reconfigure(self, config: QueueConfig, now: float) -> None:
        """New settings while calls go on: waiting callers keep their place, agents their state.

        Static members added by the new configuration join logged in; removed ones leave once
        they are not on a call (a dynamic agent who is logged in stays until logging out)."""
        if config.name != self.config.name:
            raise ValueError("a queue keeps its name")
        self.config = config
        self._strategy = STRATEGIES[config.strategy]
        self._sstate.widen_after, self._sstate.widen_step = config.widen_after, config.widen_step
        static = {m.agent: m for m in config.members}
        for agent, m in static.items():
            a = self._agents.get(agent)
            if a is None:
                self._add_agent(agent, dict(m.skills), static=True, now=now)
            else:
                a.static, a.skills = True, dict(m.skills)
                if not a.logged_in:
                    a.logged_in = True
                    self._log(now, Kind.LOGIN, agent=agent)
        for a in list(self._agents.values()):
            if a.static and a.id not in static:
                a.static = False
                if a.activity is _Activity.IDLE or a.activity is _Activity.WRAP_UP:
                    a.logged_in = False
                    self._log(now, Kind.LOGOUT, agent=a.id)
        self._run(now)

    def caller_exited(self, call_id: str, now: float) -> None:
        """The caller pressed the queue's exit key and goes elsewhere (an overflow they chose)."""
        e = self._entry(call_id)
        if e is None:
            return
        self._stop_ringing(e)
        self._remove(e)
        self._log(now, Kind.OVERFLOW, call_id, wait=now - e.joined, reason="exitkey")
        self._run(now)

    # Caller inputs ----------------------------------------------------------------------

    def caller_joined(self, call_id: str, caller_number: str, priority: int, now: float,
                      skills: Mapping[str, int] | None = None) -> None:
        """A caller enters the queue. ``skills`` adds to (or raises) the queue's needs."""
        if self._entry(call_id) is not None or call_id in self._talks:
            raise QueueError(f"call {call_id} is already in {self.config.name}",
                             prompt="queue-already-in")
        want = dict(self.config.skills)
        for s, lvl in (skills or {}).items():
            want[s] = max(lvl, want.get(s, 0))
        self._seq += 1
        e = _Entry(call_id, caller_number, priority, now, self._seq, want)
        self._line.append(e)
        self._line.sort(key=_Entry.key)
        pos = self.position(call_id)
        self._log(now, Kind.ENTER, call_id, position=pos, reason=caller_number)
        cfg = self.config
        if cfg.max_len is not None and len(self._line) > cfg.max_len:
            self._overflow(e, now, "full")
        elif not cfg.join_empty and not any(a.logged_in for a in self._agents.values()):
            self._overflow(e, now, "joinempty")
        else:
            if cfg.announce_every > 0:
                e.next_announce = now
            self._run(now)

    def caller_left(self, call_id: str, now: float) -> None:
        """The caller hung up: an abandon while waiting, the end of the call once connected."""
        if call_id in self._talks:
            self.call_ended(call_id, now)
            return
        e = self._entry(call_id)
        if e is None:
            return
        pos = self.position(call_id)
        self._stop_ringing(e)
        self._remove(e)
        self._log(now, Kind.ABANDON, call_id, wait=now - e.joined, position=pos)
        self._run(now)

    def callback_requested(self, call_id: str, number: str, now: float, *, hold_until: float = 0.0) -> None:
        """The caller asked to be called back on ``number`` and hangs up; the entry keeps
        its place in line. ``hold_until``: not placed before then (or ``callback_ready``): the
        caller is still on the line being told goodbye, and a one-line phone is busy until then."""
        e = self._entry(call_id)
        if e is None:
            raise QueueError(f"call {call_id} is not waiting", prompt="callback-unavailable")
        self._stop_ringing(e)
        e.callback, e.number = True, number
        e.next_announce = None
        e.next_attempt = hold_until
        self._log(now, Kind.CALLBACK, call_id, wait=now - e.joined, position=self.position(call_id),
                  reason="requested")
        self._run(now)

    def callback_ready(self, call_id: str, now: float) -> None:
        """The caller of a held callback (see ``callback_requested``) has hung up: place it."""
        e = self._entry(call_id)
        if e is not None and e.callback and e.cb_agent is None and not e.ringing and e.cb_attempts == 0:
            e.next_attempt = 0.0
            self._run(now)

    def callback_answered(self, call_id: str, now: float) -> None:
        """The callback caller answered: agent and caller are connected."""
        e = self._entry(call_id)
        if e is None or e.cb_agent is None:
            return
        agent = self._agents[e.cb_agent]
        self._remove(e)
        self._log(now, Kind.CALLBACK, call_id, agent=agent.id, reason="answered")
        self._connect(e, agent, now)
        self._run(now)

    def callback_failed(self, call_id: str, now: float) -> None:
        """The callback caller did not answer: retry later in the same place, or give up."""
        e = self._entry(call_id)
        if e is None or e.cb_agent is None:
            return
        agent = self._agents[e.cb_agent]
        e.cb_agent = None
        agent.activity, agent.call_id = _Activity.IDLE, None
        e.cb_attempts += 1
        if e.cb_attempts >= self.config.callback_attempts:
            self._remove(e)
            self._log(now, Kind.CALLBACK, call_id, agent=agent.id, wait=now - e.joined,
                      reason="failed")
        else:
            e.next_attempt = now + self.config.callback_retry
            self._log(now, Kind.CALLBACK, call_id, agent=agent.id, reason="retry")
        self._run(now)

    # Agent inputs -----------------------------------------------------------------------

    def agent_login(self, agent: str, now: float, skills: Mapping[str, int] | None = None) -> None:
        a = self._agents.get(agent)
        if a is None:
            self._add_agent(agent, dict(skills or {}), static=False, now=now)
        elif not a.logged_in:
            a.logged_in = True
            if skills is not None:
                a.skills = dict(skills)
            self._log(now, Kind.LOGIN, agent=agent)
        self._run(now)

    def agent_logout(self, agent: str, now: float) -> None:
        a = self._require(agent)
        if a.static:
            raise QueueError(f"{agent} is a static member of {self.config.name}",
                             prompt="agent-static")
        if not a.logged_in:
            return
        if a.activity is _Activity.RINGING:
            self._withdraw_offer(a, now, missed=False)
        a.logged_in = False
        a.paused = None
        self._log(now, Kind.LOGOUT, agent=agent)
        if self.config.leave_empty and not any(x.logged_in for x in self._agents.values()):
            for e in [e for e in self._line if not e.callback]:
                self._overflow(e, now, "leaveempty")
        self._run(now)

    def agent_pause(self, agent: str, now: float, reason: str = "") -> None:
        a = self._require(agent)
        if not a.logged_in or a.paused is not None:
            return
        if a.activity is _Activity.RINGING:
            self._withdraw_offer(a, now, missed=False)
        a.paused = reason
        self._log(now, Kind.PAUSE, agent=agent, reason=reason)
        self._run(now)

    def agent_unpause(self, agent: str, now: float, reason: str = "") -> None:
        a = self._require(agent)
        if a.paused is None:
            return
        a.paused = None
        a.misses = 0
        self._log(now, Kind.UNPAUSE, agent=agent, reason=reason)
        self._run(now)

    def agent_answered(self, agent: str, call_id: str, now: float) -> None:
        """The agent answered the offer of ``call_id`` (for a callback: the agent's leg)."""
        a = self._require(agent)
        e = self._entry(call_id)
        if e is None or a.call_id != call_id or a.activity is not _Activity.RINGING:
            return  # a late answer to an offer already withdrawn; StopRinging was sent
        a.misses = 0
        if e.callback:
            e.ringing.discard(agent)
            e.ring_deadline = None
            e.cb_agent = agent
            a.activity = _Activity.ON_CALL
            self._log(now, Kind.CALLBACK, call_id, agent=agent, reason="placed")
            return
        others = tuple(sorted(e.ringing - {agent}))
        for o in others:
            oa = self._agents[o]
            oa.activity, oa.call_id = _Activity.IDLE, None
        if others:
            self._actions.append(StopRinging(call_id, others))
        e.ringing.clear()
        self._remove(e)
        self._connect(e, a, now)
        self._run(now)

    def agent_no_answer(self, agent: str, call_id: str, now: float) -> None:
        """The offer to ``agent`` failed (declined, busy, unreachable)."""
        a = self._agents.get(agent)
        if a is None or a.call_id != call_id or a.activity is not _Activity.RINGING:
            return
        self._withdraw_offer(a, now, missed=True, tell=False)
        self._run(now)

    def agent_in_use(self, agent: str, in_use: bool, now: float) -> None:
        """The agent's phone is busy (or free again) with a call this queue did not give:
        a direct call or another queue's. An agent on a call is not offered another."""
        a = self._require(agent)
        a.busy_elsewhere = in_use
        if in_use and a.activity is _Activity.RINGING:
            self._withdraw_offer(a, now, missed=False)
        self._run(now)

    def call_ended(self, call_id: str, now: float) -> None:
        """Either party hung up a connected call."""
        self._finish(call_id, now, Kind.COMPLETE, "")

    def call_transferred(self, call_id: str, target: str, now: float) -> None:
        """The agent transferred the call to ``target``; the agent is done with it."""
        self._finish(call_id, now, Kind.TRANSFER, target)

    # Time -------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        for e in list(self._line):
            if e.ring_deadline is not None and now >= e.ring_deadline:
                rung = [self._agents[x] for x in sorted(e.ringing)]
                self._actions.append(StopRinging(e.call_id, tuple(x.id for x in rung)))
                for a in rung:
                    self._withdraw_offer(a, now, missed=True, tell=False)
        mw = self.config.max_wait
        if mw is not None:
            for e in list(self._line):
                if not e.callback and now >= e.joined + mw:
                    self._overflow(e, now, "timeout")
        self._run(now)

    # Internals --------------------------------------------------------------------------

    def _log(self, now: float, kind: Kind, call_id: str = "", **kw: object) -> None:
        self.log.append(QueueEvent(now, self.config.name, kind, call_id, **kw))  # type: ignore[arg-type]

    def _add_agent(self, agent: str, skills: dict[str, int], static: bool, now: float) -> None:
        self._order += 1
        self._agents[agent] = _Agent(agent, self._order, static, skills)
        self._log(now, Kind.LOGIN, agent=agent)

    def _require(self, agent: str) -> _Agent:
        a = self._agents.get(agent)
        if a is None:
            raise QueueError(f"{agent} is not a member of {self.config.name}",
                             prompt="agent-not-member")
        return a

    def _entry(self, call_id: str) -> _Entry | None:
        for e in self._line:
            if e.call_id == call_id:
                return e
        return None

    def _remove(self, e: _Entry) -> None:
        self._line.remove(e)

    def _stop_ringing(self, e: _Entry) -> None:
        if e.ringing:
            for x in e.ringing:
                a = self._agents[x]
                a.activity, a.call_id = _Activity.IDLE, None
            self._actions.append(StopRinging(e.call_id, tuple(sorted(e.ringing))))
            e.ringing.clear()
            e.ring_deadline = None
        if e.cb_agent is not None:
            a = self._agents[e.cb_agent]
            a.activity, a.call_id = _Activity.IDLE, None
            e.cb_agent = None

    def _withdraw_offer(self, a: _Agent, now: float, *, missed: bool, tell: bool = True) -> None:
        """End the offer ringing at ``a``; a miss counts towards auto-pause."""
        e = self._entry(a.call_id or "")
        a.activity, a.call_id = _Activity.IDLE, None
        if e is not None:
            if tell:
                self._actions.append(StopRinging(e.call_id, (a.id,)))
            e.ringing.discard(a.id)
            if missed:
                self._log(now, Kind.RING_NO_ANSWER, e.call_id, agent=a.id,
                          wait=now - e.ring_started)
            if not e.ringing:
                e.ring_deadline = None
                # after a miss, wait before offering again; a withdrawn offer goes again now
                e.next_attempt = now + self.config.retry if missed else 0.0
        if missed:
            a.misses += 1
            if self.config.max_misses and a.misses >= self.config.max_misses and a.paused is None:
                a.paused = "autopause"
                self._log(now, Kind.PAUSE, agent=a.id, reason="autopause")

    def _overflow(self, e: _Entry, now: float, reason: str) -> None:
        self._stop_ringing(e)
        self._remove(e)
        self._log(now, Kind.OVERFLOW, e.call_id, wait=now - e.joined, reason=reason)
        self._actions.append(Overflow(e.call_id, self.config.overflow, reason))

    def _connect(self, e: _Entry, a: _Agent, now: float) -> None:
        a.activity, a.call_id = _Activity.ON_CALL, e.call_id
        self._talks[e.call_id] = _Talk(a.id, e.number, now)
        self._log(now, Kind.CONNECT, e.call_id, agent=a.id, wait=now - e.joined)
        self._actions.append(Connect(e.call_id, a.id))

    def _finish(self, call_id: str, now: float, kind: Kind, target: str) -> None:
        t = self._talks.pop(call_id, None)
        if t is None:
            return
        a = self._agents[t.agent]
        wrap = self.config.wrapup
        self._log(now, kind, call_id, agent=a.id, talk=now - t.connected, wrapup=wrap,
                  reason=target)
        self._handle_times.append(now - t.connected + wrap)
        a.calls_taken += 1
        a.last_call_end = now
        a.call_id = None
        a.activity = _Activity.WRAP_UP if wrap > 0 else _Activity.IDLE
        a.wrap_until = now + wrap
        if self.config.sticky_seconds > 0:
            self._sticky[t.number] = (a.id, now)
        self._run(now)

    def _view(self, a: _Agent) -> AgentView:
        return AgentView(a.id, a.order, a.skills, a.last_call_end, a.calls_taken)

    def _run(self, now: float) -> None:
        """Bring the queue up to date at ``now``: end wrap-ups, offer calls, announce."""
        self._now = max(self._now, now)
        for a in self._agents.values():
            if a.activity is _Activity.WRAP_UP and now >= a.wrap_until:
                a.activity = _Activity.IDLE
        for e in self._line:
            if e.next_attempt and now >= e.next_attempt:
                e.next_attempt = 0.0
        for e in list(self._line):
            if e.ringing or e.cb_agent is not None or e.next_attempt > now:
                continue
            free = [a for a in self._agents.values() if a.free()]
            if not free:
                break
            self._offer(e, free, now)
        self._announce(now)

    def _offer(self, e: _Entry, free: list[_Agent], now: float) -> None:
        picked: list[str] = []
        ring_all = self._strategy.ring_all
        sticky = self._sticky.get(e.number)
        if sticky and not e.sticky_done:
            agent, since = sticky
            if now - since <= self.config.sticky_seconds:
                if any(a.id == agent for a in free):
                    picked, ring_all = [agent], False
                    e.sticky_done = True  # offered once; after that the strategy decides
            else:
                del self._sticky[e.number]
        if not picked:
            picked = self._strategy.pick([self._view(a) for a in free], e.view(), now,
                                         self._sstate, self._rng)
        if not picked:
            return
        if e.callback or not ring_all:
            picked = picked[:1]
        for x in picked:
            a = self._agents[x]
            a.activity, a.call_id = _Activity.RINGING, e.call_id
        self._sstate.last_order = self._agents[picked[-1]].order
        e.ringing = set(picked)
        e.ring_started = now
        e.ring_deadline = now + self.config.ring_timeout
        if e.callback:
            self._actions.append(PlaceCallback(e.call_id, e.number, picked[0]))
        else:
            self._actions.append(RingAgents(e.call_id, tuple(picked), self.config.ring_timeout))

    def _ewt(self, position: int) -> int | None:
        available = sum(1 for a in self._agents.values() if a.logged_in and a.paused is None)
        if available == 0:
            return None
        aht = (sum(self._handle_times) / len(self._handle_times) if self._handle_times
               else self.config.default_handle_time)
        return math.ceil(position * aht / available)

    def _announce(self, now: float) -> None:
        for i, e in enumerate(self._line):
            if e.next_announce is None or now < e.next_announce or e.callback:
                continue
            e.next_announce = now + self.config.announce_every
            if e.ringing:
                continue  # an agent is about to answer; do not talk over the ring
            pos, ewt = i + 1, self._ewt(i + 1)
            say_pos = pos if e.said_position is None or pos <= e.said_position else None
            say_ewt = ewt if ewt is not None and (e.said_ewt is None or ewt <= e.said_ewt) else None
            if say_pos is not None:
                e.said_position = say_pos
            if say_ewt is not None:
                e.said_ewt = say_ewt
            self._actions.append(Announce(e.call_id, say_pos, say_ewt))
