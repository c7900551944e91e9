"""Outbound routes as a feature: a number no one inside owns, matching a route's pattern
(firmware.config.routes), leaves on that route's analog lines, rewritten as the route says.

Routes come last in the number plan (firmware.numberplan, Tier.PATTERN): an extension, an IVR
or queue number is never taken by a route.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from firmware.events import Release, Setup
from firmware.numberplan import Destination, Patterns

if TYPE_CHECKING:
    from .b2bua import Call
    from .services import FeatureHost


def register(pbx: FeatureHost) -> None:
    def match(number: str) -> Destination | None:
        if pbx.lines is None:  # no analog board: nothing leaves
            return None
        route = pbx.outbound.match(number)
        return None if route is None else Destination("route", route.outside(number), lines=route.lines)

    def dial(call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool:
        leg = pbx.lines.trunk(replace(setup, callee=dest.target or ""), dest.lines)
        if leg is None:
            call.fail("congestion", 503, "All Lines Busy")
            return True
        call.add_callee(leg)
        pbx.spawn(leg.start(), f"trunk-{call.id}", on_error=lambda: call.on_event(leg, Release("congestion", 503)))
        call.start_no_answer_timer(pbx.setting("call.no_answer_timeout"))
        return True

    pbx.plan.add(Patterns(match, lambda number, final: pbx.outbound.verdict(number, final)))
    pbx.destinations["route"] = dial
