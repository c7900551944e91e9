"""Bridges relayed by media worker processes (firmware/media/workers.py, worker.py): real worker
processes, real UDP sockets on 127.0.0.1. Each test checks packets end to end, so a hand-over
that lost a socket, a transform or a latch shows up as a missing or wrong packet; a recorded
bridge's file, written by its worker, is checked as audio (Goertzel), so a packet lost on the
file's way between the processes shows up as a missing tone."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest
import uvloop

from firmware.media import g711
from firmware.media.ports import PortPool
from firmware.media.recorder import CallRecorder, RecordingStopped, RecordingStore
from firmware.media.relay import MediaEngine
from firmware.media.terminal import tap_service
from firmware.media.wav import read_wav
from firmware.media.workers import decode_xf, encode_xf
from tests.peers.audio import tone_samples
from tests.peers.netutil import free_udp_range
from tests.unit.test_terminal import Events, frames_with
from tests.unit.test_terminal import Phone as RtpPhone

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


def test_a_call_that_ends_is_dropped_by_its_worker_and_its_ports_are_free_again(run):
    """Bridge and both endpoints closed together (a hang-up): no release round trip; the worker
    closes its copies of the sockets, so the port pair can be bound again."""
    async def test(engine):
        pa, pb, a, b, br = await call(engine)
        pool, worker = engine.workers, br.worker
        answers = []
        handle = pool.handle
        pool.handle = lambda w, m: (answers.append(m.get("ev")), handle(w, m))
        ports = (a.local_port, b.local_port)
        br.close()
        a.close()
        b.close()
        await until(lambda: not worker.bridges, what="the bridge forgotten")

        def bindable() -> bool:
            socks = []
            try:
                for port in ports:
                    socks.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    socks[-1].bind((HOST, port))
            except OSError:
                return False
            finally:
                for s in socks:
                    s.close()
            return True
        await until(bindable, what="the worker's copies of the sockets closed")
        assert "released" not in answers
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


async def recorded_call(engine: MediaEngine, recorder: CallRecorder):
    """Phones a (µ-law) and b (A-law), their bridge recorded, once a worker relays it."""
    a, b = await engine.open_endpoint(), await engine.open_endpoint()
    pa, pb = RtpPhone(), RtpPhone()
    a.set_remote(HOST, pa.port)
    b.set_remote(HOST, pb.port)
    br = engine.bridge(a, b)
    events = Events()
    br.record(recorder, codecs=("PCMU", "PCMA"), on_event=events)
    await until(lambda: br.worker is not None, what="the recorded bridge in the worker")
    return pa, pb, br, events


async def talk(pa, pb, br, seconds: float, left: float = 600, right: float = 1400) -> None:
    """Each phone sends its tone for ``seconds``; returns once the bridge relayed every packet
    (so its taps took them all)."""
    frames = int(seconds * 50)
    got_a, got_b = len(pa.packets), len(pb.packets)
    await asyncio.gather(pa.stream(br.a.local_port, tone_samples(left, seconds, amplitude=0.3)),
                         pb.stream(br.b.local_port, tone_samples(right, seconds, amplitude=0.3), law="PCMA"))
    await pb.wait_packets(got_b + frames, timeout=10)
    await pa.wait_packets(got_a + frames, timeout=10)


def channels(path: str):
    _, ch, s = read_wav(path)
    assert ch == 2
    return s[0::2], s[1::2]


def test_a_recorded_bridge_is_recorded_by_its_worker_to_the_last_packet(run, tmp_path):
    async def test(engine):
        pa, pb, br, events = await recorded_call(engine, CallRecorder(str(tmp_path / "w.wav")))
        await talk(pa, pb, br, 1.0)
        assert br.worker is not None, "recording must not bring the bridge home"
        stopped = await br.stop_recording()               # at once: the end of the call is in the file
        assert events.items == [stopped] and stopped.reason == "closed"
        left, right = channels(stopped.path)
        assert len(frames_with(left, 600, (1400,))) >= 49, "a's tone on the left, to its end"
        assert len(frames_with(right, 1400, (600,))) >= 49, "b's tone on the right, to its end"
        assert not frames_with(left, 1400, (600,)) and not frames_with(right, 600, (1400,))
        assert tap_service(engine).packets == 0, "no recorded packet reached the PBX process"
        await until(lambda: br.worker is not None, what="still relayed by the worker after the recording")
        for p in (pa, pb):
            p.sock.close()
    run(test)


def test_the_store_counts_a_file_its_worker_wrote_and_the_quota_applies_to_it(run, tmp_path):
    async def test(engine):
        store = RecordingStore(str(tmp_path), quota_bytes=1 << 30, min_free_bytes=0)
        pa, pb, br, _ = await recorded_call(engine, store.recorder("q.wav"))
        await talk(pa, pb, br, 1.0)
        stopped = await br.stop_recording()
        size = os.path.getsize(stopped.path)
        assert size >= 44 + 4 * 8000                       # a second of stereo 16-bit audio at least
        assert store.usage() == size, "the octets the worker wrote, and its final name, are counted"
        assert [path for _, _, path in store.recordings()] == [stopped.path]
        store.quota_bytes = size - 1
        assert store.enforce() == [stopped.path] and store.usage() == 0
        for p in (pa, pb):
            p.sock.close()
    run(test)


def test_a_worker_killed_mid_recording_leaves_a_playable_file_with_the_call_so_far(run, tmp_path):
    async def test(engine):
        store = RecordingStore(str(tmp_path), quota_bytes=1 << 30, min_free_bytes=0)
        pa, pb, br, events = await recorded_call(engine, store.recorder("k.wav"))
        part = str(tmp_path / "k.wav.part")
        written = os.path.getsize(part)
        streams = asyncio.ensure_future(talk(pa, pb, br, 3.0))
        # the worker has written two seconds more of the call: the tones are on disk
        await until(lambda: os.path.getsize(part) >= written + 2 * 4 * 8000, what="the worker writing")
        os.kill(engine.workers.stats["pids"][0], signal.SIGKILL)
        stopped = await events.wait(lambda e: isinstance(e, RecordingStopped), timeout=10)
        assert stopped.reason == "lost" and stopped.path == str(tmp_path / "k.wav")
        assert br.lost and not os.path.exists(part)
        left, right = channels(stopped.path)
        assert len(left) / 8000 == stopped.seconds
        assert len(frames_with(left, 600, (1400,))) >= 50, "a's tone up to the kill"
        assert len(frames_with(right, 1400, (600,))) >= 50, "b's tone up to the kill"
        assert await br.stop_recording() == stopped
        assert store.usage() == os.path.getsize(stopped.path)
        assert [path for _, _, path in store.recordings()] == [stopped.path]
        streams.cancel()
        for p in (pa, pb):
            p.sock.close()
    run(test)


def test_a_full_disk_ends_the_recording_in_its_worker_and_the_call_goes_on(run, tmp_path):
    from firmware.media.recorder import DiskFull

    async def test(engine):
        margin = CallRecorder(str(tmp_path / "full.wav"), min_free_bytes=1 << 62)   # never enough
        pa, pb, br, events = await recorded_call(engine, margin)
        await talk(pa, pb, br, 1.0)
        stopped = await events.wait(lambda e: isinstance(e, RecordingStopped), timeout=10)
        assert [type(e) for e in events.items] == [DiskFull, RecordingStopped]
        assert stopped.reason == "disk_full" and read_wav(stopped.path)[1] == 2
        assert tap_service(engine).packets == 0, "the disk filled in the worker, not here"
        assert await br.stop_recording() == stopped
        await talk(pa, pb, br, 0.4)                       # the call goes on, in the worker
        assert br.worker is not None and events.items[-1] == stopped
        for p in (pa, pb):
            p.sock.close()
    run(test)


def test_a_recording_stopped_while_its_file_is_on_the_way_is_finished_in_the_worker(run, tmp_path):
    async def test(engine):
        a, b = await engine.open_endpoint(), await engine.open_endpoint()
        br = engine.bridge(a, b)
        events = Events()
        br.record(CallRecorder(str(tmp_path / "s.wav")), on_event=events)
        pool, stopping, reports = engine.workers, [], []
        hand_over, handle = pool._hand_over, pool.handle

        def and_stop(worker, bridge):                     # the file is being closed here for the worker
            hand_over(worker, bridge)
            stopping.append(bridge.stop_recording())

        def heard(worker, message):
            if message["ev"] == "recorded":
                reports.append(sorted(message))
            handle(worker, message)

        pool._hand_over, pool.handle = and_stop, heard
        await until(lambda: stopping, what="the recorded bridge handed over")
        stopped = await stopping[0]
        assert events.items == [stopped] and stopped.reason == "closed"
        assert read_wav(stopped.path)[1] == 2 and not os.path.exists(stopped.path + ".part")
        assert reports == [["ev", "events", "tid", "written"]], "finished there, not given back"
        assert pool.workers[0].trips == {}
    run(test)


def test_a_recording_follows_its_bridge_home_and_back_in_one_file(run, tmp_path):
    async def test(engine):
        pa, pb, br, events = await recorded_call(engine, CallRecorder(str(tmp_path / "h.wav")))
        await talk(pa, pb, br, 0.6, left=600)

        class Mark:                                       # a converter: the bridge needs the PBX
            def convert(self, data):
                return data

        br.set_transform("a->b", convert={0: Mark()})
        await until(lambda: br.worker is None and br.a._rtp._reading, what="the bridge home")
        await talk(pa, pb, br, 0.6, left=900)
        br.set_transform("a->b")
        await until(lambda: br.worker is not None, what="the bridge away again")
        await talk(pa, pb, br, 0.6, left=1200)
        stopped = await br.stop_recording()
        assert events.items == [stopped]
        left, right = channels(stopped.path)
        parts = [frames_with(left, f, tuple({600, 900, 1200} - {f})) for f in (600, 900, 1200)]
        assert all(len(frames) >= 25 for frames in parts), [len(f) for f in parts]
        assert max(parts[0]) < min(parts[1]) and max(parts[1]) < min(parts[2]), "in the order they came"
        assert len(frames_with(right, 1400, (600, 900, 1200))) >= 3 * 25
        assert tap_service(engine).packets == 2 * 30, "recorded here only while the bridge was here"
        for p in (pa, pb):
            p.sock.close()
    run(test)


def test_a_carried_recording_goes_from_one_workers_bridge_to_the_next_in_one_file(run, tmp_path):
    async def test(engine):
        pa, pb, br, events = await recorded_call(engine, CallRecorder(str(tmp_path / "t.wav")))
        await talk(pa, pb, br, 0.6)
        rec = br.recording
        br.recording = None                               # as b2bua._carry_recording does
        rec.detach()
        br.close()
        await until(lambda: br.a._rtp._reading, what="the first bridge back")
        pc = RtpPhone()
        c = await engine.open_endpoint()
        c.set_remote(HOST, pc.port)
        br2 = engine.bridge(br.a, c)
        rec.attach(br2, ("PCMU", "PCMA"))
        await until(lambda: br2.worker is not None, what="the next bridge in a worker")
        await talk(pa, pc, br2, 0.6, left=900, right=1800)
        stopped = await br2.stop_recording()
        assert events.items == [stopped]
        left, right = channels(stopped.path)
        first, second = frames_with(left, 600, (900,)), frames_with(left, 900, (600,))
        assert len(first) >= 25 and len(second) >= 25 and max(first) < min(second)
        assert len(frames_with(right, 1400, (1800,))) >= 25 and len(frames_with(right, 1800, (1400,))) >= 25
        assert tap_service(engine).packets == 0
        for p in (pa, pb, pc):
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
