"""MediaEngine / Endpoint / Bridge over real UDP sockets on 127.0.0.1, and PortPool.

Two "phones" are plain UDP sockets. Checks that something was *not* relayed
never sleep: a sentinel packet is sent after the one that must be dropped, over
the same path, and the receiver must see the sentinel first (UDP on loopback
and the relay both keep order per socket).
"""

from __future__ import annotations

import asyncio
import gc
import math
import socket
import weakref
from array import array

import pytest
import uvloop

from firmware.media import g711
from firmware.media.ports import PortPool, PortPoolExhausted
from firmware.media.relay import PROBATION, MediaEngine, MediaError, _transform
from firmware.media.rtp import DtmfEvent, RtpExtension, RtpPacket
from tests.peers.audio import goertzel_power, tone_samples
from tests.peers.netutil import free_udp_range

HOST = "127.0.0.1"
WAIT = 2.0

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=[("reader", "asyncio"), ("reader", "uvloop"), ("transport", "asyncio"),
                        ("transport", "uvloop")], ids=lambda p: f"{p[0]}-{p[1]}")
def run(request):
    """run(coro_fn) -> runs coro_fn(engine_factory) on the chosen loop with the chosen I/O style."""
    io, loop_name = request.param

    def runner(test):
        loop = LOOPS[loop_name]()
        try:
            def make_engine(pairs: int = 8) -> MediaEngine:
                start = free_udp_range(2 * pairs)
                return MediaEngine(bind_host=HOST, port_pool=PortPool(start, start + 2 * pairs - 1),
                                   loop=loop, io=io)
            return loop.run_until_complete(asyncio.wait_for(test(make_engine), 10))
        finally:
            loop.close()
    return runner


