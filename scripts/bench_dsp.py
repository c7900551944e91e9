#!/usr/bin/env python3
"""Media DSP micro-benchmarks: µs per 20 ms frame (160 samples at 8 kHz).

Rows: in-band DTMF detection (numpy and pure Python) on speech, white noise,
DTMF key presses and silence; tone generation; G.711 µ-law/A-law encode and
decode. Also the RSS cost of importing numpy (the detector imports it lazily).
Not part of CI:  .venv/bin/python scripts/bench_dsp.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from array import array

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def frames_of(a: array) -> list[bytes]:
    return [a[i:i + 160].tobytes() for i in range(0, len(a) - 159, 160)]


def speech(seconds: float) -> array | None:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        return None
    text = ("Thank you for calling. Please hold while we connect you to the next available "
            "agent. Our office is open Monday to Friday from nine until half past five. ") * 4
    with tempfile.TemporaryDirectory() as d:
        wav, raw = os.path.join(d, "s.wav"), os.path.join(d, "s.raw")
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", wav, text], check=True, capture_output=True)
        subprocess.run(["sox", wav, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                        "-t", "raw", raw], check=True, capture_output=True)
        a = array("h")
        with open(raw, "rb") as f:
            a.frombytes(f.read())
    return a[:int(seconds * 8000)]


def per_frame(fn, frames: list, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for fr in frames:
            fn(fr)
        best = min(best, time.perf_counter() - t0)
    return best / len(frames) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0, help="audio per DTMF row")
    args = ap.parse_args()
    rss0 = rss_kb()
    from firmware.media import g711
    from firmware.media.dtmf import DtmfDetector, digit_freqs
    from firmware.media.tones import TONES, ToneGenerator, dbm0_to_amplitude
    rss_core = rss_kb()
    import numpy  # noqa: F401  (what the numpy backend costs in memory)
    rss_np = rss_kb()

    n = int(args.seconds * 8000)
    rng = random.Random(1)
    inputs = {
        "white noise -20 dBm0": array("h", (int(rng.gauss(0, 2300)) for _ in range(n))),
        "silence": array("h", bytes(2 * n)),
    }
    dt = []
    a = dbm0_to_amplitude(-10)
    while len(dt) < n:
        fl, fh = digit_freqs("0123456789*#ABCD"[len(dt) // 800 % 16])
        dt += [round(a * math.sin(2 * math.pi * fl * t / 8000) + a * math.sin(2 * math.pi * fh * t / 8000))
               for t in range(400)] + [0] * 400
    inputs["DTMF 50/50 ms"] = array("h", dt[:n])
    sp = speech(args.seconds)
    if sp is not None:
        inputs = {"speech (espeak-ng)": sp, **inputs}

    rows = []
    for name, sig in inputs.items():
        frames = frames_of(sig)
        for backend in ("numpy", "python"):
            det = DtmfDetector(backend=backend)
            fr = frames if backend == "numpy" else frames[:max(50, len(frames) // 20)]
            rows.append((f"DTMF detect [{backend}] {name}", per_frame(lambda f: det.feed(f), fr, 1)))
    for country, name in (("us", "dial"), ("uk", "ringback"), ("in", "dial"), ("de", "busy")):
        g = ToneGenerator(TONES[country][name])
        rows.append((f"tone {country} {name}", per_frame(lambda _: g.next_frame(160), range(20000))))
    lin = frames_of(inputs["white noise -20 dBm0"])
    ulaw = [g711.lin2ulaw(f) for f in lin]
    alaw = [g711.lin2alaw(f) for f in lin]
    rows.append(("G.711 lin2ulaw", per_frame(g711.lin2ulaw, lin)))
    rows.append(("G.711 ulaw2lin", per_frame(g711.ulaw2lin, ulaw)))
    rows.append(("G.711 lin2alaw", per_frame(g711.lin2alaw, lin)))
    rows.append(("G.711 alaw2lin", per_frame(g711.alaw2lin, alaw)))
    rows.append(("G.711 ulaw->alaw translate", per_frame(lambda b: b.translate(g711.ULAW_TO_ALAW), ulaw)))

    width = max(len(r[0]) for r in rows)
    print(f"{'row':<{width}}  µs/20ms frame")
    for name, us in rows:
        print(f"{name:<{width}}  {us:10.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\nRSS: interpreter {rss0 / 1024:.1f} MB, + media modules {(rss_core - rss0) / 1024:.1f} MB, "
          f"+ numpy import {(rss_np - rss_core) / 1024:.1f} MB; peak {peak / 1024:.1f} MB")


if __name__ == "__main__":
    main()
