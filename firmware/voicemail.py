"""Voicemail boxes: the ``voicemail`` configuration section and the messages on disk.

The section says which extensions have a mailbox and whether calls they leave unanswered (no
answer, busy, not registered) go there::

    {"mailboxes": {"1001": {}, "1002": {"unanswered": false}}, "max_seconds": 180}

A mailbox with ``"unanswered": false`` is still reachable from IVR options and queues. One with
a PIN can also be listened to from any phone, by ``*98``. The PIN is typed as ``"pin"`` (4-12
digits) and stored only as its salted hash, ``"pin_hash"`` (firmware.pins): an export carries
the hash, and an import may bring either.

Messages live under ``<data>/voicemail/<mailbox>/new`` until the owner has heard them, then in
``old``: one mono WAV per message (written by the media engine's crash-safe recorder: a message
cut off by a power cut is repaired at the next start) beside a small JSON file saying who left
it and when. Moving a file between folders is one rename, so a message is never in both or
neither.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from firmware.datadir import private_dir
from firmware.ivr.schema import FieldError
from firmware.media.recorder import recover_all
from firmware.media.wav import WavError, read_info
from firmware.pins import is_pin_hash, pin_matches, seal_pins  # noqa: F401 (pin_matches, seal_pins: re-exported)

FOLDERS = ("new", "old")
MAX_SECONDS = (10, 3600)
DEFAULT_MAX_SECONDS = 180
MIN_SECONDS = 1.0  # shorter than this is a caller who hung up at the tone: not kept
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


@dataclass(frozen=True)
class Message:
    mailbox: str
    id: str
    folder: str
    caller: str
    caller_name: str
    received: float
    seconds: float
    path: Path

    def as_dict(self) -> dict[str, Any]:
        return {"mailbox": self.mailbox, "id": self.id, "folder": self.folder, "caller": self.caller,
                "caller_name": self.caller_name, "received": self.received,
                "seconds": round(self.seconds, 1)}


class Mailboxes:
    """The messages of every mailbox under ``root`` (``<data>/voicemail``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def recover(self) -> list[str]:
        """At start: repair messages a stop cut short (before any recorder writes here)."""
        done: list[str] = []
        if self.root.is_dir():
            for box in self.root.iterdir():
                for folder in FOLDERS:
                    if (box / folder).is_dir():
                        done += recover_all(str(box / folder))
        return done

    def new_message(self, mailbox: str, caller: str, caller_name: str) -> Path:
        """The WAV path for a message being left now; who left it is written first."""
        folder = private_dir(self.root / mailbox / "new")  # callers' voices: the box's user only
        ident = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:6]}"
        meta = {"caller": caller, "caller_name": caller_name, "received": time.time()}
        tmp = folder / f".{ident}.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, folder / f"{ident}.json")
        return folder / f"{ident}.wav"

    def messages(self, mailbox: str, folders: Iterable[str] = FOLDERS) -> list[Message]:
        """Finished messages, new ones first, each folder oldest first (the order a box reads)."""
        out: list[Message] = []
        for folder in folders:
            d = self.root / mailbox / folder
            if not d.is_dir():
                continue
            found = []
            for wav in d.glob("*.wav"):
                try:
                    meta = json.loads(wav.with_suffix(".json").read_text())
                except (OSError, ValueError):
                    meta = {}
                try:
                    seconds = read_info(str(wav)).seconds
                except (OSError, WavError):
                    continue
                found.append(Message(mailbox, wav.stem, folder, str(meta.get("caller", "")),
                                     str(meta.get("caller_name", "")),
                                     float(meta.get("received", wav.stat().st_mtime)), seconds, wav))
            out += sorted(found, key=lambda m: (m.received, m.id))
        return out

    def counts(self, mailbox: str) -> tuple[int, int]:
        """New and old messages, from the file names alone (asked at every REGISTER)."""
        new, old = (sum(1 for _ in (self.root / mailbox / f).glob("*.wav")) for f in FOLDERS)
        return new, old

    def new_count(self, mailbox: str) -> int:
        return self.counts(mailbox)[0]

    def move(self, message: Message, folder: str) -> Message:
        """new -> old once heard (the WAV last: a listing only counts a WAV); the moved message."""
        dest = private_dir(self.root / message.mailbox / folder)
        meta = message.path.with_suffix(".json")
        if meta.exists():
            os.replace(meta, dest / meta.name)
        os.replace(message.path, dest / message.path.name)
        return replace(message, folder=folder, path=dest / message.path.name)

    def delete(self, message: Message) -> None:
        message.path.unlink(missing_ok=True)
        message.path.with_suffix(".json").unlink(missing_ok=True)

    def discard(self, path: Path) -> None:
        """A message too short to keep, or one that failed."""
        for p in (path, path.with_suffix(".json"), Path(str(path) + ".part")):
            p.unlink(missing_ok=True)
