"""RtpPacket (RFC 3550 §5.1) and DtmfEvent (RFC 4733 §2.3): round trips and malformed input."""

from __future__ import annotations

import struct

import pytest

from firmware.media.rtp import (
    DTMF_EVENTS, DtmfEvent, RtpError, RtpExtension, RtpPacket, is_rtcp,
)

# A G.711 µ-law packet as a phone sends it: V=2, PT=0, seq 0x1234, ts 160, SSRC.
PCMU = bytes.fromhex("80001234000000a0deadbeef") + b"\xff" * 160
# Marker, PT 101, 2 CSRCs, extension (profile 0xBEDE, 1 word), 4-byte payload, 3 octets padding.
FULL = (bytes.fromhex("b2e50001 00000320 01020304".replace(" ", ""))
        + struct.pack("!II", 11, 22)
        + bytes.fromhex("bede0001 10ff0000".replace(" ", ""))
        + bytes.fromhex("0b8a0320")
        + b"\x00\x00\x03")


def test_parse_plain_packet():
    p = RtpPacket.parse(PCMU)
    assert (p.version, p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (2, 0, 0x1234, 160, 0xDEADBEEF)
    assert not p.marker and p.csrc == () and p.extension is None and p.padding == b""
    assert p.payload == b"\xff" * 160
    assert bytes(p) == PCMU
    assert repr(p) == "RtpPacket(pt=0, seq=4660, ts=160, ssrc=0xdeadbeef, len=160)"


def test_parse_full_packet_round_trips():
    p = RtpPacket.parse(FULL)
    assert p.marker and p.payload_type == 101
    assert p.csrc == (11, 22)
    assert p.extension == RtpExtension(0xBEDE, bytes.fromhex("10ff0000"))
    assert p.padding == b"\x00\x00\x03" and p.has_padding
    assert p.payload == bytes.fromhex("0b8a0320")
    assert p.header_length == 12 + 8 + 8
    assert bytes(p) == FULL
    assert DtmfEvent.parse(p.payload) == DtmfEvent(11, end=True, volume=10, duration=800)
    assert "marker" in repr(p) and "pad=3" in repr(p)


def test_padding_contents_are_kept_exactly():
    raw = bytearray(PCMU)
    raw[0] |= 0x20
    raw += b"\xaa\xbb\x03"
    assert bytes(RtpPacket.parse(bytes(raw))) == bytes(raw)


def test_hand_made_packets_round_trip():
    packets = [
        RtpPacket(),
        RtpPacket(payload_type=8, sequence_number=65535, timestamp=2**32 - 1, ssrc=1, payload=b"\xd5" * 160),
        RtpPacket(payload_type=127, marker=True, csrc=tuple(range(15)), payload=b"x"),
        RtpPacket(extension=RtpExtension(0x1000), payload=b"abc", padding=b"\0" * 3 + b"\x04"),
    ]
    for p in packets:
        raw = bytes(p)
        assert RtpPacket.parse(raw) == p
        assert bytes(RtpPacket.parse(raw)) == raw


def test_parse_accepts_memoryview():
    assert RtpPacket.parse(memoryview(FULL)) == RtpPacket.parse(FULL)


@pytest.mark.parametrize("raw, why", [
    (b"", "short"),
    (PCMU[:11], "short"),
    (bytes([0x40]) + PCMU[1:], "version"),
    (bytes([0x00]) + PCMU[1:], "version"),
    (bytes([0xC0]) + PCMU[1:], "version"),
    (bytes([0x81]) + PCMU[1:12], "CSRC"),             # CC=1 but no CSRC
    (bytes([0x8F]) + PCMU[1:12] + b"\0" * 56, "CSRC"),  # CC=15, 14 present
    (bytes([0x90]) + PCMU[1:12] + b"\xbe\xde", "extension"),
    (bytes([0x90]) + PCMU[1:12] + b"\xbe\xde\x00\x02" + b"\0" * 4, "extension"),
    (bytes([0xA0]) + PCMU[1:12] + b"\x00", "padding"),   # count 0
    (bytes([0xA0]) + PCMU[1:12] + b"ab\x05", "padding"),  # count beyond payload
    (bytes([0xA0]) + PCMU[1:12], "padding"),  # padding bit, header only: count = last header octet
])
def test_malformed_packets_raise(raw, why):
    with pytest.raises(RtpError):
        RtpPacket.parse(raw)


def test_invalid_fields_raise():
    with pytest.raises(RtpError):
        RtpPacket(payload_type=128)
    with pytest.raises(RtpError):
        RtpPacket(csrc=tuple(range(16)))
    with pytest.raises(RtpError):
        RtpPacket(padding=b"\0\0")
    with pytest.raises(RtpError):
        RtpPacket(extension=RtpExtension(1, b"abc"))


def test_is_rtcp():
    rr = bytes.fromhex("80c90001") + b"\0" * 4        # empty Receiver Report, PT 201
    sr = bytes.fromhex("80c80006") + b"\0" * 24
    assert is_rtcp(rr) and is_rtcp(sr)
    assert not is_rtcp(PCMU)
    assert not is_rtcp(bytes(RtpPacket(payload_type=96, marker=True)))  # octet 1 = 224
    assert is_rtcp(bytes([0x80, 192])) and is_rtcp(bytes([0x80, 223]))
    assert not is_rtcp(bytes([0x80, 191])) and not is_rtcp(b"\x80")


@pytest.mark.parametrize("code", range(16))
def test_every_dtmf_event(code):
    digit = DTMF_EVENTS[code]
    for end in (False, True):
        ev = DtmfEvent.from_digit(digit, end=end, volume=63, duration=0xFFFF)
        raw = bytes(ev)
        assert raw[0] == code
        assert bool(raw[1] & 0x80) == end and raw[1] & 0x3F == 63
        assert DtmfEvent.parse(raw) == ev and ev.digit == digit
        assert bytes(DtmfEvent.parse(raw)) == raw
    assert DtmfEvent.from_digit(digit.lower()).event == code


def test_dtmf_event_details():
    assert DTMF_EVENTS == "0123456789*#ABCD"
    assert bytes(DtmfEvent(5, end=False, volume=10, duration=160)) == b"\x05\x0a\x00\xa0"
    flash = DtmfEvent.parse(b"\x10\x8a\x03\x20")
    assert flash.digit is None and flash.end and flash.duration == 800
    r = DtmfEvent.parse(b"\x01\x4a\x00\x00")              # R bit set: kept for round trip
    assert r.reserved and bytes(r) == b"\x01\x4a\x00\x00"
    assert repr(DtmfEvent(11, end=True)) == "DtmfEvent('#', end, volume=-10dBm0, duration=0)"
    assert DtmfEvent.parse_many(b"\x01\x0a\x00\xa0\x02\x8a\x01\x40") == [
        DtmfEvent(1, volume=10, duration=160), DtmfEvent(2, end=True, volume=10, duration=320)]


@pytest.mark.parametrize("bad", [b"", b"\x01\x0a\x00", b"\x01\x0a\x00\xa0\x00"])
def test_dtmf_malformed(bad):
    with pytest.raises(RtpError):
        DtmfEvent.parse(bad)


def test_dtmf_invalid_fields():
    for kwargs in ({"event": 256}, {"event": 1, "volume": 64}, {"event": 1, "duration": 0x10000}):
        with pytest.raises(RtpError):
            DtmfEvent(**kwargs)
    with pytest.raises(RtpError):
        DtmfEvent.from_digit("E")
    with pytest.raises(RtpError):
        DtmfEvent.parse_many(b"\x01\x0a\x00")
