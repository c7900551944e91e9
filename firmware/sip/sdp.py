"""SDP (RFC 4566) parse/serialize and offer/answer helpers (RFC 3264).

``bytes(SessionDescription.parse(raw)) == raw`` for well-formed CRLF input
(lines in RFC 4566 §5 order, single spaces); LF-only input is accepted and
written back with CRLF. Lines the model has no field for (``i= u= e= p= b=
r= z= k=``, extra ``t=``/``c=``) are kept in ``extra`` and written back in
their RFC position.

The offer/answer helpers are for a media anchor: LineBox terminates SDP
toward each leg with its own address and port, so an answer carries one
audio codec (plus telephone-event) and rejects every other stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "Codec",
    "MediaDescription",
    "Origin",
    "SdpError",
    "SessionDescription",
    "audio_codecs",
    "build_answer",
    "build_offer",
    "is_hold",
    "negotiated",
]


class SdpError(ValueError):
    """Malformed SDP (status 400) or an offer we cannot answer (status 488)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# RFC 3551 §6 static audio payload types: PT -> (encoding name, clock rate, channels)
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, str | None]] = {
    0: ("PCMU", 8000, None),
    3: ("GSM", 8000, None),
    4: ("G723", 8000, None),
    5: ("DVI4", 8000, None),
    6: ("DVI4", 16000, None),
    7: ("LPC", 8000, None),
    8: ("PCMA", 8000, None),
    9: ("G722", 8000, None),
    10: ("L16", 44100, "2"),
    11: ("L16", 44100, None),
    12: ("QCELP", 8000, None),
    13: ("CN", 8000, None),
    14: ("MPA", 90000, None),
    15: ("G728", 8000, None),
    16: ("DVI4", 11025, None),
    17: ("DVI4", 22050, None),
    18: ("G729", 8000, None),
}

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

# RFC 4566 §5 order of the lines in each section; used to put ``extra`` lines back.
_SESSION_RANK = {t: i for i, t in enumerate("vosiuepcbtrzka")}
_SESSION_RANK["r"] = _SESSION_RANK["t"]  # t and r interleave: keep their input order
_MEDIA_RANK = {t: i for i, t in enumerate("micbka")}


def _is_rtp(proto: str) -> bool:
    return "RTP/" in proto.upper()


class Origin(NamedTuple):
    """The o= line (RFC 4566 §5.2)."""

    username: str
    sess_id: str
    sess_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return " ".join(self)


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _parse_connection(value: str) -> str:
    parts = value.split(" ")
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6") or not parts[2]:
        raise SdpError(f"bad c= line {value!r}")
    if _addrtype(parts[2]) != parts[1]:
        raise SdpError(f"c= address {parts[2]!r} is not {parts[1]}")
    return parts[2]


def _format_connection(address: str) -> str:
    return f"IN {_addrtype(address)} {address}"


def _attr_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def _parse_attr(value: str) -> tuple[str, str | None]:
    name, sep, rest = value.partition(":")
    if not name:
        raise SdpError(f"bad attribute {value!r}")
    return (name, rest if sep else None)


def _parse_rtpmap(value: str) -> tuple[int, tuple[str, int, str | None]]:
    pt_s, sep, enc = value.partition(" ")
    parts = enc.strip().split("/")
    try:
        pt = int(pt_s)
        if not sep or len(parts) not in (2, 3) or not parts[0] or not 0 <= pt <= 127:
            raise ValueError
        rate = int(parts[1])
    except ValueError:
        raise SdpError(f"bad rtpmap {value!r}") from None
    return pt, (parts[0], rate, parts[2] if len(parts) == 3 else None)


