"""WAV files, crash-safe call recording, quota and disk-full handling.

Audio is checked as audio: a tone per channel (Goertzel), and sample-exact
against the generator where the data must be bit-identical. A recording is
killed with SIGKILL mid-write in a child process and recovered.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import wave
from array import array
from pathlib import Path

import pytest

from firmware.media.recorder import (CallRecorder, DiskFull, RecordingStopped, RecordingStore,
                                     recover_all)
from firmware.media.wav import (WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, WavError, make_header,
                                read_info, read_wav, repair, write_wav)

RATE = 8000
ROOT = Path(__file__).resolve().parents[2]


def tone_frame(freq: float, k: int, amp: int = 8000) -> bytes:
    """Frame k (20 ms) of a phase-continuous sine."""
    return array("h", [int(amp * math.sin(2 * math.pi * freq * (160 * k + i) / RATE))
                       for i in range(160)]).tobytes()


def goertzel(x, freq: float) -> float:
    n = len(x)
    c = 2 * math.cos(2 * math.pi * freq / RATE)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + c * s1 - s2, s1
    return 2 * math.sqrt(max(s1 * s1 + s2 * s2 - c * s1 * s2, 0.0)) / n


def reference(freq: float, frames: int) -> array:
    return array("h", b"".join(tone_frame(freq, k) for k in range(frames)))


# --- WAV --------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 2])
def test_pcm_wav_round_trip_and_stdlib_wave_reads_it(tmp_path, channels):
    samples = array("h", [(i * 37) % 65536 - 32768 for i in range(800 * channels)])
    p = str(tmp_path / "x.wav")
    write_wav(p, RATE, channels, samples)
    assert read_wav(p) == (RATE, channels, samples)
    with wave.open(p) as w:                         # a reader we did not write
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, channels, 2)
        assert w.readframes(10**6) == samples.tobytes()


@pytest.mark.parametrize("fmt", [WAVE_FORMAT_MULAW, WAVE_FORMAT_ALAW])
def test_g711_wav_has_fact_chunk_and_decodes(tmp_path, fmt):
    codes = bytes(range(256)) * 4
    p = str(tmp_path / "g.wav")
    write_wav(p, RATE, 1, codes, fmt=fmt)
    info = read_info(p)
    assert (info.format, info.bits, info.data_offset, info.data_size) == (fmt, 8, 58, 1024)
    raw = Path(p).read_bytes()
    assert raw[38:46] == b"fact\x04\x00\x00\x00" and struct.unpack_from("<I", raw, 46)[0] == 1024
    rate, ch, s = read_wav(p)
    from firmware.media.g711 import alaw_decode_table, ulaw_decode_table
    table = ulaw_decode_table if fmt == WAVE_FORMAT_MULAW else alaw_decode_table
    assert (rate, ch) == (RATE, 1) and list(s) == [table[c] for c in codes]
    if shutil.which("soxi"):
        out = subprocess.run(["soxi", p], capture_output=True, text=True, check=True).stdout
        assert "00:00:00.13" in out and ("u-law" in out.lower() or "a-law" in out.lower())


def _truncated_header_file(tmp_path, payload: bytes, channels=2, fmt=1, sizes=0) -> str:
    p = tmp_path / "cut.wav"
    h = bytearray(make_header(fmt, RATE, channels, 0))
    if sizes:
        struct.pack_into("<I", h, 4, sizes)
        struct.pack_into("<I", h, len(h) - 4, sizes)
    p.write_bytes(bytes(h) + payload)
    return str(p)


@pytest.mark.parametrize("sizes", [0, 0xFFFFFFFF, 1000])
def test_repair_recomputes_sizes_and_cuts_a_partial_frame(tmp_path, sizes):
    samples = array("h", range(4000))                # 2000 stereo frames
    p = _truncated_header_file(tmp_path, samples.tobytes() + b"\x01\x02\x03", sizes=sizes)
    with pytest.raises(WavError) if sizes != 1000 else _nothing():
        read_wav(p)                                  # unrepaired sizes are refused or short
    r = repair(p)
    assert r.repaired and r.data_size_before == sizes
    assert (r.data_size, r.truncated, r.frames, r.seconds) == (8000, 3, 2000, 0.25)
    assert read_wav(p) == (RATE, 2, samples)
    assert os.path.getsize(p) == 44 + 8000
    with wave.open(p) as w:
        assert w.getnframes() == 2000
    again = repair(p)                                # idempotent
    assert not again.repaired and again.data_size == 8000


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_repair_g711_updates_fact_and_pads_odd_size(tmp_path):
    p = _truncated_header_file(tmp_path, bytes(range(255)), channels=1, fmt=WAVE_FORMAT_MULAW)
    r = repair(p)
    assert (r.data_size, r.frames, r.truncated) == (255, 255, 0)
    raw = Path(p).read_bytes()
    assert len(raw) == 58 + 256                       # RIFF pad octet after odd data
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert struct.unpack_from("<I", raw, 46)[0] == 255
    assert len(read_wav(p)[2]) == 255


def test_repair_keeps_trailing_chunks_of_a_good_file(tmp_path):
    p = tmp_path / "list.wav"
    write_wav(str(p), RATE, 1, array("h", range(100)))
    data = p.read_bytes()
    extra = b"LIST" + struct.pack("<I", 4) + b"INFO"
    riff = struct.pack("<I", len(data) + len(extra) - 8)
    p.write_bytes(data[:4] + riff + data[8:] + extra)
    r = repair(str(p))
    assert not r.repaired and r.data_size == 200
    assert p.read_bytes().endswith(extra)


@pytest.mark.parametrize("content", [b"", b"hello world, not a wav at all", b"RIFF\0\0\0\0AVI LIST"])
def test_repair_refuses_non_wav(tmp_path, content):
    p = tmp_path / "x.wav"
    p.write_bytes(content)
    with pytest.raises(WavError, match="not a RIFF/WAVE"):
        repair(str(p))
    assert p.read_bytes() == content                  # untouched


# --- recorder ---------------------------------------------------------------

def record_tones(path, frames=100, **kw) -> RecordingStopped:
    rec = CallRecorder(path, **kw)
    for k in range(frames):
        rec.write(tone_frame(440, k), tone_frame(1000, k))
        if rec.flush_due:
            assert rec.flush() is None
    return rec.close()


def test_stereo_recording_has_one_party_per_channel(tmp_path):
    p = str(tmp_path / "call.wav")
    ev = record_tones(p, 100)
    assert ev == RecordingStopped(p, 2.0, "closed")
    assert not os.path.exists(p + ".part")
    rate, ch, s = read_wav(p)
    assert (rate, ch, len(s)) == (RATE, 2, 32000)
    left, right = s[0::2], s[1::2]
    assert goertzel(left, 440) > 7500 and goertzel(left, 1000) < 50
    assert goertzel(right, 1000) > 7500 and goertzel(right, 440) < 50
    assert left == reference(440, 100) and right == reference(1000, 100)
    with wave.open(p) as w:
        assert (w.getnchannels(), w.getnframes()) == (2, 16000)


def test_missing_side_is_silence_and_channels_stay_aligned(tmp_path):
    p = str(tmp_path / "half.wav")
    rec = CallRecorder(p)
    for k in range(50):
        rec.write(tone_frame(440, k), None)           # right silent for 1 s
    for k in range(50, 75):
        rec.write(None, tone_frame(1000, k))          # then left silent
    rec.write(None, None)
    assert rec.close().seconds == pytest.approx(1.52)
    _, _, s = read_wav(p)
    left, right = s[0::2], s[1::2]
    assert left[:8000] == reference(440, 50) and set(left[8000:]) == {0}
    assert set(right[:8000]) == {0} and right[8000:12000] == reference(1000, 75)[8000:]
    assert set(right[12000:]) == {0}


def test_mono_mix_and_ulaw_encoding(tmp_path):
    p = str(tmp_path / "mono.wav")
    record_tones(p, 50, mode="mono", encoding="ulaw")
    info = read_info(p)
    assert (info.format, info.channels, info.frames) == (WAVE_FORMAT_MULAW, 1, 8000)
    _, ch, s = read_wav(p)
    assert ch == 1 and len(s) == 8000
    assert 7000 < goertzel(s, 440) < 8500 and 7000 < goertzel(s, 1000) < 8500
    if shutil.which("sox"):                           # sox decodes it to the same audio
        out = subprocess.run(["sox", p, "-t", "raw", "-e", "signed", "-b", "16", "-"],
                             capture_output=True, check=True).stdout
        assert array("h", out) == s


def test_flush_from_another_thread_loses_and_duplicates_nothing(tmp_path):
    p = str(tmp_path / "threads.wav")
    rec = CallRecorder(p, chunk_seconds=0.1)
    stop = threading.Event()

    def flusher():
        while not stop.is_set():
            rec.flush()

    t = threading.Thread(target=flusher)
    t.start()
    for k in range(500):
        rec.write(tone_frame(440, k), tone_frame(1000, k))
    stop.set()
    t.join()
    rec.close()
    _, _, s = read_wav(p)
    assert s[0::2] == reference(440, 500) and s[1::2] == reference(1000, 500)


def test_write_flushes_itself_when_nobody_does(tmp_path):
    p = str(tmp_path / "backstop.wav")
    rec = CallRecorder(p, max_buffer_seconds=0.5)
    for k in range(60):
        rec.write(tone_frame(440, k), None)
    assert rec._pending < 25 * 160                    # at most 0.5 s held in memory
    assert os.path.getsize(p + ".part") > 44
    rec.close()
    assert read_wav(p)[2][0::2] == reference(440, 60)


_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from tests.unit.test_recorder import tone_frame
    from firmware.media.recorder import CallRecorder
    rec = CallRecorder(sys.argv[1])
    k = 0
    while True:                       # until SIGKILL
        rec.write(tone_frame(440, k), tone_frame(1000, k))
        k += 1
        if rec.flush_due:
            rec.flush()
            print(k, flush=True)
""")


