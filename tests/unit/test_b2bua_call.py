"""The call controller (firmware.pbx.b2bua.Call) on its own: legs and a host that record what
they are told. The SIP and media of real calls are in tests/e2e/test_calls.py."""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass, field

from firmware.events import Release
from firmware.pbx.b2bua import Call


@dataclass(eq=False)
class FakeLeg:
    name: str
    call: Call | None = None
    endpoint: None = None
    codecs: tuple = ()
    answered: bool = False
    ended: bool = False
    told: list = field(default_factory=list)

    def deliver(self, event: object) -> None:
        self.told.append(event)
        if isinstance(event, Release):
            self.ended = True


class FakeHost:
    def __init__(self) -> None:
        self.bridges: dict = {}
        self.cdrs: list = []
        self.ended: list[str] = []
        self.writer = self

    def cdr(self, record: object) -> None:
        self.cdrs.append(record)

    def call_ended(self, call: Call) -> None:
        self.ended.append(call.id)


def test_an_ended_call_lets_go_of_its_legs_and_is_freed_without_the_cyclic_gc():
    """A call and its legs point at each other. The legs outlive the call by their BYE or CANCEL
    exchange; if they kept pointing at it, each call would wait for the cyclic GC, whose passes
    took 115 ms at 300 calls a second (docs/benchmarks.md, the sipp setups rows)."""
    host, caller, callee = FakeHost(), FakeLeg("caller"), FakeLeg("callee")
    call = Call(host, caller, call_id="c1")  # type: ignore[arg-type]
    call.add_callee(callee)
    call.cdr.callee = "7002"
    assert caller.call is call and callee.call is call
    freed = weakref.ref(call)
    gc.disable()
    try:
        call.end("normal", source=caller)
        assert [type(e) for e in callee.told] == [Release] and caller.told == []
        assert host.ended == [call.id] and len(host.cdrs) == 1
        assert caller.call is None and callee.call is None
        del call
        assert freed() is None
    finally:
        gc.enable()
