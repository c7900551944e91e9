"""Takes the load measurements admission control decides on (firmware.pbx.admission), on the loop.

The thin asyncio side of admission: a callback every ``PROBE_EVERY`` seconds notes how late it
fired (the loop's lag: what every relayed RTP packet waits too, and the only sign of trouble on
a relay-only box whose media clock has no subscribers), and every ``SAMPLE_EVERY`` seconds it
hands one :class:`~firmware.pbx.admission.Sample` to ``on_sample``: the mean lag, the share of
media clock ticks that came a frame late since the last sample, and the CPU share of one core
that the loop's thread used (of what the process's cgroup quota allows: firmware.media.cpushare).

CPU is the loop thread's own (``time.thread_time``), not the process's: the database writer
and the recordings' flushes run in other threads, mostly in C without the GIL, and on a 2-core
box they can add up to a core while the loop itself still has room. A loop starved by other
processes shows as lag instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from firmware.media.cpushare import allowed_share
from firmware.pbx.admission import Sample

log = logging.getLogger(__name__)

PROBE_EVERY = 0.1   # 10 wake-ups a second: negligible, and enough to average out one GC pause
SAMPLE_EVERY = 1.0
MIN_TICKS = 10      # a clock that ticked less than this since the last sample says nothing


class SimulatedClock:
    """A stand-in for the media clock's stats: each read is one more second of 50 ticks,
    ``late_share`` of them a frame late. For tests and drills of the overload path (the box's
    test hook, firmware.system.app), where a real late clock would need a saturated core."""

    def __init__(self, late_share: float) -> None:
        self.late_share = late_share
        self.ticks = 0
        self.late_ticks = 0

    def __call__(self) -> "SimulatedClock":
        self.ticks += 50
        self.late_ticks += round(50 * self.late_share)
        return self


class LoadProbe:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, on_sample: Callable[[Sample], None],
                 clock_stats: Callable[[], Any | None],
                 cpu_time: Callable[[], float] = time.thread_time,
                 workers_load: Callable[[], tuple[float, float] | None] = lambda: None,
                 core_share: Callable[[], float] = allowed_share) -> None:
        """``clock_stats`` returns the media clock's ``ClockStats`` (``ticks``, ``late_ticks``)
        or None while there is no clock; ``cpu_time`` is read on the loop's thread."""
        self.loop = loop
        self.on_sample = on_sample
        self.clock_stats = clock_stats
        self.cpu_time = cpu_time
        self.workers_load = workers_load  # the busiest media worker's (lag, cpu), if any
        self.core_share = core_share  # what a core is for this thread: its cgroup's quota
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._lag_sum = 0.0
        self._lag_n = 0
        self._since = 0.0
        self._cpu0 = 0.0
        self._clock0: tuple[Any, int, int] | None = None

    def start(self) -> None:
        now = self.loop.time()
        self._since, self._cpu0 = now, self.cpu_time()
        self._clock0 = self._read_clock()
        self._due = now + PROBE_EVERY
        self._handle = self.loop.call_at(self._due, self._fire)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _read_clock(self) -> tuple[Any, int, int] | None:
        stats = self.clock_stats()
        return None if stats is None else (stats, stats.ticks, stats.late_ticks)

    def _fire(self) -> None:
        now = self.loop.time()
        self._lag_sum += max(0.0, now - self._due)
        self._lag_n += 1
        if now - self._since >= SAMPLE_EVERY:
            try:
                self._sample(now)
            except Exception:
                # A broken measurement must not stop the probe: admission then ends any
                # overload on stale evidence (Limits.stale_after) instead of refusing for ever.
                log.exception("load probe: sampling failed")
        # from now, not from the missed deadline: after a stall, one late probe, not a burst
        self._due = now + PROBE_EVERY
        self._handle = self.loop.call_at(self._due, self._fire)

    def _sample(self, now: float) -> None:
        cpu = self.cpu_time()
        elapsed = now - self._since
        clock = self._read_clock()
        late = None
        before = self._clock0
        # only a delta of the same stats object counts (the test hook swaps the source)
        if clock is not None and before is not None and clock[0] is before[0]:
            ticks = clock[1] - before[1]
            if ticks >= MIN_TICKS:
                late = (clock[2] - before[2]) / ticks
        lag = self._lag_sum / self._lag_n if self._lag_n else None
        own = (cpu - self._cpu0) / elapsed / self.core_share() if elapsed > 0 else None
        share = own
        workers = self.workers_load()
        if workers is not None:
            # the busiest of the loops that carry calls decides: this one or a media worker's
            lag = max(lag or 0.0, workers[0])
            share = max(own or 0.0, workers[1])
        sample = Sample(now=now, lag=lag, clock_late=late, cpu=share, loop_cpu=own)
        self._since, self._cpu0, self._clock0 = now, cpu, clock
        self._lag_sum, self._lag_n = 0.0, 0
        self.on_sample(sample)
