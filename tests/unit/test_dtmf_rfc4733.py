"""RFC 4733 telephone-events: DtmfSender packet sequences, DtmfReceiver one digit per event."""

from __future__ import annotations

from firmware.media.dtmf import DigitDetected, DtmfReceiver, DtmfSender
from firmware.media.rtp import DtmfEvent


def ev(code: int, end: bool, duration: int, volume: int = 10) -> bytes:
    return bytes(DtmfEvent(code, end, volume, duration))


def test_sender_exact_sequence():
    s = DtmfSender(pt=101, volume=10)
    s.start("5", 100, timestamp=1000)
    got = list(s.packets())
    assert got == [
        (True, 1000, ev(5, False, 160)),
        (False, 1000, ev(5, False, 320)),
        (False, 1000, ev(5, False, 480)),
        (False, 1000, ev(5, False, 640)),
        (False, 1000, ev(5, True, 800)),
        (False, 1000, ev(5, True, 800)),
        (False, 1000, ev(5, True, 800)),
    ]
    assert list(s.packets()) == []          # one event per start()


def test_sender_volume_star_hash_and_short_event():
    s = DtmfSender(pt=101, volume=7)
    s.start("#", 20, timestamp=0xFFFFFFF0)
    got = list(s.packets())
    assert got == [(True, 0xFFFFFFF0, ev(11, True, 160, 7))] + [(False, 0xFFFFFFF0, ev(11, True, 160, 7))] * 2
    s.start("*", 50, timestamp=5)      # 400 samples: 160, 320, end at 400
    assert [DtmfEvent.parse(p).duration for _, _, p in s.packets()] == [160, 320, 400, 400, 400]


def test_sender_long_event_segments():
    """§2.5.1.3: past 65535 the event goes on in a new segment (new timestamp, no marker)."""
    s = DtmfSender(pt=101)
    s.start("1", 10_000, timestamp=0)    # 80,000 samples
    got = list(s.packets())
    stamps = sorted({ts for _, ts, _ in got})
    assert stamps == [0, 65440]
    assert [m for m, _, _ in got].count(True) == 1 and got[0][0]
    first = [DtmfEvent.parse(p) for _, ts, p in got if ts == 0]
    assert first[-1].end and first[-1].duration == 65440
    second = [DtmfEvent.parse(p) for _, ts, p in got if ts == 65440]
    assert [e.end for e in second[-3:]] == [True] * 3 and second[-1].duration == 80_000 - 65440


def test_receiver_one_digit_with_end_retransmissions():
    s = DtmfSender(pt=101)
    s.start("9", 120, timestamp=4000)
    r = DtmfReceiver()
    out = []
    for marker, ts, payload in s.packets():
        out += r.feed(ts, payload, marker)
    assert out == [DigitDetected("9", 4000, 20, "rfc4733")]


def test_receiver_lost_first_packets_and_reordered_end():
    r = DtmfReceiver()
    out = r.feed(800, ev(3, False, 480), False)   # marker and two packets lost
    out += r.feed(800, ev(3, True, 800), False)
    out += r.feed(800, ev(3, False, 640), False)   # late, reordered
    out += r.feed(800, ev(3, True, 800), False)
    assert [d.digit for d in out] == ["3"]
    out = r.feed(9000, ev(3, True, 800), False)    # only an end packet survived
    assert [d.digit for d in out] == ["3"]


def test_receiver_two_identical_digits():
    r = DtmfReceiver()
    s = DtmfSender(pt=101)
    out = []
    for ts in (0, 1120):            # 100 ms press, 40 ms pause, again
        s.start("7", 100, timestamp=ts)
        for m, t, p in s.packets():
            out += r.feed(t, p, m)
    assert [(d.digit, d.start_sample) for d in out] == [("7", 0), ("7", 1120)]


def test_receiver_long_event_counts_once():
    r = DtmfReceiver()
    s = DtmfSender(pt=101)
    s.start("0", 20_000, timestamp=0xFFFF0000)   # wraps both duration and timestamp
    out = []
    for m, t, p in s.packets():
        out += r.feed(t, p, m)
    assert [d.digit for d in out] == ["0"]


def test_receiver_ignores_garbage_and_non_digits():
    r = DtmfReceiver()
    assert r.feed(0, b"\x01\x02", True) == []
    assert r.feed(0, ev(16, False, 160), True) == []     # flash: not a digit
    # redundant blocks (§2.5.1.5): the last one is this packet's event
    assert [d.digit for d in r.feed(160, ev(4, True, 800) + ev(6, False, 160), True)] == ["6"]
