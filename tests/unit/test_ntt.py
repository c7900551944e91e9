"""NTT Number Display messages: the framing written out by hand, the CRC against the standard
library's CRC-CCITT, DLE transparency, corrupted messages refused, and the message through V.23
FSK to the receiver the FXS phone and the FXO line use."""

from __future__ import annotations

import binascii
import random
from array import array

import pytest

from board.callerid import CallerId, CallerIdError, CallerIdReceiver, CallerIdSender
from board.fsk import FskModulator, mark_bits, uart_bits
from board.ntt import NttMessage, crc16, decode_ntt, encode_ntt, frame_length


def _rev(v: int, bits: int) -> int:
    return int(f"{v:0{bits}b}"[::-1], 2)


def reference_crc(data: bytes) -> int:
    """CRC-16/CCITT processed LSB first, from the stdlib's MSB-first CRC-CCITT (crc_hqx):
    mirror every input byte and the result."""
    return _rev(binascii.crc_hqx(bytes(_rev(b, 8) for b in data), 0), 16)


# "0312345678" as Number Display sends it. Each 7-bit character gets an even-parity bit 7:
# DLE 0x10 (one 1 bit) -> 0x90, SOH 0x01 -> 0x81, header 0x07 (three) -> 0x87, DLE -> 0x90,
# STX 0x02 -> 0x82, service 0x40 -> 0xC0, length 0x0C (12 = 2 + 10; two 1 bits) -> 0x0C,
# number parameter 0x02 -> 0x82, its length 0x0A (two) -> 0x0A, then the digits:
# '0' 0x30 (two) 30, '3' 0x33 (four) 33, '1' 0x31 (three) B1, '2' 0x32 (three) B2, '3' 33,
# '4' 0x34 (three) B4, '5' 0x35 (four) 35, '6' 0x36 (four) 36, '7' 0x37 (five) B7,
# '8' 0x38 (three) B8; DLE -> 0x90, ETX 0x03 (two) -> 0x03. The CRC (low byte first) covers
# everything from the header to ETX as sent.
BODY = bytes.fromhex("9081" "87" "9082" "c0" "0c" "820a" "3033b1b233b43536b7b8" "9003")
CRC = reference_crc(BODY[2:])
VECTOR = BODY + bytes((CRC & 0xFF, CRC >> 8))
OSAKA = CallerId(number="0312345678")


def test_crc16_check_value_and_the_stdlib_agree():
    assert crc16(b"123456789") == 0x2189        # the catalogue check value of this CRC
    rng = random.Random(7)
    for n in (0, 1, 2, 17, 200):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16(data) == reference_crc(data)


def test_the_message_written_out_by_hand():
    assert encode_ntt(OSAKA) == VECTOR
    msg = NttMessage.parse(VECTOR)
    assert msg == NttMessage(((0x02, b"0312345678"),))
    assert bytes(msg) == VECTOR
    assert decode_ntt(VECTOR) == OSAKA
    assert crc16(VECTOR[2:]) == 0               # run over its own CRC it leaves nothing
    assert frame_length(VECTOR) == len(VECTOR) and frame_length(VECTOR[:-1]) is None
    assert repr(msg) == "NttMessage(service=0x40, 0x02='0312345678')"


def test_a_dle_inside_the_message_is_sent_twice():
    # 16 digits: the number parameter's length byte is 0x10, DLE, so it goes out as DLE DLE;
    # then "01" with parity: 0x30, 0xB1
    cid = CallerId(number="0120123456789012")
    frame = encode_ntt(cid)
    assert frame[5:10] == bytes((0xC0, 0x12, 0x82, 0x90, 0x90)), frame.hex()
    assert frame[10:12] == bytes((0x30, 0xB1)) and len(frame) == 5 + 2 + 2 + 1 + 16 + 2 + 2
    assert decode_ntt(frame) == cid and bytes(NttMessage.parse(frame)) == frame


@pytest.mark.parametrize("reason, absence", [(b"P", "P"), (b"O", "O"), (b"C", "O"), (b"S", "O")])
def test_reasons_for_absence(reason, absence):
    frame = bytes(NttMessage(((0x04, reason),)))
    assert decode_ntt(frame) == CallerId(absence=absence)


def test_the_name_goes_with_the_number_when_there_is_one():
    cid = CallerId(number="0312345678", name="PROBE ONE")
    assert decode_ntt(encode_ntt(cid)) == cid
    assert decode_ntt(encode_ntt(CallerId(absence="P"))) == CallerId(absence="P")


@pytest.mark.parametrize("where, what", [
    (-1, "bad CRC"),         # a bit of the CRC itself
    (-2, "bad CRC"),
    (12, "bad CRC"),         # a digit
    (6, "bad CRC"),          # the length byte
])
def test_a_corrupted_message_is_refused(where, what):
    bad = bytearray(VECTOR)
    bad[where] ^= 0x04
    with pytest.raises(CallerIdError, match=what):
        decode_ntt(bytes(bad))


def test_framing_errors_are_refused():
    with pytest.raises(CallerIdError, match="header"):
        frame_length(bytes.fromhex("9081" "88"))            # header 0x08, not 0x07
    with pytest.raises(CallerIdError, match="incomplete"):
        decode_ntt(VECTOR[:-3])
    with pytest.raises(CallerIdError, match="more follow"):
        decode_ntt(VECTOR + b"\x00")
    # a right CRC over a wrong length byte: the length check still catches it
    body = bytearray(BODY)
    body[6] = 0x0B                                          # 11: parity of 0x0B is odd -> 0x8B
    body[6] |= 0x80
    crc = reference_crc(bytes(body[2:]))
    with pytest.raises(CallerIdError, match="length byte"):
        decode_ntt(bytes(body) + bytes((crc & 0xFF, crc >> 8)))


def modulate(frame: bytes, marks: int = 80) -> array:
    mod = FskModulator("v23")
    return mod.modulate(mark_bits(marks) + uart_bits(frame) + mark_bits(2))


def feed(rx: CallerIdReceiver, x: array, seed: int = 0) -> CallerId | None:
    rng = random.Random(seed)
    got, i = None, 0
    while i < len(x):
        n = rng.randint(1, 400)
        got = got or rx.feed(x[i:i + n])
        i += n
    return got


def test_through_v23_fsk_and_a_corrupted_crc_on_the_line():
    rx = CallerIdReceiver("ntt")
    assert feed(rx, CallerIdSender(region="jp").samples(OSAKA)) == OSAKA
    assert rx.last_message == VECTOR
    bad = bytearray(VECTOR)
    bad[-1] ^= 0x01
    gap = array("h", bytes(800))
    assert feed(rx, gap + modulate(bytes(bad)) + gap, seed=1) is None
    assert "bad CRC" in str(rx.errors[-1])
    # and the receiver takes the next good message
    assert feed(rx, modulate(VECTOR), seed=2) == OSAKA


def test_the_sender_sends_no_channel_seizure_and_the_other_receivers_ignore_it():
    s = CallerIdSender("ntt")
    assert (s.seizure, s.fmt) == (0, "ntt")
    assert s.duration(OSAKA) == pytest.approx((80 + 10 * len(VECTOR) + 2) / 1200)
    x = s.samples(OSAKA)
    assert len(x) == round(s.duration(OSAKA) * 8000)
    for std in ("bell", "etsi"):
        assert feed(CallerIdReceiver(std), x) is None
    etsi = CallerIdSender("etsi").samples(CallerId(number="0312345678"))
    assert feed(CallerIdReceiver("ntt"), etsi) is None
