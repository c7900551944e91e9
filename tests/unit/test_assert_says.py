"""The e2e tests' speech check (tests/e2e/test_features.assert_says) can fail: a prompt that was
not played, or played in another order, is not "heard"; one with a 20 ms frame lost on the way
(what a loaded machine's jitter buffer does) still is."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firmware.prompts import PromptSet
from tests.e2e.test_features import _samples, _through_ulaw, assert_says
from tests.peers import audio

SILENCE = np.zeros(1600)


def _say(path: Path, names: list[str], drop_frame_in: str | None = None, noisy_first: str | None = None) -> Path:
    prompts = PromptSet()
    parts = [SILENCE]
    rng = np.random.default_rng(1)
    for name in names:
        x = _through_ulaw(_samples(prompts.path(name)))
        if name == drop_frame_in:
            mid = len(x) // 2 - 80
            x = np.concatenate([x[:mid], x[mid + 160:]])
        if name == noisy_first:
            # heard, but less cleanly than when it is said again (as over a real call)
            x = x + rng.normal(0.0, 0.5 * np.std(x), len(x))
            noisy_first = None
        parts += [x, SILENCE]
    audio.write_wav(path, np.concatenate(parts).astype(int).tolist())
    return path


def test_the_prompts_played_are_heard_in_order(tmp_path: Path) -> None:
    rec = _say(tmp_path / "r.wav", ["you-have", "1", "new", "message"])
    assert_says(rec, ["you-have", "1", "new", "message"])
    with pytest.raises(AssertionError):
        assert_says(rec, ["you-have", "new", "1"])      # out of order


def test_a_prompt_not_played_is_not_heard(tmp_path: Path) -> None:
    rec = _say(tmp_path / "r.wav", ["you-have", "1", "message"])
    with pytest.raises(AssertionError, match="'new' not heard"):
        assert_says(rec, ["you-have", "1", "new", "message"])


@pytest.mark.parametrize("word", ["new", "message-from"])
def test_a_short_or_long_prompt_with_a_frame_lost_is_still_heard(tmp_path: Path, word: str) -> None:
    rec = _say(tmp_path / "r.wav", ["you-have", word, "1"], drop_frame_in=word)
    assert_says(rec, ["you-have", word, "1"])


def test_a_prompt_said_twice_is_found_where_it_was_said_first(tmp_path: Path) -> None:
    # "1" twice: "you have 1 new message, message from 1 0": each in its place
    rec = _say(tmp_path / "r.wav", ["you-have", "1", "new", "message", "message-from", "1", "0"], noisy_first="1")
    assert_says(rec, ["you-have", "1", "new", "message", "message-from", "1", "0"])
    with pytest.raises(AssertionError):
        assert_says(rec, ["message-from", "new"])
