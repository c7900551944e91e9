"""A media worker process: relays the bridges the PBX hands it (see workers.py).

Started by the PBX as ``python -m firmware.media.worker FD INDEX`` with FD one end of the
control socket pair. It runs the same relay code as the PBX process (relay.Endpoint and
relay.Bridge over the sockets it was given), reports counters every second and gives a bridge
back on ``release``. EOF on the control socket (the PBX stopped or died) ends it.
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

from .cpushare import allowed_share
from .relay import Bridge, Endpoint, MediaEngine
from .workers import TAP_EVERY, decode_xf, load_side_state, pack_taps, receive_message, send_message, side_state

log = logging.getLogger("linebox.media.worker")

STATS_INTERVAL = 1.0
BACKLOG = 8 << 20     # octets queued for a PBX that does not read before recorded audio is dropped


class _Adopted:
    """The port pool of a worker: ports belong to the PBX, which binds and frees them."""

    lo = hi = capacity = 0
    in_use = 0

    def release(self, port: int) -> None:
        pass


class WorkerLoop:
    def __init__(self, control: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.control = control
        self.loop = loop
        self.engine = MediaEngine(bind_host="127.0.0.1", port_pool=_Adopted(), loop=loop)  # type: ignore[arg-type]
        self.bridges: dict[int, Bridge] = {}
        self.taps: dict[int, tuple[list, list]] = {}   # recorded bridges: packets taken since the last forward
        self.done = loop.create_future()
        self._due = 0.0
        self._cpu0 = 0.0
        self._received_closed = 0            # packets taken in by bridges given back or closed
        self._out: deque[bytes] = deque()    # datagrams the control socket had no room for
        self._backlog = 0
        self._dropping = False

    def start(self) -> None:
        self.control.setblocking(False)
        self.loop.add_reader(self.control.fileno(), self._readable)
        send_message(self.control, {"ev": "ready"})
        self._due = self.loop.time() + STATS_INTERVAL
        self._cpu0 = time.process_time()
        self.loop.call_at(self._due, self._stats)
        self.loop.call_later(TAP_EVERY, self._forward_taps)

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
            self.bridges[message["id"]] = br
            self._set_taps(message["id"], br, message["taps"])
        elif op == "tap":
            br = self.bridges.get(message["id"])
            if br is not None:
                self._set_taps(message["id"], br, message["taps"])
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
        elif op == "release":
            br = self.bridges.pop(message["id"], None)
            if br is None:
                return
            self._forward_taps(only=message["id"])   # before "released": the socket keeps order
            self.taps.pop(message["id"], None)
            sides = [side_state(side) for ep in (br.a, br.b) for side in (ep._rtp, ep._rtcp)]
            self._received_closed += sum(state["in"] for state in sides)
            br.close()
            for ep in (br.a, br.b):
                ep.close()     # closes this process's copies; the PBX keeps its own
            self._send(json.dumps({"ev": "released", "id": message["id"], "sides": sides},
                                  separators=(",", ":")).encode())
        else:
            log.warning("media worker: unknown op %r", op)

    def _set_taps(self, bid: int, br: Bridge, on: list[bool]) -> None:
        if not any(on):
            self._forward_taps(only=bid)
            self.taps.pop(bid, None)
            br.a._rtp.tap = br.b._rtp.tap = None
            return
        lists = self.taps.get(bid)
        if lists is None:
            lists = self.taps[bid] = ([], [])
        br.a._rtp.tap = lists[0].append if on[0] else None
        br.b._rtp.tap = lists[1].append if on[1] else None

    def _forward_taps(self, only: int | None = None) -> None:
        """What the taps took since the last time, to the PBX process (its recordings)."""
        batches = []
        for bid, lists in (self.taps.items() if only is None else
                           [(only, self.taps[only])] if only in self.taps else []):
            for side, packets in enumerate(lists):
                if packets:
                    batches.append((bid, side, packets[:]))
                    packets.clear()
        for data in pack_taps(batches):
            if self._backlog + len(data) > BACKLOG:
                if not self._dropping:    # once per episode, not once per datagram
                    log.warning("media worker: the PBX is not reading; recorded audio is being dropped")
                    self._dropping = True
                continue
            self._send(data)
        if only is None and not self.done.done():
            self.loop.call_later(TAP_EVERY, self._forward_taps)

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
        self._backlog += len(data)

    def _flush(self) -> None:
        while self._out:
            try:
                self.control.send(self._out[0])
            except BlockingIOError:
                return
            except OSError:
                self._finish()
                return
            self._backlog -= len(self._out.popleft())
        self.loop.remove_writer(self.control.fileno())
        self._dropping = False

    def _stats(self) -> None:
        """Counters for the PBX, and this worker's load for its admission control: how late
        this report is (the loop's lag, what every packet here waits too) and the share of a
        core the worker used since the last one, of what its cgroup lets it use (cpushare)."""
        if self.done.done():
            return
        now = self.loop.time()
        lag = max(0.0, now - self._due)
        cpu = time.process_time()
        # the counters' own time and this worker's running total (closed bridges included): a
        # rate taken between two reports is exact, whenever /health is read (scripts/bench_sipp.py)
        load = {"lag": lag, "cpu": (cpu - self._cpu0) / (STATS_INTERVAL + lag) / allowed_share(),
                "bridges": len(self.bridges), "at": time.monotonic(), "relayed": self.engine.stats["packets_relayed"],
                "received": self._received_closed + sum(s.packets_in for br in self.bridges.values()
                                                        for ep in (br.a, br.b) for s in (ep._rtp, ep._rtcp))}
        self._cpu0 = cpu
        rows = []
        for bid, br in self.bridges.items():
            rows.append([bid] + [[s.packets_in, s.packets_out, s.dropped]
                                 for ep in (br.a, br.b) for s in (ep._rtp, ep._rtcp)])
        # Always sent, behind any recorded audio still queued: the PBX times calls out on these
        # counters, and a PBX too busy to read the taps must not take live calls for dead ones.
        self._send(json.dumps({"ev": "stats", "bridges": rows, "load": load}, separators=(",", ":")).encode())
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
