"""Queues and the recording policy as configuration data: every bad field named by its path,
good documents turned into the specs the engine runs on."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from firmware.acd.queue import Connect, Member, Queue, QueueConfig, RingAgents
from firmware.acd.schema import DEFAULTS, PRIORITY, queue_config, queue_spec, queue_specs, validate_queues
from firmware.config.recpolicy import RecordingPolicy, decide, recording_policy, validate_recording_policy

EXTS = {"1001", "1002", "1003"}

SALES: dict[str, Any] = {
    "id": "sales", "name": "Sales", "number": "600", "strategy": "skills",
    "members": [{"agent": "1001", "skills": {"french": 3}}],
    "agents": [{"agent": "1002", "skills": {"french": 1}}],
    "ring_timeout": 20, "retry": 2, "wrapup": 5.5, "max_misses": 0,
    "max_wait": 300, "max_len": 10,
    "overflow": {"goto": "queue", "target": "support"},
    "join_empty": False, "leave_empty": True,
    "announce_every": 45, "announce_position": False, "announce_wait": True,
    "sticky_seconds": 3600, "skills": {"french": 2}, "widen_after": 20, "widen_step": 2,
    "default_handle_time": 240, "callback_key": "1", "callback_attempts": 2, "callback_retry": 90,
    "exit_key": "0", "exit": {"goto": "menu", "target": "main"},
    "priority_callers": ["1003", "+4420555"], "service_level": 30, "recording": "always",
}
SUPPORT: dict[str, Any] = {"id": "support", "number": "601"}


def errors(queues: Any, **kw: Any) -> dict[str, str]:
    known: dict[str, Any] = {"extensions": EXTS, "menus": {"main"}, "conditions": {"office"}}
    known.update(kw)
    return {e.path: e.message for e in validate_queues(queues, **known)}


def with_(**changes: Any) -> list[dict[str, Any]]:
    q = copy.deepcopy(SALES)
    for k, v in changes.items():
        if v is ...:
            del q[k]
        else:
            q[k] = v
    return [q, dict(SUPPORT)]


def test_a_full_queue_and_a_minimal_one_are_valid() -> None:
    assert errors([SALES, SUPPORT]) == {}
    assert errors([]) == {} and errors(None) == {}


def test_every_field_has_a_default_from_the_engine() -> None:
    spec = queue_spec(SUPPORT)
    cfg = QueueConfig("support")
    assert spec.config == cfg  # the minimal document is the engine's defaults exactly
    assert (spec.number, spec.name, spec.overflow, spec.exit_key, spec.exit, spec.callback_key) == \
        ("601", "", None, None, None, None)
    assert (spec.service_level, spec.recording, spec.announce_position, spec.announce_wait) == \
        (20.0, "never", True, True)
    assert set(DEFAULTS) | {"id", "number"} >= set(SALES)  # the example uses only known fields


def test_spec_of_a_full_queue() -> None:
    spec = queue_spec(SALES)
    c = spec.config
    assert spec.id == c.name == "sales" and spec.number == "600" and spec.name == "Sales"
    assert c.strategy == "skills" and c.members == (Member("1001", {"french": 3}),)
    assert (c.ring_timeout, c.retry, c.wrapup, c.max_misses, c.max_wait, c.max_len) == (20, 2, 5.5, 0, 300, 10)
    assert (c.join_empty, c.leave_empty, c.announce_every, c.sticky_seconds) == (False, True, 45, 3600)
    assert (c.skills, c.widen_after, c.widen_step, c.default_handle_time) == ({"french": 2}, 20, 2, 240)
    assert (c.callback_attempts, c.callback_retry) == (2, 90)
    assert json.loads(c.overflow) == {"goto": "queue", "target": "support"}
    assert spec.overflow == {"goto": "queue", "target": "support"}
    assert spec.agents == {"1002": {"french": 1}}
    assert (spec.callback_key, spec.exit_key, spec.exit) == ("1", "0", {"goto": "menu", "target": "main"})
    assert spec.priority_of("1003") == PRIORITY and spec.priority_of("+4420555") == PRIORITY
    assert spec.priority_of("1002") == 0
    assert (spec.service_level, spec.recording, spec.announce_position) == (30, "always", False)
    assert queue_config(SALES) == c
    assert set(queue_specs([SALES, SUPPORT])) == {"sales", "support"} and queue_specs(None) == {}


def test_the_engine_runs_on_a_spec() -> None:
    spec = queue_spec({"id": "q", "number": "600", "strategy": "linear", "ring_timeout": 7,
                       "members": [{"agent": "1001"}, {"agent": "1002"}]})
    q = Queue(spec.config, now=0.0)
    q.caller_joined("c1", "555", priority=spec.priority_of("555"), now=0.0)
    actions = []
    while (a := q.next_action()) is not None:
        actions.append(a)
    assert RingAgents("c1", ("1001",), timeout=7.0) in actions
    q.agent_answered("1001", "c1", now=2.0)
    assert q.next_action() == Connect("c1", "1001")
    assert [(e.queue, e.kind.value, e.agent) for e in q.log] == [
        ("q", "LOGIN", "1001"), ("q", "LOGIN", "1002"), ("q", "ENTER", ""), ("q", "CONNECT", "1001")]


@pytest.mark.parametrize("changes, path, words", [
    ({"strategy": "fast"}, "queues[sales].strategy", "unknown strategy 'fast' (one of: ringall"),
    ({"members": [{"agent": "1001"}, {"agent": "1099"}]}, "queues[sales].members[1].agent", "no extension '1099'"),
    ({"members": [{"agent": "1001"}, {"agent": "1001"}]}, "queues[sales].members[1].agent", "twice"),
    ({"members": [{"agent": 1001}]}, "queues[sales].members[0].agent", "missing agent"),
    ({"members": [{"agent": "1001", "level": 3}]}, "queues[sales].members[0].level", "unknown field"),
    ({"members": {"1001": {}}}, "queues[sales].members", "a list"),
    ({"agents": [{"agent": "1001"}]}, "queues[sales].agents[0].agent", "also a static member"),
    ({"agents": [{"agent": "1002", "skills": {"french": 101}}]}, "queues[sales].agents[0].skills.french", "0-100"),
    ({"agents": [{"agent": "1002", "skills": {"french": "high"}}]}, "queues[sales].agents[0].skills.french",
     "whole number"),
    ({"skills": {"a b": 1}}, "queues[sales].skills.a b", "skill name"),
    ({"skills": ["french"]}, "queues[sales].skills", "an object"),
    ({"ring_timeout": 0}, "queues[sales].ring_timeout", "> 0"),
    ({"ring_timeout": "15"}, "queues[sales].ring_timeout", "number of seconds"),
    ({"retry": -1}, "queues[sales].retry", ">= 0"),
    ({"wrapup": True}, "queues[sales].wrapup", "number of seconds"),
    ({"max_misses": 1.5}, "queues[sales].max_misses", "whole number"),
    ({"max_wait": 0}, "queues[sales].max_wait", "> 0"),
    ({"max_len": 0}, "queues[sales].max_len", ">= 1"),
    ({"announce_every": -5}, "queues[sales].announce_every", ">= 0"),
    ({"sticky_seconds": float("nan")}, "queues[sales].sticky_seconds", "number of seconds"),
    ({"widen_step": -1}, "queues[sales].widen_step", "whole number"),
    ({"default_handle_time": 0}, "queues[sales].default_handle_time", "> 0"),
    ({"callback_attempts": 0}, "queues[sales].callback_attempts", ">= 1"),
    ({"callback_retry": -1}, "queues[sales].callback_retry", ">= 0"),
    ({"service_level": 0}, "queues[sales].service_level", "> 0"),
    ({"join_empty": "yes"}, "queues[sales].join_empty", "true or false"),
    ({"announce_wait": 1}, "queues[sales].announce_wait", "true or false"),
    ({"callback_key": "12"}, "queues[sales].callback_key", "single DTMF key"),
    ({"callback_key": "E"}, "queues[sales].callback_key", "single DTMF key"),
    ({"callback_key": "0"}, "queues[sales].exit_key", "already asks for a callback"),
    ({"exit": ...}, "queues[sales].exit", "go together"),
    ({"exit_key": None}, "queues[sales].exit_key", "go together"),
    ({"exit": {"goto": "menu", "target": "nowhere"}}, "queues[sales].exit.target", "no menu 'nowhere'"),
    ({"exit": {"goto": "repeat"}}, "queues[sales].exit.goto", "unknown destination 'repeat'"),
    ({"overflow": {"goto": "extension", "target": "1099"}}, "queues[sales].overflow.target", "no extension '1099'"),
    ({"overflow": {"goto": "queue", "target": "nope"}}, "queues[sales].overflow.target", "no queue 'nope'"),
    ({"overflow": {"goto": "queue", "target": "sales"}}, "queues[sales].overflow.target", "into itself"),
    ({"overflow": {"goto": "condition", "target": "night"}}, "queues[sales].overflow.target", "no condition"),
    ({"overflow": {"goto": "hangup", "target": "x"}}, "queues[sales].overflow.target", "takes no target"),
    ({"overflow": {"goto": "extension"}}, "queues[sales].overflow.target", "needs a target"),
    ({"overflow": {"goto": "voicemail", "target": "1001", "when": 1}}, "queues[sales].overflow.when",
     "unknown field"),
    ({"overflow": "1001"}, "queues[sales].overflow", "a destination"),
    ({"priority_callers": "1003"}, "queues[sales].priority_callers", "a list"),
    ({"priority_callers": ["10-03"]}, "queues[sales].priority_callers[0]", "caller number"),
    ({"recording": "sometimes"}, "queues[sales].recording", "always, never, on-demand"),
    ({"name": 'Sa"les'}, "queues[sales].name", "no quotes"),
    ({"colour": "red"}, "queues[sales].colour", "unknown field"),
    ({"number": ...}, "queues[sales].number", "missing number"),
    ({"number": 600}, "queues[sales].number", "as text"),
    ({"number": "6"}, "queues[sales].number", "2-8 digits"),
    ({"number": "1001"}, "queues[sales].number", "1001 is an extension"),
    ({"number": "500"}, "queues[sales].number", "already an IVR number"),
    ({"number": "601"}, "queues[support].number", "also queue 'sales'"),
])
def test_a_bad_field_is_named_by_its_path(changes: dict[str, Any], path: str, words: str) -> None:
    found = errors(with_(**changes), taken_numbers={"500"})
    assert path in found, found
    assert words in found[path], found[path]
    assert len(found) == 1, found  # nothing else is blamed


def test_ids() -> None:
    found = errors([{"number": "600"}, {"id": "Sales!", "number": "601"}, SUPPORT, SUPPORT, "q"])
    assert found == {
        "queues[0].id": "missing id",
        "queues[1].id": "an id is 1-32 of a-z, 0-9, _ and -, not 'Sales!'",
        "queues[support].id": "duplicate id 'support'",
        "queues[4]": "a queue is an object with an id and a number",
    }
    assert errors({"sales": SALES}) == {"queues": "a list of queue objects (see docs/config.md)"}


def test_every_problem_is_reported_at_once() -> None:
    found = errors(with_(strategy="fast", ring_timeout=-1, callback_key="x", colour=1))
    assert {"queues[sales].strategy", "queues[sales].ring_timeout", "queues[sales].callback_key",
            "queues[sales].colour"} <= set(found)


def test_overflow_rings_between_queues_are_refused() -> None:
    a = {"id": "a", "number": "601", "overflow": {"goto": "queue", "target": "b"}}
    b = {"id": "b", "number": "602", "overflow": {"goto": "queue", "target": "c"}}
    c = {"id": "c", "number": "603", "overflow": {"goto": "queue", "target": "a"}}
    found = errors([a, b, c])
    assert list(found) == ["queues[c].overflow.target"]
    assert "a -> b -> c -> a" in found["queues[c].overflow.target"]
    c["overflow"] = {"goto": "extension", "target": "1001"}  # a chain that ends somewhere is fine
    assert errors([a, b, c]) == {}


def test_unknown_sets_are_not_checked() -> None:
    q = with_(members=[{"agent": "9999"}], exit={"goto": "menu", "target": "elsewhere"})
    assert errors(q, extensions=None, menus=None, conditions=None) == {}


def test_voicemail_defaults_to_the_extensions_and_can_be_switched_off() -> None:
    q = with_(overflow={"goto": "voicemail", "target": "1002"})
    assert errors(q) == {}
    assert errors(q, voicemail=set()) == {"queues[sales].overflow.target": "no voicemail '1002'"}


# Recording policy ----------------------------------------------------------------------

def test_recording_policy_validation() -> None:
    ok = {"extensions": {"1001": "always", "1002": "never"}, "numbers": {"500": "on-demand"}}
    assert validate_recording_policy(ok, EXTS, {"500", "600"}) == []
    assert validate_recording_policy(None, EXTS, set()) == []
    bad = {"extensions": {"1099": "always", "1001": "loud"}, "numbers": {"700": "never"}, "queues": {}}
    found = {e.path: e.message for e in validate_recording_policy(bad, EXTS, {"500"})}
    assert found == {
        "recording.queues": "unknown field (known: extensions, numbers)",
        "recording.extensions.1099": "no extension '1099'",
        "recording.extensions.1001": "mode must be one of always, never, on-demand, not 'loud'",
        "recording.numbers.700": "no IVR or queue number '700'",
    }
    assert [e.path for e in validate_recording_policy([], EXTS, set())] == ["recording"]
    assert [e.path for e in validate_recording_policy({"numbers": ["500"]}, EXTS, set())] == ["recording.numbers"]


def test_recording_policy_decides_a_call() -> None:
    pol = recording_policy({"extensions": {"1001": "always", "1002": "never"}, "numbers": {"500": "on-demand"}})
    assert pol.mode(extensions=["1001", "1003"]) == "always"
    assert pol.mode(extensions=["1001", "1002"]) == "never"  # an explicit never keeps a line private
    assert pol.mode(extensions=["1003"], numbers=["500"]) == "on-demand"
    assert pol.mode(extensions=["1003"], default="always") == "always"  # the box default fills the gaps
    assert pol.mode(extensions=["1003"], queue_mode="always") == "always"
    assert pol.mode(extensions=["1001"], queue_mode="never") == "always"  # a queue's never is no opt-in
    assert pol.mode(extensions=["1003"], queue_mode="never", default="always") == "always"
    assert pol.mode() == "never" and recording_policy(None) == RecordingPolicy()
    assert decide([]) == "never" and decide(["on-demand", "always"]) == "always"
