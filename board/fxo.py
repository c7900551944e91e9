"""The FXO line machine: the box is the phone on one central-office line (issue 5, STYLE.md §4, §8).

Pure and sans-I/O, the same verbs as ``board.fxs``: driver events with ``on_event(event, now)``,
what the DSP heard with ``caller_id(cid, now)`` (from ``board.callerid.CallerIdReceiver``),
``tone_detected(name, now)`` (a cadence-validated call-progress tone: dial, busy, congestion)
and ``voice_activity(now)``; the controller's call events with ``handle_call_event``; one
deadline through ``get_timer()``/``handle_timer(now)``; ``next_output()`` yields port commands
and call events in order.

Inbound: ring bursts are validated (at least ``ring_min`` long; bursts closer than
``ring_group_gap`` are one ring, so a UK double ring counts once); the line is answered (``Seize``
plus a ``Setup`` to the controller) after ``rings_before_answer`` rings, or as soon as caller ID
is in and at least one ring was seen. Rings that stop for ``ring_timeout`` mean the caller gave up.

Caller ID in Japan (NTT "Number Display", ``regions.CID_CAR``): the box is the terminal that
must ask for it. A first ring burst no longer than ``car_max`` is the CAR signal (0.5 s; an
ordinary Japanese ring is 1 s): the machine answers it with a short off-hook (``Seize``, the
*primary response*; state ``CALLER_ID``), the exchange sends the FSK, and once ``caller_id``
has it (or ``cid_wait`` has passed without it) the line goes back on hook (``Release``). No call
is set up for any of that: the normal rings that follow are counted as above, and the call's
``Setup`` carries the number. A line without the service rings normally from the start (1 s
bursts), and is answered without caller ID.

Outbound: ``dial(number)`` seizes, waits for dial tone (or ``dial_tone_wait``), then sends the
digits one per ``digit_interval``. A plain loop-start line gives no answer signal, so the call is
``Answer``-ed once dialing is done, unless ``answer_polarity`` says the CO reverses on answer.

Disconnect supervision, each one switchable: a polarity reversal while connected (region
default), a loop-current drop of at least ``loop_drop_ms``, busy/congestion/dial tone heard, no
voice for ``silence_timeout``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from board import port
from board.callerid import CallerId
from board.regions import CAR_MAX_BURST, CID_CAR, RegionProfile, region as region_profile
from firmware import events as ev
from firmware.sip.sdp import Codec

__all__ = ["FxoConfig", "FxoState", "FxoLine"]

G711 = (Codec("PCMU", 0), Codec("PCMA", 8))


@dataclass(frozen=True)
class FxoConfig:
    """Settings of one FXO port. ``None`` = the region's default."""

    inbound: str = "s"                      # the callee of inbound Setups (routing decides)
    rings_before_answer: int = 2
    answer_on_cid: bool = True              # answer as soon as caller ID is in (after a ring)
    ring_min: float = 0.15                  # shorter ring voltage is a spurious pulse (guess)
    ring_group_gap: float = 0.5             # bursts closer together are one ring (uk 0.2 s gap)
    ring_timeout: float = 8.0               # no ring this long: the caller gave up (us gap 4 s)
    car_max: float = CAR_MAX_BURST          # jp: a first burst this short is CAR, not a ring
    cid_wait: float = 2.5                   # jp: off hook for caller ID at most this long (guess:
                                            # the FSK starts ~0.2 s after the answer, lasts ~0.3 s)
    dial_tone_wait: float = 1.0             # seize to first digit without a dial-tone report
    digit_interval: float = 0.2             # one DTMF digit per 200 ms (100 on / 100 off)
    answer_polarity: bool = False           # the CO reverses battery when the far end answers
    disconnect_polarity: bool | None = None
    loop_drop_ms: int | None = None
    disconnect_tones: tuple[str, ...] = ("busy", "congestion", "dial")
    silence_timeout: float | None = None    # off by default: hold music would be fine, silence not
    codecs: tuple[Codec, ...] = G711


