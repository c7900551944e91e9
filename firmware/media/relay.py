"""RTP/RTCP relay between anchored endpoints: the media hot path (asyncio adapter).

The B2BUA anchors media: each call leg gets an ``Endpoint`` on the box (RTP on
an even port, RTCP on the next odd one, RFC 3550 §11) and a ``Bridge`` relays
between two endpoints. The PBX only calls ``MediaEngine``, ``Endpoint`` and
``Bridge``; it never sees a packet.

Symmetric RTP / latching: until the first packet arrives an endpoint sends to
the address from the peer's SDP; then the remote address is fixed to the
packets' real source (phones behind NAT) and locked: packets from any other
source are dropped (no RTP hijack / "RTP bleed") until ``set_remote`` is
called again (re-INVITE). A source on the SDP's host latches at once; any
other host must first send ``PROBATION`` packets in a row (Asterisk's
strictrtp learning does the same), so a stranger who guesses the port cannot
take the stream with one packet before the phone speaks. RTP and RTCP latch
independently.

Per packet, in the pass-through case, the work is: receive, compare the source
with the latched tuple, ``sendto`` the same object to the other endpoint's
remote, increment two counters. No parsing, no copy. When a transform is set
(different payload-type numbers or G.711 laws on the two legs) the packet is
copied once: byte 1 (PT, marker kept) is rewritten from a precomputed
128-entry list and the payload goes through ``bytes.translate``.

Termination and recording (terminal.py). An endpoint that is not bridged
may have a ``Terminal`` (the box is the far end: prompts, IVR, echo): its
packets go to ``Terminal.on_rtp`` from the branch that used to count them as
dropped, so the bridged path pays nothing. A recorded bridge sets ``tap`` on
both RTP sides (a list append); the relay calls it per packet after the route
check -- one attribute test per relayed packet when no recording is active.

Media workers (workers.py, worker.py). With ``use_workers(n)``, a bridge is
handed soon after it is made to a worker process that relays it with this same
code; the PBX process stops reading its sockets until it is given back.

Two I/O styles are implemented; ``io="reader"`` is the default because it is
faster (see scripts/bench_relay.py and the module's commit message):

* ``"reader"``: non-blocking sockets, ``loop.add_reader``, ``sock.recvfrom``
  and ``sock.sendto`` (a full send buffer drops the packet, which is what RTP
  wants: no queue, no added delay);
* ``"transport"``: ``loop.create_datagram_endpoint`` with a protocol whose
  ``datagram_received`` forwards via ``DatagramTransport.sendto``.

Measured (scripts/bench_relay.py, 500 calls = 50,000 packets/s, pass-through,
relay pinned to one core of a 2-core AMD EPYC VM, CPython 3.11): reader
~8-9 µs/packet on both asyncio and uvloop; transport on uvloop ~7-9 µs/packet
(same within noise), transport on stock asyncio ~25 µs/packet, saturating the
core with 14-22 % loss and ~1 s of queueing delay. Reader is the one that is
fast on every loop, so it is the default.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time

from .ports import PortPool, PortPoolExhausted

__all__ = ["MediaEngine", "Endpoint", "Bridge", "MediaError"]

# Datagrams handled per readiness callback. Each RTP socket sees 50 packets/s,
# so a wake-up almost always finds exactly one; draining further costs a failed
# recvfrom (syscall + BlockingIOError) per packet. Level-triggered polling calls
# us again if more is queued. Measured at 500 calls: 1 -> ~8.7 µs/packet,
# 64 -> ~9.1 µs/packet (scripts/bench_relay.py --batch).
_BATCH = 1
PROBATION = 3        # packets in a row from a host other than the SDP's before it latches
_RECV_SIZE = 2048    # larger than any RTP packet we relay over Ethernet


class MediaError(Exception):
    """The media engine could not do what was asked (no ports, bad transform...)."""


def _transform(data, xf):
    """Rewrite PT and translate the payload of one RTP packet; None = drop.

    ``xf`` is a 128-entry list indexed by received PT: None (drop),
    ``(new_pt, table_or_None)``, or a converter object (see ``set_transform``).
    """
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    b1 = data[1]
    entry = xf[b1 & 0x7F]
    if entry is None:
        return None
    if type(entry) is not tuple:
        return entry.convert(data)  # rare: e.g. RFC 4733 events played as tones
    pt, table = entry
    if table is None:
        if pt == b1 & 0x7F:
            return data
        out = bytearray(data)
        out[1] = (b1 & 0x80) | pt
        return out
    b0 = data[0]
    start = 12 + ((b0 & 0x0F) << 2)
    end = len(data)
    if b0 & 0x10:                       # header extension: leave it untouched
        if start + 4 > end:
            return None
        start += 4 + 4 * int.from_bytes(data[start + 2:start + 4], "big")
    if b0 & 0x20:                       # padding: leave it untouched
        end -= data[-1]
    if start > end:
        return None
    out = bytearray(data)
    out[1] = (b1 & 0x80) | pt
    out[start:end] = data[start:end].translate(table)
    return out


class _Side:
    """One socket of an endpoint (RTP or RTCP) and its latching state."""

    __slots__ = ("endpoint", "sock", "transport", "sendto", "out", "xf",
                 "latched", "dest", "sdp_dest", "packets_in", "packets_out",
                 "dropped", "term", "tap", "_loop", "_reading", "_candidate", "_heard", "connected")

    def __init__(self, endpoint: "Endpoint", sock: socket.socket) -> None:
        self.endpoint: Endpoint | None = endpoint
        self.sock = sock
        self.transport: asyncio.DatagramTransport | None = None
        self.sendto = sock.sendto      # replaced by transport.sendto in transport mode
        self.out: _Side | None = None  # the matching side of the bridged endpoint
        self.xf: list | None = None    # RTP only: per-PT transform for packets received here
        self.term = None               # RTP only: a Terminal taking packets while not bridged
        self.tap = None                # RTP only: a bridge recording's feed, called per packet
        self.latched = None            # source address locked by the first packet
        self.dest = None               # where packets for our phone go: latched or SDP
        self.sdp_dest = None
        self.packets_in = 0
        self.packets_out = 0
        self.dropped = 0
        self._loop = None
        self._reading = False
        self._candidate = None         # a source from another host, on probation
        self._heard = 0
        self.connected = False         # the socket is connect()ed to the latched source

    def set_remote(self, addr) -> None:
        if self.connected:
            self._disconnect()
        self.sdp_dest = addr
        self.dest = addr
        self.latched = None
        self._candidate = None

    def _latch(self, addr) -> None:
        self.latched = self.dest = addr
        self._candidate = None
        if self._reading:
            # A connected UDP socket: the kernel drops other sources before we are woken, and
            # recv/send skip the address (no tuple per packet, the route looked up once): a
            # quarter less CPU per relayed packet (measured, same run, 300 calls).
            try:
                self.sock.connect(addr)
            except OSError:
                return
            self.connected = True
            self._loop.add_reader(self.sock.fileno(), self.on_connected)

    def _disconnect(self) -> None:
        """Dissolve the association (connect to AF_UNSPEC): any source may latch again."""
        from .udp import disconnect   # ctypes: only when a latched phone moves (a re-INVITE)
        disconnect(self.sock)
        self.connected = False
        if self._reading:
            self._loop.add_reader(self.sock.fileno(), self.on_readable)

    def _learn(self, addr) -> bool:
        """Whether ``addr`` may become the latched source (called only while unlatched)."""
        sdp = self.sdp_dest
        if sdp is None or addr[0] == sdp[0]:
            self._latch(addr)
            return True
        if addr == self._candidate:
            self._heard += 1
        else:
            self._candidate, self._heard = addr, 1
        if self._heard >= PROBATION:
            self._latch(addr)
            return True
        return False

    # -- reader mode --------------------------------------------------------

    def start_reader(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        if not self._reading:
            loop.add_reader(self.sock.fileno(), self.on_connected if self.connected else self.on_readable)
            self._reading = True

    def stop_reader(self) -> None:
        """Stop reading (a media worker reads this socket now)."""
        if self._reading:
            self._loop.remove_reader(self.sock.fileno())
            self._reading = False

    def on_readable(self) -> None:
        recvfrom = self.sock.recvfrom
        for _ in range(_BATCH):
            try:
                data, addr = recvfrom(_RECV_SIZE)
            except BlockingIOError:
                return
            except OSError:             # e.g. ICMP error queued on the socket
                self.dropped += 1
                continue
            if addr != self.latched and (self.latched is not None or not self._learn(addr)):
                self.dropped += 1
                continue
            self.packets_in += 1
            out = self.out
            if out is None or out.dest is None:
                # Not bridged: the box itself may be the far end. Off the
                # relay path, so bridged packets pay nothing for it.
                if out is None and self.term is not None:
                    self.term.on_rtp(data)
                    continue
                self.dropped += 1
                continue
            if self.tap is not None:    # the one check recording costs the relay
                self.tap(data)
            if self.xf is not None:
                data = _transform(data, self.xf)
                if data is None:
                    self.dropped += 1
                    continue
            try:
                if out.connected:
                    out.sock.send(data)
                else:
                    out.sendto(data, out.dest)
            except OSError:             # send buffer full or unreachable: drop, never queue
                self.dropped += 1
            else:
                out.packets_out += 1

    def on_connected(self) -> None:
        """``on_readable`` once latched: the socket only hears the latched source.

        Its second half repeats ``on_readable``'s on purpose: a shared helper would cost a call
        per relayed packet on the hottest path of the box."""
        try:
            data = self.sock.recv(_RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:                 # e.g. ICMP port unreachable from the phone
            self.dropped += 1
            return
        self.packets_in += 1
        out = self.out
        if out is None or out.dest is None:
            if out is None and self.term is not None:
                self.term.on_rtp(data)
                return
            self.dropped += 1
            return
        if self.tap is not None:
            self.tap(data)
        if self.xf is not None:
            data = _transform(data, self.xf)
            if data is None:
                self.dropped += 1
                return
        try:
            if out.connected:
                out.sock.send(data)
            else:
                out.sendto(data, out.dest)
        except OSError:
            self.dropped += 1
        else:
            out.packets_out += 1

    # -- transport mode (asyncio.DatagramProtocol) --------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.sendto = transport.sendto

    def datagram_received(self, data: bytes, addr) -> None:
        if addr != self.latched and (self.latched is not None or not self._learn(addr)):
            self.dropped += 1
            return
        self.packets_in += 1
        out = self.out
        if out is None or out.dest is None:
            if out is None and self.term is not None:
                self.term.on_rtp(data)
                return
            self.dropped += 1
            return
        if self.tap is not None:
            self.tap(data)
        if self.xf is not None:
            data = _transform(data, self.xf)
            if data is None:
                self.dropped += 1
                return
        out.sendto(data, out.dest)
        out.packets_out += 1

    def error_received(self, exc: Exception) -> None:
        self.dropped += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._closed()

    def pause_writing(self) -> None:    # RTP is never queued for flow control
        pass

    def resume_writing(self) -> None:
        pass

    def close(self) -> None:
        if self._reading:
            self._loop.remove_reader(self.sock.fileno())
            self._reading = False
        self.out = None
        self.term = self.tap = None
        if self.transport is not None:
            self.transport.close()      # closes the socket on the next loop pass -> connection_lost
        else:
            self.sock.close()
            self._closed()

    def _closed(self) -> None:
        # The endpoint and its sides point at each other: once a side is closed for good the
        # link is cut, so both are freed as soon as their last user lets go, not by the cyclic
        # GC, whose pauses with a few hundred calls a second were longer than a packet interval.
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            endpoint._side_closed()


class Endpoint:
    """A call leg's media anchor: RTP on ``local_port``, RTCP on ``local_port + 1``."""

    def __init__(self, engine: "MediaEngine", host: str, port: int,
                 rtp_sock: socket.socket, rtcp_sock: socket.socket) -> None:
        self._engine = engine
        self.local_host = host
        self.local_port = port
        self._rtp = _Side(self, rtp_sock)
        self._rtcp = _Side(self, rtcp_sock)
        self.bridge: Bridge | None = None
        self.terminal = None           # the Terminal playing/detecting on this leg, if any
        self.worker = None             # the media worker reading these sockets now (workers.py)
        self.closed = False
        self._open_sides = 2

    @property
    def local_rtcp_port(self) -> int:
        return self.local_port + 1

    @property
    def packets_in(self) -> int:
        """RTP packets accepted from the (latched) remote."""
        return self._rtp.packets_in

    @property
    def packets_out(self) -> int:
        """RTP packets sent to the remote."""
        return self._rtp.packets_out

    @property
    def dropped(self) -> int:
        """RTP and RTCP packets received here and not relayed (wrong source, no route, PT not mapped)."""
        return self._rtp.dropped + self._rtcp.dropped

    @property
    def rtcp_in(self) -> int:
        return self._rtcp.packets_in

    @property
    def rtcp_out(self) -> int:
        return self._rtcp.packets_out

    @property
    def remote(self):
        """Where RTP for this leg's phone goes now: the latched source, else the SDP address."""
        return self._rtp.dest

    @property
    def latched(self) -> bool:
        return self._rtp.latched is not None

    def set_remote(self, host: str, port: int, rtcp_port: int | None = None) -> None:
        """Remote RTP (and RTCP, default port + 1) address from the peer's SDP; re-arms latching."""
        self._rtp.set_remote((host, port))
        self._rtcp.set_remote((host, port + 1 if rtcp_port is None else rtcp_port))
        if self.worker is not None:
            self._engine.workers.remote_changed(self)

    def close(self) -> None:
        """Close both sockets, leave any bridge, give the port pair back to the pool."""
        if self.closed:
            return
        self.closed = True
        if self.bridge is not None:
            self.bridge.close()
        if self.terminal is not None:
            self.terminal.close()
        self._engine._endpoint_closed(self)
        self._rtp.close()
        self._rtcp.close()

    def _side_closed(self) -> None:
        # The port pair goes back to the pool only once both sockets are really
        # closed (transports close them one loop pass after close()).
        self._open_sides -= 1
        if self._open_sides == 0:
            self._engine.port_pool.release(self.local_port)

    def __repr__(self) -> str:
        return (f"Endpoint({self.local_host}:{self.local_port}, remote={self.remote}, "
                f"latched={self.latched}, in={self.packets_in}, out={self.packets_out}, "
                f"dropped={self.dropped})")


