"""1200 baud FSK (Bell 202, V.23): modulator and streaming demodulator.

Signals are synthetic: our modulator with level, frequency and baud-rate
offsets, seeded white noise at 20 dB SNR, cut into random chunks; and an
independent reference modulator written here from the spec with numpy.
"""

from __future__ import annotations

import dataclasses
import math
import random
from array import array

import pytest

from board.fsk import (BELL202, V23, FskDemodulator, FskModulator, mark_bits, seizure_bits,
                       uart_bits)
from firmware.media.tones import dbm0_to_amplitude

RATE = 8000
MESSAGE = bytes(range(0x20, 0x7F, 3)) + bytes((0x00, 0xFF, 0x55, 0xAA, 0x80, 0x01))


def add_noise(sig, level_dbm0: float, snr_db: float, seed: int) -> array:
    """White Gaussian noise ``snr_db`` below a sine at ``level_dbm0``."""
    rng = random.Random(seed)
    sigma = dbm0_to_amplitude(level_dbm0) / math.sqrt(2) / 10 ** (snr_db / 20)
    return array("h", [max(-32768, min(32767, round(v + rng.gauss(0.0, sigma)))) for v in sig])


def feed_chunked(demod: FskDemodulator, sig, seed: int, most: int = 400) -> bytes:
    rng = random.Random(seed)
    out, i = bytearray(), 0
    while i < len(sig):
        n = rng.randint(1, most)
        out += demod.feed(sig[i:i + n])
        i += n
    return bytes(out)


def test_uart_framing():
    assert uart_bits(b"\x01") == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert uart_bits(b"\x80") == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert seizure_bits(4) == [0, 1, 0, 1]
    assert mark_bits(3) == [1, 1, 1]


@pytest.mark.parametrize("std", [BELL202, V23], ids=lambda s: s.name)
def test_modulator_level_and_continuity(std):
    bits = seizure_bits(40) + uart_bits(b"LineBox")
    whole = FskModulator(std, -20.0).modulate(bits)
    m = FskModulator(std, -20.0)
    parts = m.modulate(bits[:13]) + m.modulate(bits[13:14]) + m.modulate(bits[14:])
    assert parts == whole                          # phase and bit clock carry over
    assert len(whole) == round(len(bits) * RATE / 1200)
    rms = math.sqrt(sum(v * v for v in whole) / len(whole))
    assert abs(20 * math.log10(rms * math.sqrt(2) / dbm0_to_amplitude(-20.0))) < 0.1
    # phase-continuous: no sample-to-sample jump bigger than the 2200 Hz slope
    amp = dbm0_to_amplitude(-20.0)
    step = max(abs(a - b) for a, b in zip(whole, whole[1:]))
    assert step <= amp * 2 * math.pi * std.space / RATE + 2


OFFSETS = [(1.0, 1.0), (1.01, 1.02), (0.99, 0.98), (1.01, 0.98), (0.99, 1.02)]


@pytest.mark.parametrize("std", [BELL202, V23], ids=lambda s: s.name)
@pytest.mark.parametrize("level", [-10.0, -25.0, -40.0])
@pytest.mark.parametrize("freq,baud", OFFSETS, ids=lambda v: f"{v:g}")
def test_round_trip_noise_offsets_chunks(std, level, freq, baud):
    """seizure + marks + message, 20 dB SNR, +-1 % tones, +-2 % baud, random chunks."""
    tx = dataclasses.replace(std, mark=std.mark * freq, space=std.space * freq,
                             baud=std.baud * baud)
    m = FskModulator(tx, level)
    sig = (m.silence(30) + m.modulate(seizure_bits(300) + mark_bits(180) + uart_bits(MESSAGE)
                                       + mark_bits(2)) + m.silence(30))
    seed = int(-level) * 100 + int(freq * 1000) + int(baud * 10)
    noisy = add_noise(sig, level, 20.0, seed)
    demod = FskDemodulator(std)
    got = feed_chunked(demod, noisy, seed)
    # after the message the carrier detector may still hear the noise for a
    # few ms: what follows is junk a receiver ignores by the length byte
    assert got[:len(MESSAGE)] == MESSAGE