class FxoState(Enum):
    IDLE = "idle"
    RINGING = "ringing"          # valid rings seen (jp: or caller ID received), not answered yet
    CALLER_ID = "caller-id"      # jp: off hook after CAR for the caller ID, no call yet
    SEIZED = "seized"            # outbound: off hook, waiting for dial tone
    DIALING = "dialing"
    ALERTING = "alerting"        # outbound, dialed, waiting for the answer reversal
    CONNECTED = "connected"


_ON_LINE = frozenset({FxoState.SEIZED, FxoState.DIALING, FxoState.ALERTING, FxoState.CONNECTED})


class FxoLine:
    """One FXO port's line machine. See the module docstring for the verbs."""

    def __init__(self, region: str | RegionProfile, *, config: FxoConfig | None = None) -> None:
        self.region = region_profile(region) if isinstance(region, str) else region
        self.config = config or FxoConfig()
        c = self.config
        self.disconnect_polarity = (c.disconnect_polarity if c.disconnect_polarity is not None
                                    else self.region.disconnect_polarity)
        self.loop_drop_ms = c.loop_drop_ms if c.loop_drop_ms is not None else self.region.loop_drop_ms
        self.state = FxoState.IDLE
        self.rings = 0
        self.cid: CallerId | None = None
        self.number = ""
        self._out: deque[object] = deque()
        self._deadlines: dict[str, float] = {}
        self._ring_on: float | None = None
        self._last_ring_end: float | None = None
        self._outbound = False
        self._to_dial = ""

    # --- outputs and the timer ------------------------------------------------------------

    def next_output(self) -> object | None:
        return self._out.popleft() if self._out else None

    def get_timer(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        while True:
            due = [(t, k) for k, t in self._deadlines.items() if t <= now]
            if not due:
                return
            _, key = min(due)
            del self._deadlines[key]
            getattr(self, f"_expire_{key}")(now)

    # --- inputs -----------------------------------------------------------------------------

    def on_event(self, event: port.PortEvent, now: float) -> None:
        if isinstance(event, port.RingStart):
            if self.state in (FxoState.IDLE, FxoState.RINGING):
                self._ring_on = now
        elif isinstance(event, port.RingStop):
            if self._ring_on is not None:
                self._ring_burst(self._ring_on, now)
                self._ring_on = None
        elif isinstance(event, port.PolarityReversal):
            if self.state is FxoState.ALERTING:
                self._connected(now)
            elif self.state in _ON_LINE and self.disconnect_polarity:
                self._disconnect("polarity")
            # idle: the CO announces caller ID before the first ring; the receiver listens anyway
        elif isinstance(event, port.LoopCurrentDrop):
            if self.state in _ON_LINE and event.duration_ms >= self.loop_drop_ms:
                self._disconnect("loop-drop")
        elif isinstance(event, port.Alarm):
            if event.active and self.state in _ON_LINE:
                self._disconnect("alarm")

    def caller_id(self, cid: CallerId, now: float) -> None:
        """Caller ID decoded between (or before) rings, or (jp) after the primary response."""
        if self.state is FxoState.CALLER_ID:
            self.cid = cid
            self._caller_id_done(now)
        elif self.state in (FxoState.IDLE, FxoState.RINGING):
            self.cid = cid
            if self.state is FxoState.RINGING and self.rings and self.config.answer_on_cid:
                self._answer(now)

    def tone_detected(self, name: str, now: float) -> None:
        """A call-progress tone the detector recognised with its cadence."""
        if self.state is FxoState.SEIZED and name == "dial":
            self._deadlines.pop("dialtone", None)
            self._expire_dialtone(now)
        elif self.state in (FxoState.ALERTING, FxoState.CONNECTED) and name in self.config.disconnect_tones:
            self._disconnect(name)

    def voice_activity(self, now: float) -> None:
        """Audio above the silence threshold was heard on the line."""
        if self.state is FxoState.CONNECTED and self.config.silence_timeout is not None:
            self._deadlines["silence"] = now + self.config.silence_timeout

    def dial(self, number: str, now: float) -> bool:
        """Take the line and dial ``number``. False when the line is not idle."""
        if self.state is not FxoState.IDLE:
            return False
        self.state = FxoState.SEIZED
        self._outbound = True
        self.number = self._to_dial = number
        self._out.append(port.Seize())
        self._deadlines["dialtone"] = now + self.config.dial_tone_wait
        return True

    def handle_call_event(self, event: object, now: float) -> None:
        """A call event from the controller about the other leg."""
        if isinstance(event, ev.Setup):
            if not self.dial(event.callee, now):
                self._out.append(ev.Release("busy", 486))
        elif isinstance(event, ev.Release):
            if self.state in _ON_LINE:
                self._out.append(port.Release())
                self._reset()
        elif isinstance(event, ev.Digit):
            if self.state is FxoState.CONNECTED:
                self._out.append(port.SendDigit(event.digit))

    # --- internals -------------------------------------------------------------------------

    def _ring_burst(self, start: float, end: float) -> None:
        if end - start < self.config.ring_min:
            return   # spurious: too short to be ring voltage
        if self.region.cid_start == CID_CAR and self.state is FxoState.IDLE \
                and end - start <= self.config.car_max:
            self._primary_response(end)
            return
        if self._last_ring_end is None or start - self._last_ring_end > self.config.ring_group_gap:
            self.rings += 1
        self._last_ring_end = end
        self.state = FxoState.RINGING
        self._deadlines["ringtimeout"] = end + self.config.ring_timeout
        if self.rings >= self.config.rings_before_answer or (
                self.cid is not None and self.config.answer_on_cid):
            self._answer(end)

    def _primary_response(self, now: float) -> None:
        """jp: CAR heard; off hook so that the exchange sends the caller ID."""
        self.state = FxoState.CALLER_ID
        self._out.append(port.Seize())
        self._deadlines["cidwait"] = now + self.config.cid_wait

    def _caller_id_done(self, now: float) -> None:
        """jp: back on hook (the exchange takes it as "received") and wait for the rings."""
        self._deadlines.pop("cidwait", None)
        self._out.append(port.Release())
        self.state = FxoState.RINGING
        self._deadlines["ringtimeout"] = now + self.config.ring_timeout

    def _answer(self, now: float) -> None:
        self._deadlines.pop("ringtimeout", None)
        self._outbound = False
        self.state = FxoState.CONNECTED
        cid = self.cid or CallerId()
        self._out.append(port.Seize())
        self._out.append(ev.Setup(caller=cid.number or "", caller_name=cid.name or "",
                                  callee=self.config.inbound, codecs=self.config.codecs))
        self._arm_silence(now)

    def _connected(self, now: float) -> None:
        self.state = FxoState.CONNECTED
        self._out.append(ev.Answer(self.config.codecs))
        self._arm_silence(now)

    def _arm_silence(self, now: float) -> None:
        if self.config.silence_timeout is not None:
            self._deadlines["silence"] = now + self.config.silence_timeout

    def _disconnect(self, why: str) -> None:
        if self.state is FxoState.ALERTING:
            cause = "busy" if why == "busy" else "congestion" if why == "congestion" else "no-answer"
        else:
            cause = "callee-hangup" if self._outbound else "caller-hangup"
        self._out.append(port.Release())
        self._out.append(ev.Release(cause, reason=why))
        self._reset()

    def _reset(self) -> None:
        self.state = FxoState.IDLE
        self.rings = 0
        self.cid = None
        self.number = self._to_dial = ""
        self._ring_on = self._last_ring_end = None
        self._outbound = False
        self._deadlines.clear()

    # --- deadlines (named _expire_<key>) ---------------------------------------------------

    def _expire_cidwait(self, now: float) -> None:
        self._caller_id_done(now)   # no caller ID came: the call still rings, without it

    def _expire_ringtimeout(self, now: float) -> None:
        self._reset()   # the caller gave up before we answered: nothing was set up

    def _expire_dialtone(self, now: float) -> None:
        self.state = FxoState.DIALING
        self._expire_digit(now)

    def _expire_digit(self, now: float) -> None:
        if self._to_dial:
            d, self._to_dial = self._to_dial[0], self._to_dial[1:]
            self._out.append(port.SendDigit(d))
        if self._to_dial:
            self._deadlines["digit"] = now + self.config.digit_interval
        elif self.config.answer_polarity:
            self.state = FxoState.ALERTING
            self._out.append(ev.Alerting())
        else:
            self._connected(now)

    def _expire_silence(self, now: float) -> None:
        self._disconnect("silence")