def test_recording_killed_mid_write_is_repaired(tmp_path):
    p = str(tmp_path / "killed.wav")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, p, str(ROOT)],
                             stdout=subprocess.PIPE, text=True)
    try:
        reported = 0
        while reported < 300:         # 6 s of audio flushed, the child still writing
            reported = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    assert not os.path.exists(p) and os.path.exists(p + ".part")
    with pytest.raises(WavError):
        read_wav(p + ".part")         # provisional header: sizes 0

    assert recover_all(str(tmp_path)) == [p]
    assert not os.path.exists(p + ".part")
    rate, ch, s = read_wav(p)
    frames = len(s) // 2
    # everything flushed before the kill is there, to the sample
    assert frames >= reported * 160
    assert frames <= (reported + 50 * 40) * 160       # the child may flush on before dying
    n = frames // 160 + 1
    assert s[0::2] == reference(440, n)[:frames] and s[1::2] == reference(1000, n)[:frames]
    assert goertzel(s[0::2][:8000], 440) > 7500 and goertzel(s[1::2][:8000], 440) < 50


def test_recover_all_handles_empty_and_foreign_parts(tmp_path):
    (tmp_path / "empty.wav.part").write_bytes(b"")
    (tmp_path / "junk.wav.part").write_bytes(b"garbage" * 10)
    good = tmp_path / "ok.wav.part"
    good.write_bytes(make_header(1, RATE, 1, 0) + array("h", range(160)).tobytes())
    assert recover_all(str(tmp_path)) == [str(tmp_path / "ok.wav")]
    assert sorted(os.listdir(tmp_path)) == ["junk.wav.part.bad", "ok.wav"]
    assert read_wav(str(tmp_path / "ok.wav"))[2] == array("h", range(160))


