"""Call-progress tones by their cadence: segment, detect, learn (pure, sans-I/O; issue 5).

An FXO line knows the far end has hung up when the exchange plays busy or congestion, and the
guided line test must *learn* a tone it has never heard. Three layers, all fed 8 kHz 16-bit
linear audio in any chunking (normally one 20 ms frame):

* ``ToneSegmenter`` cuts audio into on/off ``Segment``s. Each 10 ms block's power in the
  call-progress band (200-1000 Hz by default), averaged over the last 80 ms, is compared with a
  threshold half way (-3 dB) below the level of the tone being heard (and well above the noise).
  The moving average of an on/off pulse crosses half its height exactly half a window after
  each edge, so durations come out unbiased whatever the level, while the dips of an
  amplitude-modulated tone (E.180 "400*25", "400*16": 90 % deep, 40-62 ms apart) average out.
  A state change needs two blocks in a row and is backdated by half the window. Each 20 ms frame also gets Goertzel powers at the frequencies of
  the ``ToneSpec``s it was told about, so an on segment knows which specs' frequencies it holds.
* ``CallProgressDetector`` names a tone from a zone's table (``firmware.media.tones.TONES``):
  a cadenced tone after ``cycles`` whole cadence cycles whose durations agree within ``tol``
  (relative, or ``slack_ms``, whichever is larger) and whose frequencies match; a continuous
  tone (dial) once it has lasted longer than any cadenced tone of the same frequencies could.
* ``learn()`` takes a recording of an unknown tone and proposes what it is: the frequencies
  (peaks of the averaged spectrum of the on segments, parabolic interpolation; three peaks
  equally spaced closer than 60 Hz are one carrier amplitude-modulated, E.180's "f1*f2"), the
  repeating on/off cadence and the level. ``identify()`` matches a learned tone to tables.

numpy is used for the block spectra (a dependency of the firmware already, see DESIGN.md).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from firmware.media.tones import DBM0_AMPLITUDE, TONES, ToneSpec

__all__ = ["Segment", "ToneSegmenter", "ToneDetected", "CallProgressDetector", "LearnedTone",
           "learn", "identify", "cadence_matches", "repeating_cadence", "dbm0", "RATE"]

RATE = 8000
BLOCK = 80                       # 10 ms: the time resolution of cadence edges
FRAME = 160                      # 20 ms: the frequency resolution (50 Hz) of the spec check
SMOOTH = 8                       # blocks in the power average: >= one period of 16 Hz AM
_DELAY = SMOOTH * BLOCK // 2     # an edge shows half a window late
_NOISE_RISE = 10 ** (0.005 / 10)  # the noise estimate climbs 0.5 dB/s between dips
_P0 = DBM0_AMPLITUDE ** 2 / 2    # power of a 0 dBm0 sine


def dbm0(power: float) -> float:
    """A mean-square power in 16-bit linear units as dBm0 (-inf for silence)."""
    return 10 * math.log10(power / _P0) if power > 0 else -math.inf


def _from_dbm0(level: float) -> float:
    return _P0 * 10 ** (level / 10)


def _samples(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(x), "<i2").astype(np.float64)
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class Segment:
    """A stretch of tone (``on``) or silence, in samples from the start of the stream."""

    on: bool
    start: int
    length: int
    level_dbm0: float = -math.inf        # mean band level over the segment
    matches: frozenset[str] = frozenset()   # spec names whose frequencies it holds (on only)

    @property
    def ms(self) -> float:
        return self.length * 1000 / RATE


@dataclass
class _Run:
    on: bool
    start: int
    blocks: int = 0
    power: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    checked: int = 0


class ToneSegmenter:
    """On/off segmentation of call-progress audio (see the module docstring).

    ``specs`` name the tones whose frequencies each on segment is checked for.
    ``feed(samples)`` returns the segments completed by that audio; ``flush()`` ends the current
    one. ``current`` is the run in progress (its length grows while it lasts).
    """

    def __init__(self, specs: Mapping[str, ToneSpec] | None = None, *,
                 band: tuple[float, float] = (200.0, 1000.0), floor_dbm0: float = -50.0,
                 rate: int = RATE) -> None:
        if rate != RATE:
            raise ValueError("the segmenter works on 8 kHz audio")
        lo, hi = band
        self._bins = slice(max(1, math.ceil(lo * BLOCK / rate)), math.floor(hi * BLOCK / rate) + 1)
        self._fbins = slice(max(1, math.ceil(lo * FRAME / rate)), math.floor(hi * FRAME / rate) + 1)
        self.floor = _from_dbm0(floor_dbm0)
        self.specs = dict(specs or {})
        freqs = sorted({f for s in self.specs.values() for f in _check_freqs(s)})
        self._freq_index = {f: i for i, f in enumerate(freqs)}
        n = np.arange(FRAME)
        w = 2 * np.pi * np.array(freqs, dtype=np.float64)[:, None] / rate
        self._basis = np.vstack([np.cos(w * n), np.sin(w * n)]) if freqs else None
        self._pending = np.zeros(0)
        self._t = 0                    # samples consumed into blocks
        self._recent: deque[float] = deque([0.0] * SMOOTH, maxlen=SMOOTH)
        self._noise = self.floor / 100     # minimum statistics: follows dips at once, rises slowly
        self._on_level: float | None = None
        self._off_blocks = 0
        self._weak = 0
        self.current = _Run(False, 0)
        self._flip = 0                 # blocks in a row that disagree with the current run
        self._flip_start = 0
        self._flip_power = 0.0
        self._flip_counts: dict[str, int] = {}
        self._flip_checked = 0

    @property
    def on_level_dbm0(self) -> float | None:
        return None if self._on_level is None else dbm0(self._on_level)

    def threshold(self) -> float:
        thr = max(self.floor, 8 * self._noise)
        if self._on_level is not None:
            thr = max(thr, self._on_level / 2)
        return thr

    def feed(self, samples) -> list[Segment]:
        x = _samples(samples)
        if len(self._pending):
            x = np.concatenate([self._pending, x])
        whole = len(x) - len(x) % FRAME
        self._pending = x[whole:]
        out: list[Segment] = []
        for i in range(0, whole, FRAME):
            self._frame(x[i:i + FRAME], out)
        return out

    def peek(self) -> Segment | None:
        """The run in progress as a segment (it may still grow), or None before any audio."""
        run = self.current
        return self._segment(run) if run.blocks else None

    def flush(self) -> list[Segment]:
        run = self.current
        if run.blocks == 0:
            return []
        seg = self._segment(run)
        self.current = _Run(not run.on, self._t)
        return [seg]

    # --- internals ----------------------------------------------------------------------------

    def _frame(self, frame: np.ndarray, out: list[Segment]) -> None:
        blocks = frame.reshape(2, BLOCK)
        spec = np.fft.rfft(blocks, axis=1)
        band = (np.abs(spec[:, self._bins]) ** 2).sum(axis=1) * 2 / BLOCK ** 2
        names = self._frame_matches(frame)
        for p in band.tolist():
            self._block(p, names, out)

    def _frame_matches(self, frame: np.ndarray) -> frozenset[str]:
        if self._basis is None:
            return frozenset()
        fspec = np.fft.rfft(frame)
        total = float((np.abs(fspec[self._fbins]) ** 2).sum()) * 2 / FRAME ** 2
        if total < self.floor:
            return frozenset()
        y = self._basis @ frame
        k = len(self._freq_index)
        pw = (y[:k] ** 2 + y[k:] ** 2) * 2 / FRAME ** 2
        found = []
        for name, s in self.specs.items():
            fs = _check_freqs(s)
            each = [float(pw[self._freq_index[f]]) for f in fs]
            if min(1.0, sum(each) / total) >= 0.6 and all(e >= 0.15 * total for e in each):
                found.append(name)
        return frozenset(found)

    def _block(self, p: float, names: frozenset[str], out: list[Segment]) -> None:
        t = max(0, self._t + BLOCK - _DELAY)
        self._t += BLOCK
        self._recent.append(p)
        p = sum(self._recent) / len(self._recent)
        on = p >= self.threshold()
        self._noise = p if p < self._noise else self._noise * _NOISE_RISE
        if on:
            self._off_blocks = self._weak = 0
            self._on_level = p if self._on_level is None else self._on_level + 0.1 * (p - self._on_level)
        else:
            self._off_blocks += 1
            # a tone well above the noise but under half the last tone's level: after 150 ms
            # of it, it is a new, weaker tone (busy after louder ringback or speech)
            if p >= max(self.floor, 8 * self._noise):
                self._weak += 1
                if self._weak >= 15:
                    self._on_level = p
                    self._weak = 0
            else:
                self._weak = 0
            if self._off_blocks > 120:       # 1.2 s of silence: longer than any busy "off"
                self._on_level = None
        run = self.current
        if on == run.on:
            # a disagreeing block that did not last: it belongs to the run after all
            if self._flip:
                self._absorb(run, self._flip, self._flip_power, self._flip_counts, self._flip_checked)
                self._flip = 0
            self._absorb(run, 1, p, {n: 1 for n in names}, 1 if on else 0)
            return
        if not self._flip:
            self._flip_start, self._flip_power, self._flip_counts, self._flip_checked = t, 0.0, {}, 0
        self._flip += 1
        self._flip_power += p
        if on:
            self._flip_checked += 1
            for n in names:
                self._flip_counts[n] = self._flip_counts.get(n, 0) + 1
        if self._flip >= 2:
            if run.blocks:
                out.append(self._segment(run))
            self.current = _Run(on, self._flip_start, self._flip, self._flip_power,
                                self._flip_counts, self._flip_checked)
            self._flip = 0

    @staticmethod
    def _absorb(run: _Run, blocks: int, power: float, counts: dict[str, int], checked: int) -> None:
        run.blocks += blocks
        run.power += power
        run.checked += checked
        for n, c in counts.items():
            run.counts[n] = run.counts.get(n, 0) + c

    @staticmethod
    def _segment(run: _Run) -> Segment:
        level = dbm0(run.power / run.blocks) if run.blocks else -math.inf
        matches = frozenset(n for n, c in run.counts.items() if run.on and c * 2 >= run.checked)
        return Segment(run.on, run.start, run.blocks * BLOCK, level, matches)


def _check_freqs(spec: ToneSpec) -> tuple[float, ...]:
    """The frequencies that must be present: all of them, or an AM tone's carrier."""
    return spec.freqs[:1] if spec.am_hz else spec.freqs


