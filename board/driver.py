"""What every port driver shares: the port object, the line's outgoing audio, the audio hooks.

A driver (``board.sim.SimHat``, ``board.dahdi.DahdiDriver``) owns ``ports``; each is a
``DriverPort`` that satisfies ``board.port.Port``: the line machine sends it commands, it reports
events to ``on_event(event, now)``.

Audio, 20 ms G.711 frames in the port's ``law`` ("ulaw" | "alaw"), both ways:

* line -> box: the driver calls ``driver.on_audio(port, frame)`` once per 20 ms per port (also
  on hook: an FXO port hears caller ID before it answers). The media engine plugs in here.
* box -> line: ``driver.write_audio(port, frame)`` queues a frame of media for the line.

What the box sends is decided per port by ``LineAudio``, in this order: signalling samples
(caller ID, a dialled DTMF digit) first, so nothing talks over them; else the call-progress tone
a line machine asked for with ``PlayTone``; else the media frames written; else silence. So a
line machine's ``PlayTone``/``SendCallerId``/``SendDigit`` work on any driver without a media
engine, and media written during a tone is dropped rather than delayed (it is stale by then).
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from typing import Protocol

from board import port
from board.callerid import CallerIdSender, REGIONS as CID_REGIONS
from board.regions import RegionProfile
from firmware.media.dtmf import digit_freqs
from firmware.media.g711 import alaw2lin, lin2alaw, lin2ulaw, ulaw2lin
from firmware.media.tones import TONES, ToneGenerator, ToneSpec

__all__ = ["FRAME", "Clock", "LineAudio", "DriverPort", "Driver", "encode", "decode",
           "DriverError"]

FRAME = 160          # samples per 20 ms at 8 kHz
MAX_MEDIA = 10       # frames of written media kept (200 ms): older ones are dropped
DIGIT_ON_MS = 100    # a dialled DTMF digit (FxoConfig.digit_interval is 200 ms per digit)
DIGIT_LEVEL = -7.0   # dBm0 per tone (the common CPE level)
STUTTER = (100, 100) * 5    # ms: a second of interrupted dial tone, then steady (GR-506)


class DriverError(RuntimeError):
    """A driver could not do what was asked (a device that failed, a command the port can't do)."""


class Clock(Protocol):
    """What drivers and adapters need of time: ``asyncio`` loops satisfy it, so does ``SimClock``."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> object: ...


def encode(law: str, samples: array) -> bytes:
    return lin2ulaw(samples) if law == "ulaw" else lin2alaw(samples)


def decode(law: str, frame: bytes) -> array:
    a = array("h")
    a.frombytes(ulaw2lin(frame) if law == "ulaw" else alaw2lin(frame))
    return a


class LineAudio:
    """The audio one port sends to its line, 20 ms at a time (see the module docstring)."""

    def __init__(self, region: RegionProfile, law: str | None = None) -> None:
        self.region = region
        self.law = law or region.law
        self.tone: str | None = None
        self._signal = array("h")
        self._gen: ToneGenerator | None = None
        self._media: deque[array] = deque(maxlen=MAX_MEDIA)

    # --- what goes out ------------------------------------------------------------------------

    def play_tone(self, name: str) -> None:
        """Start a tone of the region's zone by name (``stutter_dial``: a second of interrupted
        dial tone, then steady). An unknown name raises and leaves the current tone alone."""
        table = TONES[self.region.tone_zone]
        base = "dial" if name == "stutter_dial" else name
        if base not in table:
            raise ValueError(f"no tone {name!r} in zone {self.region.tone_zone!r}; "
                             f"known: {', '.join(sorted(table))}, stutter_dial")
        spec = table[base]
        if name == "stutter_dial":
            burst = ToneSpec(spec.freqs, spec.levels_dbm0, STUTTER, spec.am_hz, spec.am_depth,
                             repeat=False)
            self._signal.extend(ToneGenerator(burst).next_frame(sum(STUTTER) * 8))
        self.tone = name
        self._gen = ToneGenerator(spec)

    def stop_tone(self) -> None:
        self.tone = None
        self._gen = None

    def send_caller_id(self, cid) -> None:
        """Caller ID in the region's standard (no standard: nothing is sent)."""
        code = self.region.code
        if self.region.cid_standard is None or code not in CID_REGIONS:
            return
        self._signal.extend(CallerIdSender(region=code).samples(cid))

    def send_digit(self, digit: str) -> None:
        """One DTMF digit: 100 ms tone, 100 ms pause."""
        spec = ToneSpec(digit_freqs(digit), (DIGIT_LEVEL, DIGIT_LEVEL), (DIGIT_ON_MS, DIGIT_ON_MS),
                        repeat=False)
        self._signal.extend(ToneGenerator(spec).next_frame(2 * DIGIT_ON_MS * 8))

    def send_samples(self, samples) -> None:
        """Linear samples ahead of everything else (a simulated party's DTMF, a test tone)."""
        self._signal.extend(array("h", samples))

    def write(self, frame: bytes) -> None:
        """A 20 ms G.711 frame of media in this port's law."""
        if len(frame) != FRAME:
            raise ValueError(f"a frame is {FRAME} bytes of G.711, got {len(frame)}")
        self._media.append(decode(self.law, frame))

    def write_linear(self, samples: array) -> None:
        if len(samples) != FRAME:
            raise ValueError(f"a frame is {FRAME} samples, got {len(samples)}")
        self._media.append(array("h", samples))

    @property
    def signalling(self) -> bool:
        """Caller ID or a digit is still being sent."""
        return bool(self._signal)

    def clear(self) -> None:
        """Drop everything queued (the line went away)."""
        del self._signal[:]
        self._media.clear()
        self.stop_tone()

    def next_linear(self) -> array:
        """The next 20 ms the line carries, 16-bit linear."""
        if self._signal:
            out = self._signal[:FRAME]
            del self._signal[:FRAME]
            if len(out) < FRAME:
                out.extend(array("h", bytes(2 * (FRAME - len(out)))))
            return out
        if self._gen is not None:
            self._media.clear()
            return self._gen.next_frame(FRAME)
        if self._media:
            return self._media.popleft()
        return array("h", bytes(2 * FRAME))

    def next_frame(self) -> bytes:
        """The same, G.711-encoded in this port's law."""
        return encode(self.law, self.next_linear())


