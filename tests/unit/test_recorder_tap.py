"""Bridge recordings off the packet path: the tap timeline, the writer thread, the quota total.

The timeline is pure, so it is driven with synthetic RTP packets and made-up batch times:
packets are placed by RTP timestamp (reordering, duplicates, loss, SSRC change, drift), gaps are
silence, and both sides share the wall-clock timeline. Audio is checked sample-exact against
the G.711 decode tables, or as tones (Goertzel) where a real stream runs.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import struct
import threading
from array import array

import pytest

from firmware.media.g711 import alaw_decode_table, lin2alaw, lin2ulaw, ulaw_decode_table
from firmware.media.recorder import (CallRecorder, DiskFull, RecordingStopped, RecordingStore,
                                     RecordingWriter, TapRecording, TapTimeline, recover_all)
from firmware.media.wav import read_wav, repair

RATE = 8000
HDR = struct.Struct("!BBHII")


def pkt(k: int, payload: bytes, *, ssrc: int = 0x1111, ts0: int = 1000, pt: int = 0,
        seq0: int = 0) -> bytes:
    """RTP packet for frame k of a stream (20 ms, 160 samples a frame)."""
    return HDR.pack(0x80, pt, (seq0 + k) & 0xFFFF, (ts0 + 160 * k) & 0xFFFFFFFF, ssrc) + payload


def code(k: int) -> bytes:
    """Frame k's payload: one µ-law code repeated, a different one per frame (never 0xFF/0x7F)."""
    return bytes([k % 100 + 1]) * 160


def pcm_of(codes: bytes, table=ulaw_decode_table) -> array:
    return array("h", [table[c] for c in codes])


def samples(pcm: bytes) -> array:
    return array("h", pcm)


def tone_frame(freq: float, k: int, amp: int = 8000) -> array:
    return array("h", [int(amp * math.sin(2 * math.pi * freq * (160 * k + i) / RATE))
                       for i in range(160)])


def goertzel(x, freq: float) -> float:
    c = 2 * math.cos(2 * math.pi * freq / RATE)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + c * s1 - s2, s1
    return 2 * math.sqrt(max(s1 * s1 + s2 * s2 - c * s1 * s2, 0.0)) / len(x)


def run_batches(tl: TapTimeline, left: list, right: list, frames: int,
                batch: int = 25, t0: float = 0.0) -> tuple[array, array]:
    """Feed packets as a running stream would arrive: frame k by t0 + 0.02 (k + 1), a batch every
    ``batch`` frames, then the final batch; both sides' samples. None in a list: lost."""
    def sent(pkts, lo, hi):
        return [p for p in pkts[lo:hi] if p is not None]

    out_l, out_r = bytearray(), bytearray()
    for end in range(batch, frames + 1, batch):
        l_, r_ = tl.feed(t0 + 0.02 * end, sent(left, end - batch, end), sent(right, end - batch, end))
        out_l += l_
        out_r += r_
    done = frames - frames % batch
    l_, r_ = tl.feed(t0 + 0.02 * frames, sent(left, done, None), sent(right, done, None), final=True)
    return samples(out_l + l_), samples(out_r + r_)


# --- the timeline (pure) -----------------------------------------------------------

def test_in_order_stream_is_placed_sample_exact_and_length_is_wall_time():
    tl = TapTimeline(0.0, ("PCMU", "PCMU"))
    left = [pkt(k, code(k)) for k in range(100)]
    out_l, out_r = run_batches(tl, left, [], 100)
    assert len(out_l) == len(out_r) == 100 * 160             # 2 s of wall time
    assert out_l == pcm_of(b"".join(code(k) for k in range(100)))
    assert set(out_r) == {0}                                  # the silent side is silence


def test_reordered_and_duplicated_packets_land_in_timestamp_order():
    tl = TapTimeline(0.0, ("PCMU", "PCMU"))
    left = [pkt(k, code(k)) for k in range(50)]
    shuffled = left[:10] + [left[11], left[10], left[13], left[12], left[12]] + left[14:25]
    a, _ = tl.feed(0.5, shuffled, [])
    b, _ = tl.feed(1.0, left[25:] + [left[30]], [], final=True)
    assert samples(a + b) == pcm_of(b"".join(code(k) for k in range(50)))


