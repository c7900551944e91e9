"""The FXS line machine: the box is the exchange for one analog phone (issue 5, STYLE.md §4, §8).

Pure and sans-I/O. A driver's hook events go in with ``on_event(event, now)``, digits from the
DTMF detector with ``digit(d, now)``, the controller's call events with
``handle_call_event(event, now)``; ``get_timer()``/``handle_timer(now)`` run the one deadline.
``next_output()`` yields, in order, port commands (``board.port``) for the driver and call
events (``firmware.events``, plus ``Flash``) for the controller.

Hook timing. An on-hook is not a hang-up until it has lasted ``flash_max``: a break of
``pulse_break`` length while dialing is a dial pulse (pulses end with a ``pulse_gap`` of loop
closed; 10 breaks = 0), a break in the ``flash_min..flash_max`` window during a call is a hook
flash, anything shorter or in between is ignored as a bounce.

Call waiting (as on a telco line or chan_dahdi). A second call offered while the phone talks
(``wait(cid, now)``, or a ``Setup`` when not idle) becomes the *other* call: the region's
call-waiting tone is mixed into the conversation as short bursts (PlayTone/StopTone around the
tone's "on" part, repeated at its cadence), no ringing. A flash then holds the active call and
answers the waiting one; each later flash swaps the two (hold one, resume the other). Hanging up
with another call present ends the active one and rings the phone again for the other (a
recall); lifting resumes it. Call events the machine emits are about the *active* call; a
``SwapCalls`` output marks the moment the other call becomes the active one. Events the
controller sends about the other call come in with ``handle_call_event(event, now,
other=True)``. Without another call, a flash is a transfer as before.

Caller ID in Japan (NTT "Number Display", ``regions.CID_CAR``). The phone must ask for its
caller ID: ``ring`` sends the CAR signal (``Ring(CAR_CADENCE)``); a Number Display phone answers
it with an off-hook (the *primary response*), so the machine stops CAR, waits
``cid_after_answer`` and sends the FSK (``SendCallerId``) while the phone is off hook; the phone
goes back on hook when it has the message, and only then does the ordinary ringing start (an
on-hook here is not a hang-up). A phone that does not answer CAR within ``car_timeout`` has no
Number Display: it is rung without caller ID. A phone still off hook ``cid_release_timeout``
after the message has a person holding the handset (lifted during CAR): the call is answered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from board import port
from board.callerid import REGIONS as CID_REGIONS, CallerId, CallerIdSender
from board.regions import (CAR_CADENCE, CAR_TIMEOUT, CID_AFTER_FIRST_RING, CID_CAR,
                           CID_DTMF_BEFORE_RING, CID_POLARITY_REVERSAL, RegionProfile,
                           region as region_profile)
from firmware.media.tones import TONES
from firmware import events as ev
from firmware.sip.sdp import Codec

__all__ = ["Flash", "SwapCalls", "FxsConfig", "FxsState", "FxsLine", "DialPlan", "prefix_plan",
           "caller_id_of"]

# complete(number, final): True complete, False invalid, None may take more digits. With
# final=True (the phone stopped dialling at the inter-digit timeout) only True or False:
# whether the number as it stands can be called (an outside number of open length can).
DialPlan = Callable[[str, bool], "bool | None"]

G711 = (Codec("PCMU", 0), Codec("PCMA", 8))

# Far-end causes that get congestion (reorder) rather than busy when the phone is still off hook.
_CONGESTION_CAUSES = frozenset({"congestion", "not-found", "not-registered", "unreachable",
                                "codec-mismatch", "media-timeout", "media-failure"})


@dataclass(frozen=True)
class Flash:
    """The phone flashed the hook during a call (transfer / call waiting). A call event for the
    controller; belongs in ``firmware.events`` once the controller handles it."""


@dataclass(frozen=True)
class SwapCalls:
    """The phone's active call and its other call (waiting or held) change places: the call
    events after this one are about the call that was the other. For the adapter, which keeps
    one leg per call; not a call event of the controller."""


@dataclass
class _OtherCall:
    """The call that is not the active one: waiting (offered, not answered) or held."""

    incoming: bool               # the phone was rung for it (Release cause on hang-up)
    cid: CallerId | None = None  # waiting: for the ring if the phone hangs up before answering
    held: bool = False           # answered and on hold; else waiting


def caller_id_of(setup: ev.Setup) -> CallerId:
    """The caller ID to show for a call: no number from the far side says "unavailable"
    rather than nothing."""
    return CallerId(number=setup.caller or None, name=setup.caller_name or None,
                    absence=None if setup.caller else "O")


@dataclass(frozen=True)
class FxsConfig:
    """Timings of one FXS port. ``None`` = the region's default."""

    # chan_dahdi.conf defaults: firstdigittimeout=16000, gendigittimeout=8000
    first_digit_timeout: float = 16.0
    inter_digit_timeout: float = 8.0
    offhook_tone: str = "congestion"        # after the first-digit timeout ("howler" once tones have it)
    fail_tone_s: float = 30.0               # how long busy/congestion plays before silence
    pulse_break: tuple[float, float] = (0.040, 0.080)   # 10 pps at 60/40..66/33 with jitter
    pulse_gap: float = 0.300                # loop closed this long ends a pulse digit
    flash_min: float | None = None
    flash_max: float | None = None
    cid_after_ring_delay: float = 0.5       # GR-30: FSK starts >= 500 ms after the first ring
    cid_after_reversal: float = 0.25        # EN 300 659-1: >= 100 ms after the line reversal (guess)
    ring_after_cid: float = 1.5             # from caller-ID start to the first ring (guess: fits
                                            # seizure + marks + a full MDMF message + 200 ms guard;
                                            # longer when the caller ID itself is longer)
    car_timeout: float = CAR_TIMEOUT        # jp: CAR unanswered this long: ring without caller ID
    cid_after_answer: float = 0.2           # jp: primary response -> FSK (guess: the phone's
                                            # receiver settles after its loop closes)
    cid_release_timeout: float = 3.0        # jp: FSK end -> still off hook: answered (guess)
    codecs: tuple[Codec, ...] = G711
    call_waiting: bool = True               # offer a second call with the call-waiting tone
    recall_timeout: float = 60.0            # a held call's recall ring gives up after this


