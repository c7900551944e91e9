"""The features the PBX is built with: each registers the numbers it answers to in the number
plan (firmware.numberplan) and the destination kinds it handles, so the call controller's
route() and place() are look-ups, not chains of cases.

The order is the look-up order within a tier of the plan (IVR numbers, queues, voicemail and
feature codes, then extensions: what the box always did should a conflict the configuration
refuses ever reach it). A new feature is a module with a ``register(pbx)`` and a line here; the
``pbx`` it is given is a services.FeatureHost, which says what a feature may use.
"""

from __future__ import annotations

from typing import Callable

from firmware.numberplan import Destination, Keyed

from . import apps, outbound, queues, voicemail
from .services import FeatureHost


def extensions(pbx: FeatureHost) -> None:
    """Extensions: their numbers, and "extension" destinations (ring every contact and port)."""
    pbx.plan.add(Keyed(lambda: pbx.extensions, lambda n: Destination("extension", n)))
    pbx.destinations["extension"] = pbx.place_extension


# The PBX hands every register() the same object, so it must offer the most any of them asks
# for: the queues' (a FeatureHost with the queue runtime).
FEATURES: tuple[Callable[[queues.QueueFeatureHost], None], ...] = (
    apps.register_ivr,
    queues.register,
    voicemail.register,
    apps.register_codes,
    outbound.register,
    extensions,
)
