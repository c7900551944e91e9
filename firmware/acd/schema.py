"""Queues as configuration data: validate a ``queues`` list, turn a queue document into a spec.

A queue document is a JSON object (docs/config.md has the reference)::

    {"id": "sales", "number": "600", "strategy": "leastrecent",
     "members": [{"agent": "1001", "skills": {"french": 3}}], "agents": [{"agent": "1002"}],
     "overflow": {"goto": "extension", "target": "1001"}, "callback_key": "1", ...}

``validate_queues`` returns every problem as a ``FieldError`` naming its path, the way
``linebox config import`` reports them (``queues[sales].strategy: unknown strategy 'fast' ...``).
``queue_spec`` builds what the runtime needs from a document it accepted: the engine's
``QueueConfig`` plus what lives around the engine (the number, dynamic agents, keys, the
overflow and exit destinations, priority callers, service level, recording).

Every field but ``id`` and ``number`` is optional; ``DEFAULTS`` are the engine's own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping

from firmware.ivr.menu import DTMF_KEYS
from firmware.numberplan import Claim, conflicts
from firmware.ivr.schema import _Validator
from firmware.schema import RECORDING_MODES, FieldError

from .queue import Member, QueueConfig
from .strategies import STRATEGIES

__all__ = ["DEFAULTS", "PRIORITY", "QueueSpec", "validate_queues", "queue_spec", "queue_specs", "queue_config"]

ID = re.compile(r"^[a-z0-9_-]{1,32}$")
NUMBER = re.compile(r"^[0-9]{2,8}$")
CALLER = re.compile(r"^\+?[0-9]{1,32}$")
SKILL = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_SKILL_LEVEL = 100
PRIORITY = 10  # what a priority caller joins with (others join with 0)

_CFG = QueueConfig("defaults")
DEFAULTS: dict[str, Any] = {
    "name": "", "strategy": _CFG.strategy, "members": [], "agents": [],
    "ring_timeout": _CFG.ring_timeout, "retry": _CFG.retry, "wrapup": _CFG.wrapup,
    "max_misses": _CFG.max_misses, "max_wait": _CFG.max_wait, "max_len": _CFG.max_len,
    "overflow": None, "join_empty": _CFG.join_empty, "leave_empty": _CFG.leave_empty,
    "announce_every": _CFG.announce_every, "announce_position": True, "announce_wait": True,
    "sticky_seconds": _CFG.sticky_seconds, "skills": {}, "widen_after": _CFG.widen_after,
    "widen_step": _CFG.widen_step, "default_handle_time": _CFG.default_handle_time,
    "handle_time_window": _CFG.handle_time_window,
    "callback_key": None, "callback_attempts": _CFG.callback_attempts, "callback_retry": _CFG.callback_retry,
    "exit_key": None, "exit": None, "priority_callers": [], "service_level": 20.0, "recording": "never",
}
FIELDS = frozenset({"id", "number"} | set(DEFAULTS))
AGENT_FIELDS = frozenset({"agent", "skills"})


@dataclass(frozen=True)
class QueueSpec:
    """One configured queue: the engine's config and what the call path needs around it."""

    config: QueueConfig  # config.name is the queue id (the queue log's ``queue``)
    number: str
    name: str = ""
    agents: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # dynamic agent -> skills
    overflow: Mapping[str, Any] | None = None  # a destination {goto, target}; None: goodbye and hang up
    exit_key: str | None = None
    exit: Mapping[str, Any] | None = None
    callback_key: str | None = None
    priority_callers: frozenset[str] = frozenset()
    service_level: float = 20.0
    recording: str = "never"
    announce_position: bool = True
    announce_wait: bool = True

    @property
    def id(self) -> str:
        return self.config.name

    def priority_of(self, caller_number: str) -> int:
        """The priority a caller joins with."""
        return PRIORITY if caller_number in self.priority_callers else 0


