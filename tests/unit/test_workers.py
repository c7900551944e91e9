"""Bridges relayed by media worker processes (firmware/media/workers.py, worker.py): real worker
processes, real UDP sockets on 127.0.0.1. Each test checks packets end to end, so a hand-over
that lost a socket, a transform or a latch shows up as a missing or wrong packet."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest
import uvloop

from firmware.media import g711
from firmware.media.ports import PortPool
from firmware.media.relay import MediaEngine
from firmware.media.workers import decode_xf, encode_xf
from tests.peers.netutil import free_udp_range

HOST = "127.0.0.1"


def rtp(seq: int, pt: int = 0, payload: bytes = b"\xff" * 160) -> bytes:
    return bytes([0x80, pt]) + seq.to_bytes(2, "big") + bytes(8) + payload


class Phone:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)

    @property
    def addr(self):
        return self.sock.getsockname()

    async def recv(self, timeout: float = 3.0) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sock, 2048), timeout)

    def close(self) -> None:
        self.sock.close()


async def until(cond, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    def runner(test):
        loop = uvloop.new_event_loop() if request.param == "uvloop" else asyncio.new_event_loop()
        start = free_udp_range(16)
        engine = MediaEngine(bind_host=HOST, port_pool=PortPool(start, start + 15), loop=loop)
        engine.use_workers(1)
        try:
            return loop.run_until_complete(asyncio.wait_for(test(engine), 20))
        finally:
            engine.close()
            loop.close()
    return runner


async def call(engine: MediaEngine):
    """Two phones, their endpoints, a bridge; returns once a worker relays it."""
    pa, pb = Phone(), Phone()
    a, b = await engine.open_endpoint(), await engine.open_endpoint()
    a.set_remote(*pa.addr)
    b.set_remote(*pb.addr)
    br = engine.bridge(a, b)
    await until(lambda: br.worker is not None, what="the hand-over")
    return pa, pb, a, b, br


def test_transform_specs_round_trip_and_converters_stay_home():
    xf = [None] * 128
    xf[0] = (8, g711.ULAW_TO_ALAW)
    xf[8] = (0, g711.ALAW_TO_ULAW)
    xf[101] = (96, None)
    assert decode_xf(encode_xf(xf)) == xf
    assert encode_xf(None) is None and decode_xf(None) is None
    xf[101] = object()   # e.g. an RFC 4733 to tones converter: lives in the PBX process
    assert encode_xf(xf) is False


def test_a_worker_relays_both_ways_with_translation_and_reports_counters(run):
    async def test(engine):
        pa, pb, a, b, br = await call(engine)
        assert not a._rtp._reading and not b._rtp._reading, "the PBX process must not read a bridge away"
        br.set_transform("a->b", pt_map={0: 8}, transcode={0: g711.ULAW_TO_ALAW})
        tone = bytes(range(0, 160))
        pa.sock.sendto(rtp(1, 0, tone), (HOST, a.local_port))
        got = await pb.recv()
        assert got[1] == 8 and got[12:] == tone.translate(g711.ULAW_TO_ALAW), "a->b translated to A-law"
        pb.sock.sendto(rtp(1, 8, tone), (HOST, b.local_port))
        got = await pa.recv()
        assert got[1] == 8 and got[12:] == tone, "b->a passes untouched"
        await until(lambda: a.packets_in == 1 and b.packets_in == 1 and engine.stats["packets_relayed"] == 2,
                    what="the worker's counters in the PBX process")
        assert engine.check_timeouts(0.0) == []
        for p in (pa, pb):
            p.close()
    run(test)


def test_a_new_remote_during_the_call_reaches_the_worker(run):
    async def test(engine):
        pa, pb, a, b, br = await call(engine)
        moved = Phone()
        b.set_remote(*moved.addr)     # a re-INVITE: b's phone now listens elsewhere
        moved.sock.sendto(rtp(1), (HOST, b.local_port))   # ... and sends from there too
        pa.sock.sendto(rtp(2), (HOST, a.local_port))
        got = await moved.recv()
        assert got[2:4] == (2).to_bytes(2, "big")
        for p in (pa, pb, moved):
            p.close()
    run(test)


def test_a_converter_brings_the_bridge_home_with_its_latch(run):
    async def test(engine):
        pa, pb, a, b, br = await call(engine)
        pa.sock.sendto(rtp(1), (HOST, a.local_port))
        await pb.recv()                                      # latched in the worker
        converted = []

        class Mark:
            def convert(self, data):
                converted.append(data)
                return data

        br.set_transform("a->b", convert={0: Mark()})
        await until(lambda: br.worker is None and a._rtp._reading, what="the bridge back in the PBX process")
        assert a._rtp.latched == pa.addr, "the worker's latch comes back with the bridge"
        assert a.packets_in == 1
        pa.sock.sendto(rtp(2), (HOST, a.local_port))
        await pb.recv()
        assert len(converted) == 1, "the converter runs in the PBX process"
        br.set_transform("a->b")                             # plain again: away it goes
        await until(lambda: br.worker is not None, what="the second hand-over")
        pa.sock.sendto(rtp(3), (HOST, a.local_port))
        await pb.recv()
        assert len(converted) == 1
        for p in (pa, pb):
            p.close()
    run(test)


def test_closing_a_bridge_gives_the_sockets_back_before_the_pbx_reads_them(run):
    async def test(engine):
        pa, pb, a, b, br = await call(engine)
        br.close()
        assert not a._rtp._reading, "the PBX waits for the worker to let go"
        await until(lambda: a._rtp._reading and b._rtp._reading, what="the sockets back")
        assert engine.workers.stats["bridges"] == [0]
        br2 = engine.bridge(a, b)                            # bridged again: away again
        await until(lambda: br2.worker is not None, what="the new bridge in the worker")
        pb.sock.sendto(rtp(7), (HOST, b.local_port))
        assert (await pa.recv())[2:4] == (7).to_bytes(2, "big")
        a.close()
        b.close()
        for p in (pa, pb):
            p.close()
    run(test)


def test_a_dead_worker_loses_only_its_bridges_and_the_next_gets_a_new_one(run):
    async def test(engine):
        pa, pb, a, b, br = await call(engine)
        pid = engine.workers.stats["pids"][0]
        os.kill(pid, signal.SIGKILL)
        await until(lambda: br.lost, what="the bridge reported lost")
        dead = engine.check_timeouts(0.0)
        assert dead == [br] and engine.check_timeouts(1.0) == [], "reported once"
        assert engine.workers.restarts == 1
        br.close()
        a.close()
        b.close()
        pc, pd, c, d, br2 = await call(engine)
        assert engine.workers.stats["pids"][0] != pid
        pc.sock.sendto(rtp(1), (HOST, c.local_port))
        await pd.recv()
        for p in (pa, pb, pc, pd):
            p.close()
    run(test)


def test_pack_and_unpack_tapped_packets_across_datagrams():
    from firmware.media.workers import TAP_CHUNK, pack_taps, unpack_taps
    batches = [(7, 0, [bytes([i % 256]) * 172 for i in range(700)]), (9, 1, [b"x" * 12, b""])]
    datagrams = pack_taps(batches)
    assert len(datagrams) > 1 and all(len(d) < TAP_CHUNK + 400 for d in datagrams)
    got: dict = {}
    for d in datagrams:
        for bid, side, packets in unpack_taps(d):
            got.setdefault((bid, side), []).extend(packets)
    assert got == {(7, 0): batches[0][2], (9, 1): batches[1][2]}


def test_a_recorded_bridge_is_relayed_by_a_worker_and_recorded_here(run, tmp_path):
    from firmware.media.recorder import CallRecorder
    from firmware.media.wav import read_wav
    from tests.peers.audio import tone_samples
    from tests.unit.test_terminal import Phone as RtpPhone, frames_with

    async def test(engine):
        a, b = await engine.open_endpoint(), await engine.open_endpoint()
        pa, pb = RtpPhone(), RtpPhone()
        a.set_remote(HOST, pa.port)
        b.set_remote(HOST, pb.port)
        br = engine.bridge(a, b)
        br.record(CallRecorder(str(tmp_path / "w.wav")), codecs=("PCMU", "PCMA"))
        await until(lambda: br.worker is not None, what="the recorded bridge in the worker")
        await asyncio.gather(pa.stream(a.local_port, tone_samples(600, 1.0, amplitude=0.3)),
                             pb.stream(b.local_port, tone_samples(1400, 1.0, amplitude=0.3), law="PCMA"))
        await pb.wait_packets(45)
        await pa.wait_packets(45)
        assert br.worker is not None, "recording must not bring the bridge home"
        await asyncio.sleep(0.3)                 # the worker forwards its taps every 0.1 s
        stopped = await br.stop_recording()
        _, ch, s = read_wav(stopped.path)
        left, right = s[0::2], s[1::2]
        assert ch == 2
        assert len(frames_with(left, 600, (1400,))) >= 40, "a's tone on the left"
        assert len(frames_with(right, 1400, (600,))) >= 40, "b's tone on the right"
        assert not frames_with(left, 1400, (600,)) and not frames_with(right, 600, (1400,))
        await until(lambda: br.worker is not None, what="still relayed by the worker after the recording")
        for p in (pa, pb):
            p.sock.close()
    run(test)


def test_a_pbx_that_dies_takes_its_workers_and_their_ports_with_it(tmp_path):
    """A PBX killed without a word (SIGKILL, a crash) must not leave a worker holding RTP ports
    that the next start needs: the worker sees its control socket close and exits."""
    import subprocess
    import sys
    import time
    script = tmp_path / "pbx.py"
    script.write_text(f'''
import asyncio, os, socket, sys
sys.path.insert(0, {str(__import__("pathlib").Path(__file__).resolve().parents[2])!r})
from firmware.media.ports import PortPool
from firmware.media.relay import MediaEngine

async def main():
    start = int(sys.argv[1])
    engine = MediaEngine(bind_host="127.0.0.1", port_pool=PortPool(start, start + 7))
    engine.use_workers(1)
    a, b = await engine.open_endpoint(), await engine.open_endpoint()
    br = engine.bridge(a, b)
    while br.worker is None:
        await asyncio.sleep(0.01)
    print(engine.workers.stats["pids"][0], a.local_port, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
''')
    from tests.peers.netutil import free_udp_range
    start = free_udp_range(8)
    pbx = subprocess.Popen([sys.executable, str(script), str(start)], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid, port = (int(x) for x in pbx.stdout.readline().split())
        pbx.kill()
        pbx.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(worker_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(worker_pid, signal.SIGKILL)
            raise AssertionError("the worker outlived its PBX")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, port))     # the port is free for the next start
        s.close()
    finally:
        if pbx.poll() is None:
            pbx.kill()


def test_a_worker_idle_for_long_is_ended_and_the_next_call_starts_one_again(run):
    import time as _time

    async def test(engine):
        pa, pb, a, b, br = await call(engine)
        pool = engine.workers
        first = pool.stats["pids"][0]
        pool.retire_idle(_time.monotonic() + 3600)
        assert pool.stats["pids"] == [first], "a worker relaying a bridge is never ended"
        br.close()
        await until(lambda: a._rtp._reading, what="the bridge back")
        pool.retire_idle(_time.monotonic() + 10)
        assert pool.stats["pids"] == [first], "not idle long enough yet"
        pool.retire_idle(_time.monotonic() + 3600)
        assert pool.stats["running"] == 0
        deadline = _time.monotonic() + 5
        while _time.monotonic() < deadline:
            try:
                os.kill(first, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the idle worker did not exit")
        br2 = engine.bridge(a, b)                      # the next call: a new worker
        await until(lambda: br2.worker is not None, what="a new worker")
        assert pool.stats["pids"][0] != first
        pb.sock.sendto(rtp(3), (HOST, b.local_port))
        assert (await pa.recv())[2:4] == (3).to_bytes(2, "big")
        for p in (pa, pb):
            p.close()
    run(test)
