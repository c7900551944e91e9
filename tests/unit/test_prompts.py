"""The spoken prompt set: number/time/digit grammar, the phrase table, and a
real espeak-ng + sox build of a few phrases (8 kHz mono 16-bit, speech energy,
sane duration, manifest makes the second build a no-op)."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from firmware import prompts
from firmware.media.wav import WAVE_FORMAT_PCM, read_info, read_wav
from firmware.prompts import (PromptError, PromptMissing, PromptSet, build, digits_to_prompts,
                              number_to_prompts, time_to_prompts)

PHRASES = prompts.language("en").phrases

def _require_tts(fn):  # type: ignore[no-untyped-def]
    """espeak-ng and sox are installed by scripts/setup; their absence is a failure, not a skip."""
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert shutil.which("espeak-ng") and shutil.which("sox"), "espeak-ng and sox missing: run scripts/setup"
        return fn(*args, **kwargs)

    import functools

    return functools.wraps(fn)(wrapper)


needs_tts = _require_tts


@pytest.mark.parametrize("n, expected", [
    (0, ["0"]),
    (7, ["7"]),
    (13, ["13"]),
    (20, ["20"]),
    (21, ["20", "1"]),
    (99, ["90", "9"]),
    (100, ["1", "hundred"]),
    (101, ["1", "hundred", "1"]),
    (110, ["1", "hundred", "10"]),
    (999, ["9", "hundred", "90", "9"]),
    (1000, ["1", "thousand"]),
    (1001, ["1", "thousand", "1"]),
    (1234, ["1", "thousand", "2", "hundred", "30", "4"]),
    (20_020, ["20", "thousand", "20"]),
    (100_000, ["1", "hundred", "thousand"]),
    (110_000, ["1", "hundred", "10", "thousand"]),
    (999_999, ["9", "hundred", "90", "9", "thousand", "9", "hundred", "90", "9"]),
    (-5, ["minus", "5"]),
])
def test_number_to_prompts(n, expected):
    assert number_to_prompts(n) == expected


def test_number_to_prompts_refuses_what_it_cannot_say():
    for bad in (1_000_000, -1_000_000):
        with pytest.raises(ValueError):
            number_to_prompts(bad)
    for bad in (1.5, "12", True):
        with pytest.raises(TypeError):
            number_to_prompts(bad)
    with pytest.raises(ValueError, match="grammar"):
        number_to_prompts(1, lang="xx")


@pytest.mark.parametrize("hour, minute, expected", [
    (0, 0, ["the-time-is", "12", "midnight"]),
    (0, 5, ["the-time-is", "12", "oh", "5", "am"]),
    (1, 0, ["the-time-is", "1", "oclock", "am"]),
    (9, 30, ["the-time-is", "9", "30", "am"]),
    (11, 59, ["the-time-is", "11", "50", "9", "am"]),
    (12, 0, ["the-time-is", "12", "noon"]),
    (12, 10, ["the-time-is", "12", "10", "pm"]),
    (13, 45, ["the-time-is", "1", "40", "5", "pm"]),
    (23, 0, ["the-time-is", "11", "oclock", "pm"]),
])
def test_time_to_prompts(hour, minute, expected):
    assert time_to_prompts(hour, minute) == expected


def test_time_to_prompts_refuses_bad_times():
    for h, m in ((24, 0), (-1, 0), (12, 60)):
        with pytest.raises(ValueError):
            time_to_prompts(h, m)


def test_digits_to_prompts():
    assert digits_to_prompts("1002") == ["1", "0", "0", "2"]
    assert digits_to_prompts("*65#") == ["star", "6", "5", "pound"]
    assert digits_to_prompts("") == []
    with pytest.raises(ValueError, match="'a'"):
        digits_to_prompts("12a")


def test_every_name_the_grammar_uses_is_in_the_phrase_table():
    used = set(digits_to_prompts("0123456789*#"))
    for n in list(range(-1000, 2000)) + [10**k * d + r for k in range(3, 6)
                                          for d in range(1, 10) for r in (0, 7, 99, 999)]:
        used.update(number_to_prompts(n))
    for h in range(24):
        for m in range(60):
            used.update(time_to_prompts(h, m))
    assert used - PHRASES.keys() == set()


def test_phrase_table_covers_ivr_queue_and_feature_codes():
    needed = {
        "the-time-is", "hours", "minutes", "minute", "seconds", "oclock", "am", "pm",
        "your-extension-is", "you-are-number", "in-line", "your-expected-wait-is", "less-than",
        "please-hold", "all-agents-busy", "welcome", "press", "for", "to-leave-a-message",
        "invalid-option", "goodbye", "thank-you", "you-entered", "echo-test", "enter-extension",
        "please-try-again", "not-available", "callback-confirm", "star", "hash", "pound",
        "hundred", "thousand",
    }
    assert needed - PHRASES.keys() == set()
    assert all(text.strip() for text in PHRASES.values())


def test_prompt_set_names_the_missing_prompt_and_the_build_command(tmp_path):
    ps = PromptSet(tmp_path, "en")
    with pytest.raises(PromptMissing) as e:
        ps.path("welcome")
    msg = str(e.value)
    assert "'welcome'" in msg and "python -m firmware.prompts build --out" in msg
    assert str(tmp_path) in msg
    with pytest.raises(PromptMissing, match="not in firmware/prompts/en.py"):
        ps.path("no-such-prompt")
    assert "welcome" not in ps


@needs_tts
def test_build_subset_renders_8k_mono_speech_and_rebuilds_nothing(tmp_path):
    names = ["7", "thousand", "please-hold"]
    written = build(tmp_path, "en", names=names)
    assert sorted(p.stem for p in written) == sorted(names)

    ps = PromptSet(tmp_path, "en")
    for name in names:
        path = ps.path(name)
        info = read_info(str(path))
        assert (info.format, info.rate, info.channels, info.bits) == (WAVE_FORMAT_PCM, 8000, 1, 16)
        assert 0.2 < info.seconds < 3.0, (name, info.seconds)
        rate, channels, samples = read_wav(str(path))
        rms = math.sqrt(sum(s * s for s in samples) / len(samples))
        peak = max(abs(s) for s in samples)
        assert rms > 1000, (name, rms)                  # speech, not silence (~ -30 dBFS floor)
        assert 0.4 * 32768 < peak < 0.55 * 32768        # norm -6 dBFS
        # silence trimmed: the first and last 10 ms are not long runs of zero
        assert max(abs(s) for s in samples[:80]) > 0 and max(abs(s) for s in samples[-80:]) > 0

    manifest = json.loads((tmp_path / "en" / "manifest.json").read_text())
    assert set(manifest["prompts"]) == set(names)
    assert manifest["prompts"]["please-hold"]["text"] == PHRASES["please-hold"]

    mtimes = {p: p.stat().st_mtime_ns for p in written}
    assert build(tmp_path, "en", names=names) == []                 # no-op
    assert {p: p.stat().st_mtime_ns for p in written} == mtimes

    # a changed parameter re-renders exactly the affected prompts; a deleted file is rebuilt
    (tmp_path / "en" / "7.wav").unlink()
    assert [p.stem for p in build(tmp_path, "en", names=names)] == ["7"]
    assert [p.stem for p in build(tmp_path, "en", names=["7"], speed=170)] == ["7"]


@needs_tts
def test_build_refuses_unknown_names(tmp_path):
    with pytest.raises(PromptError, match="not-a-phrase"):
        build(tmp_path, "en", names=["not-a-phrase"])


@needs_tts
def test_say_renders_one_off_text_even_if_it_starts_with_a_dash(tmp_path):
    path = prompts.say(tmp_path, "-Thanks for calling Acme.", name="greeting")
    assert path == tmp_path / "greeting.wav"
    info = read_info(str(path))
    assert (info.rate, info.channels, info.bits) == (8000, 1, 16) and info.seconds > 0.5
    with pytest.raises(PromptError):
        prompts.say(tmp_path, "   ")
    with pytest.raises(PromptError, match="bad prompt name"):
        prompts.say(tmp_path, "hi", name="../evil")


def test_cli_list_and_build_errors(capsys, tmp_path):
    assert prompts.main(["list"]) == 0
    assert "the-time-is\tThe time is" in capsys.readouterr().out
    assert prompts.main(["build", "--out", str(tmp_path), "--lang", "xx"]) == 1
    assert "xx" in capsys.readouterr().err
