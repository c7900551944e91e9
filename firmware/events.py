"""The call-event vocabulary every kind of leg speaks (STYLE.md §4).

A SIP phone, an FXS port, an FXO line, an IVR and a queue are all legs. A leg reports what
happened on its side with these events; the controller (b2bua.Call) passes them to the other
leg, which turns them into its own signalling (a 180, a ring cadence, a prompt...). Media is
described only by the codecs a leg negotiated and the media-engine endpoint it owns; the
controller asks the engine to bridge endpoints and never touches RTP itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware.sip.sdp import Codec


@dataclass(frozen=True)
class Setup:
    """A new call from this leg: who calls whom, and the codecs the caller offers, best first."""

    caller: str
    caller_name: str
    callee: str
    codecs: tuple[Codec, ...]
    hops: int = 70  # Max-Forwards left for the next leg: a loop through other PBXs ends at 0


@dataclass(frozen=True)
class Alerting:
    """The far end is ringing; ``codecs`` set when it also sends early media."""

    codecs: tuple[Codec, ...] | None = None


@dataclass(frozen=True)
class Answer:
    """The far end answered with these negotiated codecs."""

    codecs: tuple[Codec, ...]


@dataclass(frozen=True)
class Hold:
    """The leg's party changed the media direction (RFC 3264 §8.4): sendonly/inactive = hold."""

    direction: str


@dataclass(frozen=True)
class Digit:
    """A DTMF digit from the leg's party (for IVR/feature codes; RFC 4733 itself is relayed)."""

    digit: str
    duration_ms: int = 100


@dataclass(frozen=True)
class Transfer:
    """The leg's party hands the other party to ``target`` and leaves: a blind transfer (a SIP
    REFER, or an analog phone's hook flash and digits), or an attended one when ``replaces`` is
    the leg of the party's other, answered call (REFER with Replaces): the two far parties are
    then joined."""

    target: str
    replaces: Any = None


@dataclass(frozen=True)
class Release:
    """The leg is gone or refused. ``cause`` is the CDR word; ``status`` the SIP code to relay."""

    cause: str
    status: int | None = None
    reason: str | None = None


Event = Setup | Alerting | Answer | Hold | Digit | Transfer | Release

G711 = ("PCMU", "PCMA")  # the audio the box anchors, relays and transcodes


def audio_codec(codecs: tuple[Codec, ...] | list[Codec]) -> Codec | None:
    """The G.711 codec among what a leg negotiated or offered (the first, best first)."""
    return next((c for c in codecs if c.name.upper() in G711), None)


def event_codec(codecs: tuple[Codec, ...] | list[Codec]) -> Codec | None:
    """The RFC 4733 telephone-event codec among them, if any."""
    return next((c for c in codecs if c.matches("telephone-event")), None)

# The CDR cause of a call the box ended because it was stopped (SIGTERM, a restart); a call the
# box could not end because the process died is closed as "interrupted" at the next start.
SHUTDOWN = "shutdown"

# CDR causes and the SIP answer a caller gets for each when the call fails before answer.
CAUSE_STATUS: dict[str, tuple[int, str]] = {
    "not-found": (404, "Not Found"),
    "not-registered": (480, "Temporarily Unavailable"),
    "no-answer": (480, "No Answer"),
    "busy": (486, "Busy Here"),
    "rejected": (603, "Decline"),
    "unreachable": (480, "Temporarily Unavailable"),
    "codec-mismatch": (488, "Not Acceptable Here"),
    "congestion": (503, "Service Unavailable"),
    "cancel": (487, "Request Terminated"),
    "media-timeout": (408, "Media Timeout"),
    "media-failure": (500, "Media Failure"),  # the media worker relaying the call died
    SHUTDOWN: (503, "Service Unavailable (shutting down)"),  # RFC 3261 §21.5.4
}


def cause_for_status(status: int) -> str:
    """The CDR cause for a final failure response from a callee."""
    if status in (486, 600):
        return "busy"
    if status == 404 or status == 604:
        return "not-found"
    if status in (408, 480):
        return "no-answer"
    if status == 487:
        return "cancel"
    if status == 488 or status == 606:
        return "codec-mismatch"
    if status == 603:
        return "rejected"
    if status >= 500:
        return "congestion"
    return "rejected"
