"""The box's tunable settings, as data: name, type, default, bounds and what it is for.

The CLI and (later) the web admin validate with the same table, so a bad value gets the same
message everywhere and nothing half-valid reaches the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from board.regions import REGIONS
from firmware.schema import RECORDING_MODES


class SettingError(ValueError):
    """A setting name or value the box cannot take; the message says how to fix it."""


@dataclass(frozen=True)
class Setting:
    name: str
    kind: Callable[[str], Any]
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""

    def parse(self, text: str) -> Any:
        try:
            value = self.kind(text)
        except ValueError:
            kind = ("a whole number" if self.kind is int else "a number" if self.kind is float
                    else self.kind.__name__ if self.kind.__name__.startswith("one of") else "valid text")
            raise SettingError(f"{self.name} must be {kind} (got {text!r}), e.g. `linebox set {self.name} {self.default}`") from None
        if self.low is not None and value < self.low or self.high is not None and value > self.high:  # type: ignore[operator]
            raise SettingError(f"{self.name} must be between {self.low:g} and {self.high:g} (got {text})")
        return value


def _realm(text: str) -> str:
    if not text or any(c in text for c in '"\\\r\n') or len(text) > 64:
        raise ValueError(text)
    return text


def _channels(text: str) -> str:
    if not re.fullmatch(r"\d{1,3}(-\d{1,3})?(,\d{1,3}(-\d{1,3})?)*", text):
        raise ValueError(text)
    return text


def _regions(text: str) -> str:
    if text in ("", "-"):
        return ""
    if any(r not in REGIONS for r in text.split(",")):
        raise ValueError(text)
    return text


def _prefix(text: str) -> str:
    if text == "-":
        return ""
    if not re.fullmatch(r"[0-9*#]{1,4}", text):
        raise ValueError(text)
    return text


def _workers(text: str) -> str:
    text = text.strip().lower()
    if text != "auto" and not (text.isdigit() and 0 <= int(text) <= 64):
        raise ValueError(text)
    return text


def media_workers(value: str, cores: int | None) -> int:
    """Processes that relay call media: ``auto`` is one per core where there is more than one
    (on a single core a worker would only add a hand-over); ``0`` keeps media in the PBX."""
    if value == "auto":
        return cores if cores and cores > 1 else 0
    return int(value)


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(text)
        return text

    parse.__name__ = "one of " + ", ".join(options)
    return parse


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("sip.realm", _realm, "linebox", help="digest realm shown to phones"),
        Setting("sip.nonce_ttl", float, 30.0, 5, 3600, "seconds a digest nonce stays valid"),
        Setting("sip.min_expires", int, 60, 10, 3600, "shortest registration accepted (423 below it)"),
        Setting("sip.max_expires", int, 3600, 60, 86400, "longest registration granted"),
        Setting("sip.qualify_interval", float, 30.0, 2, 3600, "seconds between OPTIONS pings to registered contacts"),
        Setting("sip.qualify_timeout", float, 5.0, 1, 30, "seconds a contact may take to answer OPTIONS"),
        Setting("security.ban_failures", int, 5, 1, 1000, "auth failures from one IP that get it banned"),
        Setting("security.ban_window", float, 5.0, 1, 3600, "seconds within which those failures count"),
        Setting("security.ban_seconds", float, 300.0, 1, 86400 * 7, "how long a ban lasts"),
        Setting("security.rate", float, 200.0, 1, 100000, "SIP messages per second allowed from one unregistered IP"),
        Setting("rtp.timeout", float, 60.0, 1, 3600, "seconds without RTP before a call is released"),
        Setting("rtp.hold_timeout", float, 3600.0, 1, 86400, "the same while a call is on hold"),
        Setting("media.workers", _workers, "auto",
                help="processes relaying call media: auto (one per core), 0 (none: all in the main "
                     "process) or a number (read at start)"),
        Setting("call.no_answer_timeout", float, 60.0, 1, 600, "seconds an extension rings before the caller gets 480"),
        Setting("call.max_setups_per_second", float, 200.0, 1, 100000,
                "new calls taken per second at most (bursts of one second's worth); beyond, 503 at once"),
        Setting("call.refuse_overload", _choice("yes", "no"), "yes",
                help="while the box is overloaded (late media clock, loop lag, a saturated core) refuse "
                     "new calls with 503 so the calls up keep their audio; no: take them anyway"),
        Setting("recording.calls", _choice(*RECORDING_MODES), "never",
                help="record answered calls (on-demand: while a party asks for it with *1)"),
        Setting("recording.announce", _choice("no", "yes"), "no",
                help="tell callers that the call may be recorded (queues, before an agent answers)"),
        Setting("recording.mode", _choice("stereo", "mono"), "stereo",
                help="stereo: caller left, callee right; mono: both mixed"),
        Setting("recording.quota_mb", int, 1024, 1, 1_000_000, "recordings kept at most; oldest deleted first"),
        Setting("recording.retention_days", int, 0, 0, 3650,
                "recordings older than this are deleted (0: kept until the quota needs the room)"),
        Setting("cdr.retention_days", int, 0, 0, 3650,
                "call records and the queue log older than this are deleted (0: kept for ever)"),
        Setting("analog.driver", _choice("none", "sim", "dahdi"), "none",
                help="analog board: none, sim (the simulated HAT) or dahdi (read at start)"),
        Setting("analog.region", _choice(*sorted(REGIONS)), "us",
                help="tones, ring cadence, caller-ID format and line profile of the analog ports (read at start)"),
        Setting("analog.sim_fxs", int, 2, 0, 16, "FXS ports of the simulated HAT (read at start)"),
        Setting("analog.sim_fxo", int, 1, 0, 16, "FXO ports of the simulated HAT (read at start)"),
        Setting("analog.sim_fxo_regions", _regions, "",
                help="simulated HAT: one region per FXO line, e.g. us,uk,de (overrides sim_fxo; read at start)"),
        Setting("analog.channels", _channels, "1-4", help="DAHDI channels, e.g. 1-4 or 1,2,5 (read at start)"),
        Setting("analog.trunk_prefix", _prefix, "9",
                help="digits an extension dials before an outside number to use an FXO line ('-' for none)"),
    )
}


def parse_setting(name: str, text: str) -> Any:
    setting = SETTINGS.get(name)
    if setting is None:
        raise SettingError(f"unknown setting {name!r}; known: {', '.join(sorted(SETTINGS))}")
    return setting.parse(text)


def effective(stored: dict[str, str]) -> dict[str, Any]:
    """Defaults overlaid with stored values; a stored value that no longer parses keeps the default."""
    values = {name: s.default for name, s in SETTINGS.items()}
    for name, text in stored.items():
        if name in SETTINGS:
            try:
                values[name] = SETTINGS[name].parse(text)
            except SettingError:
                pass
    return values