def _close(measured: float, expected: float, tol: float, slack_ms: float) -> bool:
    return abs(measured - expected) <= max(tol * expected, slack_ms)


def cadence_matches(measured: Iterable[float], expected: Iterable[float], *,
                    tol: float = 0.1, slack_ms: float = 0.0, rotate: bool = True) -> bool:
    """Two on/off cadences (ms) agree within ``tol`` per element, up to a rotation by whole
    on/off pairs when ``rotate`` (a recording may start anywhere in the cycle)."""
    m, e = list(measured), list(expected)
    if len(m) != len(e):
        return False
    if not e:
        return True
    shifts = range(0, len(e), 2) if rotate else (0,)
    return any(all(_close(a, e[(i + s) % len(e)], tol, slack_ms) for i, a in enumerate(m))
               for s in shifts)


# --- detection ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToneDetected:
    """A call-progress tone recognised by frequency and cadence, ``at`` samples into the stream."""

    name: str
    at: int


class CallProgressDetector:
    """Names call-progress tones from one zone's table (see the module docstring).

    ``tones`` is a zone's table (``TONES["uk"]``) or a zone code; ``names`` the tones to look for.
    A name is reported once per episode: again only after some other audio came in between.
    """

    def __init__(self, tones: Mapping[str, ToneSpec] | str,
                 names: Iterable[str] = ("busy", "congestion", "ringback", "dial"), *,
                 cycles: int = 2, tol: float = 0.2, slack_ms: float = 40.0,
                 floor_dbm0: float = -50.0) -> None:
        table = TONES[tones] if isinstance(tones, str) else tones
        self.specs = {n: table[n] for n in names}
        self.table = table
        if cycles < 1:
            raise ValueError("cycles must be at least 1")
        self.cycles, self.tol, self.slack_ms = cycles, tol, slack_ms
        self.segmenter = ToneSegmenter(self.specs, floor_dbm0=floor_dbm0)
        self._history: deque[Segment] = deque(maxlen=max(
            [cycles * len(s.cadence) for s in self.specs.values()] + [2]))
        self._reported: str | None = None
        self._continuous_reported = False
        # a continuous tone is named once it has outlasted every cadenced tone of the zone with
        # its frequencies (German dial tone and ringback are both 425 Hz: ringback is on 1 s)
        self._continuous_ms = {
            n: max([1000.0] + [max(o.cadence[::2]) + 300.0 for o in table.values()
                               if o.cadence and set(_check_freqs(o)) == set(_check_freqs(s))])
            for n, s in self.specs.items() if not s.cadence}

    def feed(self, samples) -> list[ToneDetected]:
        out: list[ToneDetected] = []
        for seg in self.segmenter.feed(samples):
            self._segment(seg, out)
        self._running(out)
        return out

    def _segment(self, seg: Segment, out: list[ToneDetected]) -> None:
        self._history.append(seg)
        self._continuous_reported = False
        hit = self._match()
        if hit is None:
            if self._reported is not None and not self._still(self._reported):
                self._reported = None
            return
        if hit != self._reported:
            self._reported = hit
            out.append(ToneDetected(hit, seg.start + seg.length))

    def _still(self, name: str) -> bool:
        """The tail is still consistent with ``name`` (one cycle): the episode goes on."""
        return self._tail_matches(self.specs[name], 1)

    def _match(self) -> str | None:
        best: tuple[int, str] | None = None
        for name, spec in self.specs.items():
            if spec.cadence and self._tail_matches(spec, self.cycles):
                score = len(spec.cadence)
                if best is None or score > best[0]:
                    best = (score, name)
        return best[1] if best else None

    def _tail_matches(self, spec: ToneSpec, cycles: int) -> bool:
        cad = spec.cadence
        k = cycles * len(cad)
        if len(self._history) < k:
            return False
        tail = list(self._history)[-k:]
        for r in range(len(cad)):
            ok = True
            for i, seg in enumerate(tail):
                j = (r + i) % len(cad)
                if seg.on != (j % 2 == 0) or not _close(seg.ms, cad[j], self.tol, self.slack_ms):
                    ok = False
                    break
                if seg.on and self._name_of(spec) not in seg.matches:
                    ok = False
                    break
            if ok:
                return True
        return False

    def _name_of(self, spec: ToneSpec) -> str:
        return next(n for n, s in self.specs.items() if s is spec)

    def _running(self, out: list[ToneDetected]) -> None:
        run = self.segmenter.current
        if not run.on or self._continuous_reported:
            return
        ms = run.blocks * BLOCK * 1000 / RATE
        for name, need in self._continuous_ms.items():
            if ms >= need and run.checked and run.counts.get(name, 0) * 2 >= run.checked:
                self._continuous_reported = True
                if self._reported != name:
                    self._reported = name
                    out.append(ToneDetected(name, run.start + run.blocks * BLOCK))
                return


