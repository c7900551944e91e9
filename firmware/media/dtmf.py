"""DTMF (pure, sans-I/O): an in-band detector to ITU-T Q.24 and RFC 4733 events.

* ``DtmfDetector`` finds key presses in 8 kHz 16-bit linear audio, fed in
  20 ms frames (any length works). It reports each press once, as soon as it
  is validated, as a ``DigitDetected``.
* ``DtmfSender`` turns a digit into the RFC 4733 §2.5 packet sequence
  (marker on the first packet, one timestamp per event, growing duration,
  the end packet three times).
* ``DtmfReceiver`` turns received telephone-event payloads into one
  ``DigitDetected`` per event, whatever was retransmitted, lost or reordered.

How the detector decides (the figures are the Q.24 ones from the issue)
------------------------------------------------------------------------
Audio is cut into 10 ms sub-blocks of 80 samples. For each sub-block we take
the DFT at the 8 DTMF frequencies and at the second harmonics of the 4 high
group frequencies (Goertzel in pure Python, or one matrix product with
numpy) plus the sub-block's energy. A *window* is two consecutive
sub-blocks (20 ms). A window holds digit (row, col) when all of these hold:

1. both sub-blocks pick the same strongest row and column frequency, and
   those two carry >= 70 % of the sub-block energy (energy ratio: speech
   and music spread their energy wider);
2. the sub-block energies agree within 2.2 dB (a steady tone; this is what
   makes a 20 ms tone fail at any alignment, see below);
3. each tone is >= -32 dBm0 and the twist is within +6 dB reverse (high
   group stronger) / 10 dB normal (high group weaker) -- the Q.24 limits 4 and
   8 dB plus the estimator's ~1 dB error;
4. frequency: the phase advance of each tone's DFT value from one sub-block
   to the next gives its offset from nominal (unambiguous within +-50 Hz);
   it must be within +-2.5 % (Q.24: accept 1.5 %, reject 3.5 %);
5. relative peaks: on the coherent 20 ms DFT (50 Hz bins) the chosen row and
   column are >= 8 dB above every other frequency of their group;
6. second harmonic: the high-group tone's second harmonic is >= 12 dB down
   (voiced speech has one; a DTMF generator does not). The low group's
   second harmonics (1394-1882 Hz) sit within 60-90 Hz of high-group
   frequencies and cannot be told apart from them in 20 ms, so they are
   not checked.

A press is *validated* after two consecutive windows with the same digit, i.e.
three steady sub-blocks. A 40 ms tone covers at least three whole sub-blocks
at any alignment, so it is always found; a tone of 22 ms or less cannot give
three sub-blocks whose energies agree within 2.2 dB, so it never is. Once
reported, the digit ends after three sub-blocks in a row without it (a 40 ms
pause always contains three whole sub-blocks; a 20 ms drop-out leaves at
most two without at least half a sub-block of tone), so a drop-out does not
repeat the digit and a 40 ms pause separates two presses.

Backends: numpy when importable (imported lazily, so a process that never
runs in-band detection does not pay its memory), else pure Python; both give
the same decisions (tests run both). Measured figures are in
scripts/bench_dsp.py and the commit messages.
"""

from __future__ import annotations

import cmath
import math
import sys
from array import array
from dataclasses import dataclass
from typing import Iterator

from firmware.media.rtp import DtmfEvent, RtpError
from firmware.media.tones import DBM0_AMPLITUDE

__all__ = [
    "DigitDetected", "DtmfDetector", "DtmfSender", "DtmfReceiver",
    "ROW_FREQS", "COL_FREQS", "KEYPAD", "digit_freqs",
]

ROW_FREQS = (697.0, 770.0, 852.0, 941.0)
COL_FREQS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")


def digit_freqs(digit: str) -> tuple[float, float]:
    """(low, high) nominal frequencies of a DTMF key."""
    for r, keys in enumerate(KEYPAD):
        c = keys.find(digit.upper())
        if c >= 0:
            return ROW_FREQS[r], COL_FREQS[c]
    raise ValueError(f"not a DTMF digit: {digit!r}")


