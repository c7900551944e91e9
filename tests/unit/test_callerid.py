"""Caller ID: SDMF/MDMF/ETSI messages against hand-written bytes, DTMF caller
ID through the in-band detector, and whole on-line sequences through the receiver.

Checksums in the vectors are worked by hand in the comments: the sum of every
byte before the checksum, mod 256, and the checksum is 256 minus that.
"""

from __future__ import annotations

import math
import random
from array import array

import pytest

from board.callerid import (CallerId, CallerIdError, CallerIdReceiver, CallerIdSender, CidTime,
                            checksum, decode, dtmf_callerid_decode, dtmf_callerid_digits, encode)
from firmware.media.dtmf import DtmfDetector
from firmware.media.g711 import lin2ulaw, ulaw2lin
from firmware.media.tones import dbm0_to_amplitude

# GR-30 SDMF example: 0x04, 0x12 (18 bytes), "09301224" (Sep 30, 12:24), "6095551212".
# sum = 0x04 + 0x12 = 22; "09301224" = 48+57+51+48+49+50+50+52 = 405;
# "6095551212" = 54+48+57+53+53+53+49+50+49+50 = 516; 22 + 405 + 516 = 943;
# 943 mod 256 = 175 = 0xAF; 256 - 175 = 81 = 0x51.
SDMF_VECTOR = bytes.fromhex("0412" "3039333031323234" "36303935353531323132" "51")

# MDMF: 0x80, 0x20 (32), 01 08 "09301224", 02 0A "6095551212", 07 08 "DOE JOHN".
# sum = 128+32 = 160; parameter headers 1+8+2+10+7+8 = 36; date 405; number 516;
# "DOE JOHN" = 68+79+69+32+74+79+72+78 = 551; 160+36+405+516+551 = 1668;
# 1668 mod 256 = 132; 256 - 132 = 124 = 0x7C.
MDMF_VECTOR = bytes.fromhex(
    "8020" "0108" "3039333031323234" "020a" "36303935353531323132"
    "0708" "444f45204a4f484e" "7c")

# MDMF private call: 80 10 (10+3+3 = 16), 01 08 "01010000", 04 01 'P', 08 01 'P'.
# 128+16 = 144; 1+8 = 9; "01010000" = 6*48 + 2*49 = 386; 4+1+80 = 85; 8+1+80 = 89;
# 144+9+386+85+89 = 713; 713 mod 256 = 201; 256 - 201 = 55 = 0x37.
MDMF_PRIVATE = bytes.fromhex("8010" "0108" "3031303130303030" "040150" "080150" "37")

# SDMF out of area: 04 09 "01010000" 'O'; 4+9+386+79 = 478; mod 256 = 222; 256-222 = 34 = 0x22.
SDMF_OUT_OF_AREA = bytes.fromhex("0409" "3031303130303030" "4f" "22")

# ETSI EN 300 659-3 call set-up: 80 17, 01 08 "12241830", 02 08 "01234567",
# 11 01 01 (call type: voice -- not modelled, must be skipped).
# 128+23 = 151; 1+8 = 9; "12241830" = 49+50+50+52+49+56+51+48 = 405; 2+8 = 10;
# "01234567" = 8*48 + 28 = 412; 17+1+1 = 19; 151+9+405+10+412+19 = 1006;
# 1006 mod 256 = 238; 256 - 238 = 18 = 0x12.
ETSI_VECTOR = bytes.fromhex("8017" "0108" "3132323431383330" "0208" "3031323334353637"
                            "110101" "12")

JOHN = CallerId("6095551212", "DOE JOHN", (9, 30, 12, 24))


def add_noise(sig, level_dbm0: float, snr_db: float, seed: int) -> array:
    rng = random.Random(seed)
    sigma = dbm0_to_amplitude(level_dbm0) / math.sqrt(2) / 10 ** (snr_db / 20)
    return array("h", [max(-32768, min(32767, round(v + rng.gauss(0.0, sigma)))) for v in sig])


def feed_chunked(rx: CallerIdReceiver, sig, seed: int) -> list[CallerId]:
    rng = random.Random(seed)
    found, i = [], 0
    while i < len(sig):
        n = rng.randint(1, 500)
        got = rx.feed(sig[i:i + n])
        if got is not None:
            found.append(got)
        i += n
    return found


# --- messages -------------------------------------------------------------------------

def test_checksum_arithmetic():
    assert checksum(SDMF_VECTOR[:-1]) == 0x51
    assert checksum(MDMF_VECTOR[:-1]) == 0x7C
    assert checksum(b"") == 0 and checksum(b"\x01") == 0xFF and checksum(b"\x80\x80") == 0


