"""A media worker process: relays the bridges the PBX hands it (see workers.py).

Started by the PBX as ``python -m firmware.media.worker FD INDEX`` with FD one end of the
control socket pair. It runs the same relay code as the PBX process (relay.Endpoint and
relay.Bridge over the sockets it was given), reports counters every second and gives a bridge
back on ``release``. A recorded bridge is recorded here, with the PBX's code too
(terminal.BridgeRecording): the file comes in ``record`` and goes back in ``recorded``.
EOF on the control socket (the PBX stopped or died) ends it; a file it was writing is left a
``.part``, which the PBX's next start recovers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
import time
from collections import deque
from functools import partial

from .cpushare import allowed_share
from .relay import Bridge, Endpoint, MediaEngine
from .workers import decode_xf, encode_event, load_side_state, receive_message, send_message, side_state

log = logging.getLogger("linebox.media.worker")

STATS_INTERVAL = 1.0


class _Adopted:
    """The port pool of a worker: ports belong to the PBX, which binds and frees them."""

    lo = hi = capacity = 0
    in_use = 0

    def release(self, port: int) -> None:
        pass


class _Trip:
    """A recording's stay here (a trip, see workers.py): its bridge, and what the PBX is told
    when it ends: the octets the file grew by (``CallRecorder``'s account) and its events (the
    file's final name among them: the PBX checks them against the file it sent)."""

    __slots__ = ("bid", "rec", "octets", "events")

    def __init__(self, bid: int) -> None:
        self.bid = bid
        self.rec = None                      # its terminal.BridgeRecording
        self.octets = 0
        self.events: list = []

    def __call__(self, delta: int, finished: str | None) -> None:
        self.octets += delta


class WorkerLoop:
    def __init__(self, control: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.control = control
        self.loop = loop
        self.engine = MediaEngine(bind_host="127.0.0.1", port_pool=_Adopted(), loop=loop)  # type: ignore[arg-type]
        self.bridges: dict[int, Bridge] = {}
        # bridge-seconds since the last report: its load is reported per mean bridge, so calls
        # ramping in do not make each look cheaper than it is (admission projects from it)
        self._bridge_s = 0.0
        self._counted_at = loop.time()
        self.trips: dict[int, _Trip] = {}    # trip id -> a recording tapping a bridge here or writing its file
        self.tapping: dict[int, int] = {}    # bridge id -> the trip tapping it
        self.done = loop.create_future()
        self._due = 0.0
        self._cpu0 = 0.0
        self._received_closed = 0            # packets taken in by bridges given back or closed
        self._out: deque[bytes] = deque()    # datagrams the control socket had no room for

    def start(self) -> None:
        self.control.setblocking(False)
        self.loop.add_reader(self.control.fileno(), self._readable)
        send_message(self.control, {"ev": "ready"})
        self._due = self.loop.time() + STATS_INTERVAL
        self._cpu0 = time.process_time()
        self.loop.call_at(self._due, self._stats)

    def _readable(self) -> None:
        while True:
            try:
                got = receive_message(self.control)
            except BlockingIOError:
                return
            except OSError:
                got = None
            if got is None:
                self._finish()
                return
            message, fds = got
            try:
                self._handle(message, fds)
            except Exception:
                log.exception("media worker: cannot handle %r", message.get("op"))

    def _handle(self, message: dict, fds: list[int]) -> None:
        op = message["op"]
        if op == "bridge":
            socks = [socket.socket(fileno=fd) for fd in fds]
            for s in socks:
                s.setblocking(False)
            eps = []
            for i, port in enumerate(message["ports"]):
                ep = Endpoint(self.engine, self.engine.bind_host, port, socks[2 * i], socks[2 * i + 1])
                load_side_state(ep._rtp, message["sides"][2 * i])
                load_side_state(ep._rtcp, message["sides"][2 * i + 1])
                for side in (ep._rtp, ep._rtcp):
                    side.start_reader(self.loop)
                self.engine._endpoints.add(ep)
                eps.append(ep)
            br = self.engine.bridge(eps[0], eps[1])
            br.a._rtp.xf, br.b._rtp.xf = (decode_xf(x) for x in message["xf"])
            self._count_bridges()
            self.bridges[message["id"]] = br
            self._tap(message["id"], br, message["rec"])
        elif op == "tap":
            br = self.bridges.get(message["id"])
            if br is not None:
                self._untap(message["id"], br, message["finish"])
                self._tap(message["id"], br, message["rec"])
        elif op == "record":
            self._record(message["tid"], message["file"])
        elif op == "xf":
            br = self.bridges.get(message["id"])
            if br is not None:
                br.a._rtp.xf, br.b._rtp.xf = (decode_xf(x) for x in message["xf"])
        elif op == "remote":
            br = self.bridges.get(message["id"])
            if br is not None:
                ep = br.a if message["side"] == 0 else br.b
                ep._rtp.set_remote(tuple(message["rtp"]))
                ep._rtcp.set_remote(tuple(message["rtcp"]))
        elif op in ("release", "drop"):
            self._count_bridges()
            br = self.bridges.pop(message["id"], None)
            if br is None:
                return
            self._untap(message["id"], br, finish=False)
            sides = [side_state(side) for ep in (br.a, br.b) for side in (ep._rtp, ep._rtcp)]
            self._received_closed += sum(state["in"] for state in sides)
            br.close()
            for ep in (br.a, br.b):
                ep.close()     # closes this process's copies; the PBX keeps its own
            if op == "release":     # "drop": the PBX closed its sockets too and waits for nothing
                self._send_event({"ev": "released", "id": message["id"], "sides": sides})
        else:
            log.warning("media worker: unknown op %r", op)

    def _tap(self, bid: int, br: Bridge, spec: list | None) -> None:
        """A trip begins: the bridge's packets are taken for the recording whose file comes."""
        if spec is None:
            return
        from .terminal import BridgeRecording   # the recorder is loaded only by workers that record
        tid, laws = spec
        trip = self.trips[tid] = _Trip(bid)
        trip.rec = br.recording = BridgeRecording(self.engine, br, None, tuple(laws),
                                                  partial(self._event, tid), account=trip)
        self.tapping[bid] = tid

    def _untap(self, bid: int, br: Bridge, finish: bool) -> None:
        """The bridge's trip ends: its file goes back to the PBX, or is finished here."""
        tid = self.tapping.pop(bid, None)
        br.recording = None
        trip = self.trips.get(tid) if tid is not None else None
        if trip is None:
            return
        if finish:
            trip.rec.stop()               # its RecordingStopped goes to _event
        else:
            trip.rec.suspend().add_done_callback(partial(self._given_back, tid))

    def _record(self, tid: int, state: dict | None) -> None:
        trip = self.trips.get(tid)
        if trip is None:
            return
        if state is not None:
            trip.rec.resume(state)
            return
        del self.trips[tid]               # it ended in the PBX meanwhile: the packets go nowhere
        if self.tapping.get(trip.bid) == tid:
            del self.tapping[trip.bid]
            self.bridges[trip.bid].recording = None
        trip.rec.abandon()

    def _given_back(self, tid: int, fut: asyncio.Future) -> None:
        state = fut.result()
        trip = self.trips.pop(tid, None)
        if trip is not None and state is not None:
            self._send_event({"ev": "recorded", "tid": tid, "file": state, "written": trip.octets})

    def _event(self, tid: int, event) -> None:
        """A recording here ended (stopped, disk full, a write error): its events, its file's
        growth and final name to the PBX, once its RecordingStopped (the last) comes."""
        from .recorder import RecordingStopped
        trip = self.trips.get(tid)
        if trip is None:
            return
        trip.events.append(encode_event(event))
        if isinstance(event, RecordingStopped):
            del self.trips[tid]
            self._send_event({"ev": "recorded", "tid": tid, "events": trip.events, "written": trip.octets})

    def _send_event(self, message: dict) -> None:
        self._send(json.dumps(message, separators=(",", ":")).encode())

    def _send(self, data: bytes) -> None:
        """Sends in order; what the socket has no room for waits here (never blocks the relay)."""
        if not self._out:
            try:
                self.control.send(data)
                return
            except BlockingIOError:
                self.loop.add_writer(self.control.fileno(), self._flush)
            except OSError:
                self._finish()
                return
        self._out.append(data)

    def _flush(self) -> None:
        while self._out:
            try:
                self.control.send(self._out[0])
            except BlockingIOError:
                return
            except OSError:
                self._finish()
                return
            self._out.popleft()
        self.loop.remove_writer(self.control.fileno())

    def _count_bridges(self) -> None:
        now = self.loop.time()
        self._bridge_s += len(self.bridges) * (now - self._counted_at)
        self._counted_at = now

    def _stats(self) -> None:
        """Counters for the PBX, and this worker's load for its admission control: how late
        this report is (the loop's lag, what every packet here waits too) and the share of a
        core the worker used since the last one, of what its cgroup lets it use (cpushare)."""
        if self.done.done():
            return
        now = self.loop.time()
        lag = max(0.0, now - self._due)
        cpu = time.process_time()
        self._count_bridges()
        mean_bridges = self._bridge_s / (STATS_INTERVAL + lag)
        self._bridge_s = 0.0
        # the counters' own time and this worker's running total (closed bridges included): a
        # rate taken between two reports is exact, whenever /health is read (scripts/bench_sipp.py)
        load = {"lag": lag, "cpu": (cpu - self._cpu0) / (STATS_INTERVAL + lag) / allowed_share(),
                "bridges": mean_bridges, "at": time.monotonic(), "relayed": self.engine.stats["packets_relayed"],
                "received": self._received_closed + sum(s.packets_in for br in self.bridges.values()
                                                        for ep in (br.a, br.b) for s in (ep._rtp, ep._rtcp))}
        self._cpu0 = cpu
        rows = []
        for bid, br in self.bridges.items():
            rows.append([bid] + [[s.packets_in, s.packets_out, s.dropped]
                                 for ep in (br.a, br.b) for s in (ep._rtp, ep._rtcp)])
        self._send_event({"ev": "stats", "bridges": rows, "load": load})
        if self.done.done():
            return
        self._due = self.loop.time() + STATS_INTERVAL
        self.loop.call_at(self._due, self._stats)

    def _finish(self) -> None:
        if self.done.done():
            return
        self.loop.remove_reader(self.control.fileno())
        if self._out:
            self.loop.remove_writer(self.control.fileno())
        for trip in self.trips.values():    # nobody to hand a file to: the next start recovers it
            trip.rec.abandon()
        self.trips.clear()
        for br in self.bridges.values():
            br.recording = None
        self.engine.close()
        self.done.set_result(None)


async def _main(fd: int) -> None:
    loop = asyncio.get_running_loop()
    control = socket.socket(fileno=fd)
    worker = WorkerLoop(control, loop)
    worker.start()
    await worker.done


def main(argv: list[str]) -> int:
    fd = int(argv[1])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s media-worker-{argv[2] if len(argv) > 2 else '?'}: "
                               "%(message)s")
    # The PBX ends its workers by closing the control socket; a Ctrl-C at a terminal reaches
    # the whole process group and must not kill a worker before the PBX has let go of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop  # the relay costs about a third less per packet on uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_main(fd))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
