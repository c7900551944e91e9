"""Media termination: the engine's end of a call leg when the box is the far end.

The PBX never touches RTP (STYLE.md §5). For an IVR, a prompt, a feature code
(``*43`` echo test ...) or voicemail it attaches a ``Terminal`` to the leg's
``Endpoint`` and asks it to ``play``, ``echo`` or ``record``; the terminal
reports ``DigitDetected``, ``PlaybackFinished`` and ``MediaTimeout`` back
through ``on_event``. ``BridgeRecording`` records a relayed call: a tap on
both directions of a ``Bridge`` that only lists the packets; the engine's
recording thread does the rest in batches, in the media worker relaying the
bridge if there is one (see its doc).

Receive path (``on_rtp``, called by the relay for an endpoint that is not
bridged): RFC 4733 packets (PT == ``te_pt``) go to a ``DtmfReceiver``; audio
(PT == ``pt``) goes to a ``JitterBuffer``, but only when something consumes
it (in-band detection, echo, recording) -- a prompt-only leg parses nothing
but the PT byte.

Send path (``on_tick``, one call per 20 ms from the engine's ``FrameClock``
for every terminal together): the frame comes from the echo (the jitter
buffer's frame sent back as received), else the playing source, else G.711
silence (comfort silence keeps NAT bindings open and the phone's jitter
buffer fed; ``comfort_silence=False`` sends nothing instead). Each frame is
an RTP packet with our own SSRC, sequence number and timestamp (+160 per
frame, including frames the clock had to skip after a stall), the marker bit
on the first packet of a talkspurt (RFC 3551 §4.1), sent to the endpoint's
remote (the latched address). Prompts arrive pre-encoded (player.py), so a
frame costs a slice, a header pack and one ``sendto``.

Events are delivered with ``loop.call_soon``, never from inside ``play`` /
``stop`` / a packet callback, so a handler may call back into the terminal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import weakref
from collections import deque
from dataclasses import dataclass
from struct import Struct
from typing import Callable, Union

from .dtmf import DigitDetected, DtmfDetector, DtmfReceiver
from .g711 import alaw2lin, ulaw2lin
from .jitterbuffer import JitterBuffer, conceal
from .player import CODECS, FRAME, Playlist, SharedSource, silence_payload
from .workers import decode_event
from .recorder import (PART_SUFFIX, CallRecorder, DiskFull, RecordingStopped, RecordingWriter,
                       TapRecording, recover, rtp_payload)
from .relay import Endpoint, MediaEngine, MediaError

__all__ = ["Terminal", "BridgeRecording", "PlaybackFinished", "MediaTimeout", "MediaEvent",
           "DigitDetected", "RecordingStopped", "DiskFull", "STATIC_PT"]

log = logging.getLogger(__name__)

_HDR = Struct("!BBHII")
_MASK32 = 0xFFFFFFFF
STATIC_PT = {"PCMU": 0, "PCMA": 8}       # RFC 3551 static payload types
_DECODERS = {"PCMU": ulaw2lin, "PCMA": alaw2lin}
_PCM_SILENCE = bytes(2 * FRAME)
DUPLICATE_WINDOW = 0.3                # s: the same key seen by RFC 4733 and in-band is one press
_TIMEOUT_CHECK = 25                     # ticks between media-timeout checks (0.5 s)


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """A ``play`` ended: the source ran out (interrupted=False), or stop / barge-in /
    another ``play`` / ``echo`` / ``close`` cut it (interrupted=True)."""
    playback_id: int
    interrupted: bool


@dataclass(frozen=True, slots=True)
class MediaTimeout:
    """No RTP from the phone for ``seconds`` (reported once per silent period)."""
    seconds: float


MediaEvent = Union[DigitDetected, PlaybackFinished, MediaTimeout, RecordingStopped, DiskFull]


_payload = rtp_payload          # shared with the bridge recordings' writer (recorder.py)


class _Flusher:
    """Runs a CallRecorder's flush / close in the default executor, off the packet path."""

    __slots__ = ("loop", "recorder", "on_event", "busy", "stopped")

    def __init__(self, loop: asyncio.AbstractEventLoop, recorder: CallRecorder,
                 on_event: Callable[[MediaEvent], None] | None) -> None:
        self.loop = loop
        self.recorder = recorder
        self.on_event = on_event
        self.busy = False
        self.stopped = False

    def write(self, left: bytes | None, right: bytes | None) -> None:
        rec = self.recorder
        full = rec.write(left, right)       # flushes itself only if we fell 10 s behind
        if full is not None:
            self._disk_full(full)
        elif rec.flush_due and not self.busy:
            self.busy = True
            fut = self.loop.run_in_executor(None, rec.flush)
            fut.add_done_callback(self._flushed)

    def _flushed(self, fut: asyncio.Future) -> None:
        self.busy = False
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.error("recording %s: flush failed: %s", self.recorder.path, exc)
            self.stopped = True
            self.stop()
        elif fut.result() is not None:
            self._disk_full(fut.result())

    def _disk_full(self, event: DiskFull) -> None:
        # The recorder has already finalised its file; the call goes on.
        if self.stopped:
            return
        self.stopped = True
        if self.on_event is not None:
            self.on_event(event)
        self.stop()

    def stop(self) -> asyncio.Future:
        """Close the recorder in the executor; the future (and on_event) get RecordingStopped."""
        self.stopped = True
        fut = self.loop.run_in_executor(None, self.recorder.close)
        if self.on_event is not None:
            on_event = self.on_event

            def done(f: asyncio.Future) -> None:
                if not f.cancelled() and f.exception() is None:
                    on_event(f.result())
            fut.add_done_callback(done)
        return fut