def queue_spec(doc: Mapping[str, Any]) -> QueueSpec:
    """The spec of a queue document that ``validate_queues`` accepted."""
    d = {**DEFAULTS, **doc}

    def skills(x: Any) -> dict[str, int]:
        return {str(k): int(v) for k, v in (x or {}).items()}

    overflow = d["overflow"]
    config = QueueConfig(
        name=str(d["id"]), strategy=d["strategy"],
        members=tuple(Member(str(m["agent"]), skills(m.get("skills"))) for m in d["members"]),
        ring_timeout=float(d["ring_timeout"]), retry=float(d["retry"]), wrapup=float(d["wrapup"]),
        max_misses=int(d["max_misses"]),
        max_wait=None if d["max_wait"] is None else float(d["max_wait"]),
        max_len=None if d["max_len"] is None else int(d["max_len"]),
        # The engine carries the destination opaquely in its Overflow action.
        overflow="" if overflow is None else json.dumps(overflow, sort_keys=True),
        join_empty=d["join_empty"], leave_empty=d["leave_empty"],
        announce_every=float(d["announce_every"]), sticky_seconds=float(d["sticky_seconds"]),
        skills=skills(d["skills"]), widen_after=float(d["widen_after"]), widen_step=int(d["widen_step"]),
        default_handle_time=float(d["default_handle_time"]), handle_time_window=int(d["handle_time_window"]),
        callback_attempts=int(d["callback_attempts"]), callback_retry=float(d["callback_retry"]),
    )
    return QueueSpec(
        config=config, number=str(d["number"]), name=str(d["name"]),
        agents={str(a["agent"]): skills(a.get("skills")) for a in d["agents"]},
        overflow=None if overflow is None else dict(overflow),
        exit_key=d["exit_key"], exit=None if d["exit"] is None else dict(d["exit"]),
        callback_key=d["callback_key"], priority_callers=frozenset(d["priority_callers"]),
        service_level=float(d["service_level"]), recording=d["recording"],
        announce_position=d["announce_position"], announce_wait=d["announce_wait"],
    )


def queue_specs(queues: Any) -> dict[str, QueueSpec]:
    """Specs of a validated ``queues`` list, by id (None: no queues)."""
    return {str(doc["id"]): queue_spec(doc) for doc in queues or []}


def queue_config(doc: Mapping[str, Any]) -> QueueConfig:
    return queue_spec(doc).config


# Validation ---------------------------------------------------------------------------

def _seconds(v: Any, *, positive: bool = False) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")) \
            or v < 0 or (positive and v == 0):
        return f"a number of seconds {'> 0' if positive else '>= 0'}, not {v!r}"
    return None


def _whole(v: Any, *, least: int = 0) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        return f"a whole number >= {least}, not {v!r}"
    return None


def _boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"true or false, not {v!r}"


def _key(v: Any) -> str | None:
    if v is None or (isinstance(v, str) and len(v) == 1 and v in DTMF_KEYS):
        return None
    return f"a single DTMF key (0-9, *, #, A-D) or null, not {v!r}"


def _recording(v: Any) -> str | None:
    return None if v in RECORDING_MODES else f"one of {', '.join(RECORDING_MODES)}, not {v!r}"


def _name(v: Any) -> str | None:
    if not isinstance(v, str) or len(v) > 64 or any(c in v for c in '"\r\n<>'):
        return "up to 64 characters, no quotes, angle brackets or line breaks"
    return None


# field -> check of its value (None: fine); fields checked elsewhere are not listed.
_SCALARS: dict[str, Callable[[Any], str | None]] = {
    "name": _name,
    "ring_timeout": lambda v: _seconds(v, positive=True),
    "retry": _seconds, "wrapup": _seconds, "announce_every": _seconds, "sticky_seconds": _seconds,
    "widen_after": _seconds, "callback_retry": _seconds,
    "default_handle_time": lambda v: _seconds(v, positive=True),
    "service_level": lambda v: _seconds(v, positive=True),
    "max_wait": lambda v: None if v is None else _seconds(v, positive=True),
    "max_misses": _whole, "widen_step": _whole,
    "max_len": lambda v: None if v is None else _whole(v, least=1),
    "handle_time_window": lambda v: _whole(v, least=1),
    "callback_attempts": lambda v: _whole(v, least=1),
    "join_empty": _boolean, "leave_empty": _boolean, "announce_position": _boolean, "announce_wait": _boolean,
    "callback_key": _key, "exit_key": _key, "recording": _recording,
}


