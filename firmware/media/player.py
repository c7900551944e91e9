"""Prompt, tone and music sources for terminals (pure: no I/O after opening).

A ``Playlist`` is one playback: a sequence of items played back to back, 20 ms
at a time, e.g. ``Playlist(["you-are-number.wav", "3.wav", silence(300),
ToneItem(TONES["us"]["confirmation"])])``. Items:

* a path to a WAV file (8 kHz mono, µ-law, A-law or 16-bit PCM, read with
  ``wav.read_wav``), decoded when the playlist is built -- never in the
  send path. A ``SoundCache`` shared by the engine keeps each file decoded
  once, and keeps its G.711 encodings once per law;
* a ``ToneSpec`` (plays until stopped, or until a one-shot cadence ends) or a
  ``ToneItem(spec, ms)`` with a duration;
* ``silence(ms)``.

``next_frame()`` gives the next 160 samples as ``array('h')`` (None when the
playlist is over); ``next_payload(codec)`` gives the same frame G.711-encoded,
which for files is a slice of bytes encoded once (the terminal's send path
uses this: no per-sample work per frame). A file's last partial frame is
padded with silence; the next item starts on the next frame.

``SharedSource`` is music on hold: one looped playlist read by any number of
terminals. It is indexed by the engine clock's frame number, so it advances
once per tick however many listeners read it, and each frame is encoded once
per law per tick.
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass
from typing import Iterable, Union

from .g711 import ALAW_SILENCE, ULAW_SILENCE, lin2alaw, lin2ulaw
from .tones import ToneGenerator, ToneSpec
from .wav import WavError, read_wav

__all__ = ["Playlist", "SharedSource", "SoundCache", "ToneItem", "Silence", "silence",
           "PlayerError", "FRAME", "CODECS", "encode", "silence_payload"]

RATE = 8000
FRAME = 160                      # samples per 20 ms frame
CODECS = ("PCMU", "PCMA")
_ENCODERS = {"PCMU": lin2ulaw, "PCMA": lin2alaw}
_SILENCE_PAYLOAD = {"PCMU": bytes([ULAW_SILENCE]) * FRAME, "PCMA": bytes([ALAW_SILENCE]) * FRAME}
_ZERO_FRAME = array("h", bytes(2 * FRAME))


class PlayerError(ValueError):
    """A playlist item that cannot be played (missing file, wrong rate, bad item)."""


def encode(codec: str, samples: array) -> bytes:
    """16-bit linear samples -> G.711 ``codec`` ("PCMU" | "PCMA") bytes."""
    try:
        return _ENCODERS[codec](samples)
    except KeyError:
        raise PlayerError(f"codec must be one of {CODECS}, not {codec!r}") from None


def silence_payload(codec: str) -> bytes:
    """One 20 ms frame of G.711 silence in ``codec``."""
    return _SILENCE_PAYLOAD[codec]


@dataclass(frozen=True, slots=True)
class Silence:
    ms: int


def silence(ms: int) -> Silence:
    """A pause of ``ms`` milliseconds (rounded up to whole 20 ms frames)."""
    if ms < 0:
        raise PlayerError("silence must be >= 0 ms")
    return Silence(ms)


@dataclass(frozen=True, slots=True)
class ToneItem:
    """A tone for ``ms`` milliseconds (None: until stopped or its one-shot cadence ends)."""
    spec: ToneSpec
    ms: int | None = None


Item = Union[str, os.PathLike, ToneSpec, ToneItem, Silence]


class Sound:
    """A decoded file: 16-bit samples padded to whole frames, encodings made on first use."""

    __slots__ = ("path", "samples", "frames", "_encoded")

    def __init__(self, path: str, samples: array) -> None:
        self.path = path
        pad = -len(samples) % FRAME
        if pad:
            samples = samples + array("h", bytes(2 * pad))
        self.samples = samples
        self.frames = len(samples) // FRAME
        self._encoded: dict[str, bytes] = {}

    @classmethod
    def load(cls, path: str) -> "Sound":
        try:
            rate, channels, samples = read_wav(path)
        except (OSError, WavError) as e:
            raise PlayerError(f"{path}: {e}") from e
        if rate != RATE or channels != 1:
            raise PlayerError(f"{path}: {rate} Hz x {channels} channels; prompts must be "
                              f"8000 Hz mono")
        return cls(path, samples)

    def encoded(self, codec: str) -> bytes:
        data = self._encoded.get(codec)
        if data is None:
            data = self._encoded[codec] = encode(codec, self.samples)
        return data


class SoundCache:
    """Decoded prompts by path, shared by every playlist of an engine (one decode per file)."""

    def __init__(self) -> None:
        self._sounds: dict[str, Sound] = {}

    def get(self, path: str | os.PathLike) -> Sound:
        key = os.fspath(path)
        sound = self._sounds.get(key)
        if sound is None:
            sound = self._sounds[key] = Sound.load(key)
        return sound

    def forget(self, path: str | os.PathLike | None = None) -> None:
        """Drop one file (e.g. re-recorded greeting) or everything."""
        if path is None:
            self._sounds.clear()
        else:
            self._sounds.pop(os.fspath(path), None)

    def __len__(self) -> int:
        return len(self._sounds)


# --- segments: the compiled form of items, each with its own cursor -----------

class _SoundSeg:
    __slots__ = ("sound", "pos")

    def __init__(self, sound: Sound) -> None:
        self.sound = sound
        self.pos = 0

    def rewind(self) -> None:
        self.pos = 0

    def frame(self) -> array | None:
        i = self.pos
        if i >= self.sound.frames:
            return None
        self.pos = i + 1
        return self.sound.samples[i * FRAME:(i + 1) * FRAME]

    def payload(self, codec: str) -> bytes | None:
        i = self.pos
        if i >= self.sound.frames:
            return None
        self.pos = i + 1
        return self.sound.encoded(codec)[i * FRAME:(i + 1) * FRAME]


class _SilenceSeg:
    __slots__ = ("frames", "pos")

    def __init__(self, ms: int) -> None:
        self.frames = -(-(ms * RATE // 1000) // FRAME)   # rounded up
        self.pos = 0

    def rewind(self) -> None:
        self.pos = 0

    def frame(self) -> array | None:
        if self.pos >= self.frames:
            return None
        self.pos += 1
        return array("h", _ZERO_FRAME)

    def payload(self, codec: str) -> bytes | None:
        if self.pos >= self.frames:
            return None
        self.pos += 1
        return _SILENCE_PAYLOAD[codec]


class _ToneSeg:
    __slots__ = ("spec", "frames", "pos", "gen")

    def __init__(self, spec: ToneSpec, ms: int | None) -> None:
        self.spec = spec
        self.frames = None if ms is None else -(-(ms * RATE // 1000) // FRAME)
        self.rewind()

    def rewind(self) -> None:
        self.pos = 0
        self.gen = ToneGenerator(self.spec, RATE)

    def frame(self) -> array | None:
        if self.frames is not None and self.pos >= self.frames:
            return None
        if self.frames is None and self.gen.done:
            return None
        self.pos += 1
        return self.gen.next_frame(FRAME)

    def payload(self, codec: str) -> bytes | None:
        f = self.frame()
        return None if f is None else _ENCODERS[codec](f)


class Playlist:
    """One playback of items in order (see module doc); ``loop=True`` repeats for ever."""

    def __init__(self, items: Iterable[Item], *, loop: bool = False,
                 cache: SoundCache | None = None) -> None:
        cache = cache if cache is not None else SoundCache()
        segs = []
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                segs.append(_SoundSeg(cache.get(item)))
            elif isinstance(item, ToneSpec):
                segs.append(_ToneSeg(item, None))
            elif isinstance(item, ToneItem):
                if item.ms is not None and item.ms < 0:
                    raise PlayerError("tone duration must be >= 0 ms")
                segs.append(_ToneSeg(item.spec, item.ms))
            elif isinstance(item, Silence):
                segs.append(_SilenceSeg(item.ms))
            else:
                raise PlayerError(f"cannot play {item!r}")
        self._segs = segs
        self.loop = loop
        self._i = 0
        self.frames_played = 0
        self.done = not segs

    def rewind(self) -> None:
        for s in self._segs:
            s.rewind()
        self._i = 0
        self.done = not self._segs

    def _next(self, codec: str | None):
        segs = self._segs
        empty_run = 0                      # segments in a row that gave nothing
        while not self.done:
            seg = segs[self._i]
            out = seg.frame() if codec is None else seg.payload(codec)
            if out is not None:
                self.frames_played += 1
                return out
            self._i += 1
            empty_run += 1
            if self._i == len(segs):
                if not self.loop or empty_run > len(segs):   # a loop of nothing ends
                    self.done = True
                    return None
                for s in segs:
                    s.rewind()
                self._i = 0
        return None

    def next_frame(self) -> array | None:
        """The next 160 samples, or None once the playlist is over."""
        return self._next(None)

    def next_payload(self, codec: str) -> bytes | None:
        """The next frame encoded in ``codec`` ("PCMU"/"PCMA"), or None once over."""
        if codec not in _SILENCE_PAYLOAD:
            raise PlayerError(f"codec must be one of {CODECS}, not {codec!r}")
        return self._next(codec)

    def __repr__(self) -> str:
        return (f"Playlist({len(self._segs)} items, at={self._i}, loop={self.loop}, "
                f"played={self.frames_played}, done={self.done})")


class SharedSource:
    """Music on hold: one looped source, many listeners (see module doc).

    ``payload(frame, codec)`` returns the source's frame number ``frame`` of
    the engine clock: the first read of a new frame number advances the
    source (once, or by the frames missed), later reads in the same tick hit
    the per-law cache. None once a non-looping source has ended.
    """

    def __init__(self, source: Playlist) -> None:
        self.source = source
        self.listeners = 0
        self.advances = 0                # source frames consumed (for tests / stats)
        self._at: int | None = None      # clock frame number of the cached frame
        self._pcm: array | None = None
        self._enc: dict[str, bytes] = {}

    def _advance_to(self, frame: int) -> None:
        at = self._at
        steps = 1 if at is None else frame - at
        if steps <= 0:                   # an older frame asked late: serve the current one
            return
        if steps > 50:                   # long idle (no listeners): don't replay a second of audio
            steps = 1
        pcm = None
        for _ in range(steps):
            pcm = self.source.next_frame()
            self.advances += 1
            if pcm is None:
                break
        self._at = frame
        self._pcm = pcm
        self._enc = {}

    def frame(self, frame: int) -> array | None:
        if frame != self._at:
            self._advance_to(frame)
        return self._pcm

    def payload(self, frame: int, codec: str) -> bytes | None:
        if frame != self._at:
            self._advance_to(frame)
        enc = self._enc.get(codec)
        if enc is None:
            if self._pcm is None:
                return None
            enc = self._enc[codec] = encode(codec, self._pcm)
        return enc

    def __repr__(self) -> str:
        return f"SharedSource({self.source!r}, listeners={self.listeners})"
