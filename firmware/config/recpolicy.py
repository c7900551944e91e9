"""Recording policy: which calls are recorded, per extension and per inbound number.

The configuration document's ``recording`` section (docs/config.md)::

    {"extensions": {"1001": "always"}, "numbers": {"500": "on-demand", "600": "always"}}

``numbers`` are the numbers calls come in on: IVR numbers, queue numbers and (later) trunk
DIDs. A queue's own ``recording`` field says the same for calls the queue connects. Modes:

* ``always``    -- recorded from answer to hang-up;
* ``on-demand`` -- recorded while a party has asked for it by feature code;
* ``never``     -- not recorded, not even on demand.

Several parties of one call may have a say (the caller's extension, the number dialled, the
queue, the agent's extension). ``RecordingPolicy.mode`` settles it: among the entries that
name a party, an explicit ``never`` wins (it is how an admin keeps a line private), then
``always``, then ``on-demand``; a call no entry speaks for takes the box default (the
``recording.calls`` setting). A queue's own ``recording`` field is an opt-in: its ``never``
(the default) leaves the decision to the policy; ``recording.numbers.<queue number>: never``
is how a queue is kept unrecorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Mapping

from firmware.schema import RECORDING_MODES, FieldError

__all__ = ["MODES", "RecordingPolicy", "validate_recording_policy", "recording_policy", "decide"]

MODES = RECORDING_MODES
SECTION_FIELDS = ("extensions", "numbers")
# Strongest first: a party that says "never" keeps the call unrecorded whatever others say.
_PRECEDENCE = ("never", "always", "on-demand")


def decide(modes: Iterable[str]) -> str:
    """The mode of a call whose parties want ``modes`` (an empty iterable: ``never``)."""
    wanted = set(modes)
    for mode in _PRECEDENCE:
        if mode in wanted:
            return mode
    return "never"


@dataclass(frozen=True)
class RecordingPolicy:
    extensions: Mapping[str, str] = field(default_factory=dict)
    numbers: Mapping[str, str] = field(default_factory=dict)

    def mode(self, *, extensions: Iterable[str] = (), numbers: Iterable[str] = (),
             queue_mode: str | None = None, default: str = "never") -> str:
        """The mode of a call between ``extensions`` that came in on ``numbers``, connected by
        a queue whose ``recording`` is ``queue_mode`` (None: no queue)."""
        modes = [self.extensions[e] for e in extensions if e in self.extensions]
        modes += [self.numbers[n] for n in numbers if n in self.numbers]
        if queue_mode not in (None, "never"):
            modes.append(queue_mode)
        return decide(modes) if modes else default


def recording_policy(doc: Mapping[str, Any] | None) -> RecordingPolicy:
    """The policy of a validated ``recording`` section (None: nothing configured)."""
    doc = doc or {}
    return RecordingPolicy(dict(doc.get("extensions", {})), dict(doc.get("numbers", {})))


def validate_recording_policy(doc: Any, extensions: Collection[str] | None,
                              numbers: Collection[str] | None) -> list[FieldError]:
    """Every problem in a ``recording`` section, with paths like ``recording.extensions.1001``.
    ``extensions`` / ``numbers`` are what exists (None: not known here, do not check)."""
    if doc is None:
        return []
    if not isinstance(doc, Mapping):
        return [FieldError("recording", 'an object {"extensions": {...}, "numbers": {...}}')]
    errors = [FieldError(f"recording.{key}", f"unknown field (known: {', '.join(SECTION_FIELDS)})")
              for key in doc if key not in SECTION_FIELDS]
    for key, known, what in (("extensions", extensions, "extension"),
                             ("numbers", numbers, "IVR or queue number")):
        section = doc.get(key, {})
        if not isinstance(section, Mapping):
            errors.append(FieldError(f"recording.{key}", f"an object of {what} -> mode ({', '.join(MODES)})"))
            continue
        for number, mode in section.items():
            path = f"recording.{key}.{number}"
            if known is not None and number not in known:
                errors.append(FieldError(path, f"no {what} {number!r}"))
            if mode not in MODES:
                errors.append(FieldError(path, f"mode must be one of {', '.join(MODES)}, not {mode!r}"))
    return errors
