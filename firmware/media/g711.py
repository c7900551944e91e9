"""ITU-T G.711 µ-law and A-law as lookup tables (pure, standard library only).

Quantisation follows G.711 Tables 1 and 2 (the segment/step layout; the
negative half uses one's complement, i.e. decision values sit symmetrically
around -0.5 as in the ITU-T G.191 reference), expressed on 16-bit linear PCM:
µ-law looks at the top 14 bits of a sample, A-law at the top 13 bits.

All tables are built once at import by filling runs (one run per code word,
no per-sample Python loop), then every conversion is a table lookup:

* ``ulaw_decode_table`` / ``alaw_decode_table``: 256 ints, code -> linear.
* ``lin2ulaw`` / ``lin2alaw``: 16-bit linear (``array('h')`` or little-endian
  bytes) -> code bytes, via a 65,536-entry table indexed by the sample.
* ``ulaw2lin`` / ``alaw2lin``: code bytes -> 16-bit little-endian PCM bytes.
* ``ULAW_TO_ALAW`` / ``ALAW_TO_ULAW``: 256-byte tables for ``bytes.translate``.

Transcoding tables: built as decode-then-re-encode (each code goes to the
code of the other law whose quantisation interval contains its reconstruction
value). This is not a copy of G.711 Tables 3/4: the widely circulated copies
of those tables (Sun's ``_u2a``/``_a2u``) differ from decode/re-encode on a
few dozen codes by one quantisation step. Either keeps µ->A->µ within one
µ-law step, which the tests check.
"""

from __future__ import annotations

import sys
from array import array
from struct import Struct

__all__ = [
    "ulaw_decode_table", "alaw_decode_table",
    "lin2ulaw", "ulaw2lin", "lin2alaw", "alaw2lin",
    "ulaw_encode_sample", "alaw_encode_sample",
    "ULAW_TO_ALAW", "ALAW_TO_ULAW",
    "ULAW_SILENCE", "ALAW_SILENCE",
]

# --- decoding: G.711 Table 2 reconstruction values, scaled to 16 bits -------

def _ulaw_decode(code: int) -> int:
    k = ~code & 0x7F                  # µ-law code words are sent inverted
    seg, q = k >> 4, k & 0x0F
    mag = ((2 * q + 33) << (seg + 2)) - 132   # 132 = bias 33, scaled by 4
    return mag if code & 0x80 else -mag


def _alaw_decode(code: int) -> int:
    k = (code ^ 0x55) & 0x7F          # even bits are inverted on the line
    seg, q = k >> 4, k & 0x0F
    mag = (2 * q + 1) << 3 if seg == 0 else (2 * q + 33) << (seg + 2)
    return mag if code & 0x80 else -mag


ulaw_decode_table: list[int] = [_ulaw_decode(c) for c in range(256)]
alaw_decode_table: list[int] = [_alaw_decode(c) for c in range(256)]

# --- encoding: one run of equal code words per quantisation interval --------
#
# ``y`` is the magnitude in 16-bit units on the one's-complement scale:
# y = x for x >= 0 and y = ~x = -x - 1 for x < 0, so 0 <= y <= 32767.

def _ulaw_runs() -> list[tuple[int, int]]:
    """(k, length in y) for k = seg<<4|q in increasing magnitude order."""
    runs = []
    for seg in range(8):
        for q in range(16):
            # biased 14-bit interval [lo, lo + step); v = b - 33; y = 4*v .. 4*v+3
            lo = (32 << seg) + (q << (seg + 1))
            step = 1 << (seg + 1)
            v_lo, v_hi = max(lo - 33, 0), lo + step - 33
            runs.append((seg << 4 | q, 4 * (v_hi - v_lo)))
    return runs


def _alaw_runs() -> list[tuple[int, int]]:
    runs = []
    for seg in range(8):
        for q in range(16):
            width = 1 if seg == 0 else 1 << (seg - 1)   # in 12-bit magnitude units
            runs.append((seg << 4 | q, 16 * width))
    return runs


def _fill(runs: list[tuple[int, int]], code_of) -> bytes:
    """Expand runs over y = 0..32767 (clipping the top run)."""
    out = b"".join(bytes((code_of(k),)) * n for k, n in runs)
    if len(out) < 32768:              # µ-law: magnitudes beyond the last run clip
        out += bytes((code_of(runs[-1][0]),)) * (32768 - len(out))
    return out[:32768]


def _encode_table(runs, pos_code, neg_code) -> bytes:
    pos = _fill(runs, pos_code)       # index x         for x = 0..32767
    neg = _fill(runs, neg_code)       # index y = -x-1  for x = -1..-32768
    # Index u = x & 0xFFFF: the negative half runs u = 32768 (x=-32768) .. 65535 (x=-1).
    return pos + neg[::-1]


_ULAW_ENC: bytes = _encode_table(_ulaw_runs(), lambda k: 0xFF ^ k, lambda k: 0x7F ^ k)
_ALAW_ENC: bytes = _encode_table(_alaw_runs(), lambda k: (0x80 | k) ^ 0x55, lambda k: k ^ 0x55)


def ulaw_encode_sample(x: int) -> int:
    """One 16-bit signed sample -> µ-law code (negative indices wrap as x & 0xFFFF)."""
    return _ULAW_ENC[x]


def alaw_encode_sample(x: int) -> int:
    return _ALAW_ENC[x]


# --- frame conversions ------------------------------------------------------

_BIG_ENDIAN = sys.byteorder == "big"


def _samples(samples) -> array:
    """array('h') of the samples, from array('h') or little-endian bytes."""
    if isinstance(samples, array):
        if samples.typecode != "h":
            raise TypeError("expected array('h')")
        return samples
    a = array("h")
    a.frombytes(samples)            # one copy; cheaper than iterating a memoryview
    if _BIG_ENDIAN:
        a.byteswap()
    return a


def lin2ulaw(samples) -> bytes:
    """16-bit linear PCM (array('h') or little-endian bytes) -> µ-law bytes."""
    # A 65,536-entry table indexed by the signed sample: Python's negative
    # indexing maps x < 0 to x & 0xFFFF, which is exactly the table layout.
    table = _ULAW_ENC
    return bytes([table[x] for x in _samples(samples)])


def lin2alaw(samples) -> bytes:
    """16-bit linear PCM (array('h') or little-endian bytes) -> A-law bytes."""
    table = _ALAW_ENC
    return bytes([table[x] for x in _samples(samples)])


_S16LE = Struct("<h")
_ULAW_PCM: list[bytes] = [_S16LE.pack(v) for v in ulaw_decode_table]
_ALAW_PCM: list[bytes] = [_S16LE.pack(v) for v in alaw_decode_table]


def ulaw2lin(data: bytes) -> bytes:
    """µ-law bytes -> 16-bit little-endian PCM bytes."""
    return b"".join(map(_ULAW_PCM.__getitem__, data))


def alaw2lin(data: bytes) -> bytes:
    """A-law bytes -> 16-bit little-endian PCM bytes."""
    return b"".join(map(_ALAW_PCM.__getitem__, data))


# --- transcoding ------------------------------------------------------------

ULAW_TO_ALAW: bytes = bytes(_ALAW_ENC[v] for v in ulaw_decode_table)
ALAW_TO_ULAW: bytes = bytes(_ULAW_ENC[v] for v in alaw_decode_table)

ULAW_SILENCE = 0xFF   # code for linear 0 (positive zero)
ALAW_SILENCE = 0xD5
