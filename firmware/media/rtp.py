"""RTP wire types (pure): RFC 3550 §5.1 packets and RFC 4733 §2.3 telephone events.

Every type has ``parse(data)`` and ``__bytes__`` and round-trips exactly:
``bytes(RtpPacket.parse(raw)) == raw`` for every well-formed ``raw``,
including padding octets and header extensions whose content we don't use.

The relay's pass-through path never builds these objects (see relay.py); they
are for the transform path, DTMF, tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct

__all__ = [
    "RtpError", "RtpExtension", "RtpPacket", "is_rtcp",
    "DtmfEvent", "DTMF_EVENTS", "RTP_HEADER_LEN",
]

RTP_HEADER_LEN = 12
_HEADER = Struct("!BBHII")
_EXT_HEADER = Struct("!HH")
_DTMF = Struct("!BBH")


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet (or telephone-event)."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """RFC 3550 §5.3.1 header extension: 16-bit profile-defined id and data.

    ``data`` is a whole number of 32-bit words (its length is sent in words).
    """
    profile: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """An RTP packet, RFC 3550 §5.1.

    ``padding`` holds the padding octets exactly as received, the last of
    which is their count (RFC 3550 §5.1 "P"); empty means the P bit is clear.
    ``extension`` is None when the X bit is clear. The version is always 2.
    """
    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    payload: bytes = b""
    padding: bytes = b""

    version = 2

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type {self.payload_type} out of range")
        if len(self.csrc) > 15:
            raise RtpError("more than 15 CSRCs")
        if self.padding and self.padding[-1] != len(self.padding):
            raise RtpError("last padding octet must be the padding length")
        if self.extension is not None and len(self.extension.data) % 4:
            raise RtpError("extension data must be whole 32-bit words")

    @property
    def has_padding(self) -> bool:
        return bool(self.padding)

    @property
    def has_extension(self) -> bool:
        return self.extension is not None

    @property
    def header_length(self) -> int:
        """Octets before the payload (fixed header, CSRCs, extension)."""
        n = RTP_HEADER_LEN + 4 * len(self.csrc)
        if self.extension is not None:
            n += 4 + len(self.extension.data)
        return n

    @classmethod
    def parse(cls, data: bytes) -> "RtpPacket":
        n = len(data)
        if n < RTP_HEADER_LEN:
            raise RtpError(f"short packet ({n} octets)")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise RtpError(f"RTP version {b0 >> 6}")
        cc = b0 & 0x0F
        pos = RTP_HEADER_LEN + 4 * cc
        if pos > n:
            raise RtpError(f"{cc} CSRCs do not fit in {n} octets")
        csrc = Struct(f"!{cc}I").unpack_from(data, RTP_HEADER_LEN) if cc else ()
        extension = None
        if b0 & 0x10:
            if pos + 4 > n:
                raise RtpError("truncated extension header")
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            end = pos + 4 + 4 * words
            if end > n:
                raise RtpError(f"extension of {words} words does not fit")
            extension = RtpExtension(profile, bytes(data[pos + 4:end]))
            pos = end
        end = n
        padding = b""
        if b0 & 0x20:
            count = data[-1]
            if count == 0 or pos + count > n:
                raise RtpError(f"bad padding count {count}")
            end = n - count
            padding = bytes(data[end:])
        return cls(
            payload_type=b1 & 0x7F, sequence_number=seq, timestamp=ts, ssrc=ssrc,
            marker=bool(b1 & 0x80), csrc=tuple(csrc), extension=extension,
            payload=bytes(data[pos:end]), padding=padding,
        )

    def __bytes__(self) -> bytes:
        b0 = 0x80 | (0x20 if self.padding else 0) | (0x10 if self.extension else 0) | len(self.csrc)
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [_HEADER.pack(b0, b1, self.sequence_number, self.timestamp, self.ssrc)]
        if self.csrc:
            parts.append(Struct(f"!{len(self.csrc)}I").pack(*self.csrc))
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXT_HEADER.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        parts.append(self.padding)
        return b"".join(parts)

    def __repr__(self) -> str:
        extra = ""
        if self.marker:
            extra += ", marker"
        if self.csrc:
            extra += f", csrc={list(self.csrc)}"
        if self.extension is not None:
            extra += f", ext=0x{self.extension.profile:04x}/{len(self.extension.data)}"
        if self.padding:
            extra += f", pad={len(self.padding)}"
        return (f"RtpPacket(pt={self.payload_type}, seq={self.sequence_number}, "
                f"ts={self.timestamp}, ssrc=0x{self.ssrc:08x}, len={len(self.payload)}{extra})")


def is_rtcp(data: bytes) -> bool:
    """True if a datagram on a muxed port is RTCP (RFC 5761 §4: octet 1 in 192..223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


# --- RFC 4733 telephone-event ------------------------------------------------

DTMF_EVENTS = "0123456789*#ABCD"
"""RFC 4733 §3.2 event codes 0-15, indexed by code."""


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One RFC 4733 §2.3 telephone-event block (4 octets).

    ``volume`` is the power level in -dBm0 (0..63); ``duration`` is in
    timestamp units (8 kHz for G.711). ``reserved`` keeps the R bit so that
    parse/__bytes__ round-trip exactly; senders set it to 0.
    """
    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0
    reserved: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise RtpError(f"event {self.event} out of range")
        if not 0 <= self.volume <= 63:
            raise RtpError(f"volume {self.volume} out of range")
        if not 0 <= self.duration <= 0xFFFF:
            raise RtpError(f"duration {self.duration} out of range")

    @classmethod
    def from_digit(cls, digit: str, **kwargs) -> "DtmfEvent":
        code = DTMF_EVENTS.find(digit.upper()) if len(digit) == 1 else -1
        if code < 0:
            raise RtpError(f"not a DTMF digit: {digit!r}")
        return cls(code, **kwargs)

    @property
    def digit(self) -> str | None:
        """'0'-'9', '*', '#', 'A'-'D', or None for other events (e.g. flash = 16)."""
        return DTMF_EVENTS[self.event] if self.event < 16 else None

    @classmethod
    def parse(cls, data: bytes) -> "DtmfEvent":
        if len(data) != 4:
            raise RtpError(f"telephone-event payload of {len(data)} octets, expected 4")
        event, b1, duration = _DTMF.unpack(data)
        return cls(event, bool(b1 & 0x80), b1 & 0x3F, duration, bool(b1 & 0x40))

    @classmethod
    def parse_many(cls, data: bytes) -> list["DtmfEvent"]:
        """A payload carrying several blocks (RFC 4733 §2.5.1.5 redundancy)."""
        if not data or len(data) % 4:
            raise RtpError(f"telephone-event payload of {len(data)} octets")
        return [cls.parse(data[i:i + 4]) for i in range(0, len(data), 4)]

    def __bytes__(self) -> bytes:
        b1 = (0x80 if self.end else 0) | (0x40 if self.reserved else 0) | self.volume
        return _DTMF.pack(self.event, b1, self.duration)

    def __repr__(self) -> str:
        name = self.digit if self.digit is not None else str(self.event)
        return (f"DtmfEvent({name!r}{', end' if self.end else ''}, "
                f"volume=-{self.volume}dBm0, duration={self.duration})")
