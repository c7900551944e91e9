"""Caller ID: the messages, their on-line formats, a sender and a receiver (pure).

Formats
-------
* **SDMF** (Telcordia GR-30-CORE single data message): ``0x04``, length,
  ``MMDDHHMM`` (8 ASCII digits), then the number (ASCII digits) or one
  absence letter ``O`` (out of area / unavailable) or ``P`` (private).
* **MDMF** (GR-30 multiple data message): ``0x80``, length, then parameters
  ``type, length, value``: ``0x01`` date and time (``MMDDHHMM``), ``0x02``
  number, ``0x04`` reason for absence of number, ``0x07`` name, ``0x08``
  reason for absence of name (``O``/``P``).
* **ETSI** (EN 300 659-3 presentation layer, carried by V.23 FSK per
  EN 300 659-1): message type ``0x80`` *call set-up* with the same parameter
  codes (``0x01`` date and time, ``0x02`` calling line identity, ``0x04``
  reason for absence of CLI, ``0x07`` calling party name, ``0x08`` reason for
  absence of name). Other ETSI parameters are skipped on decode.

  Every FSK message ends with a checksum: the two's complement of the sum,
  modulo 256, of all bytes before it, so the sum of the whole message is 0.
* **NTT** "Number Display" (Japan): its own framing (DLE/SOH header, DLE STX ... DLE ETX,
  CRC-16, 7-bit characters with even parity) around the same parameter codes, carried by V.23
  FSK while the phone is off hook after the CAR signal; the message is ``board.ntt``.
* **DTMF** caller ID (used in DK, NL, SE, FI, IN, parts of CN, BR): a start
  digit (``A``, or ``D`` in DK and others), the number, ``C`` at the end. Absence: ``B00C`` number
  unavailable (``O``), ``B10C`` private (``P``) -- the codes Asterisk's
  ``callerid_get_dtmf`` also reads. Digits are 2-tone DTMF, 50-80 ms on and off.

On the line (``CallerIdSender``)
--------------------------------
Bell 202: channel seizure of 300 bits 0101..., 180 mark bits, the message,
all at -13.5 dBm0 (GR-30). ETSI V.23: 300 seizure bits, 80 mark bits (the
standard allows 80 +- 25), the message. NTT: no channel seizure, 80 mark bits
(**guess**; spandsp's JCLIP sender uses 75), the framed message. All end with a
few mark bits so the last stop bit is clean. DTMF: 70 ms tone / 70 ms pause per
digit at -7 dBm0 per tone.

A name longer than the format carries (GR-30 MDMF: 15 characters, ETSI: 50) is cut
to fit and characters outside ASCII become ``?`` (``CallerIdSender.fit``): an
extension's configured name or a SIP display name is free text, and a phone
showing most of it beats no caller ID at all.

``CallerIdReceiver`` turns line audio (any chunking) into a ``CallerId``
once one complete message with a good checksum (FSK) or an end digit (DTMF)
has been received.
"""

from __future__ import annotations

import datetime as _dt
import math
from array import array
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

from board.fsk import (FskDemodulator, FskModulator, mark_bits, seizure_bits, uart_bits)
from firmware.media.dtmf import DtmfDetector, digit_freqs
from firmware.media.tones import ToneGenerator, ToneSpec

__all__ = [
    "CallerId", "CidTime", "CallerIdError", "encode", "decode", "checksum",
    "dtmf_callerid_digits", "dtmf_callerid_decode", "CallerIdSender", "CallerIdReceiver",
    "fsk_standard", "STANDARDS",
    "Region", "REGIONS", "message_length", "SDMF", "MDMF", "ETSI_CALL_SETUP",
    "P_DATETIME", "P_NUMBER", "P_NUMBER_ABSENT", "P_NAME", "P_NAME_ABSENT",
]

SDMF = 0x04             # GR-30 single data message (caller ID)
MDMF = 0x80             # GR-30 multiple data message / ETSI call set-up
ETSI_CALL_SETUP = 0x80

