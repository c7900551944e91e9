#!/usr/bin/env python3
"""Media termination benchmark (not in CI): prompt streams and recorded calls per core.

The engine runs in its own process pinned to one core; the phones run in
another process pinned to the other core.

* ``prompts``: N terminals, each playing a looped 8 kHz WAV prompt (pre-encoded
  at open, one decode for all through the engine's SoundCache), driven by the
  engine's single FrameClock. The phone process timestamps every packet with
  the kernel's arrival time (SO_TIMESTAMPNS) and reports the send-interval
  jitter |interval - 20 ms| (p50/p99/max) per stream; the engine reports CPU
  µs per frame sent (its user+system time over the window / frames sent),
  clock late ticks, and RSS (VmRSS, and the growth over the bare interpreter
  with the modules imported). The jitter is also given as a ratio against a
  baseline measured first in the same run, on the same cores: a bare sender
  (no engine, no event loop: a plain loop sleeping to absolute 20 ms deadlines
  and sending N pre-built packets) to the same kind of phones. On a quiet
  machine the ratio is what the engine adds; on a busy one both go up and the
  ratio still reads as the engine's share, where the milliseconds alone do not.
* ``record``: N bridged calls, each phone sending one 20 ms µ-law frame per
  tick both ways (100 packets/s relayed per call), first measured without
  recording, then with every call recorded as a stereo WAV (``Bridge.record``:
  the tap lists packets, the engine's writer thread decodes and writes them
  in batches) to ``--dir``: CPU µs per relayed packet in both windows and
  their ratio (the process's CPU: the loop and the writer thread together),
  the writer thread's share, packets not relayed (loss), the recording cost
  per call-second, and peak RSS.

    .venv/bin/python scripts/bench_terminal.py --streams 400 --seconds 5
    .venv/bin/python scripts/bench_terminal.py --mode record --calls 300 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import resource
import select
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOST = "127.0.0.1"
SO_TIMESTAMPNS = 35


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


# --- engine process ------------------------------------------------------------------

def engine_main(conn, core: int, mode: str, n: int, seconds: float, loop_name: str,
                port_lo: int, workdir: str, gc_threshold: tuple[int, int, int]) -> None:
    os.sched_setaffinity(0, {core})
    raise_nofile()
    from firmware.media.player import Playlist
    from firmware.media.ports import PortPool
    from firmware.media.recorder import CallRecorder
    from firmware.media.relay import MediaEngine
    from firmware.media.terminal import Terminal
    from firmware.media.wav import write_wav
    from tests.peers.audio import tone_samples
    import numpy  # noqa: F401 -- the in-band detector's backend, loaded by a real box too
    rss_bare = rss_mb()

    if loop_name == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    legs = n if mode == "prompts" else 2 * n
    engine = MediaEngine(bind_host=HOST, port_pool=PortPool(port_lo, port_lo + 2 * legs + 200),
                         loop=loop)

    async def open_all():
        return [await engine.open_endpoint() for _ in range(legs)]
    eps = loop.run_until_complete(open_all())
    conn.send([ep.local_port for ep in eps])
    remote_ports = conn.recv()
    for ep, port in zip(eps, remote_ports):
        ep.set_remote(HOST, port)

    terms, bridges = [], []
    if mode == "prompts":
        wav = os.path.join(workdir, "prompt.wav")
        write_wav(wav, 8000, 1, tone_samples((440, 1000), 2.0, amplitude=0.3))
        for ep in eps:
            t = Terminal(engine, ep, codec="PCMU", te_pt=101, on_event=lambda e: None)
            t.play(Playlist([wav], loop=True, cache=engine.sounds))
            terms.append(t)
    else:
        for i in range(n):
            bridges.append(engine.bridge(eps[2 * i], eps[2 * i + 1]))

    # as the composition root does (firmware/system/app.py): long-lived objects out of the GC's way
    gc.collect()
    gc.freeze()
    gc.set_threshold(*gc_threshold)

    def sent() -> int:
        if mode == "prompts":
            return sum(t.packets_sent for t in terms)
        return sum(ep.packets_out for ep in eps)

    def received() -> int:
        return sum(ep.packets_in for ep in eps)

    def writer_cpu() -> float:
        from firmware.media.terminal import _services
        svc = _services.get(engine)
        return svc.writer.busy_seconds if svc is not None else 0.0

    async def window(secs: float) -> dict:
        c0, p0, r0, w0, t0 = cpu(), sent(), received(), writer_cpu(), time.monotonic()
        await asyncio.sleep(secs)
        c1, p1, r1, w1, t1 = cpu(), sent(), received(), writer_cpu(), time.monotonic()
        return {"cpu_s": c1 - c0, "packets": p1 - p0, "received": r1 - r0, "wall": t1 - t0,
                "writer_cpu_s": w1 - w0}

    async def run():
        conn.send("ready")
        conn.recv()                                    # phones started
        await asyncio.sleep(1.0)                       # warm-up (latching, prefetch)
        out = {"rss_bare_mb": rss_bare}
        if mode == "prompts":
            out["window"] = await window(seconds)
            out["clock"] = engine.clock.stats.as_dict()
        else:
            out["pass"] = await window(seconds)
            recs = []
            for i, br in enumerate(bridges):
                rec = CallRecorder(os.path.join(workdir, f"call-{i}.wav"))
                br.record(rec, codecs=("PCMU", "PCMU"))
                recs.append(rec)
            await asyncio.sleep(1.0)
            out["record"] = await window(seconds)
            out["clock"] = engine.clock.stats.as_dict() if engine._clock is not None else None
            t_stop = time.monotonic()
            stops = [br.stop_recording() for br in bridges]
            results = await asyncio.gather(*stops)
            out["stop_all_s"] = time.monotonic() - t_stop
            out["recorded_seconds"] = sum(r.seconds for r in results)
            out["recording_files"] = len(results)
        out["rss_mb"] = rss_mb()
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out

    result = loop.run_until_complete(run())
    engine.close()
    conn.send(result)


# --- baseline sender process -------------------------------------------------------------

def baseline_main(conn, core: int, mode: str, n: int, seconds: float, loop_name: str,
                  port_lo: int, workdir: str, gc_threshold: tuple[int, int, int]) -> None:
    """What any sender gets from this machine now: N streams of pre-built RTP packets, one
    each per 20 ms at absolute deadlines, from a plain loop (``engine_main``'s protocol)."""
    os.sched_setaffinity(0, {core})
    raise_nofile()
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setblocking(False)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    dests = [(HOST, port) for port in conn.recv()]
    hdr = struct.Struct("!BBHII")
    payload = bytes([0xFF]) * 160
    conn.send("ready")
    conn.recv()                                        # go
    t0 = time.monotonic()
    end = t0 + seconds + 2.0                           # past the phones' window (warm-up + 0.5 s)
    k = 0
    while t0 + 0.020 * k < end:
        delay = t0 + 0.020 * k - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for i, (s, dest) in enumerate(zip(socks, dests)):
            try:
                s.sendto(hdr.pack(0x80, 0, k & 0xFFFF, (160 * k) & 0xFFFFFFFF, 0x2000 + i) + payload, dest)
            except BlockingIOError:
                pass
        k += 1
    conn.send({"frames": k})


# --- phone process ----------------------------------------------------------------------

def phones_main(conn, core: int, mode: str, n: int, seconds: float) -> None:
    os.sched_setaffinity(0, {core})
    raise_nofile()
    socks = []
    count = n if mode == "prompts" else 2 * n
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if mode == "prompts":
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.bind((HOST, 0))
        s.setblocking(False)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    engine_ports = conn.recv()
    conn.recv()                                        # go
    if mode == "prompts":
        conn.send(receive_intervals(socks, seconds + 1.5))
    else:
        conn.send(send_calls(socks, engine_ports, conn))


def receive_intervals(socks, seconds: float) -> dict:
    times: dict[int, list[float]] = {s.fileno(): [] for s in socks}
    end = time.monotonic() + seconds
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    while time.monotonic() < end:
        for fd, _ in ep.poll(0.05):
            s = by_fd[fd]
            while True:
                try:
                    _, anc, _, _ = s.recvmsg(2048, 64)
                except BlockingIOError:
                    break
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("ll", data[:16])
                        times[fd].append(sec + nsec * 1e-9)
    jitter: list[float] = []
    packets = 0
    for ts in times.values():
        ts = ts[25:]                                   # after the warm-up second
        packets += len(ts)
        jitter += [abs((b - a) - 0.020) for a, b in zip(ts, ts[1:])]
    jitter.sort()
    return {"intervals": len(jitter), "packets": packets,
            "p50_ms": percentile(jitter, 0.5) * 1e3, "p99_ms": percentile(jitter, 0.99) * 1e3,
            "p999_ms": percentile(jitter, 0.999) * 1e3,
            "max_ms": (jitter[-1] if jitter else float("nan")) * 1e3}


def send_calls(socks, engine_ports, conn) -> dict:
    """Every socket sends one µ-law frame per 20 ms to its engine endpoint until told to stop."""
    hdr = struct.Struct("!BBHII")
    payload = bytes([0xFF]) * 160
    seq = [0] * len(socks)
    t0 = time.monotonic()
    k = 0
    ts = 0
    sent = 0
    while not conn.poll():
        for i, s in enumerate(socks):
            try:
                s.sendto(hdr.pack(0x80, 0, seq[i], ts, 0x1000 + i) + payload,
                         (HOST, engine_ports[i]))
                sent += 1
            except BlockingIOError:
                pass
            seq[i] = (seq[i] + 1) & 0xFFFF
            # drain what the relay sends us so nothing backs up
            try:
                while True:
                    s.recv(2048)
            except BlockingIOError:
                pass
        k += 1
        ts = (ts + 160) & 0xFFFFFFFF
        delay = t0 + 0.020 * k - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    conn.recv()
    return {"sent": sent}


# --- driver ----------------------------------------------------------------------------

def bench(mode: str, n: int, seconds: float, loop_name: str, port_lo: int, workdir: str,
          gc_threshold: tuple[int, int, int] = (20000, 20, 20), sender=engine_main) -> dict:
    """One run: ``sender`` (the engine, or ``baseline_main``) on core 0, the phones on core 1."""
    ctx = mp.get_context("fork")
    e_conn, e_child = ctx.Pipe()
    p_conn, p_child = ctx.Pipe()
    eng = ctx.Process(target=sender, args=(e_child, 0, mode, n, seconds, loop_name,
                                            port_lo, workdir, gc_threshold))
    ph = ctx.Process(target=phones_main, args=(p_child, 1, mode, n, seconds))
    eng.start()
    ph.start()
    try:
        engine_ports = e_conn.recv()
        phone_ports = p_conn.recv()
        e_conn.send(phone_ports)
        p_conn.send(engine_ports)
        assert e_conn.recv() == "ready"
        p_conn.send("go")
        e_conn.send("go")
        result = e_conn.recv()
        if mode == "prompts":
            result["phones"] = p_conn.recv()
        else:
            p_conn.send("stop")
            p_conn.send("stop")
            result["phones"] = p_conn.recv()
    finally:
        eng.join(30)
        ph.join(30)
        for p in (eng, ph):
            if p.is_alive():
                p.kill()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["prompts", "record", "both"], default="both")
    ap.add_argument("--streams", type=int, default=400, help="prompt streams")
    ap.add_argument("--calls", type=int, default=300, help="recorded bridged calls")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    ap.add_argument("--port-lo", type=int, default=34000)
    ap.add_argument("--dir", default=None, help="where recordings go (default: a temp dir)")
    ap.add_argument("--gc", default="20000,20,20",
                    help="gc.set_threshold for the engine (app.py's default); 700,10,10 = CPython's")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    modes = ["prompts", "record"] if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory(prefix="bench-terminal-", dir=args.dir) as workdir:
        for mode in modes:
            n = args.streams if mode == "prompts" else args.calls
            if mode == "prompts":
                base = bench(mode, n, args.seconds, args.loop, args.port_lo, workdir, sender=baseline_main)
            r = bench(mode, n, args.seconds, args.loop, args.port_lo, workdir,
                      tuple(int(x) for x in args.gc.split(",")))
            r.update(mode=mode, n=n, loop=args.loop)
            if mode == "prompts":
                b, ph = base["phones"], r["phones"]
                r.update(baseline=b, jitter_ratio_p50=ph["p50_ms"] / b["p50_ms"] if b["p50_ms"] else float("nan"),
                         jitter_ratio_p99=ph["p99_ms"] / b["p99_ms"] if b["p99_ms"] else float("nan"))
            if args.json:
                print(json.dumps(r))
                continue
            if mode == "prompts":
                w, ph = r["window"], r["phones"]
                print(f"{n} prompt streams ({args.loop}), engine on core 0, phones on core 1, "
                      f"{args.seconds:g} s")
                print(f"  frames sent {w['packets'] / w['wall']:.0f}/s, engine CPU "
                      f"{100 * w['cpu_s'] / w['wall']:.1f} %, {1e6 * w['cpu_s'] / w['packets']:.2f}"
                      f" µs per frame sent")
                print(f"  send-interval jitter at the phones ({ph['intervals']} intervals): "
                      f"p50 {ph['p50_ms']:.3f} ms, p99 {ph['p99_ms']:.3f} ms, "
                      f"p99.9 {ph['p999_ms']:.3f} ms, max {ph['max_ms']:.3f} ms")
                b = r["baseline"]
                print(f"  against a bare sender, same run: p50 x{r['jitter_ratio_p50']:.2f}, "
                      f"p99 x{r['jitter_ratio_p99']:.2f} (its p50 {b['p50_ms']:.3f} ms, p99 {b['p99_ms']:.3f} ms, "
                      f"max {b['max_ms']:.3f} ms)")
                print(f"  clock: {r['clock']}")
                print(f"  RSS {r['rss_mb']:.1f} MB (bare interpreter + modules "
                      f"{r['rss_bare_mb']:.1f} MB, +{r['rss_mb'] - r['rss_bare_mb']:.1f} MB)")
            else:
                p, rec = r["pass"], r["record"]
                up = 1e6 * p["cpu_s"] / p["packets"]
                ur = 1e6 * rec["cpu_s"] / rec["packets"]

                def loss(w):
                    return 100 * max(0, w["received"] - w["packets"]) / max(1, w["received"])
                print(f"{n} bridged calls ({args.loop}), {p['packets'] / p['wall']:.0f} pkt/s "
                      f"relayed, engine on core 0")
                print(f"  not recorded: {up:.2f} µs/pkt, CPU {100 * p['cpu_s'] / p['wall']:.1f} %, "
                      f"not relayed {loss(p):.3f} %")
                print(f"  all recorded: {ur:.2f} µs/pkt, CPU {100 * rec['cpu_s'] / rec['wall']:.1f} %"
                      f" (writer thread {100 * rec['writer_cpu_s'] / rec['wall']:.1f} %), "
                      f"not relayed {loss(rec):.3f} %"
                      f" (+{1e6 * (rec['cpu_s'] / rec['wall'] - p['cpu_s'] / p['wall']) / n:.0f}"
                      f" µs CPU per recorded call-second)")
                print(f"  recorded / not recorded, same run: x{ur / up:.2f} per relayed packet")
                print(f"  {r['recording_files']} WAVs, {r['recorded_seconds']:.0f} s recorded, "
                      f"all stopped in {r['stop_all_s']:.2f} s; clock: {r['clock']}")
                print(f"  RSS {r['rss_mb']:.1f} MB, peak {r['peak_rss_mb']:.1f} MB "
                      f"(bare {r['rss_bare_mb']:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
