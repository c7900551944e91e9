"""What a phone can tell about a sender's RTP pacing from the packets it received.

A stream is a list of ``(arrival, rtp_ts)``: the kernel's arrival time of each packet in seconds
(SO_TIMESTAMPNS on loopback, so the send time) and its RTP timestamp. The timestamp is the
sender's schedule: it advances by one frame (160 at 8 kHz) per 20 ms of the sender's clock,
over frames the sender skipped too (firmware/media/clock.py), so ``arrival - media time`` — the
packet's offset — is constant for a perfect sender whatever it skipped.

`interval_jitter` is the benchmark's figure (|arrival interval - 20 ms|): on a shared machine
its tail is the scheduler's, not the sender's. `pacing_faults` is what a test can hold a sender
to on any machine, because only a real fault breaks it:

* **rate** — the wall time between the middles of the stream's first and last thirds against
  the media time between them (each third's median offset, so late packets do not count): a
  clock running fast or slow by ``max_rate_error`` or more;
* **ahead** — a packet sent more than ``max_ahead`` (a whole frame) before the stream's median
  offset: frames pushed out in bursts ahead of their time. A loaded machine only ever makes
  packets late (a late tick then catches up), never early;
* **stall** — no packet for longer than ``max_stall``, plus the time the sending thread spent
  waiting for a CPU meanwhile (``excused``: its run-queue delay, `run_queue_wait`). On an idle
  machine that is nothing and the bound is ``max_stall``; on an overloaded one the scheduler
  can hold any process back for hundreds of milliseconds, and that is not the sender's fault.
  A loop blocked in its own work (a slow call, a sleep) is running or sleeping, not waiting for
  a CPU, so that is not excused.
"""
from __future__ import annotations

from statistics import median
from typing import Sequence

SCHEDSTAT = "/proc/thread-self/schedstat"

FRAME = 0.020
CLOCK_RATE = 8000

Stream = Sequence[tuple[float, int]]


def interval_jitter(arrivals: Sequence[float], period: float = FRAME) -> list[float]:
    """|interval - period| between consecutive arrivals, in seconds."""
    return [abs((b - a) - period) for a, b in zip(arrivals, arrivals[1:])]


def run_queue_wait() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat: on-CPU ns,
    run-queue ns, slices); 0.0 where the kernel does not say, which leaves the bounds strict."""
    try:
        with open(SCHEDSTAT) as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def offsets(stream: Stream, clock_rate: int = CLOCK_RATE) -> tuple[list[float], list[float]]:
    """(media times, offsets): each packet's RTP time since the stream's first packet (the
    timestamp unwrapped modulo 2**32) and its arrival minus that time."""
    t0, ts0 = stream[0]
    media = [((ts - ts0) & 0xFFFFFFFF) / clock_rate for _, ts in stream]
    return media, [t - t0 - m for (t, _), m in zip(stream, media)]


def pacing_faults(streams: Sequence[Stream], *, clock_rate: int = CLOCK_RATE,
                  max_rate_error: float = 0.03, max_ahead: float = FRAME, max_stall: float = 0.250,
                  excused: float = 0.0, min_packets: int = 30) -> list[str]:
    """Every fault found, one line each naming the stream; [] for a sender keeping time.
    ``excused``: seconds the sender waited for a CPU while the streams were sent."""
    faults: list[str] = []
    for i, stream in enumerate(streams):
        if len(stream) < min_packets:
            faults.append(f"stream {i}: {len(stream)} packets, too few to judge (< {min_packets})")
            continue
        media, off = offsets(stream, clock_rate)
        third = len(stream) // 3
        span = median(media[-third:]) - median(media[:third])
        if span <= 0:
            faults.append(f"stream {i}: RTP timestamps do not advance")
            continue
        rate_error = (median(off[-third:]) - median(off[:third])) / span
        if abs(rate_error) > max_rate_error:
            faults.append(f"stream {i}: the sender's clock runs {'slow' if rate_error > 0 else 'fast'} by "
                          f"{abs(rate_error):.1%} (wall time {span * (1 + rate_error):.3f} s for "
                          f"{span:.3f} s of media; bound {max_rate_error:.0%})")
        typical = median(off)
        k = min(range(len(off)), key=off.__getitem__)
        if typical - off[k] > max_ahead:
            faults.append(f"stream {i}: packet {k} sent {(typical - off[k]) * 1e3:.1f} ms ahead of the "
                          f"stream's timing (bound {max_ahead * 1e3:.0f} ms)")
        gap, k = max((b[0] - a[0], j) for j, (a, b) in enumerate(zip(stream, stream[1:])))
        if gap > max_stall + excused:
            faults.append(f"stream {i}: no packet for {gap * 1e3:.0f} ms after packet {k} (bound "
                          f"{max_stall * 1e3:.0f} ms + {excused * 1e3:.0f} ms the sender waited for a CPU)")
    return faults
