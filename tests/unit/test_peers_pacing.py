"""The pacing check of tests/unit/test_terminal.py (tests/peers/pacing.py) on made-up timelines:
a sender that keeps time passes however loaded its machine was; a wrong clock, a stall and
bursts ahead of time each fail it."""
from __future__ import annotations

import random
from typing import Callable

from tests.peers.pacing import FRAME, interval_jitter, pacing_faults, run_queue_wait

T0 = 5000.0


def sender(frames: int = 150, *, tick: float = FRAME, late: Callable[[int], float] = lambda k: 0.0,
           stalls: dict[int, float] | None = None, burst: int = 1, max_catchup: int = 5,
           ts0: int = 123456) -> list[tuple[float, int]]:
    """The packets a sender puts out, as (arrival, RTP timestamp).

    Frame k is due at T0 + k * tick (``tick`` other than 20 ms: a clock at the wrong rate), goes
    out ``late(k)`` after that, or when a stall (``stalls``: frame -> seconds the sender stops
    for before it) ends; frames owed beyond ``max_catchup`` when the sender runs again are
    skipped, their timestamps advanced over (as firmware/media/clock.py does). ``burst`` > 1:
    frames go out ``burst`` at a time, at the due time of the first.
    """
    stalls = stalls or {}
    out: list[tuple[float, int]] = []
    now = T0
    for k in range(frames):
        due = T0 + (k - k % burst) * tick
        at = max(now, due + late(k), due + stalls.get(k, 0.0))
        now = at
        if at - due > max_catchup * tick:
            continue
        out.append((at, (ts0 + 160 * k) & 0xFFFFFFFF))
    return out


def faults(*streams: list[tuple[float, int]]) -> str:
    return "\n".join(pacing_faults(streams))


def test_a_sender_keeping_time_passes():
    rnd = random.Random(1)
    assert faults(sender(late=lambda k: rnd.uniform(0, 0.001)), sender()) == ""


def test_a_sender_on_a_loaded_machine_passes_where_a_jitter_bound_did_not():
    # What the CI run saw: late ticks now and then (a scheduler slice lost to another process),
    # caught up at once, and one stall long enough that frames were skipped. The RTP timestamp
    # wraps meanwhile.
    rnd = random.Random(2)
    lateness = {k: rnd.uniform(0.020, 0.045) for k in rnd.sample(range(150), 5)}
    stream = sender(late=lambda k: lateness.get(k, rnd.uniform(0, 0.002)), stalls={90: 0.200},
                    ts0=0xFFFFFFFF - 160 * 40)
    jitter = sorted(interval_jitter([t for t, _ in stream]))
    assert jitter[int(0.99 * len(jitter))] > 0.015          # the old bound: p99 < 15 ms
    assert len(stream) < 150                                 # the stall's frames were skipped
    assert faults(stream) == ""


def test_a_clock_ten_percent_fast_or_slow_fails():
    assert "fast by 10.0%" in faults(sender(tick=FRAME * 0.9))
    assert "slow by 10.0%" in faults(sender(tick=FRAME * 1.1))
    assert "slow by 5.0%" in faults(sender(tick=FRAME * 1.05))
    assert faults(sender(tick=FRAME * 1.01)) == ""           # within the bound: no fault


def test_a_sender_stalling_fails():
    # stopped 300 ms past frame 70's time: 320 ms since frame 69; the frames owed beyond the
    # catch-up are skipped, so its timing is right again afterwards and only the stall shows
    out = faults(sender(), sender(stalls={70: 0.300}))
    assert out == ("stream 1: no packet for 320 ms after packet 69 "
                   "(bound 250 ms + 0 ms the sender waited for a CPU)"), out
    assert faults(sender(stalls={70: 0.220})) == ""


def test_a_stall_the_scheduler_explains_is_excused_and_no_more():
    # An overloaded machine kept the sender off the CPU for 150 ms of the window: a stall that
    # long beyond the bound is the machine's; a longer one is still the sender's.
    stream = sender(stalls={70: 0.350})
    assert pacing_faults([stream], excused=0.150) == []
    assert "no packet for 370 ms" in "".join(pacing_faults([stream], excused=0.100))


def test_the_run_queue_wait_is_read_for_this_thread():
    waited = run_queue_wait()
    assert waited >= 0.0 and run_queue_wait() >= waited


def test_frames_sent_in_bursts_ahead_of_time_fail():
    assert "ahead of the stream's timing" in faults(sender(burst=5))   # 5 frames every 100 ms
    assert faults(sender(burst=2)) == ""                     # one frame early is within the bound


def test_too_short_a_stream_is_not_judged_a_pass():
    assert faults(sender(frames=10)) == "stream 0: 10 packets, too few to judge (< 30)"
