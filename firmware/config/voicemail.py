"""The ``voicemail`` configuration section: which extensions have a mailbox, and how it is reached.

The section says which extensions have a mailbox and whether calls they leave unanswered (no
answer, busy, not registered) go there::

    {"mailboxes": {"1001": {}, "1002": {"unanswered": false}}, "max_seconds": 180}

A mailbox with ``"unanswered": false`` is still reachable from IVR options and queues. One with
a PIN can also be listened to from any phone, by ``*98``. The PIN is typed as ``"pin"`` (4-12
digits) and stored only as its salted hash, ``"pin_hash"`` (firmware.config.pins): an export
carries the hash, and an import may bring either. The messages themselves are
firmware.store.messages.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from firmware.config.pins import is_pin_hash
from firmware.schema import FieldError

MAX_SECONDS = (10, 3600)
DEFAULT_MAX_SECONDS = 180
PIN = re.compile(r"\d{4,12}")


def validate_voicemail(doc: Any, *, extensions: set[str] | None) -> list[FieldError]:
    """Every problem of a ``voicemail`` section, with paths like ``voicemail.mailboxes.1001``."""
    if doc is None:
        return []
    if not isinstance(doc, Mapping):
        return [FieldError("voicemail", '{"mailboxes": {"1001": {}}, "max_seconds": 180}')]
    errors = [FieldError(f"voicemail.{k}", "unknown; known: mailboxes, max_seconds")
              for k in doc if k not in ("mailboxes", "max_seconds")]
    seconds = doc.get("max_seconds", DEFAULT_MAX_SECONDS)
    if type(seconds) is not int or not MAX_SECONDS[0] <= seconds <= MAX_SECONDS[1]:
        errors.append(FieldError("voicemail.max_seconds", f"whole seconds, {MAX_SECONDS[0]}-{MAX_SECONDS[1]}"))
    boxes = doc.get("mailboxes", {})
    if not isinstance(boxes, Mapping):
        return errors + [FieldError("voicemail.mailboxes", 'an object of extension -> {"unanswered": true}')]
    for number, box in boxes.items():
        path = f"voicemail.mailboxes.{number}"
        if extensions is not None and number not in extensions:
            errors.append(FieldError(path, f"no extension {number!r} (a mailbox belongs to an extension)"))
        if not isinstance(box, Mapping) or set(box) - {"unanswered", "pin", "pin_hash"}:
            errors.append(FieldError(path, '{}, {"unanswered": false} or {"pin": "4321"}'))
            continue
        if not isinstance(box.get("unanswered", True), bool):
            errors.append(FieldError(f"{path}.unanswered", "true or false"))
        pin, pin_hash = box.get("pin"), box.get("pin_hash")
        if pin is not None and not (isinstance(pin, str) and PIN.fullmatch(pin)):
            errors.append(FieldError(f"{path}.pin", "4 to 12 digits, written as a string"))
        elif pin is not None and pin_hash is not None:
            errors.append(FieldError(f"{path}.pin", "give the PIN or its pin_hash, not both"))
        if pin_hash is not None and not is_pin_hash(pin_hash):
            errors.append(FieldError(f"{path}.pin_hash", "a hash as an export writes it (scrypt$N$r$p$salt$digest); "
                                                         'to set a new PIN, give "pin": "4321" instead'))
    return errors


def mailboxes_of(doc: Any) -> set[str]:
    boxes = doc.get("mailboxes") if isinstance(doc, Mapping) else None
    return {str(n) for n in boxes} if isinstance(boxes, Mapping) else set()
