"""RFC 4733 events turned into in-band DTMF for a leg that did not negotiate telephone-event.

A phone that sends keys as events (RFC 4733) may be bridged to one that only understands tones
(an old phone, an analog gateway, a voicemail system). The relay hands each event packet of such
a direction to a ``DtmfToInband`` and sends what it returns: one 20 ms G.711 audio frame of the
key's two tones per event packet, in the same SSRC, sequence and timestamp space (a sender
replaces its audio with event packets while a key is down, RFC 4733 §2.5.1.2, so the frames slot
into the gaps). Retransmitted end packets give nothing; tones stay phase-continuous through the
event. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import math
from array import array
from typing import Callable

from . import g711

FRAME = 160
RATE = 8000
# RFC 4733 event codes 0-15: digits, *, #, A-D, with their (low, high) frequencies (Q.23).
_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
_EVENT_KEYS = "0123456789*#ABCD"
FREQS: dict[int, tuple[float, float]] = {
    code: next((_ROWS[r], _COLS[c]) for r, row in enumerate(_KEYPAD) for c, key in enumerate(row) if key == k)
    for code, k in enumerate(_EVENT_KEYS)
}
LEVEL = 0.19 * 32767  # about -10 dBm0 per tone, within the Q.23 sending range


class DtmfToInband:
    """Converts the event packets of one relay direction (see module doc)."""

    def __init__(self, law: str, audio_pt: int) -> None:
        if law not in ("PCMU", "PCMA"):
            raise ValueError(f"law must be PCMU or PCMA, not {law!r}")
        self.encode = g711.lin2ulaw if law == "PCMU" else g711.lin2alaw
        self.audio_pt = audio_pt
        self._event: tuple[int, int] | None = None  # (timestamp, event code) being played
        self._done = 0  # samples of the current event already turned into tone

    def convert(self, data: bytes) -> bytes | None:
        """One event packet in, one audio packet (or None) out."""
        b0 = data[0]
        start = 12 + ((b0 & 0x0F) << 2)
        if b0 & 0x10:
            if start + 4 > len(data):
                return None
            start += 4 + 4 * int.from_bytes(data[start + 2:start + 4], "big")
        if len(data) < start + 4:
            return None
        code = data[start]
        duration = int.from_bytes(data[start + 2:start + 4], "big")
        ts = int.from_bytes(data[4:8], "big")
        if code not in FREQS:
            return None  # flash and the rest: nothing to play
        if self._event != (ts, code):
            self._event, self._done = (ts, code), 0
        if duration <= self._done:
            return None  # a retransmitted packet (the end is sent three times)
        # Emit at most one frame per packet; a lost packet leaves a short gap, not a burst.
        first = max(self._done, duration - FRAME)
        self._done = duration
        low, high = FREQS[code]
        w1, w2 = 2 * math.pi * low / RATE, 2 * math.pi * high / RATE
        samples = array("h", (int(LEVEL * (math.sin(w1 * n) + math.sin(w2 * n))) for n in range(first, first + FRAME)))
        header = bytearray(data[:12])
        header[0] = 0x80  # plain RTP/AVP header: no CSRC, extension or padding
        header[1] = self.audio_pt  # no marker: this continues the talkspurt
        header[4:8] = ((ts + first) & 0xFFFFFFFF).to_bytes(4, "big")
        return bytes(header) + self.encode(samples)


class KeyWatcher:
    """Sees the keys (RFC 4733 events) one direction of a bridge carries, and passes them on.

    In-call feature codes (``*1`` starts or stops recording) are typed on a phone while the
    relay, not an application, owns its media. Sitting on the telephone-event payload type
    only, the watcher costs the audio nothing. ``on_key(key)`` is called once per key press
    (a new event timestamp), from the relay's receive path: it must only note the key.
    ``forward(packet)`` is what the relay would otherwise have done with the packet (pass it,
    rewrite its payload type, play it as tones, drop it: None).
    """

    def __init__(self, on_key: "Callable[[str], None]", forward: "Callable[[bytes], bytes | None]") -> None:
        self.on_key = on_key
        self.forward = forward
        self._last_ts: int | None = None

    def convert(self, data: bytes) -> bytes | None:
        b0 = data[0]
        start = 12 + ((b0 & 0x0F) << 2)
        if b0 & 0x10 and start + 4 <= len(data):
            start += 4 + 4 * int.from_bytes(data[start + 2:start + 4], "big")
        if len(data) >= start + 4:
            ts = int.from_bytes(data[4:8], "big")
            code = data[start]
            if ts != self._last_ts and code < len(_EVENT_KEYS):
                self._last_ts = ts
                self.on_key(_EVENT_KEYS[code])
        return self.forward(data)


def rewrite_pt(pt: int) -> "Callable[[bytes], bytes]":
    """A forward for ``KeyWatcher`` that only changes the payload type."""
    def forward(data: bytes) -> bytes:
        out = bytearray(data)
        out[1] = (data[1] & 0x80) | pt
        return bytes(out)
    return forward
