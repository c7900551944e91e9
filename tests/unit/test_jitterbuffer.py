"""Jitter buffer on synthetic packet traces (fake clock, seeded randomness).

Every frame's payload names the frame (its number, repeated), so a test can
assert the exact sequence of frames that came out: a number for a played
frame, "c" for a concealment marker, None for a tick with nothing to play.
"""

from __future__ import annotations

import random
import struct
from array import array

import pytest

from firmware.media.jitterbuffer import Frame, JitterBuffer, conceal
from firmware.media.rtp import RtpPacket

TICK = 0.02
PHASE = 0.007          # our 20 ms clock is not aligned with the sender's


def payload(k: int) -> bytes:
    return struct.pack(">I", k) * 40           # 160 octets, like a G.711 frame


def frame_id(p: bytes) -> int:
    return struct.unpack_from(">I", p)[0]


def stream(n, *, first=0, seq0=1000, ts0=5000, ssrc=0x1234, t0=0.0, period=TICK,
           delay=0.03):
    """Packets (arrival, seq, ts, ssrc, payload, marker) for frames first..first+n-1."""
    return [
        [t0 + i * period + delay, (seq0 + i) & 0xFFFF, (ts0 + 160 * i) & 0xFFFFFFFF,
         ssrc, payload(first + i), False]
        for i in range(n)
    ]


def run(packets, ticks, jb=None, *, depths=None):
    """Feed packets in arrival order, one get() per tick; returns tokens and frames."""
    jb = jb or JitterBuffer()
    pkts = sorted(packets, key=lambda p: p[0])      # stable: equal times keep order
    out, frames, i = [], [], 0
    for k in range(ticks):
        now = PHASE + k * TICK
        while i < len(pkts) and pkts[i][0] <= now:
            a, seq, ts, ssrc, pl, marker = pkts[i]
            jb.put((seq, ts, ssrc, pl, a, marker))
            if depths is not None:
                depths.append(jb.depth)
            i += 1
        f = jb.get(now)
        frames.append(f)
        out.append(None if f is None else "c" if f.concealed else frame_id(f.payload))
    return out, frames, jb


def test_clean_stream_plays_every_frame_in_order():
    out, frames, jb = run(stream(50), 60, JitterBuffer(initial_depth=1))
    # arrivals at 30 ms + 20k, ticks at 7 ms + 20k: frame 0 is first seen at tick 2
    assert out == [None, None] + list(range(50)) + ["c"] * 4 + [None] * 4
    assert [f.timestamp for f in frames[2:52]] == [5000 + 160 * k for k in range(50)]
    assert jb.stats.played == 50 and jb.stats.inserted == 4 and jb.stats.lost == 0


def test_excess_depth_is_trimmed_one_frame_per_period():
    # initial depth 2 on a jitter-free stream: one frame more than needed,
    # dropped at the first trim check (25 ticks after playout starts).
    out, _, jb = run(stream(60), 64)
    played = [x for x in out if isinstance(x, int)]
    assert out[:3] == [None, None, None]
    assert played == [k for k in range(60) if k != 24]
    assert out[3:3 + 24] == list(range(24)) and out[27] == 25
    assert jb.stats.dropped == 1


def test_reordering_within_depth_is_undone():
    pk = stream(200)
    for i in range(0, 200, 2):                      # each odd frame overtakes its even one
        pk[i][0] += 0.025
    rng = random.Random(7)
    for p in pk[::3]:
        p[0] += rng.uniform(0, 0.015)
    out, _, jb = run(pk, 215, JitterBuffer(min_depth=3, trim_every=10**9))
    played = [x for x in out if x is not None]
    assert played[:200] == list(range(200))
    assert jb.stats.lost == 0 and jb.stats.late == 0
    # with trimming on, the buffer may shed a frame it did not need, nothing else
    out, _, jb = run(pk, 215, JitterBuffer(min_depth=3))
    played = [x for x in out if isinstance(x, int)]
    assert played == sorted(played)
    assert len(played) + jb.stats.dropped == 200 and jb.stats.lost == 0


def test_loss_5_percent_gives_concealment_at_the_lost_positions():
    rng = random.Random(1)
    pk = stream(500)
    lost = {i for i in range(500) if rng.random() < 0.05}
    assert 15 < len(lost) < 40
    out, _, jb = run([p for i, p in enumerate(pk) if i not in lost], 510,
                     JitterBuffer(min_depth=3, initial_depth=3))
    start = out.index(0)
    expected = ["c" if k in lost else k for k in range(500)]
    if 499 in lost:
        expected = expected[:-1]
    assert out[start:start + len(expected)] == expected
    assert jb.stats.lost == len(lost - {499})


