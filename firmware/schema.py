"""What the configuration's rules share below firmware/config/ (firmware.ivr.schema,
firmware.acd.schema and every section of firmware.config): the shape of a problem, and the
recording modes that two sections take.

It imports nothing of the firmware, so the rules of one section (routes, ports, voicemail, the
recording policy) load neither the IVR's modules nor the media engine's to say what is wrong. A
queue's rules do load the IVR's (firmware.acd.schema checks its destinations with them).
"""

from __future__ import annotations

from dataclasses import dataclass

# When a call is recorded: the modes of the recording policy (firmware.config.recpolicy) and of
# a queue's own "recording" field (firmware.acd.schema).
RECORDING_MODES = ("always", "never", "on-demand")


@dataclass(frozen=True)
class FieldError:
    """One problem of a configuration document, at its field's path
    (``menus[main].options[1].target``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