class Bridge:
    """Relays RTP and RTCP between two endpoints, both ways."""

    def __init__(self, engine: "MediaEngine", a: Endpoint, b: Endpoint) -> None:
        self._engine = engine
        self.a = a
        self.b = b
        self.timeout: float | None = None
        self.closed = False
        self._seen = self._seen_b = -1  # packets_in of a and of b at the last check
        self._since: float | None = None
        self._since_b: float | None = None
        self._reported = False
        self.recording = None           # a BridgeRecording while recording
        self.worker = None              # the media worker relaying it now, if any (workers.py)
        self.worker_id: int | None = None
        self.releasing = False          # asked back from its worker, not yet given back
        self.lost = False               # its worker died: the call must end
        self.queued = False             # waiting for a worker that is starting
        a._rtp.out, b._rtp.out = b._rtp, a._rtp
        a._rtcp.out, b._rtcp.out = b._rtcp, a._rtcp
        a.bridge = b.bridge = self

    def set_transform(self, direction: str, *, pt_map: dict[int, int] | None = None,
                      transcode: dict[int, bytes] | None = None,
                      convert: dict[int, object] | None = None) -> None:
        """Rewrite packets going ``"a->b"`` or ``"b->a"``.

        ``pt_map``: received PT -> PT to send; PTs not in the map are dropped;
        None passes every PT unchanged. ``transcode``: received PT -> 256-byte
        table applied to the payload with ``bytes.translate`` (e.g.
        ``g711.ULAW_TO_ALAW``). ``convert``: received PT -> an object whose
        ``convert(packet) -> packet | None`` replaces the packet (RFC 4733 events
        to in-band tones for a leg without telephone-event). All None restores
        the zero-copy fast path.
        """
        if direction == "a->b":
            side = self.a._rtp
        elif direction == "b->a":
            side = self.b._rtp
        else:
            raise MediaError(f"direction must be 'a->b' or 'b->a', not {direction!r}")
        transcode = transcode or {}
        for pt, table in transcode.items():
            if not 0 <= pt <= 127:
                raise MediaError(f"payload type {pt} out of range")
            if not isinstance(table, (bytes, bytearray)) or len(table) != 256:
                raise MediaError(f"transcode table for PT {pt} must be 256 bytes")
        if pt_map is None and not transcode and not convert:
            side.xf = None
            self._transform_changed()
            return
        for src, dst in (pt_map or {}).items():
            if not (0 <= src <= 127 and 0 <= dst <= 127):
                raise MediaError(f"payload type mapping {src}->{dst} out of range")
        xf: list = [None] * 128
        for pt in range(128):
            if pt_map is None:
                xf[pt] = (pt, transcode.get(pt))
            elif pt in pt_map:
                xf[pt] = (pt_map[pt], transcode.get(pt))
        for pt, converter in (convert or {}).items():
            xf[pt] = converter
        side.xf = xf
        self._transform_changed()

    def _transform_changed(self) -> None:
        workers = self._engine.workers
        if workers is None:
            return
        if self.worker is not None:
            workers.transform_changed(self)
        else:
            self._engine.loop.call_soon(workers.offer, self)

    def record(self, recorder, codecs: tuple[str, str] = ("PCMU", "PCMU"), *,
               on_event=None) -> None:
        """Record the call: ``a``'s audio to the recorder's left channel, ``b``'s to the right.

        ``codecs`` are the G.711 laws ("PCMU"/"PCMA") each side sends. Each
        packet relayed is appended to a per-side list (the tap); batches go to
        the engine's writer thread, which lays them out and writes the file
        (see terminal.BridgeRecording). A bridge relayed by a media worker is
        recorded there, the file going with it (workers.py); the decisions and
        the events stay here. Events (DiskFull, RecordingStopped) go to ``on_event``.
        """
        if self.closed:
            raise MediaError("bridge is closed")
        if self.recording is not None:
            raise MediaError("bridge is already recording; stop_recording() first")
        from .terminal import BridgeRecording   # terminal imports this module
        self.recording = BridgeRecording(self._engine, self, recorder, codecs, on_event)

    def stop_recording(self) -> "asyncio.Future | None":
        """Stop the tap; the recorder is closed off the loop. Future -> RecordingStopped."""
        rec, self.recording = self.recording, None
        if rec is None:
            return None
        return rec.stop()

    def _taps_changed(self, recording, finish: bool = False) -> None:
        """A recording set (``recording``) or removed (None) the taps on this bridge's sides
        (terminal.BridgeRecording): a worker relaying it starts recording it there, or stops
        (and with ``finish`` finishes the file there rather than giving it back)."""
        if self.worker is not None:
            self._engine.workers.taps_changed(self, recording, finish)

    def close(self) -> None:
        """Stop relaying; the endpoints stay open (they may be bridged again)."""
        if self.closed:
            return
        self.closed = True
        self.stop_recording()
        if self.worker is not None:
            self._engine.workers.let_go(self)
        for ep in (self.a, self.b):
            ep._rtp.out = ep._rtcp.out = None
            ep._rtp.xf = None
            if ep.bridge is self:
                ep.bridge = None
        self._engine._bridge_closed(self)

    def __repr__(self) -> str:
        return f"Bridge({self.a.local_port}<->{self.b.local_port}, timeout={self.timeout})"


