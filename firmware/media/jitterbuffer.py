"""Jitter buffer for the paths that terminate media (recording, mixing, IVR).

Pure: packets go in with their arrival time (``put(packet, now)``), and the
media clock pulls one 20 ms frame per tick (``get(now)``). No clock, socket or
task inside, so tests drive it with synthetic packet traces on a fake clock.
aiortc's ``src/aiortc/jitterbuffer.py`` is the model for the slot ring keyed
by RTP position; unlike it, output is paced by our tick, not by arrivals,
because every consumer here (recorder, mixer, IVR) runs on the 20 ms clock.

Positions. A packet's RTP timestamp (RFC 3550 §5.1) is extended past its
32-bit wrap and turned into a frame *index* relative to the stream origin:
``index = round((ext_ts - origin) / frame_samples)``. The buffer is a dict
index -> (payload, timestamp); ``_next`` is the index the next tick plays.
Timestamps, not sequence numbers, place a packet on the timeline, so the
sequence wrap at 65535 needs no handling and a packet carrying 40 ms of audio
is split into two 20 ms slots.

What ``get`` returns, per tick:

* ``None``: nothing to play -- not started, prefetching, or the stream is
  silent (no packet for ``idle_after`` seconds: DTX, hold, end of stream).
  The caller plays silence.
* ``Frame(ts, payload, concealed=False)``: the frame for that position.
* ``Frame(ts, None, concealed=True)``: a gap the caller fills with
  ``conceal(last_pcm, count)`` (repeat with fade). Either a lost packet (a
  later one is buffered: the position advances) or an underrun (nothing
  buffered: the position holds, i.e. a frame is *inserted*).

Events handled:

* reordering within the buffer depth: a packet is slotted by position;
* duplicates: a slot already filled, or a position already played, is dropped;
* loss: an empty slot with later frames buffered -> concealment marker;
* timestamp jumps: a packet more than ``resync_frames`` (1 s) beyond the
  newest, or as far behind the play position, is a
  discontinuity: the new timeline is re-based to follow what is buffered
  (``stats.resyncs``). A marker bit (RFC 3551 §4.1, start of a talkspurt)
  while the buffer is empty re-bases the same way, so a silence gap that the
  ticks already played as silence is not played twice;
* SSRC change: a new source, the buffer resets (``stats.ssrc_changes``);
* clock drift and adaptive depth: the target depth comes from the measured
  spread of transit times (arrival - timestamp/rate) over the last
  ``window`` packets, bounded by ``min_depth``..``max_depth`` frames
  (20-200 ms by default). A sender slower than our tick drains the buffer
  until an underrun inserts a concealed frame (the position holds); a faster
  one fills it. Every ``trim_every`` ticks (0.5 s) one frame is dropped if
  the buffer never fell below 2 frames in that period and holds more than
  the target, or one concealed frame is inserted if the buffer never came
  within 2 frames of the target. So ±1 % drift costs one inserted/dropped
  frame per 2 s and the depth stays near the target; a hard cap at
  ``max_depth`` drops the oldest frames.
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass
from math import ceil
from typing import NamedTuple

__all__ = ["Frame", "JitterBuffer", "JitterStats", "conceal"]

_MASK32 = 0xFFFFFFFF
_HALF32 = 1 << 31
_PLAYED_MASK = (1 << 64) - 1

# Play states.
_FRESH, _PREFETCH, _PLAYING, _IDLE = range(4)


class Frame(NamedTuple):
    """One 20 ms output frame.

    ``timestamp`` is the sender's 32-bit RTP timestamp of this position (for
    a concealed frame, the one it would have had). ``payload`` is the packet
    payload as received (e.g. G.711 bytes), or None when ``concealed``.
    """
    timestamp: int
    payload: bytes | None
    concealed: bool = False


@dataclass(slots=True)
class JitterStats:
    """Counters, for diagnostics and tests."""
    received: int = 0       # packets accepted into the buffer
    played: int = 0         # frames returned with a payload
    lost: int = 0           # concealed frames for a missing slot (position advanced)
    inserted: int = 0       # concealed frames on underrun (position held)
    dropped: int = 0        # frames discarded to shrink the buffer (drift, overflow)
    late: int = 0           # packets arriving after their position was played
    duplicates: int = 0
    resyncs: int = 0        # timestamp discontinuities re-based
    ssrc_changes: int = 0


class JitterBuffer:
    """Adaptive jitter buffer, one RTP source at a time (see module doc)."""

    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        frame_samples: int = 160,
        frame_bytes: int | None = None,
        min_depth: int = 1,
        max_depth: int = 10,
        initial_depth: int = 2,
        resync_frames: int = 50,
        idle_after: float = 0.1,
        window: int = 100,
        trim_every: int = 25,
    ) -> None:
        if not 1 <= min_depth <= max_depth:
            raise ValueError("need 1 <= min_depth <= max_depth")
        self.clock_rate = clock_rate
        self.frame_samples = frame_samples
        # Payload octets per frame: splits multi-frame packets (G.711: 1 per sample).
        self.frame_bytes = frame_samples if frame_bytes is None else frame_bytes
        self.frame_seconds = frame_samples / clock_rate
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.initial_depth = max(min_depth, min(initial_depth, max_depth))
        self.resync_frames = resync_frames
        self.idle_after = idle_after
        self.window = window
        self.trim_every = trim_every
        self.stats = JitterStats()
        self.ssrc: int | None = None
        self._reset_stream()

    # --- state ------------------------------------------------------------

    def _reset_stream(self) -> None:
        self._slots: dict[int, tuple[bytes, int]] = {}
        self._state = _FRESH
        self._next = 0               # index played by the next tick
        self._high = -1              # highest index buffered or played
        self._origin = 0             # extended timestamp of index 0
        self._last_ts = 0            # newest 32-bit timestamp seen (for unwrapping)
        self._last_ext = 0           # its extended value
        self._last_arrival = 0.0
        self._prefetch_since = 0.0
        self._tick = 0
        self._low = 1 << 30
        self._hi = 0
        self._played = 0             # bit k set: index _next-1-k was played (duplicate check)
        self._reset_window()

    def _reset_window(self) -> None:
        # Monotonic deques over the last `window` transit times: (n, transit).
        self._n = 0
        self._tmin: deque[tuple[int, float]] = deque()
        self._tmax: deque[tuple[int, float]] = deque()

    @property
    def depth(self) -> int:
        """Frames from the play position to the newest buffered one (gaps included)."""
        d = self._high - self._next + 1
        return d if d > 0 else 0

    @property
    def target(self) -> int:
        """Target depth in frames from the measured jitter (min_depth..max_depth)."""
        if self._n < 2:
            return self.initial_depth
        spread = self._tmax[0][1] - self._tmin[0][1]
        # A frame of headroom over the spread; 1 ms slack so exact multiples
        # of the frame time do not round up.
        t = 1 + ceil((spread - 0.001) / self.frame_seconds) if spread > 0.001 else 1
        return self.min_depth if t < self.min_depth else self.max_depth if t > self.max_depth else t

    @property
    def target_ms(self) -> float:
        return self.target * self.frame_seconds * 1000.0

    # --- input ------------------------------------------------------------

    def put(self, packet, now: float | None = None) -> None:
        """Add an RtpPacket (arrival ``now``) or a tuple ``(seq, ts, ssrc, payload, arrival)``."""
        if isinstance(packet, tuple):
            seq, ts, ssrc, payload, arrival = packet[:5]
            marker = packet[5] if len(packet) > 5 else False
            self.put_raw(seq, ts, ssrc, payload, arrival if now is None else now, marker)
        else:
            if now is None:
                raise TypeError("put(RtpPacket) needs now")
            self.put_raw(packet.sequence_number, packet.timestamp, packet.ssrc,
                         packet.payload, now, packet.marker)

    def put_raw(self, seq: int, ts: int, ssrc: int, payload: bytes, now: float,
                marker: bool = False) -> None:
        """The core of ``put``: one packet's fields and its arrival time.

        ``seq`` is accepted for symmetry with RTP but positions come from
        ``ts`` (see module doc), so sequence wrap is a non-event.
        """
        stats = self.stats
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                stats.ssrc_changes += 1
                self._reset_stream()
            self.ssrc = ssrc
        spf = self.frame_samples
        state = self._state
        if state == _FRESH:
            self._origin = self._last_ext = ts
            self._last_ts = ts
            ext = ts
        else:
            d = (ts - self._last_ts) & _MASK32
            if d >= _HALF32:
                d -= 1 << 32
            ext = self._last_ext + d
            if d > 0:
                self._last_ts = ts
                self._last_ext = ext
        idx = (ext - self._origin + (spf >> 1)) // spf

        if state == _FRESH or state == _IDLE:
            # (Re)start: the first packet after silence opens the timeline.
            if state == _IDLE and self._next - idx > self.resync_frames:
                # A start far behind what we played: a restarted timeline, not late.
                stats.resyncs += 1
                self._reset_window()
            elif state == _IDLE and idx < self._next:
                stats.late += 1
                return
            self._slots.clear()
            self._next = idx
            self._high = idx - 1
            self._played = 0
            self._state = _PREFETCH
            self._prefetch_since = now
        else:
            high = self._high
            nxt = self._next
            if (idx - high > self.resync_frames or nxt - idx > self.resync_frames
                    or (marker and high < nxt and idx > nxt)):
                # Discontinuity: continue right after what is buffered.
                to = high + 1 if high >= nxt else nxt
                self._origin += (idx - to) * spf
                idx = to
                stats.resyncs += 1
                self._reset_window()
            if idx < nxt:
                if state == _PREFETCH and nxt - idx < self.max_depth:
                    self._next = idx        # reordered ahead of the first packet
                elif nxt - 1 - idx < 64 and (self._played >> (nxt - 1 - idx)) & 1:
                    stats.duplicates += 1   # a copy of a frame already played
                    return
                else:
                    self._measure(idx, now)  # late packets are the jitter we missed
                    stats.late += 1
                    return

        slots = self._slots
        n = len(payload) // self.frame_bytes if self.frame_bytes else 1
        if n <= 1:
            if idx in slots:
                stats.duplicates += 1
                return
            slots[idx] = (payload, ts)
            last = idx
        else:                   # several frames in one packet (ptime 40, 60 ...)
            if idx in slots:
                stats.duplicates += 1
                return
            fb = self.frame_bytes
            for k in range(n):
                slots[idx + k] = (payload[k * fb:(k + 1) * fb], (ts + k * spf) & _MASK32)
            last = idx + n - 1
        stats.received += 1
        self._measure(idx, now)
        if last > self._high:
            self._high = last
        self._last_arrival = now

        # Hard cap on latency: drop the oldest frames beyond max_depth.
        over = self._high - self._next + 1 - self.max_depth
        if over > 0:
            for k in range(self._next, self._next + over):
                slots.pop(k, None)
            self._next += over
            self._played = (self._played << over) & _PLAYED_MASK
            stats.dropped += over

    def _measure(self, idx: int, now: float) -> None:
        """Transit time (arrival - media time) into the windowed min/max."""
        transit = now - (idx * self.frame_samples) / self.clock_rate
        i = self._n
        self._n = i + 1
        tmin, tmax = self._tmin, self._tmax
        while tmin and tmin[-1][1] >= transit:
            tmin.pop()
        tmin.append((i, transit))
        while tmax and tmax[-1][1] <= transit:
            tmax.pop()
        tmax.append((i, transit))
        old = i - self.window
        if tmin[0][0] <= old:
            tmin.popleft()
        if tmax[0][0] <= old:
            tmax.popleft()

    # --- output -----------------------------------------------------------

    def _ts_of(self, idx: int) -> int:
        return (self._origin + idx * self.frame_samples) & _MASK32

    def get(self, now: float) -> Frame | None:
        """The frame for this 20 ms tick (see module doc for the three cases)."""
        state = self._state
        if state != _PLAYING:
            if state != _PREFETCH:
                return None
            # Start when the target depth is buffered, or when waiting longer
            # would only add delay (the stream may be a single short burst).
            if (self.depth < self.target
                    and now - self._prefetch_since < self.target * self.frame_seconds):
                return None
            self._state = _PLAYING
            self._tick = 0
            self._low = 1 << 30
            self._hi = 0

        nxt = self._next
        d = self._high - nxt + 1
        stats = self.stats
        if d <= 0:
            if now - self._last_arrival >= self.idle_after:
                self._state = _IDLE         # silent stream: stop concealing
                return None
            stats.inserted += 1
            return Frame(self._ts_of(nxt), None, True)

        # Drift / depth control, once per period: drop one frame if the buffer
        # never fell below 2 frames and holds more than the target (sender
        # fast, or latency left over from a burst); insert one (hold the
        # position) if it never reached within 2 frames of the target (sender
        # slow: waiting for the underrun would leave no room for jitter).
        slots = self._slots
        if d < self._low:
            self._low = d
        if d > self._hi:
            self._hi = d
        self._tick += 1
        if self._tick >= self.trim_every:
            self._tick = 0
            low, hi = self._low, self._hi
            self._low = 1 << 30
            self._hi = 0
            target = self.target
            if low >= 2 and d > target:
                slots.pop(nxt, None)
                nxt += 1
                self._played = (self._played << 1) & _PLAYED_MASK
                stats.dropped += 1
            elif hi < target - 1:
                stats.inserted += 1
                return Frame(self._ts_of(nxt), None, True)

        self._next = nxt + 1
        item = slots.pop(nxt, None)
        if item is None:
            self._played = (self._played << 1) & _PLAYED_MASK
            stats.lost += 1
            return Frame(self._ts_of(nxt), None, True)
        self._played = ((self._played << 1) | 1) & _PLAYED_MASK
        stats.played += 1
        return Frame(item[1], item[0], False)


def conceal(last_pcm: bytes, count: int = 1, fade_frames: int = 3) -> bytes:
    """Concealment PCM for the ``count``-th consecutive missing frame.

    Repeats ``last_pcm`` (16-bit little-endian, the last frame actually
    received) with a gain falling linearly from 1 - (count-1)/fade_frames to
    1 - count/fade_frames across the frame, so there is no step at the frame
    edge and the output reaches silence after ``fade_frames`` frames (60 ms).
    """
    n = len(last_pcm) // 2
    g0 = 1.0 - (count - 1) / fade_frames
    if g0 <= 0.0 or n == 0:
        return bytes(2 * n)
    g1 = max(0.0, 1.0 - count / fade_frames)
    src = array("h")
    src.frombytes(last_pcm[:2 * n])
    step = (g1 - g0) / n
    out = array("h", [int(x * (g0 + step * i)) for i, x in enumerate(src)])
    return out.tobytes()
