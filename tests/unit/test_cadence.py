"""Call-progress cadence: busy/congestion named per region under noise, level offsets and jitter;
unknown tones learned within 10 % (cadence) and 15 Hz (frequency)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from board.cadence import (CallProgressDetector, ToneSegmenter, cadence_matches,
                           identify, learn)
from firmware.media.tones import TONES, ToneGenerator, ToneSpec, dbm0_to_amplitude

REGIONS = ("us", "uk", "de", "fr", "cn", "jp", "au", "in")
RATE = 8000


def render(spec: ToneSpec, seconds: float, rng: random.Random, *, level_db: float = 0.0,
           jitter: float = 0.08, noise_dbm0: float | None = -45.0, lead_ms: float | None = None
           ) -> np.ndarray:
    """The tone as an exchange would play it: its frequencies from the house generator, each
    on/off period stretched by up to +-``jitter``, a gain, white noise, a random start."""
    n = int(seconds * RATE)
    steady = ToneSpec(spec.freqs, spec.levels_dbm0, (), spec.am_hz, spec.am_depth)
    wave = np.array(ToneGenerator(steady).next_frame(n), dtype=np.float64) * 10 ** (level_db / 20)
    mask = np.zeros(n)
    if spec.cadence:
        t = int((lead_ms if lead_ms is not None else rng.uniform(0, 400)) * RATE / 1000)
        k = 0
        while t < n:
            d = int(spec.cadence[k % len(spec.cadence)] * rng.uniform(1 - jitter, 1 + jitter) * 8)
            if k % 2 == 0:
                mask[t:t + d] = 1
            t += d
            k += 1
    else:
        mask[:] = 1
    x = wave * mask
    if noise_dbm0 is not None:
        x += np.random.default_rng(rng.randrange(1 << 30)).normal(
            0, dbm0_to_amplitude(noise_dbm0) / np.sqrt(2), n)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def detect(zone: str, x: np.ndarray, **kw) -> list[str]:
    det = CallProgressDetector(TONES[zone], **kw)
    names = []
    for i in range(0, len(x), 160):
        names += [d.name for d in det.feed(x[i:i + 160])]
    return names


def same_spec_names(zone: str, name: str) -> set[str]:
    """Names in the zone whose spec is identical (JP and AU busy = congestion)."""
    spec = TONES[zone][name]
    return {n for n, s in TONES[zone].items() if s == spec}


@pytest.mark.parametrize("zone", REGIONS)
@pytest.mark.parametrize("name", ["busy", "congestion"])
@pytest.mark.parametrize("level_db", [-10.0, 0.0, 6.0])
def test_detector_names_busy_and_congestion(zone, name, level_db):
    rng = random.Random(f"{zone}{name}{level_db}")
    x = render(TONES[zone][name], 7.0, rng, level_db=level_db)
    got = detect(zone, x)
    assert got, f"{zone} {name} not detected"
    assert got[0] in same_spec_names(zone, name)
    assert set(got) <= same_spec_names(zone, name)


@pytest.mark.parametrize("zone", REGIONS)
def test_busy_is_not_named_before_two_cycles(zone):
    spec = TONES[zone]["busy"]
    one_cycle = sum(spec.cadence) * 1.3 / 1000
    x = render(spec, one_cycle, random.Random(zone), jitter=0.0, lead_ms=0)
    assert detect(zone, x) == []


@pytest.mark.parametrize("zone", ["us", "uk", "de"])
def test_dial_tone_and_ringback(zone):
    rng = random.Random(zone)
    assert detect(zone, render(TONES[zone]["dial"], 3.0, rng)) == ["dial"]
    got = detect(zone, render(TONES[zone]["ringback"], 14.0, rng))
    assert got == ["ringback"]


def test_noise_speechlike_and_wrong_frequency_are_not_named():
    rng = random.Random(1)
    noise = render(TONES["us"]["busy"], 5.0, rng, level_db=-60, noise_dbm0=-20)
    assert detect("us", noise) == []
    # a 1 kHz tone with a perfect busy cadence is not US busy (480+620 Hz)
    wrong = ToneSpec((1000.0,), (-13.0,), (500, 500))
    assert detect("us", render(wrong, 5.0, rng)) == []
    # German busy (425 Hz, 480/480) has a busy-like cadence but not the US frequencies
    assert detect("us", render(TONES["de"]["busy"], 5.0, rng)) == []


def test_timing_outside_tolerance_is_not_busy():
    rng = random.Random(2)
    slow = ToneSpec((480.0, 620.0), (-24.0, -24.0), (800, 800))   # US frequencies, 800/800
    assert detect("us", render(slow, 8.0, rng, jitter=0.0)) == []


def test_tone_that_stops_and_comes_back_is_reported_again():
    rng = random.Random(3)
    busy = render(TONES["us"]["busy"], 3.0, rng, jitter=0.0, lead_ms=0)
    gap = np.zeros(8000 * 2, dtype=np.int16)
    x = np.concatenate([busy, gap, busy])
    assert detect("us", x) == ["busy", "busy"]


@pytest.mark.parametrize("zone", REGIONS)
@pytest.mark.parametrize("name", ["busy", "congestion"])
def test_learner_recovers_frequency_and_cadence(zone, name):
    spec = TONES[zone][name]
    rng = random.Random(f"learn{zone}{name}")
    x = render(spec, 9.0, rng, level_db=rng.uniform(-8, 4))
    got = learn(x)
    assert got is not None
    assert len(got.freqs) == len(spec.freqs), got
    for f, want in zip(got.freqs, sorted(spec.freqs)):
        assert abs(f - want) <= 15, got
    assert cadence_matches(got.cadence, spec.cadence, tol=0.10), (got.cadence, spec.cadence)
    assert got.cycles >= 2
    assert (zone, name) in identify(got)


def test_learner_level_and_modulated_tone():
    rng = random.Random(4)
    spec = TONES["in"]["ringback"]                     # 400*25, 400/200/400/2000
    got = learn(render(spec, 14.0, rng, jitter=0.03))
    assert got is not None
    assert got.freqs == pytest.approx((400.0,), abs=5) and got.am_hz == pytest.approx(25, abs=3)
    assert cadence_matches(got.cadence, spec.cadence, tol=0.1)
    tone = learn(render(TONES["de"]["busy"], 6.0, rng, level_db=-7.0))
    assert tone is not None and tone.level_dbm0 == pytest.approx(-20.0, abs=1.0)


def test_learner_continuous_and_unknown_tone():
    rng = random.Random(5)
    dial = learn(render(TONES["au"]["dial"], 3.0, rng))          # 413+438, continuous
    assert dial is not None and dial.cadence == ()
    assert dial.freqs == pytest.approx((413, 438), abs=6)
    odd = ToneSpec((950.0,), (-15.0,), (330, 330, 330, 1000))     # nothing in any table
    got = learn(render(odd, 10.0, rng, jitter=0.04))
    assert got is not None and got.freqs == pytest.approx((950,), abs=5)
    assert cadence_matches(got.cadence, odd.cadence, tol=0.1, rotate=False)
    assert identify(got) == []


def test_learner_on_silence_and_noise_says_nothing():
    rng = random.Random(6)
    assert learn(np.zeros(8000 * 3, dtype=np.int16)) is None
    assert learn(render(TONES["us"]["busy"], 3.0, rng, level_db=-80, noise_dbm0=-60)) is None


def test_segmenter_edges_within_a_block():
    x = render(ToneSpec((425.0,), (-13.0,), (480, 480)), 4.0, random.Random(7), jitter=0.0,
               lead_ms=0, noise_dbm0=None)
    seg = ToneSegmenter()
    segs = seg.feed(x.tobytes()[:2 * 333]) + seg.feed(x.tobytes()[2 * 333:]) + seg.flush()
    # the first burst's leading edge is found against the noise floor, before the tone's level
    # is known, so it comes out early; from then on every edge is within one 10 ms block
    assert segs[0].on and 480 <= segs[0].ms <= 530
    inner = segs[1:-1]
    assert len(inner) >= 5
    assert all(abs(s.ms - 480) <= 10 for s in inner), [s.ms for s in inner]
    assert [s.on for s in inner] == [False, True] * (len(inner) // 2) + [False] * (len(inner) % 2)