class FxsState(Enum):
    IDLE = "idle"              # on hook
    DIALTONE = "dialtone"      # off hook, dial tone, no digit yet
    DIALING = "dialing"        # collecting digits
    CALLING = "calling"        # Setup sent, waiting on the far end (ringback on Alerting)
    RINGING = "ringing"        # incoming call: caller ID and/or ring cadence on the line
    CONNECTED = "connected"
    FAILED = "failed"          # off hook, busy/congestion tone playing
    LOCKOUT = "lockout"        # off hook, silence, until the phone hangs up


_OFF_HOOK = frozenset({FxsState.DIALTONE, FxsState.DIALING, FxsState.CALLING,
                       FxsState.CONNECTED, FxsState.FAILED, FxsState.LOCKOUT})
_IN_CALL = frozenset({FxsState.CALLING, FxsState.CONNECTED})
_COLLECTING = frozenset({FxsState.DIALTONE, FxsState.DIALING})


def prefix_plan(*patterns: str) -> DialPlan:
    """A dial plan from fixed-length patterns: ``X`` any digit, ``N`` 2-9, ``Z`` 1-9, else literal.

    Complete when a pattern matches the whole number, None while some pattern could still match,
    False when none can.
    """
    def fits(p: str, c: str) -> bool:
        return (p == "X" and c.isdigit()) or (p == "N" and c in "23456789") \
            or (p == "Z" and c in "123456789") or p == c

    def complete(number: str, final: bool = False) -> bool | None:
        live = [p for p in patterns if len(number) <= len(p) and all(map(fits, p, number))]
        if any(len(p) == len(number) for p in live):
            return True
        return None if live and not final else False
    return complete


