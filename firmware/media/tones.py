"""Call-progress tones per country and a phase-continuous tone generator (pure).

``TONES[country][name]`` is a ``ToneSpec`` for the six tones a PBX plays:
``dial``, ``ringback``, ``busy``, ``congestion``, ``call_waiting`` and
``confirmation``, for at least us, uk, de, fr, cn, jp, au, in.

Sources. Frequencies and cadences follow the ITU-T E.180 Supplement 2
tables ("Various tones used in national networks", as published in the ITU
Operational Bulletin annex tones-0203) as transcribed in Asterisk's
``configs/samples/indications.conf.sample`` (which cites that document),
cross-checked with: the North American Precise Tone Plan (levels: dial
-13 dBm0, ringback -19, busy/reorder -24 per tone); BT SIN 350 for the UK
(and its 1400 Hz confirmation tone). Where E.180 gives a modulated tone,
"400*25" means 400 Hz amplitude-modulated by 25 Hz (JP "400*16",
IN "400*25"; Asterisk's depth of 90 % is used). E.180 Supplement 2 does not
list a confirmation tone for every country; where none is given here
(marked ``# no E.180 entry``) LineBox uses three 100 ms bursts of the
country's dial tone, the common PBX practice. Levels not given by a
national source are -13 dBm0 per frequency (E.180 §2: between -10 and
-20 dBm0 is the recommended range for a single-frequency tone).

Level scale: 0 dBm0 is the sine whose peak is ``DBM0_AMPLITUDE`` in 16-bit
linear PCM, i.e. G.711 A-law's full-scale sine is +3.14 dBm0 (G.711 §3).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

__all__ = ["DBM0_AMPLITUDE", "ToneSpec", "ToneGenerator", "TONES", "TONE_NAMES", "dbm0_to_amplitude"]

DBM0_AMPLITUDE = 32767 / 10 ** (3.14 / 20)
"""Peak of a 0 dBm0 sine in 16-bit linear PCM (about 22,780)."""

TONE_NAMES = ("dial", "ringback", "busy", "congestion", "call_waiting", "confirmation")


def dbm0_to_amplitude(dbm0: float) -> float:
    return DBM0_AMPLITUDE * 10 ** (dbm0 / 20)


@dataclass(frozen=True, slots=True)
class ToneSpec:
    """One tone: frequencies (Hz) at levels (dBm0, one per frequency), a cadence.

    ``cadence`` is on/off durations in ms, starting with "on", repeated;
    ``()`` is a continuous tone. With ``repeat=False`` the cadence plays once
    and the tone then stays silent. ``am_hz`` > 0 makes the tone
    ``freqs[0]`` amplitude-modulated by ``am_hz`` at ``am_depth`` (E.180's
    "f1*f2"); the level is then the carrier's.
    """
    freqs: tuple[float, ...]
    levels_dbm0: tuple[float, ...]
    cadence: tuple[int, ...] = ()
    am_hz: float = 0.0
    am_depth: float = 0.9
    repeat: bool = True

    def __post_init__(self) -> None:
        if len(self.freqs) != len(self.levels_dbm0) or not self.freqs:
            raise ValueError("one level per frequency")
        if self.am_hz and len(self.freqs) != 1:
            raise ValueError("amplitude modulation applies to a single carrier")
        if len(self.cadence) % 2 or any(d <= 0 for d in self.cadence):
            raise ValueError("cadence is on/off pairs of positive ms")

    @property
    def components(self) -> list[tuple[float, float]]:
        """(frequency, amplitude) of every sinusoid in the tone (AM: carrier and sidebands)."""
        if self.am_hz:
            f, a = self.freqs[0], dbm0_to_amplitude(self.levels_dbm0[0])
            side = a * self.am_depth / 2
            return [(f, a), (f - self.am_hz, side), (f + self.am_hz, side)]
        return [(f, dbm0_to_amplitude(l)) for f, l in zip(self.freqs, self.levels_dbm0)]


def _t(freqs, level, cadence=(), **kw) -> ToneSpec:
    freqs = tuple(float(f) for f in (freqs if isinstance(freqs, tuple) else (freqs,)))
    levels = level if isinstance(level, tuple) else (float(level),) * len(freqs)
    return ToneSpec(freqs, levels, tuple(cadence), **kw)


_BURSTS3 = (100, 100, 100, 100, 100, 100)

TONES: dict[str, dict[str, ToneSpec]] = {
    "us": {  # Precise Tone Plan (levels per tone)
        "dial": _t((350, 440), -13.0),
        "ringback": _t((440, 480), -19.0, (2000, 4000)),
        "busy": _t((480, 620), -24.0, (500, 500)),
        "congestion": _t((480, 620), -24.0, (250, 250)),   # reorder
        "call_waiting": _t(440, -13.0, (300, 9700)),
        "confirmation": _t((350, 440), -13.0, _BURSTS3, repeat=False),
    },
    "uk": {  # BT SIN 350
        "dial": _t((350, 440), -13.0),
        "ringback": _t((400, 450), -13.0, (400, 200, 400, 2000)),
        "busy": _t(400, -13.0, (375, 375)),
        "congestion": _t(400, -13.0, (400, 350, 225, 525)),
        "call_waiting": _t(400, -13.0, (100, 4000)),
        "confirmation": _t(1400, -13.0),
    },
    "de": {
        "dial": _t(425, -13.0),
        "ringback": _t(425, -13.0, (1000, 4000)),
        "busy": _t(425, -13.0, (480, 480)),
        "congestion": _t(425, -13.0, (240, 240)),
        "call_waiting": _t(425, -13.0, (200, 200, 200, 5000)),
        "confirmation": _t(425, -13.0, _BURSTS3, repeat=False),   # no E.180 entry
    },
    "fr": {
        "dial": _t(440, -13.0),
        "ringback": _t(440, -13.0, (1500, 3500)),
        "busy": _t(440, -13.0, (500, 500)),
        "congestion": _t(440, -13.0, (250, 250)),
        "call_waiting": _t(440, -13.0, (300, 10000)),
        "confirmation": _t(440, -13.0, _BURSTS3, repeat=False),   # no E.180 entry
    },
    "cn": {
        "dial": _t(450, -13.0),
        "ringback": _t(450, -13.0, (1000, 4000)),
        "busy": _t(450, -13.0, (350, 350)),
        "congestion": _t(450, -13.0, (700, 700)),
        "call_waiting": _t(450, -13.0, (400, 4000)),
        "confirmation": _t(450, -13.0, _BURSTS3, repeat=False),   # no E.180 entry
    },
    "jp": {
        "dial": _t(400, -13.0),
        "ringback": _t(400, -13.0, (1000, 2000), am_hz=16.0),   # E.180: 400*16
        "busy": _t(400, -13.0, (500, 500)),
        "congestion": _t(400, -13.0, (500, 500)),
        "call_waiting": _t(400, -13.0, (500, 8000), am_hz=16.0),
        "confirmation": _t(400, -13.0, _BURSTS3, repeat=False),   # no E.180 entry
    },
    "au": {  # ACIF S002
        "dial": _t((413, 438), -13.0),
        "ringback": _t((413, 438), -13.0, (400, 200, 400, 2000)),
        "busy": _t(425, -13.0, (375, 375)),
        "congestion": _t(425, -13.0, (375, 375)),
        "call_waiting": _t(425, -13.0, (200, 200, 200, 4400)),
        "confirmation": _t(425, -13.0),   # "facility" tone
    },
    "in": {
        "dial": _t(400, -13.0, am_hz=25.0),                      # E.180: 400*25
        "ringback": _t(400, -13.0, (400, 200, 400, 2000), am_hz=25.0),
        "busy": _t(400, -13.0, (750, 750)),
        "congestion": _t(400, -13.0, (250, 250)),
        "call_waiting": _t(400, -13.0, (200, 100, 200, 7500)),
        "confirmation": _t(400, -13.0, _BURSTS3, repeat=False),   # no E.180 entry
    },
}


def _period(freqs: list[float], rate: int) -> int | None:
    """Samples after which the sum of these sines repeats exactly (None if > 2 s)."""
    from fractions import Fraction  # here: fractions and decimal (0.2 MB) only when a tone is made

    n = 1
    for f in freqs:
        q = Fraction(f).limit_denominator(1000) / rate   # cycles per sample
        if q != Fraction(f) / rate:
            return None
        n = math.lcm(n, q.denominator)
        if n > 2 * rate:
            return None
    return n


class ToneGenerator:
    """Generates a ``ToneSpec`` frame by frame, phase-continuously.

    The oscillators run on the absolute sample count (also through the off
    periods), so any way of cutting the output into frames gives the same
    samples as one long call; the cadence is honoured to the sample
    (durations in ms * rate / 1000). One period of the waveform is computed
    once, so a frame is two slices and a mask, not 160 sines.
    """

    def __init__(self, spec: ToneSpec, rate: int = 8000) -> None:
        self.spec = spec
        self.rate = rate
        self._n = 0
        self._segments = [d * rate // 1000 for d in spec.cadence]
        self._cycle = sum(self._segments)
        period = _period([f for f, _ in spec.components], rate)
        self._table: array | None = None
        self._period = 0
        if period is not None:
            self._table = self._render(0, period)
            self._period = period

    def _render(self, start: int, n: int) -> array:
        """n samples of the (always-on) waveform from absolute sample ``start``."""
        spec, rate, tau = self.spec, self.rate, 2 * math.pi
        out = array("h", bytes(2 * n))
        if spec.am_hz:
            a = dbm0_to_amplitude(spec.levels_dbm0[0])
            fc, fm, m = spec.freqs[0], spec.am_hz, spec.am_depth
            for i in range(n):
                t = start + i
                env = 1.0 + m * math.sin(tau * ((fm * t) % rate) / rate)
                out[i] = round(a * env * math.sin(tau * ((fc * t) % rate) / rate))
        else:
            comps = [(f, dbm0_to_amplitude(l)) for f, l in zip(spec.freqs, spec.levels_dbm0)]
            for i in range(n):
                t = start + i
                # reduce the phase before the sine: exact for the periodic table,
                # and good for hours in the (non-periodic) direct path
                out[i] = round(sum(a * math.sin(tau * ((f * t) % rate) / rate) for f, a in comps))
        return out

    @property
    def sample(self) -> int:
        """Samples generated so far."""
        return self._n

    @property
    def done(self) -> bool:
        """True once a non-repeating cadence has played out."""
        return not self.spec.repeat and bool(self._cycle) and self._n >= self._cycle

    def _wave(self, start: int, n: int) -> array:
        table = self._table
        if table is None:
            return self._render(start, n)
        p = self._period
        out = array("h")
        i = start % p
        while n > 0:
            take = min(n, p - i)
            out.extend(table[i:i + take])
            n -= take
            i = 0
        return out

    def next_frame(self, n: int = 160) -> array:
        """The next ``n`` samples (16-bit linear) of the tone."""
        start = self._n
        self._n = start + n
        if not self._cycle:
            return self._wave(start, n)
        if not self.spec.repeat and start >= self._cycle:
            return array("h", bytes(2 * n))
        out = self._wave(start, n)
        # zero the off periods (and everything after a one-shot cadence)
        pos, end = start, start + n
        while pos < end:
            if not self.spec.repeat and pos >= self._cycle:
                seg_end, on = end, False
            else:
                k = pos % self._cycle
                acc, on = 0, True
                for d in self._segments:
                    if k < acc + d:
                        break
                    acc += d
                    on = not on
                seg_end = min(end, pos - k + acc + d)
            if not on:
                out[pos - start:seg_end - start] = array("h", bytes(2 * (seg_end - pos)))
            pos = seg_end
        return out