def test_existing_part_is_never_clobbered(tmp_path):
    p = tmp_path / "a.wav"
    (tmp_path / "a.wav.part").write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        CallRecorder(str(p))
    assert (tmp_path / "a.wav.part").read_bytes() == b"precious"


# --- quota and disk full -----------------------------------------------------

def test_quota_deletes_oldest_first(tmp_path):
    sizes = {"c.wav": 3000, "a.wav": 1000, "d.wav": 4000, "b.wav": 2000}
    mtimes = {"c.wav": 100, "a.wav": 300, "d.wav": 200, "b.wav": 400}
    for name, size in sizes.items():
        f = tmp_path / name
        f.write_bytes(bytes(size))
        os.utime(f, (mtimes[name], mtimes[name]))
    (tmp_path / "live.wav.part").write_bytes(bytes(500))    # in progress: counted, not deleted
    (tmp_path / "notes.txt").write_bytes(bytes(9999))       # not ours
    store = RecordingStore(str(tmp_path), quota_bytes=4000)
    assert store.usage() == 10500
    # by mtime: c (100), d (200), a (300), b (400); 10500 - 3000 - 4000 <= 4000
    assert store.enforce() == [str(tmp_path / n) for n in ("c.wav", "d.wav")]
    assert sorted(os.listdir(tmp_path)) == ["a.wav", "b.wav", "live.wav.part", "notes.txt"]
    assert store.usage() == 3500 and store.enforce() == []
    store.quota_bytes = 1000
    assert store.enforce() == [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    assert store.usage() == 500                       # the live recording is never deleted


def test_free_space_margin_stops_recording_cleanly(tmp_path):
    store = RecordingStore(str(tmp_path), quota_bytes=10**9, min_free_bytes=1 << 62)
    assert store.disk_full()
    rec = store.recorder("m.wav")
    for k in range(60):
        ev = rec.write(tone_frame(440, k), tone_frame(1000, k))
        if rec.flush_due:
            ev = rec.flush()
            assert isinstance(ev, DiskFull) and "below margin" in ev.detail
    assert rec.write(tone_frame(440, 0), None) is None          # a no-op now
    assert rec.close() == RecordingStopped(str(tmp_path / "m.wav"), 0.0, "disk_full")
    assert read_wav(str(tmp_path / "m.wav")) == (RATE, 2, array("h"))


def _check_disk_full_recording(path: str, rec: CallRecorder, frames_written: int) -> None:
    stopped = rec.close()
    assert stopped.reason == "disk_full" and stopped.path == path
    assert isinstance(rec.disk_full, DiskFull)
    assert not os.path.exists(path + ".part")
    rate, ch, s = read_wav(path)                      # playable as it is, no repair needed
    assert len(s) * 2 + 44 == os.path.getsize(path)
    frames = len(s) // 2
    assert 0 < frames < frames_written * 160
    assert stopped.seconds == frames / RATE
    n = frames // 160 + 1
    assert s[0::2] == reference(440, n)[:frames] and s[1::2] == reference(1000, n)[:frames]


def _record_until_full(path: str, **kw) -> tuple[CallRecorder, int, list]:
    rec = CallRecorder(path, **kw)
    events = []
    for k in range(300):
        rec.write(tone_frame(440, k), tone_frame(1000, k))
        if rec.flush_due:
            ev = rec.flush()
            if ev:
                events.append((k, ev))
    return rec, 300, events


def test_enospc_on_a_real_tiny_filesystem():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tempfile.mkdtemp()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount tmpfs: {r.stderr.strip()}")
    try:
        path = os.path.join(d, "full.wav")
        rec, written, events = _record_until_full(path)
        assert len(events) == 1
        k, ev = events[0]
        assert "No space left" in ev.detail
        _check_disk_full_recording(path, rec, written)
        # 64 KiB filesystem: the file fills it (to the page) and stays playable
        assert os.path.getsize(path) > 48 * 1024
    finally:
        subprocess.run(["umount", d], check=True)
        os.rmdir(d)


def test_enospc_simulated_by_a_write_wrapper(tmp_path):
    """The same path without root: os.write fails with ENOSPC after a budget."""
    budget = [100_003]                                # data octets: not a whole frame

    def write(fd, data):
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = min(len(data), budget[0])                 # a short write first, like the kernel
        budget[0] -= n
        return os.write(fd, data[:n])

    path = str(tmp_path / "sim.wav")
    rec = CallRecorder(path)
    rec._os_write = write
    events = []
    for k in range(300):
        rec.write(tone_frame(440, k), tone_frame(1000, k))
        if rec.flush_due:
            ev = rec.flush()
            if ev:
                events.append(ev)
    assert len(events) == 1
    _check_disk_full_recording(path, rec, 300)
    assert os.path.getsize(path) == 44 + 100_000      # the partial frame was cut
