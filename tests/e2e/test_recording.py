"""Call recording through the real box: a stereo WAV per answered call (caller left, callee
right), linked from its CDR row, a recording cut by kill -9 repaired at the next start, and one
cut by the death of the media worker writing it repaired at once."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e.box import Box
from tests.e2e.test_calls import HIGH, LOW, connect
from tests.peers import audio


def channel_has(path: Path, channel: int, freq: float, other: float) -> tuple[bool, str]:
    rate, samples = audio.read_wav(path, channel=channel)
    return (audio.tone_present(samples, rate, freq, min_seconds=1.0, others=(other,)),
            audio.describe(samples, rate, (freq, other)))


def recording_of(box: Box, row: dict) -> Path:
    assert row["recording"], f"the CDR row names no recording: {row}"
    return box.data / "recordings" / row["recording"]


def finished_stereo(box: Box, row: dict, left: float = LOW, right: float = HIGH) -> float:
    """The row's recording, once finished, carries each party on its side; returns its seconds."""
    from tests.peers.netutil import wait_until

    path = recording_of(box, row)
    wait_until(path.exists, 10, what=f"{path.name} finished (renamed from .part)")
    ok, desc = channel_has(path, 0, left, right)
    assert ok, f"left channel should carry the caller's {left:g} Hz: {desc}"
    ok, desc = channel_has(path, 1, right, left)
    assert ok, f"right channel should carry the callee's {right:g} Hz: {desc}"
    rate, samples = audio.read_wav(path, channel=0)
    return len(samples) / rate


def test_answered_call_is_recorded_in_stereo_and_linked_from_cdr(box: Box, registered) -> None:
    a, b = registered  # a plays LOW, b plays HIGH (conftest)
    box.set("recording.calls", "always")
    connect(a, b)
    a.wait_rx_packets(150, timeout=15)
    a.hangup()
    b.wait_state("DISCONNECTED")
    row = box.wait_cdr(1)[0]
    seconds = finished_stereo(box, row)
    assert abs(seconds - row["billsec"]) < 1.0, (seconds, row)


def test_recording_cut_by_kill9_is_repaired_at_next_start(box: Box, registered) -> None:
    a, b = registered
    box.set("recording.calls", "always")
    connect(a, b)
    # long enough for the recorder to have flushed whole chunks to the disk
    a.wait_rx_packets(250, timeout=15)
    box.kill9()
    parts = list((box.data / "recordings").glob("*.wav.part"))
    assert len(parts) == 1, sorted(p.name for p in (box.data / "recordings").iterdir())
    box.start()
    wav = parts[0].with_suffix("")  # x.wav.part -> x.wav
    assert wav.exists() and not parts[0].exists(), sorted(p.name for p in wav.parent.iterdir())
    ok, desc = channel_has(wav, 0, LOW, HIGH)
    assert ok, f"the repaired left channel should carry {LOW:g} Hz: {desc}"
    ok, desc = channel_has(wav, 1, HIGH, LOW)
    assert ok, f"the repaired right channel should carry {HIGH:g} Hz: {desc}"
    assert "repaired 1 recording" in box.log_text()


def test_on_demand_recording_starts_when_a_party_types_star_1(box: Box, registered) -> None:
    a, b = registered
    box.set("recording.calls", "on-demand")
    connect(a, b)
    a.wait_rx_packets(50, timeout=15)
    assert box.calls()[0]["state"] == "answered"
    a.send_dtmf("*1")  # RFC 4733, mid-call
    a.wait_rx_packets(a.stream_stat()["rx_pkt"] + 150, timeout=15)
    a.hangup()
    b.wait_state("DISCONNECTED")
    row = box.wait_cdr(1)[0]
    seconds = finished_stereo(box, row)
    assert seconds < row["billsec"] - 0.8, (seconds, row)  # it began at the key press, not the answer
    assert "recording started on demand by 1001" in box.log_text()


def test_without_star_1_an_on_demand_call_is_not_recorded(box: Box, registered) -> None:
    a, b = registered
    box.set("recording.calls", "on-demand")
    connect(a, b)
    a.send_dtmf("1*")  # the wrong order is no feature code
    a.wait_rx_packets(100, timeout=15)
    a.hangup()
    b.wait_state("DISCONNECTED")
    assert box.wait_cdr(1)[0]["recording"] is None
    assert not list((box.data / "recordings").glob("*.wav*"))


def test_a_media_worker_killed_mid_recording_leaves_a_playable_file_and_a_cdr(box_factory, phones) -> None:
    from tests.peers.netutil import wait_until

    box = box_factory("workers", settings={"media.workers": "1", "recording.calls": "always"})
    a, b = phones("a1001"), phones("b1002")
    for ph, ext in ((a, "1001"), (b, "1002")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200, box.log_tail()
    connect(a, b)
    workers = box.wait_health(lambda h: sum(h["media"]["workers"]["bridges"]) == 1, 10,
                              "the recorded call relayed by the worker")["media"]["workers"]
    recordings = box.data / "recordings"
    part = wait_until(lambda: next(recordings.glob("*.wav.part"), None), 10, what="the recording begun")
    # the worker wrote a good part of the call (the file grows by 32 000 octets a second)
    wait_until(lambda: part.stat().st_size > 44 + 3 * 32000, 15, what="the worker writing the call")
    os.kill(workers["pids"][0], signal.SIGKILL)
    row = box.wait_cdr(1, 15, pred=lambda r: r.get("cause") == "media-failure")[0]
    assert row["disposition"] == "ANSWERED", row
    path = recording_of(box, row)
    assert path.name == part.name[:-len(".part")]
    finished_stereo(box, row)  # repaired under its name, each party on its side up to the kill
    assert not part.exists()