def test_lost_packets_are_silence_and_the_timeline_does_not_close_up():
    tl = TapTimeline(0.0, ("PCMU", "PCMA"))
    lost = {5, 6, 30}
    left = [pkt(k, code(k)) for k in range(50)]
    right = [pkt(k, code(k), pt=8, ssrc=0x2222) for k in range(50)]
    out_l, out_r = run_batches(tl, [None if k in lost else p for k, p in enumerate(left)], right, 50)
    for k in range(50):
        fr = out_l[160 * k:160 * (k + 1)]
        assert fr == (array("h", bytes(320)) if k in lost else pcm_of(code(k))), k
    assert out_r == pcm_of(b"".join(code(k) for k in range(50)), alaw_decode_table)


def test_sides_are_aligned_by_wall_time_not_by_their_timestamps():
    # b starts talking 0.4 s after a, with an unrelated timestamp origin
    tl = TapTimeline(0.0, ("PCMU", "PCMU"))
    out_l, out_r = bytearray(), bytearray()
    for end in range(25, 101, 25):
        left = [pkt(k, code(1)) for k in range(end - 25, end)]
        right = [pkt(k - 20, code(2), ssrc=9, ts0=777_777) for k in range(max(end - 25, 20), end)]
        l_, r_ = tl.feed(0.02 * end, left, right, final=end == 100)
        out_l += l_
        out_r += r_
    out_r = samples(out_r)
    first = next(i for i, v in enumerate(out_r) if v)
    assert abs(first - 20 * 160) <= 160                       # within one packet of 0.4 s
    assert len(out_l) == len(out_r) * 2 == 100 * 320


def test_ssrc_change_and_timestamp_jump_re_anchor_the_stream():
    tl = TapTimeline(0.0, ("PCMU", "PCMU"))
    a, _ = tl.feed(0.5, [pkt(k, code(1)) for k in range(25)], [])
    # a new source (transfer, re-INVITE) with its own timeline, then a jump of the same source
    b, _ = tl.feed(1.0, [pkt(k, code(2), ssrc=0x5555, ts0=9_000_000) for k in range(25)], [])
    c, _ = tl.feed(1.5, [pkt(k, code(3), ssrc=0x5555, ts0=123) for k in range(25)], [],
                   final=True)
    out = samples(a + b + c)
    assert len(out) == 12000 and tl.resyncs == 2
    for sec, want in ((0.0, 1), (0.5, 2), (1.0, 3)):          # each where it arrived
        i = int(sec * RATE) + 800
        assert out[i] == pcm_of(code(want))[0], (sec, out[i])


def test_late_packet_for_a_written_position_is_dropped():
    tl = TapTimeline(0.0, ("PCMU", "PCMU"), hold=0.1)
    left = [pkt(k, code(k)) for k in range(50)]
    a, _ = tl.feed(0.5, left[:25], [])                        # written up to 0.4 s (frame 20)
    b, _ = tl.feed(1.0, [left[3]] + left[25:], [], final=True)
    assert tl.late == 1
    assert samples(a + b) == pcm_of(b"".join(code(k) for k in range(50)))


@pytest.mark.parametrize("ppm", [-300, 300])
def test_clock_drift_keeps_the_stream_within_bounds_of_wall_time(ppm):
    # A sender whose clock runs ppm fast/slow: its packets come 20 ms * (1 - ppm/1e6) apart.
    tl = TapTimeline(0.0, ("PCMU", "PCMU"))
    period = 0.02 * (1 - ppm / 1e6)
    frames = 50 * 600                                          # 10 minutes of audio
    sent = 0
    t = 0.0
    worst = 0.0
    while sent < frames:
        t += 0.5
        batch = []
        while sent < frames and (sent + 1) * period <= t:
            batch.append(pkt(sent, code(1)))
            sent += 1
        tl.feed(t, batch, [])
        s = tl._streams[0]
        # where the newest packet sits against when it really arrived
        worst = max(worst, abs((1000 + sent * 160 + s.off) / RATE - sent * period))
    assert worst < 0.15, worst                                 # never more than 150 ms off
    assert tl.resyncs <= 3


