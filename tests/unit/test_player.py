"""Playlist, SoundCache and SharedSource: pure frame sources, no sockets, no clock."""

from __future__ import annotations

from array import array

import pytest

from firmware.media import g711
from firmware.media.player import (Playlist, PlayerError, SharedSource, SoundCache, ToneItem,
                                   encode, silence, silence_payload)
from firmware.media.tones import TONES, ToneSpec
from firmware.media.wav import WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, write_wav
from tests.peers.audio import goertzel_power, tone_samples


def frames(pl: Playlist) -> list[array]:
    out = []
    while (f := pl.next_frame()) is not None:
        out.append(f)
        assert len(out) < 10_000
    return out


def dominant(frame, freqs) -> float:
    return max(freqs, key=lambda f: goertzel_power(frame, 8000, f))


@pytest.mark.parametrize("fmt", ["pcm16", "ulaw", "alaw"])
def test_wav_formats_decode_to_the_same_tone(tmp_path, fmt):
    pcm = tone_samples(1000, 0.25)                       # 2000 samples = 12.5 frames
    path = str(tmp_path / f"t-{fmt}.wav")
    if fmt == "pcm16":
        write_wav(path, 8000, 1, pcm)
    elif fmt == "ulaw":
        write_wav(path, 8000, 1, g711.lin2ulaw(pcm), WAVE_FORMAT_MULAW)
    else:
        write_wav(path, 8000, 1, g711.lin2alaw(pcm), WAVE_FORMAT_ALAW)
    out = frames(Playlist([path]))
    assert len(out) == 13 and all(len(f) == 160 for f in out)
    assert all(dominant(f, (500, 1000, 1500)) == 1000 for f in out[:12])
    assert list(out[12][80:]) == [0] * 80                 # last partial frame padded


def test_wrong_rate_or_channels_refused(tmp_path):
    p = str(tmp_path / "16k.wav")
    write_wav(p, 16000, 1, array("h", bytes(640)))
    with pytest.raises(PlayerError):
        Playlist([p])
    p2 = str(tmp_path / "stereo.wav")
    write_wav(p2, 8000, 2, array("h", bytes(640)))
    with pytest.raises(PlayerError):
        Playlist([p2])
    with pytest.raises(PlayerError):
        Playlist([str(tmp_path / "missing.wav")])
    with pytest.raises(PlayerError):
        Playlist([42])


def test_items_in_order_with_durations(tmp_path):
    a = str(tmp_path / "a.wav")
    write_wav(a, 8000, 1, tone_samples(500, 0.1))
    spec = ToneSpec((1500.0,), (-10.0,))
    out = frames(Playlist([a, silence(60), ToneItem(spec, 100), silence(10)]))
    assert len(out) == 5 + 3 + 5 + 1
    assert [dominant(f, (500, 1500)) for f in out[:5]] == [500] * 5
    assert all(not any(f) for f in out[5:8]) and not any(out[13])
    assert [dominant(f, (500, 1500)) for f in out[8:13]] == [1500] * 5


def test_tone_until_its_one_shot_cadence_ends():
    out = frames(Playlist([TONES["us"]["confirmation"]]))   # 3 x (100 on, 100 off)
    assert len(out) == 30


def test_loop_repeats_and_empty_loop_ends(tmp_path):
    pl = Playlist([silence(40), ToneItem(ToneSpec((800.0,), (-10.0,)), 20)], loop=True)
    got = [pl.next_frame() for _ in range(9)]
    assert [bool(any(f)) for f in got] == [False, False, True] * 3
    empty = Playlist([silence(0)], loop=True)
    assert empty.next_frame() is None and empty.done
    assert Playlist([]).next_frame() is None


def test_payload_is_the_encoded_frame(tmp_path):
    a = str(tmp_path / "a.wav")
    write_wav(a, 8000, 1, tone_samples(700, 0.2))
    spec = ToneSpec((900.0,), (-10.0,))
    for codec in ("PCMU", "PCMA"):
        items = [a, silence(20), ToneItem(spec, 60)]
        pcm, enc = Playlist(items), Playlist(items)
        while (f := pcm.next_frame()) is not None:
            assert enc.next_payload(codec) == encode(codec, f)
        assert enc.next_payload(codec) is None
    assert silence_payload("PCMU") == b"\xff" * 160 and silence_payload("PCMA") == b"\xd5" * 160
    with pytest.raises(PlayerError):
        Playlist(items).next_payload("G729")


def test_sound_cache_decodes_once_and_encodes_once_per_law(tmp_path):
    a = str(tmp_path / "a.wav")
    write_wav(a, 8000, 1, tone_samples(700, 0.2))
    cache = SoundCache()
    p1, p2 = Playlist([a], cache=cache), Playlist([a, a], cache=cache)
    assert len(cache) == 1
    p1.next_payload("PCMU")
    p2.next_payload("PCMU")
    sound = cache.get(a)
    assert sound._encoded.keys() == {"PCMU"}
    assert len(frames(p2)) == 2 * 10 - 1


def test_shared_source_advances_once_per_clock_frame(tmp_path):
    a = str(tmp_path / "moh.wav")
    write_wav(a, 8000, 1, tone_samples(800, 0.1))         # 5 frames, looped
    shared = SharedSource(Playlist([a], loop=True))
    ref = Playlist([a], loop=True)
    for frame in range(100, 112):
        want = g711.lin2ulaw(ref.next_frame())
        # three listeners read the same clock frame, in both laws
        assert [shared.payload(frame, "PCMU") for _ in range(3)] == [want] * 3
        assert shared.payload(frame, "PCMA") == g711.lin2alaw(shared.frame(frame))
    assert shared.advances == 12
    shared.payload(115, "PCMU")             # 112..114 had no reader: the music went on anyway
    assert shared.advances == 16
