"""Media on every core: bridges handed to worker processes (the PBX side).

The box's event loop does SIP, the PBX and everything the box itself plays or hears. A bridge
that only relays (pass-through, payload-type rewrite, µ-law/A-law translation) needs none of
that, so it is handed to a media worker: a child process (``firmware.media.worker``) with its
own event loop, one per core by default. The hand-over passes the bridge's four sockets over a
local control channel (a Unix SEQPACKET socket pair, SCM_RIGHTS): the port numbers, the SDP
the phones were given and any latched address stay exactly as they were, and no packet is lost
on the way (while neither process reads, datagrams wait in the socket's kernel buffer).

While a bridge is away the PBX process does not read its sockets; the worker sends its counters
every second (the RTP timeout check and ``/health`` keep working) and its latching state when
the bridge comes back. A bridge comes back when the PBX needs it in-process again (recording, a
DTMF converter or key watcher, a terminal on one of its endpoints) and when it is closed; the
worker answers ``released`` and only then does the PBX read the sockets again, so the two
never read one socket at the same time. A bridge closed with both its endpoints (a call that
ended) is only ``drop``ped: nobody reads those sockets again, so there is nothing to wait for.

A worker that dies takes only its own bridges with it: they are reported as lost (the PBX ends
those calls, with CDRs) and the next bridge starts a new worker. Workers start on first use,
so an idle box runs no worker and costs no memory for them.

Recording. A recorded bridge goes to a worker too, and is recorded there: the worker taps it
and writes the file (terminal.BridgeRecording, the same code as in the PBX process), so with N
workers the recorded audio is laid out and written on N cores and no packet of it crosses into
the PBX process. The PBX keeps the decisions (which bridge records, the file's name and format,
stop, detach and attach, the quota) and the events: a ``trip`` of the recording to a worker
begins with ``tap`` (or the ``bridge`` op), the file follows in ``record`` once the PBX closed
it, and comes back in ``recorded`` when the worker stops tapping, with the octets it wrote (the
store's running total), or the recording's end when the worker finished it there.

Wire format: one JSON object per datagram, ``op`` from the PBX, ``ev`` from a worker; sockets
ride along with the message that introduces a bridge.
"""

from __future__ import annotations

import array
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from .relay import Bridge, MediaEngine, _Side
    from .terminal import BridgeRecording

log = logging.getLogger("linebox.media")

_MAX_MESSAGE = 1 << 20
IDLE_SECONDS = 300.0            # a worker without a bridge this long is ended (~15 MB back)


def portable(xf: list | None) -> bool:
    """Whether a side's transform can travel to a worker: no converter object in it."""
    return xf is None or all(entry is None or type(entry) is tuple for entry in xf)


def encode_xf(xf: list | None):
    """A side's transform as JSON, or ``False`` when it holds a converter (stays in-process)."""
    if xf is None:
        return None
    tables: list[bytes] = []
    rows = []
    for pt, entry in enumerate(xf):
        if entry is None:
            continue
        if type(entry) is not tuple:
            return False
        new_pt, table = entry
        if table is None:
            index = -1
        else:
            table = bytes(table)
            if table not in tables:
                tables.append(table)
            index = tables.index(table)
        rows.append((pt, new_pt, index))
    return {"rows": rows, "tables": [t.hex() for t in tables]}


def decode_xf(spec) -> list | None:
    if spec is None:
        return None
    tables = [bytes.fromhex(t) for t in spec["tables"]]
    xf: list = [None] * 128
    for pt, new_pt, index in spec["rows"]:
        xf[pt] = (new_pt, tables[index] if index >= 0 else None)
    return xf


def side_state(side: "_Side") -> dict:
    """What a side's latching and counters are, for the process taking it over."""
    return {"sdp": side.sdp_dest, "latched": side.latched, "dest": side.dest, "connected": side.connected,
            "in": side.packets_in, "out": side.packets_out, "dropped": side.dropped}