def test_rfc4733_and_runt_packets_are_not_recorded():
    tl = TapTimeline(0.0, ("PCMU", "PCMU"))
    left = [pkt(k, code(k)) for k in range(25)]
    noise = [pkt(3, b"\x05\x0a\x00\xa0", pt=101), b"\x80\x00\x01", pkt(4, b"", pt=0)]
    a, _ = tl.feed(0.5, left[:10] + noise + left[10:], [], final=True)
    assert samples(a) == pcm_of(b"".join(code(k) for k in range(25)))


# --- TapRecording: timeline + CallRecorder -------------------------------------------

def tone_packets(freq: float, frames: int, law: str = "PCMU", **kw) -> list[bytes]:
    enc, pt = (lin2ulaw, 0) if law == "PCMU" else (lin2alaw, 8)
    return [pkt(k, enc(tone_frame(freq, k)), pt=pt, **kw) for k in range(frames)]


def record(path: str, frames: int = 100, **kw) -> tuple[TapRecording, list]:
    job = TapRecording(CallRecorder(path, **kw), 0.0, ("PCMU", "PCMA"))
    left = tone_packets(440, frames)
    right = tone_packets(1000, frames, "PCMA", ssrc=2)
    events = []
    for end in range(25, frames + 1, 25):
        events += job.batch(0.02 * end, left[end - 25:end], right[end - 25:end], job.timeline.laws)
    return job, events


def test_stereo_file_caller_left_callee_right_and_finish_finalises(tmp_path):
    p = str(tmp_path / "call.wav")
    job, events = record(p, 100)
    assert events == [] and os.path.exists(p + ".part") and not os.path.exists(p)
    new, stopped = job.finish(2.0, [], [], ("PCMU", "PCMA"))
    assert new == [stopped] and stopped == RecordingStopped(p, 2.0, "closed")
    assert not os.path.exists(p + ".part")
    rate, ch, s = read_wav(p)
    assert (rate, ch, len(s)) == (RATE, 2, 2 * 16000)
    left, right = s[0::2], s[1::2]
    assert goertzel(left, 440) > 7000 and goertzel(left, 1000) < 100
    assert goertzel(right, 1000) > 7000 and goertzel(right, 440) < 100
    assert job.finish(2.0, [], [], ("PCMU", "PCMA")) == ([], stopped)   # once only


def test_mono_mix_mode_has_both_parties_in_one_channel(tmp_path):
    p = str(tmp_path / "mono.wav")
    job, _ = record(p, 50, mode="mono")
    job.finish(1.0, [], [], ("PCMU", "PCMA"))
    rate, ch, s = read_wav(p)
    assert (ch, len(s)) == (1, 8000)
    assert goertzel(s, 440) > 7000 and goertzel(s, 1000) > 7000


def test_part_file_between_batches_is_recoverable_after_a_crash(tmp_path):
    # What a kill -9 or power cut leaves (the page cache aside): the provisional header and
    # every batch written so far, which recover_all turns into a playable WAV.
    p = str(tmp_path / "crash.wav")
    job, _ = record(p, 100)                                   # never finished
    os.close(job.recorder._fd)                                # the process "dies"
    assert recover_all(str(tmp_path)) == [p]
    rate, ch, s = read_wav(p)
    assert ch == 2 and len(s) // 2 == 2 * RATE - int(0.2 * RATE)   # all but the held-back 0.2 s
    assert goertzel(s[0::2], 440) > 7000 and goertzel(s[1::2], 1000) > 7000


def test_disk_full_ends_the_recording_with_a_playable_file(tmp_path):
    p = str(tmp_path / "full.wav")
    rec = CallRecorder(p)
    budget = [30_001]

    def write(fd, data):
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = min(len(data), budget[0])
        budget[0] -= n
        return os.write(fd, data[:n])

    rec._os_write = write
    job = TapRecording(rec, 0.0, ("PCMU", "PCMU"))
    left, right = tone_packets(440, 100), tone_packets(1000, 100, ssrc=2)
    events = []
    for end in range(25, 101, 25):
        events += job.batch(0.02 * end, left[end - 25:end], right[end - 25:end], ("PCMU", "PCMU"))
    assert [type(e) for e in events] == [DiskFull, RecordingStopped]
    assert events[1].reason == "disk_full" and events[1].path == p
    assert job.finish(2.0, [], [], ("PCMU", "PCMU")) == ([], events[1])
    rate, ch, s = read_wav(p)                                 # playable, cut to whole frames
    assert os.path.getsize(p) == 44 + 30_000 and len(s) == 15_000