class DriverPort:
    """One port of a driver: a ``board.port.Port``. Audio-side commands (tones, caller ID,
    digits) are carried out here through ``LineAudio``; line-side ones by the driver's
    ``_line_command(port, command)`` (hook, ring, polarity, MWI)."""

    def __init__(self, driver: "Driver", name: str, kind: port.PortKind, region: RegionProfile,
                 capabilities: port.Capabilities, law: str | None = None) -> None:
        self.driver = driver
        self.name = name
        self.kind = kind
        self.region = region
        self.capabilities = capabilities
        self.audio = LineAudio(region, law)
        self.on_event: Callable[[port.PortEvent, float], None] | None = None

    @property
    def law(self) -> str:
        return self.audio.law

    def send(self, command: port.PortCommand) -> None:
        self.driver._audio_command(self, command)
        if isinstance(command, port.PlayTone):
            self.audio.play_tone(command.name)
        elif isinstance(command, port.StopTone):
            self.audio.stop_tone()
        elif isinstance(command, port.SendCallerId):
            if self.kind is not port.PortKind.FXS:
                raise DriverError(f"{self.name}: caller ID is sent by FXS ports")
            self.audio.send_caller_id(command.cid)
        elif isinstance(command, port.SendDigit):
            if self.kind is not port.PortKind.FXO:
                raise DriverError(f"{self.name}: digits are dialled by FXO ports")
            self.audio.send_digit(command.digit)
        else:
            _check_kind(self, command)
            self.driver._line_command(self, command)

    def emit(self, event: port.PortEvent, now: float) -> None:
        """Report an event (on the loop)."""
        if self.on_event is not None:
            self.on_event(event, now)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.kind.value} {self.region.code}>"


_FXS_ONLY = (port.Ring, port.StopRing, port.SetPolarity, port.SetMwi)
_FXO_ONLY = (port.Seize, port.Release)


def _check_kind(p: DriverPort, command: object) -> None:
    if isinstance(command, _FXS_ONLY) and p.kind is not port.PortKind.FXS:
        raise DriverError(f"{p.name}: {type(command).__name__} is an FXS command")
    if isinstance(command, _FXO_ONLY) and p.kind is not port.PortKind.FXO:
        raise DriverError(f"{p.name}: {type(command).__name__} is an FXO command")


class Driver:
    """The part of a driver the rest of the box sees: ports and the audio hooks."""

    def __init__(self) -> None:
        self.ports: list[DriverPort] = []
        self.on_audio: Callable[[DriverPort, bytes], None] | None = None

    def port(self, name: str) -> DriverPort:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(f"no port {name!r}; ports: {', '.join(p.name for p in self.ports)}")

    def write_audio(self, p: DriverPort, frame: bytes) -> None:
        """Queue one 20 ms G.711 frame (in ``p.law``) for the line."""
        p.audio.write(frame)

    def _line_command(self, p: DriverPort, command: port.PortCommand) -> None:
        raise NotImplementedError

    def _audio_command(self, p: DriverPort, command: port.PortCommand) -> None:
        """Hardware preparation an audio-side command needs (DAHDI: on-hook transmission
        before caller ID); most drivers need none."""