def load_side_state(side: "_Side", state: dict) -> None:
    def addr(v):
        return tuple(v) if v is not None else None
    side.sdp_dest, side.latched, side.dest = addr(state["sdp"]), addr(state["latched"]), addr(state["dest"])
    side.packets_in, side.packets_out, side.dropped = state["in"], state["out"], state["dropped"]
    side.connected = state["connected"]   # the socket's own state, which both processes share


def encode_event(event) -> dict:
    """A recording's event (recorder.DiskFull, RecordingStopped) as JSON."""
    return {"type": type(event).__name__, **asdict(event)}


def decode_event(spec: dict):
    """The event ``encode_event`` made; ValueError for anything else (a worker's message is
    checked like any other input before its paths reach the recording store)."""
    from .recorder import DiskFull, RecordingStopped   # here: a worker that only relays never loads it
    kinds = {"DiskFull": DiskFull, "RecordingStopped": RecordingStopped}
    fields = dict(spec)
    try:
        return kinds[fields.pop("type")](**fields)
    except (KeyError, TypeError) as e:
        raise ValueError(f"not a recording event: {spec!r}") from e


def send_message(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(data)


def receive_message(sock: socket.socket) -> tuple[dict, list[int]] | None:
    """One message and the descriptors it carried; None at EOF. Raises BlockingIOError."""
    fds = array.array("i")
    data, ancdata, _flags, _addr = sock.recvmsg(_MAX_MESSAGE, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, cmsg in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cmsg[: len(cmsg) - (len(cmsg) % fds.itemsize)])
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    return json.loads(data), list(fds)


def _taken(worker: "Worker") -> int:
    """The bridges a worker relays or will (the least taken gets the next one)."""
    return len(worker.bridges) + len(worker.waiting)


class Worker:
    """One media worker process, seen from the PBX: its control socket and its bridges."""

    def __init__(self, pool: "WorkerPool", index: int) -> None:
        self.pool = pool
        self.index = index
        self.bridges: dict[int, "Bridge"] = {}   # id -> bridge relayed there (or being released)
        self.trips: dict[int, "BridgeRecording"] = {}   # trip id -> a recording tapped or written there
        self.reaped: "asyncio.Future | None" = None      # once it died: done when the process is gone
        self.ready = False
        self.dead = False
        self.waiting: list["Bridge"] = []        # offered before the worker said it was ready
        self.load: dict | None = None            # its last report: {"lag": s, "cpu": share of a core}
        self.idle_since: float | None = time.monotonic()  # no bridge since then (None: busy)
        self._out: deque[tuple[dict, list[int]]] = deque()
        self._writing = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (ours, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        ours.setblocking(False)
        self.sock = ours
        env = dict(os.environ)
        # the worker imports the firmware package from where this process did
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "firmware.media.worker", str(theirs.fileno()), str(index)],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.pid = self.process.pid
        pool.loop.add_reader(ours.fileno(), self._readable)

    def send(self, message: dict, fds: list[int] = ()) -> None:
        if self.dead:
            return
        if self._out:
            self._out.append((message, list(fds)))
            return
        try:
            send_message(self.sock, message, fds)
        except BlockingIOError:
            self._out.append((message, list(fds)))
            self._writing = True
            self.pool.loop.add_writer(self.sock.fileno(), self._flush)
        except OSError as exc:
            self._died(f"control channel: {exc}")

    def _flush(self) -> None:
        while self._out:
            message, fds = self._out[0]
            try:
                send_message(self.sock, message, fds)
            except BlockingIOError:
                return
            except OSError as exc:
                self._died(f"control channel: {exc}")
                return
            self._out.popleft()
        self.pool.loop.remove_writer(self.sock.fileno())
        self._writing = False

    def _readable(self) -> None:
        for _ in range(64):
            try:
                got = receive_message(self.sock)
            except BlockingIOError:
                return
            except (OSError, ValueError) as exc:
                self._died(f"control channel: {exc}")
                return
            if got is None:
                self._died("exited")
                return
            message, fds = got
            for fd in fds:       # a worker never sends sockets back: the PBX still holds its own
                os.close(fd)
            self.pool.handle(self, message)

    def _hang_up(self) -> bool:
        """Stop talking to the worker (it sees EOF and exits); False if that was done already."""
        if self.dead:
            return False
        self.dead = True
        loop = self.pool.loop
        loop.remove_reader(self.sock.fileno())
        if self._writing:
            loop.remove_writer(self.sock.fileno())
        self.sock.close()
        return True

    def _died(self, why: str) -> None:
        if not self._hang_up():
            return
        try:
            self.process.kill()
        except ProcessLookupError:
            pass
        # reap it without blocking the loop
        self.reaped = self.pool.loop.run_in_executor(None, self.process.wait)
        self.pool.worker_died(self, why)

    def retire(self) -> None:
        """End an idle worker without blocking the loop: it exits at EOF, reaped off the loop."""
        if self._hang_up():
            self.pool.loop.run_in_executor(None, self.process.wait)

    def close(self) -> None:
        if not self._hang_up():
            return
        try:
            self.process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class WorkerPool:
    """Hands bridges that only relay to worker processes; one worker per core by default."""

    def __init__(self, engine: "MediaEngine", count: int) -> None:
        if count < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.engine = engine
        self.count = count
        self.workers: list[Worker | None] = [None] * count
        self.lost: list["Bridge"] = []           # bridges of dead workers, for the PBX to end
        self.restarts = 0
        self._next_id = 1

    @property
    def loop(self) -> "asyncio.AbstractEventLoop":
        return self.engine.loop

    # -- decisions ------------------------------------------------------------------------------

    @staticmethod
    def eligible(br: "Bridge") -> bool:
        """A bridge that only relays, with both endpoints free of in-process users."""
        if br.closed or br.lost or br.queued or br.worker is not None:
            return False
        for ep in (br.a, br.b):
            if ep.closed or ep.terminal is not None or ep.bridge is not br or ep.worker is not None:
                return False
            rtp = ep._rtp
            if rtp.term is not None or not rtp._reading or not ep._rtcp._reading:
                return False
            if not portable(rtp.xf):
                return False
        return True

    def offer(self, br: "Bridge") -> None:
        """Relay ``br`` in a worker if it qualifies (called soon after it is made or changed)."""
        if not self.eligible(br):
            return
        worker = self._pick()
        if not worker.ready:
            br.queued = True
            worker.waiting.append(br)
            return
        self._hand_over(worker, br)

    def _pick(self) -> Worker:
        """The worker the next bridge goes to, starting any that is missing or dead."""
        for i, w in enumerate(self.workers):
            if w is None or w.dead:
                w = self.workers[i] = Worker(self, i)
                log.info("media worker %d started (pid %d)", i, w.pid)
        best = self._least_taken()
        assert best is not None
        return best

    def _least_taken(self) -> Worker | None:
        """The running worker with the fewest bridges, as ``_pick`` chooses; None while one is
        missing or dead (``_pick`` would start it, and it would take the bridge)."""
        best = None
        for w in self.workers:
            if w is None or w.dead:
                return None
            if best is None or _taken(w) < _taken(best):
                best = w
        return best

    def _hand_over(self, worker: Worker, br: "Bridge") -> None:
        bid = self._next_id
        self._next_id += 1
        sides = []
        fds = []
        for ep in (br.a, br.b):
            for side in (ep._rtp, ep._rtcp):
                side.stop_reader()
                sides.append(side_state(side))
                fds.append(side.sock.fileno())
        br.worker, br.worker_id = worker, bid
        br.a.worker = br.b.worker = worker
        worker.bridges[bid] = br
        worker.idle_since = None
        rec = br.recording
        trip = self._trip(worker, rec)
        worker.send({"op": "bridge", "id": bid, "ports": [br.a.local_port, br.b.local_port], "sides": sides,
                     "xf": [encode_xf(br.a._rtp.xf), encode_xf(br.b._rtp.xf)], "rec": trip}, fds)
        if trip is not None:
            rec._went_to(worker, trip[0])

    def _trip(self, worker: Worker, rec: "BridgeRecording | None") -> list | None:
        """A trip of ``rec`` to ``worker`` if it taps a bridge: what the worker is told, [trip
        id, laws]. The caller tells the recording once the op is sent, so the file never
        overtakes the op that begins its trip."""
        if rec is None or not rec.tapping:
            return None
        tid = self._next_id
        self._next_id += 1
        worker.trips[tid] = rec
        return [tid, list(rec.laws)]

    # -- changes the PBX makes to a bridge away -------------------------------------------------

    def transform_changed(self, br: "Bridge") -> None:
        specs = [encode_xf(br.a._rtp.xf), encode_xf(br.b._rtp.xf)]
        if False in specs:
            self.reclaim(br)
        else:
            br.worker.send({"op": "xf", "id": br.worker_id, "xf": specs})

    def taps_changed(self, br: "Bridge", rec: "BridgeRecording | None", finish: bool) -> None:
        """A recording began (``rec``) or stopped tapping ``br`` away: its trip to the worker
        begins, or ends (the file given back, or finished there with ``finish``)."""
        if br.releasing:
            return   # the release ends the trip; a recording that begins now does so here
        worker = br.worker
        trip = self._trip(worker, rec)
        worker.send({"op": "tap", "id": br.worker_id, "rec": trip, "finish": finish})
        if trip is not None:
            rec._went_to(worker, trip[0])

    def send_file(self, worker: Worker, tid: int, state: dict | None) -> None:
        """The recording's file to the trip waiting for it (TapRecording.suspend's description);
        None: it will not come (the recording ended), the trip's packets go nowhere."""
        if state is None:
            worker.trips.pop(tid, None)
        worker.send({"op": "record", "tid": tid, "file": state})

    def remote_changed(self, ep) -> None:
        br = ep.bridge
        if br is None or br.worker is None or br.releasing:
            return   # the release answer would overwrite it: it is re-sent after
        br.worker.send({"op": "remote", "id": br.worker_id, "side": 0 if ep is br.a else 1,
                        "rtp": ep._rtp.sdp_dest, "rtcp": ep._rtcp.sdp_dest})

    def let_go(self, br: "Bridge") -> None:
        """``br`` was closed: its worker stops relaying it. Decided a moment later: when a call
        ends its legs close their endpoints right after the bridge, and then the worker only
        drops its copies of the sockets: no answer to wait for, no socket to read again."""
        if br.worker is None or br.releasing:
            return
        br.releasing = True
        self.loop.call_soon(self._let_go, br)

    def _let_go(self, br: "Bridge") -> None:
        worker = br.worker
        if worker is None:
            return      # its worker died meanwhile (worker_died brought it back)
        if br.a.closed and br.b.closed:
            worker.send({"op": "drop", "id": br.worker_id})
            worker.bridges.pop(br.worker_id, None)
            self._came_back(br, None)
            if not worker.bridges:
                worker.idle_since = time.monotonic()
        else:
            self._release(br)

    def reclaim(self, br: "Bridge") -> None:
        """Bring ``br`` back into the PBX process; its sockets are read again once the worker let go."""
        if br.worker is None or br.releasing:
            return
        br.releasing = True
        self._release(br)

    @staticmethod
    def _release(br: "Bridge") -> None:
        br.worker.send({"op": "release", "id": br.worker_id})

    # -- what workers say -----------------------------------------------------------------------

    def handle(self, worker: Worker, message: dict) -> None:
        ev = message.get("ev")
        if ev == "stats":
            worker.load = message.get("load")
            for bid, a_rtp, a_rtcp, b_rtp, b_rtcp in message["bridges"]:
                br = worker.bridges.get(bid)
                if br is None or br.releasing:
                    continue
                for side, counts in ((br.a._rtp, a_rtp), (br.a._rtcp, a_rtcp), (br.b._rtp, b_rtp),
                                     (br.b._rtcp, b_rtcp)):
                    side.packets_in, side.packets_out, side.dropped = counts
        elif ev == "released":
            br = worker.bridges.pop(message["id"], None)
            if br is not None:
                self._came_back(br, message["sides"])
            if not worker.bridges:
                worker.idle_since = time.monotonic()
        elif ev == "recorded":
            rec = worker.trips.pop(message["tid"], None)
            if rec is not None:
                rec._back(worker, message["tid"], message)
        elif ev == "ready":
            worker.ready = True
            waiting, worker.waiting = worker.waiting, []
            for br in waiting:
                br.queued = False
                if self.eligible(br):
                    self._hand_over(worker, br)
        else:
            log.warning("media worker %d: unknown message %r", worker.index, ev)

    def _came_back(self, br: "Bridge", states: list[dict] | None) -> None:
        br.worker = br.worker_id = None
        br.releasing = False
        sides = [(ep, side) for ep in (br.a, br.b) for side in (ep._rtp, ep._rtcp)]
        for i, (ep, side) in enumerate(sides):
            ep.worker = None
            if states is not None:
                sdp = side.sdp_dest
                load_side_state(side, states[i])
                if sdp != side.sdp_dest:      # a re-INVITE while the release was on its way
                    side.set_remote(sdp)
            if not ep.closed:
                side.start_reader(self.loop)
        if not br.closed:
            self.loop.call_soon(self.offer, br)   # e.g. a transform without converters again
        else:
            for ep in (br.a, br.b):
                if not ep.closed and ep.bridge is not None and ep.bridge is not br:
                    self.loop.call_soon(self.offer, ep.bridge)

    def worker_died(self, worker: Worker, why: str) -> None:
        lost = [br for br in worker.bridges.values() if not br.closed]
        log.error("media worker %d (pid %d) %s; ending its %d call(s)", worker.index, worker.pid, why, len(lost))
        self.restarts += 1
        for br in lost:
            br.lost = True
        for br in list(worker.bridges.values()):
            self._came_back(br, None)
        worker.bridges.clear()
        trips, worker.trips = worker.trips, {}
        for tid, rec in trips.items():
            rec._lost(worker, tid)
        for br in worker.waiting:
            br.queued = False
            self.loop.call_soon(self.offer, br)
        worker.waiting.clear()
        self.lost.extend(lost)

    # -- the whole pool -------------------------------------------------------------------------

    def retire_idle(self, now: float, idle: float = IDLE_SECONDS) -> None:
        """End the workers that relayed nothing for ``idle`` seconds (``now``: time.monotonic());
        the next call starts them again. An office box is idle most of the night."""
        for i, w in enumerate(self.workers):
            if (w is not None and not w.dead and not w.bridges and not w.waiting and not w.trips
                    and w.idle_since is not None and now - w.idle_since >= idle):
                log.info("media worker %d (pid %d) idle for %.0f s: ended", i, w.pid, now - w.idle_since)
                w.retire()
                self.workers[i] = None

    def load(self) -> tuple[float, float] | None:
        """The busiest worker's loop lag (s) and CPU share of a core, from their last reports;
        None without a running worker. A saturated worker drops its calls' packets, so it is
        as much a reason to refuse new calls as a saturated PBX loop."""
        reports = [w.load for w in self.workers if w is not None and not w.dead and w.load]
        if not reports:
            return None
        return max(r["lag"] for r in reports), max(r["cpu"] for r in reports)

    def projected_share(self) -> float | None:
        """The share of its core that the worker the next call would go to would use with that
        call too: its last reported share, scaled by its bridges now (and this one) over the
        bridges it carried on average while it measured that share (firmware.pbx.admission,
        "media capacity"). None while no worker reported a bridge, or when a worker not started
        yet would take the call."""
        best = self._least_taken()
        load = best.load if best is not None else None
        if not load or not load.get("bridges"):
            return None
        return load["cpu"] * (_taken(best) + 1) / load["bridges"]

    @property
    def stats(self) -> dict:
        live = [w for w in self.workers if w is not None and not w.dead]
        return {"workers": self.count, "running": len(live), "restarts": self.restarts,
                "bridges": [len(w.bridges) for w in live], "pids": [w.pid for w in live],
                "load": [w.load for w in live]}

    def close(self) -> None:
        for w in self.workers:
            if w is not None:
                w.close()