@dataclass
class MediaDescription:
    """One m= section (RFC 4566 §5.14) with its c= and a= lines."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    port_count: int | None = None  # m=audio 49170/2 ...
    extra: list[tuple[str, str]] = field(default_factory=list)  # i= b= k= extra c=, in order

    # -- attribute views

    def get_attribute(self, name: str) -> str | None:
        """Value of the first ``a=name[:value]`` (``""`` for a flag), None if absent."""
        for n, v in self.attributes:
            if n == name:
                return "" if v is None else v
        return None

    @property
    def rtpmap(self) -> dict[int, tuple[str, int, str | None]]:
        """PT -> (encoding name, clock rate, encoding params), static PTs implied."""
        if not _is_rtp(self.proto):
            return {}
        mapped: dict[int, tuple[str, int, str | None]] = {}
        for n, v in self.attributes:
            if n == "rtpmap" and v is not None:
                pt, enc = _parse_rtpmap(v)
                mapped.setdefault(pt, enc)
        # In m= line order, then any a=rtpmap for a PT not listed there.
        result: dict[int, tuple[str, int, str | None]] = {}
        for f in self.formats:
            pt = int(f)
            if pt in mapped:
                result[pt] = mapped[pt]
            elif pt in STATIC_PAYLOAD_TYPES:
                result[pt] = STATIC_PAYLOAD_TYPES[pt]
        for pt, enc in mapped.items():
            result.setdefault(pt, enc)
        return result

    @property
    def fmtp(self) -> dict[int, str]:
        result: dict[int, str] = {}
        for n, v in self.attributes:
            if n == "fmtp" and v:
                pt_s, _, params = v.partition(" ")
                if pt_s.isdigit():
                    result.setdefault(int(pt_s), params.strip())
        return result

    @property
    def direction(self) -> str:
        """The media-level direction attribute (the last one wins), default sendrecv."""
        return self.direction_attribute() or "sendrecv"

    @direction.setter
    def direction(self, value: str) -> None:
        if value not in DIRECTIONS:
            raise ValueError(f"bad direction {value!r}")
        attrs = [a for a in self.attributes if a[0] not in DIRECTIONS]
        self.attributes[:] = attrs + [(value, None)]

    def direction_attribute(self) -> str | None:
        found = None
        for n, v in self.attributes:
            if n in DIRECTIONS and v is None:
                found = n
        return found

    @property
    def ptime(self) -> int | None:
        v = self.get_attribute("ptime")
        if not v:
            return None
        try:
            return int(float(v))
        except ValueError:
            return None

    # -- wire

    def _lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        head = [f"m={' '.join([self.media, port, self.proto, *self.formats])}"]
        ranked: list[tuple[int, int, str]] = []
        if self.connection is not None:
            ranked.append((_MEDIA_RANK["c"], -1, f"c={_format_connection(self.connection)}"))
        for i, (t, v) in enumerate(self.extra):
            ranked.append((_MEDIA_RANK.get(t, 4), i, f"{t}={v}"))
        ranked.sort(key=lambda r: r[:2])
        return head + [r[2] for r in ranked] + [_attr_line(n, v) for n, v in self.attributes]

    @classmethod
    def _from_m_line(cls, value: str) -> MediaDescription:
        parts = value.split(" ")
        if len(parts) < 4 or not all(parts):
            raise SdpError(f"bad m= line {value!r}")
        media, port_s, proto, *formats = parts
        port_s, slash, count_s = port_s.partition("/")
        try:
            port = int(port_s)
            count = int(count_s) if slash else None
        except ValueError:
            raise SdpError(f"bad port in m= line {value!r}") from None
        if not port_s.isdigit() or not 0 <= port <= 65535 or (count is not None and count < 1):
            raise SdpError(f"bad port in m= line {value!r}")
        if _is_rtp(proto):
            for f in formats:
                if not f.isdigit() or int(f) > 127:
                    raise SdpError(f"bad RTP payload type {f!r} in m= line")
        return cls(media=media, port=port, proto=proto, formats=formats, port_count=count)

    def __repr__(self) -> str:
        return (
            f"MediaDescription(media={self.media!r}, port={self.port}, proto={self.proto!r}, "
            f"formats={self.formats!r}, connection={self.connection!r}, direction={self.direction!r})"
        )


@dataclass
class SessionDescription:
    """A whole SDP body (RFC 4566 §5)."""

    version: int
    origin: Origin
    session_name: str
    connection: str | None = None
    timing: str | None = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i= u= e= p= b= r= z= k= extra t=

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        """Parse an SDP body (CRLF or LF line ends); raises SdpError when malformed."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            text = bytes(data).decode("utf-8", "surrogateescape")
        else:
            raise SdpError("SDP must be bytes")
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
        while lines and lines[-1] == "":
            lines.pop()
        parsed: list[tuple[str, str]] = []
        for ln in lines:
            if len(ln) < 2 or ln[1] != "=" or not ("a" <= ln[0] <= "z"):
                raise SdpError(f"bad SDP line {ln!r}")
            if ln[0] not in "vosiuepcbtrzkam":
                # RFC 4566 §5: an unknown type letter makes the whole description unusable.
                raise SdpError(f"unknown SDP line type {ln[0]!r}")
            parsed.append((ln[0], ln[2:]))
        if len(parsed) < 3 or [t for t, _ in parsed[:3]] != ["v", "o", "s"]:
            raise SdpError("SDP must start with v=, o=, s=")
        if parsed[0][1] != "0":
            raise SdpError(f"unsupported SDP version {parsed[0][1]!r}")
        o = parsed[1][1].split(" ")
        if len(o) != 6 or not all(o):
            raise SdpError(f"bad o= line {parsed[1][1]!r}")
        sd = cls(version=0, origin=Origin(*o), session_name=parsed[2][1], timing=None)
        current: MediaDescription | None = None
        for t, v in parsed[3:]:
            if t in "vos":
                raise SdpError(f"repeated {t}= line")
            if t == "m":
                current = MediaDescription._from_m_line(v)
                sd.media.append(current)
            elif t == "a":
                attr = _parse_attr(v)
                if current is not None and attr[0] == "rtpmap" and _is_rtp(current.proto):
                    _parse_rtpmap(attr[1] or "")
                (current or sd).attributes.append(attr)
            elif t == "c":
                addr = _parse_connection(v)
                target = current or sd
                if target.connection is None:
                    target.connection = addr
                else:
                    target.extra.append((t, v))
            elif current is not None:
                if t not in _MEDIA_RANK:
                    raise SdpError(f"{t}= line not allowed in a media section")
                current.extra.append((t, v))
            elif t == "t" and sd.timing is None:
                sd.timing = v
            else:
                sd.extra.append((t, v))
        return sd

    def __bytes__(self) -> bytes:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        ranked: list[tuple[int, int, str]] = []
        if self.connection is not None:
            ranked.append((_SESSION_RANK["c"], -1, f"c={_format_connection(self.connection)}"))
        if self.timing is not None:
            ranked.append((_SESSION_RANK["t"], -1, f"t={self.timing}"))
        for i, (t, v) in enumerate(self.extra):
            ranked.append((_SESSION_RANK.get(t, 12), i, f"{t}={v}"))
        ranked.sort(key=lambda r: r[:2])
        lines += [r[2] for r in ranked]
        lines += [_attr_line(n, v) for n, v in self.attributes]
        for m in self.media:
            lines += m._lines()
        return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")

    def connection_for(self, m: MediaDescription) -> str | None:
        """The media-level c= address, else the session-level one.

        ``"0.0.0.0"`` is RFC 2543-style hold (see ``is_hold``).
        """
        return m.connection if m.connection is not None else self.connection

    def direction_for(self, m: MediaDescription) -> str:
        """Media-level direction, else session-level, else sendrecv (RFC 4566 §6)."""
        d = m.direction_attribute()
        if d is not None:
            return d
        found = None
        for n, v in self.attributes:
            if n in DIRECTIONS and v is None:
                found = n
        return found or "sendrecv"

    def first_audio(self) -> MediaDescription | None:
        for m in self.media:
            if m.media == "audio":
                return m
        return None

    def __repr__(self) -> str:
        return (
            f"SessionDescription(origin={self.origin!r}, connection={self.connection!r}, "
            f"media={self.media!r})"
        )