def test_a_file_closed_unfinished_goes_on_in_another_recorder_sample_exact(tmp_path):
    """What a media worker and the PBX do when a recording's file moves between them: the last
    batch written and the file closed where it was, its description passed on (as JSON), and
    the next recorder going on with the same file on the same timeline, the store counting it."""
    store = RecordingStore(str(tmp_path), quota_bytes=1 << 30, min_free_bytes=0)
    laws = ("PCMU", "PCMA")
    left = [pkt(k, code(k)) for k in range(100)]
    right = [pkt(k, code(k + 50), pt=8, ssrc=2) for k in range(100)]
    here = TapRecording(store.recorder("moved.wav"), 0.0, laws)
    assert here.batch(0.5, left[:25], right[:25], laws) == []
    events, state = here.suspend(1.0, left[25:50], right[25:50], laws)
    assert events == [] and state["seconds"] == 1.0        # every placed sample, nothing padded
    part = str(tmp_path / "moved.wav.part")
    assert repair(part).seconds == 1.0 and os.path.getsize(part) == 44 + 4 * 8000   # meanwhile
    there = TapRecording.resume(json.loads(json.dumps(state)), laws, here.recorder.account)
    for end in (75, 100):
        assert there.batch(0.02 * end, left[end - 25:end], right[end - 25:end], laws) == []
    _, stopped = there.finish(2.0, [], [], laws)
    assert stopped == RecordingStopped(str(tmp_path / "moved.wav"), 2.0, "closed")
    _, ch, s = read_wav(stopped.path)
    assert s[0::2] == pcm_of(b"".join(code(k) for k in range(100)))
    assert s[1::2] == pcm_of(b"".join(code(k + 50) for k in range(100)), alaw_decode_table)
    assert store.usage() == os.path.getsize(stopped.path)
    assert [p for _, _, p in store.recordings()] == [stopped.path]


# --- the writer thread -----------------------------------------------------------------

def test_writer_runs_jobs_in_order_posts_results_and_survives_a_failing_job(caplog):
    posted = []
    w = RecordingWriter(lambda fn, *a: posted.append((fn, a)), idle=0.05)
    order = []

    def boom():
        raise ValueError("bug")

    for i in range(5):
        w.submit(order.append, i, then=lambda r, e: None)
    with caplog.at_level(logging.ERROR):
        w.submit(boom, then=lambda r, e: None)
    w.submit(order.append, 5)
    assert w.drain(5)
    assert order == list(range(6))
    assert len(posted) == 6                                   # 5 results + the error
    assert isinstance(posted[-1][1][1], ValueError) and "failed" in caplog.text
    for _ in range(200):                                      # idle: the thread goes away
        if w._thread is None:
            break
        threading.Event().wait(0.01)
    assert w._thread is None
    w.submit(order.append, 6)                                 # and comes back on demand
    assert w.drain(5) and order[-1] == 6


def test_a_disk_job_runs_after_the_jobs_before_it_on_a_helper_thread():
    posted = []
    w = RecordingWriter(lambda fn, *a: fn(*a), idle=0.05)
    gate = threading.Event()
    order = []
    w.submit(lambda: (gate.wait(5), order.append("batch")))
    w.submit(lambda: order.append(threading.current_thread().name), disk=True,
             then=lambda r, e: posted.append(e))
    assert not order
    gate.set()
    for _ in range(500):
        if posted:
            break
        threading.Event().wait(0.01)
    assert order[0] == "batch" and order[1].startswith("recording-disk") and posted == [None]


def test_writer_drops_a_result_for_a_closed_loop_without_dying():
    def post(fn, *a):
        raise RuntimeError("Event loop is closed")

    w = RecordingWriter(post, idle=0.05)
    w.submit(int, then=lambda r, e: None)
    w.submit(int)
    assert w.drain(5) and w.jobs_done == 3


# --- quota: a running total -------------------------------------------------------------