def test_sdmf_gr30_example():
    cid = CallerId(number="6095551212", when=(9, 30, 12, 24))
    assert encode(cid, "sdmf") == SDMF_VECTOR
    assert decode(SDMF_VECTOR) == cid
    assert decode(SDMF_VECTOR).when == CidTime(9, 30, 12, 24)


def test_mdmf_vector():
    assert encode(JOHN, "mdmf") == MDMF_VECTOR
    assert decode(MDMF_VECTOR) == JOHN


def test_absence_reasons():
    private = CallerId(when=(1, 1, 0, 0), absence="P", name_absence="P")
    assert encode(private) == MDMF_PRIVATE
    assert decode(MDMF_PRIVATE) == private
    ooa = CallerId(when=(1, 1, 0, 0), absence="O")
    assert encode(ooa, "sdmf") == SDMF_OUT_OF_AREA
    assert decode(SDMF_OUT_OF_AREA) == ooa
    with pytest.raises(CallerIdError):
        CallerId(absence="X")
    with pytest.raises(CallerIdError):
        CallerId(number="123", absence="P")


def test_etsi_vector_skips_unknown_parameters():
    cid = decode(ETSI_VECTOR)
    assert cid == CallerId(number="01234567", when=(12, 24, 18, 30))
    # our encoding leaves out the call type: same bytes minus 11 01 01, new length and checksum
    # 0x80 0x14 (23 - 3) ...; sum 1006 - 3 (length) - 19 (call type) = 984; mod 256 = 216;
    # 256 - 216 = 40 = 0x28
    assert encode(cid, "etsi") == bytes.fromhex(
        "8014" "0108" "3132323431383330" "0208" "3031323334353637" "28")


def test_names_of_15_characters():
    cid = CallerId("5551234", "ABCDEFGHIJKLMNO", (2, 29, 23, 59))
    raw = encode(cid)
    assert b"\x07\x0fABCDEFGHIJKLMNO" in raw and decode(raw) == cid
    with pytest.raises(CallerIdError, match="15"):
        encode(CallerId("5551234", "ABCDEFGHIJKLMNOP"))
    # ETSI allows longer names (EN 300 659-3: up to 50)
    long = CallerId("5551234", "Bartholomew Featherstonehaugh")
    assert decode(encode(long, "etsi")) == long


def test_datetime_accepted():
    import datetime
    cid = CallerId("1", when=datetime.datetime(2026, 11, 23, 7, 5))
    assert cid.when == CidTime(11, 23, 7, 5) and str(cid.when) == "11230705"


@pytest.mark.parametrize("raw,why", [
    (SDMF_VECTOR[:-1] + b"\x52", "checksum"),
    (MDMF_VECTOR[:5] + b"X" + MDMF_VECTOR[6:], "checksum"),
    (SDMF_VECTOR[:-2], "length"),
    (SDMF_VECTOR + b"\x00", "length"),
    (b"\x04", "short"),
    (bytes.fromhex("8003020501") + bytes((checksum(bytes.fromhex("8003020501")),)), "past"),
    (bytes.fromhex("0602") + b"BB" + bytes((checksum(bytes.fromhex("0602") + b"BB"),)), "type"),
])
def test_bad_messages_rejected(raw, why):
    with pytest.raises(CallerIdError, match=why):
        decode(raw)


def test_encode_refuses_what_it_cannot_send():
    with pytest.raises(CallerIdError):
        encode(CallerId(number="6095551212"), "sdmf")          # SDMF needs the date/time
    with pytest.raises(CallerIdError):
        encode(CallerId(number="60955512121", when=(1, 1, 0, 0)), "sdmf")   # > 10 digits
    with pytest.raises(CallerIdError):
        encode(CallerId(number="12a"))
    with pytest.raises(CallerIdError):
        encode(CallerId())
    with pytest.raises(CallerIdError):
        encode(JOHN, "xdmf")


# --- DTMF caller ID -------------------------------------------------------------------

def test_dtmf_digits_and_decoder():
    assert dtmf_callerid_digits(CallerId("4512345678")) == "A4512345678C"
    assert dtmf_callerid_digits(CallerId("4512345678"), "D") == "D4512345678C"
    assert dtmf_callerid_digits(CallerId(absence="O")) == "B00C"
    assert dtmf_callerid_digits(CallerId(absence="P")) == "B10C"
    assert dtmf_callerid_decode("A4512345678C") == CallerId("4512345678")
    assert dtmf_callerid_decode("D4512345678#") == CallerId("4512345678")
    assert dtmf_callerid_decode("B00C") == CallerId(absence="O")
    assert dtmf_callerid_decode("B10C") == CallerId(absence="P")
    for bad in ("A123", "B99C", "X12C", "A1*2C"):
        with pytest.raises(CallerIdError):
            dtmf_callerid_decode(bad)


