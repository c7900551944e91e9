"""Bridge recordings over real UDP sockets: the tap is a list append, batches go to the engine's
one writer thread, events come back on the loop. (The timeline and the writer are tested on
their own in test_recorder_tap.py.)"""

from __future__ import annotations

import asyncio
import errno
import os

from firmware.media.recorder import CallRecorder, DiskFull, RecordingStopped
from firmware.media.terminal import _SLOTS, BATCH_SECONDS, tap_service
from firmware.media.wav import read_wav
from tests.peers.audio import tone_samples
from tests.unit.test_terminal import HOST, Events, Phone, frames_with, run  # noqa: F401 (fixture)


async def bridged(engine):
    a, b = await engine.open_endpoint(), await engine.open_endpoint()
    pa, pb = Phone(), Phone()
    a.set_remote(HOST, pa.port)
    b.set_remote(HOST, pb.port)
    return engine.bridge(a, b), pa, pb


def test_the_tap_is_a_list_append_and_no_clock_runs(run, tmp_path):
    async def test(engine):
        br, pa, pb = await bridged(engine)
        br.record(CallRecorder(str(tmp_path / "c.wav")))
        tap = br.a._rtp.tap
        assert type(tap) is type([].append) and tap.__name__ == "append"   # C, no Python frame
        assert not engine.clock.running                       # no tick per recorded call
        await pa.stream(br.a.local_port, tone_samples(600, 0.6, amplitude=0.3))
        stopped = await br.stop_recording()
        assert br.a._rtp.tap is None and br.b._rtp.tap is None
        assert stopped.reason == "closed" and 0.55 < stopped.seconds < 1.5
        assert len(frames_with(read_wav(stopped.path)[2][0::2], 600, (1400,))) >= 25
        assert tap_service(engine).recordings == 0
        pa.close()
        pb.close()
    run(test)


def test_calls_are_spread_over_the_batch_slots(run, tmp_path):
    async def test(engine):
        recs = []
        for i in range(3):
            br, pa, pb = await bridged(engine)
            br.record(CallRecorder(str(tmp_path / f"c{i}.wav")))
            recs.append((br, pa, pb))
        svc = tap_service(engine)
        assert sorted(len(s) for s in svc.slots) == [0] * (_SLOTS - 3) + [1, 1, 1]
        await asyncio.sleep(2 * BATCH_SECONDS)
        assert svc.writer.jobs_done >= 3                       # batches handed over meanwhile
        for br, pa, pb in recs:
            await br.stop_recording()
            pa.close()
            pb.close()
        assert svc.recordings == 0 and svc._timer is None
    run(test, pairs=8)


def test_disk_full_is_reported_once_and_the_call_goes_on(run, tmp_path):
    async def test(engine):
        br, pa, pb = await bridged(engine)
        rec = CallRecorder(str(tmp_path / "full.wav"))

        def write(fd, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        rec._os_write = write
        events = Events()
        br.record(rec, on_event=events)
        stream = asyncio.ensure_future(pa.stream(br.a.local_port, tone_samples(600, 1.5, amplitude=0.3)))
        full = await events.wait(lambda e: isinstance(e, DiskFull))
        stopped = await events.wait(lambda e: isinstance(e, RecordingStopped))
        assert stopped.reason == "disk_full" and os.path.exists(stopped.path)
        assert br.a._rtp.tap is None                           # nothing more is collected
        await stream
        assert len(pb.packets) >= 60                           # the relay carried on
        assert await br.stop_recording() == stopped
        assert [type(e) for e in events.items] == [DiskFull, RecordingStopped]
        assert full.path == stopped.path
        pa.close()
        pb.close()
    run(test)


def test_a_carried_recording_is_one_file_with_silence_between_the_pairs(run, tmp_path):
    async def test(engine):
        br, pa, pb = await bridged(engine)
        events = Events()
        br.record(CallRecorder(str(tmp_path / "t.wav")), on_event=events)
        await pa.stream(br.a.local_port, tone_samples(600, 0.6, amplitude=0.3))
        rec = br.recording
        br.recording = None                                    # as b2bua._carry_recording does
        rec.detach()
        br.close()
        await asyncio.sleep(0.6)                               # "ringing": nobody bridged
        c = await engine.open_endpoint()
        pc = Phone()
        c.set_remote(HOST, pc.port)
        br2 = engine.bridge(br.a, c)
        rec.attach(br2, ("PCMU", "PCMA"))
        await pc.stream(c.local_port, tone_samples(1400, 0.6, amplitude=0.3), law="PCMA")
        stopped = await br2.stop_recording()
        assert [type(e) for e in events.items] == [RecordingStopped]
        _, ch, s = read_wav(stopped.path)
        left, right = s[0::2], s[1::2]
        first = frames_with(left, 600, (1400,))
        second = frames_with(right, 1400, (600,))
        assert len(first) >= 25 and len(second) >= 25
        assert min(second) - max(first) >= 25                  # >= 0.5 s of silence between
        assert 1.6 < stopped.seconds < 3.0
        for p in (pa, pb, pc):
            p.close()
    run(test)
