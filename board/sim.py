"""The simulated HAT: FXS ports with scriptable phones, FXO ports on a simulated exchange.

Used by the tests, the demo and the guided line test's own tests. It is a driver like DAHDI
(``board.driver.Driver``): its ports take the same commands and report the same events, with
the same 20 ms G.711 audio hooks (``on_audio(port, frame)`` / ``write_audio(port, frame)``).

Time. Everything runs on a ``SimClock``: ``SimHat.advance(seconds)`` moves it 20 ms at a time
(tests, no sleeps), ``SimHat.start(loop)`` ticks it from the asyncio loop in real time (the
demo). Scripted actions happen at their exact times between ticks (a dial-pulse break is
60 ms, three ticks: rounding it to ticks would turn jitter into steps), and events carry those
times as ``now``.

Each 20 ms tick: timers due in the tick fire in time order; then for every port the box's
frame goes through G.711 to the phone/exchange, which hears it, and the line's frame goes
through G.711 to the box (``on_audio``).

* ``SimPhone`` (FXS): ``lift()``, ``hangup()``, ``flash()``, ``dial(digits)`` (DTMF audio),
  ``dial_pulse(digits)`` (timed loop breaks with make/break jitter), ``say(samples)``. It hears:
  ringing (``ring_cadence()``: the on/off durations seen), caller ID decoded from the on-hook
  audio (Bell 202, V.23, NTT and DTMF receivers all listen), and off hook the call-progress
  tones (``tones``, named with ``board.cadence``), DTMF digits and the raw audio. In Japan it
  is a Number Display phone (``number_display``): a first ring burst as short as CAR makes it
  close the loop (the primary response), take the FSK and go back on hook, as NTT specifies;
  a person lifting the handset meanwhile keeps the loop closed.
* ``SimCentralOffice`` (FXO): ``ring(number, name)`` rings with the region's cadence and sends
  caller ID in the region's format and timing (``board.regions``; in Japan NTT's handshake: CAR
  until the box answers it, the FSK while the box is off hook, then ringing once it is back on
  hook, or ringing without caller ID when it never answers CAR); when the box seizes it gives
  dial tone, collects DTMF, rings the far end (ringback) and answers (optionally reversing
  polarity); ``hangup(tone=...)`` clears with busy/congestion, polarity reversal and/or a
  loop-current drop; the far party plays audio (``far_play``, ``far_dtmf``) and records what
  it hears (``far_heard``, ``far_digits``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from board import port
from board.cadence import CallProgressDetector
from board.callerid import (CallerId, CallerIdReceiver, CallerIdSender, REGIONS as CID_REGIONS,
                           fsk_standard)
from board.driver import FRAME, Driver, DriverPort, decode, encode
from board.regions import (CAR_CADENCE, CAR_MAX_BURST, CAR_TIMEOUT, CID_AFTER_FIRST_RING,
                           CID_CAR, CID_DTMF_BEFORE_RING, CID_POLARITY_REVERSAL,
                           region as region_profile)
from firmware.media.dtmf import DtmfDetector, digit_freqs
from firmware.media.tones import TONES, ToneGenerator, ToneSpec, dbm0_to_amplitude

__all__ = ["SimClock", "SimHat", "SimPhone", "SimCentralOffice", "CoConfig", "SimError"]

TICK = 0.02
ID_WAIT = 3.0       # a Number Display phone off hook for its caller ID gives up after this (guess)


class SimError(RuntimeError):
    """A script asked the simulation for something that cannot happen now (and nothing changed)."""


# --- time ---------------------------------------------------------------------------------------

class _Timer:
    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple) -> None:
        self.when, self.callback, self.args, self.cancelled = when, callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


class SimClock:
    """Virtual time with ``time()``/``call_at()``/``call_later()`` like an asyncio loop."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> _Timer:
        t = _Timer(max(when, self.now), callback, args)
        heapq.heappush(self._heap, (t.when, next(self._seq), t))
        return t

    def call_later(self, delay: float, callback: Callable[..., object], *args: object) -> _Timer:
        return self.call_at(self.now + delay, callback, *args)

    def run_until(self, t: float) -> None:
        """Fire every timer due up to ``t`` in time order, each at its own time."""
        heap = self._heap
        while heap and heap[0][0] <= t:
            when, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            self.now = max(self.now, when)
            timer.callback(*timer.args)
        self.now = max(self.now, t)


def _tone_samples(freqs: tuple[float, ...], level: float, on_ms: int, off_ms: int) -> array:
    spec = ToneSpec(freqs, (level,) * len(freqs), (on_ms, off_ms), repeat=False)
    return ToneGenerator(spec).next_frame((on_ms + off_ms) * 8)


def _dtmf_samples(digits: str, on_ms: int = 80, off_ms: int = 80, level: float = -7.0) -> array:
    out = array("h")
    for d in digits:
        out.extend(_tone_samples(digit_freqs(d), level, on_ms, off_ms))
    return out