def test_loss_at_the_tail_of_a_one_frame_buffer_inserts_then_conceals():
    # With one frame buffered a missing packet looks like a late one: the tick
    # holds the position (inserted), then the slot is known lost. The frame of
    # latency this adds is trimmed later.
    pk = [p for i, p in enumerate(stream(80)) if i != 10]
    out, _, jb = run(pk, 84, JitterBuffer(initial_depth=1))
    assert out[2:16] == list(range(10)) + ["c", "c", 11, 12]
    assert jb.stats.inserted >= 1 and jb.stats.lost == 1
    assert jb.stats.dropped == 1                    # the extra frame trimmed
    played = [x for x in out if isinstance(x, int)]
    assert played == [k for k in range(80) if k != 10 and k != played_gap(played)]


def played_gap(played):
    """The one frame dropped by the trim (the only missing number besides 10)."""
    missing = sorted(set(range(max(played) + 1)) - set(played) - {10})
    return missing[0] if missing else -1


def test_burst_loss_and_network_stall():
    pk = stream(400)
    pk = [p for i, p in enumerate(pk) if not 100 <= i < 108]     # 160 ms burst lost
    for p in pk:                                                   # 250 ms stall
        i = frame_id(p[4])
        if 200 <= i < 212:
            p[0] = 212 * TICK + 0.03
    depths: list[int] = []
    out, _, jb = run(pk, 420, JitterBuffer(min_depth=3, initial_depth=3), depths=depths)
    start = out.index(0)
    assert out[start:start + 100] == list(range(100))
    # 8 lost frames: longer than the buffer (3) plus idle_after (100 ms), so
    # after two concealed frames it is treated as silence; still 8 ticks long
    # (time-aligned), and the stream restarts at the next packet.
    assert out[start + 100:start + 108] == ["c", "c"] + [None] * 6
    assert out[start + 108:start + 200] == list(range(108, 200))
    # the stall: 10 ticks of concealment then silence; then 200..212 arrive at
    # once, overflow max_depth (10) and the three oldest are dropped
    assert out[start + 200:start + 211] == ["c", "c"] + [None] * 8 + [203]
    played = [x for x in out if isinstance(x, int)]
    after = played[played.index(199) + 1:]
    assert after == sorted(after) and after[0] == 203 and after[-1] == 399
    trimmed = set(range(203, 400)) - set(after)
    assert jb.stats.dropped == 3 + len(trimmed)     # then latency is trimmed back
    assert max(depths) <= 10


def test_duplicates_are_dropped():
    pk = stream(100)
    dup = [[p[0] + 0.005 * (1 + i % 12)] + p[1:] for i, p in enumerate(pk)]
    out_clean, _, _ = run(stream(100), 110, JitterBuffer(min_depth=2))
    out, _, jb = run(pk + dup, 110, JitterBuffer(min_depth=2))
    assert out == out_clean
    assert jb.stats.duplicates == 100 and jb.stats.late == 0   # late copies of played frames too
    assert jb.stats.received == 100


def test_sequence_and_timestamp_wrap():
    ts0 = 2**32 - 160 * 25
    out, frames, jb = run(stream(100, seq0=65530, ts0=ts0), 104, JitterBuffer(initial_depth=1))
    assert out[2:102] == list(range(100))
    assert [f.timestamp for f in frames[2:102]] == [(ts0 + 160 * k) % 2**32 for k in range(100)]
    assert jb.stats.resyncs == 0 and jb.stats.late == 0


def test_ssrc_change_resets():
    a = stream(50, ssrc=1)
    b = stream(50, first=1000, ssrc=2, seq0=7, ts0=123456789, t0=50 * TICK)
    out, _, jb = run(a + b, 104, JitterBuffer(initial_depth=1))
    assert out == [None, None] + list(range(50)) + list(range(1000, 1050)) + ["c"] * 2
    assert jb.stats.ssrc_changes == 1


def test_ssrc_change_discards_the_old_sources_buffered_frames():
    a = stream(50, ssrc=1)
    b = stream(50, first=1000, ssrc=2, seq0=7, ts0=99, t0=50 * TICK)
    out, _, _ = run(a + b, 110, JitterBuffer(min_depth=3, initial_depth=3))
    played = [x for x in out if isinstance(x, int)]
    # 48 and 49 were still buffered when the new source arrived
    assert played == list(range(48)) + list(range(1000, 1050))
    i = out.index(47)
    assert out[i + 1:i + 4] == [None, None, 1000]    # new source prefetching


@pytest.mark.parametrize("jump", [80000, -40000, 2**31 - 1000])
def test_timestamp_jump_resyncs_without_a_gap(jump):
    a = stream(50)
    b = stream(50, first=50, seq0=1050, ts0=(5000 + 160 * 50 + jump) % 2**32, t0=50 * TICK)
    out, _, jb = run(a + b, 104, JitterBuffer(initial_depth=1))
    assert out[2:102] == list(range(100))
    assert jb.stats.resyncs == 1


