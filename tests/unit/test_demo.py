"""The demo configuration `scripts/run` starts with is itself a valid configuration."""

from __future__ import annotations

from firmware.cli import DEMO_EXTENSIONS, DEMO_IVR, DEMO_PORTS, DEMO_QUEUES
from firmware.config.document import validate


def test_demo_is_a_valid_configuration_document() -> None:
    numbers = [n for n, _ in DEMO_EXTENSIONS]
    doc = {"version": 1,
           "extensions": [{"number": n, "name": name, "secret": "Xq7-demo-secret-long"} for n, name in DEMO_EXTENSIONS],
           "settings": {"analog.driver": "sim"}, "ivr": DEMO_IVR, "ivr_numbers": {"500": "main"},
           "queues": DEMO_QUEUES, "ports": DEMO_PORTS, "voicemail": {"mailboxes": {n: {} for n in numbers}}}
    assert validate(doc, files=None) == []
