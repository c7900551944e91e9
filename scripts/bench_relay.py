#!/usr/bin/env python3
"""RTP relay benchmark (not in CI): N simulated calls through one MediaEngine.

The relay runs in its own process pinned to one core; the load generator runs
in this process pinned to another. Every call sends one 20 ms G.711 packet
(12-byte header + 160-byte payload) per direction per tick, i.e. 100 packets/s
relayed per call. Each configuration measures:

* CPU µs per relayed packet: the relay process's user+system CPU time over the
  measured window divided by the packets it relayed in that window;
* loss %: packets sent by the generator that did not come back;
* added delay p50/p99: one-way delay through the relay (the send time travels
  in the RTP timestamp field, in µs) minus the same figure for a direct
  loopback baseline (generator -> generator, same pattern, same run);
* peak RSS of the relay process.

The generator sends in batches (``--slices`` batches per 20 ms tick, each call
in its own slice) from two sockets (one per call side; endpoints latch to them)
and reports its own CPU use so you can tell when it, and not the relay, is the
bottleneck.

    .venv/bin/python scripts/bench_relay.py --calls 200 --seconds 5
    .venv/bin/python scripts/bench_relay.py --calls 500 --loop uvloop --mode pass --io reader
    .venv/bin/python scripts/bench_relay.py --json     # one JSON object per configuration
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import select
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOST = "127.0.0.1"
TICK = 0.020
PAYLOAD = 160
HEADER = struct.Struct("!BBHII")
PT_ULAW, PT_ALAW = 0, 8


# --- relay process -------------------------------------------------------------

def relay_main(conn, core: int, calls: int, loop_name: str, io: str, mode: str, port_lo: int,
               batch: int | None = None) -> None:
    """Child process: build the engine and the bridges, then serve commands on ``conn``."""
    os.sched_setaffinity(0, {core})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from firmware.media import g711
    from firmware.media.ports import PortPool
    from firmware.media import relay as relay_mod
    from firmware.media.relay import MediaEngine
    if batch is not None:
        relay_mod._BATCH = batch

    if loop_name == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    engine = MediaEngine(bind_host=HOST, port_pool=PortPool(port_lo, port_lo + 4 * calls + 400),
                         loop=loop, io=io)

    async def setup():
        legs = []
        for _ in range(calls):
            legs.append((await engine.open_endpoint(), await engine.open_endpoint()))
        return legs

    legs = loop.run_until_complete(setup())
    conn.send([(a.local_port, b.local_port) for a, b in legs])
    gen_a, gen_b = conn.recv()
    for a, b in legs:
        a.set_remote(HOST, gen_a)
        b.set_remote(HOST, gen_b)
        br = engine.bridge(a, b)
        if mode == "transcode":
            br.set_transform("a->b", pt_map={PT_ULAW: PT_ALAW}, transcode={PT_ULAW: g711.ULAW_TO_ALAW})
            br.set_transform("b->a", pt_map={PT_ALAW: PT_ULAW}, transcode={PT_ALAW: g711.ALAW_TO_ULAW})

    done = loop.create_future()
    mark = {}

    def cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def on_command() -> None:
        cmd = conn.recv()
        if cmd == "start":
            mark.update(cpu=cpu(), wall=time.monotonic(), pkts=engine.stats["packets_relayed"])
            conn.send("started")
        elif cmd == "stop":
            st = engine.stats
            conn.send({
                "cpu_s": cpu() - mark["cpu"],
                "wall_s": time.monotonic() - mark["wall"],
                "relayed": st["packets_relayed"] - mark["pkts"],
                "dropped_total": st["dropped"],
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            })
        elif cmd == "quit":
            done.set_result(None)

    loop.add_reader(conn.fileno(), on_command)
    loop.run_until_complete(done)
    loop.remove_reader(conn.fileno())
    engine.close()
    loop.close()


# --- load generator ---------------------------------------------------------------

class Generator:
    """Two UDP sockets standing for all the A phones and all the B phones."""

    def __init__(self, calls: int, slices: int) -> None:
        self.calls = calls
        self.slices = slices
        self.a = self._sock()
        self.b = self._sock()

    @staticmethod
    def _sock() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.bind((HOST, 0))
        s.setblocking(False)
        return s

    @property
    def ports(self) -> tuple[int, int]:
        return self.a.getsockname()[1], self.b.getsockname()[1]

    def run(self, targets: list[tuple[int, int]], seconds: float, pt_a: int, pt_b: int) -> dict:
        """Send for ``seconds``; ``targets[i]`` = (port A sends to, port B sends to) of call i.

        Returns sent/received counts and the list of one-way delays in µs.
        """
        buf = bytearray(HEADER.size + PAYLOAD)
        buf[HEADER.size:] = b"\xff" * PAYLOAD
        pack_into = HEADER.pack_into
        rbuf = bytearray(2048)
        unpack_from = HEADER.unpack_from
        a_send, b_send = self.a.sendto, self.b.sendto
        socks = [self.a, self.b]
        delays: list[int] = []
        add_delay = delays.append
        now_us = lambda: time.monotonic_ns() // 1000
        slices = [targets[i::self.slices] for i in range(self.slices)]
        sent = received = 0
        seq = 0
        cpu0 = time.process_time()
        start = time.monotonic()
        end_send = start + seconds
        next_slice = start
        k = 0
        while True:
            now = time.monotonic()
            if now >= next_slice and now < end_send:
                batch = slices[k]
                k += 1
                if k == self.slices:
                    k = 0
                    seq = (seq + 1) & 0xFFFF
                for call_id, (ta, tb) in batch:
                    ts = now_us() & 0xFFFFFFFF
                    pack_into(buf, 0, 0x80, pt_a, seq, ts, 2 * call_id)
                    a_send(buf, (HOST, ta))
                    pack_into(buf, 0, 0x80, pt_b, seq, ts, 2 * call_id + 1)
                    b_send(buf, (HOST, tb))
                sent += 2 * len(batch)
                next_slice += TICK / self.slices
                continue
            if now >= end_send + 0.3:          # drain window for the last packets
                break
            wait = max(0.0, min(next_slice if now < end_send else end_send + 0.3, end_send + 0.3) - now)
            readable, _, _ = select.select(socks, [], [], wait)
            for s in readable:
                recv_into = s.recvfrom_into
                while True:
                    try:
                        n, _addr = recv_into(rbuf)
                    except BlockingIOError:
                        break
                    t = now_us() & 0xFFFFFFFF
                    add_delay((t - unpack_from(rbuf, 0)[3]) & 0xFFFFFFFF)
                    received += 1
        cpu = time.process_time() - cpu0
        return {"sent": sent, "received": received, "delays": delays,
                "gen_cpu_pct": 100.0 * cpu / (time.monotonic() - start)}

    def close(self) -> None:
        self.a.close()
        self.b.close()


def percentile(values: list[int], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return float(v[min(len(v) - 1, int(p / 100.0 * len(v)))])


def bench_one(calls: int, seconds: float, loop_name: str, io: str, mode: str,
              relay_core: int, gen_core: int, slices: int, port_lo: int, batch: int | None = None) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=relay_main, args=(child, relay_core, calls, loop_name, io, mode, port_lo, batch))
    proc.start()
    try:
        legs = parent.recv()
        gen = Generator(calls, slices)
        parent.send(gen.ports)
        gen_a, gen_b = gen.ports
        # Baseline: the same traffic straight between the generator's sockets.
        base = gen.run([(i, (gen_b, gen_a)) for i in range(calls)], min(seconds, 3.0), PT_ULAW, PT_ULAW)
        # Warm-up (latching, caches), then the measured window.
        pt_b = PT_ALAW if mode == "transcode" else PT_ULAW
        targets = [(i, legs[i]) for i in range(calls)]
        gen.run(targets, 0.5, PT_ULAW, pt_b)
        parent.send("start")
        assert parent.recv() == "started"
        res = gen.run(targets, seconds, PT_ULAW, pt_b)
        parent.send("stop")
        relay = parent.recv()
        parent.send("quit")
        proc.join(10)
        gen.close()
    finally:
        if proc.is_alive():
            proc.kill()
    loss = 100.0 * (res["sent"] - res["received"]) / max(res["sent"], 1)
    b50, b99 = percentile(base["delays"], 50), percentile(base["delays"], 99)
    d50, d99 = percentile(res["delays"], 50), percentile(res["delays"], 99)
    return {
        "loop": loop_name, "io": io, "mode": mode, "calls": calls, "seconds": seconds,
        "relayed_pps": relay["relayed"] / seconds,
        "cpu_us_per_pkt": 1e6 * relay["cpu_s"] / max(relay["relayed"], 1),
        "relay_cpu_pct": 100.0 * relay["cpu_s"] / relay["wall_s"],
        "calls_per_core_est": 1e6 / (1e6 * relay["cpu_s"] / max(relay["relayed"], 1)) / 100.0,
        "loss_pct": loss,
        "baseline_loss_pct": 100.0 * (base["sent"] - base["received"]) / max(base["sent"], 1),
        "delay_p50_us": d50, "delay_p99_us": d99,
        "baseline_p50_us": b50, "baseline_p99_us": b99,
        "added_p50_us": d50 - b50, "added_p99_us": d99 - b99,
        "relay_peak_rss_mb": relay["maxrss_kb"] / 1024.0,
        "gen_cpu_pct": res["gen_cpu_pct"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--loop", choices=["asyncio", "uvloop", "both"], default="both")
    ap.add_argument("--mode", choices=["pass", "transcode", "both"], default="both")
    ap.add_argument("--io", choices=["reader", "transport", "both"], default="reader")
    ap.add_argument("--slices", type=int, default=10, help="send batches per 20 ms tick")
    ap.add_argument("--port-lo", type=int, default=30000)
    ap.add_argument("--batch", type=int, default=None,
                    help="reader io: datagrams drained per wake-up (default: the module's _BATCH)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per configuration")
    args = ap.parse_args(argv)

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        print("warning: one core only; relay and generator share it", file=sys.stderr)
    relay_core, gen_core = cores[0], cores[-1]
    os.sched_setaffinity(0, {gen_core})

    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    modes = ["pass", "transcode"] if args.mode == "both" else [args.mode]
    ios = ["reader", "transport"] if args.io == "both" else [args.io]
    if not args.json:
        print(f"{args.calls} calls x 2 directions x 50 pkt/s = {args.calls * 100} pkt/s relayed; "
              f"relay on core {relay_core}, generator on core {gen_core}; {args.seconds:g} s per run")
        print(f"{'loop':8} {'io':9} {'mode':9} {'pkt/s':>7} {'µs/pkt':>7} {'relayCPU':>8} "
              f"{'loss%':>6} {'add p50':>8} {'add p99':>8} {'base p50/p99':>13} {'RSS MB':>7} {'genCPU':>6}")
    port_lo = args.port_lo
    for loop_name in loops:
        for io in ios:
            for mode in modes:
                r = bench_one(args.calls, args.seconds, loop_name, io, mode, relay_core, gen_core,
                              args.slices, port_lo, args.batch)
                if args.json:
                    print(json.dumps(r), flush=True)
                else:
                    print(f"{loop_name:8} {io:9} {mode:9} {r['relayed_pps']:7.0f} {r['cpu_us_per_pkt']:7.2f} "
                          f"{r['relay_cpu_pct']:7.1f}% {r['loss_pct']:6.2f} {r['added_p50_us']:6.0f}µs "
                          f"{r['added_p99_us']:6.0f}µs {r['baseline_p50_us']:5.0f}/{r['baseline_p99_us']:<5.0f}µs "
                          f"{r['relay_peak_rss_mb']:7.1f} {r['gen_cpu_pct']:5.0f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