class _QueueChecker:
    def __init__(self, extensions: Collection[str] | None, dest: _Validator) -> None:
        self.extensions = extensions
        self.dest = dest  # the IVR's destination rules, so a queue's destinations mean the same
        self.errors: list[FieldError] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def skills(self, v: Any, path: str) -> None:
        if not isinstance(v, Mapping):
            self.err(path, "an object of skill name -> level")
            return
        for skill, level in v.items():
            if not isinstance(skill, str) or not SKILL.match(skill):
                self.err(f"{path}.{skill}", "a skill name is 1-32 letters, digits, _ or -")
            elif isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_SKILL_LEVEL:
                self.err(f"{path}.{skill}", f"a level is a whole number 0-{MAX_SKILL_LEVEL}, not {level!r}")

    def agents(self, v: Any, path: str) -> list[tuple[int, str]]:
        """Checks a members/agents list; returns (index, agent) of the agents it names."""
        if not isinstance(v, list):
            self.err(path, 'a list of {"agent": extension, "skills": {...}}')
            return []
        found: list[tuple[int, str]] = []
        for i, a in enumerate(v):
            p = f"{path}[{i}]"
            if not isinstance(a, Mapping):
                self.err(p, 'an object {"agent": extension, "skills": {...}}')
                continue
            for key in a:
                if key not in AGENT_FIELDS:
                    self.err(f"{p}.{key}", f"unknown field (known: {', '.join(sorted(AGENT_FIELDS))})")
            agent = a.get("agent")
            if not isinstance(agent, str) or not agent:
                self.err(f"{p}.agent", "missing agent (an extension number as text)")
                continue
            if self.extensions is not None and agent not in self.extensions:
                self.err(f"{p}.agent", f"no extension {agent!r}")
            if any(agent == x for _, x in found):
                self.err(f"{p}.agent", f"{agent} is listed twice")
            found.append((i, agent))
            if "skills" in a:
                self.skills(a["skills"], f"{p}.skills")
        return found

    def queue(self, doc: Mapping[str, Any], path: str, ident: str) -> None:
        for key in doc:
            if key not in FIELDS:
                self.err(f"{path}.{key}", "unknown field (see docs/config.md, section queues)")
        if doc.get("strategy", DEFAULTS["strategy"]) not in STRATEGIES:
            self.err(f"{path}.strategy", f"unknown strategy {doc['strategy']!r} (one of: {', '.join(STRATEGIES)})")
        for key, check in _SCALARS.items():
            if key in doc:
                problem = check(doc[key])
                if problem:
                    self.err(f"{path}.{key}", problem)
        members = {agent for _, agent in self.agents(doc.get("members", []), f"{path}.members")}
        for i, agent in self.agents(doc.get("agents", []), f"{path}.agents"):
            if agent in members:
                self.err(f"{path}.agents[{i}].agent", f"{agent} is also a static member; "
                                                      "an agent is one or the other")
        if "skills" in doc:
            self.skills(doc["skills"], f"{path}.skills")
        callers = doc.get("priority_callers", [])
        if not isinstance(callers, list):
            self.err(f"{path}.priority_callers", "a list of caller numbers")
        else:
            for i, c in enumerate(callers):
                if not isinstance(c, str) or not CALLER.match(c):
                    self.err(f"{path}.priority_callers[{i}]", f"a caller number (digits, may start with +), not {c!r}")
        ck, xk = doc.get("callback_key"), doc.get("exit_key")
        if ck is not None and ck == xk:
            self.err(f"{path}.exit_key", f"key {xk!r} already asks for a callback; pick another")
        if (xk is None) != (doc.get("exit") is None):
            missing = "exit" if xk is not None else "exit_key"
            self.err(f"{path}.{missing}", "exit_key and exit go together: the key and where it leads")
        for key in ("overflow", "exit"):
            dest = doc.get(key)
            if dest is None:
                continue
            n = len(self.dest.errors)
            self.dest.destination(dest, f"{path}.{key}", in_menu=False)
            if len(self.dest.errors) == n and isinstance(dest, Mapping) and dest.get("goto") == "queue" \
                    and dest.get("target") == ident:
                self.err(f"{path}.{key}.target", f"queue {ident!r} cannot send its callers into itself")


