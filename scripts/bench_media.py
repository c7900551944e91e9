#!/usr/bin/env python3
"""Media DSP benchmark (not in CI): µs per 20 ms frame, and peak RSS.

Rows:

* jitter buffer: one ``put`` + one ``get`` per frame, on a stream with 20 ms
  of random jitter (the RtpPacket fields passed as a tuple, as the engine will);
* recorder write (stereo): ``write(left, right)`` per frame -- the packet-path
  cost -- and, separately, ``flush`` amortised per frame (the I/O side: the
  interleave and one ``os.write`` per 1 s chunk to a real file);
* recorder write (mono mix) and µ-law stereo flush;
* bridge recording as the engine does it now: the relay's tap (a
  ``list.append`` per packet: the whole packet-path cost) and, separately,
  ``TapRecording.batch`` per packet in 0.5 s batches (the writer thread:
  placing by RTP timestamp, bulk G.711 decode, interleave or mono mix, one
  ``os.write``), µ-law caller and A-law callee;
* mixer minus-one with 3 and 10 talking parties, per backend available.

Derived: "per core" = 20000 µs / (µs per frame), i.e. how many such streams
one core could serve if it did nothing else.

    .venv/bin/python scripts/bench_media.py [--frames 20000] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.media import mixer                                   # noqa: E402
from firmware.media.jitterbuffer import JitterBuffer               # noqa: E402
from firmware.media.g711 import lin2alaw, lin2ulaw                # noqa: E402
from firmware.media.recorder import CallRecorder, TapRecording     # noqa: E402


def tone(freq: float, n: int = 160, amp: int = 6000) -> bytes:
    return array("h", [int(amp * math.sin(2 * math.pi * freq * i / 8000))
                       for i in range(n)]).tobytes()


def bench_jitter(frames: int) -> float:
    rng = random.Random(1)
    jb = JitterBuffer()
    pkts = [(i & 0xFFFF, (160 * i) & 0xFFFFFFFF, 0x1234, bytes(160), 0.02 * i + rng.uniform(0, 0.02))
            for i in range(frames)]
    put, get = jb.put, jb.get
    t = time.perf_counter()
    for i, p in enumerate(pkts):
        put(p)
        get(0.02 * i + 0.03)
    return (time.perf_counter() - t) / frames * 1e6


def bench_recorder(frames: int, directory: str, **kw) -> tuple[float, float]:
    left, right = tone(440), tone(1000)
    path = os.path.join(directory, f"bench-{kw.get('mode', 'stereo')}-{kw.get('encoding', 'pcm16')}.wav")
    rec = CallRecorder(path, max_buffer_seconds=1e9, **kw)
    write = rec.write
    flush_time = 0.0
    t = time.perf_counter()
    for i in range(frames):
        write(left, right)
        if not i % 50 and rec.flush_due:          # what the engine does at its cadence
            f0 = time.perf_counter()
            rec.flush()
            flush_time += time.perf_counter() - f0
    write_time = time.perf_counter() - t - flush_time
    f0 = time.perf_counter()
    rec.close()                                   # last flush + header + fsync + rename
    flush_time += time.perf_counter() - f0
    os.unlink(path)
    return write_time / frames * 1e6, flush_time / frames * 1e6


def bench_tap(frames: int, directory: str, mode: str = "stereo") -> tuple[float, float]:
    """(tap µs per packet, writer µs per packet) for one recorded call of ``frames`` per side."""
    import struct
    hdr = struct.Struct("!BBHII")
    la, lb = lin2ulaw(tone(440)), lin2alaw(tone(1000))
    pa = [hdr.pack(0x80, 0, k & 0xFFFF, 160 * k, 1) + la for k in range(frames)]
    pb = [hdr.pack(0x80, 8, k & 0xFFFF, 160 * k, 2) + lb for k in range(frames)]
    path = os.path.join(directory, f"bench-tap-{mode}.wav")
    job = TapRecording(CallRecorder(path, mode=mode), 0.0, ("PCMU", "PCMA"))
    a: list = []
    b: list = []
    tap_a, tap_b = a.append, b.append
    tap_time = work = 0.0
    for start in range(0, frames, 25):              # 0.5 s batches, as the engine's timer
        t = time.perf_counter()
        for k in range(start, min(start + 25, frames)):
            tap_a(pa[k])
            tap_b(pb[k])
        tap_time += time.perf_counter() - t
        t = time.perf_counter()
        batch_a, batch_b = a.copy(), b.copy()
        a.clear()
        b.clear()
        job.batch(0.02 * (start + 25), batch_a, batch_b, ("PCMU", "PCMA"))
        work += time.perf_counter() - t
    t = time.perf_counter()
    job.finish(0.02 * frames, [], [], ("PCMU", "PCMA"))
    work += time.perf_counter() - t
    os.unlink(path)
    return tap_time / (2 * frames) * 1e6, work / (2 * frames) * 1e6


def bench_mixer(parties: int, backend: str, frames: int) -> float:
    fr = {i: tone(300 + 170 * i, amp=2500) for i in range(parties)}
    mm = mixer.mix_minus_one
    n = max(frames // 10, 500)
    t = time.perf_counter()
    for _ in range(n):
        mm(fr, backend=backend)
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--dir", default=None, help="directory for recorder files (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def row(name, us, note=""):
        rows.append({"what": name, "us_per_frame": round(us, 2),
                     "per_core": int(20000 / us) if us > 0 else None, "note": note})

    row("jitter buffer put+get", bench_jitter(a.frames), "20 ms jitter, adaptive")
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        w, f = bench_recorder(a.frames, d)
        row("recorder write, stereo pcm16", w, "packet path")
        row("recorder flush, stereo pcm16", f, "amortised, 1 s chunks, off the packet path")
        row("recorder write+flush, stereo pcm16", w + f, "whole cost of a recorded call")
        w, f = bench_recorder(a.frames, d, encoding="ulaw")
        row("recorder write+flush, stereo ulaw", w + f, f"write {w:.2f} + flush {f:.2f}")
        w, f = bench_recorder(a.frames, d, mode="mono")
        row("recorder write+flush, mono mix", w + f, f"write {w:.2f} + flush {f:.2f}")
        t, w = bench_tap(a.frames, d)
        row("bridge recording tap, per packet", t, "packet path (list.append)")
        row("bridge recording writer, stereo, per packet", w, "writer thread, 0.5 s batches")
        t, w = bench_tap(a.frames, d, "mono")
        row("bridge recording writer, mono mix, per packet", w, "writer thread, 0.5 s batches")
    backends = ["python"] + (["numpy"] if mixer.HAVE_NUMPY else [])
    for parties in (3, 5, 10):
        for be in backends:
            row(f"mixer minus-one, {parties} parties, {be}", bench_mixer(parties, be, a.frames),
                "all outputs of one tick")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if a.json:
        print(json.dumps({"rows": rows, "peak_rss_kib": rss, "rss_at_start_kib": rss0,
                          "python": sys.version.split()[0], "numpy": mixer.HAVE_NUMPY}))
        return
    print(f"Python {sys.version.split()[0]}, numpy {'yes' if mixer.HAVE_NUMPY else 'no'}, "
          f"{a.frames} frames\n")
    print(f"| {'what':<46} | {'µs/frame':>9} | {'per core':>9} | note")
    print(f"|{'-' * 48}|{'-' * 11}|{'-' * 11}|------")
    for r in rows:
        print(f"| {r['what']:<46} | {r['us_per_frame']:>9.2f} | {r['per_core']:>9} | {r['note']}")
    print(f"\npeak RSS {rss / 1024:.1f} MiB (at start {rss0 / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
