"""RFC 4733 events played as in-band tones toward a leg without telephone-event."""

from __future__ import annotations

import struct

import pytest

from firmware.media import g711
from firmware.media.dtmf import DtmfDetector, DtmfSender
from firmware.media.dtmfbridge import DtmfToInband
from firmware.pbx.b2bua import dtmf_conversion
from firmware.sip.sdp import Codec


def event_packets(digits: str, *, te_pt: int = 101, gap_frames: int = 3) -> list[bytes]:
    """What a phone sends for these keys (RFC 4733 sender), as RTP packets."""
    sender = DtmfSender(pt=te_pt)
    out, seq, ts = [], 1000, 50_000
    for d in digits:
        sender.start(d, 100, ts)
        for marker, pts, payload in sender.packets():
            out.append(struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | te_pt, seq & 0xFFFF, pts, 0x1234) + payload)
            seq += 1
        ts += 160 * (5 + gap_frames)
        out.extend([b""] * gap_frames)  # the pause between keys: silence at the far end
    return out


@pytest.mark.parametrize("law,decode", [("PCMU", g711.ulaw2lin), ("PCMA", g711.alaw2lin)])
def test_events_become_tones_a_detector_hears_once_per_key(law: str, decode) -> None:  # type: ignore[no-untyped-def]
    conv = DtmfToInband(law, audio_pt=0 if law == "PCMU" else 8)
    det = DtmfDetector()
    heard: list[str] = []
    for pkt in event_packets("159#*0"):
        frame = conv.convert(pkt) if pkt else None
        if frame is not None:
            assert frame[1] & 0x7F == conv.audio_pt and len(frame) == 12 + 160
            pcm = decode(frame[12:])
        else:
            pcm = bytes(320)  # a retransmitted end packet or the pause: silence
        heard += [d.digit for d in det.feed(pcm)]
    assert "".join(heard) == "159#*0"


def test_retransmitted_end_packets_give_no_audio() -> None:
    conv = DtmfToInband("PCMU", 0)
    frames = [conv.convert(p) for p in event_packets("7", gap_frames=0)]
    made = [f for f in frames if f is not None]
    # a 100 ms key: 5 event packets of growing duration, then the end sent three times
    assert len(made) == 5 and frames[-2:] == [None, None]
    stamps = [int.from_bytes(f[4:8], "big") for f in made]
    assert stamps == [50_000 + 160 * i for i in range(5)]  # the tone fills the key's time span


def test_the_controller_converts_only_toward_a_leg_without_telephone_event() -> None:
    with_te = (Codec("PCMU", 0), Codec("telephone-event", 101))
    without = (Codec("PCMA", 8),)
    conv = dtmf_conversion(with_te, without)
    assert conv is not None and set(conv) == {101} and conv[101].audio_pt == 8
    assert dtmf_conversion(with_te, with_te) is None
    assert dtmf_conversion(without, with_te) is None


def test_key_watcher_sees_each_key_once_and_forwards_every_packet() -> None:
    from firmware.media.dtmfbridge import KeyWatcher, rewrite_pt

    seen: list[str] = []
    packets = [p for p in event_packets("*1#") if p]
    w = KeyWatcher(seen.append, rewrite_pt(96))
    out = [w.convert(p) for p in packets]
    assert seen == ["*", "1", "#"]  # the end packet's three retransmissions are no new key
    assert all(o is not None and o[1] & 0x7F == 96 for o in out)
    assert [o[2:] for o in out] == [p[2:] for p in packets]  # only the payload type changed


def test_key_watcher_drops_or_converts_as_the_relay_would() -> None:
    from firmware.media.dtmfbridge import KeyWatcher

    seen: list[str] = []
    dropped = KeyWatcher(seen.append, lambda data: None)
    assert all(dropped.convert(p) is None for p in event_packets("5") if p)
    tones = KeyWatcher(seen.append, DtmfToInband("PCMU", 0).convert)
    audio = [a for a in (tones.convert(p) for p in event_packets("7") if p) if a is not None]
    assert seen == ["5", "7"]
    assert audio and all(a[1] & 0x7F == 0 for a in audio)
    det = DtmfDetector()
    heard = [d.digit for a in audio for d in det.feed(g711.ulaw2lin(a[12:]))]
    heard += [d.digit for _ in range(5) for d in det.feed(bytes(320))]
    assert heard == ["7"]
