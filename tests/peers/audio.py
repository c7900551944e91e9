"""Audio helpers for the end-to-end peers: make test tones, read WAVs, detect tones.

Standard library only (no numpy): the checks run on a few seconds of 8 kHz audio,
where a per-frame Goertzel filter in pure Python is fast enough.

A tone is "present" when, in enough 20 ms frames, its Goertzel power clearly
dominates the power at the other test frequencies and at neighbouring probe
frequencies, and the frame carries energy well above a silence floor.
"""
from __future__ import annotations

import math
import struct
import sys
import wave
from array import array
from pathlib import Path
from typing import Iterable, Sequence

FRAME_SECONDS = 0.020
# Below this mean-square level (16-bit units) a frame is silence: -60 dBFS.
SILENCE_MEAN_SQUARE = (32768 * 10 ** (-60 / 20)) ** 2
# Probe frequencies used as "neighbours" when judging dominance.
_PROBES = (300.0, 450.0, 750.0, 1000.0, 1250.0, 1700.0, 2100.0, 2600.0, 3100.0)


def tone_samples(freqs: float | Sequence[float], seconds: float, rate: int = 8000,
                 amplitude: float = 0.3) -> array:
    """The samples of a (multi-)tone: sum of sines, peak amplitude*32767 in total."""
    fs = (float(freqs),) if isinstance(freqs, (int, float)) else tuple(float(f) for f in freqs)
    if not fs:
        raise ValueError("at least one frequency")
    n = int(round(seconds * rate))
    peak = amplitude * 32767 / len(fs)
    out = array("h", bytes(2 * n))
    steps = [2 * math.pi * f / rate for f in fs]
    for i in range(n):
        out[i] = int(round(sum(math.sin(s * i) for s in steps) * peak))
    return out


def write_tone_wav(path: str | Path, freqs: float | tuple[float, ...], seconds: float,
                   rate: int = 8000, amplitude: float = 0.3) -> Path:
    """Write a 16-bit mono PCM WAV holding a (multi-)tone; returns the path."""
    path = Path(path)
    write_wav(path, tone_samples(freqs, seconds, rate, amplitude), rate)
    return path


def write_wav(path: str | Path, samples: Iterable[int], rate: int = 8000) -> Path:
    """Write 16-bit mono PCM samples as a WAV file."""
    data = array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return Path(path)