# --- learning ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LearnedTone:
    """What an unknown tone seems to be: frequencies (Hz), AM rate, cadence (ms), level."""

    freqs: tuple[float, ...]
    cadence: tuple[int, ...]
    level_dbm0: float
    am_hz: float = 0.0
    cycles: int = 0               # whole cadence cycles the estimate rests on

    def describe(self) -> str:
        f = "+".join(f"{x:.0f}" for x in self.freqs) + " Hz"
        if self.am_hz:
            f += f" modulated by {self.am_hz:.0f} Hz"
        c = "continuous" if not self.cadence else "/".join(str(d) for d in self.cadence) + " ms"
        return f"{f}, {c}, {self.level_dbm0:.1f} dBm0"


def learn(samples, *, floor_dbm0: float = -50.0, tol: float = 0.2,
          slack_ms: float = 40.0) -> LearnedTone | None:
    """Propose frequencies, cadence and level for the tone in a recording, or None if there is
    no steady tone (less than one cadence cycle, or no tonal peak)."""
    x = _samples(samples)
    seg = ToneSegmenter(floor_dbm0=floor_dbm0)
    segs = seg.feed(x) + seg.flush()
    ons = [s for s in segs if s.on]
    if not ons:
        return None
    freqs, am = _frequencies(x, ons)
    if not freqs:
        return None
    level = dbm0(sum(_from_dbm0(s.level_dbm0) * s.length for s in ons) / sum(s.length for s in ons))
    cadence, cycles = _cadence(segs, tol, slack_ms)
    if cadence is None:
        return None
    return LearnedTone(freqs, cadence, round(level, 1), am, cycles)