class MediaEngine:
    """Opens endpoints, bridges them, reports dead calls. One per event loop."""

    def __init__(self, *, bind_host: str, port_pool: PortPool,
                 loop: asyncio.AbstractEventLoop | None = None, io: str = "reader") -> None:
        if io not in ("reader", "transport"):
            raise ValueError("io must be 'reader' or 'transport'")
        self.bind_host = bind_host
        self.port_pool = port_pool
        self._loop = loop
        self._io = io
        self._family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        self._endpoints: set[Endpoint] = set()
        self._bridges: set[Bridge] = set()
        # counters of endpoints already closed, so stats stay cumulative
        self._closed_relayed = 0
        self._closed_dropped = 0
        self._clock = None
        self._sounds = None
        self.workers = None  # a workers.WorkerPool when bridges are relayed in worker processes

    def use_workers(self, count: int) -> None:
        """Relay bridges that only relay in ``count`` worker processes (started on first use)."""
        from .workers import WorkerPool
        self.workers = WorkerPool(self, count) if count > 0 else None

    def _bind_pair(self, port: int) -> tuple[socket.socket, socket.socket]:
        socks = []
        try:
            for p in (port, port + 1):
                s = socket.socket(self._family, socket.SOCK_DGRAM)
                socks.append(s)
                s.setblocking(False)
                s.bind((self.bind_host, p))
        except BaseException:
            for s in socks:
                s.close()
            raise
        return socks[0], socks[1]

    async def open_endpoint(self) -> Endpoint:
        """Allocate a port pair and bind RTP + RTCP; skips pairs the OS says are in use."""
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        for _ in range(self.port_pool.capacity):
            try:
                port = self.port_pool.allocate()
            except PortPoolExhausted as exc:
                raise MediaError(str(exc)) from None
            try:
                rtp, rtcp = self._bind_pair(port)
            except OSError as exc:
                self.port_pool.release(port)     # back of the queue; try the next pair
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise MediaError(f"cannot bind {self.bind_host}:{port}: {exc}") from exc
            ep = Endpoint(self, self.bind_host, port, rtp, rtcp)
            try:
                for side in (ep._rtp, ep._rtcp):
                    if self._io == "reader":
                        side.start_reader(loop)
                    else:
                        await loop.create_datagram_endpoint(lambda side=side: side, sock=side.sock)
            except BaseException:
                ep._rtp.close()
                ep._rtcp.close()             # releases the port once both are closed
                raise
            self._endpoints.add(ep)
            return ep
        raise MediaError(f"no bindable RTP port pair in {self.port_pool.lo}..{self.port_pool.hi}")

    # The clock and the sound cache are imported on first use: a box that only
    # relays does not load ctypes, the tone tables or the WAV reader.

    @property
    def clock(self):
        """The engine's one 20 ms ``FrameClock`` (made on first use; runs only with subscribers)."""
        if self._clock is None:
            from .clock import FrameClock
            self._clock = FrameClock(self._loop or asyncio.get_running_loop())
        return self._clock

    @property
    def clock_stats(self):
        """The media clock's ``ClockStats``, or None while no clock was made (a relay-only box);
        read by the load probe without making one."""
        return None if self._clock is None else self._clock.stats

    @property
    def sounds(self):
        """The engine's ``SoundCache``: each prompt file decoded once for every playlist."""
        if self._sounds is None:
            from .player import SoundCache
            self._sounds = SoundCache()
        return self._sounds

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    def bridge(self, a: Endpoint, b: Endpoint) -> Bridge:
        """Relay between ``a`` and ``b``. Each endpoint may be in one bridge at a time."""
        if a is b:
            raise MediaError("cannot bridge an endpoint to itself")
        for ep in (a, b):
            if ep.closed:
                raise MediaError(f"{ep} is closed")
            if ep.bridge is not None:
                raise MediaError(f"{ep} is already bridged; close that bridge first")
            if ep.terminal is not None:
                raise MediaError(f"{ep} has a terminal; close it first")
        br = Bridge(self, a, b)
        self._bridges.add(br)
        if self.workers is not None:
            self.loop.call_soon(self.workers.offer, br)
        return br

    def check_timeouts(self, now: float) -> list[Bridge]:
        """Bridges where either endpoint received no RTP for longer than ``bridge.timeout``.

        Call about once a second with a monotonic ``now``. Each side is watched on its own:
        a phone that died while the other keeps talking is a dead call too. Silence is
        measured from the first check that saw the side quiet, so detection lags by at
        most one check interval. Each silent period is reported once; the watch re-arms
        when RTP flows again.
        """
        dead = []
        if self.workers is not None:
            if self.workers.lost:
                dead.extend(br for br in self.workers.lost if not br.closed)
                self.workers.lost.clear()
            self.workers.retire_idle(time.monotonic())
        for br in self._bridges:
            if br.timeout is None:
                continue
            a_in, b_in = br.a._rtp.packets_in, br.b._rtp.packets_in
            if br._since is None:
                br._seen, br._seen_b = a_in, b_in
                br._since = br._since_b = now
                continue
            if a_in != br._seen:
                br._seen, br._since = a_in, now
            if b_in != br._seen_b:
                br._seen_b, br._since_b = b_in, now
            quiet = now - min(br._since, br._since_b)
            if quiet <= br.timeout:
                br._reported = False
            elif not br._reported:
                br._reported = True
                dead.append(br)
        return dead

    @property
    def stats(self) -> dict:
        relayed = self._closed_relayed
        dropped = self._closed_dropped
        for ep in self._endpoints:
            relayed += ep._rtp.packets_out + ep._rtcp.packets_out
            dropped += ep.dropped
        return {
            "packets_relayed": relayed,
            "dropped": dropped,
            "endpoints_open": len(self._endpoints),
            "bridges": len(self._bridges),
            "ports_in_use": self.port_pool.in_use,
            "io": self._io,
            "workers": self.workers.stats if self.workers is not None else None,
        }

    def close(self) -> None:
        """Close every endpoint (and so every bridge)."""
        for ep in list(self._endpoints):
            ep.close()
        if self._clock is not None:
            self._clock.close()
        if self.workers is not None:
            self.workers.close()

    def _endpoint_closed(self, ep: Endpoint) -> None:
        self._endpoints.discard(ep)
        self._closed_relayed += ep._rtp.packets_out + ep._rtcp.packets_out
        self._closed_dropped += ep.dropped

    def _bridge_closed(self, br: Bridge) -> None:
        self._bridges.discard(br)
