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


CONDITIONS = {
    "menus": MENUS["menus"],
    "time_conditions": [
        # open round the clock: callers always get the day destination
        {"id": "always-open", "timezone": "Europe/Berlin",
         "hours": [{"days": "mon-sun", "from": "00:00", "to": "24:00"}],
         "day": {"goto": "menu", "target": "main"}, "night": {"goto": "hangup"}},
        # a holiday all year: callers always get the night destination
        {"id": "always-closed", "timezone": "Europe/Berlin",
         "hours": [{"days": "mon-fri", "from": "08:00", "to": "18:00"}],
         "holidays": [{"from": "01-01", "to": "12-31"}],
         "day": {"goto": "menu", "target": "main"}, "night": {"goto": "extension", "target": "1002"}},
    ],
}


def test_time_conditions_choose_day_and_night_destinations(box: Box, registered, tmp_path: Path) -> None:
    a, b = registered
    doc = tmp_path / "ivr.json"
    doc.write_text(json.dumps(CONDITIONS))
    box.cli("ivr", "import", str(doc))
    box.cli("ivr", "number", "501", "always-closed")
    box.cli("ivr", "number", "502", "always-open")

    a.call("501")  # night: straight to extension 1002
    b.wait_incoming()
    b.answer()
    a.wait_state("CONFIRMED")
    a.hangup()
    b.wait_state("DISCONNECTED")

    a.record(tmp_path / "day.wav")
    a.call("502")  # day: the main menu answers
    a.wait_state("CONFIRMED")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 100)
    a.stop_record()
    a.hangup()
    assert_says(tmp_path / "day.wav", ["welcome"])


def test_a_greeting_typed_as_text_is_spoken(box: Box, registered, tmp_path: Path) -> None:
    from firmware.prompts import said_name

    a, _ = registered
    text = "Thank you for calling Acme. Press two for sales."
    doc = tmp_path / "ivr.json"
    doc.write_text(json.dumps({"menus": [dict(MENUS["menus"][0], greeting=[{"say": text}])]}))
    r = box.cli("ivr", "import", str(doc))
    assert "1 greeting(s) rendered from text" in r.stdout, r.stdout
    box.cli("ivr", "number", "500", "main")
    rendered = box.data / "prompts" / "say" / f"{said_name(text)}.wav"
    assert rendered.exists()
    a.record(tmp_path / "greeting.wav")
    a.call("500")
    a.wait_state("CONFIRMED")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 200)
    a.stop_record()
    a.hangup()
    assert_says(tmp_path / "greeting.wav", [rendered])
