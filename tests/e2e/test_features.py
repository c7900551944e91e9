"""Diagnostic feature codes served by the media engine, heard by a real pjsua2 phone.

*43 echoes the phone's own tone back; *65 speaks the caller's extension; *47 reads back digits
sent as RFC 4733 events and as in-band tones; *60 speaks the time. Speech is checked as audio:
the phone's recording must contain the very prompts the box is meant to play, in order, found
by normalised cross-correlation against the prompt files (a tone, noise or the wrong prompt
does not match).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware.media import g711
from firmware.prompts import PromptSet
from tests.e2e.box import Box
from tests.peers import audio

MATCH = 0.6  # normalised correlation a played prompt reaches in the recording (G.711 both ways)


def _samples(path: Path) -> np.ndarray:
    rate, s = audio.read_wav(path)
    assert rate == 8000, rate
    return np.asarray(s, dtype=np.float64)


def _through_ulaw(x: np.ndarray) -> np.ndarray:
    """The prompt as the phone receives it: µ-law coded and decoded once."""
    pcm = np.clip(x, -32768, 32767).astype("<i2").tobytes()
    return np.frombuffer(g711.ulaw2lin(g711.lin2ulaw(pcm)), dtype="<i2").astype(np.float64)


def find_prompt(recording: np.ndarray, prompt: np.ndarray, start: int = 0) -> tuple[float, int]:
    """Normalised correlation of ``prompt`` inside ``recording[start:]`` and where it is: the
    first place it is heard (a prompt said twice is found where it was said first), else the
    best match there is."""
    rec = recording[start:]
    n = len(prompt)
    if len(rec) < n:
        return 0.0, start
    size = 1 << (len(rec) + n).bit_length()
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(prompt, size)), size)[: len(rec) - n + 1]
    energy = np.convolve(rec * rec, np.ones(n), "valid")
    score = corr / (np.sqrt(np.maximum(energy, 1e-9)) * np.linalg.norm(prompt))
    heard = np.flatnonzero(score >= MATCH)
    if len(heard):
        # the peak of the first stretch above the mark (within a prompt's length of it)
        first = int(heard[0])
        i = first + int(np.argmax(score[first:first + n]))
    else:
        i = int(np.argmax(score))
    return float(score[i]), start + i


CHUNK = 8000  # a long prompt is also judged second by second (see chunks_heard)
SHORTEST = 1600  # ...and a short one half by half, when each half is at least this long


def chunks_heard(rec: np.ndarray, prompt: np.ndarray, pos: int, chunk: int = CHUNK) -> float:
    """The share of a long prompt's one-second pieces that match where they belong after ``pos``.

    A phone's jitter buffer may drop a frame or two of a five-second prompt; the whole-prompt
    correlation then falls (everything after the gap is shifted) though every word was heard.
    Each piece may sit up to 200 ms later than planned, to allow for such gaps."""
    pieces = [(i, prompt[i:i + chunk]) for i in range(0, len(prompt) - chunk // 2, chunk)]
    good = 0
    for i, piece in pieces:
        lo = pos + i
        score, _ = find_prompt(rec[:lo + len(piece) + 1600], piece, max(0, lo - 160))
        good += score >= MATCH
    return good / len(pieces)


def assert_says(recording: Path, names: list[str | Path]) -> None:
    """The recording contains these prompts (names in the prompt set, or files), in order."""
    prompts = PromptSet()
    rec = _samples(recording)
    at = 0
    for name in names:
        path = name if isinstance(name, Path) else prompts.path(name)
        ref = _through_ulaw(_samples(path))
        score, pos = find_prompt(rec, ref, at)
        # heard, with a frame or two lost on the way: a long prompt judged second by second, a
        # short one (a loaded machine drops frames too) half by half
        piece = CHUNK if len(ref) >= 2 * CHUNK else max(len(ref) // 2, SHORTEST)
        if score < MATCH and len(ref) >= 2 * SHORTEST and chunks_heard(rec, ref, pos, piece) >= 0.75:
            score = MATCH
        assert score >= MATCH, f"prompt {name!r} not heard after {at / 8000:.2f} s (best match {score:.2f})"
        at = pos + 1


def register(box: Box, phones, name: str = "a1001", ext: str = "1001", **kw):
    ph = phones(name, **kw)
    assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    return ph


def test_echo_test_returns_the_phones_own_tone(box: Box, phones, tmp_path: Path) -> None:
    a = register(box, phones, tone=700.0)
    a.record(tmp_path / "echo.wav")
    a.call("*43")
    a.wait_state("CONFIRMED")
    # The intro prompt plays first (a few seconds); then the echo runs until hang-up.
    a.wait_rx_packets(450, timeout=20)
    a.stop_record()
    a.hangup()
    a.wait_state("DISCONNECTED")
    rate, s = audio.read_wav(tmp_path / "echo.wav")
    assert_says(tmp_path / "echo.wav", ["echo-test"])
    tail = s[-2 * rate:]
    assert audio.tone_present(tail, rate, 700.0, min_seconds=1.0, others=(600.0, 1400.0)), audio.describe(tail, rate)
    row = box.wait_cdr(1)[0]
    assert (row["callee"], row["disposition"]) == ("*43", "ANSWERED"), row


def test_say_extension_speaks_the_callers_number(box: Box, phones, tmp_path: Path) -> None:
    b = register(box, phones, name="b1002", ext="1002", tone=None)
    b.record(tmp_path / "ext.wav")
    b.call("*65")
    b.wait_state("CONFIRMED")
    b.wait_state("DISCONNECTED", timeout=20)  # the box hangs up when it has said it
    b.stop_record()
    assert_says(tmp_path / "ext.wav", ["your-extension-is", "1", "0", "0", "2"])


def test_dtmf_readback_hears_rfc4733_and_inband_digits(box: Box, phones, tmp_path: Path) -> None:
    a = register(box, phones, tone=None)
    # A barely audible hum keeps pjsua's null sound device (and so its RTP) running; at
    # -60 dBFS it is far below what could disturb the in-band detector.
    a.play_tone(120.0, amplitude=0.001)
    a.record(tmp_path / "readback.wav")
    a.call("*47")
    a.wait_state("CONFIRMED")
    a.wait_rx_packets(25)
    a.send_dtmf("5", method="rfc2833")
    box_events = lambda: [e for e in box.http_get("/api/media-events") if e["event"] == "digit"]  # noqa: E731
    _wait(lambda: len(box_events()) >= 1, "the RFC 4733 digit")
    # pjsua replaces audio with event packets while it sends one; let that finish (1 s of
    # packets) so the in-band key goes out whole.
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 50, timeout=10)
    a.send_dtmf("8", method="inband")
    _wait(lambda: len(box_events()) >= 2, "the in-band digit")
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 75, timeout=10)  # let "eight" be read out
    a.stop_record()
    a.hangup()
    got = [(e["digit"], e["source"]) for e in box_events()]
    assert got == [("5", "rfc4733"), ("8", "inband")], got
    assert_says(tmp_path / "readback.wav", ["5", "8"])


def test_speaking_clock_says_the_time(box: Box, phones, tmp_path: Path) -> None:
    a = register(box, phones, tone=None)
    a.record(tmp_path / "clock.wav")
    a.call("*60")
    a.wait_state("CONFIRMED")
    a.wait_state("DISCONNECTED", timeout=20)
    a.stop_record()
    assert_says(tmp_path / "clock.wav", ["the-time-is"])


def _wait(pred, what: str, timeout: float = 10.0) -> None:
    from tests.peers.netutil import wait_until

    wait_until(pred, timeout, what=what)
