"""Conference mixer: minus-one heard as audio (Goertzel), saturation without wrap."""

from __future__ import annotations

import math
import random
from array import array

import pytest

from firmware.media import mixer
from firmware.media.mixer import add_saturate, mix, mix_minus_one, saturate

RATE = 8000
BACKENDS = ["python"] + (["numpy"] if mixer.HAVE_NUMPY else [])


def tone(freq: float, n: int, amp: int = 3000, start: int = 0) -> bytes:
    return array("h", [int(amp * math.sin(2 * math.pi * freq * (start + i) / RATE))
                       for i in range(n)]).tobytes()


def goertzel(pcm: bytes, freq: float) -> float:
    """Amplitude of ``freq`` in 16-bit PCM (normalised: a sine of amplitude A gives ~A)."""
    x = array("h", pcm)
    n = len(x)
    w = 2 * math.pi * freq / RATE
    c = 2 * math.cos(w)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + c * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - c * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / n


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("parties", [3, 5, 10])
def test_minus_one_each_hears_all_others_not_itself(backend, parties):
    freqs = [400 + 250 * i for i in range(parties)]          # 400 .. 2650 Hz
    heard: dict[int, list[bytes]] = {i: [] for i in range(parties)}
    for tick in range(10):                                   # 200 ms: 5 Hz bins
        frames = {i: tone(f, 160, start=160 * tick) for i, f in enumerate(freqs)}
        out = mix_minus_one(frames, backend=backend)
        for i in range(parties):
            heard[i].append(out[i])
    for i in range(parties):
        pcm = b"".join(heard[i])
        for j, f in enumerate(freqs):
            level = goertzel(pcm, f)
            if i == j:
                assert level < 30, (i, f, level)               # own tone absent
            else:
                assert 2700 < level < 3300, (i, j, f, level)   # every other tone, unchanged level


@pytest.mark.parametrize("backend", BACKENDS)
def test_silent_participants_hear_everyone_and_talkers_do_not_hear_them(backend):
    frames = {"a": tone(500, 160), "b": None, "c": tone(1200, 160), "d": None, "e": tone(2000, 160)}
    out = mix_minus_one(frames, backend=backend)
    everyone = mix([frames["a"], frames["c"], frames["e"]])
    assert out["b"] == out["d"] == everyone
    assert goertzel(out["a"], 500) < 30 and goertzel(out["a"], 1200) > 2500


def test_two_and_one_talkers():
    a, b = tone(500, 160), tone(900, 160)
    assert mix_minus_one({"a": a, "b": b}) == {"a": b, "b": a}
    assert mix_minus_one({"a": a, "b": None, "c": None}) == {"a": bytes(320), "b": a, "c": a}
    assert mix_minus_one({"a": None, "b": None}) == {"a": bytes(320), "b": bytes(320)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_loud_inputs_saturate_without_wrapping(backend):
    loud = array("h", [30000, -30000, 20000, -20000, 0] * 32).tobytes()
    out = mix_minus_one({i: loud for i in range(4)}, backend=backend)
    for pcm in out.values():
        s = array("h", pcm)
        assert list(s[:5]) == [32767, -32768, 32767, -32768, 0]    # 90000 -> +max, not negative
        assert all((v > 0) == (x > 0) for v, x in zip(s, array("h", loud)) if x)


def test_soft_limit_is_transparent_below_the_knee_and_monotonic():
    assert saturate([1000, -20000, 24000], soft=True) == array("h", [1000, -20000, 24000]).tobytes()
    xs = list(range(-200000, 200001, 997))
    ys = list(array("h", saturate(xs, soft=True)))
    assert ys == sorted(ys)
    assert max(ys) <= 32767 and min(ys) >= -32767
    loud = array("h", [30000] * 160).tobytes()
    out = mix_minus_one({i: loud for i in range(3)}, soft=True)
    assert all(SOFT_LO < v <= 32767 for v in array("h", out[0]))


SOFT_LO = mixer.SOFT_KNEE


def test_add_saturate():
    a = array("h", [30000, -30000, 5, 0]).tobytes()
    b = array("h", [10000, -10000, -7, 1]).tobytes()
    assert array("h", add_saturate(a, b)).tolist() == [32767, -32768, -2, 1]
    # a short frame is padded with silence
    assert array("h", add_saturate(a, b[:4])).tolist() == [32767, -32768, 5, 0]


def test_numpy_and_python_paths_agree():
    assert mixer.HAVE_NUMPY, "numpy is a dependency (pyproject.toml): run scripts/setup"
    rng = random.Random(5)
    for parties in (3, 4, 7, 12):
        frames = {i: array("h", [rng.randint(-32768, 32767) for _ in range(160)]).tobytes()
                  for i in range(parties)}
        frames[parties] = None
        for soft in (False, True):
            assert (mix_minus_one(frames, backend="numpy", soft=soft)
                    == mix_minus_one(frames, backend="python", soft=soft))