class FxsLine:
    """One FXS port's line machine. See the module docstring for the verbs."""

    def __init__(self, region: str | RegionProfile, extension: str, complete: DialPlan, *,
                 name: str = "", config: FxsConfig | None = None, mwi: bool = False) -> None:
        self.region = region_profile(region) if isinstance(region, str) else region
        self.extension = extension
        self.name = name
        self.complete = complete
        self.config = config or FxsConfig()
        self.flash_min = self.config.flash_min if self.config.flash_min is not None else self.region.flash_min
        self.flash_max = self.config.flash_max if self.config.flash_max is not None else self.region.flash_max
        self.mwi = mwi
        self.state = FxsState.IDLE
        self.number = ""
        self._out: deque[object] = deque()
        self._deadlines: dict[str, float] = {}
        self._hook_down: float | None = None   # when a break started while off hook
        self._pulses = 0
        self._tone = False
        self._ringing = False
        self._reversed = False
        self._cid: CallerId | None = None
        # jp caller ID: "car" while CAR rings for the primary response, "id" while the phone is
        # off hook for its caller ID (FSK, then waiting for it to go back on hook)
        self._car: str | None = None
        self._incoming = False
        self._transfer = False  # dialling a transfer target after a hook flash, the call on hold
        self.other: _OtherCall | None = None   # call waiting: the call that is not the active one
        self._cw_on = False     # a call-waiting burst is on the line now
        self._recall = False    # ringing for a held call after the phone hung up on the active one

    # --- outputs and the timer ------------------------------------------------------------

    def next_output(self) -> object | None:
        """The next port command or call event, or None."""
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
        """A hook event from the driver."""
        if isinstance(event, port.OffHook):
            if self._hook_down is not None:
                self._hook_break(now - self._hook_down, now)
            elif self.state is FxsState.IDLE:
                self._dial_tone(now)
            elif self.state is FxsState.RINGING and self._car == "car":
                self._primary_response(now)
            elif self.state is FxsState.RINGING and self._car is None:
                self._answer()
        elif isinstance(event, port.OnHook):
            if self.state is FxsState.RINGING and self._car == "id":
                self._caller_id_received()
            elif self.state in _OFF_HOOK and self._hook_down is None:
                self._hook_down = now
                self._deadlines["hangup"] = now + self.flash_max
        elif isinstance(event, port.HookFlash):
            self._flash(now)
        elif isinstance(event, port.PulseDigit):
            self.digit(event.digit, now)

    def digit(self, d: str, now: float) -> None:
        """A DTMF digit from the detector (pulse digits are counted here from hook breaks)."""
        if self.state in _COLLECTING:
            self._collect(d, now)
        elif self.state is FxsState.CONNECTED:
            self._out.append(ev.Digit(d))

    def set_mwi(self, on: bool) -> None:
        """Voicemail waiting or not: the lamp/VMWI now, stutter dial tone from the next lift."""
        if on != self.mwi:
            self.mwi = on
            self._out.append(port.SetMwi(on))

    def wait(self, cid: CallerId | None, now: float) -> bool:
        """Offer a second call to a phone that is talking: call-waiting tone over the
        conversation. False when it cannot be (no answered call, call waiting off, a transfer
        being dialled, or a second call already there): the caller gets busy."""
        if not self.config.call_waiting or self.state is not FxsState.CONNECTED \
                or self._transfer or self.other is not None or self._hook_down is not None:
            return False
        self.other = _OtherCall(incoming=True, cid=cid)
        self._expire_cw(now)
        return True

    def ring(self, cid: CallerId | None, now: float) -> bool:
        """Alert the phone for an incoming call. False when the port is not idle (busy)."""
        if self.state is not FxsState.IDLE:
            return False
        self.state = FxsState.RINGING
        self._incoming = True
        start = self.region.cid_start if self.region.cid_standard else None
        self._cid = cid if start else None
        if self._cid is None or start == CID_AFTER_FIRST_RING:
            self._start_ring()
            if self._cid is not None:
                first_ring = sum(self.region.ring_cadence[:-1])
                self._deadlines["cid"] = now + first_ring + self.config.cid_after_ring_delay
        elif start == CID_POLARITY_REVERSAL:
            self._reversed = True
            self._out.append(port.SetPolarity(True))
            self._deadlines["cid"] = now + self.config.cid_after_reversal
        elif start == CID_DTMF_BEFORE_RING:
            self._expire_cid(now)
        elif start == CID_CAR:
            self._car = "car"
            self._ringing = True
            self._out.append(port.Ring(CAR_CADENCE))
            self._deadlines["car"] = now + self.config.car_timeout
        return True

    def handle_call_event(self, event: object, now: float, *, other: bool = False) -> None:
        """A call event from the controller about the far leg of the active call, or with
        ``other`` of the waiting/held one."""
        if other:
            self._other_call_event(event, now)
        elif isinstance(event, ev.Setup):
            cid = caller_id_of(event)
            if not self.ring(cid, now):
                self.wait(cid, now)   # False: busy (the adapter answers for the caller)
        elif isinstance(event, ev.Alerting):
            if self.state is FxsState.CALLING and not self._tone:
                self._play("ringback")
        elif isinstance(event, ev.Answer):
            if self.state is FxsState.CALLING:
                self._stop_tone()
                self.state = FxsState.CONNECTED
        elif isinstance(event, ev.Release):
            if self.state is FxsState.RINGING:
                self._stop_alerting()
                self._reset()
            elif self.state is FxsState.CONNECTED and self.other is not None:
                # silence, not busy tone (it would drown the call-waiting bursts): a flash
                # takes the other call, hanging up rings the phone for it
                self.state = FxsState.LOCKOUT
            elif self.state in _IN_CALL or self._transfer:
                self._transfer = False
                self._fail("congestion" if event.cause in _CONGESTION_CAUSES else "busy", now)

    def _other_call_event(self, event: object, now: float) -> None:
        # Only its end matters: a waiting caller who gives up (or whose call was answered
        # elsewhere, or not answered in time) stops the tone; a held party may hang up.
        if isinstance(event, ev.Release) and self.other is not None:
            self._stop_cw()
            self.other = None

    # --- internals -------------------------------------------------------------------------

    def _play(self, name: str) -> None:
        self._tone = True
        self._out.append(port.PlayTone(name))

    def _stop_tone(self) -> None:
        if self._tone:
            self._tone = False
            self._out.append(port.StopTone())

    def _dial_tone(self, now: float) -> None:
        self.state = FxsState.DIALTONE
        self.number = ""
        self._incoming = False
        self._play("stutter_dial" if self.mwi else "dial")
        self._deadlines["digit"] = now + self.config.first_digit_timeout

    def _collect(self, d: str, now: float) -> None:
        if self.state is FxsState.DIALTONE:
            self._stop_tone()
            self.state = FxsState.DIALING
        self.number += d
        verdict = self.complete(self.number, False)
        if verdict is None:
            self._deadlines["digit"] = now + self.config.inter_digit_timeout
            return
        self._deadlines.pop("digit", None)
        self._dialled(verdict, now)

    def _dialled(self, verdict: bool, now: float) -> None:
        if self._transfer:
            if verdict:
                # the call goes on without this phone, which hears silence until it hangs up
                self._transfer = False
                self.state = FxsState.LOCKOUT
                self._out.append(ev.Transfer(self.number))
            else:
                self._back_to_call()
            return
        if verdict:
            self.state = FxsState.CALLING
            self._out.append(ev.Setup(caller=self.extension, caller_name=self.name,
                                      callee=self.number, codecs=self.config.codecs))
        else:
            self._fail("congestion", now)

    def _fail(self, tone: str, now: float) -> None:
        self._stop_tone()
        self.state = FxsState.FAILED
        self._play(tone)
        for key in ("digit", "pulse"):
            self._deadlines.pop(key, None)
        self._deadlines["silence"] = now + self.config.fail_tone_s

    def _hook_break(self, duration: float, now: float) -> None:
        self._hook_down = None
        self._deadlines.pop("hangup", None)
        lo, hi = self.config.pulse_break
        if self.state in _COLLECTING and lo <= duration <= hi:
            self._pulses += 1
            self._deadlines["pulse"] = now + self.config.pulse_gap
        elif (self.state in _IN_CALL or self._transfer or self.other is not None) \
                and self.flash_min <= duration <= self.flash_max:
            self._flash(now)
        # else: a bounce, or a break that is neither pulse nor flash: ignored

    def _flash(self, now: float) -> None:
        """A hook flash in a call puts the other party on hold and gives dial tone: the number
        dialled next is where the call is transferred (blind). A second flash, a wrong number
        or no digit in time takes the phone back to the call. With another call (waiting or
        held) a flash swaps the two instead (module docstring)."""
        if self.other is not None and self.state in (FxsState.CONNECTED, FxsState.LOCKOUT):
            self._swap()
        elif self._transfer:
            self._back_to_call()
        elif self.state is FxsState.CONNECTED:
            self._out.append(Flash())
            self._out.append(ev.Hold("sendonly"))
            self._transfer = True
            self.state = FxsState.DIALTONE
            self.number = ""
            self._play("dial")
            self._deadlines["digit"] = now + self.config.first_digit_timeout

    def _swap(self) -> None:
        """The active call goes on hold (when there still is one), the other is answered or
        resumed. Hold goes out before SwapCalls and the answer after, so the port's audio
        leaves the first call's bridge before the second call is bridged."""
        other = self.other
        assert other is not None
        self._stop_cw()
        if self.state is FxsState.CONNECTED:
            self._out.append(ev.Hold("sendonly"))
            self.other = _OtherCall(incoming=self._incoming, held=True)
        else:  # LOCKOUT: the far end of the active call hung up
            self.other = None
        self._out.append(SwapCalls())
        self._incoming = other.incoming
        self.state = FxsState.CONNECTED
        self._out.append(ev.Hold("sendrecv") if other.held else ev.Answer(self.config.codecs))

    def _recall_other(self, now: float) -> None:
        """The phone hung up with another call present: ring it for that call."""
        other = self.other
        assert other is not None and self.state is FxsState.IDLE
        self.other = None
        self._out.append(SwapCalls())
        if other.held:
            self.state = FxsState.RINGING
            self._incoming = other.incoming
            self._recall = True
            self._start_ring()   # no caller ID: the phone was talking to this party already
            self._deadlines["recall"] = now + self.config.recall_timeout
        else:
            self.ring(other.cid, now)   # a waiting call not answered yet: an ordinary ring

    def _stop_cw(self) -> None:
        self._deadlines.pop("cw", None)
        self._deadlines.pop("cw_end", None)
        if self._cw_on:
            self._cw_on = False
            self._out.append(port.StopTone())

    def _back_to_call(self) -> None:
        self._stop_tone()
        self._deadlines.pop("digit", None)
        self._deadlines.pop("pulse", None)
        self._transfer = False
        self.number = ""
        self.state = FxsState.CONNECTED
        self._out.append(ev.Hold("sendrecv"))

    def _answer(self) -> None:
        self._stop_alerting()
        self.state = FxsState.CONNECTED
        if self._recall:    # the held call the phone was rung back for: resume it
            self._recall = False
            self._out.append(ev.Hold("sendrecv"))
        else:
            self._out.append(ev.Answer(self.config.codecs))

    def _start_ring(self) -> None:
        self._ringing = True
        self._out.append(port.Ring(self.region.ring_cadence))

    def _primary_response(self, now: float) -> None:
        """jp: the phone answered CAR; its caller ID follows once its receiver is ready."""
        self._deadlines.pop("car", None)
        self._ringing = False
        self._out.append(port.StopRing())
        self._car = "id"
        self._deadlines["idsend"] = now + self.config.cid_after_answer

    def _caller_id_received(self) -> None:
        """jp: the phone went back on hook after its caller ID: now it rings."""
        for key in ("idsend", "idrelease"):
            self._deadlines.pop(key, None)
        self._car = None
        self._start_ring()

    def _stop_alerting(self) -> None:
        self._car = None
        for key in ("cid", "ring", "car", "idsend", "idrelease"):
            self._deadlines.pop(key, None)
        if self._ringing:
            self._ringing = False
            self._out.append(port.StopRing())
        if self._reversed:
            self._reversed = False
            self._out.append(port.SetPolarity(False))

    def _reset(self) -> None:
        self.state = FxsState.IDLE
        self.number = ""
        self._pulses = 0
        self._hook_down = None
        self._cid = None
        self._car = None
        self._transfer = False
        self.other = None
        self._cw_on = False
        self._recall = False
        self._deadlines.clear()

    # --- deadlines (named _expire_<key>) ---------------------------------------------------

    def _expire_hangup(self, now: float) -> None:
        self._stop_tone()
        self._stop_cw()
        if self.state in _IN_CALL or self._transfer:
            self._out.append(ev.Release(self._hangup_cause()))
        other = self.other
        self._reset()
        if other is not None:
            self.other = other
            self._recall_other(now)

    def _hangup_cause(self) -> str:
        return "callee-hangup" if self._incoming else "caller-hangup"

    def _expire_cw(self, now: float) -> None:
        # one burst: the tone's "on" part (all of it but the last pause), then the pause
        cadence = TONES[self.region.tone_zone]["call_waiting"].cadence or (300, 9700)
        if not self._cw_on:
            self._cw_on = True
            self._out.append(port.PlayTone("call_waiting"))
        self._deadlines["cw_end"] = now + sum(cadence[:-1]) / 1000
        self._deadlines["cw"] = now + sum(cadence) / 1000

    def _expire_cw_end(self, now: float) -> None:
        if self._cw_on:
            self._cw_on = False
            self._out.append(port.StopTone())

    def _expire_recall(self, now: float) -> None:
        self._stop_alerting()
        self._out.append(ev.Release(self._hangup_cause()))
        self._reset()

    def _expire_pulse(self, now: float) -> None:
        d, self._pulses = str(self._pulses % 10), 0
        self._collect(d, now)

    def _expire_digit(self, now: float) -> None:
        if self.number:
            self._dialled(bool(self.complete(self.number, True)), now)
        elif self._transfer:
            self._back_to_call()
        else:
            self._fail(self.config.offhook_tone, now)

    def _expire_silence(self, now: float) -> None:
        self._stop_tone()
        self.state = FxsState.LOCKOUT

    def _expire_cid(self, now: float) -> None:
        assert self._cid is not None
        before = not self._ringing
        self._out.append(port.SendCallerId(self._cid, before_ring=before))
        if before:
            # a long DTMF caller ID (12 digits: 1.7 s) must end before the ring starts
            sent = CallerIdSender(region=self.region.code).duration(self._cid) \
                if self.region.code in CID_REGIONS else 0.0
            self._deadlines["ring"] = now + max(self.config.ring_after_cid, sent + 0.2)

    def _expire_ring(self, now: float) -> None:
        self._start_ring()

    def _expire_car(self, now: float) -> None:
        # no primary response: a phone without Number Display, rung without caller ID
        self._car = None
        self._cid = None
        self._out.append(port.StopRing())
        self._start_ring()

    def _expire_idsend(self, now: float) -> None:
        assert self._cid is not None
        self._out.append(port.SendCallerId(self._cid, before_ring=True))
        sent = CallerIdSender(region=self.region.code).duration(self._cid)
        self._deadlines["idrelease"] = now + sent + self.config.cid_release_timeout

    def _expire_idrelease(self, now: float) -> None:
        # still off hook well after the message: someone holds the handset, so it is answered
        self._answer()