class Phone:
    """A UDP socket with an inbox, standing in for a SIP phone's RTP (or RTCP) port."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.transport = None

    @classmethod
    async def open(cls, host: str = HOST) -> "Phone":
        self = cls()
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Inbox(self.inbox), local_addr=(host, 0))
        return self

    @property
    def port(self) -> int:
        return self.transport.get_extra_info("sockname")[1]

    def send(self, data: bytes, port: int) -> None:
        self.transport.sendto(data, (HOST, port))

    async def recv(self) -> tuple[bytes, tuple]:
        return await asyncio.wait_for(self.inbox.get(), WAIT)

    def close(self) -> None:
        self.transport.close()


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self, q: asyncio.Queue) -> None:
        self.q = q

    def datagram_received(self, data, addr) -> None:
        self.q.put_nowait((data, addr))


async def until(cond, passes: int = 100) -> None:
    """Let the loop run until ``cond()`` holds (bounded number of passes, no timed sleeps)."""
    for _ in range(passes):
        if cond():
            return
        await asyncio.sleep(0)
    assert cond()


async def phone() -> Phone:
    return await Phone.open()


def rtp(seq: int, pt: int = 0, payload: bytes = b"\xff" * 160, marker: bool = False) -> bytes:
    return bytes(RtpPacket(payload_type=pt, sequence_number=seq, timestamp=160 * seq,
                           ssrc=0x1234, marker=marker, payload=payload))


async def call(engine: MediaEngine):
    """Two phones, two endpoints, one bridge; SDP addresses set."""
    pa, pb = await phone(), await phone()
    ea, eb = await engine.open_endpoint(), await engine.open_endpoint()
    ea.set_remote(HOST, pa.port)
    eb.set_remote(HOST, pb.port)
    return pa, pb, ea, eb, engine.bridge(ea, eb)


# --- relay -------------------------------------------------------------------

def test_packets_flow_both_ways_unchanged(run):
    async def test(make_engine):
        engine = make_engine()
        pa, pb, ea, eb, br = await call(engine)
        assert ea.local_port % 2 == 0 and eb.local_port % 2 == 0 and ea.local_host == HOST
        for seq in range(5):
            pa.send(rtp(seq), ea.local_port)
            data, addr = await pb.recv()
            assert data == rtp(seq) and addr == (HOST, eb.local_port)
            pb.send(rtp(100 + seq, payload=b"\x7f" * 160), eb.local_port)
            data, addr = await pa.recv()
            assert data == rtp(100 + seq, payload=b"\x7f" * 160) and addr == (HOST, ea.local_port)
        assert (ea.packets_in, ea.packets_out, eb.packets_in, eb.packets_out) == (5, 5, 5, 5)
        assert engine.stats["packets_relayed"] == 10 and engine.stats["endpoints_open"] == 2
        engine.close()
        assert engine.stats["endpoints_open"] == 0 and engine.stats["packets_relayed"] == 10
        await until(lambda: engine.port_pool.in_use == 0)
    run(test)


def test_a_source_on_another_host_latches_only_after_probation(run):
    # The phone is behind NAT (its packets come from another address than its SDP named);
    # a stranger who guessed the port sends first. One stray packet must not take the stream.
    async def test(make_engine):
        engine = make_engine()
        pb = await phone()
        natted, stranger = await Phone.open("127.0.0.5"), await Phone.open("127.0.0.9")
        ea, eb = await engine.open_endpoint(), await engine.open_endpoint()
        ea.set_remote(HOST, 40000)               # A's SDP: a private address we cannot reach
        eb.set_remote(HOST, pb.port)
        engine.bridge(ea, eb)
        stranger.send(rtp(1, payload=b"\x01" * 160), ea.local_port)
        for seq in range(2, 2 + PROBATION - 1):
            natted.send(rtp(seq), ea.local_port)
        await until(lambda: ea.dropped == PROBATION)  # all on probation, none relayed
        natted.send(rtp(9), ea.local_port)            # the PROBATION-th in a row: latched
        data, _ = await pb.recv()
        assert RtpPacket.parse(data).sequence_number == 9
        assert ea.remote == ("127.0.0.5", natted.port)
        pb.send(rtp(10), eb.local_port)               # and B's audio goes to A's real source
        data, _ = await natted.recv()
        assert RtpPacket.parse(data).sequence_number == 10
        stranger.send(rtp(11), ea.local_port)          # locked now
        natted.send(rtp(12), ea.local_port)            # sentinel, sent after
        data, _ = await pb.recv()
        assert RtpPacket.parse(data).sequence_number == 12
        # a reader-mode socket is connect()ed to the latched source: the kernel drops the
        # stranger before the relay sees it; a transport-mode one drops it in the relay
        assert ea.dropped == PROBATION + (0 if ea._rtp.connected else 1)
        engine.close()
    run(test)


def test_latching_follows_real_source_and_then_locks(run):
    async def test(make_engine):
        engine = make_engine()
        pa_sdp, pb = await phone(), await phone()
        pa_real, intruder = await phone(), await phone()
        ea, eb = await engine.open_endpoint(), await engine.open_endpoint()
        ea.set_remote(HOST, pa_sdp.port)     # what A's SDP said
        eb.set_remote(HOST, pb.port)
        engine.bridge(ea, eb)
        # Before A sends anything, B's packets go to A's SDP address.
        pb.send(rtp(1), eb.local_port)
        assert (await pa_sdp.recv())[0] == rtp(1)
        assert not ea.latched
        # A sends from another port (NAT): that source is latched.
        pa_real.send(rtp(2), ea.local_port)
        assert (await pb.recv())[0] == rtp(2)
        assert ea.latched and ea.remote == (HOST, pa_real.port)
        pb.send(rtp(3), eb.local_port)
        assert (await pa_real.recv())[0] == rtp(3)
        # A third party injecting into A's endpoint is dropped...
        intruder.send(rtp(666, payload=b"evil"), ea.local_port)
        pa_real.send(rtp(4), ea.local_port)  # sentinel, same path, sent after
        assert (await pb.recv())[0] == rtp(4)
        assert ea.dropped == (0 if ea._rtp.connected else 1) and ea.remote == (HOST, pa_real.port)
        # ...and does not steal the return path.
        pb.send(rtp(5), eb.local_port)
        assert (await pa_real.recv())[0] == rtp(5)
        assert pa_sdp.inbox.empty() and intruder.inbox.empty()
        # A re-INVITE (set_remote) re-arms latching.
        ea.set_remote(HOST, pa_sdp.port)
        assert not ea.latched and ea.remote == (HOST, pa_sdp.port)
        pa_sdp.send(rtp(6), ea.local_port)
        assert (await pb.recv())[0] == rtp(6)
        assert ea.remote == (HOST, pa_sdp.port) and ea.latched
        engine.close()
    run(test)


def test_payload_type_rewrite(run):
    async def test(make_engine):
        engine = make_engine()
        pa, pb, ea, eb, br = await call(engine)
        # Leg A negotiated telephone-event as 101, leg B as 96; PCMU is 0 on both.
        br.set_transform("a->b", pt_map={0: 0, 101: 96})
        br.set_transform("b->a", pt_map={0: 0, 96: 101})
        dtmf = bytes(DtmfEvent.from_digit("5", end=True, duration=800))
        pa.send(rtp(1, pt=101, payload=dtmf, marker=True), ea.local_port)
        got = RtpPacket.parse((await pb.recv())[0])
        assert got.payload_type == 96 and got.marker and DtmfEvent.parse(got.payload).digit == "5"
        assert got.sequence_number == 1 and got.ssrc == 0x1234
        pb.send(rtp(2, pt=96, payload=dtmf), eb.local_port)
        got = RtpPacket.parse((await pa.recv())[0])
        assert got.payload_type == 101 and not got.marker
        # An unmapped PT is dropped; PCMU passes unchanged.
        pa.send(rtp(3, pt=8), ea.local_port)
        pa.send(rtp(4, pt=0), ea.local_port)
        assert (await pb.recv())[0] == rtp(4, pt=0)
        assert ea.dropped == 1
        # Back to pass-through.
        br.set_transform("a->b", pt_map=None)
        pa.send(rtp(5, pt=101, payload=dtmf), ea.local_port)
        assert (await pb.recv())[0] == rtp(5, pt=101, payload=dtmf)
        with pytest.raises(MediaError):
            br.set_transform("a-b", pt_map=None)
        with pytest.raises(MediaError):
            br.set_transform("a->b", pt_map={0: 0}, transcode={0: b"short"})
        engine.close()
    run(test)


def _tone_check(pcm: array, freq: float = 1000.0) -> tuple[float, float]:
    """(share of the power at ``freq`` vs a 1.5 kHz rival, RMS)."""
    rms = math.sqrt(sum(x * x for x in pcm) / len(pcm))
    return goertzel_power(pcm, 8000, freq) / max(goertzel_power(pcm, 8000, 1500.0), 1e-9), rms


def test_ulaw_to_alaw_transcoding_keeps_the_tone(run):
    async def test(make_engine):
        engine = make_engine()
        pa, pb, ea, eb, br = await call(engine)
        br.set_transform("a->b", pt_map={0: 8, 101: 101}, transcode={0: g711.ULAW_TO_ALAW})
        br.set_transform("b->a", pt_map={8: 0, 101: 101}, transcode={8: g711.ALAW_TO_ULAW})
        tone = tone_samples(1000.0, 0.02, amplitude=0.3)        # one 20 ms frame, 160 samples
        sent_rms = _tone_check(tone)[1]
        pa.send(rtp(1, pt=0, payload=g711.lin2ulaw(tone)), ea.local_port)
        got = RtpPacket.parse((await pb.recv())[0])
        assert got.payload_type == 8 and len(got.payload) == 160
        heard = array("h", g711.alaw2lin(got.payload))
        ratio, rms = _tone_check(heard)
        assert ratio > 1000                                     # a 1 kHz tone, nothing at 1.5 kHz
        assert abs(rms - sent_rms) / sent_rms < 0.02            # same level within quantisation
        err = math.sqrt(sum((x - y) ** 2 for x, y in zip(tone, heard)) / len(tone))
        assert err < 0.03 * sent_rms                            # G.711 SNR is ~38 dB
        # and back: A-law from B reaches A as µ-law
        pb.send(rtp(2, pt=8, payload=g711.lin2alaw(tone)), eb.local_port)
        got = RtpPacket.parse((await pa.recv())[0])
        assert got.payload_type == 0
        ratio, rms = _tone_check(array("h", g711.ulaw2lin(got.payload)))
        assert ratio > 1000 and abs(rms - sent_rms) / sent_rms < 0.02
        engine.close()
    run(test)


def test_rtcp_is_relayed_unchanged(run):
    async def test(make_engine):
        engine = make_engine()
        pa, pb = await phone(), await phone()
        pa_rtcp, pb_rtcp = await phone(), await phone()
        ea, eb = await engine.open_endpoint(), await engine.open_endpoint()
        ea.set_remote(HOST, pa.port, rtcp_port=pa_rtcp.port)
        eb.set_remote(HOST, pb.port, rtcp_port=pb_rtcp.port)
        br = engine.bridge(ea, eb)
        br.set_transform("a->b", pt_map={0: 8}, transcode={0: g711.ULAW_TO_ALAW})  # RTP only
        rr = bytes.fromhex("80c90001") + b"\x00\x00\x12\x34"
        pa_rtcp.send(rr, ea.local_rtcp_port)
        data, addr = await pb_rtcp.recv()
        assert data == rr and addr == (HOST, eb.local_port + 1)
        pb_rtcp.send(rr[::-1], eb.local_port + 1)
        data, addr = await pa_rtcp.recv()
        assert data == rr[::-1] and addr == (HOST, ea.local_port + 1)
        assert ea.rtcp_in == 1 and eb.rtcp_out == 1 and ea.packets_in == 0
        assert pa.inbox.empty() and pb.inbox.empty()
        engine.close()
    run(test)


def test_check_timeouts_reports_silent_bridge(run):
    async def test(make_engine):
        engine = make_engine()
        pa, pb, ea, eb, br = await call(engine)
        assert engine.check_timeouts(0.0) == []           # timeout None: never
        br.timeout = 5.0
        assert engine.check_timeouts(100.0) == []         # first sight starts both clocks
        assert engine.check_timeouts(104.0) == []
        for t in (104.5, 107.0, 109.5):                   # both sides talk: never dead
            pa.send(rtp(1), ea.local_port)
            await pb.recv()
            pb.send(rtp(2), eb.local_port)
            await pa.recv()
            assert engine.check_timeouts(t) == []
        assert engine.check_timeouts(114.0) == []
        assert engine.check_timeouts(114.6) == [br]       # 5.1 s of silence on both sides
        assert engine.check_timeouts(115.6) == []         # reported once per silence
        for t in (116.0, 118.0, 120.0):                   # only A talks: B's phone is dead
            pa.send(rtp(3), ea.local_port)
            await pb.recv()
            assert engine.check_timeouts(t) == []         # still the same silence of B: not again
        pb.send(rtp(4), eb.local_port)                    # B comes back: the watch re-arms
        await pa.recv()
        assert engine.check_timeouts(121.0) == []
        pa.send(rtp(5), ea.local_port)
        await pb.recv()
        assert engine.check_timeouts(122.0) == []
        assert engine.check_timeouts(126.5) == [br]       # B silent since 121.0, A since 122.0
        br.close()
        assert engine.check_timeouts(200.0) == []
        assert engine.stats["bridges"] == 0
        engine.close()
    run(test)


def test_port_exhaustion_and_close_frees_ports(run):
    async def test(make_engine):
        engine = make_engine(pairs=2)
        eps = [await engine.open_endpoint(), await engine.open_endpoint()]
        assert engine.port_pool.in_use == 2
        with pytest.raises(MediaError):
            await engine.open_endpoint()
        freed = eps[0].local_port
        eps[0].close()
        eps[0].close()                                    # idempotent
        await until(lambda: engine.port_pool.in_use == 1)  # transports close a loop pass later
        again = await engine.open_endpoint()
        assert again.local_port == freed                  # only pair left
        # the sockets of a closed endpoint are really gone: the ports bind again
        again.close()
        await until(lambda: engine.port_pool.in_use == 1)
        for p in (freed, freed + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((HOST, p))
        engine.close()
        assert engine.stats["endpoints_open"] == 0
        await until(lambda: engine.port_pool.in_use == 0)
    run(test)


def test_closed_endpoints_and_their_bridge_are_freed_without_the_cyclic_gc(run):
    """The PBX sets up hundreds of calls a second; what a call leaves as reference cycles waits
    for the cyclic GC, whose passes grew to 115 ms (scripts/bench sipp --mode setups)."""
    async def test(make_engine):
        engine = make_engine()
        pa, pb, ea, eb, br = await call(engine)
        pa.send(rtp(1), ea.local_port)
        await pb.recv()  # relayed: every path of a live bridge has run
        gone = [weakref.ref(o) for o in (ea, eb, br)]
        gc.disable()
        try:
            ea.close()
            eb.close()
            await until(lambda: engine.port_pool.in_use == 0)
            del ea, eb, br
            assert [ref() for ref in gone] == [None] * len(gone)
        finally:
            gc.enable()
            engine.close()
    run(test)


def test_port_taken_by_another_process_is_skipped(run):
    async def test(make_engine):
        engine = make_engine(pairs=3)
        first = engine.port_pool.lo
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind((HOST, first + 1))              # only the RTCP port of the first pair
            ep = await engine.open_endpoint()
            assert ep.local_port == first + 2
        engine.close()
    run(test)


def test_bridge_rules_and_closing(run):
    async def test(make_engine):
        engine = make_engine()
        pa, pb, ea, eb, br = await call(engine)
        ec = await engine.open_endpoint()
        with pytest.raises(MediaError):
            engine.bridge(ea, ec)                         # ea already bridged
        with pytest.raises(MediaError):
            engine.bridge(ec, ec)
        br.close()
        assert ea.bridge is None and eb.bridge is None
        pa.send(rtp(1), ea.local_port)                    # not bridged: counted, dropped
        await until(lambda: ea.packets_in == 1)
        br2 = engine.bridge(ea, ec)
        ec.set_remote(HOST, pb.port)
        pa.send(rtp(2), ea.local_port)
        assert (await pb.recv())[0] == rtp(2)
        assert ea.dropped == 1 and ea.packets_in == 2
        ec.close()                                        # closing an endpoint closes its bridge
        assert br2.closed and ea.bridge is None
        with pytest.raises(MediaError):
            engine.bridge(ea, ec)
        engine.close()
    run(test)


# --- the transform on unusual packets (pure) ------------------------------------

def _xf(pt_map, transcode):
    return [None if pt not in pt_map else (pt_map[pt], transcode.get(pt)) for pt in range(128)]


def test_transform_leaves_csrc_extension_and_padding_alone():
    p = RtpPacket(payload_type=0, marker=True, csrc=(7, 8), extension=RtpExtension(0xBEDE, b"\x10\xff\x00\x00"),
                  payload=bytes(range(100)), padding=b"\x00\x00\x03")
    out = _transform(bytes(p), _xf({0: 8}, {0: g711.ULAW_TO_ALAW}))
    q = RtpPacket.parse(bytes(out))
    assert q.payload_type == 8 and q.marker
    assert (q.csrc, q.extension, q.padding) == (p.csrc, p.extension, p.padding)
    assert q.payload == p.payload.translate(g711.ULAW_TO_ALAW)


def test_transform_drops_garbage():
    xf = _xf({0: 8}, {0: g711.ULAW_TO_ALAW})
    assert _transform(b"\x80\x00", xf) is None                        # short
    assert _transform(b"\x40" + bytes(20), xf) is None                # version 1
    assert _transform(b"\x90" + bytes(11) + b"\xbe\xde\x00\x09", xf) is None  # ext too long
    assert _transform(rtp(1, pt=9), xf) is None                       # PT not mapped
    same = rtp(1, pt=0)
    assert _transform(same, _xf({0: 0}, {})) is same                  # nothing to do: no copy


# --- PortPool ------------------------------------------------------------------

def test_port_pool_even_ports_round_robin():
    pool = PortPool(10001, 10010)          # pairs 10002/3 .. 10008/9; 10010 has no RTCP port
    assert pool.capacity == 4
    got = [pool.allocate() for _ in range(4)]
    assert got == [10002, 10004, 10006, 10008] and pool.in_use == 4
    with pytest.raises(PortPoolExhausted):
        pool.allocate()
    pool.release(10004)
    pool.release(10002)
    assert pool.allocate() == 10004        # least recently freed first
    pool.release(10006)
    assert pool.allocate() == 10002
    assert 10006 not in pool and 10008 in pool
    with pytest.raises(ValueError):
        pool.release(10006)
    with pytest.raises(ValueError):
        PortPool(10000, 10000)


def test_port_pool_does_not_reuse_a_just_freed_port():
    pool = PortPool(20000, 20099)
    p = pool.allocate()
    pool.release(p)
    seen = [pool.allocate() for _ in range(pool.capacity - 1)]
    assert p not in seen