# --------------------------------------------------------------------------
# Offer/answer (RFC 3264) for the media anchor


@dataclass(frozen=True)
class Codec:
    """An RTP payload format as negotiated: name, payload type, clock rate, fmtp."""

    name: str
    pt: int
    rate: int = 8000
    fmtp: str | None = None

    def matches(self, name: str) -> bool:
        return self.name.lower() == name.lower()


_ANCHOR_PROTOS = ("RTP/AVP", "RTP/AVPF")  # no SRTP in the anchor
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_DIR_BITS = {"sendrecv": (True, True), "sendonly": (True, False), "recvonly": (False, True), "inactive": (False, False)}
_BITS_DIR = {bits: d for d, bits in _DIR_BITS.items()}


def _codecs_of(m: MediaDescription) -> list[Codec]:
    if m.port == 0 or not _is_rtp(m.proto):
        return []
    rtpmap = m.rtpmap
    fmtp = m.fmtp
    result = []
    for f in m.formats:
        pt = int(f)
        if pt in rtpmap:
            name, rate, _ = rtpmap[pt]
            result.append(Codec(name=name, pt=pt, rate=rate, fmtp=fmtp.get(pt)))
    return result


def audio_codecs(sd: SessionDescription) -> list[Codec]:
    """Codecs of the first audio m-line, in offer order ([] if it is rejected/port 0)."""
    m = sd.first_audio()
    return [] if m is None else _codecs_of(m)


def negotiated(answer: SessionDescription) -> list[Codec]:
    """The codecs an answer settled on: the first accepted audio m-line's formats."""
    for m in answer.media:
        if m.media == "audio" and m.port != 0:
            return _codecs_of(m)
    return []