def tone_seconds(samples: array, freq: float, last: float = 10.0) -> float:
    """Seconds of the last ``last`` seconds of ``samples`` in which ``freq`` dominates: what a
    person would call hearing that tone (a test script's ear on a simulated line)."""
    import numpy as np

    tail = np.asarray(samples[-int(last * 8000):], dtype=np.float64)
    frames = tail[: len(tail) // FRAME * FRAME].reshape(-1, FRAME)
    if not len(frames):
        return 0.0
    probe = np.exp(-2j * np.pi * freq / 8000 * np.arange(FRAME))
    power = np.abs(frames @ probe) ** 2  # |X(f)|^2 per 20 ms frame
    energy = (frames * frames).sum(axis=1)
    # a pure tone puts energy * FRAME / 2 there; speech, noise or another tone far less
    heard = (energy > FRAME * 30 ** 2) & (power > 0.25 * energy * FRAME / 2)
    return int(heard.sum()) * FRAME / 8000


def _steady(freq: str) -> ToneSpec | None:
    if freq == "off":
        return None
    try:
        f = float(freq)
    except ValueError:
        raise SimError(f"a tone is a frequency in Hz or off, not {freq!r}") from None
    if not 50 <= f <= 3800:
        raise SimError(f"{f:g} Hz is outside the telephone band (50-3800)")
    return ToneSpec((f,), (-13.0,))


class _Talker:
    """A queue of linear audio a simulated party sends, 20 ms at a time."""

    def __init__(self) -> None:
        self.queue = array("h")
        self.tone: ToneGenerator | None = None

    def next(self) -> array:
        if self.queue:
            out = self.queue[:FRAME]
            del self.queue[:FRAME]
            if len(out) < FRAME:
                out.extend(array("h", bytes(2 * (FRAME - len(out)))))
            return out
        if self.tone is not None:
            return self.tone.next_frame(FRAME)
        return array("h", bytes(2 * FRAME))


# --- the phone on an FXS port -------------------------------------------------------------------

@dataclass
class RingPeriod:
    on: bool
    start: float
    end: float | None = None


class SimPhone:
    """A scriptable analog phone on one FXS port (see the module docstring)."""

    def __init__(self, hat: "SimHat", p: DriverPort, rng: random.Random) -> None:
        self.hat, self.port, self.rng = hat, p, rng
        self.region = p.region
        self.off_hook = False
        self.polarity_reversed = False
        self.polarity_log: list[tuple[float, bool]] = []
        self.mwi = False
        self.ringing = False                  # ring voltage on the line right now
        self.ring_log: list[RingPeriod] = []
        self.caller_ids: list[tuple[float, str, CallerId]] = []   # (time, standard, cid)
        self.tones: list[str] = []            # call-progress tones heard since the last lift
        self.digits = ""                      # DTMF heard since the last lift
        self.heard = array("h")               # everything heard off hook (last minute)
        self._talk = _Talker()
        self._cadence: tuple[float, ...] = ()
        self._ring_timer = None
        self._receivers: list[CallerIdReceiver] = []
        self._burst = array("h")
        self._dtmf: DtmfDetector | None = None
        self._progress: CallProgressDetector | None = None
        # jp: an NTT Number Display phone answers CAR for its caller ID (a test may switch it
        # off: a plain phone, which the exchange must ring without caller ID)
        self.number_display = self.region.cid_start == CID_CAR
        self._id_phase = False                # the loop is closed for the caller ID
        self._id_timer = None
        self._on_hook_listen()

    # --- scripting -----------------------------------------------------------------------------

    def lift(self) -> None:
        if self.off_hook:
            raise SimError(f"{self.port.name}: the phone is already off hook")
        self._hook(True)

    def hangup(self) -> None:
        if not self.off_hook:
            raise SimError(f"{self.port.name}: the phone is already on hook")
        self._hook(False)

    def flash(self, ms: float | None = None) -> None:
        """A timed break (default: the middle of the region's flash window)."""
        if not self.off_hook:
            raise SimError(f"{self.port.name}: flash needs the phone off hook")
        ms = ms if ms is not None else 1000 * (self.region.flash_min + self.region.flash_max) / 2
        self._hook(False)
        self.hat.clock.call_later(ms / 1000, self._hook, True)

    def dial(self, digits: str, on_ms: int = 80, off_ms: int = 80) -> None:
        """DTMF digits as audio into the port (after what is already queued)."""
        if not self.off_hook:
            raise SimError(f"{self.port.name}: dialling needs the phone off hook")
        samples = _dtmf_samples(digits, on_ms, off_ms)   # raises on a non-DTMF character first
        self._talk.queue.extend(samples)

    def dial_pulse(self, digits: str, *, pps: float = 10.0, break_ratio: float = 0.6,
                   jitter: float = 0.1, interdigit: float = 0.7) -> float:
        """Rotary dialling: ``digit`` breaks per digit (0 = 10) at ``pps``, each break and make
        off by up to +-``jitter``; returns the time the last digit ends."""
        if not self.off_hook:
            raise SimError(f"{self.port.name}: dialling needs the phone off hook")
        if not digits.isdigit():
            raise SimError(f"pulse dialling sends digits only, not {digits!r}")
        period = 1.0 / pps
        t = self.hat.clock.now + 0.2
        for d in digits:
            for _ in range(int(d) or 10):
                brk = period * break_ratio * self.rng.uniform(1 - jitter, 1 + jitter)
                make = period * (1 - break_ratio) * self.rng.uniform(1 - jitter, 1 + jitter)
                self.hat.clock.call_at(t, self._hook, False)
                self.hat.clock.call_at(t + brk, self._hook, True)
                t += brk + make
            t += interdigit
        return t

    def say(self, samples) -> None:
        """Linear audio the phone sends once off hook."""
        self._talk.queue.extend(array("h", samples))

    def play(self, spec: ToneSpec | None) -> None:
        """A steady tone the phone sends until ``play(None)`` (a talking party, for tests)."""
        self._talk.tone = ToneGenerator(spec) if spec is not None else None

    # --- what it saw ---------------------------------------------------------------------------

    def ring_cadence(self) -> list[int]:
        """Completed ring on/off periods in ms, from the first ring."""
        return [round((p.end - p.start) * 1000) for p in self.ring_log if p.end is not None]

    @property
    def caller_id(self) -> CallerId | None:
        return self.caller_ids[-1][2] if self.caller_ids else None

    def status(self) -> dict:
        cid = self.caller_ids[-1] if self.caller_ids else None
        return {"port": self.port.name, "hook": "off" if self.off_hook else "on",
                "ringing": self.ringing, "ring_cadence_ms": self.ring_cadence()[:8],
                "polarity": "reversed" if self.polarity_reversed else "normal", "mwi": self.mwi,
                "caller_id": repr(self.caller_id) if self.caller_id else None,
                "cid": {"number": cid[2].number, "name": cid[2].name, "standard": cid[1],
                        "at": round(cid[0], 3)} if cid else None,
                "tones": list(self.tones), "digits": self.digits}

    # --- the driver's side ---------------------------------------------------------------------

    def _hook(self, off: bool) -> None:
        if off == self.off_hook:
            return
        self.off_hook = off
        now = self.hat.clock.now
        if off:
            self._ring_trip()
            # what a test asks about is this pick-up: a dial tone from the last one says nothing
            self.tones, self.digits = [], ""
            self._receivers = []
            self._dtmf = DtmfDetector()
            self._progress = CallProgressDetector(self.region.tone_zone,
                                                  ("dial", "busy", "congestion", "ringback"))
            if self._id_phase:
                # the handset comes up while the caller-ID circuit holds the loop: the loop
                # stays closed (no new off-hook), and it is not opened when the ID is done
                self._id_phase = False
                if self._id_timer is not None:
                    self._id_timer.cancel()
                    self._id_timer = None
                return
            self.port.emit(port.OffHook(), now)
        else:
            self._talk.queue = array("h")
            self._on_hook_listen()
            self.port.emit(port.OnHook(), now)

    def _on_hook_listen(self) -> None:
        self._dtmf = self._progress = None
        self._receivers = [CallerIdReceiver(s) for s in ("bell", "etsi", "ntt", "dtmf")]

    def _primary_response(self) -> None:
        """NTT Number Display: CAR heard; close the loop so the exchange sends the caller ID."""
        self.ring_stop()   # ring trip
        self._id_phase = True
        self._id_timer = self.hat.clock.call_later(ID_WAIT, self._id_end)
        self.port.emit(port.OffHook(), self.hat.clock.now)

    def _id_end(self) -> None:
        """Caller ID received (or waited for long enough): open the loop again, which tells the
        exchange to ring."""
        if not self._id_phase:
            return
        self._id_phase = False
        if self._id_timer is not None:
            self._id_timer.cancel()
            self._id_timer = None
        self.port.emit(port.OnHook(), self.hat.clock.now)

    def ring_start(self, cadence: tuple[float, ...]) -> None:
        if not cadence or len(cadence) % 2 or any(d <= 0 for d in cadence):
            raise SimError(f"a ring cadence is on/off pairs of positive seconds, not {cadence!r}")
        if self.off_hook or self._id_phase:
            return       # ring trip: a SLIC does not ring an off-hook phone
        self.ring_stop()
        self._cadence = cadence
        self._ring_step(0)

    def _ring_step(self, i: int) -> None:
        now = self.hat.clock.now
        on = i % 2 == 0
        last = self.ring_log[-1] if self.ring_log else None
        if not on and self.number_display and not self.off_hook and last is not None \
                and last.on and last.end is None and now - last.start <= CAR_MAX_BURST:
            self._primary_response()   # a burst as short as CAR: it asks for the caller ID
            return
        if self.ring_log and self.ring_log[-1].end is None:
            self.ring_log[-1].end = now
        self.ring_log.append(RingPeriod(on, now))
        self.ringing = on
        nxt = (i + 1) % len(self._cadence)
        self._ring_timer = self.hat.clock.call_later(self._cadence[i], self._ring_step, nxt)

    def ring_stop(self) -> None:
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None
            if self.ring_log and self.ring_log[-1].end is None:
                self.ring_log[-1].end = self.hat.clock.now
        self.ringing = False

    def _ring_trip(self) -> None:
        if self._ring_timer is not None:
            self.ring_stop()

    def set_polarity(self, reversed_: bool) -> None:
        if reversed_ != self.polarity_reversed:
            self.polarity_reversed = reversed_
            self.polarity_log.append((self.hat.clock.now, reversed_))

    def hear(self, samples: array) -> None:
        now = self.hat.clock.now
        if not self.off_hook:
            if not any(samples):
                self._burst = array("h")
                return
            self._burst.extend(samples)
            for r in self._receivers:
                cid = r.feed(samples)
                if cid is None:
                    continue
                # both FSK receivers decode either standard: say which one the burst was
                # (NTT's framing names itself: no other receiver takes its messages)
                std = r.standard if r.standard in ("dtmf", "ntt") else fsk_standard(self._burst)
                if not (self.caller_ids and self.caller_ids[-1][2] == cid
                        and now - self.caller_ids[-1][0] < 1.0):
                    self.caller_ids.append((now, std, cid))
                if self._id_phase:   # got it: back on hook (from the loop, not mid-feed)
                    self.hat.clock.call_later(0.0, self._id_end)
            return
        self.heard.extend(samples)
        if len(self.heard) > 8000 * 60:
            del self.heard[:len(self.heard) - 8000 * 60]
        for d in self._dtmf.feed(samples):
            self.digits += d.digit
        for t in self._progress.feed(samples):
            self.tones.append(t.name)

    def next_linear(self) -> array:
        if not self.off_hook:
            return array("h", bytes(2 * FRAME))
        return self._talk.next()


# --- the exchange on an FXO port ----------------------------------------------------------------

@dataclass
class CoConfig:
    """How the simulated exchange behaves (None: the region's default)."""

    answer_polarity: bool = False          # reverse battery when the far end answers
    hangup_polarity: bool | None = None    # reverse when the far end clears
    loop_drop_ms: int | None = None        # open the loop this long when the far end clears
    hangup_tone: str | None = "busy"       # what it plays after the far end clears
    tone_delay: float = 0.5                # clear -> tone
    answer_after: float | None = 4.0       # the far end answers after this much ringback
    digit_timeout: float = 2.0             # no digit this long ends dialling
    busy_numbers: frozenset[str] = frozenset()
    unobtainable: frozenset[str] = frozenset()
    noise_dbm0: float | None = None        # line noise toward the box
    level_db: float = 0.0                  # line loss (negative) or gain toward the box
    cid_delay: float = 0.5                 # after-first-ring: ring end -> caller ID
    cid_after_reversal: float = 0.25       # polarity reversal -> caller ID
    ring_after_cid: float = 0.4            # caller ID end -> first ring
    number_display: bool = True            # jp: the line has NTT Number Display (CAR first)
    car_timeout: float = CAR_TIMEOUT       # jp: CAR unanswered this long: ring without caller ID
    cid_after_answer: float = 0.2          # jp: primary response -> FSK (guess)
    ring_after_release: float = 0.2        # jp: the box back on hook -> first ring (guess)
    id_release_timeout: float = 3.0        # jp: FSK end -> box still off hook: answered (guess)


class SimCentralOffice:
    """A simulated exchange on one FXO port (see the module docstring)."""

    def __init__(self, hat: "SimHat", p: DriverPort, config: CoConfig, rng: random.Random) -> None:
        self.hat, self.port, self.config, self.rng = hat, p, config, rng
        self.region = p.region
        self.state = "idle"
        self.box_off_hook = False
        self.polarity_reversed = False
        self.dialed = ""
        self.calls: list[str] = []             # numbers the box dialled
        self.far_heard = array("h")
        self.far_digits = ""
        self.far_hung_up_by_box = False
        self.log: list[tuple[float, str]] = []  # what the exchange did, for reports and tests
        self._far = _Talker()
        self._out = array("h")                 # caller ID / exchange signalling toward the box
        self._tone: ToneGenerator | None = None
        self._ringer_on = False
        self._cadence: tuple[float, ...] = ()
        self._timers: list = []
        self._detector: DtmfDetector | None = None
        self._far_dtmf: DtmfDetector | None = None
        self._digit_timer = None
        # jp: "car" while CAR rings for the primary response, "id" while the box is off hook
        # for the caller ID (``_cid`` is what it gets)
        self._nd: str | None = None
        self._cid: CallerId | None = None
        hp = config.hangup_polarity
        self.hangup_polarity = self.region.disconnect_polarity if hp is None else hp

    # --- scripting -----------------------------------------------------------------------------

    def ring(self, number: str | None = None, name: str | None = None, *,
             absence: str | None = None) -> None:
        """An inbound call: caller ID in the region's format and timing, then rings until the
        box answers or ``cancel()``."""
        if self.state != "idle" or self.box_off_hook:
            raise SimError(f"{self.port.name}: the line is in use ({self.state})")
        cid = CallerId(number=number, name=name,
                       absence=absence if absence else (None if number else "O"))
        self.state = "alerting"
        self._log("ring")
        reg, c = self.region, self.config
        start = reg.cid_start if reg.cid_standard and reg.code in CID_REGIONS else None
        if start is None:
            self._ring_from(0.0)
        elif start == CID_AFTER_FIRST_RING:
            self._ring_from(0.0)
            first = sum(reg.ring_cadence[:-1])
            self._after(first + c.cid_delay, self._send_cid, cid)
        elif start == CID_POLARITY_REVERSAL:
            self._reverse()
            dur = self._cid_seconds(cid)
            self._after(c.cid_after_reversal, self._send_cid, cid)
            self._ring_from(c.cid_after_reversal + dur + c.ring_after_cid)
        elif start == CID_DTMF_BEFORE_RING:
            dur = self._cid_seconds(cid)
            self._send_cid(cid)
            self._ring_from(dur + c.ring_after_cid)
        elif start == CID_CAR and c.number_display:
            self._nd, self._cid = "car", cid
            self._log("car")
            self._ring_from(0.0, CAR_CADENCE)
            self._after(c.car_timeout, self._car_unanswered)
        else:   # jp without Number Display: plain ringing
            self._ring_from(0.0)

    def cancel(self) -> None:
        """The caller gives up before the box answers."""
        if self.state != "alerting":
            raise SimError(f"{self.port.name}: nothing is ringing")
        self._stop_ringing()
        self._restore_polarity()
        self.state = "idle"
        self._nd = self._cid = None
        self._log("cancel")

    def hangup(self, tone: str | None = "default", *, polarity: bool | None = None,
               loop_drop_ms: int | None = -1) -> None:
        """The far end clears: reversal and/or loop drop as configured (or given), then the
        clearing tone until the box goes on hook."""
        if self.state not in ("connected", "ringback"):
            raise SimError(f"{self.port.name}: no call to clear ({self.state})")
        c = self.config
        tone = c.hangup_tone if tone == "default" else tone
        polarity = self.hangup_polarity if polarity is None else polarity
        drop = c.loop_drop_ms if loop_drop_ms == -1 else loop_drop_ms
        self._cancel_timers()
        self._far = _Talker()
        self._tone = None
        self.state = "cleared"
        self._log("far-end clear")
        now = self.hat.clock.now
        if polarity:
            self._reverse()
        if drop:
            self.port.emit(port.LoopCurrentDrop(int(drop)), now)
        if tone:
            self._after(c.tone_delay, self._play, tone)

    def far_play(self, spec: ToneSpec | None) -> None:
        """The far party sends a steady tone (None: silence)."""
        self._far.tone = ToneGenerator(spec) if spec is not None else None

    def far_say(self, samples) -> None:
        self._far.queue.extend(array("h", samples))

    def far_dtmf(self, digits: str) -> None:
        self._far.queue.extend(_dtmf_samples(digits))

    def status(self) -> dict:
        return {"port": self.port.name, "region": self.region.code, "state": self.state,
                "box_hook": "off" if self.box_off_hook else "on",
                "polarity": "reversed" if self.polarity_reversed else "normal",
                "calls": list(self.calls), "far_digits": self.far_digits}

    # --- internals -----------------------------------------------------------------------------

    def _log(self, what: str) -> None:
        self.log.append((round(self.hat.clock.now, 3), what))

    def _after(self, delay: float, fn: Callable[..., object], *args: object) -> None:
        self._timers.append(self.hat.clock.call_later(delay, fn, *args))

    def _cancel_timers(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()

    def _cid_seconds(self, cid: CallerId) -> float:
        return len(CallerIdSender(region=self.region.code).samples(cid)) / 8000

    def _send_cid(self, cid: CallerId) -> None:
        # on hook, except NTT's, which goes to a terminal off hook after answering CAR
        if self.state == "alerting" and self.box_off_hook == (self._nd == "id"):
            samples = CallerIdSender(region=self.region.code).samples(cid)
            self._out.extend(samples)
            self._log("caller-id")
            if self._nd == "id":
                self._after(len(samples) / 8000 + self.config.id_release_timeout,
                            self._id_not_released)

    def _ring_from(self, delay: float, cadence: tuple[float, ...] | None = None) -> None:
        self._cadence = cadence or self.region.ring_cadence
        self._after(delay, self._ring_step, 0)

    def _car_unanswered(self) -> None:
        """No primary response: the line's terminal has no Number Display; ring it plainly."""
        if self.state == "alerting" and self._nd == "car":
            self._stop_ringing()
            self._nd = None
            self._log("car unanswered")
            self._ring_from(0.0)

    def _id_not_released(self) -> None:
        """Still off hook well after the caller ID: someone answered during it."""
        if self.state == "alerting" and self._nd == "id" and self.box_off_hook:
            self._nd = None
            self._answered()

    def _ring_step(self, i: int) -> None:
        if self.state != "alerting":
            return
        on = i % 2 == 0
        now = self.hat.clock.now
        self._ringer_on = on
        self.port.emit(port.RingStart() if on else port.RingStop(), now)
        self._after(self._cadence[i], self._ring_step, (i + 1) % len(self._cadence))

    def _stop_ringing(self) -> None:
        self._cancel_timers()
        del self._out[:]
        if self._ringer_on:
            self._ringer_on = False
            self.port.emit(port.RingStop(), self.hat.clock.now)

    def _reverse(self) -> None:
        self.polarity_reversed = not self.polarity_reversed
        self._log("polarity " + ("reversed" if self.polarity_reversed else "normal"))
        self.port.emit(port.PolarityReversal(), self.hat.clock.now)

    def _restore_polarity(self) -> None:
        if self.polarity_reversed:
            self._reverse()

    def _play(self, name: str | None) -> None:
        self._tone = ToneGenerator(TONES[self.region.tone_zone][name]) if name else None

    # the box's hook (port commands)

    def box_seize(self) -> None:
        if self.box_off_hook:
            return
        self.box_off_hook = True
        if self.state == "alerting" and self._nd == "car":
            # NTT: the primary response; the caller ID follows, the call is not answered
            self._stop_ringing()
            self._nd = "id"
            self._log("primary response")
            self._after(self.config.cid_after_answer, self._send_cid, self._cid)
        elif self.state == "alerting":
            self._answered()
        elif self.state == "idle":
            self.state = "dialtone"
            self.dialed = ""
            self._detector = DtmfDetector()
            self._play("dial")
            self._log("box seized")

    def _answered(self) -> None:
        self._stop_ringing()
        self.state = "connected"
        self._far_dtmf = DtmfDetector()
        self._log("box answered")

    def box_release(self) -> None:
        if not self.box_off_hook:
            return
        self.box_off_hook = False
        if self.state == "alerting" and self._nd == "id":
            # NTT: back on hook = caller ID received; now the ordinary ringing
            self._stop_ringing()
            self._nd = None
            self._log("caller-id received")
            self._ring_from(self.config.ring_after_release)
            return
        if self.state == "connected":
            self.far_hung_up_by_box = True
        self._cancel_timers()
        if self._digit_timer is not None:
            self._digit_timer.cancel()
        self._tone = None
        self._far = _Talker()
        self.state = "idle"
        self._nd = self._cid = None
        self._log("box released")
        self._restore_polarity()

    def _digit(self, d: str) -> None:
        if self.state == "dialtone":
            self._tone = None
            self.state = "dialing"
        self.dialed += d
        if self._digit_timer is not None:
            self._digit_timer.cancel()
        self._digit_timer = self.hat.clock.call_later(self.config.digit_timeout, self._route)

    def _route(self) -> None:
        self._digit_timer = None
        if self.state != "dialing":
            return
        number = self.dialed
        self.calls.append(number)
        self._log(f"dialled {number}")
        c = self.config
        if number in c.busy_numbers:
            self.state = "cleared"
            self._play("busy")
        elif number in c.unobtainable:
            self.state = "cleared"
            self._play("congestion")
        else:
            self.state = "ringback"
            self._play("ringback")
            if c.answer_after is not None:
                self._after(c.answer_after, self._far_answer)

    def _far_answer(self) -> None:
        if self.state != "ringback":
            return
        self._tone = None
        self.state = "connected"
        self._far_dtmf = DtmfDetector()
        self._log("far end answered")
        if self.config.answer_polarity:
            self._reverse()

    # audio

    def hear(self, samples: array) -> None:
        if not self.box_off_hook:
            return
        if self.state in ("dialtone", "dialing") and self._detector is not None:
            for d in self._detector.feed(samples):
                self._digit(d.digit)
        elif self.state == "connected":
            self.far_heard.extend(samples)
            if len(self.far_heard) > 8000 * 60:
                del self.far_heard[:len(self.far_heard) - 8000 * 60]
            for d in self._far_dtmf.feed(samples):
                self.far_digits += d.digit

    def next_linear(self) -> array:
        if self._out:
            out = self._out[:FRAME]
            del self._out[:FRAME]
            if len(out) < FRAME:
                out.extend(array("h", bytes(2 * (FRAME - len(out)))))
        elif self._tone is not None:
            out = self._tone.next_frame(FRAME)
        elif self.state == "connected":
            out = self._far.next()
        else:
            out = array("h", bytes(2 * FRAME))
        if self.config.level_db:
            g = 10 ** (self.config.level_db / 20)
            out = array("h", (max(-32768, min(32767, round(v * g))) for v in out))
        n = self.config.noise_dbm0
        if n is not None:
            sd = dbm0_to_amplitude(n) / math.sqrt(2)
            g = self.rng.gauss
            out = array("h", (max(-32768, min(32767, round(v + g(0.0, sd)))) for v in out))
        return out


# --- the HAT ------------------------------------------------------------------------------------

class SimHat(Driver):
    """N FXS ports with phones and M FXO ports on simulated exchanges (module docstring).

    ``fxo_regions`` gives each FXO line its own country (default: ``region``);
    ``co_config`` the exchanges' behaviour.
    """

    def __init__(self, fxs: int = 2, fxo: int = 1, region: str = "us", *,
                 fxo_regions: list[str] | None = None, co_config: CoConfig | None = None,
                 clock: SimClock | None = None, seed: int = 0) -> None:
        super().__init__()
        if fxs < 0 or fxo < 0:
            raise ValueError("port counts must be >= 0")
        if fxo_regions is not None and len(fxo_regions) != fxo:
            raise ValueError(f"{fxo} FXO ports but {len(fxo_regions)} regions")
        self.region = region_profile(region)
        self.clock = clock or SimClock()
        self.phones: dict[str, SimPhone] = {}
        self.offices: dict[str, SimCentralOffice] = {}
        self._peers: dict[str, SimPhone | SimCentralOffice] = {}
        rng = random.Random(seed)
        for i in range(fxs):
            p = DriverPort(self, f"fxs{i + 1}", port.PortKind.FXS, self.region,
                           port.Capabilities(port.PortKind.FXS, mwi=True))
            self.ports.append(p)
            self.phones[p.name] = self._peers[p.name] = SimPhone(self, p, random.Random(rng.random()))
        for i in range(fxo):
            reg = region_profile(fxo_regions[i]) if fxo_regions else self.region
            p = DriverPort(self, f"fxo{i + 1}", port.PortKind.FXO, reg,
                           port.Capabilities(port.PortKind.FXO, caller_id=True))
            self.ports.append(p)
            co = SimCentralOffice(self, p, co_config or CoConfig(), random.Random(rng.random()))
            self.offices[p.name] = self._peers[p.name] = co
        self._task: asyncio.Task | None = None

    @property
    def now(self) -> float:
        return self.clock.now

    def phone(self, name: str) -> SimPhone:
        try:
            return self.phones[name]
        except KeyError:
            raise KeyError(f"no FXS port {name!r}; FXS ports: {', '.join(self.phones)}") from None

    def co(self, name: str) -> SimCentralOffice:
        try:
            return self.offices[name]
        except KeyError:
            raise KeyError(f"no FXO port {name!r}; FXO ports: {', '.join(self.offices)}") from None

    # --- time ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """One 20 ms step: timers, then every port's audio both ways."""
        self.clock.run_until(self.clock.now + TICK)
        for p in self.ports:
            peer = self._peers[p.name]
            # through G.711 both ways, as on a real HAT's PCM bus
            peer.hear(decode(p.law, p.audio.next_frame()))
            frame = encode(p.law, peer.next_linear())
            if self.on_audio is not None:
                self.on_audio(p, frame)

    def advance(self, seconds: float) -> None:
        for _ in range(max(0, round(seconds / TICK))):
            self.tick()

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> float:
        """Tick until ``predicate()`` holds; returns the time. SimError after ``timeout``."""
        end = self.clock.now + timeout
        while not predicate():
            if self.clock.now >= end:
                raise SimError(f"not within {timeout} s of simulated time")
            self.tick()
        return self.clock.now

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Tick in real time from the loop (absolute deadlines, so it does not drift)."""
        if self._task is not None:
            return
        self._task = (loop or asyncio.get_running_loop()).create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        t0, n = loop.time(), 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * TICK - loop.time()))
            self.tick()

    # --- driving it from outside (the demo's ``linebox sim ...``) -----------------------------

    def command(self, argv: list[str]) -> dict:
        """One control command, as the CLI passes it; returns the port's status afterwards.

        ``phone PORT lift|hangup|flash|status``, ``phone PORT dial DIGITS``,
        ``phone PORT pulse DIGITS``, ``co PORT ring [--cid NUMBER] [--name NAME]``,
        ``co PORT hangup [--busy|--congestion|--silent]``, ``co PORT cancel|status``, ``ports``;
        ``phone|co PORT tone HZ|off`` (the phone's user or the far party sends a steady tone) and
        ``phone|co PORT heard HZ`` (seconds of the last ten in which they heard that tone).
        Raises ``SimError`` (nothing done) for anything else.
        """
        if argv == ["ports"]:
            return {"ports": [{"port": p.name, "kind": p.kind.value, "region": p.region.code,
                               "law": p.law} for p in self.ports]}
        if len(argv) < 3 or argv[0] not in ("phone", "co"):
            raise SimError("usage: phone PORT ACTION [ARGS] | co PORT ACTION [ARGS] | ports")
        what, name, action, args = argv[0], argv[1], argv[2], argv[3:]
        try:
            peer = self.phone(name) if what == "phone" else self.co(name)
        except KeyError as e:
            raise SimError(str(e.args[0])) from None
        if isinstance(peer, SimPhone):
            simple = {"lift": peer.lift, "hangup": peer.hangup, "flash": peer.flash,
                      "status": lambda: None}
            if action in simple and not args:
                simple[action]()
            elif action == "tone" and len(args) == 1:
                peer._talk.tone = ToneGenerator(spec) if (spec := _steady(args[0])) is not None else None
            elif action == "heard" and len(args) == 1:
                return {**peer.status(), "heard": {"freq": float(_steady(args[0]).freqs[0]),
                                                   "seconds": tone_seconds(peer.heard, float(args[0]))}}
            elif action in ("dial", "pulse") and len(args) == 1:
                digits = args[0]
                ok = "0123456789*#ABCD" if action == "dial" else "0123456789"
                if not digits or any(c not in ok for c in digits.upper()):
                    raise SimError(f"cannot {action} {digits!r}")
                (peer.dial if action == "dial" else peer.dial_pulse)(digits)
            else:
                raise SimError(f"phone actions: lift, hangup, flash, dial DIGITS, pulse DIGITS, "
                               f"tone HZ|off, heard HZ, status (not {' '.join([action, *args])!r})")
            return peer.status()
        if action == "tone" and len(args) == 1:
            peer.far_play(_steady(args[0]))
            return peer.status()
        if action == "key" and len(args) == 1:
            if not args[0] or any(c not in "0123456789*#ABCD" for c in args[0].upper()):
                raise SimError(f"cannot press {args[0]!r}")
            peer.far_dtmf(args[0])
            return peer.status()
        if action == "heard" and len(args) == 1:
            return {**peer.status(), "heard": {"freq": float(_steady(args[0]).freqs[0]),
                                               "seconds": tone_seconds(peer.far_heard, float(args[0]))}}
        opts = _options(args, {"--cid": True, "--name": True, "--busy": False,
                               "--congestion": False, "--silent": False})
        if action == "ring":
            if set(opts) - {"--cid", "--name"}:
                raise SimError("ring takes --cid NUMBER and --name NAME")
            number = opts.get("--cid")
            if number is not None and not number.isdigit():
                raise SimError(f"--cid must be digits, not {number!r}")
            peer.ring(number, opts.get("--name"))
        elif action == "hangup":
            tones = [t for t in ("--busy", "--congestion", "--silent") if t in opts]
            if len(tones) > 1 or set(opts) - {"--busy", "--congestion", "--silent"}:
                raise SimError("hangup takes one of --busy, --congestion, --silent")
            tone = {"--busy": "busy", "--congestion": "congestion", "--silent": None}
            peer.hangup(tone[tones[0]] if tones else "default")
        elif action == "cancel" and not opts:
            peer.cancel()
        elif action != "status" or opts:
            raise SimError(f"co actions: ring, hangup, cancel, tone HZ|off, heard HZ, key DIGITS, status (not {action!r})")
        return peer.status()

    async def serve(self, path: str) -> asyncio.AbstractServer:
        """A control socket (Unix, JSON lines): ``{"argv": [...]}`` in, ``{"ok": true,
        "status": {...}}`` or ``{"ok": false, "error": "..."}`` out."""
        import json

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while line := await reader.readline():
                    try:
                        req = json.loads(line)
                        argv = req["argv"]
                        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                            raise SimError("argv must be a list of strings")
                        reply = {"ok": True, "status": self.command(argv)}
                    except (SimError, ValueError, KeyError, TypeError) as e:
                        reply = {"ok": False, "error": str(e)}
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
            finally:
                writer.close()
        return await asyncio.start_unix_server(client, path)

    # --- the port commands ---------------------------------------------------------------------

    def _line_command(self, p: DriverPort, command: port.PortCommand) -> None:
        peer = self._peers[p.name]
        if isinstance(peer, SimPhone):
            if isinstance(command, port.Ring):
                peer.ring_start(command.cadence)
            elif isinstance(command, port.StopRing):
                peer.ring_stop()
            elif isinstance(command, port.SetPolarity):
                peer.set_polarity(command.reversed)
            elif isinstance(command, port.SetMwi):
                peer.mwi = command.on
            else:
                raise SimError(f"{p.name}: cannot {command!r}")
        else:
            if isinstance(command, port.Seize):
                peer.box_seize()
            elif isinstance(command, port.Release):
                peer.box_release()
                p.audio.clear()
            else:
                raise SimError(f"{p.name}: cannot {command!r}")


def _options(args: list[str], spec: dict[str, bool]) -> dict[str, str | None]:
    """``--flag`` and ``--key VALUE`` options (``spec``: option -> takes a value)."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a not in spec:
            raise SimError(f"unknown option {a!r}")
        if spec[a]:
            if i + 1 >= len(args):
                raise SimError(f"{a} needs a value")
            out[a] = args[i + 1]
            i += 2
        else:
            out[a] = None
            i += 1
    return out
