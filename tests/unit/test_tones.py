"""Every TONES entry generated and measured: frequency, cadence, level, phase continuity."""

from __future__ import annotations

import cmath
import math
from array import array

import pytest

from firmware.media.tones import DBM0_AMPLITUDE, TONE_NAMES, TONES, ToneGenerator, ToneSpec

RATE = 8000
ENTRIES = [(c, n) for c in TONES for n in TONES[c]]


def power_at(x, f: float) -> float:
    """Power of the sinusoid at f in x (DFT at f, any length)."""
    w = -2j * math.pi * f / RATE
    c = sum(v * cmath.exp(w * i) for i, v in enumerate(x))
    return 2 * abs(c) ** 2 / len(x) ** 2


def peak_freq(x, f0: float) -> float:
    """Frequency of the strongest component within +-3 % of f0 (0.5 Hz grid)."""
    grid = [f0 * 0.97 + 0.5 * k for k in range(int(f0 * 0.06 / 0.5) + 1)]
    return max(grid, key=lambda f: power_at(x, f))


def dbm0(p: float) -> float:
    return 10 * math.log10(p / (DBM0_AMPLITUDE ** 2 / 2))


def generate(spec: ToneSpec, ms: int) -> array:
    g = ToneGenerator(spec)
    out = array("h")
    for _ in range(ms * RATE // 1000 // 160):
        out.extend(g.next_frame(160))
    return out


def on_segment(spec: ToneSpec, x: array) -> array:
    on = spec.cadence[0] * RATE // 1000 if spec.cadence else len(x)
    return x[:min(on, 4000)]


def test_all_countries_and_names():
    for c in ("us", "uk", "de", "fr", "cn", "jp", "au", "in"):
        assert set(TONES[c]) == set(TONE_NAMES), c


@pytest.mark.parametrize("country,name", ENTRIES)
def test_frequency_and_level(country, name):
    spec = TONES[country][name]
    x = on_segment(spec, generate(spec, 1000))
    # no AM tone has an on-period shorter than a whole modulation cycle
    for f, level in zip(spec.freqs, spec.levels_dbm0):
        assert abs(peak_freq(x[:800], f) - f) <= 0.01 * f, (f, peak_freq(x[:800], f))
        assert abs(dbm0(power_at(x, f)) - level) <= 1.0
    total = sum(v * v for v in x) / len(x)
    comps = sum(power_at(x, f) for f, _ in spec.components)
    assert comps >= 0.97 * total       # nothing else in it
    if spec.am_hz:                     # the sidebands are there: it is modulated
        f = spec.freqs[0]
        assert power_at(x, f + spec.am_hz) > 0.1 * power_at(x, f)


def runs(x: array, frame: int = 160) -> list[tuple[bool, int]]:
    """(on?, length in frames): a frame is "on" when most of its samples are."""
    out: list[list] = []
    for i in range(0, len(x) - frame + 1, frame):
        on = sum(1 for v in x[i:i + frame] if v) > frame // 2
        if out and out[-1][0] == on:
            out[-1][1] += 1
        else:
            out.append([on, 1])
    return [(a, b) for a, b in out]


@pytest.mark.parametrize("country,name", ENTRIES)
def test_cadence(country, name):
    spec = TONES[country][name]
    cycle = sum(spec.cadence)
    x = generate(spec, 3 * cycle + 200 if cycle else 2000)
    r = runs(x)
    if not spec.cadence:
        assert r == [(True, len(x) // 160)]
        return
    want = []
    for k in range(3 if spec.repeat else 1):
        for i, d in enumerate(spec.cadence):
            want.append((i % 2 == 0, d / 20))
    if not spec.repeat:           # then silence for good: the last off run is longer
        assert len(r) == len(want) and r[-1][0] is False and r[-1][1] >= want[-1][1]
        want, r = want[:-1], r[:-1]
    got = r[:len(want)]
    assert len(got) == len(want)
    for (on_w, frames_w), (on_g, frames_g) in zip(want, got):
        assert on_w == on_g
        assert abs(frames_g - frames_w) <= 1, (want, got)


@pytest.mark.parametrize("country,name", ENTRIES)
def test_cadence_exact_in_samples(country, name):
    """On/off edges fall on the exact sample: the envelope is the cadence."""
    spec = TONES[country][name]
    if not spec.cadence:
        return
    segs = [d * RATE // 1000 for d in spec.cadence]
    x = generate(spec, sum(spec.cadence) + 20)
    pos = 0
    for i, n in enumerate(segs):
        part = x[pos:pos + n]
        if i % 2:
            assert not any(part)
        else:
            assert max(map(abs, part[:40])) > 0 and max(map(abs, part[-40:])) > 0
        pos += n


def bound(spec: ToneSpec) -> float:
    """Largest sample-to-sample step of the continuous waveform (+ rounding)."""
    if spec.am_hz:
        a = spec.components[0][1]
        fc, fm, m = spec.freqs[0], spec.am_hz, spec.am_depth
        return a * ((1 + m) * 2 * math.sin(math.pi * fc / RATE) + m * 2 * math.pi * fm / RATE) + 2
    return sum(a * 2 * math.sin(math.pi * f / RATE) for f, a in spec.components) + 2


@pytest.mark.parametrize("country,name", ENTRIES)
def test_phase_continuity(country, name):
    spec = TONES[country][name]
    # any framing gives the very same samples as one long call
    whole = ToneGenerator(spec).next_frame(12000)
    g = ToneGenerator(spec)
    pieces = array("h")
    sizes = [160, 80, 37, 1, 333, 160, 2000]
    k = 0
    while len(pieces) < 12000:
        pieces.extend(g.next_frame(min(sizes[k % len(sizes)], 12000 - len(pieces))))
        k += 1
    assert pieces == whole
    # and inside an on-period no step exceeds the sine's own bound
    seg = on_segment(spec, generate(spec, 2000))
    lim = bound(spec)
    assert max(abs(b - a) for a, b in zip(seg, seg[1:])) <= lim


def test_one_shot_is_silent_after_and_done():
    spec = TONES["us"]["confirmation"]
    g = ToneGenerator(spec)
    g.next_frame(600 * RATE // 1000)
    assert g.done
    assert not any(g.next_frame(160))


def test_bad_specs():
    with pytest.raises(ValueError):
        ToneSpec((400.0,), (-13.0, -13.0))
    with pytest.raises(ValueError):
        ToneSpec((400.0,), (-13.0,), (100,))
    with pytest.raises(ValueError):
        ToneSpec((400.0, 450.0), (-13.0, -13.0), am_hz=25.0)
