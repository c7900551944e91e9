"""Uploaded prompts: an admin's own recordings (a greeting, a promotion) for IVR menus and queues.

Whatever the admin has (a 44.1 kHz stereo WAV from a phone app, a FLAC from a studio) is
converted once, at upload, to what the media engine plays without work: 8 kHz mono 16-bit WAV.
The file is checked before and after conversion and lands in ``<data>/prompts/uploads/NAME``
in one rename, so a bad or half-converted file is never left where a menu could play it.
Menus name uploads as ``{"file": "NAME"}``.

What reaches the converter is decided here and nowhere else: the file's own first bytes say
whether it is WAV, FLAC or Ogg, that type is named to sox explicitly, and sox reads the bytes
from a pipe we opened. The uploader's file name and extension never reach it: sox takes a name's
extension as the format, and some of its formats (``.m3u``, ``.pls`` playlists) fetch each entry
through a shell, while a name beginning with ``|`` is itself a command to run.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["UploadError", "Upload", "uploads_dir", "names", "save", "remove", "check_name"]

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}\.wav")
MAX_SECONDS = 600.0
MIN_SECONDS = 0.1
MAX_BYTES = 200 * 1024 * 1024  # what we agree to hand to the converter at all
RATE = 8000
# Only sox's own options may steer it: SOX_OPTS in our environment could add any.
SOX_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}


def _is_wav(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


# (sox type, test on the first 12 bytes, what a person calls it); the only formats we take.
FORMATS = (("wav", _is_wav, "WAV"),
           ("flac", lambda head: head[:4] == b"fLaC", "FLAC"),
           ("ogg", lambda head: head[:4] == b"OggS", "Ogg"))


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


def sniff(src: Path, head: bytes) -> str:
    """The sox type of a file from its first bytes; ``UploadError`` unless WAV, FLAC or Ogg."""
    for kind, test, _ in FORMATS:
        if test(head):
            return kind
    if not head:
        raise UploadError(f"{src} is empty (0 bytes); upload a WAV, FLAC or Ogg file")
    raise UploadError(f"{src} is not a sound file LineBox takes: its content is not WAV, FLAC or Ogg, "
                      "whatever its name says; upload one of those")


def save(data: Path, src: Path, name: str | None = None, *, replace: bool = False) -> Upload:
    """Converts ``src`` to an 8 kHz mono prompt named ``name`` (default: from the file name)."""
    name = check_name(name or default_name(src))
    try:
        f = open(src, "rb", buffering=0)  # unbuffered: sox reads the same descriptor from byte 0
    except OSError as exc:
        raise UploadError(f"cannot read {src}: {exc.strerror}") from None
    with f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UploadError(f"{src} is not a regular file; upload a WAV, FLAC or Ogg file")
        size = st.st_size
        if size > MAX_BYTES:
            raise UploadError(f"{src} is {size // (1024 * 1024)} MB; prompts are at most {MAX_SECONDS / 60:g} minutes")
        kind = sniff(src, os.pread(f.fileno(), 12, 0))
        return _convert(data, src, f, kind, name, replace)


def _convert(data: Path, src: Path, f: IO[bytes], kind: str, name: str, replace: bool) -> Upload:
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
            # Input: the sniffed type, from the pipe ("-"). Output: our own path, its format named.
            run = subprocess.run([sox, "--no-glob", "-V1", "-t", kind, "-", "-t", "wav", "-r", str(RATE), "-c", "1",
                                  "-b", "16", "-e", "signed-integer", str(part)],
                                 stdin=f, capture_output=True, text=True, timeout=120, env=SOX_ENV)
        except subprocess.TimeoutExpired:
            raise UploadError(f"converting {src} took too long; is it a sound file?") from None
        if run.returncode != 0:
            why = (run.stderr.strip().splitlines() or ["not a sound file sox can read"])[-1]
            label = next(label for k, _, label in FORMATS if k == kind)
            raise UploadError(f"{src} is not a sound file LineBox can read ({label}: {why.removeprefix('sox FAIL ')}); "
                              "upload a WAV, FLAC or Ogg file")
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
