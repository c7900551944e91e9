"""The features the PBX is built with: each registers the numbers it answers to in the number
plan (firmware.numberplan) and the destination kinds it handles, so the call controller's
route() and place() are look-ups, not chains of cases.

The order is the look-up order within a tier of the plan (IVR numbers, queues, voicemail and
feature codes, then extensions: what the box always did should a conflict the configuration
refuses ever reach it). A new feature is a module with a ``register(pbx)`` and a line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from firmware.events import Setup
from firmware.numberplan import Destination, Keyed

from . import apps, outbound, queues, voicemail

if TYPE_CHECKING:
    from .b2bua import Call
    from .pbx import Pbx

# A destination kind's handler: places the call and says True, or False for "not available"
# (a queue or mailbox that is gone). ``voicemail``: an extension may divert to its mailbox.
Placer = Callable[["Call", Setup, Destination, bool], bool]


def extensions(pbx: Pbx) -> None:
    """Extensions: their numbers, and "extension" destinations (ring every contact and port)."""
    pbx.plan.add(Keyed(lambda: pbx.extensions, lambda n: Destination("extension", n)))
    pbx.destinations["extension"] = pbx.place_extension


FEATURES: tuple[Callable[[Pbx], None], ...] = (
    apps.register_ivr,
    queues.register,
    voicemail.register,
    apps.register_codes,
    outbound.register,
    extensions,
)