P_DATETIME = 0x01
P_NUMBER = 0x02
P_NUMBER_ABSENT = 0x04
P_NAME = 0x07
P_NAME_ABSENT = 0x08

ABSENCE = ("O", "P")    # out of area / unavailable, private
STANDARDS = ("bell", "etsi", "dtmf", "ntt")   # what a sender sends and a receiver hears
MAX_NAME = 15           # GR-30: name up to 15 characters (ETSI allows 50)
MAX_NUMBER = 20         # ETSI: up to 20 digits (GR-30 SDMF: 10)


class CallerIdError(ValueError):
    """A caller-ID message that cannot be encoded or decoded, and why."""


class CidTime(NamedTuple):
    """The date and time a caller-ID message carries (no year, no seconds)."""
    month: int
    day: int
    hour: int
    minute: int

    @classmethod
    def of(cls, when: "CidTime | _dt.datetime | tuple") -> "CidTime":
        if isinstance(when, _dt.datetime):
            return cls(when.month, when.day, when.hour, when.minute)
        return cls(*when)

    def __str__(self) -> str:
        return f"{self.month:02d}{self.day:02d}{self.hour:02d}{self.minute:02d}"


@dataclass(frozen=True, slots=True)
class CallerId:
    """Who is calling: number, name, when; or why the number/name are absent.

    ``absence`` is ``"O"`` (out of area / unavailable) or ``"P"`` (private)
    when there is no number; ``name_absence`` the same for the name.
    ``when`` takes a ``datetime`` or ``(month, day, hour, minute)``.
    """
    number: str | None = None
    name: str | None = None
    when: CidTime | None = None
    absence: str | None = None
    name_absence: str | None = None

    def __post_init__(self) -> None:
        if self.when is not None and not isinstance(self.when, CidTime):
            object.__setattr__(self, "when", CidTime.of(self.when))
        for reason in (self.absence, self.name_absence):
            if reason is not None and reason not in ABSENCE:
                raise CallerIdError(f"absence reason must be 'O' or 'P', not {reason!r}")
        if self.number is not None and self.absence is not None:
            raise CallerIdError("a number and a reason for its absence")
        if self.name is not None and self.name_absence is not None:
            raise CallerIdError("a name and a reason for its absence")

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k in ("number", "name", "absence", "name_absence")
                 if (v := getattr(self, k)) is not None]
        if self.when is not None:
            parts.append(f"when={str(self.when)!r}")
        return f"CallerId({', '.join(parts)})"


# --- FSK messages ------------------------------------------------------------------

def checksum(data: bytes) -> int:
    """Two's complement of the sum of ``data`` modulo 256."""
    return -sum(data) & 0xFF


