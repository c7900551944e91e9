"""The thin asyncio adapter between sockets and the sans-I/O `SipEndpoint` (RFC 3261 §18).

Like aioquic's `QuicConnectionProtocol`: bytes that arrive go through the
`admit` guard into `endpoint.receive(..., now=loop.time())`; then one
`_flush()` hands the endpoint's events to `on_event`, sends what it wants sent
and re-arms ONE `loop.call_at` timer at `endpoint.get_timer()`. The logic lives
in the endpoint; if this module grows, something leaked out of it.

UDP and TCP listen on the same port. TCP connections are framed by a
`StreamFramer` each, carry a `conn_id` in their flows, answer RFC 5626 CRLF
keep-alive pings, and are closed on a framing error (after a 400 when one can
be built) or when idle for `tcp_idle_timeout`. Sending over a TCP flow uses its
connection while it is open, else any open connection to the same remote, else
a new connection; when that fails the endpoint reports `RequestTimeout` for the
transactions that were sending over it.
"""

from __future__ import annotations

import asyncio
import os
import logging
import socket
from typing import Callable

from .endpoint import Addr, Event, Flow, SipEndpoint
from .framing import StreamFramer
from .message import ParseError, Request, Response, make_error_response, new_tag
from .transaction import ClientTransaction, ServerTransaction

__all__ = ["SipTransport"]

log = logging.getLogger(__name__)

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def _errno(exc: OSError) -> int | None:
    """uvloop wraps the bind error in one without errno; the cause keeps it."""
    while exc is not None and exc.errno is None and isinstance(exc.__cause__, OSError):
        exc = exc.__cause__
    return exc.errno


def _reason(exc: OSError) -> str:
    code = _errno(exc)
    return os.strerror(code) if code else str(exc)


def _admit_all(data: bytes, addr: Addr, transport: str) -> bool:
    return True


UDP_RCVBUF = 4 * 1024 * 1024


