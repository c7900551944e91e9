"""Uploaded prompts: any sound file becomes an 8 kHz mono prompt a menu plays; a file that is
not sound, or a menu naming an upload that does not exist, is refused and changes nothing."""
from __future__ import annotations

import json
import math
import struct
import wave
from pathlib import Path

from tests.e2e.box import Box
from tests.e2e.test_features import assert_says


def write_wav(path: Path, *, rate: int, channels: int, seconds: float, freq: float) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = bytearray()
        for n in range(int(rate * seconds)):
            v = int(8000 * math.sin(2 * math.pi * freq * n / rate) * (1 if (n // (rate // 4)) % 2 else 0))
            frames += struct.pack("<h", v) * channels
        w.writeframes(bytes(frames))


def test_an_uploaded_greeting_is_converted_and_played_to_callers(box: Box, registered, tmp_path: Path) -> None:
    a, _ = registered
    src = tmp_path / "Our Promo (final).wav"
    write_wav(src, rate=44100, channels=2, seconds=2.0, freq=523.0)  # a studio file, beeping in quarter seconds
    r = box.cli("prompt", "upload", str(src))
    assert "uploaded our-promo-final.wav: 2.0 s" in r.stdout, r.stdout
    stored = box.data / "prompts" / "uploads" / "our-promo-final.wav"
    with wave.open(str(stored), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    listed = json.loads(box.cli("prompt", "list", "--json").stdout)
    assert listed == [{"name": "our-promo-final.wav", "seconds": 2.0}]

    menus = {"menus": [{"id": "main", "greeting": [{"file": "our-promo-final.wav"}, "goodbye"],
                        "options": {"9": {"goto": "hangup"}}, "timeout": 5, "fallback": {"goto": "hangup"}}]}
    doc = tmp_path / "ivr.json"
    doc.write_text(json.dumps(menus))
    box.cli("ivr", "import", str(doc))
    box.cli("ivr", "number", "500", "main")
    a.record(tmp_path / "heard.wav")
    a.call("500")
    a.wait_state("CONFIRMED")
    a.wait_rx_packets(200)
    a.stop_record()
    a.hangup()
    assert_says(tmp_path / "heard.wav", [stored, "goodbye"])

    r = box.cli("prompt", "remove", "our-promo-final.wav", check=False)
    assert r.returncode != 0 and "menus[main].greeting[0].file" in r.stderr, r.stderr
    assert stored.exists()


def test_a_file_that_is_not_sound_is_refused_and_nothing_is_stored(box: Box, tmp_path: Path) -> None:
    bad = tmp_path / "greeting.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(300))
    r = box.cli("prompt", "upload", str(bad), check=False)
    assert r.returncode != 0 and "not a sound file" in r.stderr and "nothing was changed" in r.stderr, r.stderr
    assert not list((box.data / "prompts" / "uploads").glob("*"))
    r = box.cli("prompt", "upload", str(bad), "--name", "../evil.wav", check=False)
    assert r.returncode != 0 and "lower-case letters" in r.stderr, r.stderr

    menus = {"menus": [{"id": "main", "greeting": [{"file": "missing.wav"}], "options": {}}]}
    doc = tmp_path / "ivr.json"
    doc.write_text(json.dumps(menus))
    r = box.cli("ivr", "import", str(doc), check=False)
    assert r.returncode != 0 and "menus[main].greeting[0].file: no uploaded file 'missing.wav'" in r.stderr, r.stderr
