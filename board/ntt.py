"""NTT "Number Display" caller-ID messages (Japan): the framing, its CRC, to and from ``CallerId``.

Pure: bytes in, bytes out. The line signal around it (CAR, the terminal's primary response,
V.23 FSK while the terminal is off hook, then normal ringing) is the line machines' business
(``board.fxs``, ``board.fxo``); the FSK itself is ``board.fsk`` (V.23, 1200 baud).

The message, as NTT's technical reference "Telephone service interface" frames it (taken here
from Asterisk's ``callerid_feed_jp`` and spandsp's JCLIP code, read for understanding only, and
public descriptions; NTT's own text was not at hand). Byte values below are the 7-bit
characters; ``DLE`` 0x10, ``SOH`` 0x01, ``STX`` 0x02, ``ETX`` 0x03::

    DLE SOH  header(0x07)  DLE STX  service(0x40)  length  parameters...  DLE ETX  CRC(lo) CRC(hi)

* Characters are 7 bits plus an **even parity** bit (bit 7, sent as the UART's eighth data
  bit); the two CRC bytes are plain 8-bit values.
* **Transparency**: between ``DLE STX`` and ``DLE ETX`` a data character equal to ``DLE`` is
  sent twice, so a lone ``DLE`` is always a control prefix.
* ``length`` counts the parameter bytes before stuffing. Parameters are ``type, length,
  value`` with the codes ETSI and GR-30 use: 0x02 calling number (up to 20 digits), 0x04
  reason for its absence (``P`` private, ``O`` unavailable, ``C`` public phone, ``S`` service
  conflict), 0x07 name, 0x08 reason for absence of the name, 0x01 date and time; others
  (0x09 called number, 0x21/0x22 number details) are skipped on decode.
* **CRC**: CRC-16 with the CCITT polynomial x^16 + x^12 + x^5 + 1, processed least significant
  bit first, initial value 0, over every byte from the header through ``ETX`` as sent (parity
  bits and stuffed ``DLE`` included), low byte first; run over the message including its CRC
  it leaves 0. That is how Asterisk's receiver checks it and spandsp's sender makes it: the
  two agree.

Parity is generated but not checked on receipt: the CRC covers every bit of every character
already, and a receiver that rejected a message with a good CRC over a parity convention would
lose caller ID for nothing (Asterisk and spandsp do not check it either).

Our ``CallerId`` knows two reasons for absence; NTT's ``C`` (public phone) and ``S`` (service
conflict) are both read as ``O``: there is no number to show either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from board.callerid import (MAX_NUMBER, P_DATETIME, P_NAME, P_NAME_ABSENT, P_NUMBER,
                            P_NUMBER_ABSENT, CallerId, CallerIdError, CidTime, parameters)

__all__ = ["DLE", "SOH", "STX", "ETX", "HEADER", "SERVICE_CALLER_ID", "crc16", "with_parity",
           "NttMessage", "frame_length", "encode_ntt", "decode_ntt", "MAX_FRAME"]

DLE, SOH, STX, ETX = 0x10, 0x01, 0x02, 0x03
HEADER = 0x07                 # the header byte of a Number Display message
SERVICE_CALLER_ID = 0x40      # service type: calling number display
MAX_FRAME = 300               # longer than any message (128 parameter bytes, all stuffed)
_NTT_ABSENCE = {"P": "P", "O": "O", "C": "O", "S": "O"}


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16, CCITT polynomial, least significant bit first (reflected), from ``crc``."""
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def with_parity(c: int) -> int:
    """A 7-bit character with its even-parity bit in bit 7."""
    c &= 0x7F
    return c | (bin(c).count("1") & 1) << 7


def _stuff(data: bytes) -> bytes:
    return data.replace(bytes((DLE,)), bytes((DLE, DLE)))


