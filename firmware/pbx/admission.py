"""Admission control for new calls: when the box runs out of time, refuse the next call cleanly
instead of degrading every call (sans-I/O).

A box that takes one call more than it can carry does not fail that call: the media clock and
the relay fall behind for every call at once (300 recorded calls were fine, 320 were all
choppy). So a new dialog-creating INVITE is answered ``503 Service Unavailable`` with
``Retry-After`` (RFC 3261 §21.5.4) while the box is overloaded; everything inside calls that are
already up (re-INVITE, ACK, BYE, CANCEL) and REGISTER never come here, so those calls keep
their packets. The result is "the first N calls perfect, the rest refused".

Two kinds of refusal:

* **Load.** Measures fed once a second as a :class:`Sample` by the adapter
  (firmware.system.loadprobe): how late a periodic loop callback fires (a relay-only box has
  no media clock running, and RTP relay latency is exactly that lateness) and the share of
  media clock ticks that came a whole frame (20 ms) late: the calls up already suffer. Each has
  a high mark and a low mark (:data:`MEASURES`): ``enter_samples`` samples in a row with one
  above its high mark start an overload, which refuses every new call; it ends only once every
  measure has stayed below its low mark for ``calm_seconds``, so admission does not flap with
  each call that ends.
* **Setup rate.** A token bucket of ``setups_per_second`` (burst: ``burst_seconds`` of it). A
  setup costs a token when its authenticated INVITE is admitted (:meth:`Admission.admit`); the
  first INVITE of a call, before its digest challenge, only looks (:meth:`Admission.check`), so
  past the rate it gets its 503 at once instead of a 407 and a second INVITE, while an
  unauthenticated flood cannot spend the tokens of real callers.
* **CPU.** The third measure, the share of a core the event loop's thread used, governs that
  rate rather than refusing everything: setting calls up is most of what the loop does, and
  a box offered more setups than its core carries should still set up what it can. A second at
  or over ``cpu_high`` lowers the rate to what was admitted in it, scaled to ``cpu_target``
  (``measured * cpu_target / cpu``); each second under ``cpu_target`` gives back ``rate_step``
  of the configured rate. Refusing every call for seconds at a time (what this measure did
  before) admitted 210 of 300 setups a second that the core could carry, and 144 of 600.

* **Media capacity.** The load measures are a second old and need two samples, and calls
  can ramp in at 100 a second (a trunk's burst): by the time a saturated media worker shows, a
  worker's worth of calls more would be in. So each new call is also checked against the media
  worker it would go to: its last reported CPU share, scaled by its calls now (plus this one)
  over the calls it carried on average while measuring (``media``, from firmware.media.workers). A call that would take it past
  ``media_high`` is refused; relaying costs about the same per call, so the projection holds.

Each overload (and each run of setup-rate or media-capacity refusals) is reported once as it
starts and once as it ends (:meth:`Admission.next_event`), never once per refused INVITE.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Union

__all__ = ["Admission", "Limits", "Sample", "Refusal", "OverloadStarted", "OverloadEnded", "MEASURES"]

SETUP_RATE = "setup-rate"
CPU = "cpu"
MEDIA_CAPACITY = "media-capacity"
STALE = "no-measurements"


@dataclass(frozen=True)
class Limits:
    """Thresholds. The high marks are where calls already up start to suffer; the low marks are
    well below, so the load left by the calls admitted so far does not re-admit the next one."""

    # mean lateness of the probe's callbacks over a sample, s: 40 ms is two media frames, past
    # what a phone's jitter buffer hides; a quiet loop measures 0-2 ms (timer rounding)
    lag_high: float = 0.040
    lag_low: float = 0.010
    # share of media clock ticks a whole frame late (the clock then sends frames in bursts)
    clock_high: float = 0.10
    clock_low: float = 0.02
    # share of one core used by the event loop's thread: near all of it is saturation. It
    # governs the setup rate (see "CPU"): lowered to aim at cpu_target from cpu_high, never
    # below rate_floor of the configured rate, raised by rate_step of it each calmer second
    cpu_high: float = 0.95
    cpu_target: float = 0.88
    rate_floor: float = 0.05
    rate_step: float = 0.05
    # a media worker's projected share with one call more (see "Media capacity"): well below
    # cpu_high because a projection from a lighter load is optimistic near saturation. Measured
    # with one worker held to 0.3 of a core (scripts/bench sipp --worker-share 0.3, 500 calls
    # at 100/s): at 0.85 one run of two admitted 408 and fell 3.7 % short; at 0.75, 328-365
    # relayed and 220-246 recorded, all clean. On a whole core it takes 976 of 1200 relayed
    # calls, which the core carries: the price of "the first N perfect".
    media_high: float = 0.75
    enter_samples: int = 2      # samples in a row over a high mark: one GC pause is not overload
    # ... but a loop or media clock this far past its high mark is not a pause: refuse at once,
    # before the calls still ramping in (100 a second from a busy trunk) make every call worse
    at_once: float = 2.0
    calm_seconds: float = 5.0   # every measure under its low mark this long ends an overload
    retry_after: int = 10       # seconds a caller refused for load is told to wait
    # No sample for this long while refusing: the measurements stopped (a probe that failed);
    # admit again rather than refuse for ever on stale evidence.
    stale_after: float = 10.0
    setups_per_second: float = 200.0
    # A full bucket is one second of setups: at the box's specified 200/s, ~250 ms of the
    # reference core (1.25 ms per setup, docs/benchmarks.md), so a burst is answered well
    # inside T1 (500 ms) and no phone retransmits.
    burst_seconds: float = 1.0
    recent_seconds: float = 300.0  # "refused recently" on the dashboard
    # False: the load measures are kept and shown but refuse nothing (an admin who would rather
    # degrade every call, a benchmark that drives the core to 100% on purpose)
    refuse_overload: bool = True


# The load measures as a table: (reason, Sample field, high mark, low mark). The first one
# over its high mark names an overload: media-clock first, the direct evidence of late audio.
MEASURES: tuple[tuple[str, str, str, str], ...] = (
    ("media-clock", "clock_late", "clock_high", "clock_low"),
    ("loop-lag", "lag", "lag_high", "lag_low"),
)


@dataclass(frozen=True)
class Sample:
    """One second of measurements; None where there is nothing to measure (an idle clock)."""

    now: float
    lag: float | None = None          # s, mean lateness of the probe's callbacks
    clock_late: float | None = None   # share of media clock ticks >= one frame late
    cpu: float | None = None          # share of a core: the loop thread's, or a busier worker's
    # the PBX loop thread's own share, what governs the setup rate: a busy media worker is
    # relieved by the per-call projection (new calls go to the least loaded), not by fewer
    # setups for all; None: the same as ``cpu`` (no worker)
    loop_cpu: float | None = None

    def measures(self) -> dict[str, float | None]:
        return {"lag": self.lag, "clock_late": self.clock_late, "cpu": self.cpu}


@dataclass(frozen=True)
class Refusal:
    """What to answer a new INVITE: 503 with ``Retry-After: retry_after`` (RFC 3261 §21.5.4)."""

    reason: str  # media-clock, loop-lag, setup-rate, cpu, media-capacity
    retry_after: int
    status: int = 503

    @property
    def phrase(self) -> str:
        return f"Service Unavailable (overloaded: {self.reason})"


@dataclass(frozen=True)
class OverloadStarted:
    time: float
    reason: str
    measures: dict[str, float | None] = field(default_factory=dict)

    def describe(self) -> str:
        if self.reason == SETUP_RATE:
            return f"refusing new calls: setups beyond {self.measures.get('setups_per_second', 0):g}/s"
        if self.reason == CPU:
            return (f"refusing new calls: setups beyond {self.measures.get('setups_per_second', 0):.0f}/s, "
                    f"{_fmt('cpu', self.measures.get('cpu') or 0.0)}")
        if self.reason == MEDIA_CAPACITY:
            return (f"refusing new calls: a media worker would pass {self.measures.get('cpu', 0) * 100:.0f}%"
                    " of its core")
        shown = ", ".join(_fmt(k, v) for k, v in self.measures.items() if v is not None)
        return f"refusing new calls: {self.reason} ({shown})"


@dataclass(frozen=True)
class OverloadEnded:
    time: float
    reason: str
    seconds: float
    refused: int
    why: str = "calm"  # calm, no-measurements, switched off

    def describe(self) -> str:
        tail = "" if self.why == "calm" else f"; {self.why}"
        return (f"admitting new calls again after {self.seconds:.0f} s of {self.reason}: "
                f"{self.refused} refused{tail}")


Event = Union[OverloadStarted, OverloadEnded]


_LABELS = {"lag": "loop lag {:.0f} ms", "clock_late": "late media clock ticks {:.0f}%",
           "cpu": "loop CPU {:.0f}% of a core"}


def _fmt(name: str, value: float) -> str:
    return _LABELS[name].format(value * (1000 if name == "lag" else 100))


class _Episode:
    __slots__ = ("reason", "since", "refused", "last_refusal")

    def __init__(self, reason: str, since: float) -> None:
        self.reason = reason
        self.since = since
        self.refused = 0
        self.last_refusal = since


class Admission:
    """Decides whether the box takes a new call now. Fed ``now`` and measurements; owns no
    clock, socket or task."""

    def __init__(self, limits: Limits = Limits(), *, now: float = 0.0) -> None:
        self.limits = limits
        self.governed: float | None = None  # the setup rate the loop's CPU allows, if below the setting
        self._tokens = self._burst()
        self._filled_at = now
        self._high_run = 0
        self._calm_since: float | None = None
        self._last: Sample | None = None
        self._admitted = 0  # setups admitted since the last sample
        self.overload: _Episode | None = None      # refusing for load
        self.rate_limited: _Episode | None = None  # refusing setups beyond the rate
        self.media_full: _Episode | None = None    # refusing calls the media workers cannot carry
        self.refused: Counter[str] = Counter()     # per reason, since start
        self._recent: deque[list[float]] = deque()  # [bin start, count], 10 s bins
        self._events: deque[Event] = deque()

    def configure(self, *, setups_per_second: float, refuse_overload: bool = True) -> None:
        """New settings (the bucket keeps its tokens, capped at the new burst)."""
        self.limits = replace(self.limits, setups_per_second=setups_per_second, refuse_overload=refuse_overload)
        if not refuse_overload or (self.governed is not None and self.governed >= setups_per_second):
            self.governed = None
        self._tokens = min(self._tokens, self._burst())

    def _rate(self) -> float:
        """The setups a second admitted now: the setting, or less while the loop's CPU governs."""
        return self.limits.setups_per_second if self.governed is None else self.governed

    def _burst(self) -> float:
        return max(1.0, self._rate() * self.limits.burst_seconds)

    # --- measurements ---------------------------------------------------------------------------

    def observe(self, sample: Sample) -> None:
        """One sample of the load measures (about once a second)."""
        lim = self.limits
        self._govern(sample)
        self._last = sample
        over = self._over(sample, high=True)
        if not lim.refuse_overload:
            self._high_run = 0
            if self.overload is not None:
                self._end_overload(sample.now, "switched off")
        elif self.overload is None:
            self._high_run = self._high_run + 1 if over else 0
            if over is not None and (self._high_run >= lim.enter_samples or self._far_over(sample)):
                self.overload = _Episode(over, sample.now)
                self._calm_since = None
                self._events.append(OverloadStarted(sample.now, over, sample.measures()))
        elif self._over(sample, high=False) is None:
            if self._calm_since is None:
                self._calm_since = sample.now
            if sample.now - self._calm_since >= lim.calm_seconds:
                self._end_overload(sample.now, "calm")
        else:
            self._calm_since = None
        self._expire(sample.now)

    def _govern(self, sample: Sample) -> None:
        """The setup rate from the loop's CPU (see "CPU" above)."""
        lim, last = self.limits, self._last
        admitted, self._admitted = self._admitted, 0
        cpu = sample.cpu if sample.loop_cpu is None else sample.loop_cpu
        if not lim.refuse_overload or cpu is None or last is None or sample.now <= last.now:
            return
        top = lim.setups_per_second
        if cpu >= lim.cpu_high and self.overload is None and self._over(sample, high=True) is None:
            # (while an overload refuses everything, or starts to, nothing is admitted: no
            # measure of the rate; its own marks are what end it)
            allowed = admitted / (sample.now - last.now) * lim.cpu_target / cpu
            if allowed < (top if self.governed is None else self.governed):
                self.governed = max(top * lim.rate_floor, allowed)
                self._tokens = min(self._tokens, self._burst())
        elif self.governed is not None and cpu < lim.cpu_target:
            self.governed += top * lim.rate_step
            if self.governed >= top:
                self.governed = None

    def _over(self, sample: Sample, *, high: bool) -> str | None:
        """The first measure at or over its high mark (``high``), or over its low mark."""
        for reason, name, high_mark, low_mark in MEASURES:
            value = getattr(sample, name)
            mark = getattr(self.limits, high_mark if high else low_mark)
            if value is not None and (value >= mark if high else value > mark):
                return reason
        return None

    def _far_over(self, sample: Sample) -> bool:
        lim = self.limits
        return ((sample.lag is not None and sample.lag >= lim.at_once * lim.lag_high)
                or (sample.clock_late is not None and sample.clock_late >= lim.at_once * lim.clock_high))

    def _episode_over(self, ep: _Episode, now: float) -> None:
        """A run of setup-rate, cpu or media-capacity refusals has ended: report it."""
        self._events.append(OverloadEnded(now, ep.reason, ep.last_refusal - ep.since, ep.refused))

    def _end_overload(self, now: float, why: str) -> None:
        ep = self.overload
        assert ep is not None
        self.overload = None
        self._high_run = 0
        self._calm_since = None
        self._events.append(OverloadEnded(now, ep.reason, now - ep.since, ep.refused, why))

    def _expire(self, now: float) -> None:
        """Ends what time alone ends: a run of setup-rate refusals, stale measurements."""
        lim = self.limits
        for name in ("rate_limited", "media_full"):
            ep = getattr(self, name)
            if ep is not None and now - ep.last_refusal >= lim.calm_seconds:
                setattr(self, name, None)
                self._episode_over(ep, now)
        stale = self._last is None or now - self._last.now > lim.stale_after
        if stale:
            self.governed = None  # no measurements: nothing says the core is still full
        if self.overload is not None and stale:
            self._end_overload(now, STALE)

    # --- decisions ------------------------------------------------------------------------------

    def check(self, now: float, media: float | None = None) -> Refusal | None:
        """For the first INVITE of a call, before its challenge: refused if overloaded, if the
        media worker it would go to would pass its mark (``media``: that worker's projected
        share of its core with this call, None when unknown), or if the bucket is empty;
        spends nothing."""
        return self._decide(now, media, take=False)

    def admit(self, now: float, media: float | None = None) -> Refusal | None:
        """For the authenticated INVITE that creates the call: spends a token when admitted."""
        return self._decide(now, media, take=True)

    def _decide(self, now: float, media: float | None, *, take: bool) -> Refusal | None:
        self._expire(now)
        lim = self.limits
        if self.overload is not None:
            return self._refuse(now, self.overload, lim.retry_after)
        if lim.refuse_overload and media is not None and media >= lim.media_high:
            if self.media_full is None:
                self.media_full = _Episode(MEDIA_CAPACITY, now)
                self._events.append(OverloadStarted(now, MEDIA_CAPACITY, {"cpu": media}))
            return self._refuse(now, self.media_full, lim.retry_after)
        rate = self._rate()
        tokens = min(self._burst(), self._tokens + max(0.0, now - self._filled_at) * rate)
        self._tokens, self._filled_at = tokens, now
        if tokens >= 1.0:
            if take:
                self._tokens = tokens - 1.0
                self._admitted += 1
            return None
        reason = SETUP_RATE if self.governed is None else CPU
        ep = self.rate_limited
        if ep is not None and ep.reason != reason:  # the setting's limit became the core's, or back
            self._episode_over(ep, now)
            self.rate_limited = ep = None
        if ep is None:
            measures: dict[str, float | None] = {"setups_per_second": rate}
            if reason == CPU and self._last is not None:
                last = self._last
                measures["cpu"] = last.cpu if last.loop_cpu is None else last.loop_cpu
            self.rate_limited = _Episode(reason, now)
            self._events.append(OverloadStarted(now, reason, measures))
        # the whole seconds until a token is there again (Retry-After is in whole seconds)
        return self._refuse(now, self.rate_limited, max(1, math.ceil((1.0 - tokens) / rate)))

    def _refuse(self, now: float, episode: _Episode, retry_after: int) -> Refusal:
        episode.refused += 1
        episode.last_refusal = now
        self.refused[episode.reason] += 1
        bin_start = now - now % 10.0
        if self._recent and self._recent[-1][0] == bin_start:
            self._recent[-1][1] += 1
        else:
            self._recent.append([bin_start, 1])
        return Refusal(episode.reason, retry_after)

    def next_event(self) -> Event | None:
        """The next overload start or end to report, or None."""
        return self._events.popleft() if self._events else None

    @property
    def loop_behind(self) -> bool:
        """Whether the PBX's own loop is late or saturated: what it reads from its sockets
        (a phone's answer to OPTIONS among it) may be waiting there."""
        return self.overload is not None or self.governed is not None

    # --- what the health API shows --------------------------------------------------------------

    def refused_recently(self, now: float) -> int:
        horizon = now - self.limits.recent_seconds
        while self._recent and self._recent[0][0] + 10.0 <= horizon:
            self._recent.popleft()
        return int(sum(c for _, c in self._recent))

    def status(self, now: float) -> dict[str, object]:
        self._expire(now)
        ep = self.overload or self.media_full or self.rate_limited
        last = self._last
        return {
            "state": "refusing" if self.overload or self.media_full else "limiting" if self.rate_limited
            else "admitting",
            "reason": ep.reason if ep else None,
            "seconds": round(now - ep.since, 1) if ep else None,  # how long it has lasted
            "refused_recently": self.refused_recently(now),
            "recent_seconds": self.limits.recent_seconds,
            "refused": dict(self.refused),
            "measures": last.measures() if last is not None else {},
            "max_setups_per_second": self.limits.setups_per_second,
            "governed_setups_per_second": None if self.governed is None else round(self.governed, 1),
        }
