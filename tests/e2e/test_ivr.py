"""A caller reaches an IVR menu, hears its greeting, presses a key and is handed to an
extension (ringback while it rings), then talks to the person who answers."""
from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.box import Box
from tests.e2e.test_calls import HIGH, LOW, heard
from tests.e2e.test_features import assert_says

MENUS = {"menus": [{
    "id": "main",
    "greeting": ["welcome", "press", "2", "for", "connecting-you"],
    "options": {"2": {"goto": "extension", "target": "1002"}, "9": {"goto": "hangup"}},
    "timeout": 4, "retries": 1, "fallback": {"goto": "hangup"},
}]}


def ivr_box(box: Box, tmp_path: Path) -> None:
    doc = tmp_path / "ivr.json"
    doc.write_text(json.dumps(MENUS))
    box.cli("ivr", "import", str(doc))
    box.cli("ivr", "number", "500", "main")


def test_caller_reaches_menu_presses_a_key_and_talks_to_the_extension(box: Box, registered, tmp_path: Path) -> None:
    a, b = registered  # a plays LOW, b plays HIGH
    ivr_box(box, tmp_path)
    a.record(tmp_path / "a-hears.wav")
    a.call("500")
    a.wait_state("CONFIRMED")
    a.wait_rx_packets(100)  # the greeting has begun
    a.send_dtmf("2")
    b.wait_incoming()
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 50)  # a second of ringback
    b.answer()
    b.wait_state("CONFIRMED")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 100)
    a.stop_record()
    a.hangup()
    b.wait_state("DISCONNECTED")
    assert_says(tmp_path / "a-hears.wav", ["welcome"])
    from tests.peers import audio

    rate, s = audio.read_wav(tmp_path / "a-hears.wav")
    assert audio.tone_present(s, rate, 440.0, min_seconds=0.5, others=(LOW, HIGH)), "no ringback while 1002 rang"
    ok, desc = heard(tmp_path / "a-hears.wav", HIGH, LOW)
    assert ok, f"after the hand-over a should hear 1002's {HIGH:g} Hz: {desc}"
    row = box.wait_cdr(1)[0]
    assert (row["callee"], row["disposition"]) == ("500", "ANSWERED"), row
    box.wait_health(lambda h: h["calls"] == 0, 5, "no calls left")


def test_a_bad_menu_document_names_the_field_and_changes_nothing(box: Box, tmp_path: Path) -> None:
    ivr_box(box, tmp_path)
    bad = {"menus": [{"id": "main", "greeting": ["welcome"],
                      "options": {"1": {"goto": "extension", "target": "4242"}}}]}
    doc = tmp_path / "bad.json"
    doc.write_text(json.dumps(bad))
    r = box.cli("ivr", "import", str(doc), check=False)
    assert r.returncode != 0
    assert "menus[main].options[1].target" in r.stderr and "nothing was changed" in r.stderr, r.stderr
    shown = json.loads(box.cli("ivr", "show").stdout)
    assert shown == MENUS