def is_hold(sd: SessionDescription) -> bool:
    """True if the first audio stream asks not to receive media (RFC 3264 §8.4, RFC 2543 c=0.0.0.0)."""
    m = sd.first_audio()
    if m is None or m.port == 0:
        return False
    if sd.connection_for(m) in ("0.0.0.0", "::"):
        return True
    return sd.direction_for(m) in ("sendonly", "inactive")


def _origin(session_id: int, version: int, address: str) -> Origin:
    return Origin("-", str(session_id), str(version), "IN", _addrtype(address), address)


def _audio_media(port: int, codecs: Sequence[Codec], direction: str, ptime: int, proto: str = "RTP/AVP") -> MediaDescription:
    m = MediaDescription(media="audio", port=port, proto=proto, formats=[str(c.pt) for c in codecs])
    for c in codecs:
        m.attributes.append(("rtpmap", f"{c.pt} {c.name}/{c.rate}"))
        if c.fmtp is not None:
            m.attributes.append(("fmtp", f"{c.pt} {c.fmtp}"))
    m.attributes.append(("ptime", str(ptime)))
    m.attributes.append((direction, None))
    return m


def build_offer(
    *,
    address: str,
    port: int,
    codecs: Sequence[Codec],
    direction: str = "sendrecv",
    session_id: int,
    version: int,
    ptime: int = 20,
) -> SessionDescription:
    """An audio offer from the anchor's ``address``/``port`` (RFC 3264 §5)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"bad direction {direction!r}")
    if not codecs:
        raise ValueError("an offer needs at least one codec")
    return SessionDescription(
        version=0,
        origin=_origin(session_id, version, address),
        session_name="LineBox",
        connection=address,
        timing="0 0",
        media=[_audio_media(port, codecs, direction, ptime)],
    )


def build_answer(
    offer: SessionDescription,
    *,
    address: str,
    port: int,
    supported: Sequence[str] = ("PCMU", "PCMA"),
    prefer: Sequence[str] | None = None,
    direction: str | None = None,
    session_id: int,
    version: int,
    ptime: int = 20,
) -> tuple[SessionDescription, list[Codec]]:
    """Answer ``offer`` (RFC 3264 §6) for the media anchor.

    Same m-lines in the same order; the first usable audio stream is accepted
    with one codec (the first of ``prefer`` offered and supported, else the
    first offered that is supported, keeping the offerer's PT) plus
    telephone-event at that codec's rate if offered; every other stream is
    rejected with port 0. The direction mirrors the offer (c=0.0.0.0 counts
    as the offerer not receiving); ``direction`` restricts it further (e.g.
    "sendonly" when we put the peer on hold). Raises SdpError(status=488) if
    there is no common codec.
    """
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"bad direction {direction!r}")
    supported_l = [s.lower() for s in supported]
    order = [p.lower() for p in (prefer or []) if p.lower() in supported_l]
    media: list[MediaDescription] = []
    chosen: list[Codec] | None = None
    for om in offer.media:
        if chosen is None and om.media == "audio" and om.port != 0 and om.proto.upper() in _ANCHOR_PROTOS:
            offered = _codecs_of(om)
            usable = [c for c in offered if c.name.lower() in supported_l]
            pick: Codec | None = None
            for name in order:
                pick = next((c for c in usable if c.name.lower() == name), None)
                if pick is not None:
                    break
            if pick is None and usable:
                pick = usable[0]
            if pick is not None:
                chosen = [pick]
                te = next((c for c in offered if c.matches("telephone-event") and c.rate == pick.rate), None)
                if te is not None:
                    chosen.append(te)
                offer_dir = offer.direction_for(om)
                send, recv = _DIR_BITS[_MIRROR[offer_dir]]
                if offer.connection_for(om) in ("0.0.0.0", "::"):
                    send = False  # RFC 2543 hold: the offerer will not receive
                if direction is not None:
                    want_send, want_recv = _DIR_BITS[direction]
                    send, recv = send and want_send, recv and want_recv
                media.append(_audio_media(port, chosen, _BITS_DIR[(send, recv)], ptime, proto=om.proto))
                continue
        # RFC 3264 §6: reject by port 0, keeping media type, proto and formats.
        media.append(MediaDescription(media=om.media, port=0, proto=om.proto, formats=list(om.formats)))
    if chosen is None:
        raise SdpError("no common audio codec", status=488)
    answer = SessionDescription(
        version=0,
        origin=_origin(session_id, version, address),
        session_name="LineBox",
        connection=address,
        timing="0 0",
        media=media,
    )
    return answer, chosen
