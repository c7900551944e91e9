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


def _say(path: Path, names: list[str], drop_frame_in: str | None = None) -> Path:
    prompts = PromptSet()
    parts = [SILENCE]
    for name in names:
        x = _through_ulaw(_samples(prompts.path(name)))
        if name == drop_frame_in:
            mid = len(x) // 2 - 80
            x = np.concatenate([x[:mid], x[mid + 160:]])
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