def validate_queues(queues: Any, *, extensions: Collection[str] | None, menus: Collection[str] | None,
                    conditions: Collection[str] | None, taken_numbers: Collection[str] = frozenset(),
                    voicemail: Collection[str] | None = None) -> list[FieldError]:
    """Every problem in a ``queues`` list, each with its path (``queues[sales].members[1].agent``).

    ``extensions``, ``menus``, ``conditions`` and ``voicemail`` (mailboxes; default: the
    extensions) are what destinations and agents may name; None means "not known here, do not
    check". ``taken_numbers`` are numbers already used otherwise (IVR numbers); a queue's number
    may be neither one of those, nor an extension, nor another queue's.
    """
    if queues is None:
        return []
    if not isinstance(queues, list):
        return [FieldError("queues", "a list of queue objects (see docs/config.md)")]
    errors: list[FieldError] = []
    entries: list[tuple[str, str, Mapping[str, Any]]] = []  # (path, id, doc)
    seen: set[str] = set()
    for i, doc in enumerate(queues):
        if not isinstance(doc, Mapping):
            errors.append(FieldError(f"queues[{i}]", "a queue is an object with an id and a number"))
            continue
        ident = doc.get("id")
        if ident is None:
            errors.append(FieldError(f"queues[{i}].id", "missing id"))
            continue
        if not isinstance(ident, str) or not ID.match(ident):
            errors.append(FieldError(f"queues[{i}].id", f"an id is 1-32 of a-z, 0-9, _ and -, not {ident!r}"))
            continue
        if ident in seen:
            errors.append(FieldError(f"queues[{ident}].id", f"duplicate id {ident!r}"))
            continue
        seen.add(ident)
        entries.append((f"queues[{ident}]", ident, doc))

    dest = _Validator(set(menus or ()), set(conditions or ()), None, None, extensions, seen,
                      voicemail if voicemail is not None else extensions)
    # An unknown set of menus/conditions means "do not check" for them too.
    dest.known["menu"] = None if menus is None else set(menus)
    dest.known["condition"] = None if conditions is None else set(conditions)
    checker = _QueueChecker(extensions, dest)
    checker.errors = dest.errors  # one list, so a queue's problems are reported together
    # Whose number a queue's may not be: the number plan's one rule (firmware.numberplan).
    claims = [Claim("extension", n, "") for n in extensions or ()] + [Claim("IVR number", n, "") for n in taken_numbers]
    for path, ident, doc in entries:
        number = doc.get("number")
        if number is None:
            checker.err(f"{path}.number", "missing number (2-8 digits callers dial to join)")
        elif not isinstance(number, str) or not NUMBER.match(number):
            checker.err(f"{path}.number", f"a number is 2-8 digits as text, e.g. \"600\", not {number!r}")
        else:
            claims.append(Claim("queue", number, f"{path}.number", ident))
        checker.queue(doc, path, ident)
    for c in conflicts(claims):
        checker.err(c.path, c.message)
    errors.extend(checker.errors)
    errors.extend(_overflow_loops(entries))
    return errors


def _overflow_loops(entries: list[tuple[str, str, Mapping[str, Any]]]) -> list[FieldError]:
    """Queues overflowing into each other in a ring: a caller would be passed round forever
    (at once, when they are all full or empty)."""
    nxt: dict[str, str] = {}
    for _, ident, doc in entries:
        o = doc.get("overflow") if isinstance(doc, Mapping) else None
        if isinstance(o, Mapping) and o.get("goto") == "queue" and isinstance(o.get("target"), str) \
                and o["target"] != ident:
            nxt[ident] = o["target"]
    errors: list[FieldError] = []
    reported: set[str] = set()
    for start in nxt:
        trail = [start]
        while trail[-1] in nxt and nxt[trail[-1]] not in trail:
            trail.append(nxt[trail[-1]])
        last = trail[-1]
        if last in nxt and nxt[last] == start and not reported & set(trail):
            reported |= set(trail)
            ring = " -> ".join(trail + [start])
            errors.append(FieldError(f"queues[{last}].overflow.target",
                                     f"overflows go round in a ring ({ring}); send one of them elsewhere"))
    return errors
