"""The one interface between an analog port driver and the line machines above it (issue 5).

A port is an FXS port (the box is the exchange; an analog phone plugs in) or an FXO port (the
box is the phone on a central-office line). A driver -- the simulated HAT, DAHDI -- reports what
happened on the wire as *events* (frozen dataclasses named for what happened) and carries out
*commands* (imperative). The line machines (``board.fxs``, ``board.fxo``) are pure: events and
``now`` in, commands and call events out; they never touch a driver. Driver threads only enqueue
events onto the loop (STYLE.md §8); debouncing, cadence and caller ID run in the line machines.

Audio (20 ms G.711 frames both ways) goes through the media engine, not through this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from board.callerid import CallerId

__all__ = [
    "PortKind", "Capabilities", "PortEvent", "PortCommand", "Port",
    "OffHook", "OnHook", "HookFlash", "RingStart", "RingStop", "PolarityReversal",
    "LoopCurrentDrop", "Alarm", "PulseDigit",
    "Ring", "StopRing", "Seize", "Release", "SendCallerId", "SetPolarity", "SetMwi",
    "PlayTone", "StopTone", "SendDigit",
]


class PortKind(Enum):
    FXS = "fxs"   # we feed the line: battery, ring voltage; a phone is attached
    FXO = "fxo"   # we are the phone on a CO line: hook switch, ring detector


@dataclass(frozen=True)
class Capabilities:
    """What a port's hardware can do, so a line machine does not ask for the impossible."""

    kind: PortKind
    polarity_reversal: bool = True     # FXS: can reverse battery; FXO: can detect a reversal
    loop_current: bool = True          # FXO: reports loop-current drops
    mwi: bool = False                  # FXS: visual MWI (FSK message and/or neon lamp)
    caller_id: bool = True             # FXS: can play caller ID; FXO: can hear it before answer
    pulse_dial: bool = True            # FXS: hook events fine enough to count pulses
    hook_flash_event: bool = False     # the driver itself reports HookFlash (DAHDI WINKFLASH)
    laws: tuple[str, ...] = ("ulaw", "alaw")


# --- events: what happened on the wire (driver -> line machine) ------------------------------

@dataclass(frozen=True)
class OffHook:
    """FXS: the phone went off hook (loop closed)."""


@dataclass(frozen=True)
class OnHook:
    """FXS: the phone went on hook (loop open). Short breaks are pulses or a flash."""


@dataclass(frozen=True)
class HookFlash:
    """FXS: the driver already timed a flash (hardware that does it, e.g. DAHDI_EVENT_WINKFLASH)."""


@dataclass(frozen=True)
class PulseDigit:
    """FXS: the driver itself counted a dial-pulse digit (DAHDI_EVENT_PULSEDIGIT); drivers that
    report raw hook breaks leave the counting to the line machine."""

    digit: str


@dataclass(frozen=True)
class RingStart:
    """FXO: ring voltage appeared on the line."""


@dataclass(frozen=True)
class RingStop:
    """FXO: ring voltage went away."""


@dataclass(frozen=True)
class PolarityReversal:
    """FXO: the CO reversed battery (answer, far-end hang-up, or caller ID about to come)."""


@dataclass(frozen=True)
class LoopCurrentDrop:
    """FXO: loop current went away for ``duration_ms`` (an open switch interval, "CPC")."""

    duration_ms: int


@dataclass(frozen=True)
class Alarm:
    """The port failed or recovered (no battery, over-current, ...); ``active`` False = cleared."""

    reason: str
    active: bool = True


PortEvent = (OffHook | OnHook | HookFlash | PulseDigit | RingStart | RingStop | PolarityReversal
             | LoopCurrentDrop | Alarm)


# --- commands: what a line machine wants done (line machine -> driver) -----------------------

@dataclass(frozen=True)
class Ring:
    """FXS: ring the phone with this cadence, seconds ``(on, off, on, off, ...)``, repeating."""

    cadence: tuple[float, ...]


@dataclass(frozen=True)
class StopRing:
    """FXS: stop ringing."""


@dataclass(frozen=True)
class Seize:
    """FXO: go off hook (answer an incoming call or start an outgoing one)."""


@dataclass(frozen=True)
class Release:
    """FXO: go on hook. (Not the call event ``firmware.events.Release``.)"""


@dataclass(frozen=True)
class SendCallerId:
    """FXS: play caller ID; ``before_ring`` True = in the alerting phase before the first ring
    (in Japan to the phone off hook, after its primary response to CAR)."""

    cid: CallerId
    before_ring: bool


@dataclass(frozen=True)
class SetPolarity:
    """FXS: normal (False) or reversed (True) battery."""

    reversed: bool


@dataclass(frozen=True)
class SetMwi:
    """FXS: message-waiting indication on or off (FSK VMWI and/or lamp, as the port can)."""

    on: bool


@dataclass(frozen=True)
class PlayTone:
    """Play a call-progress tone by name (a key of ``tones.TONES[zone]``, or ``stutter_dial``)."""

    name: str


@dataclass(frozen=True)
class StopTone:
    """Stop whatever tone is playing."""


@dataclass(frozen=True)
class SendDigit:
    """FXO: dial one DTMF digit (the media engine plays it; pulse dialing would break the loop)."""

    digit: str


PortCommand = (Ring | StopRing | Seize | Release | SendCallerId | SetPolarity | SetMwi
               | PlayTone | StopTone | SendDigit)


@runtime_checkable
class Port(Protocol):
    """A driver's port. ``send`` carries out a command; events go to ``on_event``.

    The driver calls ``on_event(event, now)`` on the loop (a driver thread enqueues with
    ``loop.call_soon_threadsafe``, never calls it directly).
    """

    kind: PortKind
    name: str
    capabilities: Capabilities
    on_event: Callable[[PortEvent, float], None] | None

    def send(self, command: PortCommand) -> None: ...
