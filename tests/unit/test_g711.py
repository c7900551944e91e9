"""G.711 tables against a bit-level transcription of the G.711 algorithm.

The reference functions below follow the ITU-T G.191 (STL) reading of G.711:
one's complement for negative inputs, bias 33 for µ-law, even-bit inversion
for A-law. They are deliberately written differently from the module (bit
loops here, run-filled tables there).
"""

from __future__ import annotations

import math
import struct
from array import array


from firmware.media import g711


def ref_ulaw_compress(x: int) -> int:
    absno = ((~x) >> 2) if x < 0 else (x >> 2)   # 14-bit magnitude
    absno = min(absno + 33, 0x1FFF)
    i, segno = absno >> 6, 1
    while i:
        segno += 1
        i >>= 1
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    return code | 0x80 if x >= 0 else code


def ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x80 else 1
    mantissa = ~code & 0xFF
    exponent = (mantissa >> 4) & 0x07
    step = 4 << (exponent + 1)
    mantissa &= 0x0F
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def ref_alaw_compress(x: int) -> int:
    ix = ((~x) >> 4) if x < 0 else (x >> 4)      # 12-bit magnitude
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


def ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x55) & 0x7F
    iexp, mant = ix >> 4, ix & 0x0F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 8
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


ALL_SAMPLES = range(-32768, 32768)


def test_decode_tables_all_256_codes():
    assert len(g711.ulaw_decode_table) == 256
    assert [ref_ulaw_expand(c) for c in range(256)] == list(g711.ulaw_decode_table)
    assert [ref_alaw_expand(c) for c in range(256)] == list(g711.alaw_decode_table)


def test_known_points():
    assert g711.ulaw_decode_table[0xFF] == 0 and g711.ulaw_decode_table[0x7F] == 0
    assert g711.ulaw_decode_table[0x80] == 32124 and g711.ulaw_decode_table[0x00] == -32124
    assert g711.alaw_decode_table[0xD5] == 8 and g711.alaw_decode_table[0x55] == -8
    assert g711.alaw_decode_table[0xAA] == 32256 and g711.alaw_decode_table[0x2A] == -32256
    assert g711.lin2ulaw(array("h", [0, -1])) == bytes([0xFF, 0x7F])
    assert g711.lin2alaw(array("h", [0, -1])) == bytes([0xD5, 0x55])


def test_ulaw_encode_all_65536_values():
    pcm = array("h", ALL_SAMPLES)
    assert g711.lin2ulaw(pcm) == bytes(ref_ulaw_compress(x) for x in ALL_SAMPLES)


def test_alaw_encode_all_65536_values():
    pcm = array("h", ALL_SAMPLES)
    assert g711.lin2alaw(pcm) == bytes(ref_alaw_compress(x) for x in ALL_SAMPLES)


def test_bytes_input_is_little_endian_pcm():
    samples = [0, 1, -1, 1000, -1000, 32767, -32768, 12345]
    raw = struct.pack("<%dh" % len(samples), *samples)
    assert g711.lin2ulaw(raw) == bytes(ref_ulaw_compress(x) for x in samples)
    assert g711.lin2alaw(raw) == bytes(ref_alaw_compress(x) for x in samples)
    assert g711.lin2ulaw(array("h", samples)) == g711.lin2ulaw(raw)


def test_decode_to_little_endian_pcm():
    codes = bytes(range(256))
    assert g711.ulaw2lin(codes) == struct.pack("<256h", *[ref_ulaw_expand(c) for c in codes])
    assert g711.alaw2lin(codes) == struct.pack("<256h", *[ref_alaw_expand(c) for c in codes])


def test_decode_then_encode_is_identity_on_codes():
    # Every code's reconstruction value lies inside its own interval (except
    # the two zero codes of µ-law, where -0 decodes to 0 and re-encodes as +0).
    u = g711.lin2ulaw(g711.ulaw2lin(bytes(range(256))))
    assert [c for c in range(256) if u[c] != c] == [0x7F]
    assert g711.lin2alaw(g711.alaw2lin(bytes(range(256)))) == bytes(range(256))


def _ulaw_step(code: int) -> int:
    """Quantisation step (16-bit units) of the µ-law interval of ``code``."""
    return 8 << ((~code & 0x7F) >> 4)


def _alaw_step(code: int) -> int:
    seg = ((code ^ 0x55) & 0x7F) >> 4
    return 16 << max(seg - 1, 0)


def test_transcoding_tables_are_decode_then_reencode():
    assert len(g711.ULAW_TO_ALAW) == len(g711.ALAW_TO_ULAW) == 256
    for c in range(256):
        assert g711.ULAW_TO_ALAW[c] == ref_alaw_compress(ref_ulaw_expand(c))
        assert g711.ALAW_TO_ULAW[c] == ref_ulaw_compress(ref_alaw_expand(c))


def test_ulaw_alaw_ulaw_round_trip_within_one_step():
    back = bytes(range(256)).translate(g711.ULAW_TO_ALAW).translate(g711.ALAW_TO_ULAW)
    dec = g711.ulaw_decode_table
    changed = 0
    for c in range(256):
        assert abs(dec[back[c]] - dec[c]) <= _ulaw_step(c), hex(c)
        changed += back[c] != c
    assert changed == 16         # the 8 smallest magnitudes each side: A-law is coarser there


def test_alaw_ulaw_alaw_round_trip_error_is_bounded():
    # Not transparent: at a few codes the µ-law value sits at an A-law
    # interval edge, so the error is one A-law step plus half a µ-law step.
    via = bytes(range(256)).translate(g711.ALAW_TO_ULAW)
    back = via.translate(g711.ULAW_TO_ALAW)
    dec = g711.alaw_decode_table
    for c in range(256):
        assert abs(dec[back[c]] - dec[c]) <= _alaw_step(c) + _ulaw_step(via[c]) // 2, hex(c)


def test_tone_survives_transcoding():
    n = 160
    tone = array("h", (int(8000 * math.sin(2 * math.pi * 1000 * i / 8000)) for i in range(n)))
    u = g711.lin2ulaw(tone)
    a = u.translate(g711.ULAW_TO_ALAW)
    pcm = array("h", g711.alaw2lin(a))
    err = math.sqrt(sum((x - y) ** 2 for x, y in zip(tone, pcm)) / n)
    assert err < 8000 * 0.05