@pytest.mark.parametrize("std", [BELL202, V23], ids=lambda s: s.name)
def test_seizure_is_skipped_and_raw_mode_shows_it(std):
    m = FskModulator(std, -13.5)
    sig = m.modulate(seizure_bits(300) + mark_bits(80) + uart_bits(b"\x80\x01") + mark_bits(2))
    assert FskDemodulator(std).feed(sig) == b"\x80\x01"
    raw = FskDemodulator(std, mark_bits=0).feed(sig)
    assert raw.endswith(b"\x80\x01")
    # 0101... frames as 'U' (the last one may run into the marks)
    assert raw[:-2].count(0x55) >= 25 and set(raw[:-3]) == {0x55}


def test_no_mark_signal_no_bytes():
    """Without the mark signal (e.g. a burst of seizure only) nothing comes out."""
    m = FskModulator(BELL202)
    assert FskDemodulator(BELL202).feed(m.modulate(seizure_bits(600))) == b""


def test_noise_and_silence_give_nothing():
    silence = array("h", bytes(2 * 8000))
    assert FskDemodulator(V23).feed(silence) == b""
    noise = add_noise(silence, -13.5, 0.0, seed=7)      # noise as loud as a signal
    d = FskDemodulator(V23)
    assert feed_chunked(d, noise, 7) == b""
    assert not d.synced


def test_below_carrier_threshold_is_ignored():
    m = FskModulator(BELL202, -55.0)
    sig = m.modulate(mark_bits(180) + uart_bits(b"hello"))
    d = FskDemodulator(BELL202)
    assert d.feed(sig) == b"" and not d.carrier


def test_chunking_does_not_change_the_output():
    m = FskModulator(V23, -30.0)
    sig = add_noise(m.modulate(mark_bits(80) + uart_bits(MESSAGE) + mark_bits(2)), -30.0, 20.0,
                    seed=3)
    whole = FskDemodulator(V23).feed(sig)
    d = FskDemodulator(V23)
    single = b"".join(d.feed(sig[i:i + 1]) for i in range(len(sig)))
    as_bytes = FskDemodulator(V23).feed(sig.tobytes())
    assert whole == single == as_bytes and whole[:len(MESSAGE)] == MESSAGE


def test_carrier_loss_rearms_the_mark_signal():
    m = FskModulator(BELL202)
    burst = m.modulate(mark_bits(30) + uart_bits(b"one") + mark_bits(2))
    gap = m.silence(50)
    no_marks = FskModulator(BELL202).modulate(seizure_bits(30) + uart_bits(b"two"))
    d = FskDemodulator(BELL202)
    assert d.feed(burst + gap) == b"one"
    assert d.feed(no_marks) == b""           # no mark signal after the gap


def test_independent_reference_modulator():
    """Bell 202 from the spec, written with numpy (instantaneous frequency ->
    cumulative phase, random start phase, bits on an exact 1200 Hz clock)."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(11)
    bits = np.array(seizure_bits(300) + mark_bits(180) + uart_bits(MESSAGE) + mark_bits(4))
    t = np.arange(int(len(bits) * RATE / 1200))
    freq = np.where(bits[(t * 1200) // RATE] == 1, 1200.0, 2200.0)
    phase = rng.uniform(0, 2 * np.pi) + np.cumsum(2 * np.pi * freq / RATE)
    x = dbm0_to_amplitude(-18.0) * np.sin(phase)
    x += rng.normal(0, dbm0_to_amplitude(-18.0) / np.sqrt(2) / 10, len(x))   # 20 dB SNR
    sig = x.round().astype("<i2").tobytes()
    got = FskDemodulator("bell202").feed(sig)
    assert got[:len(MESSAGE)] == MESSAGE


@pytest.mark.parametrize("std", [BELL202, V23], ids=lambda s: s.name)
@pytest.mark.parametrize("snr,offsets", [
    (10.0, OFFSETS),                                       # the spec offsets, 10 dB below the tests
    (20.0, [(1.0, 1.04), (1.0, 0.96), (1.02, 1.03)]),      # twice the baud tolerance
], ids=["10dB", "4%baud"])
def test_margin(std, snr, offsets):
    """Every byte value, no errors: the margin behind the 20 dB / 2 % tests."""
    every = bytes(range(256))
    for k, (freq, baud) in enumerate(offsets):
        tx = dataclasses.replace(std, mark=std.mark * freq, space=std.space * freq,
                                 baud=std.baud * baud)
        sig = FskModulator(tx, -30.0).modulate(mark_bits(80) + uart_bits(every) + mark_bits(2))
        got = FskDemodulator(std).feed(add_noise(sig, -30.0, snr, seed=k))
        assert got[:256] == every, (freq, baud)


def test_unknown_standard():
    with pytest.raises(ValueError):
        FskModulator("v21")