@pytest.mark.parametrize("region,digits", [("dk", "D4533221100C"), ("in", "A4533221100C")])
def test_dtmf_callerid_through_the_dtmf_detector(region, digits):
    sig = CallerIdSender(region=region).samples(CallerId("4533221100"))
    det = DtmfDetector()
    heard = "".join(ev.digit for i in range(0, len(sig), 160) for ev in det.feed(sig[i:i + 160]))
    assert heard == digits
    assert dtmf_callerid_decode(heard) == CallerId("4533221100")
    assert len(sig) == len(digits) * 140 * 8         # 70 ms on, 70 ms off


@pytest.mark.parametrize("cid", [CallerId("31201234567"), CallerId(absence="P")], ids=repr)
def test_dtmf_receiver(cid):
    sig = CallerIdSender("dtmf", dtmf_on_ms=50, dtmf_off_ms=50).samples(cid)
    noisy = add_noise(array("h", bytes(1600)) + sig + array("h", bytes(1600)), -7.0, 20.0, 5)
    assert feed_chunked(CallerIdReceiver("dtmf"), noisy, 5) == [cid]


# --- on the line ------------------------------------------------------------------------

@pytest.mark.parametrize("standard,fmt", [("bell", "mdmf"), ("bell", "sdmf"), ("etsi", "etsi")])
@pytest.mark.parametrize("level", [-13.5, -40.0])
def test_full_sequence_through_the_receiver(standard, fmt, level):
    cid = CallerId("6095551212", None if fmt == "sdmf" else "DOE JOHN", (9, 30, 12, 24))
    tx = CallerIdSender(standard, fmt=fmt, level_dbm0=level)
    sig = tx.samples(cid)
    marks = 180 if standard == "bell" else 80
    bits = 300 + marks + 10 * len(encode(cid, fmt)) + 2
    assert len(sig) == round(bits * 8000 / 1200)
    line = array("h", bytes(2 * 800)) + sig + array("h", bytes(2 * 800))
    noisy = add_noise(line, level, 20.0, seed=int(-level))
    rx = CallerIdReceiver(standard)
    assert feed_chunked(rx, noisy, seed=3) == [cid]


@pytest.mark.parametrize("region,standard", [("us", "bell"), ("uk", "etsi"), ("de", "etsi")])
def test_region_picks_the_standard(region, standard):
    tx = CallerIdSender(region=region)
    assert tx.standard == standard
    cid = CallerId("01632960123", "J SMITH", (3, 1, 9, 15))
    assert feed_chunked(CallerIdReceiver(standard), tx.samples(cid), 1) == [cid]


def test_through_g711():
    """Caller ID reaches a port as µ-law frames: the companding must not hurt."""
    cid = CallerId("6095551212", "DOE JOHN", (9, 30, 12, 24))
    sig = CallerIdSender("bell").samples(cid)
    back = array("h")
    back.frombytes(ulaw2lin(lin2ulaw(sig)))
    assert CallerIdReceiver("bell").feed(back) == cid


def test_corrupted_message_is_dropped_then_next_is_found():
    cid = CallerId("6095551212", "DOE JOHN", (9, 30, 12, 24))
    tx = CallerIdSender("bell")
    good = tx.samples(cid)
    # flip the checksum: resend the same message with a wrong last byte
    from board.fsk import FskModulator, mark_bits, seizure_bits, uart_bits
    raw = bytearray(encode(cid))
    raw[-1] ^= 0x01
    bad = FskModulator("bell202").modulate(seizure_bits(300) + mark_bits(180) + uart_bits(raw)
                                           + mark_bits(2))
    gap = array("h", bytes(2 * 1600))
    rx = CallerIdReceiver("bell")
    assert rx.feed(bad + gap) is None
    assert len(rx.errors) == 1 and "checksum" in str(rx.errors[0])
    assert rx.feed(good + gap) == cid


def test_sender_validates():
    with pytest.raises(ValueError):
        CallerIdSender("v21")
    with pytest.raises(ValueError):
        CallerIdSender("dtmf", dtmf_on_ms=30)
    with pytest.raises(ValueError):
        CallerIdSender()


@pytest.mark.parametrize("standard, name, sent", [
    ("bell", "PROBE ONE", "PROBE ONE"),
    ("bell", "Reception Front Desk", "Reception Front"),   # MDMF carries 15 characters
    ("etsi", "Reception Front Desk", "Reception Front Desk"),
    ("etsi", "Zoë Müller", "Zo? M?ller"),                 # ASCII only on the line
    ("dtmf", "PROBE ONE", None),                           # DTMF carries no name
])
def test_a_name_is_fitted_to_what_the_format_carries(standard, name, sent):
    cid = CallerId(number="1001", name=name)
    tx = CallerIdSender(standard)
    rx = CallerIdReceiver(standard)
    got = rx.feed(tx.samples(cid) + array("h", bytes(1600)))
    assert got == CallerId(number="1001", name=sent)
