"""The thin asyncio adapter that keeps one `Registration` registered over a `SipTransport`.

Like `transport.SipTransport` for the endpoint: after anything happens (a response, a timeout,
the timer, a verb) one `_transmit()` sends the REGISTERs the core wants sent, each in a client
transaction of the shared transport, re-arms ONE `loop.call_at` timer at `get_timer()`, and
reports a changed state to `on_state`. The decisions live in `registration.Registration`.

The transport has one event handler, the box's front desk: it hands each event to
`handle_event`, which takes the responses and timeouts of this registrant's transactions and
returns False for anything else. A hop given by name is resolved here, through the loop's
resolver (A records, AAAA for an IPv6 transport; no SRV yet), before every REGISTER: a provider
moving its registrar is followed at the next refresh.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Callable

from .endpoint import Event, Flow, RequestTimeout, ResponseReceived
from .registration import Hop, Outgoing, Registration, RegistrationSettings, RegistrationState
from .transaction import ClientTransaction
from .transport import SipTransport

__all__ = ["Registrant", "RESOLVE_TIMEOUT"]

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT = 10.0  # seconds a name lookup of the registrar or proxy may take


class Registrant:
    """Drives `registration` over `transport` (see the module docstring).

    Args:
        registration: the core; its first REGISTER goes out at `start()`.
        transport: the box's SIP transport.
        on_state: called with the new `RegistrationState` each time it changes.
        name: for the log (the trunk's name).
    """

    def __init__(
        self,
        registration: Registration,
        transport: SipTransport,
        *,
        on_state: Callable[[RegistrationState], None] | None = None,
        name: str = "trunk",
    ) -> None:
        self.registration = registration
        self.transport = transport
        self.on_state = on_state
        self.name = name
        self._txs: set[ClientTransaction] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._reported = registration.state
        self._resolving: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()
        self._closed = False

    @property
    def state(self) -> RegistrationState:
        return self.registration.state

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.transport.loop

    # -- the verbs -------------------------------------------------------------------------

    def start(self) -> None:
        """Send the first REGISTER."""
        self._transmit()

    def handle_event(self, event: Event) -> bool:
        """Take an endpoint event if it concerns one of our transactions."""
        if isinstance(event, ResponseReceived):
            tx = event.tx
            if tx is None or tx not in self._txs:
                return False
            if event.response.status >= 200:
                self._txs.discard(tx)
            self.registration.receive_response(event.response, self.loop.time())
        elif isinstance(event, RequestTimeout):
            if event.tx not in self._txs:
                return False
            self._txs.discard(event.tx)
            self.registration.request_failed(self.loop.time(), cseq=event.tx.request.cseq.seq)
        else:
            return False
        self._transmit()
        return True

    def reset(self, settings: RegistrationSettings | None = None) -> None:
        """Register again at once (new settings, or the admin asking for a retry)."""
        self._closed = False
        self._stopped.clear()
        self.registration.reset(self.loop.time(), settings)
        self._transmit()

    async def close(self, timeout: float = 5.0) -> None:
        """Unregister (expires 0), waiting at most ``timeout`` seconds for the registrar's
        answer, then stop the timer. The binding lapses by itself if the answer never comes."""
        self.registration.unregister(self.loop.time())
        self._transmit()
        try:
            if self.state.kind != "stopped":
                async with asyncio.timeout(timeout):
                    await self._stopped.wait()
        except TimeoutError:
            log.info("%s: no answer to the unregistration within %g s", self.name, timeout)
        finally:
            self._closed = True
            self._cancel_timer()
            for task in list(self._resolving):
                task.cancel()

    # -- sending, the timer, the state ----------------------------------------------------------

    def _transmit(self) -> None:
        reg = self.registration
        for out in reg.requests_to_send(self.loop.time()):
            self._send(out)
        self._arm()
        state = reg.state
        if state != self._reported:
            self._reported = state
            log.info("%s: %s", self.name, state)
            if state.kind == "stopped":
                self._stopped.set()
            if self.on_state is not None:
                try:
                    self.on_state(state)
                except Exception:
                    log.exception("%s: the state callback failed", self.name)

    def _send(self, out: Outgoing) -> None:
        hop = out.hop
        try:
            ipaddress.ip_address(hop.host)
        except ValueError:
            task = self.loop.create_task(self._resolve_and_send(out), name=f"resolve-{self.name}")
            self._resolving.add(task)
            task.add_done_callback(self._resolving.discard)
            return
        self._send_to(out, (hop.host, hop.port))

    async def _resolve_and_send(self, out: Outgoing) -> None:
        hop = out.hop
        kind = socket.SOCK_DGRAM if hop.transport == "udp" else socket.SOCK_STREAM
        # The family the transport's sockets speak: an AAAA answer is no use to an IPv4 socket.
        family = socket.AF_INET6 if ":" in self.transport.local_udp[0] else socket.AF_INET
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                infos = await self.loop.getaddrinfo(hop.host, hop.port, family=family, type=kind)
        except (OSError, TimeoutError) as exc:
            log.warning("%s: cannot resolve %s: %s", self.name, hop.host, exc)
            self.registration.request_failed(self.loop.time(), cseq=out.request.cseq.seq,
                                             reason=f"cannot resolve {hop.host}")
            self._transmit()
            return
        address = infos[0][4]
        self._send_to(out, (address[0], address[1]))
        self._transmit()

    def _send_to(self, out: Outgoing, remote: tuple[str, int]) -> None:
        flow = self._flow(out.hop, remote)
        try:
            tx = self.transport.send_request(out.request, flow)
        except OSError as exc:
            self.registration.request_failed(self.loop.time(), cseq=out.request.cseq.seq,
                                             reason=f"cannot send: {exc}")
            return
        self._txs.add(tx)

    def _flow(self, hop: Hop, remote: tuple[str, int]) -> Flow:
        if hop.transport == "tcp":
            return self.transport.tcp_flow(remote)
        return self.transport.udp_flow(remote)

    def _arm(self) -> None:
        when = None if self._closed else self.registration.get_timer()
        if when == self._timer_when:
            return
        self._cancel_timer()
        if when is not None:
            self._timer = self.loop.call_at(when, self._on_timer)
            self._timer_when = when

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_when = None

    def _on_timer(self) -> None:
        when = self._timer_when or 0.0
        self._timer = None
        self._timer_when = None
        # call_at may run a hair early (clock resolution): never before the deadline
        self.registration.handle_timer(max(self.loop.time(), when))
        self._transmit()