def read_wav(path: str | Path, channel: int = 0) -> tuple[int, array]:
    """Read a 16-bit PCM WAV; returns (rate, samples of one channel as array('h')).

    Multi-channel files give the chosen channel (default the first). Files with an
    extended header that the stdlib `wave` module refuses (WAVE_FORMAT_EXTENSIBLE,
    as some recorders write) are parsed by hand.
    """
    try:
        with wave.open(str(path), "rb") as w:
            nch, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except wave.Error:
        nch, width, rate, raw = _read_wav_chunks(Path(path).read_bytes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, want 16-bit PCM")
    if not 0 <= channel < nch:
        raise ValueError(f"{path}: channel {channel} of {nch}")
    raw = raw[: len(raw) - len(raw) % 2]
    data = array("h")
    data.frombytes(raw)
    if sys.byteorder == "big":
        data.byteswap()
    if nch > 1:
        data = data[channel::nch]
    return rate, data


def _read_wav_chunks(blob: bytes) -> tuple[int, int, int, bytes]:
    if blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(blob):
        cid, size = blob[pos:pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        body = blob[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError("WAV without fmt or data chunk")
    tag, nch, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag not in (1, 0xFFFE):
        raise ValueError(f"WAV format tag {tag:#x} is not PCM")
    return nch, bits // 8, rate, data


def goertzel_power(samples: Sequence[int], rate: int, freq: float) -> float:
    """Power of `freq` in `samples` (Goertzel), normalised by the length squared.

    A full-scale-ish sine of amplitude A at exactly `freq` gives about A**2 / 4.
    """
    n = len(samples)
    if n == 0:
        return 0.0
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return max(power, 0.0) / (n * n)


def _frames(samples: Sequence[int], rate: int) -> Iterable[Sequence[int]]:
    size = max(1, int(rate * FRAME_SECONDS))
    for i in range(0, len(samples) - size + 1, size):
        yield samples[i:i + size]


def _frame_has_tone(frame: Sequence[int], rate: int, freq: float, others: Sequence[float],
                    ratio: float) -> bool:
    energy = sum(x * x for x in frame) / len(frame)
    if energy < SILENCE_MEAN_SQUARE:
        return False
    p = goertzel_power(frame, rate, freq)
    # A pure sine of mean square E gives Goertzel power ~E/2 over a 20 ms frame; ask
    # that at least a third of the frame's energy sits at `freq` (noise fails this).
    if p < energy / 6:
        return False
    # 20 ms frames resolve ~50 Hz: neighbours closer than 150 Hz would share the bin.
    rivals = [f for f in (*others, *_PROBES) if abs(f - freq) >= 150 and f < rate / 2]
    return all(p > ratio * goertzel_power(frame, rate, f) for f in rivals)


def tone_frames(samples: Sequence[int], rate: int, freq: float, *,
                others: Sequence[float] = (), ratio: float = 10.0) -> int:
    """How many 20 ms frames are dominated by `freq`."""
    return sum(1 for fr in _frames(samples, rate) if _frame_has_tone(fr, rate, freq, others, ratio))


def tone_present(samples: Sequence[int], rate: int, freq: float, *, min_seconds: float = 0.5,
                 others: Sequence[float] = (), ratio: float = 10.0) -> bool:
    """True when `freq` dominates at least `min_seconds` worth of 20 ms frames.

    Dominates: power at `freq` is more than `ratio` times (10 dB) the power at each of
    `others` (the other test frequencies) and at fixed neighbouring probe frequencies,
    and holds a good share of a frame that is above the silence floor.
    """
    need = max(1, int(math.ceil(min_seconds / FRAME_SECONDS - 1e-9)))
    return tone_frames(samples, rate, freq, others=others, ratio=ratio) >= need


def dominant_frequency(samples: Sequence[int], rate: int, *, lo: float = 100.0,
                       hi: float | None = None, step: float = 10.0,
                       max_seconds: float = 2.0) -> float:
    """The strongest frequency (in `step` Hz) over up to `max_seconds` of audio, for messages.

    Returns 0.0 for silence.
    """
    hi = hi if hi is not None else rate / 2 - step
    chunk = samples[: int(rate * max_seconds)]
    if not chunk or sum(x * x for x in chunk) / len(chunk) < SILENCE_MEAN_SQUARE:
        return 0.0
    # Coarse scan on a 200 ms window, then refine around the best over the chunk.
    window = chunk[: max(1, int(rate * 0.2))]
    best, best_p = lo, -1.0
    f = lo
    while f <= hi:
        p = goertzel_power(window, rate, f)
        if p > best_p:
            best, best_p = f, p
        f += step * 5
    f, top = max(lo, best - 5 * step), min(hi, best + 5 * step)
    best_p = -1.0
    while f <= top:
        p = goertzel_power(window, rate, f)
        if p > best_p:
            best, best_p = f, p
        f += step
    return float(best)


def describe(samples: Sequence[int], rate: int, freqs: Sequence[float] = ()) -> str:
    """A one-line summary of a recording for assertion messages."""
    secs = len(samples) / rate if rate else 0.0
    rms = math.sqrt(sum(x * x for x in samples) / len(samples)) if len(samples) else 0.0
    parts = [f"{secs:.2f}s", f"rms={rms:.0f}", f"dominant~{dominant_frequency(samples, rate):.0f}Hz"]
    for f in freqs:
        parts.append(f"{f:g}Hz:{tone_frames(samples, rate, f, others=[g for g in freqs if g != f])} frames")
    return " ".join(parts)