class Terminal:
    """The engine's end of a call leg when the box itself is the far end (IVR, prompts,
    feature codes, voicemail). See the module doc for the receive and send paths.

    ``codec`` "PCMU" or "PCMA" with payload type ``pt`` (default the static one);
    ``te_pt`` the negotiated telephone-event PT, or None; ``inband`` (default: True
    exactly when ``te_pt`` is None) runs the Q.24 detector on received audio.
    ``media_timeout`` seconds without RTP give one ``MediaTimeout`` (None: never).
    """

    def __init__(self, engine: MediaEngine, endpoint: Endpoint, *, codec: str = "PCMU",
                 pt: int | None = None, te_pt: int | None = None,
                 on_event: Callable[[MediaEvent], None],
                 inband: bool | None = None, media_timeout: float | None = None,
                 comfort_silence: bool = True) -> None:
        if codec not in CODECS:
            raise MediaError(f"codec must be one of {CODECS}, not {codec!r}")
        if endpoint.closed:
            raise MediaError(f"{endpoint} is closed")
        if endpoint.bridge is not None:
            raise MediaError(f"{endpoint} is bridged; close the bridge first")
        if endpoint.terminal is not None:
            raise MediaError(f"{endpoint} already has a terminal")
        self.engine = engine
        self.endpoint = endpoint
        self.codec = codec
        self.pt = STATIC_PT[codec] if pt is None else pt
        self.te_pt = te_pt
        self.inband = te_pt is None if inband is None else inband
        self.media_timeout = media_timeout
        self.comfort_silence = comfort_silence
        self._on_event = on_event
        self._loop = engine.loop
        self._side = endpoint._rtp
        self._decode = _DECODERS[codec]
        self._silence = silence_payload(codec)
        # RFC 3550 §5.1: random initial SSRC, sequence number and timestamp
        self.ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self._talking = False           # last tick sent a packet (marker on the next start)
        self.packets_sent = 0
        self.send_errors = 0
        # playback
        self._source: Playlist | SharedSource | None = None
        self._playback_id = 0
        self._barge_in = True
        # receive side
        self._dtmf = DtmfReceiver() if te_pt is not None else None
        self._detector = DtmfDetector() if self.inband else None
        self._echo = False
        self._last_digit: tuple[str, str, float] | None = None
        self._flusher: _Flusher | None = None
        self._jb: JitterBuffer | None = None
        self._last_pcm = _PCM_SILENCE
        self._lost_run = 0
        self._update_rx()
        # media timeout
        self._seen = -1
        self._since = self._loop.time()
        self._timed_out = False
        self._tick_n = 0
        self.closed = False
        endpoint.terminal = self
        self._side.term = self
        engine.clock.add(self)

    # --- commands -----------------------------------------------------------

    @property
    def playing(self) -> int | None:
        """The id of the playback in progress, or None."""
        return self._playback_id if self._source is not None else None

    def play(self, playlist: Playlist | SharedSource, *, barge_in: bool = True) -> int:
        """Play ``playlist`` from the next tick; returns its playback id.

        Replaces what was playing (that one finishes interrupted) and turns
        echo off. With ``barge_in`` a detected digit stops it.
        """
        self._check_open()
        self._finish(True)
        if self._echo:
            self.echo(False)
        if isinstance(playlist, SharedSource):
            playlist.listeners += 1
        elif not isinstance(playlist, Playlist):
            raise MediaError(f"cannot play {playlist!r}")
        self._playback_id += 1
        self._source = playlist
        self._barge_in = barge_in
        return self._playback_id

    def stop(self) -> None:
        """Stop the playback (PlaybackFinished interrupted=True); silence follows."""
        self._finish(True)

    def echo(self, on: bool = True) -> None:
        """Echo test (*43): what the phone sends (through the jitter buffer) is sent back.

        Turning it on stops any playback."""
        self._check_open()
        if on:
            self._finish(True)
        self._echo = on
        self._update_rx()

    def record(self, recorder: CallRecorder) -> None:
        """Record what the phone sends (mono; a stereo recorder gets silence on the right)."""
        self._check_open()
        if self._flusher is not None:
            raise MediaError("already recording; stop_recording() first")
        self._flusher = _Flusher(self._loop, recorder, self._emit)
        self._update_rx()

    def stop_recording(self) -> asyncio.Future | None:
        """Stop recording; the future resolves to RecordingStopped (also sent as an event)."""
        fl, self._flusher = self._flusher, None
        self._update_rx()
        if fl is None or fl.stopped:
            return None
        return fl.stop()

    def close(self) -> None:
        """Stop everything and detach from the endpoint (which stays open for the leg)."""
        if self.closed:
            return
        self._finish(True)
        self.stop_recording()
        self.closed = True
        self.engine.clock.remove(self)
        if self._side.term is self:
            self._side.term = None
        if self.endpoint.terminal is self:
            self.endpoint.terminal = None

    # --- internals ----------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise MediaError("terminal is closed")

    def _emit(self, event: MediaEvent) -> None:
        self._loop.call_soon(self._on_event, event)

    def _finish(self, interrupted: bool) -> None:
        src = self._source
        if src is None:
            return
        self._source = None
        if isinstance(src, SharedSource):
            src.listeners -= 1
        self._emit(PlaybackFinished(self._playback_id, interrupted))

    def _update_rx(self) -> None:
        """Buffer received audio only while something uses it."""
        need = self._echo or self._detector is not None or self._flusher is not None
        if need and self._jb is None:
            self._jb = JitterBuffer()
        elif not need:
            self._jb = None

    def _digit(self, d: DigitDetected) -> None:
        # A phone may send a key both as RFC 4733 events and as in-band audio; listening to
        # both (to serve either kind of phone) must still give one digit per key press.
        now = self._loop.time()
        last = self._last_digit
        if last is not None and last[0] == d.digit and last[1] != d.source and now - last[2] < DUPLICATE_WINDOW:
            return
        self._last_digit = (d.digit, d.source, now)
        playing = self.playing
        self._emit(d)
        # Barge-in stops what the caller heard when they pressed the key, not a playback the
        # application started in answer to that key.
        if self._barge_in and self._source is not None and self.playing == playing:
            self._finish(True)

    def on_rtp(self, data: bytes) -> None:
        """A packet from the phone (latched source), called by the relay's reader."""
        if len(data) < 12:
            return
        b1 = data[1]
        pt = b1 & 0x7F
        if pt == self.pt:
            jb = self._jb
            if jb is not None:
                payload = _payload(data)
                if payload:
                    seq, ts, ssrc = _HDR.unpack_from(data)[2:]
                    jb.put_raw(seq, ts, ssrc, payload, self._loop.time(), bool(b1 & 0x80))
        elif pt == self.te_pt and self._dtmf is not None:
            payload = _payload(data)
            if payload:
                ts = int.from_bytes(data[4:8], "big")
                for d in self._dtmf.feed(ts, payload, bool(b1 & 0x80)):
                    self._digit(d)

    def _receive(self, now: float) -> bytes | None:
        """One tick of received audio: the payload to echo; feeds detector and recorder."""
        frame = self._jb.get(now)
        payload = None
        pcm = None
        if frame is not None:
            if frame.concealed:
                self._lost_run += 1
                if self._flusher is not None or self._detector is not None:
                    pcm = conceal(self._last_pcm, self._lost_run)
            else:
                payload = frame.payload
                self._lost_run = 0
                if self._flusher is not None or self._detector is not None:
                    pcm = self._decode(payload)
                    self._last_pcm = pcm
        det = self._detector
        if det is not None:
            # silence keeps the detector's timeline (pauses between digits) right
            for d in det.feed(pcm if pcm is not None else _PCM_SILENCE):
                self._digit(d)
        fl = self._flusher
        if fl is not None and not fl.stopped:
            fl.write(pcm, None)
        return payload

    def on_tick(self, frame: int, count: int, skipped: int, now: float) -> None:
        """The clock's call: produce ``count`` frames (see module doc)."""
        if skipped:
            self._ts = (self._ts + FRAME * skipped) & _MASK32
            self._talking = False
        side = self._side
        for i in range(count):
            echoed = self._receive(now) if self._jb is not None else None
            payload = None
            if self._echo:
                payload = echoed
            else:
                src = self._source
                if src is not None:
                    if type(src) is Playlist:
                        payload = src.next_payload(self.codec)
                    else:
                        payload = src.payload(frame + i, self.codec)
                    if payload is None:
                        self._finish(False)
            if payload is None and self.comfort_silence:
                payload = self._silence
            dest = side.dest
            if payload is None or dest is None:
                self._talking = False
            else:
                b1 = self.pt
                if not self._talking:
                    b1 |= 0x80
                    self._talking = True
                try:
                    side.sendto(_HDR.pack(0x80, b1, self._seq, self._ts, self.ssrc) + payload,
                                dest)
                except OSError:         # send buffer full / unreachable: drop, never queue
                    self.send_errors += 1
                else:
                    self.packets_sent += 1
                    side.packets_out += 1
                self._seq = (self._seq + 1) & 0xFFFF
            self._ts = (self._ts + FRAME) & _MASK32
        if self.media_timeout is not None:
            self._tick_n += 1
            if self._tick_n >= _TIMEOUT_CHECK:
                self._tick_n = 0
                self._check_timeout(now)

    def _check_timeout(self, now: float) -> None:
        n = self._side.packets_in
        if n != self._seen:
            self._seen, self._since, self._timed_out = n, now, False
        elif not self._timed_out and now - self._since > self.media_timeout:
            self._timed_out = True
            self._emit(MediaTimeout(round(now - self._since, 3)))

    def __repr__(self) -> str:
        state = ("echo" if self._echo else f"playing #{self._playback_id}" if self._source
                 else "idle")
        return (f"Terminal({self.endpoint.local_port}, {self.codec}/{self.pt}, te={self.te_pt}, "
                f"inband={self.inband}, {state}, sent={self.packets_sent})")