def test_marker_after_long_silence_starts_a_new_talkspurt():
    a = stream(50)
    b = stream(50, first=50, seq0=1050, ts0=5000 + 160 * 100, t0=100 * TICK)
    b[0][5] = True
    out, _, _ = run(a + b, 160, JitterBuffer(initial_depth=1))
    assert out[:52] == [None, None] + list(range(50))
    assert out[52:56] == ["c"] * 4
    assert set(out[56:102]) == {None}
    assert out[102:152] == list(range(50, 100))


@pytest.mark.parametrize("marker,expected", [
    (True, ["c", "c", "c", 50, 51]),              # already-played silence is not repeated
    (False, ["c", "c", "c", "c", "c", "c", 50]),  # no marker: the gap is concealed too
])
def test_short_talkspurt_gap(marker, expected):
    a = stream(50)
    b = stream(50, first=50, seq0=1050, ts0=5000 + 160 * 53, t0=53 * TICK)
    b[0][5] = marker
    out, _, _ = run(a + b, 110, JitterBuffer(initial_depth=1))
    assert out[52:52 + len(expected)] == expected


@pytest.mark.parametrize("ppm", [10_000, -10_000])
def test_clock_drift_one_percent_for_ten_minutes(ppm):
    rate = 1 + ppm / 1e6                 # sender frames per our frame
    n = int(30000 * rate)                # 10 minutes of our ticks
    rng = random.Random(ppm)
    pk = stream(n, period=TICK / rate)
    for p in pk:
        p[0] += rng.uniform(0, 0.03)     # 30 ms of jitter
    depths: list[int] = []
    out, frames, jb = run(pk, 30000, depths=depths)
    played = [x for x in out if isinstance(x, int)]
    # frames come out in order, never twice, payload matching its timestamp
    assert all(b > a for a, b in zip(played, played[1:]))
    assert all(f.timestamp == 5000 + 160 * frame_id(f.payload)
               for f in frames if f is not None and not f.concealed)
    # bounded: never above max_depth, and the last minute is near the target
    assert max(depths) <= 10
    last = depths[-3000:]
    assert sum(last) / len(last) <= jb.target + 1
    extra = abs(n - 30000)               # ~300 frames to drop (fast) or insert (slow)
    s = jb.stats
    if ppm > 0:
        assert extra - 10 <= s.dropped <= extra * 1.3     # a few remain buffered
        assert s.inserted < extra * 0.3
    else:
        assert extra - 10 <= s.inserted + s.lost <= extra * 1.3
        assert s.dropped < extra * 0.3
    # no runaway: the corrections are spread over the whole run, not bunched
    per_minute = [sum(1 for x in out[m * 3000:(m + 1) * 3000] if x == "c") for m in range(10)]
    if ppm < 0:
        assert max(per_minute) < 60 and min(per_minute) > 15
    assert s.played + s.dropped + s.late >= n - 50


def test_adaptive_target_follows_measured_jitter():
    rng = random.Random(3)
    pk = stream(600)
    for p in pk:
        p[0] += rng.uniform(0, 0.06)
    out, _, jb = run(pk, 610)
    assert 4 <= jb.target <= 5              # 60 ms spread + one frame of headroom
    conceal_late = sum(1 for x in out[150:600] if x == "c")
    assert conceal_late <= 5                # once adapted, jitter is absorbed
    _, _, calm = run(stream(200), 210)
    assert calm.target == 1


def test_target_is_bounded():
    rng = random.Random(4)
    pk = stream(300)
    for p in pk:
        p[0] += rng.uniform(0, 0.5)
    _, _, jb = run(pk, 320)
    assert jb.target == 10


def test_packets_with_two_frames_are_split():
    pk = []
    for i in range(25):                     # 40 ms packets
        pk.append([0.04 * i + 0.05, i, 160 * 2 * i, 9, payload(2 * i) + payload(2 * i + 1), False])
    out, frames, _ = run(pk, 60, JitterBuffer(initial_depth=2))
    played = [x for x in out if isinstance(x, int)]
    assert played == list(range(50))
    assert [f.timestamp for f in frames if f and not f.concealed] == [160 * k for k in range(50)]


def test_rtp_packet_input():
    jb = JitterBuffer(initial_depth=1)
    jb.put(RtpPacket(payload_type=0, sequence_number=1, timestamp=160, ssrc=5,
                     payload=payload(1)), 0.0)
    f = jb.get(0.001)
    assert f == Frame(160, payload(1), False)


def test_conceal_fades_to_silence():
    tone = array("h", [10000 if (i // 10) % 2 else -10000 for i in range(160)]).tobytes()
    energies = []
    for count in range(1, 5):
        pcm = conceal(tone, count)
        assert len(pcm) == len(tone)
        a = array("h", pcm)
        energies.append(sum(x * x for x in a))
    assert energies[0] > energies[1] > energies[2] > 0
    assert energies[3] == 0
    first = array("h", conceal(tone, 1))
    assert first[0] == array("h", tone)[0]              # starts at full level: no step
    assert all(abs(a - b) <= 650 for a, b in zip(first[:10], array("h", tone)))