@dataclass(frozen=True, slots=True)
class DigitDetected:
    """A key press, reported once.

    ``start_sample`` is where the tone began (in-band: sample index since the
    detector was created, to 10 ms; RFC 4733: the event's RTP timestamp).
    ``duration_ms`` is how long the digit had lasted when it was reported
    (the press may go on). ``source`` is "inband" or "rfc4733".
    """
    digit: str
    start_sample: int
    duration_ms: int
    source: str = "inband"


# --- detector tuning (see the module docstring) -------------------------------

SUB = 80                         # samples per sub-block (10 ms at 8 kHz)
_P0 = DBM0_AMPLITUDE ** 2 / 2    # power of a 0 dBm0 sine, in linear units squared


def _db(x: float) -> float:
    return 10 ** (x / 10)


RHO = 0.70                       # energy ratio (the two tones / all)
STEADY = _db(-2.2)               # sub-block energies within 2.2 dB
MIN_TONE = _P0 * _db(-32.0)      # each tone >= -32 dBm0 (Q.24 range: down to -25)
REVERSE_TWIST = _db(6.0)         # high/low power ratio limits
NORMAL_TWIST = _db(-10.0)
FREQ_TOL = 0.025                 # relative frequency deviation
PEAK = _db(8.0)                  # coherent peak over the rest of its group
HARMONIC = _db(-12.0)            # high-group 2nd harmonic below its fundamental
_K_INV = SUB * SUB / 2.0          # |C|^2 -> sine power is * 2 / SUB^2
PRESENT = 0.1                    # a reported digit is still there at >= -10 dB
END_GAP = 3                      # sub-blocks without it that end it


class _Goertzel:
    """Pure-Python analysis of one sub-block: DFT at the 12 frequencies + energy."""

    def __init__(self, freqs: list[float], rate: int) -> None:
        self._coef = []
        for f in freqs:
            w = 2 * math.pi * f / rate
            # C = sum x[n] e^{-jwn} = e^{-jw(N-1)} (s1 - e^{-jw} s2)
            self._coef.append((2 * math.cos(w), cmath.exp(-1j * w), cmath.exp(-1j * w * (SUB - 1))))

    def analyse(self, x) -> tuple[list[complex], float]:
        out = []
        for k2, ejw, tail in self._coef:
            s1 = s2 = 0.0
            for v in x:
                s1, s2 = v + k2 * s1 - s2, s1
            out.append(tail * (s1 - ejw * s2))
        return out, math.fsum(v * v for v in x) / SUB


