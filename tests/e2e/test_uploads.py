"""Uploaded prompts: any sound file becomes an 8 kHz mono prompt a menu plays; a file that is
not sound, or a menu naming an upload that does not exist, is refused and changes nothing."""
from __future__ import annotations

import json
import math
import struct
import subprocess
import wave
from pathlib import Path

import pytest

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


@pytest.mark.alone  # checks a spoken greeting as audio: a phone starved of CPU in the parallel phase misses it
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


def hostile_uploads(folder: Path, canary: Path) -> list[tuple[Path, str]]:
    """Files that once ran a shell command through sox (a playlist names a URL, sox fetches it
    with `wget "URL"` through a shell), with the part of the refusal each must get. Their names
    are chosen to mislead: only the content may decide the type."""
    url = f"http://127.0.0.1:1/$(touch {canary})x.wav"
    folder.mkdir(exist_ok=True)
    files = {"greeting.m3u": url + "\n",
             "greeting.pls": f"[playlist]\nFile1={url}\nNumberOfEntries=1\nVersion=2\n",
             "playlist.wav": url + "\n",
             "empty.wav": "",
             "x.wav;id": url + "\n"}
    out = []
    for name, text in files.items():
        (folder / name).write_text(text)
        out.append((folder / name, "empty (0 bytes)" if not text else "not a sound file"))
    return out


def test_playlists_and_other_disguised_files_are_refused_and_run_nothing(box: Box, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    for path, why in hostile_uploads(tmp_path / "in", canary):
        r = box.cli("prompt", "upload", str(path), check=False)
        assert r.returncode != 0 and why in r.stderr and "nothing was changed" in r.stderr, (path.name, r.stderr)
        assert not canary.exists(), f"{path.name} ran a command"
    assert not list((box.data / "prompts" / "uploads").glob("*"))

    # The content decides, not the name: FLAC and Ogg under names that claim otherwise are taken.
    for fmt, name in (("flac", "studio.mp3"), ("ogg", "phone-app.wav")):
        src = tmp_path / "in" / name
        subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-t", fmt, str(src), "synth", "1.5", "sine", "600"],
                       check=True)
        r = box.cli("prompt", "upload", str(src), "--name", f"from-{fmt}.wav")
        assert f"uploaded from-{fmt}.wav: 1.5 s" in r.stdout, r.stdout
        with wave.open(str(box.data / "prompts" / "uploads" / f"from-{fmt}.wav"), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), round(w.getnframes() / 8000, 2)) == (8000, 1, 1.5)
    assert not canary.exists()