class SipTransport:
    """UDP + TCP SIP transport for one endpoint (see the module docstring).

    Args:
        endpoint: the sans-I/O endpoint it feeds.
        on_event: the TU; called with each endpoint event (exceptions are logged).
        admit: called with (bytes, source address, "udp"|"tcp") for every datagram and
            every framed TCP message before parsing; False drops it silently.
        max_datagram: larger UDP datagrams are dropped.
        tcp_max_buffer: bytes a TCP connection may hold while a message is incomplete.
        tcp_idle_timeout: seconds without traffic before a TCP connection is closed.
        tcp_connect_timeout: seconds an outgoing TCP connect may take.
        advertise: the host to write in Via (flow.local) when bound to a wildcard
            address; default: the local address the kernel routes to each peer from.
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        on_event: Callable[[Event], None],
        admit: Callable[[bytes, Addr, str], bool] = _admit_all,
        loop: asyncio.AbstractEventLoop | None = None,
        max_datagram: int = 65535,
        tcp_max_buffer: int = 65536,
        tcp_idle_timeout: float = 3600,
        tcp_connect_timeout: float = 10.0,
        advertise: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.admit = admit
        self._loop = loop
        self.max_datagram = max_datagram
        self.tcp_max_buffer = tcp_max_buffer
        self.tcp_idle_timeout = tcp_idle_timeout
        self.tcp_connect_timeout = tcp_connect_timeout
        self.advertise = advertise
        self.local_udp: Addr = ("", 0)  #: our address as written in Via / Contact
        self.local_tcp: Addr = ("", 0)
        self._bound_host = ""
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.base_events.Server | None = None
        self._conns: dict[int, _TcpConnection] = {}
        self._by_remote: dict[Addr, _TcpConnection] = {}
        self._next_conn = 1
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._flushing = False
        self._closed = False
        self._route_cache: dict[str, str] = {}
        self._tasks: set[asyncio.Task] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        """Bind UDP and TCP on host:port (port 0: a free port, the same for both).
        Raises OSError naming the address when it is in use."""
        loop = self.loop
        attempts = 20 if port == 0 else 1
        for attempt in range(attempts):
            try:
                udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=(host, port))
            except OSError as exc:
                raise OSError(_errno(exc), f"SIP: cannot bind UDP {host}:{port}: {_reason(exc)}") from exc
            bound = udp.get_extra_info("sockname")[1]
            sock = udp.get_extra_info("socket")
            if sock is not None:
                # A burst of requests (a whole office re-registering after a power cut) must
                # queue in the kernel rather than be dropped; the default is ~200 KB.
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
                except OSError:
                    pass
            try:
                server = await loop.create_server(
                    lambda: _TcpConnection(self, None), host, bound, reuse_address=True
                )
            except OSError as exc:
                udp.close()
                if attempt + 1 < attempts:
                    continue  # port 0: the UDP port was free, its TCP twin was not
                raise OSError(_errno(exc), f"SIP: cannot bind TCP {host}:{bound}: {_reason(exc)}") from exc
            break
        self._udp = udp  # type: ignore[assignment]
        self._server = server
        self._bound_host = host
        advertised = self.advertise or host
        self.local_udp = (advertised, bound)
        self.local_tcp = (advertised, bound)

    async def close(self) -> None:
        """Stop the timer, close the sockets and every TCP connection."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._udp is not None:
            self._udp.close()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._conns.values()):
            conn.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run

    # -- the TU's verbs (the endpoint's, with now = loop.time(), then flush) --------------------

    def send_request(self, request: Request, flow: Flow) -> ClientTransaction:
        tx = self.endpoint.send_request(request, flow, self.loop.time())
        self._flush()
        return tx

    def send_response(self, tx: ServerTransaction, response: Response) -> None:
        self.endpoint.send_response(tx, response, self.loop.time())
        self._flush()

    def send_ack(self, ack: Request, flow: Flow) -> None:
        self.endpoint.send_ack(ack, flow)
        self._flush()

    def answer_statelessly(self, tx: ServerTransaction, response: Response) -> None:
        self.endpoint.answer_statelessly(tx, response, self.loop.time())
        self._flush()

    def send_stateless(self, msg: Request | Response, flow: Flow) -> None:
        self.endpoint.send_stateless(msg, flow)
        self._flush()

    # -- flows --------------------------------------------------------------------------

    def udp_flow(self, remote: Addr) -> Flow:
        """The flow to send to `remote` over our UDP socket."""
        return Flow("udp", remote, self._local_for(remote, self.local_udp))

    def tcp_flow(self, remote: Addr) -> Flow:
        """A flow to `remote` over TCP (an open connection to it, else a new one)."""
        conn = self._by_remote.get(remote)
        conn_id = conn.conn_id if conn is not None and conn.is_open else None
        return Flow("tcp", remote, self._local_for(remote, self.local_tcp), conn_id)

    def flow_is_open(self, flow: Flow) -> bool:
        """Whether something can be sent over `flow` without opening a connection."""
        if flow.transport == "udp":
            return self._udp is not None and not self._udp.is_closing()
        conn = self._conns.get(flow.conn_id) if flow.conn_id is not None else None
        if conn is not None and conn.is_open:
            return True
        conn = self._by_remote.get(flow.remote)
        return conn is not None and conn.is_open

    def _local_for(self, remote: Addr, local: Addr) -> Addr:
        if self.advertise or local[0] not in _WILDCARDS:
            return local
        ip = remote[0]
        host = self._route_cache.get(ip)
        if host is None:
            host = _route_to(ip)
            if len(self._route_cache) >= 4096:
                self._route_cache.clear()
            self._route_cache[ip] = host
        return (host, local[1])

    # -- receiving ----------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: tuple) -> None:
        if len(data) > self.max_datagram:
            return
        remote = (addr[0], addr[1])
        try:
            if not self.admit(data, remote, "udp"):
                return
            self.endpoint.receive(data, Flow("udp", remote, self._local_for(remote, self.local_udp)), self.loop.time())
        except Exception:
            log.exception("SIP: error handling a datagram from %s", remote)
        self._flush()

    def _stream_message(self, conn: _TcpConnection, data: bytes) -> None:
        try:
            if not self.admit(data, conn.remote, "tcp"):
                return
            self.endpoint.receive(data, Flow("tcp", conn.remote, conn.local, conn.conn_id), self.loop.time())
        except Exception:
            log.exception("SIP: error handling a message from %s over TCP", conn.remote)

    # -- sending, events, the timer ----------------------------------------------------------

    def _flush(self) -> None:
        """Deliver events, send datagrams, re-arm the timer. Re-entrant calls (the TU
        answering from inside on_event) return at once; the outer loop sees their work."""
        if self._flushing:
            return
        self._flushing = True
        ep = self.endpoint
        try:
            while True:
                event = ep.next_event()
                if event is not None:
                    try:
                        self.on_event(event)
                    except Exception:
                        log.exception("SIP: the TU failed on %r", event)
                    continue
                out = ep.datagrams_to_send()
                if not out:
                    break
                for data, flow in out:
                    self._send(data, flow)
        finally:
            self._flushing = False
        self._arm()

    def _send(self, data: bytes, flow: Flow) -> None:
        if self._closed:
            return
        if flow.transport == "udp":
            if self._udp is not None:
                self._udp.sendto(data, flow.remote)
            return
        conn = self._conns.get(flow.conn_id) if flow.conn_id is not None else None
        if conn is None or not conn.usable:
            conn = self._by_remote.get(flow.remote)
            if conn is None or not conn.usable:
                conn = self._connect(flow.remote)
        conn.write(data)

    def _arm(self) -> None:
        when = self.endpoint.get_timer()
        if when == self._timer_when or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timer) if when is not None else None
        self._timer_when = when

    def _on_timer(self) -> None:
        when = self._timer_when or 0.0
        self._timer = None
        self._timer_when = None
        try:
            # call_at may run a hair early (clock resolution): never before the deadline
            self.endpoint.handle_timer(max(self.loop.time(), when))
        except Exception:
            log.exception("SIP: endpoint timer failed")
        self._flush()

    # -- TCP connections ---------------------------------------------------------------------

    def _register(self, conn: _TcpConnection) -> None:
        conn.conn_id = self._next_conn
        self._next_conn += 1
        self._conns[conn.conn_id] = conn
        self._by_remote[conn.remote] = conn

    def _unregister(self, conn: _TcpConnection) -> None:
        self._conns.pop(conn.conn_id, None)
        if self._by_remote.get(conn.remote) is conn:
            del self._by_remote[conn.remote]

    def _connect(self, remote: Addr) -> _TcpConnection:
        conn = _TcpConnection(self, remote)
        conn.local = self._local_for(remote, self.local_tcp)
        self._register(conn)
        task = self.loop.create_task(self._open(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return conn

    async def _open(self, conn: _TcpConnection) -> None:
        host, port = conn.remote
        try:
            async with asyncio.timeout(self.tcp_connect_timeout):
                await self.loop.create_connection(lambda: conn, host, port)
        except (OSError, TimeoutError) as exc:
            log.info("SIP: TCP connect to %s failed: %s", conn.remote, exc)
            conn.failed()


class _UdpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("owner",)

    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.owner._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the transaction timers handle the loss
        log.debug("SIP: UDP error %s", exc)


class _TcpConnection(asyncio.Protocol):
    """One TCP connection, accepted (remote None until connection_made) or opened
    by us towards `remote` (bytes written before it connects are held)."""

    def __init__(self, owner: SipTransport, remote: Addr | None) -> None:
        self.owner = owner
        self.remote: Addr = remote or ("", 0)
        self.local: Addr = owner.local_tcp
        self.conn_id = 0
        self.transport: asyncio.Transport | None = None
        self.framer = StreamFramer(max_buffer=owner.tcp_max_buffer, max_message=owner.tcp_max_buffer)
        self.pending: list[bytes] | None = [] if remote is not None else None
        self.closed = False
        self.last_activity = owner.loop.time()
        self._idle: asyncio.TimerHandle | None = None

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.closed and not self.transport.is_closing()

    @property
    def usable(self) -> bool:
        """Open, or still connecting."""
        return not self.closed and (self.transport is None or not self.transport.is_closing())

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        owner = self.owner
        if self.pending is None:  # accepted
            peer = transport.get_extra_info("peername")
            self.remote = (peer[0], peer[1])
            sock = transport.get_extra_info("sockname")
            host = owner.advertise or (sock[0] if owner._bound_host in _WILDCARDS else owner.local_tcp[0])
            self.local = (host, owner.local_tcp[1])
            owner._register(self)
        else:
            for data in self.pending:
                self.transport.write(data)
            self.pending = None
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.owner.loop.time()
        try:
            messages = self.framer.feed(data)
        except ParseError as err:
            self._framing_lost(err)
            return
        pings = self.framer.pop_pings()
        if pings and self.transport is not None:
            self.transport.write(b"\r\n" * pings)  # RFC 5626 §4.4.1 pong
        if messages:
            for message in messages:
                self.owner._stream_message(self, message)
            self.owner._flush()
        if self.framer.error is not None:
            self._framing_lost(self.framer.error)

    def _framing_lost(self, err: ParseError) -> None:
        """Answer if there is enough to answer, then close: the stream cannot be followed."""
        response = make_error_response(err, to_tag=new_tag())
        if response is not None and self.transport is not None:
            self.transport.write(bytes(response))
        self.close()

    def eof_received(self) -> bool:
        return False  # the peer is done: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self.owner._unregister(self)

    # -- ours

    def write(self, data: bytes) -> None:
        self.last_activity = self.owner.loop.time()
        if self.transport is None:
            if self.pending is not None:
                self.pending.append(data)
        elif not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()  # flushes what is buffered first
        else:
            self.owner._unregister(self)

    def failed(self) -> None:
        """The connect failed: the endpoint fails what was sending over it."""
        self.closed = True
        self.pending = None
        owner = self.owner
        owner._unregister(self)
        if owner._closed:
            return
        owner.endpoint.flow_failed(Flow("tcp", self.remote, self.local, None), owner.loop.time())
        owner._flush()

    def _arm_idle(self) -> None:
        timeout = self.owner.tcp_idle_timeout
        if timeout and timeout > 0:
            self._idle = self.owner.loop.call_at(self.last_activity + timeout, self._check_idle)

    def _check_idle(self) -> None:
        self._idle = None
        if self.closed:
            return
        if self.owner.loop.time() - self.last_activity >= self.owner.tcp_idle_timeout:
            log.debug("SIP: closing idle TCP connection %s", self.remote)
            self.close()
        else:
            self._arm_idle()


def _route_to(ip: str) -> str:
    """The local address the kernel would send from to reach `ip` (no packet sent)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((ip, 9))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1" if family == socket.AF_INET else "::1"