def _frequencies(x: np.ndarray, ons: list[Segment]) -> tuple[tuple[float, ...], float]:
    nfft = 16384
    acc = np.zeros(nfft // 2 + 1)
    for s in ons:
        a, b = s.start + BLOCK, s.start + s.length - BLOCK     # edges are half tone
        if b - a < FRAME:
            continue
        y = x[a:b] * np.hanning(b - a)
        acc += np.abs(np.fft.rfft(y, nfft)) ** 2
    if not acc.any():
        return (), 0.0
    hz = RATE / nfft
    lo, hi = int(100 / hz), int(2000 / hz)
    spec = acc[lo:hi]
    top = spec.max()
    near = int(8 / hz)
    peaks: list[tuple[float, float]] = []
    for i in range(1, len(spec) - 1):
        v = spec[i]
        if v < top * 10 ** (-12 / 10) or v < spec[i - 1] or v < spec[i + 1]:
            continue
        if v < spec[max(0, i - near):i + near + 1].max():
            continue
        # parabolic interpolation on the log spectrum
        l, c, r = (math.log(spec[i - 1] + 1e-12), math.log(v + 1e-12), math.log(spec[i + 1] + 1e-12))
        d = 0.5 * (l - r) / (l - 2 * c + r) if (l - 2 * c + r) else 0.0
        peaks.append(((lo + i + d) * hz, float(v)))
    peaks.sort()
    if len(peaks) == 3:
        (f1, _), (f2, p2), (f3, _) = peaks
        if abs((f2 - f1) - (f3 - f2)) < 3 and f3 - f1 < 120 and p2 >= max(p for _, p in peaks):
            return (round(f2, 1),), round((f3 - f1) / 2, 1)
    strongest = sorted(peaks, key=lambda p: -p[1])[:2]
    return tuple(round(f, 1) for f, _ in sorted(strongest)), 0.0


def _cadence(segs: list[Segment], tol: float, slack_ms: float) -> tuple[tuple[int, ...] | None, int]:
    # the first and last segments were cut by the recording: drop them
    ons = [i for i, s in enumerate(segs) if s.on]
    if len(ons) == 1:
        # one burst: continuous if it lasted to the end of the recording, else unknown (one
        # ringback burst is not a cadence)
        s = segs[ons[0]]
        return ((), 0) if ons[0] == len(segs) - 1 and s.ms >= 1000 else (None, 0)
    inner = segs[1:-1]
    while inner and not inner[0].on:
        inner = inner[1:]
    return repeating_cadence([s.ms for s in inner], tol=tol, slack_ms=slack_ms)


def repeating_cadence(durations: Iterable[float], *, tol: float = 0.2, slack_ms: float = 40.0,
                      max_pairs: int = 4) -> tuple[tuple[int, ...] | None, int]:
    """The repeating on/off pattern in measured durations (ms, starting with an "on"): the
    shortest period of whole on/off pairs that every cycle follows within ``tol``, averaged,
    and how many whole cycles there were; ``(None, 0)`` without two cycles."""
    d = list(durations)
    pairs = [(d[i], d[i + 1]) for i in range(0, len(d) - 1, 2)]
    for p in range(1, max_pairs + 1):
        if len(pairs) < 2 * p:
            break
        # each position of the cycle against its median: one long period must not
        # be compared with one short one (jitter adds up), only with the typical one
        mean = []
        ok = True
        for i in range(p):
            for j in (0, 1):
                vals = sorted(pairs[k][j] for k in range(i, len(pairs), p))
                med = vals[len(vals) // 2]
                if not all(_close(v, med, tol, slack_ms) for v in vals):
                    ok = False
                mean.append(sum(vals) / len(vals))
        if ok:
            # canonical rotation: the longest off period last (how tone tables write cadences)
            offs = mean[1::2]
            last = offs.index(max(offs))
            rot = (2 * last + 2) % len(mean)
            mean = mean[rot:] + mean[:rot]
            return tuple(int(round(v)) for v in mean), len(pairs) // p
    return None, 0


def identify(tone: LearnedTone, tables: Mapping[str, Mapping[str, ToneSpec]] = TONES,
             names: Iterable[str] = ("busy", "congestion"), *, tol: float = 0.15,
             tol_hz: float = 20.0) -> list[tuple[str, str]]:
    """The (zone, name) entries of ``tables`` that a learned tone matches in frequency and
    cadence, best first (fewest frequency mismatches)."""
    found = []
    for zone, table in tables.items():
        for name in names:
            spec = table.get(name)
            if spec is None:
                continue
            want = _check_freqs(spec)
            if len(want) != len(tone.freqs) or bool(spec.am_hz) != bool(tone.am_hz):
                continue
            err = max(abs(a - b) for a, b in zip(sorted(want), tone.freqs))
            if err > tol_hz:
                continue
            if not cadence_matches(tone.cadence, spec.cadence, tol=tol, slack_ms=30):
                continue
            found.append((err, zone, name))
    found.sort()
    return [(z, n) for _, z, n in found]