@dataclass(frozen=True, slots=True)
class NttMessage:
    """One Number Display message: the service type and its parameters (7-bit values, in
    order). ``parse`` checks the framing and the CRC; ``bytes()`` frames it again."""

    params: tuple[tuple[int, bytes], ...]
    service: int = SERVICE_CALLER_ID

    @classmethod
    def parse(cls, frame: bytes) -> "NttMessage":
        n = frame_length(frame)
        if n is None:
            raise CallerIdError(f"incomplete Number Display message ({len(frame)} bytes)")
        if n != len(frame):
            raise CallerIdError(f"message is {n} bytes, {len(frame) - n} more follow")
        if crc16(frame[2:]) != 0:
            got = frame[-2] | frame[-1] << 8
            raise CallerIdError(f"bad CRC 0x{got:04x}, expected 0x{crc16(frame[2:-2]):04x}")
        body = _unstuff(bytes(c & 0x7F for c in frame[5:-4]))   # service .. last parameter
        if len(body) < 2:
            raise CallerIdError("no service type and length")
        service, length, raw = body[0], body[1], body[2:]
        if length != len(raw):
            raise CallerIdError(f"length byte says {length} parameter bytes, got {len(raw)}")
        return cls(tuple(parameters(raw)), service)

    def __bytes__(self) -> bytes:
        body = bytearray()
        for ptype, value in self.params:
            if len(value) > 0x7F or any(c > 0x7F for c in value) or ptype > 0x7F:
                raise CallerIdError(f"parameter 0x{ptype:02x} is not 7-bit characters")
            body += bytes((ptype, len(value))) + value
        if len(body) > 0x7F:
            raise CallerIdError("parameters longer than 127 bytes")
        inner = _stuff(bytes((self.service, len(body))) + bytes(body))
        sent = bytes(with_parity(c) for c in
                     bytes((DLE, SOH, HEADER, DLE, STX)) + inner + bytes((DLE, ETX)))
        crc = crc16(sent[2:])
        return sent + bytes((crc & 0xFF, crc >> 8))

    def __repr__(self) -> str:
        ps = ", ".join(f"0x{t:02x}={v.decode('ascii', 'replace')!r}" for t, v in self.params)
        return f"NttMessage(service=0x{self.service:02x}, {ps})"

    # --- what it says -----------------------------------------------------------------------

    @classmethod
    def of(cls, cid: CallerId) -> "NttMessage":
        """The message for ``cid``: the number or why it is absent, and the name when there is
        one (Number Display proper carries the number; the name is NTT's separate Name Display
        service, sent here only when the caller has one)."""
        params: list[tuple[int, bytes]] = []
        if cid.number is not None:
            if not cid.number or not all(c.isdigit() or c in "*#" for c in cid.number):
                raise CallerIdError(f"number must be digits: {cid.number!r}")
            if len(cid.number) > MAX_NUMBER:
                raise CallerIdError(f"number longer than {MAX_NUMBER} digits")
            params.append((P_NUMBER, cid.number.encode("ascii")))
        elif cid.absence is not None:
            params.append((P_NUMBER_ABSENT, cid.absence.encode("ascii")))
        else:
            raise CallerIdError("no number and no reason for its absence")
        if cid.name is not None:
            try:
                params.append((P_NAME, cid.name.encode("ascii")))
            except UnicodeEncodeError:
                raise CallerIdError(f"name must be ASCII: {cid.name!r}") from None
        elif cid.name_absence is not None:
            params.append((P_NAME_ABSENT, cid.name_absence.encode("ascii")))
        return cls(tuple(params))

    def caller_id(self) -> CallerId:
        if self.service != SERVICE_CALLER_ID:
            raise CallerIdError(f"not a caller-ID message: service 0x{self.service:02x}")
        fields: dict[str, object] = {}
        for ptype, value in self.params:
            text = value.decode("ascii", "replace")
            if ptype == P_NUMBER:
                fields["number"] = text
            elif ptype == P_NUMBER_ABSENT:
                fields["absence"] = _absence(text)
            elif ptype == P_NAME:
                fields["name"] = text
            elif ptype == P_NAME_ABSENT:
                fields["name_absence"] = _absence(text)
            elif ptype == P_DATETIME and len(value) == 8 and value.isdigit():
                fields["when"] = CidTime(*(int(text[i:i + 2]) for i in range(0, 8, 2)))
        if "number" not in fields and "absence" not in fields:
            raise CallerIdError("no number and no reason for its absence")
        return CallerId(**fields)  # type: ignore[arg-type]


def _absence(text: str) -> str:
    try:
        return _NTT_ABSENCE[text]
    except KeyError:
        raise CallerIdError(f"unknown reason for absence {text!r}") from None


def _unstuff(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        out.append(data[i])
        i += 2 if data[i] == DLE and i + 1 < len(data) and data[i + 1] == DLE else 1
    return bytes(out)


def frame_length(data: bytes) -> int | None:
    """The length of the message ``data`` starts with once its ``DLE ETX`` and CRC are in,
    else None. ``CallerIdError`` when ``data`` cannot be the start of one (a receiver drops it
    and hunts for the next ``DLE SOH``)."""
    head = bytes((DLE, SOH, HEADER, DLE, STX))
    seen = bytes(c & 0x7F for c in data[:5])
    if seen != head[:len(seen)]:
        raise CallerIdError(f"not a Number Display header: {data[:5].hex()}")
    i = 5
    while i + 1 < len(data):
        if data[i] & 0x7F == DLE:
            nxt = data[i + 1] & 0x7F
            if nxt == ETX:
                return i + 4 if i + 4 <= len(data) else None
            if nxt != DLE:
                raise CallerIdError(f"DLE followed by 0x{nxt:02x} inside the message")
            i += 2
        else:
            i += 1
    if len(data) > MAX_FRAME:
        raise CallerIdError("no end of message")
    return None


def encode_ntt(cid: CallerId) -> bytes:
    """The framed message (parity, stuffing, CRC) for ``cid``."""
    return bytes(NttMessage.of(cid))


def decode_ntt(frame: bytes) -> CallerId:
    """The caller ID in one framed message; ``CallerIdError`` for a bad CRC or framing."""
    return NttMessage.parse(frame).caller_id()
