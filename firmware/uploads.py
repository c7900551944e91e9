"""Uploaded prompts: an admin's own recordings (a greeting, a promotion) for IVR menus and queues.

Whatever the admin has (a 44.1 kHz stereo WAV from a phone app, a FLAC from a studio) is
converted once, at upload, to what the media engine plays without work: 8 kHz mono 16-bit WAV.
The file is checked before and after conversion and lands in ``<data>/prompts/uploads/NAME``
in one rename, so a bad or half-converted file is never left where a menu could play it.
Menus name uploads as ``{"file": "NAME"}``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UploadError", "Upload", "uploads_dir", "names", "save", "remove", "check_name"]

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}\.wav")
MAX_SECONDS = 600.0
MIN_SECONDS = 0.1
MAX_BYTES = 200 * 1024 * 1024  # what we agree to hand to the converter at all
RATE = 8000


class UploadError(ValueError):
    """An upload refused; the message says why and what to do."""


@dataclass(frozen=True)
class Upload:
    name: str
    seconds: float


def uploads_dir(data: Path) -> Path:
    return data / "prompts" / "uploads"


def names(data: Path) -> set[str]:
    d = uploads_dir(data)
    return {p.name for p in d.glob("*.wav")} if d.is_dir() else set()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UploadError(f"name {name!r}: lower-case letters, digits, - and _, ending in .wav (e.g. promo.wav)")
    return name


def default_name(src: Path) -> str:
    stem = re.sub(r"[^a-z0-9_-]+", "-", src.stem.lower()).strip("-_")[:48] or "upload"
    return f"{stem}.wav"


def save(data: Path, src: Path, name: str | None = None, *, replace: bool = False) -> Upload:
    """Converts ``src`` to an 8 kHz mono prompt named ``name`` (default: from the file name)."""
    name = check_name(name or default_name(src))
    try:
        size = src.stat().st_size
    except OSError as exc:
        raise UploadError(f"cannot read {src}: {exc.strerror}") from None
    if size > MAX_BYTES:
        raise UploadError(f"{src} is {size // (1024 * 1024)} MB; prompts are at most {MAX_SECONDS / 60:g} minutes")
    dest_dir = uploads_dir(data)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / name
    if dest.exists() and not replace:
        raise UploadError(f"there is already an upload named {name} (remove it first, or choose another name)")
    sox = shutil.which("sox")
    if sox is None:
        raise UploadError("sox is not installed (scripts/setup installs it)")
    part = dest_dir / f".{name}.part"
    try:
        try:
            # --no-glob: the file name is a name, never a pattern; the output format is explicit.
            run = subprocess.run([sox, "--no-glob", "-V1", str(src), "-t", "wav", "-r", str(RATE), "-c", "1",
                                  "-b", "16", "-e", "signed-integer", str(part)],
                                 capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise UploadError(f"converting {src} took too long; is it a sound file?") from None
        if run.returncode != 0:
            why = (run.stderr.strip().splitlines() or ["not a sound file sox can read"])[-1]
            raise UploadError(f"{src} is not a sound file LineBox can read ({why.removeprefix('sox FAIL ')}); "
                              "upload a WAV, FLAC or OGG file")
        seconds = _check_converted(part, src)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return Upload(name, seconds)


def _check_converted(part: Path, src: Path) -> float:
    try:
        with wave.open(str(part), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
                raise UploadError(f"{src}: conversion gave an unexpected format")
            seconds = w.getnframes() / RATE
    except (wave.Error, EOFError) as exc:
        raise UploadError(f"{src}: conversion failed ({exc})") from None
    if seconds < MIN_SECONDS:
        raise UploadError(f"{src} holds {seconds:.2f} s of sound; a prompt needs at least {MIN_SECONDS} s")
    if seconds > MAX_SECONDS:
        raise UploadError(f"{src} is {seconds / 60:.1f} minutes long; prompts are at most {MAX_SECONDS / 60:g} minutes")
    return seconds


def remove(data: Path, name: str) -> None:
    path = uploads_dir(data) / check_name(name)
    if not path.exists():
        raise UploadError(f"there is no upload named {name} (see `linebox prompt list`)")
    path.unlink()


def describe(data: Path) -> list[Upload]:
    out = []
    for name in sorted(names(data)):
        try:
            with wave.open(str(uploads_dir(data) / name), "rb") as w:
                out.append(Upload(name, w.getnframes() / max(1, w.getframerate())))
        except (wave.Error, EOFError, OSError):
            out.append(Upload(name, 0.0))
    return out
