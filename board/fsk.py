"""1200 baud FSK for on-hook caller ID (pure, sans-I/O, 8 kHz 16-bit linear).

Two standards, both 1200 baud, binary 1 = *mark*, binary 0 = *space*:

* ``bell202`` -- Bell 202 as used by Telcordia GR-30-CORE: mark 1200 Hz,
  space 2200 Hz.
* ``v23`` -- ITU-T V.23 forward channel as used by ETSI EN 300 659-1 (and
  BT SIN 227): mark 1300 Hz, space 2100 Hz.

Both are centred on 1700 Hz.

``FskModulator`` turns bits into phase-continuous samples at a level in dBm0
(bit edges fall on the nearest sample of the exact bit clock, so 1200 baud
at 8 kHz alternates 7/7/6-sample bits without drift). ``uart_bits`` frames
bytes (start 0, 8 data bits LSB first, stop 1); ``seizure_bits`` and
``mark_bits`` make the preamble.

``FskDemodulator`` is a streaming receiver, fed any chunking:

1. a non-coherent correlation discriminator: the sliding one-bit (7-sample)
   correlation of the input with the mark and with the space tone (running
   sums over 80-sample oscillator tables, O(1) per sample), and
   d = (|S|^2 - |M|^2) / (|S|^2 + |M|^2): +1 for space, -1 for mark,
   independent of level. (A quadrature discriminator mixed to the 1700 Hz
   centre was tried first: with a filter short enough for 1200 baud its
   2*fc image left +-30 % ripple on the frequency estimate, and bytes broke.)
2. carrier detect on the smoothed correlation power with 3 dB hysteresis
   (``min_level_dbm0``, default -48 dBm0, 8 dB below the weakest level the
   tests use);
3. a UART: the start bit is mark -> clearly space on a slicer with
   hysteresis, timed at the interpolated zero crossing of d; each bit is
   decided by integrating d over the middle half of the bit
   (integrate-and-dump); every edge inside the character pulls the bit
   clock half way towards it, so a sender several % off 1200 baud stays
   centred; from 9.5 bit times a new start edge ends the character (a fast
   sender's next start bit comes before 10);
4. channel seizure (0101..., which frames as valid 0x55 characters) and the
   mark signal: no byte is emitted until the line has been steady mark for
   ``mark_bits`` bit times since the carrier came up, so the seizure is
   skipped and the first byte out is the first byte of the message. Losing
   the carrier ends the message and re-arms this (``bursts`` counts mark
   signals, so a receiver can tell messages apart).

Measured (``tests/unit/test_fsk.py::test_margin``): no byte errors in 2560 bytes per
case at 10 dB SNR with +-1 % tone and +-2 % baud offsets (both standards),
none at 20 dB with +-4 % baud; 8 dB starts to fail. Pure Python runs about
200x faster than real time at 8 kHz, so numpy was not needed.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass
from typing import Iterable

from firmware.media.tones import dbm0_to_amplitude

__all__ = [
    "FskStandard", "BELL202", "V23", "STANDARDS", "FskModulator", "FskDemodulator",
    "uart_bits", "seizure_bits", "mark_bits",
]


@dataclass(frozen=True, slots=True)
class FskStandard:
    """A binary FSK channel: mark (1) and space (0) frequencies in Hz, baud."""
    name: str
    mark: float
    space: float
    baud: float = 1200.0

    @property
    def centre(self) -> float:
        return (self.mark + self.space) / 2


BELL202 = FskStandard("bell202", 1200.0, 2200.0)
V23 = FskStandard("v23", 1300.0, 2100.0)
STANDARDS = {"bell202": BELL202, "bell": BELL202, "v23": V23, "etsi": V23}


def _standard(standard: FskStandard | str) -> FskStandard:
    if isinstance(standard, FskStandard):
        return standard
    try:
        return STANDARDS[standard.lower()]
    except KeyError:
        raise ValueError(f"unknown FSK standard {standard!r}") from None


def uart_bits(data: bytes) -> list[int]:
    """Asynchronous framing: per byte a 0 start bit, 8 data bits LSB first, a 1 stop bit."""
    out: list[int] = []
    for b in data:
        out.append(0)
        out.extend((b >> i) & 1 for i in range(8))
        out.append(1)
    return out


def seizure_bits(n: int = 300) -> list[int]:
    """Channel seizure: ``n`` bits of alternating 0 and 1, starting with 0."""
    return [i & 1 for i in range(n)]


def mark_bits(n: int = 180) -> list[int]:
    """The mark signal: ``n`` 1 bits."""
    return [1] * n


class FskModulator:
    """Phase-continuous binary FSK at ``level_dbm0`` (default -13.5, GR-30's
    on-hook transmit level). Successive ``modulate`` calls continue the same
    signal (phase and bit clock)."""

    def __init__(self, standard: FskStandard | str, level_dbm0: float = -13.5,
                 rate: int = 8000) -> None:
        self.standard = _standard(standard)
        self.level_dbm0 = level_dbm0
        self.rate = rate
        self._amp = dbm0_to_amplitude(level_dbm0)
        self._phase = 0.0
        self._bits = 0        # bits sent so far
        self._samples = 0     # samples produced so far

    def modulate(self, bits: Iterable[int]) -> array:
        """Samples for ``bits`` (each 0 or 1), as ``array('h')``."""
        std, rate = self.standard, self.rate
        tau = 2 * math.pi
        dmark, dspace = tau * std.mark / rate, tau * std.space / rate
        per_bit = rate / std.baud
        amp, phase, n = self._amp, self._phase, self._samples
        sin = math.sin
        out = array("h")
        append = out.append
        k = self._bits
        for b in bits:
            k += 1
            end = round(k * per_bit)
            step = dmark if b else dspace
            while n < end:
                append(round(amp * sin(phase)))
                phase += step
                n += 1
            phase %= tau
        self._phase, self._samples, self._bits = phase, n, k
        return out

    def modulate_bytes(self, data: bytes) -> array:
        return self.modulate(uart_bits(data))

    def silence(self, ms: float) -> array:
        """Silence (keeps the bit clock: what follows starts on a fresh bit)."""
        n = round(ms * self.rate / 1000)
        return array("h", bytes(2 * n))


_HYST = 0.3             # slicer hysteresis on the discriminator (range -1..1)


class FskDemodulator:
    """Streaming 1200 baud FSK receiver with UART framing (see the module docstring).

    ``feed(samples)`` takes 16-bit linear audio (``array('h')``, a list of
    ints, or little-endian ``bytes``) in any chunk size and returns the bytes
    completed within it. ``mark_bits`` is the mark run required before bytes
    are emitted (0: emit everything, seizure included).
    """

    def __init__(self, standard: FskStandard | str, rate: int = 8000, *,
                 min_level_dbm0: float = -48.0, mark_bits: int = 10) -> None:
        self.standard = std = _standard(standard)
        self.rate = rate
        from fractions import Fraction  # here: fractions and decimal (0.2 MB) only with a line

        period = 1
        for f in (std.mark, std.space):
            q = Fraction(f).limit_denominator(1000) / rate
            period = math.lcm(period, q.denominator)
        if period > 4 * rate:
            raise ValueError("tone frequencies give no short oscillator period")
        tau = 2 * math.pi
        self._tab = [(math.cos(tau * std.mark * i / rate), -math.sin(tau * std.mark * i / rate),
                      math.cos(tau * std.space * i / rate), -math.sin(tau * std.space * i / rate))
                     for i in range(period)]
        self._period = period
        self._win = win = round(rate / std.baud)      # one bit: the correlation window
        # carrier: a steady tone at the minimum level correlates to |S| = A*N/2
        a = dbm0_to_amplitude(min_level_dbm0) * win / 2
        self._p_on = a * a
        self._p_off = self._p_on / 2
        self._bit = rate / std.baud
        self._need_mark = mark_bits * self._bit
        self.mark_bits = mark_bits
        self._n = 0                               # absolute sample index
        self._hist = [(0.0, 0.0, 0.0, 0.0)] * win # products in the window
        self._hk = 0
        self._sums = (0.0, 0.0, 0.0, 0.0)         # running correlations (mark re/im, space re/im)
        self._pow = 0.0
        self.carrier = False
        self._d1 = 0.0                            # previous discriminator output
        self._mark_run = 0                        # samples of continuous mark
        self._synced = mark_bits == 0
        self._t0: float | None = None             # start-bit edge while framing
        self._acc = [0.0] * 10
        self._zc = 0.0                            # last upward zero crossing
        self._sl_mark = False                     # slicer state
        self.bursts = 0                           # mark signals seen (one per message)
        self.framing_errors = 0                   # characters without a stop bit

    @property
    def synced(self) -> bool:
        """True while bytes are being emitted: the mark signal has been seen
        and the carrier has not dropped since (``bursts`` counts the times)."""
        return self._synced

    def _reset_line(self) -> None:
        self._t0 = None
        self._mark_run = 0
        self._synced = self.mark_bits == 0

    def feed(self, samples) -> bytes:
        if isinstance(samples, (bytes, bytearray, memoryview)):
            a = array("h")
            a.frombytes(bytes(samples))
            if sys.byteorder == "big":
                a.byteswap()
            samples = a
        out = bytearray()
        tab, period, hist, hk, win = self._tab, self._period, self._hist, self._hk, self._win
        mr, mi, sr, si = self._sums
        pw, d1, n = self._pow, self._d1, self._n
        p_on, p_off = self._p_on, self._p_off
        bit, acc = self._bit, self._acc
        carrier = self.carrier
        zc, sl_mark = self._zc, self._sl_mark
        for x in samples:
            c = tab[n % period]
            a = x * c[0], x * c[1], x * c[2], x * c[3]
            o = hist[hk]
            hist[hk] = a
            hk += 1
            if hk == win:
                hk = 0
            mr += a[0] - o[0]
            mi += a[1] - o[1]
            sr += a[2] - o[2]
            si += a[3] - o[3]
            em = mr * mr + mi * mi
            es = sr * sr + si * si
            p = em + es
            pw += (p - pw) * 0.0625
            d = (es - em) / (p + 1e-3)
            n += 1
            if carrier:
                if pw < p_off:
                    carrier = False
                    self._reset_line()
                    d1 = d
                    continue
            elif pw > p_on:
                carrier = True
                self._reset_line()
                d1 = d
                continue
            else:
                d1 = d
                continue
            # slicer with hysteresis; a start edge is mark -> clearly space,
            # timed at the last upward zero crossing (interpolated)
            if d >= 0.0 and d1 < 0.0:
                zc = (n - 2) - d1 / (d - d1)
            start = False
            if d < -_HYST:
                sl_mark = True
            elif d > _HYST and sl_mark:
                sl_mark = False
                start = True
            t0 = self._t0
            if t0 is not None:
                if (d >= 0.0) != (d1 >= 0.0):
                    # a bit edge inside the character: pull the bit clock half
                    # way towards it (tracks a sender up to a few % off 1200 baud)
                    tc = (n - 2) - d1 / (d - d1)
                    e = (tc - t0) / bit
                    k = round(e)
                    if 1 <= k <= 9 and abs(e - k) < 0.4:
                        t0 += (e - k) * bit * 0.5
                        self._t0 = t0
                pos = (n - 1 - t0) / bit
                if pos < 9.75 and not (start and pos >= 9.5):
                    k = int(pos)
                    frac = pos - k
                    if 0.25 <= frac < 0.75:
                        acc[k] += d
                    elif k == 0 and frac >= 0.75 and acc[0] <= 0.0:
                        # the start bit was not space in its middle: a glitch
                        self._t0 = None
                        self._mark_run = 0
                    d1 = d
                    continue
                # a fast sender's next start bit may begin at 9.8 bit times:
                # from 9.5 on, a start edge ends this character at once
                self._t0 = None
                self._mark_run = 0
                if acc[0] > 0.0 and acc[9] < 0.0:
                    byte = 0
                    for j in range(8):
                        if acc[1 + j] < 0.0:
                            byte |= 1 << j
                    if self._synced:
                        out.append(byte)
                else:
                    self.framing_errors += 1
            # hunting for the start bit
            if start:
                self._t0 = zc
                for k in range(10):
                    acc[k] = 0.0
            elif d < 0.0:
                self._mark_run += 1
                if not self._synced and self._mark_run >= self._need_mark:
                    self._synced = True
                    self.bursts += 1
            else:
                self._mark_run = 0
            d1 = d
        self._hk, self._sums = hk, (mr, mi, sr, si)
        self._pow, self._d1, self._n = pw, d1, n
        self.carrier = carrier
        self._zc, self._sl_mark = zc, sl_mark
        return bytes(out)