class DtmfDetector:
    """In-band DTMF detector (ITU-T Q.24), sans-I/O.

    ``feed(samples)`` takes 16-bit linear audio at 8 kHz -- ``array('h')``,
    little-endian ``bytes``, a numpy int16 array or a list of ints, normally
    one 20 ms frame of 160 samples -- and returns the presses validated in it.
    ``backend`` is "numpy", "python" or None (numpy if it imports).
    """

    def __init__(self, rate: int = 8000, *, backend: str | None = None) -> None:
        if rate != 8000:
            raise ValueError("the detector is tuned for 8 kHz audio")
        self.rate = rate
        freqs = list(ROW_FREQS + COL_FREQS) + [2 * f for f in COL_FREQS]
        self._rot = [cmath.exp(-1j * 2 * math.pi * f * SUB / rate) for f in freqs[:8]]
        self._hz_per_rad = rate / (2 * math.pi * SUB)
        self._np = None
        if backend in (None, "numpy"):
            try:
                import numpy as np
            except ImportError:
                if backend == "numpy":
                    raise
            else:
                self._np = np
                n = np.arange(SUB)[:, None]
                w = 2 * np.pi * np.array(freqs)[None, :] / rate
                # columns: Re of the 12 DFT values, then Im (C = sum x e^{-jwn})
                self._basis = np.hstack([np.cos(w * n), -np.sin(w * n)])  # (80, 24)
                self._mats: dict[int, tuple] = {}
        elif backend != "python":
            raise ValueError(f"unknown backend {backend!r}")
        self.backend = "numpy" if self._np is not None else "python"
        self._goertzel = _Goertzel(freqs, rate) if self._np is None else None
        self._pending = array("h")    # samples short of a whole sub-block
        self._t = 0                   # index of the next sub-block
        self._prev: tuple | None = None   # (C, P, E, rc) of the last sub-block
        self._last_win: str | None = None
        self._active: str | None = None
        self._active_rc = (0, 0)
        self._ref = (0.0, 0.0)
        self._start = 0
        self._absent = 0

    # -- input ---------------------------------------------------------------

    def _as_array(self, samples) -> array:
        if isinstance(samples, array):
            return samples
        if isinstance(samples, (bytes, bytearray, memoryview)):
            a = array("h")
            a.frombytes(bytes(samples))
            if sys.byteorder == "big":
                a.byteswap()
            return a
        if self._np is not None and isinstance(samples, self._np.ndarray):
            return array("h", samples.astype("<i2").tobytes()) if sys.byteorder == "little" \
                else array("h", samples.astype("=i2").tobytes())
        return array("h", samples)

    def feed(self, samples) -> list[DigitDetected]:
        """Analyse more audio; return the presses validated within it."""
        np = self._np
        if np is not None and not self._pending:
            # hot path: whole sub-blocks straight into one matrix product
            if isinstance(samples, (bytes, bytearray, memoryview)):
                x = np.frombuffer(samples, "<i2")
            elif isinstance(samples, array):
                x = np.frombuffer(samples, np.int16)
            elif isinstance(samples, np.ndarray):
                x = samples
            else:
                x = np.asarray(samples, np.int16)
            if len(x) % SUB == 0:
                return self._analyse_np(x)
        a = self._pending
        a.extend(self._as_array(samples))
        whole = len(a) - len(a) % SUB
        if not whole:
            return []
        block, self._pending = a[:whole], a[whole:]
        if np is not None:
            return self._analyse_np(np.frombuffer(block, np.int16))
        out: list[DigitDetected] = []
        g = self._goertzel
        for i in range(0, whole, SUB):
            c, e = g.analyse(block[i:i + SUB])
            out.extend(self._step(c, e))
        return out

    def _matrix(self, blocks: int) -> tuple:
        """For ``blocks`` sub-blocks: a work vector [x, x*x] and the matrix that
        maps it to every sub-block's 24 DFT outputs and its energy, so one
        product does the whole frame (numpy calls, not arithmetic, are the cost)."""
        got = self._mats.get(blocks)
        if got is None:
            np = self._np
            n = blocks * SUB
            m = np.zeros((2 * n, blocks * 25))
            for j in range(blocks):
                m[j * SUB:(j + 1) * SUB, j * 25:j * 25 + 24] = self._basis
                m[n + j * SUB:n + (j + 1) * SUB, j * 25 + 24] = 1.0 / SUB
            work = np.empty(2 * n)
            got = self._mats[blocks] = (m, work, work[:n], work[n:])
        return got

    def _analyse_np(self, x) -> list[DigitDetected]:
        np = self._np
        blocks = len(x) // SUB
        m, work, lin, sq = self._matrix(blocks)
        np.copyto(lin, x, casting="unsafe")
        np.multiply(lin, lin, out=sq)
        y = (work @ m).tolist()
        out: list[DigitDetected] = []
        hypot = math.hypot
        thr = RHO * _K_INV
        for j in range(0, blocks * 25, 25):
            row = y[j:j + 25]
            e = row[24]
            # cheap necessary condition first: all 8 tone bins together hold
            # at least RHO of the energy (most speech and all silence stop here)
            if self._active is None and self._prev is None and self._last_win is None:
                f = hypot(*row[0:8], *row[12:20])
                if f * f < thr * e or e < MIN_TONE:
                    self._t += 1
                    continue
            c = [complex(re, im) for re, im in zip(row[:12], row[12:24])]
            r = self._step(c, e)
            if r:
                out.extend(r)
        return out

    # -- decisions -------------------------------------------------------------

    def _step(self, c: list[complex], e: float) -> list[DigitDetected]:
        """One sub-block: update the window and press state machine."""
        k = 2.0 / (SUB * SUB)
        p = [(v.real * v.real + v.imag * v.imag) * k for v in c[:8]]
        r = max(range(4), key=p.__getitem__)
        col = max(range(4, 8), key=p.__getitem__)
        rc = (r, col) if (p[r] >= MIN_TONE and p[col] >= MIN_TONE
                          and p[r] + p[col] >= RHO * e) else None
        prev = self._prev
        self._prev = (c, p, e, rc) if rc is not None else None
        t = self._t
        self._t = t + 1
        win = None
        if rc is not None and prev is not None and prev[3] == rc:
            win = self._window(prev, (c, p, e, rc), rc)
        out: list[DigitDetected] = []
        if self._active is None:
            if win is not None and win == self._last_win:
                self._active = win
                self._active_rc = rc
                pr0, pc0 = prev[1][rc[0]], prev[1][rc[1]]
                self._ref = ((pr0 + p[rc[0]]) / 2, (pc0 + p[rc[1]]) / 2)
                self._absent = 0
                self._start = (t - 2) * SUB
                out.append(DigitDetected(win, self._start, (t + 1) * SUB * 1000 // self.rate
                                         - self._start * 1000 // self.rate))
        else:
            ar, ac = self._active_rc
            present = (p[ar] >= PRESENT * self._ref[0] and p[ac] >= PRESENT * self._ref[1]
                       and (win is None or win == self._active))
            if present:
                self._absent = 0
            else:
                self._absent += 1
                if self._absent >= END_GAP:
                    self._active = None
        self._last_win = win
        return out

    def _window(self, a: tuple, b: tuple, rc: tuple[int, int]) -> str | None:
        """The digit two steady sub-blocks hold, or None (checks 2-6)."""
        ca, pa, ea, _ = a
        cb, pb, eb, _ = b
        if min(ea, eb) < STEADY * max(ea, eb):
            return None
        r, col = rc
        prow, pcol = pa[r] + pb[r], pa[col] + pb[col]
        twist = pcol / prow
        if not NORMAL_TWIST <= twist <= REVERSE_TWIST:
            return None
        for i, fnom in ((r, ROW_FREQS[r]), (col, COL_FREQS[col - 4])):
            z = cb[i] * ca[i].conjugate() * self._rot[i]
            if abs(cmath.phase(z)) * self._hz_per_rad > FREQ_TOL * fnom:
                return None
        q = [abs(ca[i] + cb[i] * self._rot[i]) ** 2 for i in range(8)]
        for group, chosen in ((range(4), r), (range(4, 8), col)):
            for i in group:
                if i != chosen and q[chosen] < PEAK * q[i]:
                    return None
        h = col + 4    # c[8:12] are the high group's 2nd harmonics
        harm = (abs(ca[h]) ** 2 + abs(cb[h]) ** 2) * 2.0 / (SUB * SUB)
        if harm > HARMONIC * pcol:
            return None
        return KEYPAD[r][col - 4]


# --- RFC 4733 -------------------------------------------------------------------

class DtmfSender:
    """Produces the RFC 4733 §2.5.1 packets of one digit at a time (sans-I/O).

    ``start(digit, duration_ms, timestamp)`` then iterate ``packets()``: one
    ``(marker, timestamp, payload)`` per packet interval. All packets of an
    event carry the event's start timestamp; the first has the marker bit
    (§2.5.1.1); the duration grows by one packet interval each time
    (§2.5.1.2); the final duration is sent with the E bit three times
    (§2.5.1.4). An event longer than the 16-bit duration field is split into
    segments (§2.5.1.3): each segment is a new timestamp, without marker.
    The caller stamps sequence numbers and sends one packet per interval.
    """

    def __init__(self, *, pt: int, clock_rate: int = 8000, volume: int = 10,
                 packet_ms: int = 20) -> None:
        if not 0 <= volume <= 63:
            raise ValueError("volume is 0..63 (-dBm0)")
        self.pt = pt
        self.clock_rate = clock_rate
        self.volume = volume
        self.packet_ms = packet_ms
        self._step = clock_rate * packet_ms // 1000
        self._event: int | None = None
        self._total = 0
        self._ts = 0

    def start(self, digit: str, duration_ms: int, timestamp: int) -> None:
        self._event = DtmfEvent.from_digit(digit).event
        self._total = max(self._step, duration_ms * self.clock_rate // 1000)
        self._ts = timestamp & 0xFFFFFFFF

    def packets(self) -> Iterator[tuple[bool, int, bytes]]:
        if self._event is None:
            return
        event, remaining, ts, step = self._event, self._total, self._ts, self._step
        self._event = None
        first = True
        max_seg = 0xFFFF - 0xFFFF % step    # keep segments a whole number of packets
        while remaining > 0:
            seg = min(remaining, max_seg)
            remaining -= seg
            last_segment = remaining == 0
            d = 0
            while d + step < seg:
                d += step
                yield first, ts, bytes(DtmfEvent(event, False, self.volume, d))
                first = False
            ev = bytes(DtmfEvent(event, True, self.volume, seg))
            if last_segment:
                for _ in range(3):
                    yield first, ts, ev
                    first = False
            else:
                yield first, ts, ev
                first = False
            ts = (ts + seg) & 0xFFFFFFFF


class DtmfReceiver:
    """Received telephone-events -> one ``DigitDetected`` per event (RFC 4733 §2.5.2).

    An event is keyed by (RTP timestamp, event code): retransmitted end
    packets, a lost first packet or reordered packets cannot repeat a digit,
    and the same key pressed twice gives two timestamps, hence two digits.
    A long event split into segments (§2.5.1.3) continues the previous
    event if its timestamp is where that segment ended; it is not counted
    again. The digit is reported on the first packet seen of an event.
    """

    def __init__(self, clock_rate: int = 8000, memory: int = 32) -> None:
        self.clock_rate = clock_rate
        self._step = clock_rate // 50   # one 20 ms packet interval
        self._seen: dict[tuple[int, int], int] = {}   # key -> end timestamp so far
        self._memory = memory

    def feed(self, ts: int, payload: bytes, marker: bool = False) -> list[DigitDetected]:
        try:
            blocks = DtmfEvent.parse_many(payload)
        except RtpError:
            return []
        out = []
        # several blocks in one payload: take the last (the most recent); older
        # events were reported when their own packets came
        ev = blocks[-1]
        if ev.digit is None:
            return out
        key = (ts, ev.event)
        seen = self._seen
        if key in seen:
            seen[key] = max(seen[key], (ts + ev.duration) & 0xFFFFFFFF)
            return out
        # a new segment of a long event starts where the previous one ended
        # (the previous segment lasted the whole 16-bit range, give or take the
        # sender's rounding to packets; a new press after a pause cannot match)
        continues = any(code == ev.event
                        and 0xFFFF - 4 * self._step <= (ts - t) & 0xFFFFFFFF <= 0xFFFF
                        for (t, code) in seen)
        seen[key] = (ts + ev.duration) & 0xFFFFFFFF
        if len(seen) > self._memory:
            del seen[next(iter(seen))]
        if continues:
            return out
        out.append(DigitDetected(ev.digit, ts, ev.duration * 1000 // self.clock_rate, "rfc4733"))
        return out