def test_store_counts_what_its_recorders_write_without_scanning(tmp_path, monkeypatch):
    (tmp_path / "old.wav").write_bytes(bytes(1000))
    os.utime(tmp_path / "old.wav", (100, 100))
    store = RecordingStore(str(tmp_path), quota_bytes=32_100, min_free_bytes=0)

    def no_scan(*a, **k):
        raise AssertionError("the directory was walked")

    monkeypatch.setattr(os, "scandir", no_scan)
    monkeypatch.setattr(os, "listdir", no_scan)
    assert store.usage() == 1000
    rec = store.recorder("a.wav")
    assert store.usage() == 1044                              # the provisional header
    rec.write(bytes(16000), bytes(16000))                    # 0.5 s stereo
    rec.flush()
    assert store.usage() == 1044 + 32000
    rec.close()
    assert store.usage() == os.path.getsize(tmp_path / "old.wav") + os.path.getsize(tmp_path / "a.wav")
    assert [os.path.basename(p) for _, _, p in store.recordings()] == ["old.wav", "a.wav"]
    assert store.enforce() == [str(tmp_path / "old.wav")]     # 33044 > 32100: the oldest goes
    assert store.usage() == 32044 and store.enforce() == []


def test_usage_and_enforce_never_race_with_recordings_being_renamed(tmp_path):
    """The old scan raised FileNotFoundError when a .part was renamed between scandir and stat
    (the 'Future exception was never retrieved' of issue 11). Now many recordings finish on
    threads while usage/enforce run in a loop: no error, and the total matches the disk."""
    store = RecordingStore(str(tmp_path), quota_bytes=200_000, min_free_bytes=0)
    errors = []

    def recorder_thread(i):
        try:
            for j in range(20):
                rec = store.recorder(f"r{i}-{j}.wav")
                rec.write(bytes(4000), bytes(4000))
                rec.close()
        except Exception as e:                               # pragma: no cover - the failure
            errors.append(e)

    threads = [threading.Thread(target=recorder_thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        store.usage()
        store.enforce()
    for t in threads:
        t.join()
    store.enforce()
    assert not errors
    on_disk = sum(e.stat().st_size for e in os.scandir(tmp_path))
    assert store.usage() == on_disk <= 200_000


def test_enforce_logs_a_failed_delete_and_keeps_counting_it(tmp_path, monkeypatch, caplog):
    for name, t in (("a.wav", 100), ("b.wav", 200)):
        (tmp_path / name).write_bytes(bytes(1000))
        os.utime(tmp_path / name, (t, t))
    store = RecordingStore(str(tmp_path), quota_bytes=500)
    real_unlink = os.unlink

    def unlink(path):
        if path.endswith("a.wav"):
            raise PermissionError(errno.EACCES, "read-only")
        real_unlink(path)

    monkeypatch.setattr(os, "unlink", unlink)
    with caplog.at_level(logging.ERROR):
        assert store.enforce() == []                          # logged, not raised
    assert "cannot delete" in caplog.text and store.usage() == 2000
    monkeypatch.setattr(os, "unlink", real_unlink)
    os.remove(tmp_path / "b.wav")                             # deleted by hand meanwhile
    assert store.enforce() == [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    assert store.usage() == 0


def test_repair_reads_a_part_the_writer_is_still_writing(tmp_path):
    p = str(tmp_path / "live.wav")
    job, _ = record(p, 60)
    part = p + ".part"
    copy = str(tmp_path / "copy.wav")
    with open(part, "rb") as f, open(copy, "wb") as g:        # e.g. a backup taken mid-call
        g.write(f.read())
    assert repair(copy).seconds == 0.8                       # all but the held-back 0.2 s
    job.finish(1.2, [], [], ("PCMU", "PCMA"))


def test_mono_mix_in_bulk_saturates_exactly_like_the_mixer():
    from firmware.media.mixer import add_saturate
    from firmware.media.recorder import _mix2
    a = array("h", [32767, -32768, 1000, -5, 20000, -20000] * 100).tobytes()
    b = array("h", [1, -1, -1000, 5, 20000, -20000] * 100).tobytes()
    assert _mix2(bytearray(a), bytearray(b)) == add_saturate(a, b)
    assert array("h", _mix2(bytearray(a), bytearray(b)))[:6].tolist() == [32767, -32768, 0, 0, 32767, -32768]