def _ascii(text: str, what: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise CallerIdError(f"{what} must be ASCII: {text!r}") from None


def _digits(number: str) -> bytes:
    if not number or not all(c.isdigit() or c in "*#+" for c in number):
        raise CallerIdError(f"number must be digits: {number!r}")
    if len(number) > MAX_NUMBER:
        raise CallerIdError(f"number longer than {MAX_NUMBER} digits")
    return number.encode("ascii")


def _when(cid: CallerId) -> bytes:
    w = cid.when
    if w is None:
        raise CallerIdError("SDMF needs the date and time")
    if not (1 <= w.month <= 12 and 1 <= w.day <= 31 and 0 <= w.hour <= 23 and 0 <= w.minute <= 59):
        raise CallerIdError(f"bad date/time {tuple(w)}")
    return str(w).encode("ascii")


def encode(cid: CallerId, fmt: str = "mdmf") -> bytes:
    """The message bytes (type, length, body, checksum) in ``fmt``:
    ``"sdmf"``, ``"mdmf"`` or ``"etsi"`` (the ETSI call set-up message)."""
    fmt = fmt.lower()
    if fmt == "sdmf":
        if cid.number is not None:
            who = _digits(cid.number)
            if len(who) > 10:
                raise CallerIdError("SDMF carries at most 10 digits")
        elif cid.absence is not None:
            who = cid.absence.encode("ascii")
        else:
            raise CallerIdError("SDMF needs a number or a reason for its absence")
        body = _when(cid) + who
        mtype = SDMF
    elif fmt in ("mdmf", "etsi"):
        params = bytearray()

        def put(ptype: int, value: bytes) -> None:
            params.extend((ptype, len(value)))
            params.extend(value)

        if cid.when is not None:
            put(P_DATETIME, _when(cid))
        if cid.number is not None:
            put(P_NUMBER, _digits(cid.number))
        elif cid.absence is not None:
            put(P_NUMBER_ABSENT, cid.absence.encode("ascii"))
        if cid.name is not None:
            name = _ascii(cid.name, "name")
            limit = MAX_NAME if fmt == "mdmf" else 50
            if len(name) > limit:
                raise CallerIdError(f"name longer than {limit} characters")
            put(P_NAME, name)
        elif cid.name_absence is not None:
            put(P_NAME_ABSENT, cid.name_absence.encode("ascii"))
        if not params:
            raise CallerIdError("nothing to send")
        body = bytes(params)
        mtype = MDMF
    else:
        raise CallerIdError(f"unknown format {fmt!r}")
    if len(body) > 255:
        raise CallerIdError("message longer than 255 bytes")
    msg = bytes((mtype, len(body))) + body
    return msg + bytes((checksum(msg),))


def _parse_when(value: bytes) -> CidTime:
    if len(value) != 8 or not value.isdigit():
        raise CallerIdError(f"bad date/time field {value!r}")
    s = value.decode()
    return CidTime(int(s[0:2]), int(s[2:4]), int(s[4:6]), int(s[6:8]))


def _absence(value: bytes) -> str:
    r = value.decode("ascii", "replace")
    if r not in ABSENCE:
        raise CallerIdError(f"unknown reason for absence {r!r}")
    return r


def message_length(data: bytes) -> int | None:
    """Total length (type, length, body, checksum) of the message ``data``
    starts with, or None while fewer than two bytes are known."""
    return None if len(data) < 2 else data[1] + 3


def decode(data: bytes) -> CallerId:
    """Parse one SDMF, MDMF or ETSI call set-up message (with its checksum)."""
    if len(data) < 3:
        raise CallerIdError(f"message too short ({len(data)} bytes)")
    n = data[1] + 3
    if len(data) != n:
        raise CallerIdError(f"length byte says {n} bytes, got {len(data)}")
    if sum(data) & 0xFF:
        raise CallerIdError(f"bad checksum 0x{data[-1]:02x}, expected 0x{checksum(data[:-1]):02x}")
    mtype, body = data[0], data[2:-1]
    if mtype == SDMF:
        if len(body) < 9:
            raise CallerIdError("SDMF body shorter than date/time and one character")
        when = _parse_when(body[:8])
        who = body[8:]
        if who in (b"O", b"P"):
            return CallerId(when=when, absence=who.decode())
        if not who.isdigit():
            raise CallerIdError(f"SDMF number is not digits: {who!r}")
        return CallerId(number=who.decode(), when=when)
    if mtype != MDMF:
        raise CallerIdError(f"not a caller-ID message: type 0x{mtype:02x}")
    fields: dict[str, object] = {}
    for ptype, value in parameters(body):
        if ptype == P_DATETIME:
            fields["when"] = _parse_when(value)
        elif ptype == P_NUMBER:
            fields["number"] = value.decode("ascii", "replace")
        elif ptype == P_NUMBER_ABSENT:
            fields["absence"] = _absence(value)
        elif ptype == P_NAME:
            fields["name"] = value.decode("latin-1")
        elif ptype == P_NAME_ABSENT:
            fields["name_absence"] = _absence(value)
        # other parameters (ETSI call type, redirection, ...) are skipped
    return CallerId(**fields)  # type: ignore[arg-type]


def parameters(body: bytes) -> list[tuple[int, bytes]]:
    """The (type, value) parameters of an MDMF-style body: a type byte, a length byte, the value;
    the layout MDMF, ETSI and NTT's Number Display share."""
    params: list[tuple[int, bytes]] = []
    i = 0
    while i < len(body):
        if i + 2 > len(body):
            raise CallerIdError("truncated parameter header")
        ptype, plen = body[i], body[i + 1]
        value = body[i + 2:i + 2 + plen]
        if len(value) != plen:
            raise CallerIdError(f"parameter 0x{ptype:02x} runs past the message")
        params.append((ptype, value))
        i += 2 + plen
    return params


# --- DTMF caller ID ---------------------------------------------------------------

_DTMF_ABSENCE = {"O": "B00", "P": "B10"}


def dtmf_callerid_digits(cid: CallerId, variant: str = "A") -> str:
    """The DTMF digits of ``cid``: ``A<number>C`` (``variant="D"``: ``D<number>C``),
    or ``B00C`` / ``B10C`` when the number is unavailable / private."""
    if variant not in ("A", "D"):
        raise CallerIdError("DTMF caller ID starts with 'A' or 'D'")
    if cid.number is not None:
        if not cid.number.isdigit():
            raise CallerIdError(f"DTMF caller ID carries digits only: {cid.number!r}")
        return f"{variant}{cid.number}C"
    if cid.absence is not None:
        return _DTMF_ABSENCE[cid.absence] + "C"
    raise CallerIdError("no number and no reason for its absence")


def dtmf_callerid_decode(digits: str) -> CallerId:
    """The caller ID in a DTMF digit sequence (start digit to ``C``; a
    trailing ``#`` is accepted as an end too)."""
    d = digits.upper().rstrip("C#")
    if not d or not digits.upper().endswith(("C", "#")):
        raise CallerIdError(f"DTMF caller ID without end digit: {digits!r}")
    if d[0] == "B":
        code = d[1:]
        for reason, seq in _DTMF_ABSENCE.items():
            if code == seq[1:]:
                return CallerId(absence=reason)
        raise CallerIdError(f"unknown DTMF absence code {code!r}")
    if d[0] in "AD" and d[1:].isdigit():
        return CallerId(number=d[1:])
    raise CallerIdError(f"not a DTMF caller ID: {digits!r}")


# --- on the line ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Region:
    """How caller ID is sent in a country (the FXS line machine decides *when*)."""
    standard: str              # "bell" | "etsi" | "dtmf" | "ntt"
    fmt: str = "mdmf"          # FSK message format
    before_ring: bool = False  # after a polarity reversal / line reversal, before the first ring
    dtmf_start: str = "A"


REGIONS: dict[str, Region] = {
    "us": Region("bell", "mdmf"),
    "cn": Region("bell", "mdmf"),          # YD/T 1078: Bell 202 FSK, MDMF (DTMF also used)
    # BT SIN 227: V.23 after a line reversal and an alerting tone; its own
    # preamble timing is not modelled yet (the ETSI one is sent)
    "uk": Region("etsi", "etsi", before_ring=True),
    "de": Region("etsi", "etsi"),
    "fr": Region("etsi", "etsi", before_ring=True),
    "au": Region("etsi", "etsi"),
    "in": Region("dtmf", before_ring=True),
    # NTT Number Display: after the CAR signal and the phone's primary response, before the
    # first ring (the line machines run that handshake)
    "jp": Region("ntt", "ntt", before_ring=True),
    "dk": Region("dtmf", before_ring=True, dtmf_start="D"),
    "nl": Region("dtmf", before_ring=True),
}


class CallerIdSender:
    """The samples to play on a line for one caller ID (8 kHz, 16-bit linear).

    ``standard`` is ``"bell"`` (Bell 202, GR-30), ``"etsi"`` (V.23,
    EN 300 659-1), ``"ntt"`` (V.23, NTT's framing) or ``"dtmf"``; ``region``
    (a ``REGIONS`` key) fills in the standard, format and DTMF start digit.
    """

    def __init__(self, standard: str | None = None, region: str | None = None, *,
                 fmt: str | None = None, level_dbm0: float | None = None,
                 seizure: int | None = None, marks: int | None = None,
                 dtmf_start: str | None = None, dtmf_on_ms: int = 70,
                 dtmf_off_ms: int = 70) -> None:
        reg = REGIONS[region.lower()] if region is not None else None
        if standard is None:
            if reg is None:
                raise ValueError("give a standard or a region")
            standard = reg.standard
        standard = standard.lower()
        if standard not in STANDARDS:
            raise ValueError(f"unknown caller-ID standard {standard!r}")
        self.standard = standard
        self.fmt = fmt or (reg.fmt if reg and reg.standard == standard else
                           (standard if standard in ("etsi", "ntt") else "mdmf"))
        self.level_dbm0 = level_dbm0 if level_dbm0 is not None else (-7.0 if standard == "dtmf" else -13.5)
        self.seizure = seizure if seizure is not None else (0 if standard == "ntt" else 300)
        self.marks = marks if marks is not None else (180 if standard == "bell" else 80)
        self.dtmf_start = dtmf_start or (reg.dtmf_start if reg else "A")
        if not 50 <= dtmf_on_ms <= 80 or not 50 <= dtmf_off_ms <= 80:
            raise ValueError("DTMF caller-ID digits are 50-80 ms on and off")
        self.dtmf_on_ms, self.dtmf_off_ms = dtmf_on_ms, dtmf_off_ms

    def fit(self, cid: CallerId) -> CallerId:
        """``cid`` with its name cut to what this format carries and made ASCII (see the
        module docstring); DTMF carries no name at all."""
        if cid.name is None:
            return cid
        if self.standard == "dtmf":
            return replace(cid, name=None)
        limit = MAX_NAME if self.fmt == "mdmf" else 50
        name = cid.name.encode("ascii", "replace").decode("ascii")[:limit].rstrip()
        return replace(cid, name=name or None) if name != cid.name else cid

    def message(self, cid: CallerId) -> bytes:
        """The message bytes the FSK carries (after ``fit``)."""
        cid = self.fit(cid)
        if self.standard == "ntt":
            from board.ntt import encode_ntt   # board.ntt builds on this module
            return encode_ntt(cid)
        return encode(cid, self.fmt)

    def duration(self, cid: CallerId) -> float:
        """Seconds ``samples(cid)`` lasts (without generating them)."""
        if self.standard == "dtmf":
            digits = dtmf_callerid_digits(cid, self.dtmf_start)
            return len(digits) * (self.dtmf_on_ms + self.dtmf_off_ms) / 1000
        bits = self.seizure + self.marks + 10 * len(self.message(cid)) + 2
        return bits / 1200

    def samples(self, cid: CallerId) -> array:
        if self.standard == "dtmf":
            return self._dtmf(dtmf_callerid_digits(cid, self.dtmf_start))
        mod = FskModulator("bell202" if self.standard == "bell" else "v23", self.level_dbm0)
        bits = seizure_bits(self.seizure) + mark_bits(self.marks) + uart_bits(self.message(cid))
        return mod.modulate(bits + mark_bits(2))

    def _dtmf(self, digits: str) -> array:
        out = array("h")
        on = self.dtmf_on_ms * 8
        for d in digits:
            spec = ToneSpec(digit_freqs(d), (self.level_dbm0, self.level_dbm0),
                            (self.dtmf_on_ms, self.dtmf_off_ms), repeat=False)
            out.extend(ToneGenerator(spec).next_frame(on + self.dtmf_off_ms * 8))
        return out


def fsk_standard(samples) -> str | None:
    """Which FSK carried a burst of caller ID: ``"bell"`` (1200/2200 Hz) or ``"etsi"`` (V.23,
    1300/2100 Hz), by the power at the four tone frequencies over the whole burst; None if no
    FSK is there. Needed because either demodulator also decodes the other standard (their
    tones are only 100 Hz apart, within the discriminator's capture), so which receiver
    decoded a message does not say which standard the line uses."""
    x = array("h", samples) if not isinstance(samples, array) else samples
    if len(x) < 800:
        return None
    power = {}
    for f in (1200.0, 2200.0, 1300.0, 2100.0):
        w = 2 * math.pi * f / 8000
        k2 = 2 * math.cos(w)
        s1 = s2 = 0.0
        for v in x:
            s1, s2 = v + k2 * s1 - s2, s1
        power[f] = s1 * s1 + s2 * s2 - k2 * s1 * s2
    bell, v23 = power[1200.0] + power[2200.0], power[1300.0] + power[2100.0]
    if max(bell, v23) <= 0:
        return None
    return "bell" if bell > v23 else "etsi"


class CallerIdReceiver:
    """Finds caller ID in line audio (any chunking): ``feed(samples)`` returns
    a ``CallerId`` once a whole valid message has arrived, else None.

    FSK (``"bell"``, ``"etsi"``): bytes after the mark signal are collected
    into a message by its length byte; a bad checksum or an unknown message
    type drops it (``errors`` counts them) and the receiver waits for the
    next one. NTT (``"ntt"``): bytes from ``DLE SOH`` to ``DLE ETX`` and the
    CRC (``board.ntt``); a bad CRC drops the message the same way. DTMF: digits
    from a start digit (A, B, D) to ``C``/``#``.
    """

    def __init__(self, standard: str) -> None:
        standard = standard.lower()
        if standard not in STANDARDS:
            raise ValueError(f"unknown caller-ID standard {standard!r}")
        self.standard = standard
        self.errors: list[CallerIdError] = []
        self.last_message: bytes | None = None   # the last good FSK message (type byte first)
        self._buf = bytearray()
        self._digits = ""
        if standard == "dtmf":
            self._dtmf = DtmfDetector()
            self._fsk = None
        else:
            self._fsk = FskDemodulator("bell202" if standard == "bell" else "v23")

    def _error(self, e: CallerIdError) -> None:
        self.errors.append(e)
        del self.errors[:-16]     # the latest few, for diagnosis

    def feed(self, samples) -> CallerId | None:
        if self._fsk is None:
            return self._feed_dtmf(samples)
        fsk = self._fsk
        bursts = fsk.bursts
        data = fsk.feed(samples)
        found = None
        if fsk.bursts != bursts:
            self._buf.clear()     # a new mark signal: a new message starts
        if self.standard == "ntt":
            return self._feed_ntt(data)
        for b in data:
            buf = self._buf
            if not buf and b not in (SDMF, MDMF):
                continue          # not a caller-ID message start
            buf.append(b)
            n = message_length(buf)
            if n is not None and len(buf) == n:
                cid = self._take(bytes(buf), decode)  # every message is read, the first one kept
                found = found or cid
                buf.clear()
        return found

    def _take(self, message: bytes, parse: Callable[[bytes], CallerId]) -> CallerId | None:
        """A whole message: its caller ID, or None with the error reported."""
        try:
            cid = parse(message)
        except CallerIdError as e:
            self._error(e)
            return None
        self.last_message = message
        return cid

    def _feed_ntt(self, data: bytes) -> CallerId | None:
        from board.ntt import DLE, NttMessage, frame_length   # board.ntt builds on this module
        found = None
        buf = self._buf
        for b in data:
            if not buf and b & 0x7F != DLE:
                continue          # hunting for the DLE of DLE SOH
            buf.append(b)
            try:
                n = frame_length(bytes(buf))
            except CallerIdError as e:
                if len(buf) > 2:
                    self._error(e)
                buf.clear()       # not a message start (or broken): hunt again,
                if b & 0x7F == DLE:   # from this byte if it can start one
                    buf.append(b)
                continue
            if n is None:
                continue
            cid = self._take(bytes(buf), lambda m: NttMessage.parse(m).caller_id())
            found = found or cid
            buf.clear()
        return found

    def _feed_dtmf(self, samples) -> CallerId | None:
        found = None
        for ev in self._dtmf.feed(samples):
            d = ev.digit
            if not self._digits:
                if d in "ABD":
                    self._digits = d
                continue
            self._digits += d
            if d in "C#":
                try:
                    cid = dtmf_callerid_decode(self._digits)
                except CallerIdError as e:
                    self._error(e)
                else:
                    found = found or cid
                self._digits = ""
        return found
