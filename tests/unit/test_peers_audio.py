"""The e2e audio checks (tests/peers/audio.py) on synthetic signals."""
from __future__ import annotations

import random
import struct
from array import array

import pytest

from tests.peers import audio

RATE = 8000


def _noise(seconds: float, level: int = 8000, seed: int = 1) -> array:
    rnd = random.Random(seed)
    return array("h", (rnd.randint(-level, level) for _ in range(int(seconds * RATE))))


def test_tone_present_on_its_own_tone():
    s = audio.tone_samples(600, 1.0)
    assert audio.tone_present(s, RATE, 600, others=(1400,))
    assert not audio.tone_present(s, RATE, 1400, others=(600,))


@pytest.mark.parametrize("freq", [350.0, 600.0, 1013.0, 1400.0, 2500.0])
def test_dominant_frequency_finds_the_tone(freq):
    s = audio.tone_samples(freq, 0.5)
    assert abs(audio.dominant_frequency(s, RATE) - freq) <= 10


def test_silence_has_no_tone():
    s = array("h", bytes(2 * RATE))
    assert not audio.tone_present(s, RATE, 600, min_seconds=0.02)
    assert audio.dominant_frequency(s, RATE) == 0.0


def test_very_quiet_tone_is_below_the_floor():
    s = audio.tone_samples(600, 1.0, amplitude=0.0005)  # ~ -66 dBFS
    assert not audio.tone_present(s, RATE, 600, min_seconds=0.1)


def test_white_noise_has_no_tone():
    s = _noise(2.0)
    for f in (600, 1000, 1400):
        assert not audio.tone_present(s, RATE, f, min_seconds=0.1)


def test_tone_in_moderate_noise_is_found():
    tone = audio.tone_samples(1400, 1.0, amplitude=0.3)
    noise = _noise(1.0, level=1500)
    mix = array("h", (t + n for t, n in zip(tone, noise)))
    assert audio.tone_present(mix, RATE, 1400, others=(600,))
    assert not audio.tone_present(mix, RATE, 600, others=(1400,))


def test_two_tone_mix_dominance():
    # Both present with equal power: neither dominates the other.
    mix = audio.tone_samples((600, 1400), 1.0)
    assert not audio.tone_present(mix, RATE, 600, others=(1400,))
    # But a strong 600 with a faint 1400 leak (-30 dB) still counts as 600.
    a = audio.tone_samples(600, 1.0, amplitude=0.3)
    b = audio.tone_samples(1400, 1.0, amplitude=0.3 * 10 ** (-30 / 20))
    mix = array("h", (x + y for x, y in zip(a, b)))
    assert audio.tone_present(mix, RATE, 600, others=(1400,))
    assert not audio.tone_present(mix, RATE, 1400, others=(600,))


def test_min_seconds_counts_frames():
    s = audio.tone_samples(600, 0.3) + array("h", bytes(2 * RATE))
    assert audio.tone_present(s, RATE, 600, min_seconds=0.25)
    assert not audio.tone_present(s, RATE, 600, min_seconds=0.5)


def test_goertzel_power_scale():
    s = audio.tone_samples(1000, 0.02, amplitude=0.5)
    p = audio.goertzel_power(s, RATE, 1000)
    expected = (0.5 * 32767) ** 2 / 4
    assert 0.9 * expected < p < 1.1 * expected
    assert audio.goertzel_power(s, RATE, 2000) < expected / 1000
    assert audio.goertzel_power([], RATE, 1000) == 0.0


def test_wav_roundtrip_mono(tmp_path):
    p = audio.write_tone_wav(tmp_path / "t.wav", (697, 1209), 0.5)
    rate, s = audio.read_wav(p)
    assert rate == RATE and len(s) == 4000
    assert audio.tone_present(s, rate, 697, min_seconds=0.4, others=(770, 852, 941))
    assert audio.tone_present(s, rate, 1209, min_seconds=0.4, others=(1336, 1477))


def test_read_wav_stereo_picks_channel(tmp_path):
    import wave
    left, right = audio.tone_samples(600, 0.5), audio.tone_samples(1400, 0.5)
    inter = array("h")
    for a, b in zip(left, right):
        inter.extend((a, b))
    with wave.open(str(tmp_path / "st.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(inter.tobytes())
    _, ch0 = audio.read_wav(tmp_path / "st.wav")
    _, ch1 = audio.read_wav(tmp_path / "st.wav", channel=1)
    assert audio.tone_present(ch0, RATE, 600, others=(1400,))
    assert audio.tone_present(ch1, RATE, 1400, others=(600,))
    with pytest.raises(ValueError):
        audio.read_wav(tmp_path / "st.wav", channel=2)


def test_read_wav_extensible_header(tmp_path):
    s = audio.tone_samples(600, 0.2)
    data = s.tobytes()
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, RATE, RATE * 2, 2, 16) + struct.pack(
        "<HHHI16s", 22, 16, 0, 4, b"\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71")
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    (tmp_path / "x.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    rate, got = audio.read_wav(tmp_path / "x.wav")
    assert rate == RATE and list(got) == list(s)
