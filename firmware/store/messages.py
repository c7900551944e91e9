"""Voicemail messages on disk: what callers left, per mailbox.

Messages live under ``<data>/voicemail/<mailbox>/new`` until the owner has heard them, then in
``old``: one mono WAV per message (written by the media engine's crash-safe recorder: a message
cut off by a power cut is repaired at the next start) beside a small JSON file saying who left
it and when. Moving a file between folders is one rename, so a message is never in both or
neither. Which extensions have a mailbox is configuration: firmware.config.voicemail.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from firmware.media.recorder import recover_all
from firmware.media.wav import WavError, read_info
from firmware.store.datadir import private_dir

FOLDERS = ("new", "old")
MIN_SECONDS = 1.0  # shorter than this is a caller who hung up at the tone: not kept
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