BATCH_SECONDS = 0.5     # a recorded call's tapped packets go to the writer this often...
_SLOTS = 5              # ...staggered: each timer firing (every 0.1 s) takes a fifth of the calls


class _TapService:
    """An engine's recording machinery: the one writer thread and the one batching timer.

    Recorded calls are spread over ``_SLOTS`` slots; the timer visits one slot per firing, so
    each call hands over a batch every ``BATCH_SECONDS`` and never all calls on one tick. The
    timer runs only while something is recorded."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writer = RecordingWriter(loop.call_soon_threadsafe)
        self.slots: list[dict[BridgeRecording, None]] = [{} for _ in range(_SLOTS)]
        self._slot = 0
        self._timer: asyncio.TimerHandle | None = None
        self.recordings = 0
        self.packets = 0                 # tapped packets laid out in this process

    def __contains__(self, rec: "BridgeRecording") -> bool:
        return any(rec in slot for slot in self.slots)

    def add(self, rec: "BridgeRecording") -> None:
        if rec in self:
            return
        min(self.slots, key=len)[rec] = None
        self.recordings += 1
        if self._timer is None:
            self._timer = self.loop.call_later(BATCH_SECONDS / _SLOTS, self._fire)

    def remove(self, rec: "BridgeRecording") -> None:
        for slot in self.slots:
            if rec in slot:
                del slot[rec]
                self.recordings -= 1
                break
        if not self.recordings and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        slot = self.slots[self._slot]
        self._slot = (self._slot + 1) % _SLOTS
        self._timer = self.loop.call_later(BATCH_SECONDS / _SLOTS, self._fire)
        for rec in list(slot):
            rec._hand_over()


# One per engine, made on first use (MediaEngine.clock and .sounds are made the same way).
_services: "weakref.WeakKeyDictionary[MediaEngine, _TapService]" = weakref.WeakKeyDictionary()


def tap_service(engine: MediaEngine) -> _TapService:
    svc = _services.get(engine)
    if svc is None or svc.loop is not engine.loop:
        svc = _services[engine] = _TapService(engine.loop)
    return svc


def _checked_return(sent: dict, message: dict) -> tuple[dict | None, list, int]:
    """A worker's ``recorded`` against the file description ``sent`` to it: (the description to
    go on with, or None if the recording ended there; its events; the octets it wrote).

    Only where the file stopped comes from the worker: the header unchanged, the data no
    shorter than it was and whole frames; a finished file has the name that was sent (or its
    ``.part``, if finishing failed). Anything else raises ValueError."""
    written = int(message["written"])
    if written < 0:
        raise ValueError(f"written {written}")
    back = message.get("file")
    if back is not None:
        header, data = (int(v) for v in back["at"])
        if header != sent["at"][0] or data < sent["at"][1] or (data - sent["at"][1]) % 2:
            raise ValueError(f"the file came back at {back['at']}, sent at {sent['at']}")
        return {**sent, "at": [header, data], "seconds": float(back["seconds"])}, [], written
    events = [decode_event(e) for e in message.get("events", ())]
    names = (sent["path"], sent["path"] + PART_SUFFIX)
    if not events or not all(e.path in names for e in events):
        raise ValueError(f"events {events!r} are not of {sent['path']}")
    return None, events, written


def _repaired(part: str) -> tuple[str, float, int] | None:
    """A dead writer's ``.part`` repaired under its final name: (name, seconds, octets)."""
    found = recover(part)
    return None if found is None else (*found, os.path.getsize(found[0]))


