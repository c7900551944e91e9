"""The demo configuration `scripts/run` starts with is itself a valid configuration."""

from __future__ import annotations

from firmware.cli import DEMO_IVR
from firmware.ivr.schema import validate
from firmware.prompts import language


def test_demo_ivr_is_valid() -> None:
    errors = validate(DEMO_IVR, phrases=set(language("en").phrases), files=set(),
                      extensions={"1001", "1002"}, queues=set(), voicemail=set())
    assert errors == []
