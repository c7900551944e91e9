"""In-band DTMF detector against ITU-T Q.24: frequency, twist, timing, noise, talk-off.

Signals are synthetic (tones at dBm0 levels, seeded noise) or speech rendered
by espeak-ng at test time (cached for the session in a pytest tmp dir).
Every test runs on both backends (numpy and pure Python).
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
from array import array

import pytest

from firmware.media.dtmf import DtmfDetector, KEYPAD, digit_freqs
from firmware.media.g711 import lin2ulaw, ulaw2lin
from firmware.media.tones import dbm0_to_amplitude

DIGITS = "".join(KEYPAD)   # all 16 keys
RATE = 8000

pytestmark = pytest.mark.parametrize("backend", ["numpy", "python"])


def tone(digit: str, ms: float, *, low_db: float = -10.0, high_db: float = -10.0,
         low_dev: float = 0.0, high_dev: float = 0.0, start: int = 0) -> list[float]:
    """A DTMF tone: nominal frequencies * (1 + dev), each at its dBm0 level."""
    fl, fh = digit_freqs(digit)
    fl, fh = fl * (1 + low_dev), fh * (1 + high_dev)
    al, ah = dbm0_to_amplitude(low_db), dbm0_to_amplitude(high_db)
    w = 2 * math.pi / RATE
    return [al * math.sin(w * fl * t + 0.3) + ah * math.sin(w * fh * t + 1.1)
            for t in range(start, start + round(ms * RATE / 1000))]


def silence(ms: float) -> list[float]:
    return [0.0] * round(ms * RATE / 1000)


def pcm(samples, noise_rms: float = 0.0, seed: int = 1) -> array:
    rng = random.Random(seed)
    out = array("h")
    for v in samples:
        if noise_rms:
            v += rng.gauss(0.0, noise_rms)
        out.append(max(-32768, min(32767, round(v))))
    return out


def detect(samples: array, backend: str, frame: int = 160) -> str:
    det = DtmfDetector(backend=backend)
    found = []
    for i in range(0, len(samples), frame):
        found += det.feed(samples[i:i + frame])
    return "".join(d.digit for d in found)


def framed(*parts) -> array:
    """Silence around the parts, so every tone is whole in the stream."""
    s = silence(30)
    for p in parts:
        s += p
    return pcm(s + silence(100))


# --- frequency tolerance (Q.24: accept +-1.5 %, reject +-3.5 %) ----------------

@pytest.mark.parametrize("dev", [0.015, -0.015])
def test_accepts_1_5_percent_on_each_frequency(backend, dev):
    for d in DIGITS:
        assert detect(framed(tone(d, 60, low_dev=dev)), backend) == d, (d, "low", dev)
        assert detect(framed(tone(d, 60, high_dev=dev)), backend) == d, (d, "high", dev)
        assert detect(framed(tone(d, 60, low_dev=dev, high_dev=-dev)), backend) == d


@pytest.mark.parametrize("dev", [0.035, -0.035])
def test_rejects_3_5_percent_on_either_frequency(backend, dev):
    for d in DIGITS:
        assert detect(framed(tone(d, 60, low_dev=dev)), backend) == "", (d, "low", dev)
        assert detect(framed(tone(d, 60, high_dev=dev)), backend) == "", (d, "high", dev)


# --- twist and level -------------------------------------------------------------

def test_twist_limits(backend):
    for d in DIGITS:
        # normal twist: high group 8 dB weaker; reverse: 4 dB stronger
        assert detect(framed(tone(d, 60, low_db=-6, high_db=-14)), backend) == d
        assert detect(framed(tone(d, 60, low_db=-12, high_db=-8)), backend) == d
        # clearly beyond: 12 dB normal, 8 dB reverse
        assert detect(framed(tone(d, 60, low_db=-6, high_db=-18)), backend) == ""
        assert detect(framed(tone(d, 60, low_db=-16, high_db=-8)), backend) == ""


@pytest.mark.parametrize("level", [-25.0, -20.0, -10.0, -3.0])
def test_level_range(backend, level):
    """-25..-3 dBm0 per tone (two tones at 0 dBm0 would clip 16-bit/G.711)."""
    for d in DIGITS:
        assert detect(framed(tone(d, 60, low_db=level, high_db=level)), backend) == d


def test_too_weak_is_ignored(backend):
    assert detect(framed(tone("5", 100, low_db=-40, high_db=-40)), backend) == ""


# --- timing: 40 ms tone / 40 ms pause, 20 ms tones, drop-outs ----------------------

@pytest.mark.parametrize("offset", [0, 17, 40, 63, 79])
def test_40ms_tones_40ms_pauses_exact(backend, offset):
    """Back-to-back presses at the Q.24 minimum, at several frame alignments."""
    seq = "1234567890*#ABCD55"
    s = silence(0) + [0.0] * offset
    for d in seq:
        s += tone(d, 40) + silence(40)
    assert detect(pcm(s + silence(100)), backend) == seq


def test_20ms_tones_rejected_at_every_alignment(backend):
    for offset in range(0, 80, 7):
        for d in "19*D":
            s = pcm([0.0] * offset + tone(d, 20) + silence(100))
            assert detect(s, backend) == "", (d, offset)


def test_20ms_dropout_is_one_press(backend):
    for offset in range(0, 80, 9):
        s = pcm([0.0] * offset + tone("8", 80) + silence(20) + tone("8", 80, start=800) + silence(100))
        assert detect(s, backend) == "8", offset


def test_report_once_early_for_a_long_press(backend):
    det = DtmfDetector(backend=backend)
    s = framed(tone("#", 2000))
    found = []
    for i in range(0, len(s), 160):
        for ev in det.feed(s[i:i + 160]):
            found.append((i, ev))
    assert len(found) == 1
    at, ev = found[0]
    assert ev.digit == "#"
    assert at <= 240 + 400          # within 50 ms of the tone's start (sample 240)
    assert abs(ev.start_sample - 240) <= 80
    assert 30 <= ev.duration_ms <= 60


def test_frame_size_does_not_matter(backend):
    s = framed(tone("7", 45), silence(45), tone("C", 45))
    for frame in (160, 80, 37, 1000, len(s)):
        assert detect(s, backend, frame) == "7C"
    raw = s.tobytes()
    det = DtmfDetector(backend=backend)
    assert "".join(e.digit for e in det.feed(raw)) == "7C"


# --- noise: 15 dB SNR white noise ----------------------------------------------------

@pytest.mark.parametrize("level", [-10.0, -20.0])
def test_15db_snr_white_noise(backend, level):
    """Each tone 15 dB above the noise (noise power = one tone's power - 15 dB),
    noise all the time, 50 ms tone / 50 ms pause, with both twists too."""
    tone_power = dbm0_to_amplitude(level) ** 2 / 2
    noise_rms = math.sqrt(tone_power / 10 ** 1.5)
    seq = DIGITS + DIGITS[::-1]
    s = silence(40)
    for i, d in enumerate(seq):
        twist = (0, 0) if i % 3 == 0 else ((0, -6) if i % 3 == 1 else (-3, 0))
        s += tone(d, 50, low_db=level + twist[0], high_db=level + twist[1]) + silence(50)
    for seed in (1, 2, 3):
        assert detect(pcm(s, noise_rms, seed), backend) == seq


def test_noise_alone_and_g711_silence(backend):
    rng = random.Random(7)
    noise = pcm([rng.gauss(0, 3000) for _ in range(RATE * 10)])
    assert detect(noise, backend) == ""
    det = DtmfDetector(backend=backend)
    assert det.feed(bytes(320)) == []


# --- talk-off: speech and music must not fire ----------------------------------------

SENTENCES = [
    "Thank you for calling. Please hold while we connect you to the next available agent.",
    "The quick brown fox jumps over the lazy dog, and then it runs back into the forest.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "Our office is open Monday to Friday from nine in the morning until half past five.",
    "If you know the extension of the person you are calling, you may dial it at any time.",
    "Seven hundred and seventy seven people attended the meeting on the ninth of November.",
    "Would you like a cup of tea, or perhaps some coffee with a little milk and sugar?",
    "Peter Piper picked a peck of pickled peppers; where is the peck he picked?",
    "The weather tomorrow will be cloudy with occasional showers and a light breeze.",
    "I am sorry, all of our representatives are busy. Your call is important to us.",
    "Please leave your name, your number, and a short message after the tone.",
    "Eleven, twelve, thirteen, fourteen, fifteen, sixteen, seventeen, eighteen.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "The invoice number is four nine two eight, and the total is sixty dollars.",
    "Hello, hello! Can you hear me now? The line seems to be very quiet today.",
    "Beautiful music echoes through the valley as the evening sun slowly sets.",
    "Whistling wind whips wildly while wet wheels whirl along the winding road.",
    "Ahhh, oooh, eeeee, mmmm, hmmm, yes, yes, yes, absolutely, certainly not!",
    "Transfer me to the accounts department, extension two hundred and one please.",
    "We regret to inform you that the number you have dialled is not in service.",
]
VOICES = [("en-us", 160, 50), ("en-us+f3", 140, 70), ("en-gb", 190, 40),
          ("en-gb-scotland+m3", 130, 60), ("en-029+f2", 175, 80), ("en-gb-x-rp+m7", 150, 30)]


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> list[array]:
    """Several minutes of English from espeak-ng, resampled by sox to 8 kHz 16-bit mono."""
    assert shutil.which("espeak-ng") and shutil.which("sox"), "espeak-ng and sox missing: run scripts/setup"
    d = tmp_path_factory.mktemp("speech")
    out = []
    text = " ".join(SENTENCES)
    for i, (voice, speed, pitch) in enumerate(VOICES):
        wav, raw = d / f"v{i}.wav", d / f"v{i}.raw"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", str(wav), text], check=True, capture_output=True)
        subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-b", "16",
                        "-e", "signed-integer", "-t", "raw", str(raw)], check=True, capture_output=True)
        a = array("h")
        a.frombytes(raw.read_bytes())
        out.append(a)
    return out


def test_talk_off_speech(backend, speech):
    """About 10 minutes of speech, zero digits. (The energy-ratio check is what
    holds here: at 0.5 instead of 0.7 this speech gives 7 false digits.)"""
    total = sum(len(a) for a in speech) / RATE
    assert total >= 180, f"only {total:.0f} s of speech"
    for a in speech:
        assert detect(a, backend) == ""
        if backend == "numpy":   # (the pure backend is 20x slower: once is enough)
            # the same through a G.711 channel, and 10 dB quieter
            assert detect(array("h", ulaw2lin(lin2ulaw(a))), backend) == ""
            assert detect(array("h", (v // 3 for v in a)), backend) == ""


def test_talk_off_chords(backend):
    """Three-note chords with harmonics (a rough instrument), notes of the
    equal-tempered scale from 220 to 1760 Hz, 300 ms each."""
    rng = random.Random(11)
    notes = [220 * 2 ** (k / 12) for k in range(37)]
    s: list[float] = []
    for _ in range(120):
        chord = rng.sample(notes, 3)
        amps = [dbm0_to_amplitude(rng.uniform(-20, -12)) for _ in chord]
        n0 = len(s)
        for t in range(n0, n0 + 2400):
            v = 0.0
            for f, a in zip(chord, amps):
                for h, g in ((1, 1.0), (2, 0.5), (3, 0.3), (4, 0.2)):
                    if f * h < 3800:
                        v += a * g * math.sin(2 * math.pi * f * h * t / RATE)
            s.append(v)
    assert detect(pcm(s), backend) == ""


def test_unknown_backend_and_rate(backend):
    with pytest.raises(ValueError):
        DtmfDetector(backend="fortran")
    with pytest.raises(ValueError):
        DtmfDetector(16000, backend=backend)