class BridgeRecording:
    """A ``Bridge``'s recording (made by ``Bridge.record``), at little more than relaying cost.

    Packet path: the relay's per-packet ``tap`` on each side is the ``append``
    of a list -- a C call, no parsing, no clock, no copy. Every
    ``BATCH_SECONDS`` (staggered across calls) the engine's timer hands both
    lists, with the time, to the engine's one ``RecordingWriter``
    thread, where ``TapRecording`` places the packets by RTP timestamp
    (reordering, gaps -> silence, drift; see ``recorder.TapTimeline``),
    decodes each side's G.711 law in bulk, interleaves (caller left, callee
    right; or the mono mix) and writes the ``.part`` file. No clock tick per
    call: the recording's time is the batches' time, so the channels stay
    aligned and a side that sends nothing is silence.

    ``stop`` hands over the last batch and finalises the file on the same
    thread (in order after every batch); its future resolves on the loop. A
    full disk or a failed write ends the recording by itself: ``DiskFull``
    and ``RecordingStopped`` go to ``on_event``, the call goes on.

    Media workers. A bridge relayed by a media worker (workers.py) is recorded there, by this
    same class in the worker's process, so no recorded packet crosses into the PBX process.
    This object stays the recording's owner: it starts, stops, detaches and attaches it and
    reports its events. A stay of the recording in a worker (a *trip*) begins when the worker
    is told to tap the bridge for it, and the file follows: the last batch is written where
    the file was, which closes it unfinished (``TapRecording.suspend``) and sends its
    description on (``resume``). The file comes back when the worker stops tapping the bridge,
    unless the worker was told to finish it there (``stop``). One process writes the file at a
    time; a trip waiting for it collects its packets meanwhile, so none is lost on the way. A
    worker that dies with the file leaves a ``.part``, repaired at once: the recording ends
    there (reason "lost"), playable up to the worker's last write.

    Without a ``recorder`` the file is elsewhere yet (the worker's side of a trip): the taps
    collect until ``resume``; ``account`` then counts what the file grows by here.
    """

    def __init__(self, engine: MediaEngine, bridge, recorder: CallRecorder | None,
                 codecs: tuple[str, str], on_event: Callable[[MediaEvent], None] | None, *,
                 account: Callable[[int, str | None], None] | None = None) -> None:
        laws = self._laws_of(codecs)
        self.engine = engine
        self.bridge = bridge
        self._loop = engine.loop
        self._on_event = on_event
        self._laws = laws
        self._svc = tap_service(engine)
        self._account = recorder.account if recorder is not None else account
        # time.monotonic(), not the loop's time: one clock for the PBX and its workers, so the
        # file's timeline goes on in another process.
        self._job = TapRecording(recorder, time.monotonic(), laws) if recorder is not None else None
        self._a: list[bytes] = []
        self._b: list[bytes] = []
        self._taps = (self._a.append, self._b.append)
        self._sides: tuple = ()
        self._onward: deque = deque()          # (worker, trip id): trips waiting for the file, in order
        self._away: tuple | None = None        # (worker, trip id, the file as sent): the trip writing it
        self._result: RecordingStopped | None = None   # set once reported (stopped or ended)
        self._stopping: tuple[asyncio.Future, bool] | None = None   # and whether to finish the file
        self._stop_at = 0.0
        self._salvaging: asyncio.Task | None = None    # held: the loop keeps tasks only weakly
        self._tap(bridge)
        self._place()

    @staticmethod
    def _laws_of(codecs) -> tuple[str, str]:
        for c in codecs:
            if c not in CODECS:
                raise MediaError(f"codec must be one of {CODECS}, not {c!r}")
        return (codecs[0], codecs[1])

    @property
    def laws(self) -> tuple[str, str]:
        return self._laws

    @property
    def tapping(self) -> bool:
        """Whether it takes a bridge's packets (not detached, stopped or ended)."""
        return bool(self._sides)

    def _tap(self, bridge) -> None:
        self._sides = (bridge.a._rtp, bridge.b._rtp)
        self._sides[0].tap, self._sides[1].tap = self._taps
        bridge._taps_changed(self)

    def _untap(self, finish: bool = False) -> None:
        if not self._sides:
            return
        for side, tap in zip(self._sides, self._taps):
            if side.tap == tap:
                side.tap = None
        self._sides = ()
        if self.bridge is not None:
            self.bridge._taps_changed(None, finish)

    def _take(self) -> tuple[float, list[bytes], list[bytes]]:
        a, b = self._a.copy(), self._b.copy()
        self._a.clear()
        self._b.clear()
        self._svc.packets += len(a) + len(b)
        return time.monotonic(), a, b

    def _place(self) -> None:
        """Puts the file to work if it is here: on to the first trip waiting for it, else
        finished or given up as asked, else written here batch by batch."""
        job = self._job
        if job is None or self._result is not None:
            return
        if not self._onward and self._stopping is None:
            self._svc.add(self)
            return
        self._svc.remove(self)
        self._job = None
        now, a, b = self._take()
        if self._onward:
            self._suspend(job, now, a, b, self._sent)
        elif self._stopping[1]:
            self._svc.writer.submit(job.finish, self._stop_at, a, b, self._laws, disk=True,
                                    then=lambda done, error: self._finished(job, done, error))
        else:
            self._suspend(job, self._stop_at, a, b, self._stopping[0].set_result)

    def _suspend(self, job: TapRecording, now: float, a: list, b: list, then) -> None:
        """The last batch here and the file closed unfinished, on the writer thread in order;
        then ``then(description)``, unless the recording ended on the way."""
        def done(result, error: BaseException | None) -> None:
            if error is not None:
                self._failed(job)
            elif result[1] is None:
                self._ended(result[0] or [job.ended])
            else:
                then(result[1])
        self._svc.writer.submit(job.suspend, now, a, b, self._laws, then=done)

    def _hand_over(self) -> None:
        """The timer's call: this call's batch to the writer thread."""
        now, a, b = self._take()
        self._svc.writer.submit(self._job.batch, now, a, b, self._laws, then=self._batched)

    def _batched(self, events: list | None, error: BaseException | None) -> None:
        if error is not None:                # logged by the writer; end cleanly all the same
            self.stop()
        elif events:                         # disk full / write error: it ended by itself
            self._ended(events)

    def _finished(self, job: TapRecording, done, error: BaseException | None) -> None:
        if error is not None:
            self._failed(job)
        else:
            events, result = done
            self._ended(events or [result])

    def _failed(self, job: TapRecording) -> None:
        rec = job.recorder
        self._ended([RecordingStopped(rec.part_path, rec.seconds, "error")])

    def _ended(self, events: list) -> None:
        """The file is final (or lost): reported once, ending with its RecordingStopped; trips
        still waiting for it get nothing."""
        if self._result is None:
            self._result = events[-1]
            self._job = None
            self._untap()
            self._svc.remove(self)
            for worker, tid in self._onward:
                self.engine.workers.send_file(worker, tid, None)
            self._onward.clear()
            for ev in events:
                self._emit(ev)
        if self._stopping is not None and not self._stopping[0].done():
            fut, finish = self._stopping
            fut.set_result(self._result if finish else None)

    def _emit(self, event: MediaEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def resume(self, state: dict, written: int = 0) -> None:
        """The file is here (again): go on writing it. ``state`` is what ``TapRecording.suspend``
        said where it was; ``written`` the octets it grew by there (for the store's total)."""
        if written and self._account is not None:
            self._account(written, None)
        try:
            self._job = TapRecording.resume(state, self._laws, self._account)
        except OSError as e:
            log.error("recording %s: cannot go on with it: %s", state["path"], e)
            self._ended([RecordingStopped(state["path"] + PART_SUFFIX, state["seconds"], "error")])
            return
        self._place()

    def detach(self) -> None:
        """Leave the bridge but keep recording: silence goes on until ``attach``.

        A call that is transferred keeps its one recording (and so its one CDR link): the
        ringing while the new party is called is silence in the file, then the new pair. A
        worker that was recording the bridge gives the file back."""
        self._untap()
        self.bridge = None
        if self in self._svc:                # written here: what the old pair sent, with its laws
            self._hand_over()

    def attach(self, bridge, codecs: tuple[str, str]) -> None:
        """Record ``bridge`` from now on, into the same file (see ``detach``)."""
        laws = self._laws_of(codecs)
        self.detach()
        self.bridge = bridge
        self._laws = laws
        if self._result is None and self._stopping is None:
            self._tap(bridge)
        bridge.recording = self

    def stop(self) -> asyncio.Future:
        """Stop the taps; the future resolves to RecordingStopped once the file is final
        (also sent to ``on_event``, once). Idempotent. A worker writing the file finishes it."""
        return self._leave(finish=True)

    def suspend(self) -> asyncio.Future:
        """Stop the taps and give the file up unfinished, for another process to go on with
        (a media worker's trip ends): the future resolves to the description ``resume``
        takes, or to None if the recording ended (its events went to ``on_event``)."""
        return self._leave(finish=False)

    def _leave(self, finish: bool) -> asyncio.Future:
        if self._stopping is not None:
            return self._stopping[0]
        fut = self._loop.create_future()
        self._stopping = (fut, finish)
        self._stop_at = time.monotonic()
        self._untap(finish)
        if self._result is not None:
            fut.set_result(self._result if finish else None)
        else:
            self._place()                    # or once the file is here
        return fut

    def abandon(self) -> None:
        """Stop without touching the file: its owner is gone (a worker whose PBX died leaves
        the ``.part`` to the next start's recovery) or it will not come (it ended elsewhere)."""
        self._untap()
        self._svc.remove(self)
        self._job = None

    # --- trips to media workers (called by workers.WorkerPool) -------------------------------

    def _went_to(self, worker, tid: int) -> None:
        """``worker`` taps the bridge for this recording from now on: the file goes there next."""
        self._onward.append((worker, tid))
        self._place()

    def _sent(self, state: dict) -> None:
        if not self._onward:                 # that worker died meanwhile: the file stays here
            self.resume(state)
            return
        worker, tid = self._onward.popleft()
        self._away = (worker, tid, state)
        self.engine.workers.send_file(worker, tid, state)

    def _back(self, worker, tid: int, message: dict) -> None:
        """The trip writing the file gave it back, or the recording ended there (``message``:
        the worker's ``recorded``). What the file is, its name and options, is what this
        process sent; the worker says only how far it got, and each of its figures is checked
        against what was sent before a path or a size reaches the recording store."""
        away = self._away
        if away is None or away[:2] != (worker, tid):
            log.error("recording: worker %s gave back trip %s, which does not hold the file", worker, tid)
            return
        sent = away[2]
        self._away = None
        try:
            state, events, written = _checked_return(sent, message)
        except (KeyError, TypeError, ValueError) as e:
            log.error("recording %s: the worker's answer is not one: %s", sent["path"], e)
            self._ended([RecordingStopped(sent["path"] + PART_SUFFIX, sent["seconds"], "error")])
            return
        if state is not None:
            self.resume(state, written)
            return
        if self._account is not None:
            finished = next((e.path for e in events if isinstance(e, RecordingStopped)
                             and e.path == sent["path"]), None)
            self._account(written, finished)
        self._ended(events)

    def _lost(self, worker, tid: int) -> None:
        """``worker`` died: a trip of it waiting for the file is dropped, with the packets it
        held; the file it was writing is repaired where it is, and the recording ends."""
        if (worker, tid) in self._onward:
            self._onward.remove((worker, tid))
            self._place()
        elif self._away is not None and self._away[:2] == (worker, tid):
            state = self._away[2]
            self._away = None
            self._salvaging = self._loop.create_task(self._salvage(worker.reaped, state))

    async def _salvage(self, reaped: asyncio.Future, state: dict) -> None:
        await reaped                         # no write of the killed worker's lands after the repair
        part = state["path"] + PART_SUFFIX
        try:
            found = await self._loop.run_in_executor(None, _repaired, part)
        except OSError as e:                 # e.g. removed by hand: nothing left to keep
            log.error("recording %s: cannot repair it: %s", part, e)
            found = None
        if found is None:
            final, size, result = None, 0, RecordingStopped(part, state["seconds"], "lost")
        else:
            final, seconds, size = found
            result = RecordingStopped(final, seconds, "lost")
        if self._account is not None:        # the store counted the file as it was sent there
            self._account(size - sum(state["at"]), final)
        self._ended([result])
