"""N-party conference mixing of 20 ms 16-bit frames (pure; numpy optional).

Minus-one: every participant hears the sum of everybody else, computed as
``total - own`` so a tick costs one sum over all talkers plus one subtraction
per talker. Participants with no frame this tick (``None``: silent, muted,
jitter buffer empty) add nothing and hear ``total``, which is computed once
for all of them.

Clipping: sums are formed in Python ints (or int32 in numpy), never in int16,
so nothing wraps; the result is saturated to -32768..32767 ("hard"), or passed
through a soft knee above ``SOFT_KNEE`` that approaches full scale smoothly
("soft"). The pure path gets saturation for free in the common case: building
``array('h', ...)`` from in-range values runs in C, and an out-of-range value
raises OverflowError, only then do we clamp sample by sample.

Backends: ``"python"`` (array + map in C, standard library) and ``"numpy"``
(if importable). ``"auto"`` picks numpy from ``NUMPY_MIN_PARTIES`` talkers.
Measured, µs per 20 ms tick for all outputs (CPython 3.11, numpy 2.4, AMD EPYC
VM; /tmp-style timeit, same as scripts/bench_media.py), normal / clipping input:

    talkers   python        numpy
    2         1.7 / 1.6     13 / 13     (two talkers are a swap: python always)
    3         44  / 74      14 / 14
    5         66  / 118     17 / 16
    10        121 / 224     25 / 33

so numpy wins from 3 talkers on, by 3-9x; without numpy the pure path still
mixes 30 five-party conferences in ~2 ms of every 20 ms tick.
"""

from __future__ import annotations

import math
import sys
from array import array
from operator import add, sub
from typing import Hashable, Iterable, Mapping, TypeVar

import importlib.util

# numpy costs ~12 MB of RSS when imported; the box imports this module at start (through the
# recorder) but only a conference needs numpy, so it is imported on first use.
_np = None
__all__ = ["mix_minus_one", "mix", "add_saturate", "saturate", "HAVE_NUMPY", "SOFT_KNEE"]

K = TypeVar("K", bound=Hashable)
HAVE_NUMPY = importlib.util.find_spec("numpy") is not None
SOFT_KNEE = 24576                       # -2.5 dBFS: below it the soft limiter is transparent
NUMPY_MIN_PARTIES = 3


_BIG_ENDIAN = sys.byteorder == "big"     # PCM on the wire and in WAV is little-endian


def _bytes(a: array) -> bytes:
    if _BIG_ENDIAN:
        a = array("h", a)
        a.byteswap()
    return a.tobytes()


def _soft(x: int) -> int:
    m = x if x >= 0 else -x
    if m <= SOFT_KNEE:
        return x
    room = 32767 - SOFT_KNEE
    y = SOFT_KNEE + int(room * math.tanh((m - SOFT_KNEE) / room))
    return y if x >= 0 else -y


def _clamp(x: int) -> int:
    return x if -32768 <= x <= 32767 else (32767 if x > 0 else -32768)


def saturate(values: Iterable[int], soft: bool = False) -> bytes:
    """Int samples (any magnitude) -> 16-bit little-endian PCM, without wrap-around."""
    if soft:
        return _bytes(array("h", map(_soft, values)))
    if not isinstance(values, (list, tuple)):
        values = list(values)
    try:
        return _bytes(array("h", values))
    except OverflowError:
        return _bytes(array("h", map(_clamp, values)))


def _pcm(frame: bytes, n: int) -> array:
    a = array("h")
    a.frombytes(frame[:2 * n] if len(frame) & 1 else frame)
    if _BIG_ENDIAN:
        a.byteswap()
    if len(a) != n:                     # odd sizes: pad with silence / cut to the tick
        a = a[:n] if len(a) > n else a + array("h", bytes(2 * (n - len(a))))
    return a


def add_saturate(a: bytes, b: bytes) -> bytes:
    """Sample-wise a + b of two 16-bit PCM frames, saturated (e.g. a mono call recording)."""
    n = max(len(a), len(b)) // 2
    return saturate(list(map(add, _pcm(a, n), _pcm(b, n))))


def mix(frames: Iterable[bytes | None], samples: int = 160, soft: bool = False) -> bytes:
    """Everybody's frames summed into one (conference recording, mono mix)."""
    live = [_pcm(f, samples) for f in frames if f]
    if not live:
        return bytes(2 * samples)
    if len(live) == 1:
        return _bytes(live[0])
    return saturate(list(map(sum, zip(*live))), soft)


def mix_minus_one(frames: Mapping[K, bytes | None], *, samples: int = 160,
                  soft: bool = False, backend: str = "auto") -> dict[K, bytes]:
    """One output frame per participant: the mix of all others (saturated).

    ``frames`` maps each participant to its decoded 16-bit PCM frame for this
    tick, or None if it sent nothing. ``samples`` is the tick length (160 at
    8 kHz); frames of another length are padded with silence or cut.
    """
    talkers = {k: f for k, f in frames.items() if f}
    silence = bytes(2 * samples)
    if not talkers:
        return {k: silence for k in frames}
    if len(talkers) == 1:               # one talker: it hears silence, others hear it
        (tk, tf), = talkers.items()
        tf = tf if len(tf) == 2 * samples else _bytes(_pcm(tf, samples))
        return {k: (silence if k == tk else tf) for k in frames}
    if backend == "auto":
        backend = "numpy" if HAVE_NUMPY and len(talkers) >= NUMPY_MIN_PARTIES else "python"
    if backend == "numpy":
        return _mix_numpy(frames, talkers, samples, soft)
    if backend != "python":
        raise ValueError(f"unknown backend {backend!r}")

    pcm = {k: _pcm(f, samples) for k, f in talkers.items()}
    direct: dict = {}
    if len(pcm) == 2:                   # two talkers: each hears exactly the other
        (a, fa), (b, fb) = pcm.items()
        direct = {a: _bytes(fb), b: _bytes(fa)}
    total = total_b = None
    if len(pcm) > 2 or len(frames) > 2:
        total = list(map(sum, zip(*pcm.values())))
        total_b = saturate(total, soft)
    out: dict[K, bytes] = {}
    for k in frames:
        if k in direct:
            out[k] = direct[k]
        elif k in pcm:
            out[k] = saturate(list(map(sub, total, pcm[k])), soft)
        else:
            out[k] = total_b
    return out


def _numpy():  # type: ignore[no-untyped-def]
    global _np
    if _np is None:
        import numpy

        _np = numpy
    return _np


def _mix_numpy(frames, talkers, samples, soft):
    np = _numpy()
    keys = list(talkers)
    m = np.empty((len(keys), samples), dtype=np.int32)
    for i, k in enumerate(keys):
        f = talkers[k]
        if len(f) == 2 * samples:
            m[i] = np.frombuffer(f, dtype="<i2")
        else:
            m[i] = np.frombuffer(_bytes(_pcm(f, samples)), dtype="<i2")
    total = m.sum(axis=0)
    minus = total - m                   # broadcast: row i = everybody but i
    if soft:
        rows = [saturate(r.tolist(), True) for r in minus]
        total_b = saturate(total.tolist(), True)
    else:
        np.clip(minus, -32768, 32767, out=minus)
        rows16 = minus.astype("<i2")
        rows = [r.tobytes() for r in rows16]
        total_b = np.clip(total, -32768, 32767).astype("<i2").tobytes()
    out = dict(zip(keys, rows))
    return {k: out.get(k, total_b) for k in frames}
