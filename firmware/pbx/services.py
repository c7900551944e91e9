"""What the PBX offers the modules it is built of, each group of users seeing only what it reads.

pbx.py imports the legs, the applications and the features. If they named its class in return,
even only in type hints, each would know the whole front desk and the front desk each of them:
a circle. Instead each is given one of the narrow interfaces below, typing Protocols that the
front desk offers without naming them, and this module imports nothing from pbx.py. A test, or
another front desk, can hand a leg a small object of its own.

Three interfaces live with their only user because they name its classes: ``b2bua.CallHost``
(what a ``Call`` needs), ``sipleg.SipHost`` (what a SIP leg needs) and ``queues.AgentHost`` (an
agent's feature code reaches the queue runtime). Were they here, this module and theirs would
import each other. pbx.py checks, for a type checker, that the front desk offers every one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

from firmware.events import Setup
from firmware.numberplan import Destination

from .b2bua import CallHost

if TYPE_CHECKING:
    import asyncio
    from collections import deque
    from pathlib import Path

    from firmware.config.recpolicy import RecordingPolicy
    from firmware.config.routes import Routes
    from firmware.ivr.timecond import TimeCondition
    from firmware.media.player import SharedSource, SoundCache
    from firmware.media.relay import MediaEngine
    from firmware.numberplan import NumberPlan
    from firmware.prompts import PromptSet
    from firmware.store.messages import Mailboxes

    from .b2bua import Call
    from .sipleg import OutboundLeg

# A destination kind's handler: places the call and says True, or False for "not available"
# (a queue or mailbox that is gone). ``voicemail``: an extension may divert to its mailbox.
Placer = Callable[["Call", Setup, Destination, bool], bool]


class AppHost(Protocol):
    """What an application leg (apps.py: the feature codes, the IVR) reads: the loop and media
    engine it answers with, where its prompts come from, where it notes the digits it heard,
    and, for the IVR, which extensions exist and where a time condition leads."""

    loop: asyncio.AbstractEventLoop
    media: MediaEngine
    sounds: SoundCache  # prompts decoded once, shared by every call
    custom_prompts: Path  # rendered from configuration text, and uploads
    media_events: deque[dict[str, Any]]
    extensions: dict[str, Any]

    def resolve(self, kind: str, target: str | None) -> tuple[str, str | None]: ...


class MailboxHost(AppHost, Protocol):
    """What a voicemail leg reads besides: the mailboxes' settings (and PINs), and whom to tell
    that a mailbox's messages changed (the waiting indicators)."""

    mailboxes: dict[str, dict[str, Any]]

    def mailbox_changed(self, mailbox: str) -> None: ...


class CallerHost(AppHost, Protocol):
    """What a queue's waiting caller (queues.QueueCaller) reads besides: the music it hears and
    whether to tell it the call may be recorded."""

    recording_policy: RecordingPolicy

    def setting(self, name: str) -> Any: ...
    def music_on_hold(self) -> SharedSource: ...


class QueueHost(CallHost, CallerHost, Protocol):
    """What the queue runtime (queues.QueueRuntime) uses: it rings agents' phones, places and
    logs the callback calls it makes, follows who is busy, and answers callers with
    ``QueueCaller`` legs."""

    prompts: PromptSet
    calls: set[Call]
    busy: dict[str, int]  # extension -> answered calls it is on
    stopping: bool

    def ring(self, number: str, setup: Setup) -> list[OutboundLeg]: ...
    def spawn(self, coro: Any, name: str, *, on_error: Callable[[], None]) -> None: ...


class FeatureHost(MailboxHost, Protocol):
    """What a feature's ``register()`` uses (firmware.pbx.features): the number plan and the
    table of destination kinds it registers into, what it reads when a call comes (the IVR
    numbers, the mailboxes, the outbound routes and lines), and how it starts the legs it
    answers with (an application leg is given the same object, so this is a ``MailboxHost``)."""

    plan: NumberPlan
    destinations: dict[str, Placer]
    prompts: PromptSet
    ivr_menus: list[Any] | dict[str, Any]
    ivr_numbers: dict[str, str]  # number dialled -> menu or time condition it enters
    ivr_conditions: dict[str, TimeCondition]
    messages: Mailboxes
    voicemail_max: int
    lines: Any  # firmware.pbx.lines.Lines when the box has an analog board
    outbound: Routes

    def setting(self, name: str) -> Any: ...
    def spawn(self, coro: Any, name: str, *, on_error: Callable[[], None]) -> None: ...
    def start_app(self, call: Call, leg: Any) -> None: ...
    def place_extension(self, call: Call, setup: Setup, dest: Destination, voicemail: bool) -> bool: ...


class LinesHost(CallHost, Protocol):
    """What the analog lines (lines.Lines) use: the settings that choose the board, the number
    plan an analog phone dials against, and the calls its ports start."""

    settings: dict[str, Any]
    extensions: dict[str, Any]
    plan: NumberPlan
    calls: set[Call]
    lines: Any  # these lines once the composition root installed them (then a rebuild relights MWI)

    def refresh_mwi(self) -> None: ...
