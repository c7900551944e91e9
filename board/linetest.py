"""The guided line test: find out how an FXO line behaves and propose its settings (issue 5).

Pure and sans-I/O, the verbs of the line machines: port events with ``on_event(event, now)``,
20 ms of 16-bit linear line audio with ``on_audio(samples, now)``, one deadline through
``get_timer()``/``handle_timer(now)``; ``next_output()`` yields port commands for the FXO port
(``Seize``, ``Release``, ``SendDigit``), ``Prompt``s for the person running it (or a test
harness playing that person) and finally ``Finished(report)``.

The steps:

1. **Inbound** (``Prompt("call-in")``: call this line from another phone). While it rings,
   every caller-ID receiver listens (Bell 202, V.23, DTMF; which FSK it was is decided by its
   tones, ``callerid.fsk_standard``) and the ring bursts are timed. Caller ID before the first
   ring after a polarity reversal is ``polarity-reversal``, DTMF before it
   ``dtmf-before-ring``, FSK in the first silence ``after-first-ring``. A first burst as short
   as NTT's CAR signal with no second burst right behind it (a UK-style double ring has one
   0.2 s later) is answered as a Japanese Number Display phone does (off hook, the NTT
   message, back on hook: ``car``), and the rings timed are the ones after it. Once two ring
   cycles repeat, the box answers for a second (the caller hears it) and hangs up.
2. **Outbound**: seize, record the dial tone, dial the test number
   (``Prompt("answer-then-hang-up")``: answer it, press a key, wait five seconds, hang up), and
   record everything until the far end has cleared and its tone has repeated a few times.
   The key press marks the answer exactly: an exchange's post-dial delay and ringback pauses
   are silences too, so silence alone cannot (without a key press, a silence longer than any
   ringback pause is taken as the answer).
3. **Analysis**, on the recording: the disconnect tone is the first tone after the answer;
   the reversals and loop-current drops just before it are disconnect supervision, a reversal
   earlier (after dialling) is answer supervision; ringback is what came before the answer. Levels are measured in dBm0; the dial tone's level against the
   guessed region's nominal one gives the line loss and a receive gain to propose.
4. The region guess scores each region's table against what was seen: caller-ID standard and
   start, ring cadence, busy and dial tones. ``LineTestReport.settings`` are the FXO settings
   to propose (FxoConfig field names where there is one) and ``text()`` is for a person.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from board import port
from board.cadence import (LearnedTone, ToneSegmenter, cadence_matches, dbm0, identify, learn,
                           repeating_cadence)
from board.callerid import CallerId, CallerIdReceiver, fsk_standard
from firmware.media.dtmf import DtmfDetector
from board.regions import (CAR_MAX_BURST, CID_AFTER_FIRST_RING, CID_CAR, CID_DTMF_BEFORE_RING,
                           CID_POLARITY_REVERSAL, REGIONS)
from firmware.media.tones import TONES

__all__ = ["LineTestConfig", "LineTest", "LineTestReport", "Prompt", "Finished", "Phase"]

RATE = 8000
_TONE_HZ = 8.0
CID_FSK_BEFORE_RING = "fsk-before-ring"     # FSK before the first ring without a reversal
CAR_GAP = 0.35      # no ring this long after a short first burst: CAR (0.5 s gap), not the first
                    # half of a double ring (0.2 s gap)


@dataclass(frozen=True)
class Prompt:
    """Something the person running the test must do now."""

    kind: str        # "call-in" | "answer-then-hang-up"
    text: str


@dataclass(frozen=True)
class Finished:
    report: "LineTestReport"


@dataclass(frozen=True)
class LineTestConfig:
    test_number: str                  # dialled out; a phone the installer holds
    inbound: bool = True              # also test an incoming call (caller ID, ring cadence)
    ring_wait: float = 120.0          # for the incoming call to start
    ring_cycles: int = 2              # ring cycles to time before answering
    ring_listen: float = 30.0         # after the first ring, at most
    dial_tone_wait: float = 1.5       # seize -> dial (the dial tone is recorded meanwhile)
    digit_time: float = 0.2           # per DTMF digit sent (100 ms on, 100 ms off)
    call_wait: float = 90.0           # dial -> far-end clear, at most
    tone_record: float = 8.0          # after a clear, record the tone this long at most
    cid_wait: float = 2.5             # off hook after CAR for NTT's caller ID, at most
    ringback_max_off: float = 4.5     # no key press: silence longer than any ringback pause
                                      # (E.180's longest is 4 s) is the answered call

    def __post_init__(self) -> None:
        if not self.test_number or not all(c in "0123456789*#" for c in self.test_number):
            raise ValueError(f"the test number must be DTMF digits, not {self.test_number!r}")


class Phase(Enum):
    IDLE = "idle"
    WAIT_RING = "wait-ring"
    RINGING = "ringing"
    CALLER_ID = "caller-id"      # off hook after CAR for NTT's caller ID
    ANSWERED_IN = "answered-inbound"
    PAUSE = "pause"
    DIAL_TONE = "dial-tone"
    DIALING = "dialing"
    CALL = "call"
    DONE = "done"


@dataclass
class LineTestReport:
    """What the test saw and the settings it proposes."""

    region: str | None = None
    candidates: list[tuple[str, int]] = field(default_factory=list)   # (region, score)
    caller_id: CallerId | None = None
    cid_standard: str | None = None       # "bell" | "etsi" | "dtmf" | "ntt" | None (none heard)
    cid_format: str | None = None         # "sdmf" | "mdmf" | "etsi" | "ntt" | None
    cid_start: str | None = None          # a regions.CID_* constant, or "fsk-before-ring"
    ring_cadence: tuple[int, ...] | None = None     # ms
    dial_tone: LearnedTone | None = None
    ringback: LearnedTone | None = None
    disconnect_tone: LearnedTone | None = None
    disconnect_tone_name: str | None = None          # "busy" | "congestion" in the guessed zone
    answer_polarity: bool | None = None
    disconnect_polarity: bool | None = None
    loop_drop_ms: int | None = None
    far_level_dbm0: float | None = None
    line_loss_db: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def settings(self) -> dict:
        """The proposal, as FXO settings (FxoConfig names where there is one)."""
        tones = ()
        if self.disconnect_tone is not None:
            tones = ("busy", "congestion")
        return {
            "region": self.region,
            "cid_standard": self.cid_standard,
            "cid_format": self.cid_format,
            "cid_start": self.cid_start,
            "answer_polarity": bool(self.answer_polarity),
            "disconnect_polarity": bool(self.disconnect_polarity),
            "loop_drop_ms": self.loop_drop_ms,
            "disconnect_tones": tones,
            "busy_cadence_ms": self.disconnect_tone.cadence if self.disconnect_tone else None,
            "busy_freqs_hz": self.disconnect_tone.freqs if self.disconnect_tone else None,
            "rx_gain_db": (round(self.line_loss_db, 1) if self.line_loss_db is not None
                           and abs(self.line_loss_db) >= 3 else 0.0),
        }

    def text(self) -> str:
        s = self.settings
        lines = ["Line test report", ""]
        if self.region:
            others = ", ".join(f"{r} ({n})" for r, n in self.candidates[1:3])
            lines.append(f"Country: {self.region.upper()}" + (f" (next: {others})" if others else ""))
        else:
            lines.append("Country: could not tell")
        if self.cid_standard:
            cid = self.caller_id
            lines.append(f"Caller ID: {_CID_NAMES[self.cid_standard]}"
                         f"{' ' + self.cid_format.upper() if self.cid_format else ''}, "
                         f"{_START_NAMES.get(self.cid_start or '', self.cid_start)}"
                         f"{f' (heard {cid.number or cid.absence}' + (f' {cid.name}' if cid.name else '') + ')' if cid else ''}")
        else:
            lines.append("Caller ID: none heard")
        if self.ring_cadence:
            lines.append("Ring cadence: " + "/".join(map(str, self.ring_cadence)) + " ms")
        if self.dial_tone:
            lines.append("Dial tone: " + self.dial_tone.describe())
        if self.ringback:
            lines.append("Ringback: " + self.ringback.describe())
        lines.append("Answer signal: " + ("polarity reversal" if self.answer_polarity
                                          else "none (answer assumed after dialling)"))
        how = [w for w, on in (("polarity reversal", self.disconnect_polarity),
                               (f"loop-current drop ({self.loop_drop_ms} ms)", self.loop_drop_ms))
               if on]
        if self.disconnect_tone:
            how.append(f"{self.disconnect_tone_name or 'tone'}: {self.disconnect_tone.describe()}")
        lines.append("Far-end hang-up shows as: " + ("; ".join(how) if how else "nothing detected"
                                                     " (set a silence timeout)"))
        if self.far_level_dbm0 is not None:
            lines.append(f"Far-end level: {self.far_level_dbm0:.1f} dBm0")
        if self.line_loss_db is not None:
            lines.append(f"Line loss (dial tone vs nominal): {self.line_loss_db:.1f} dB"
                         f" -> receive gain {s['rx_gain_db']:+.1f} dB")
        lines += ["", "Proposed settings:"]
        lines += [f"  {k} = {v}" for k, v in s.items()]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


_CID_NAMES = {"bell": "Bell 202 FSK", "etsi": "V.23 FSK (ETSI)", "dtmf": "DTMF",
              "ntt": "V.23 FSK (NTT Number Display)"}
_START_NAMES = {CID_AFTER_FIRST_RING: "after the first ring",
                CID_CAR: "after the CAR signal, off hook",
                CID_POLARITY_REVERSAL: "before the first ring, after a polarity reversal",
                CID_DTMF_BEFORE_RING: "before the first ring",
                CID_FSK_BEFORE_RING: "before the first ring (no reversal)"}


class LineTest:
    """One run of the guided line test on one FXO port (see the module docstring)."""

    def __init__(self, config: LineTestConfig) -> None:
        self.config = config
        self.phase = Phase.IDLE
        self.report = LineTestReport()
        self._out: deque[object] = deque()
        self._deadline: tuple[float, str] | None = None
        # inbound
        self._receivers: list[CallerIdReceiver] = []
        self._recent = array("h")          # the last 3 s of on-hook audio (the caller-ID burst)
        self._rings: list[tuple[float, float | None]] = []
        self._reversals_in: list[float] = []
        self._cid_at: float | None = None
        self._first_ring_at: float | None = None
        # outbound: one recording from seizure on, with events on the same time base
        self._rec = array("h")
        self._rec_t0: float | None = None
        self._seg = ToneSegmenter()
        self._segs: list = []
        self._dial_end: float | None = None
        self._reversals: list[float] = []
        self._drops: list[tuple[float, int]] = []
        self._clear_at: float | None = None
        self._last_check = 0.0
        self._dtmf = DtmfDetector()
        self._dtmf_t0: float | None = None
        self._key_at: tuple[float, float] | None = None    # the far party's key press (start, end)

    # --- outputs and the timer --------------------------------------------------------------

    def next_output(self) -> object | None:
        return self._out.popleft() if self._out else None

    def get_timer(self) -> float | None:
        return self._deadline[0] if self._deadline else None

    def handle_timer(self, now: float) -> None:
        if self._deadline is not None and self._deadline[0] <= now:
            _, key = self._deadline
            self._deadline = None
            getattr(self, f"_expire_{key}")(now)

    def _arm(self, when: float, key: str) -> None:
        self._deadline = (when, key)

    # --- inputs ---------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        if self.phase is not Phase.IDLE:
            raise RuntimeError("the line test has already run")
        if self.config.inbound:
            self.phase = Phase.WAIT_RING
            self._receivers = [CallerIdReceiver(s) for s in ("bell", "etsi", "ntt", "dtmf")]
            self._out.append(Prompt("call-in", "Call this line from another phone and let it "
                                    "ring; LineBox answers after a few rings."))
            self._arm(now + self.config.ring_wait, "ringwait")
        else:
            self._seize(now)

    def on_event(self, event: port.PortEvent, now: float) -> None:
        ph = self.phase
        if ph in (Phase.WAIT_RING, Phase.RINGING):
            if isinstance(event, port.RingStart):
                if self._first_ring_at is None:
                    self._first_ring_at = now
                    self.phase = Phase.RINGING
                    self._arm(now + self.config.ring_listen, "ringlisten")
                elif self._deadline is not None and self._deadline[1] == "carcheck":
                    # a second burst right behind a short first one: a double ring, not CAR
                    self._arm(self._first_ring_at + self.config.ring_listen, "ringlisten")
                self._rings.append((now, None))
            elif isinstance(event, port.RingStop) and self._rings and self._rings[-1][1] is None:
                start = self._rings[-1][0]
                self._rings[-1] = (start, now)
                self._check_inbound(now)
                if self.phase is Phase.RINGING and len(self._rings) == 1 \
                        and self.report.caller_id is None and now - start <= CAR_MAX_BURST:
                    self._arm(now + CAR_GAP, "carcheck")
            elif isinstance(event, port.PolarityReversal):
                self._reversals_in.append(now)
        elif ph in (Phase.DIAL_TONE, Phase.DIALING, Phase.CALL):
            if isinstance(event, port.PolarityReversal):
                self._reversals.append(now)
                self._maybe_clear(now)
            elif isinstance(event, port.LoopCurrentDrop):
                self._drops.append((now, event.duration_ms))
                self._maybe_clear(now)

    def on_audio(self, samples, now: float) -> None:
        x = samples if isinstance(samples, array) else array("h", samples)
        ph = self.phase
        if ph in (Phase.WAIT_RING, Phase.RINGING, Phase.CALLER_ID):
            self._recent.extend(x)
            if len(self._recent) > 3 * RATE:
                del self._recent[:len(self._recent) - 3 * RATE]
            for r in self._receivers:
                cid = r.feed(x)
                if cid is not None and self.report.caller_id is None:
                    self._got_cid(r, cid, now)
        elif ph in (Phase.DIAL_TONE, Phase.DIALING, Phase.CALL):
            if self._rec_t0 is None:
                self._rec_t0 = now - len(x) / RATE
            self._rec.extend(x)
            self._segs += self._seg.feed(x)
            if ph is Phase.CALL and self._key_at is None:
                if self._dtmf_t0 is None:
                    self._dtmf_t0 = now - len(x) / RATE
                for d in self._dtmf.feed(x):
                    start = self._dtmf_t0 + d.start_sample / RATE
                    self._key_at = (start, start + 0.3)   # a press and its release, generously
            if ph is Phase.CALL and now - self._last_check >= 1.0:
                self._last_check = now
                self._check_tone(now)

    # --- inbound -------------------------------------------------------------------------------

    def _got_cid(self, r: CallerIdReceiver, cid: CallerId, now: float) -> None:
        rep = self.report
        rep.caller_id = cid
        self._cid_at = now
        if r.standard == "ntt":
            # only a line that answered CAR gets NTT's message (its framing names it)
            rep.cid_standard = rep.cid_format = "ntt"
            rep.cid_start = CID_CAR
            if self.phase is Phase.CALLER_ID:
                self._car_done(now)
            return
        if r.standard == "dtmf":
            rep.cid_standard, rep.cid_format = "dtmf", None
        else:
            rep.cid_standard = fsk_standard(self._recent[-int(1.5 * RATE):]) or r.standard
            msg = r.last_message or b"\x80"
            rep.cid_format = ("sdmf" if msg[0] == 0x04 else
                              "mdmf" if rep.cid_standard == "bell" else "etsi")
        if self._first_ring_at is None:
            if rep.cid_standard == "dtmf":
                rep.cid_start = CID_DTMF_BEFORE_RING
            elif self._reversals_in:
                rep.cid_start = CID_POLARITY_REVERSAL
            else:
                rep.cid_start = CID_FSK_BEFORE_RING
        else:
            rep.cid_start = CID_AFTER_FIRST_RING
        self._check_inbound(now)

    def _ring_durations(self) -> list[float]:
        d: list[float] = []
        done = [(a, b) for a, b in self._rings if b is not None]
        for i, (a, b) in enumerate(done):
            d.append((b - a) * 1000)
            if i + 1 < len(done):
                d.append((done[i + 1][0] - b) * 1000)
        return d

    def _check_inbound(self, now: float) -> None:
        cadence, cycles = repeating_cadence(self._ring_durations(), tol=0.15, slack_ms=60)
        if cadence is not None and cycles >= self.config.ring_cycles:
            # a cadence seen twice is settled; caller ID (if any) came in the first cycle
            self.report.ring_cadence = cadence
            self._answer_inbound(now)

    def _answer_inbound(self, now: float) -> None:
        self.phase = Phase.ANSWERED_IN
        self._out.append(port.Seize())
        self._arm(now + 1.0, "hangupin")

    def _expire_carcheck(self, now: float) -> None:
        """A short first burst and no second one: CAR. Answer it for the caller ID; the rings
        that follow are the line's cadence, not the CAR bursts."""
        self.phase = Phase.CALLER_ID
        self._out.append(port.Seize())
        self._rings.clear()
        self._first_ring_at = None
        self._arm(now + self.config.cid_wait, "cidwait")

    def _car_done(self, now: float) -> None:
        self._out.append(port.Release())
        self.phase = Phase.RINGING
        self._arm(now + self.config.ring_listen, "ringlisten")

    def _expire_cidwait(self, now: float) -> None:
        self.report.notes.append("the line rang a CAR signal (Japan's Number Display) and was "
                                 "answered, but no caller ID came")
        self._car_done(now)

    def _expire_ringwait(self, now: float) -> None:
        self.report.notes.append("no incoming call within the wait: caller ID and ring cadence "
                                 "not tested")
        self._seize(now)

    def _expire_ringlisten(self, now: float) -> None:
        cadence, _ = repeating_cadence(self._ring_durations(), tol=0.15, slack_ms=60)
        self.report.ring_cadence = cadence
        if cadence is None:
            self.report.notes.append("the ring cadence did not repeat")
        self._answer_inbound(now)

    def _expire_hangupin(self, now: float) -> None:
        self._out.append(port.Release())
        self.phase = Phase.PAUSE
        self._arm(now + 2.0, "pause")

    def _expire_pause(self, now: float) -> None:
        self._seize(now)

    # --- outbound ------------------------------------------------------------------------------

    def _seize(self, now: float) -> None:
        self.phase = Phase.DIAL_TONE
        self._out.append(port.Seize())
        self._arm(now + self.config.dial_tone_wait, "dial")

    def _expire_dial(self, now: float) -> None:
        self.phase = Phase.DIALING
        for d in self.config.test_number:
            self._out.append(port.SendDigit(d))
        self._out.append(Prompt("answer-then-hang-up",
                                f"LineBox is calling {self.config.test_number}: answer it, press "
                                "any key, wait five seconds in silence, then hang up."))
        self._arm(now + len(self.config.test_number) * self.config.digit_time, "dialed")

    def _expire_dialed(self, now: float) -> None:
        self.phase = Phase.CALL
        self._dial_end = now
        self._arm(now + self.config.call_wait, "callwait")

    def _maybe_clear(self, now: float) -> None:
        if self.phase is Phase.CALL and self._clear_at is None and self._answered_by(now):
            self._clear_at = now
            self._arm(now + self.config.tone_record, "recorded")

    def _answered_by(self, now: float) -> bool:
        """A reversal or drop counts as a clear only once the call is known to be answered
        (key press, or a silence longer than ringback's); before that, a reversal is the answer
        signal."""
        return self._answer_gap_start(now) is not None

    def _segments(self) -> list:
        run = self._seg.peek()
        return self._segs + ([run] if run is not None else [])

    def _t(self, sample: int) -> float:
        assert self._rec_t0 is not None
        return self._rec_t0 + sample / RATE

    def _answer_gap_start(self, now: float) -> float | None:
        """When the call was answered: the far party's key press, else the start of the first
        silence after dialling longer than any ringback pause."""
        if self._key_at is not None:
            return self._key_at[0]
        if self._dial_end is None or self._rec_t0 is None:
            return None
        for s in self._segments():
            t = self._t(s.start)
            end = min(now, t + s.ms / 1000)
            if s.on or end < self._dial_end:
                continue
            if end - max(t, self._dial_end) >= self.config.ringback_max_off:
                return max(t, self._dial_end)
        return None

    def _check_tone(self, now: float) -> None:
        """During the call: once the tone after the answered silence repeats, the far end has
        cleared (even without a reversal or drop)."""
        gap = self._answer_gap_start(now)
        if gap is None:
            return
        tail = self._tail_after_gap(gap)
        if tail is None:
            return
        tone = learn(tail)
        if tone is not None and tone.cadence and tone.cycles >= 3:
            self._finish(now)
        elif tone is not None and self._clear_at is None:
            self._clear_at = now
            self._arm(now + self.config.tone_record, "recorded")

    def _tail_after_gap(self, gap: float) -> array | None:
        """The audio after the answered silence: from the first tone burst following it."""
        assert self._rec_t0 is not None
        segs = self._segments()
        if self._key_at is not None:
            gap = self._key_at[1]            # not the key's own tone
        g = int((gap - self._rec_t0) * RATE)
        after = [s for s in segs if s.start >= g and s.on]
        if not after:
            return None
        return self._rec[after[0].start:]

    def _expire_recorded(self, now: float) -> None:
        self._finish(now)

    def _expire_callwait(self, now: float) -> None:
        self.report.notes.append("the far end did not clear in time")
        self._finish(now)

    # --- analysis --------------------------------------------------------------------------------

    def _finish(self, now: float) -> None:
        if self.phase is Phase.DONE:
            return
        self._deadline = None
        self._out.append(port.Release())
        self.phase = Phase.DONE
        self._analyse(now)
        self._out.append(Finished(self.report))

    def _analyse(self, now: float) -> None:
        rep = self.report
        if self._rec_t0 is None:
            rep.notes.append("no audio was heard on the line")
            self._guess()
            return
        t0 = self._rec_t0
        # dial tone: what was heard between seizure and dialling
        dial_end = int(((self._dial_end or now) - len(self.config.test_number)
                        * self.config.digit_time - t0) * RATE)
        rep.dial_tone = learn(self._rec[:max(0, dial_end)])
        if rep.dial_tone is None:
            rep.notes.append("no dial tone heard after seizing the line")
        gap = self._answer_gap_start(now)
        if gap is None:
            rep.notes.append("could not tell when the call was answered")
        else:
            start = int(((self._dial_end or gap) - t0) * RATE)
            rep.ringback = learn(self._rec[start:int((gap - t0) * RATE)])
            tail = self._tail_after_gap(gap)
            rep.disconnect_tone = learn(tail) if tail is not None else None
            # the far end cleared just before its tone started (or when the clear was seen):
            # reversals and drops around then are disconnect supervision, earlier ones answer
            tone_at = self._t(len(self._rec) - len(tail)) if tail is not None else None
            ref = tone_at if tone_at is not None else (self._clear_at or now)
            lo, hi = ref - 3.0, ref + 0.5
            answer_until = lo
            if self._key_at is not None:
                # the key press comes after the answer and before the clear: a sharper split
                answer_until, lo = self._key_at[0], max(lo, self._key_at[1])
            rep.answer_polarity = any((self._dial_end or 0) <= t < answer_until
                                      for t in self._reversals)
            rep.disconnect_polarity = any(lo <= t <= hi for t in self._reversals)
            drops = [ms for t, ms in self._drops if lo <= t <= hi]
            rep.loop_drop_ms = max(drops) if drops else None
            tone_at = ref
            # the far party's level while answered (speech or a test tone), if it said anything
            answered = self._rec[int((gap - t0) * RATE):int((tone_at - t0) * RATE)]
            rep.far_level_dbm0 = _active_level(answered)
        self._guess()

    def _guess(self) -> None:
        rep = self.report
        scores: list[tuple[str, int]] = []
        for code, reg in REGIONS.items():
            s = 0
            if rep.cid_standard is not None:
                s += 3 if reg.cid_standard == rep.cid_standard else -3
                s += 2 if reg.cid_start == rep.cid_start else 0
            elif rep.ring_cadence is not None and reg.cid_standard is None:
                s += 1
            if rep.ring_cadence is not None:
                rc = tuple(round(v * 1000) for v in reg.ring_cadence)
                s += 2 if cadence_matches(rep.ring_cadence, rc, tol=0.15, slack_ms=60) else -2
            # exchanges hold their tones to ~1 %: 8 Hz tells DE 425 Hz from FR 440 Hz
            if rep.disconnect_tone is not None:
                zones = [z for z, _ in identify(rep.disconnect_tone, tol_hz=_TONE_HZ)]
                s += 3 if reg.tone_zone in zones else 0
            if rep.dial_tone is not None:
                zones = [z for z, _ in identify(rep.dial_tone, names=("dial",), tol_hz=_TONE_HZ)]
                s += 2 if reg.tone_zone in zones else 0
            if rep.ringback is not None:
                zones = [z for z, _ in identify(rep.ringback, names=("ringback",), tol_hz=_TONE_HZ)]
                s += 1 if reg.tone_zone in zones else 0
            scores.append((code, s))
        scores.sort(key=lambda c: -c[1])
        rep.candidates = scores
        if scores and scores[0][1] > 0 and (len(scores) == 1 or scores[0][1] > scores[1][1]):
            rep.region = scores[0][0]
        elif scores and scores[0][1] > 0:
            rep.notes.append("more than one country fits: "
                             + ", ".join(c for c, s in scores if s == scores[0][1]))
        if rep.region is not None:
            zone = REGIONS[rep.region].tone_zone
            if rep.disconnect_tone is not None:
                names = [n for z, n in identify(rep.disconnect_tone) if z == zone]
                rep.disconnect_tone_name = names[0] if names else None
            if rep.dial_tone is not None:
                nominal = _spec_level(TONES[zone]["dial"])
                rep.line_loss_db = round(nominal - rep.dial_tone.level_dbm0, 1)


def _spec_level(spec) -> float:
    """A tone's total level in dBm0 (the sum of its components' powers)."""
    return 10 * math.log10(sum(10 ** (l / 10) for l in spec.levels_dbm0))


def _active_level(x: array) -> float | None:
    """Mean level of the 20 ms frames clearly above the line's noise (10 dB over its quietest
    tenth, and over -50 dBm0), or None if nothing was."""
    powers = sorted(sum(v * v for v in x[i:i + 160]) / 160 for i in range(0, len(x) - 159, 160))
    if not powers:
        return None
    floor = max(dbm0(powers[len(powers) // 10]) + 10, -50.0)
    loud = [p for p in powers if dbm0(p) > floor]
    return round(dbm0(sum(loud) / len(loud)), 1) if loud else None
