"""The call controller: passes call events between the caller's leg and the callee's legs.

It knows nothing of SIP or analog signalling, only the vocabulary in events.py. Calling an
extension with several registered contacts rings them all (forking); the first to answer wins
and the others are released. Media: once both sides have negotiated codecs the controller asks
the media engine to bridge their endpoints, with payload-type mapping and µ-law↔A-law
transcoding when the two sides chose differently. The CDR row is written at the start and at
the end of the call (group-committed, never awaited).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Protocol

from firmware.media import g711
from firmware.media.dtmfbridge import DtmfToInband, KeyWatcher, rewrite_pt
from firmware.media.player import Playlist
from firmware.media.relay import Bridge, Endpoint, MediaEngine, MediaError
from firmware.media.terminal import Terminal
from firmware.media.tones import TONES
from firmware.sip.sdp import Codec
from firmware.store.db import CdrRecord

from firmware.events import Alerting, Answer, Event, Hold, Release, Setup, Transfer, audio_codec, event_codec

if TYPE_CHECKING:
    import asyncio

    from firmware.media.player import SharedSource
    from firmware.media.recorder import RecordingStore
    from firmware.store.writer import Writer

log = logging.getLogger(__name__)

_TRANSCODE = {("PCMU", "PCMA"): g711.ULAW_TO_ALAW, ("PCMA", "PCMU"): g711.ALAW_TO_ULAW}
_ON_HOLD = ("sendonly", "inactive", "recvonly")
FEATURE_KEY_GAP = 2.0  # seconds between the keys of an in-call feature code


class Leg(Protocol):
    """What the controller needs of a leg, whatever line type it is."""

    name: str
    call: "Call | None"
    endpoint: Endpoint | None
    codecs: tuple[Codec, ...]
    answered: bool
    ended: bool

    def deliver(self, event: Event) -> None: ...


class CallHost(Protocol):
    """What the controller needs of the PBX around it: where a call is routed, the media engine
    that bridges and records it, and who hears that it was answered or ended.

    It lives here, beside ``Leg``, rather than in services.py because it names ``Call``:
    services.py imports this module, so this module must not import it."""

    loop: asyncio.AbstractEventLoop
    media: MediaEngine
    writer: Writer
    recordings: RecordingStore
    bridges: dict[Bridge, Call]  # so that a media timeout finds its call

    def setting(self, name: str) -> Any: ...
    def route(self, call: Call, setup: Setup) -> None: ...
    def place(self, call: Call, setup: Setup, kind: str, target: str | None, *, voicemail: bool = True) -> None: ...
    def extension_busy(self, number: str, delta: int) -> None: ...
    def recording_mode(self, call: Call) -> str: ...
    def recording_event(self, event: object) -> None: ...
    def music_on_hold(self) -> SharedSource: ...
    def call_ended(self, call: Call) -> None: ...


def _pass(data: bytes) -> bytes:
    return data


def _drop(data: bytes) -> None:
    return None


def extension_of(leg: object) -> str | None:
    """The extension behind a leg: the authenticated caller, or the extension rung."""
    if leg is None:
        return None
    return getattr(leg, "user", None) or getattr(leg, "callee", None)


def _safe(text: str) -> str:
    """A callee as typed (it may be "*43" or worse) made safe for a file name."""
    return "".join(c if c.isalnum() else "_" for c in text)[:32] or "_"


def terminal_on(engine: "MediaEngine", leg: Leg, **kw: object) -> Terminal | None:
    """The media engine's end of a leg's own endpoint (prompts, music, tones), in the leg's law.

    None when the leg has no endpoint or no G.711 codec negotiated yet."""
    audio, te = audio_codec(leg.codecs), event_codec(leg.codecs)
    if audio is None or leg.endpoint is None:
        return None
    kw.setdefault("on_event", lambda event: None)
    kw.setdefault("inband", False)
    return Terminal(engine, leg.endpoint, codec=audio.name.upper(), pt=audio.pt,
                    te_pt=te.pt if te else None, **kw)  # type: ignore[arg-type]


# What sends an unanswered call to voicemail; not the caller giving up, nor a number that
# does not exist.
DIVERT_CAUSES = frozenset({"no-answer", "busy", "not-registered", "unreachable", "rejected"})


def disposition(answered: bool, cause: str) -> str:
    if answered:
        return "ANSWERED"
    if cause == "busy":
        return "BUSY"
    if cause in ("cancel", "no-answer"):
        return "NO ANSWER"
    return "FAILED"


def transforms(src: tuple[Codec, ...], dst: tuple[Codec, ...]) -> tuple[dict[int, int] | None, dict[int, bytes] | None]:
    """Payload-type map and transcode tables for packets from a ``src`` leg to a ``dst`` leg.

    (None, None) when the two sides negotiated identically: the relay's zero-copy path. Events
    toward a leg without telephone-event are not in the map; ``dtmf_conversion`` plays them.
    """
    s_audio, d_audio = audio_codec(src), audio_codec(dst)
    if s_audio is None or d_audio is None:
        return None, None
    s_te, d_te = event_codec(src), event_codec(dst)
    same_audio = s_audio.name.upper() == d_audio.name.upper() and s_audio.pt == d_audio.pt
    same_te = (s_te is None and d_te is None) or (s_te is not None and d_te is not None and s_te.pt == d_te.pt)
    if same_audio and same_te:
        return None, None
    pt_map = {s_audio.pt: d_audio.pt}
    if s_te is not None and d_te is not None:
        pt_map[s_te.pt] = d_te.pt
    pt_map.setdefault(13, 13)  # comfort noise (RFC 3389) passes as it is
    table = _TRANSCODE.get((s_audio.name.upper(), d_audio.name.upper()))
    return pt_map, ({s_audio.pt: table} if table is not None else None)


def dtmf_conversion(src: tuple[Codec, ...], dst: tuple[Codec, ...]) -> dict[int, DtmfToInband] | None:
    """RFC 4733 events from ``src`` played as in-band tones toward a ``dst`` without telephone-event."""
    s_te, d_te, d_audio = event_codec(src), event_codec(dst), audio_codec(dst)
    if s_te is None or d_te is not None or d_audio is None:
        return None
    return {s_te.pt: DtmfToInband(d_audio.name.upper(), d_audio.pt)}


class Call:
    def __init__(self, pbx: CallHost, caller: Leg, *, call_id: str) -> None:
        self.pbx = pbx
        self.id = uuid.uuid4().hex
        self.a = caller
        caller.call = self
        self.candidates: list[Leg] = []
        self.b: Leg | None = None  # the callee leg that answered
        self.early: Leg | None = None  # the callee leg whose early media the caller hears
        self.bridge: Bridge | None = None
        self.on_hold = False
        self.ended = False
        self.started = time.monotonic()
        self.cdr = CdrRecord(id=self.id, call_id=call_id, caller="", callee="", start=time.time())
        self._no_answer = None
        self.setup: Setup | None = None
        self.ringback: Terminal | None = None  # while an IVR hands the answered caller on
        self.moh: Terminal | None = None  # music for the held party while the call is on hold
        # Told "answered" and "ended" (a queue follows the calls it gave, busy agents, callbacks).
        self.listeners: list[Callable[[str, Call], None]] = []
        self.recording_mode: str | None = None  # what a queue that connected the call asks for
        self.transfer_target: str | None = None
        self._carried: Any = None  # a recording carried across a transfer, waiting for the new pair
        self.record_mode = "never"  # what the policy decided at answer
        self._keys, self._key_at = "", 0.0  # in-call feature keys typed so far
        # Where the call goes if the extension rung leaves it unanswered (its voicemail).
        self.divert: tuple[str, str] | None = None

    # --- events from legs ----------------------------------------------------------------------

    def on_event(self, leg: Leg, event: Event) -> None:
        if self.ended:
            return
        if isinstance(event, Transfer) and event.replaces is not None:
            self._join(leg, event.replaces, event.target)
        elif isinstance(event, Transfer):
            self._transfer(leg, event.target)
        elif leg is self.a:
            self._from_caller(event)
        elif leg in self.candidates or leg is self.b:
            self._from_callee(leg, event)

    def _from_caller(self, event: Event) -> None:
        if isinstance(event, Setup):
            self.setup = event
            self.cdr.caller, self.cdr.callee = event.caller, event.callee
            self.pbx.writer.cdr(self.cdr)
            self.pbx.route(self, event)
        elif isinstance(event, Release):
            self.end(event.cause, source=self.a)
        elif isinstance(event, Hold) and self.b is not None:
            self._hold(event.direction, held=self.b)
            self.b.deliver(event)

    def _from_callee(self, leg: Leg, event: Event) -> None:
        if isinstance(event, Alerting):
            if self.b is None:
                if event.codecs and self.early is None:
                    self.early = leg
                self.a.deliver(event)
                if event.codecs and self.early is leg:
                    self._bridge(leg)
        elif isinstance(event, Answer):
            if self.b is not None:
                return
            self.b = leg
            if self.cdr.answer is None:  # an IVR that hands the caller on answered first
                self.cdr.answer = time.time()
            self._cancel_no_answer()
            for other in self.candidates:
                if other is not leg:
                    other.deliver(Release("answered-elsewhere"))
            self.candidates = [leg]
            self._stop_ringback()  # an application (a queue) answering a handed-on caller
            self.a.deliver(event)
            self._bridge(leg)
            self._answered()
        elif isinstance(event, Hold) and leg is self.b:
            self._hold(event.direction, held=self.a)
            self.a.deliver(event)
        elif isinstance(event, Release):
            if leg is self.b:
                self.end(event.cause, source=leg)
                return
            if leg in self.candidates:
                self.candidates.remove(leg)
            if leg is self.early:
                self.early = None
                self._unbridge()
            if not self.candidates and self.b is None:
                self.end(event.cause, status=event.status, reason=event.reason)

    # --- what the PBX asks ---------------------------------------------------------------------

    def redirect(self, leg: Leg, kind: str, target: str | None) -> None:
        """An answered application leg (an IVR, a queue) hands the caller on to a destination.

        The caller stays answered: it hears ringback from the media engine while a new callee
        rings, and is bridged to whoever answers. The CDR keeps the number first dialled.
        """
        if leg is not self.b or self.ended or self.setup is None:
            return
        self.b = None
        self.candidates = []
        self._busy(leg, -1)
        if kind == "extension":
            self.ringback = terminal_on(self.pbx.media, self.a)
            if self.ringback is not None:
                self.ringback.play(Playlist([TONES["us"]["ringback"]], loop=True), barge_in=False)
        self.pbx.place(self, self.setup if kind != "extension" else replace(self.setup, callee=target or ""),
                       kind, target)

    def _transfer(self, leg: Leg, target: str) -> None:
        """A party of the answered call hands the other to ``target`` and leaves (blind transfer).

        The party left behind hears ringback while the target rings, like a caller an IVR hands
        on; if the call was recorded, the recording of the first part ends here and the new part
        is recorded (or not) by the policy of the new pair."""
        other = self.a if leg is self.b else self.b if leg is self.a else None
        if other is None or self.b is None or self.setup is None:
            return
        log.info("call %s: %s transfers %s to %s", self.id, extension_of(leg), extension_of(other) or "the caller",
                 target)
        self._transferor_leaves(leg, other, target)
        self.b = None
        self.candidates = []
        self.setup = replace(self.setup, caller=extension_of(other) or self.setup.caller, callee=target)
        self.ringback = terminal_on(self.pbx.media, other)
        if self.ringback is not None:
            self.ringback.play(Playlist([TONES["us"]["ringback"]], loop=True), barge_in=False)
        self.pbx.route(self, self.setup)

    def _join(self, leg: Leg, consult: Leg, target: str) -> None:
        """Attended transfer: the party on ``leg`` talked to someone else on another call
        (``consult`` is its leg there) and now joins the two others and leaves both calls.

        The other call gives up its far party, which this call takes in place of ``leg``; that
        call ends as "transferred" (its CDR closes), this one goes on with the new pair, and a
        recording of it follows as in a blind transfer. Both far parties were answered already,
        so they are bridged at once; one held by the transferor is taken off hold."""
        other = self.a if leg is self.b else self.b if leg is self.a else None
        second = consult.call
        far = None if second is None else second.b if consult is second.a else second.a if consult is second.b else None
        if other is None or self.b is None or self.setup is None or second is None or second is self \
                or second.ended or second.b is None or far is None:
            log.warning("call %s: attended transfer by %s refused: no answered call to join", self.id,
                        extension_of(leg))
            return
        log.info("call %s: %s joins %s with %s (call %s)", self.id, extension_of(leg),
                 extension_of(other) or "the caller", extension_of(far) or target, second.id)
        held_far = second.on_hold
        second._stop_moh()
        second.end("transferred", source=far)  # releases the transferor's consult leg only
        self._transferor_leaves(leg, other, extension_of(far) or target)
        if held_far:
            far.deliver(Hold("sendrecv"))
        far.call = self
        self.b = far
        self.candidates = [far]
        self.setup = replace(self.setup, caller=extension_of(other) or self.setup.caller,
                             callee=extension_of(far) or target)
        self._bridge(far)
        self._answered()

    def _transferor_leaves(self, leg: Leg, other: Leg, target: str) -> None:
        """What both transfers share: listeners told, the transferor released, ``other`` (off
        hold) becomes the caller, a recording carried to the new pair."""
        self.transfer_target = target
        for listener in list(self.listeners):
            listener("transferred", self)
        self._busy(self.b, -1)
        self._carry_recording()
        self._unbridge()
        self._stop_moh()
        if self.on_hold:  # e.g. a hook flash or a consultation put the other party on hold
            other.deliver(Hold("sendrecv"))
        self.on_hold = False
        self.recording_mode = None  # a queue's policy covered its agent, not whoever comes next
        leg.deliver(Release("transferred"))
        self.a = other

    def _carry_recording(self) -> None:
        """The recording follows the call while its bridge is set aside (a transfer, an analog
        phone's hold): it goes on with silence and takes the next pair bridged (``_record``), in
        the same file the CDR names."""
        if self.bridge is not None and self.bridge.recording is not None:
            self._carried = self.bridge.recording
            self.bridge.recording = None
            self._carried.detach()

    def connect(self, leg: Leg, answered: Leg) -> None:
        """An application leg (a queue) hands the caller to a leg that already answered (an agent)."""
        if leg is not self.b or self.ended:
            answered.deliver(Release("answered-elsewhere"))
            return
        self._busy(leg, -1)
        answered.call = self
        self.b = answered
        self.candidates = [answered]
        self._bridge(answered)
        self._answered()

    def _answered(self) -> None:
        self._busy(self.b, +1)
        for listener in list(self.listeners):
            listener("answered", self)
        self.record_mode = self.pbx.recording_mode(self)
        if self.record_mode == "always" or self._carried is not None:
            self._record()
        elif self.record_mode == "on-demand":
            self._apply_transforms()  # watch the parties' keys for *1

    def _key(self, leg: Leg, key: str) -> None:
        """A key a party typed during the call: *1 starts or stops an on-demand recording."""
        now = time.monotonic()
        self._keys = (self._keys + key)[-2:] if now - self._key_at < FEATURE_KEY_GAP else key
        self._key_at = now
        if self._keys != "*1" or self.ended or self.record_mode != "on-demand" or self.bridge is None:
            return
        self._keys = ""
        if self.bridge.recording is None:
            log.info("call %s: recording started on demand by %s", self.id, extension_of(leg))
            self._record()
        else:
            log.info("call %s: recording stopped on demand by %s", self.id, extension_of(leg))
            self.bridge.stop_recording()

    def _busy(self, leg: Leg | None, delta: int) -> None:
        """Keeps the PBX's count of answered calls per extension (an agent on a call is busy)."""
        if self.b is None and delta > 0:
            return
        for ext in (extension_of(self.a), extension_of(leg)):
            if ext:
                self.pbx.extension_busy(ext, delta)

    def _stop_ringback(self) -> None:
        if self.ringback is not None:
            self.ringback.close()
            self.ringback = None

    def add_callee(self, leg: Leg) -> None:
        leg.call = self
        self.candidates.append(leg)

    def start_no_answer_timer(self, seconds: float) -> None:
        self._no_answer = self.pbx.loop.call_later(seconds, self._no_answer_expired)

    def _no_answer_expired(self) -> None:
        self._no_answer = None
        if self.b is None and not self.ended:
            self.end("no-answer")

    def _cancel_no_answer(self) -> None:
        if self._no_answer is not None:
            self._no_answer.cancel()
            self._no_answer = None

    def fail(self, cause: str, status: int | None = None, reason: str | None = None) -> None:
        """Routing could not place the call."""
        self.end(cause, status=status, reason=reason)

    def end(self, cause: str, *, source: Leg | None = None, status: int | None = None, reason: str | None = None) -> None:
        if self.ended or self._diverted(cause, source):
            return
        self.ended = True
        self._cancel_no_answer()
        self._stop_ringback()
        self._stop_moh()
        self._unbridge()
        if self._carried is not None:
            self._carried.stop()
            self._carried = None
        release = Release(cause, status, reason)
        for leg in [self.a, *self.candidates]:
            if leg is not source and not leg.ended:
                try:
                    leg.deliver(release)
                except Exception:
                    # A leg that fails to hang up must not keep the call, and its CDR row, open.
                    log.exception("call %s: releasing %s failed", self.id, leg.name)
        for listener in list(self.listeners):
            listener("ended", self)
        if self.b is not None:
            # after the listeners: a queue has put its agent in wrap-up by the time the other
            # queues hear the agent is free
            self._busy(self.b, -1)
        self.cdr.end = time.time()
        self.cdr.disposition = disposition(self.b is not None, cause)
        self.cdr.cause = cause
        if self.cdr.callee:
            self.pbx.writer.cdr(self.cdr)
        self.pbx.call_ended(self)
        # The legs finish their own SIP exchanges without the call: cutting their link to it
        # lets reference counting free both (see _Side._closed in firmware/media/relay.py).
        for leg in [self.a, *self.candidates]:
            if leg.call is self:
                leg.call = None

    def _diverted(self, cause: str, source: Leg | None) -> bool:
        """An unanswered extension's call goes on to its mailbox instead of ending."""
        if self.divert is None or self.b is not None or source is self.a or cause not in DIVERT_CAUSES \
                or self.setup is None:
            return False
        kind, target = self.divert
        self.divert = None
        log.info("call %s: %s did not answer (%s): to %s %s", self.id, target, cause, kind, target)
        self._cancel_no_answer()
        for leg in self.candidates:
            if not leg.ended:
                leg.deliver(Release(cause))
        self.candidates = []
        if self.early is not None:
            self.early = None
            self._unbridge()
        self.pbx.place(self, self.setup, kind, target)
        return True

    # --- media ---------------------------------------------------------------------------------

    def media_changed(self, leg: Leg) -> None:
        """A leg renegotiated (answer sent, re-INVITE): refresh the bridge's transforms."""
        other = self.b if leg is self.a else self.a
        if self.bridge is not None and other is not None:
            self._apply_transforms()

    def _bridge(self, callee: Leg) -> None:
        a_ep, b_ep = self.a.endpoint, callee.endpoint
        if a_ep is None or b_ep is None:
            return
        self._stop_ringback()
        if self.bridge is not None:
            if self.bridge.b is b_ep:
                self._apply_transforms()
                return
            self._unbridge()
        try:
            self.bridge = self.pbx.media.bridge(a_ep, b_ep)
        except MediaError as exc:
            log.error("call %s: cannot bridge media: %s", self.id, exc)
            return
        self.pbx.bridges[self.bridge] = self
        self._bridged_leg = callee
        self._apply_transforms()

    def _apply_transforms(self) -> None:
        br = self.bridge
        callee = getattr(self, "_bridged_leg", None)
        if br is None or callee is None or not self.a.codecs or not callee.codecs:
            return
        for direction, src_leg, dst_leg in (("a->b", self.a, callee), ("b->a", callee, self.a)):
            src, dst = src_leg.codecs, dst_leg.codecs
            pt_map, transcode = transforms(src, dst)
            convert = dtmf_conversion(src, dst)
            te = event_codec(src)
            if self.record_mode == "on-demand" and te is not None and extension_of(src_leg):
                # A party may type *1 while talking: watch its keys on their way through.
                converter = (convert or {}).get(te.pt)
                if converter is not None:
                    forward = converter.convert
                elif pt_map is None:
                    forward = _pass
                elif te.pt in pt_map:
                    forward = rewrite_pt(pt_map[te.pt])
                else:
                    forward = _drop
                watcher = KeyWatcher(lambda key, leg=src_leg: self.pbx.loop.call_soon(self._key, leg, key), forward)
                convert = {**(convert or {}), te.pt: watcher}
            br.set_transform(direction, pt_map=pt_map, transcode=transcode, convert=convert)
        br.timeout = self.pbx.setting("rtp.hold_timeout" if self.on_hold else "rtp.timeout")

    def _hold(self, direction: str, held: Leg) -> None:
        """One party put the other on hold (or took it off): the held party hears music.

        While held, the bridge is set aside and the held party's endpoint plays the box's shared
        music-on-hold source; on resume the bridge comes back. A call being recorded keeps its
        bridge (and so its recording) and the held party hears what the holder sends.
        """
        self.on_hold = direction in _ON_HOLD
        callee = self.b
        holder = self.a if held is self.b else self.b
        # An analog phone on call waiting holds one call to talk on another through the same
        # port endpoint: a recorded call must give up its bridge then; the recording goes on.
        yield_bridge = getattr(holder, "shared_endpoint", False)
        if self.on_hold and self.moh is None and callee is not None and audio_codec(held.codecs) is not None \
                and held.endpoint is not None and (self.bridge is None or self.bridge.recording is None
                                                   or yield_bridge):
            self._carry_recording()
            self._unbridge()
            self.moh = terminal_on(self.pbx.media, held)
            if self.moh is not None:
                self.moh.play(self.pbx.music_on_hold(), barge_in=False)
        elif not self.on_hold and self.moh is not None:
            self._stop_moh()
            if callee is not None:
                self._bridge(callee)
                if self._carried is not None:
                    self._record()  # takes the carried recording back onto the bridge
        if self.bridge is not None:
            self.bridge.timeout = self.pbx.setting("rtp.hold_timeout" if self.on_hold else "rtp.timeout")

    def _stop_moh(self) -> None:
        if self.moh is not None:
            self.moh.close()
            self.moh = None

    def _record(self) -> None:
        """Records the answered call: caller left, callee right (or mixed), crash-safe .part file."""
        br, callee = self.bridge, self.b
        if br is None or callee is None or br.recording is not None:
            return
        laws = tuple((audio_codec(leg.codecs) or Codec("PCMU", 0)).name.upper() for leg in (self.a, callee))
        if self._carried is not None:
            carried, self._carried = self._carried, None
            carried.attach(br, laws)  # type: ignore[arg-type]
            return
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{self.cdr.caller}-{_safe(self.cdr.callee)}-{self.id[:8]}.wav"
        try:
            recorder = self.pbx.recordings.recorder(name, mode=self.pbx.setting("recording.mode"))
            br.record(recorder, codecs=laws, on_event=self.pbx.recording_event)  # type: ignore[arg-type]
        except (OSError, MediaError) as exc:
            # A full or broken disk costs the recording, never the call.
            log.error("call %s: cannot record: %s", self.id, exc)
            return
        self.cdr.recording = name
        self.pbx.writer.cdr(self.cdr)

    def _unbridge(self) -> None:
        if self.bridge is not None:
            self.pbx.bridges.pop(self.bridge, None)
            self.bridge.close()
            self.bridge = None

    def media_timeout(self) -> None:
        if self.bridge is not None and self.bridge.lost:
            log.error("call %s: the media worker relaying it died, releasing", self.id)
            self.end("media-failure")
            return
        log.warning("call %s: no RTP for %.0f s, releasing", self.id,
                    self.bridge.timeout if self.bridge and self.bridge.timeout else 0)
        self.end("media-timeout")

    def summary(self) -> dict[str, object]:
        return {
            "id": self.id,
            "caller": self.cdr.caller,
            "callee": self.cdr.callee,
            "state": "answered" if self.b is not None else "ringing",
            "seconds": round(time.monotonic() - self.started, 1),
            "on_hold": self.on_hold,
            "codecs": [c.name for c in self.a.codecs[:1]] + [c.name for c in (self.b.codecs[:1] if self.b else ())],
        }
