"""The sans-I/O SIP endpoint: transaction matching and the UAS core's checks (RFC 3261 §8.2, §17, §18).

Modelled on aioquic's connection: it owns no socket and no clock. The transport
adapter feeds it what arrived (`receive(data, flow, now)`), sends what
`datagrams_to_send()` returns, delivers `next_event()`s to the transaction user
(the PBX) and calls `handle_timer(now)` at `get_timer()`::

    ep = SipEndpoint()
    ep.receive(datagram, Flow("udp", ("192.0.2.7", 5060), ("192.0.2.1", 5060)), now=0.0)
    for data, flow in ep.datagrams_to_send(): sock.sendto(data, flow.remote)
    while (event := ep.next_event()) is not None: tu(event)

What it does for the TU:

* parses; answers malformed requests with the status the `ParseError` carries;
* stamps `received`/`rport` on the top Via (§18.2.1, RFC 3581);
* absorbs retransmissions (the server transaction re-sends its last response),
  routes the ACK of a non-2xx to its transaction, answers CANCEL (§9.2); an INVITE
  answered with a non-2xx is remembered after its transaction ends (timer I is only T4)
  until its client would have given up, so a late retransmission is still absorbed and
  never reaches the TU as a new request (which would challenge it again);
* lets the TU answer a request statelessly (`answer_statelessly`): the challenge to a request
  without credentials, which anyone can send from a forged address, is one datagram per
  datagram received, never a response retransmitted to that address until timer H;
* rejects what the TU could not handle anyway: 483, 482, 416, 501/405, 420, 415, 406;
* as the UAS core, retransmits a 2xx to INVITE until its ACK (§13.3.1.4);
* matches responses to client transactions (§17.1.3).

Every reply goes to the flow the request came from (`flow.remote`, and on TCP
the same connection), never to an address a Via names: a hostile Via can make
us send nothing anywhere else.

Errors the endpoint generates itself are sent statelessly (§8.2: a UAS may): a
rejected request leaves no state behind, and a UDP retransmission of it simply
gets the same answer again.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
from collections import deque
from dataclasses import dataclass

from . import transaction as _t
from .message import (
    KNOWN_METHODS,
    Message,
    ParseError,
    Request,
    Response,
    make_error_response,
    make_response,
    new_branch,
    new_tag,
)
from .uri import Via
from .transaction import DEFAULT, ClientTransaction, ServerTransaction, State, Timers, server_key

__all__ = [
    "Addr",
    "Flow",
    "Event",
    "RequestReceived",
    "AckReceived",
    "CancelReceived",
    "ResponseReceived",
    "RequestTimeout",
    "AckTimeout",
    "SipEndpoint",
    "DEFAULT_ALLOW",
    "DEFAULT_SUPPORTED",
]

log = logging.getLogger(__name__)

Addr = tuple[str, int]

DEFAULT_ALLOW = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "UPDATE", "INFO", "NOTIFY",
     "REFER", "PRACK", "MESSAGE", "SUBSCRIBE"}
)
DEFAULT_SUPPORTED = frozenset({"replaces", "timer"})

# Methods whose body is a session description the TU must understand (§8.2.3).
_SDP_METHODS = frozenset({"INVITE", "UPDATE"})


@dataclass(frozen=True, slots=True)
class Flow:
    """Where a message came from, or goes to.

    `remote` is the real source address (never what a Via claims); `local` is our
    socket's address (Via sent-by, Contact). `conn_id` names a TCP connection of the
    transport adapter; None for UDP, or "any open connection to remote, else a new one".
    """

    transport: str  # "udp" | "tcp"
    remote: Addr
    local: Addr
    conn_id: int | None = None

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


# -- events ------------------------------------------------------------------------------


class Event:
    """Base class of what the endpoint reports to the TU."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RequestReceived(Event):
    """A new request (not a retransmission), other than ACK and CANCEL. Answer it with
    `send_response(tx, ...)`; an INVITE gets 100 Trying by itself after 200 ms."""

    request: Request
    flow: Flow
    tx: ServerTransaction


@dataclass(frozen=True, slots=True)
class AckReceived(Event):
    """The ACK for a 2xx we sent (§13.3.1.4); its 2xx is no longer retransmitted."""

    request: Request
    flow: Flow


@dataclass(frozen=True, slots=True)
class CancelReceived(Event):
    """A CANCEL for an INVITE not answered with a final yet. The endpoint has answered
    the CANCEL with 200 (§9.2); the TU must answer the INVITE with 487."""

    cancel: Request
    flow: Flow
    invite_tx: ServerTransaction


@dataclass(frozen=True, slots=True)
class ResponseReceived(Event):
    """A response for a client transaction: every provisional, the first final, and
    every 2xx to INVITE (RFC 6026, so the TU can ACK each). `tx` is None for a 2xx to
    INVITE that no transaction matches any more (a retransmission: re-send the ACK)."""

    response: Response
    tx: ClientTransaction | None


@dataclass(frozen=True, slots=True)
class RequestTimeout(Event):
    """No final response (timer B or F), or the transport could not deliver the request."""

    tx: ClientTransaction


@dataclass(frozen=True, slots=True)
class AckTimeout(Event):
    """Our 2xx to INVITE got no ACK within 64*T1 (§13.3.1.4: the TU should send BYE)."""

    tx: ServerTransaction


# -- internal records ---------------------------------------------------------------------


class _Entry:
    """A live transaction with the flow it talks over and its slot in the timer heap."""

    __slots__ = ("tx", "flow", "deadline", "merge_key", "dead")

    def __init__(self, tx: ClientTransaction | ServerTransaction, flow: Flow) -> None:
        self.tx = tx
        self.flow = flow
        self.deadline: float | None = None  # the deadline pushed on the heap last
        self.merge_key: tuple | None = None
        self.dead = False


class _Pending2xx:
    """A 2xx to INVITE retransmitted by the UAS core until its ACK (§13.3.1.4)."""

    __slots__ = ("key", "tx", "flow", "data", "interval", "give_up", "deadline", "dead")

    def __init__(self, key: tuple, tx: ServerTransaction, flow: Flow, data: bytes | Response,
                 interval: float, give_up: float) -> None:
        self.key = key
        self.tx = tx
        self.flow = flow
        self.data = data
        self.interval = interval  # 0: reliable transport, no retransmissions
        self.give_up = give_up
        self.deadline: float | None = None
        self.dead = False


def _same_host(via_host: str, ip: str) -> bool:
    """Whether a Via sent-by host is literally the source IP (§18.2.1)."""
    if via_host == ip:
        return True
    if ":" in ip and ":" in via_host:  # IPv6 written differently
        try:
            return ipaddress.IPv6Address(via_host) == ipaddress.IPv6Address(ip)
        except ValueError:
            return False
    return False


class SipEndpoint:
    """The sans-I/O SIP endpoint (see the module docstring).

    Args:
        user_agent: written as User-Agent in requests and Server in responses we
            send, when the message has none ("" to write nothing).
        allow: methods the TU handles; others get 405 (known) or 501 (unknown).
        supported: option tags the TU understands; a Require of any other gets 420.
        timers: transaction timer values (RFC 3261 Table 4).
    """

    def __init__(
        self,
        *,
        user_agent: str = "LineBox",
        allow: frozenset[str] = DEFAULT_ALLOW,
        supported: frozenset[str] = DEFAULT_SUPPORTED,
        timers: Timers = DEFAULT,
    ) -> None:
        self.user_agent = user_agent
        self.allow = frozenset(allow)
        self.supported = frozenset(s.lower() for s in supported)
        self.timers = timers
        #: ready-made header values for the TU (e.g. a 200 to OPTIONS)
        self.allow_header = ", ".join(sorted(self.allow))
        self.supported_header = ", ".join(sorted(self.supported))
        self._servers: dict[tuple, _Entry] = {}
        self._clients: dict[tuple, _Entry] = {}
        self._merge: dict[tuple, tuple] = {}  # (From tag, Call-ID, CSeq) -> server key
        self._pending: dict[tuple, _Pending2xx] = {}  # (Call-ID, CSeq number, To tag)
        # INVITE server transactions that ended after a non-2xx final: hash of the key -> until.
        # The hash, not the key: one per call set up (its challenged first INVITE) for 32 s is
        # ~13,000 entries at 400 setups/s; a 64-bit hash keyed per process makes a collision
        # (a new INVITE taken for a retransmission) a 1-in-10^15 event.
        self._ended: dict[int, float] = {}
        self._ended_order: deque[tuple[float, int]] = deque()
        self._heap: list[tuple[float, int, _Entry | _Pending2xx]] = []
        self._seq = itertools.count()
        self._out: list[tuple[bytes, Flow]] = []
        self._events: deque[Event] = deque()

    # -- the verbs -------------------------------------------------------------------------

    def receive(self, data: bytes, flow: Flow, now: float) -> None:
        """One datagram, or one message framed out of a stream, from `flow`."""
        try:
            msg = Message.parse(data)
        except ParseError as err:
            if err.status is not None:
                response = make_error_response(err, to_tag=new_tag())
                if response is not None:
                    self._stamp_via(response, flow)
                    self._send_out(response, flow)
            return
        if isinstance(msg, Request):
            self._receive_request(msg, flow, now)
        else:
            self._receive_response(msg, flow, now)

    def send_request(self, request: Request, flow: Flow, now: float) -> ClientTransaction:
        """Send `request` in a new client transaction over `flow` and return it.

        A request without Via gets ours (sent-by = flow.local, a new branch, rport).
        A CANCEL built with `transaction.build_cancel` keeps its INVITE's Via and runs
        in its own transaction (§9.1). ACK has no transaction: use `send_ack`.
        """
        if request.method == "ACK":
            raise ValueError("ACK has no client transaction: use send_ack()")
        self._prepare_request(request, flow)
        tx = ClientTransaction(request, now=now, reliable=flow.reliable, timers=self.timers)
        if tx.key in self._clients:
            raise ValueError(f"a client transaction with key {tx.key} is running")
        entry = _Entry(tx, flow)
        self._clients[tx.key] = entry
        self._drain(entry, now)
        return tx

    def send_ack(self, ack: Request, flow: Flow) -> None:
        """Send the ACK for a 2xx (built by the TU from the dialog), without a
        transaction (§13.2.2.4, §17.1.1.3). Re-send it for each retransmitted 2xx."""
        self._prepare_request(ack, flow)
        self._out.append((bytes(ack), flow))

    def send_response(self, tx: ServerTransaction, response: Response, now: float) -> None:
        """Answer the request of `tx`; raises `transaction.TransactionError` when its
        state does not allow it (a second final, anything once terminated).

        A 2xx to INVITE is then retransmitted by the endpoint (T1, 2T1 … T2, on UDP)
        until the ACK matching its Call-ID, CSeq number and To tag arrives; after
        64*T1 without one the TU gets `AckTimeout`.
        """
        entry = self._answer(tx, response, now)
        if 200 <= response.status < 300 and tx.kind is _t.Kind.INVITE_SERVER:
            self._start_2xx(tx, entry.flow, response, now)
        self._drain(entry, now)

    def _answer(self, tx: ServerTransaction, response: Response, now: float) -> _Entry:
        """Hands ``response`` to ``tx`` (still known here), with our Server header."""
        entry = self._servers.get(tx.key)
        if entry is None or entry.tx is not tx:
            raise _t.TransactionError(f"{tx!r} is no longer known to the endpoint")
        if self.user_agent and "server" not in response.headers:
            response.headers.add("Server", self.user_agent)
        tx.send_response(response, now)
        return entry

    def answer_statelessly(self, tx: ServerTransaction, response: Response, now: float) -> None:
        """Answer the request of `tx` once with a final response and forget the transaction, as
        Kamailio's ``sl_send_reply`` does. For answers to requests nobody has authenticated (the
        401/407 challenge, a 503 under overload): kept, an INVITE's transaction would re-send
        its answer until timer H, ten datagrams to whatever address the request claimed. Without
        it a retransmitted request is simply answered again, and the ACK of the answer finds
        nothing and is dropped."""
        if response.status < 300:
            # a 2xx to an INVITE must be re-sent until its ACK (§13.3.1.4): never stateless
            raise ValueError("only a 3xx-6xx final response can be sent statelessly")
        entry = self._answer(tx, response, now)  # the transaction records it (the TU reads it)
        for data in tx.datagrams_to_send(now):
            self._out.append((data, entry.flow))
        self._forget_server(tx.key, entry, now, absorb_copies=False)

    def send_stateless(self, message: Request | Response, flow: Flow) -> None:
        """Send a message outside any transaction (e.g. a response the TU builds to a
        request it will not keep state for)."""
        self._out.append((bytes(message), flow))

    def datagrams_to_send(self) -> list[tuple[bytes, Flow]]:
        """What to send now, in order, each with the flow to send it over (and forget)."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest deadline the endpoint needs `handle_timer` called at."""
        heap = self._heap
        while heap:
            deadline, _, item = heap[0]
            if not item.dead and item.deadline == deadline:
                return deadline
            heapq.heappop(heap)  # stale: that item moved or is gone
        return None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at `now`."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, item = heapq.heappop(heap)
            if item.dead or item.deadline != deadline:
                continue
            item.deadline = None
            if isinstance(item, _Entry):
                item.tx.handle_timer(now)
                self._drain(item, now)
            else:
                self._fire_2xx(item, now)

    def flow_failed(self, flow: Flow, now: float) -> None:
        """The transport could not deliver over `flow` (a TCP connect failed, a
        connection broke): every client transaction sending over it ends with
        `RequestTimeout`, and 2xx retransmissions over it stop."""
        for key, entry in list(self._clients.items()):
            f = entry.flow
            if f.transport == flow.transport and f.remote == flow.remote and (
                flow.conn_id is None or f.conn_id is None or f.conn_id == flow.conn_id
            ):
                if not entry.tx.terminated:
                    self._events.append(RequestTimeout(entry.tx))
                self._forget_client(key, entry)

    def transaction_count(self) -> int:
        """Live transactions (for tests and health: terminated ones are forgotten)."""
        return len(self._servers) + len(self._clients)

    def pending_2xx_count(self) -> int:
        """2xx responses to INVITE still waiting for their ACK."""
        return len(self._pending)

    # -- requests --------------------------------------------------------------------------

    def _receive_request(self, req: Request, flow: Flow, now: float) -> None:
        key = server_key(req)
        method = req.method
        entry = self._servers.get(key)
        if entry is not None:
            tx = entry.tx
            if method == "ACK" and tx.state is not State.COMPLETED:
                # same branch as the INVITE but not for a non-2xx: an ACK for our 2xx
                # from a peer that reuses the branch (RFC 2543 style)
                self._ack_2xx(req, flow)
                return
            tx.receive_request(req, now)  # retransmission, or the ACK of a non-2xx
            self._drain(entry, now)
            return
        if self._ended and self._ended.get(hash(key), 0.0) > now and method in ("INVITE", "ACK"):
            return  # a late copy of an INVITE (or of its ACK) whose transaction has ended: absorbed
        if method == "ACK":
            self._ack_2xx(req, flow)
            return
        self._stamp_via(req, flow)
        if method == "CANCEL":
            self._cancel(req, key, flow, now)
            return
        # -- the checks of §8.2 on a new request, each with its answer
        mf = req.max_forwards
        if mf == 0 and method != "OPTIONS":
            # we would have to forward it (a B2BUA is a proxy here); an OPTIONS with
            # Max-Forwards 0 is for us and the TU answers it (RFC 3261 §11, RFC 4475 zeromf)
            self._reject(req, flow, 483)
            return
        merge_key = None
        if req.to.tag is None:
            cseq = req.cseq
            merge_key = (req.from_.tag, req.call_id, cseq.seq, cseq.method)
            other = self._merge.get(merge_key)
            if other is not None and other != key:
                self._reject(req, flow, 482)  # §8.2.2.2 merged request
                return
        try:
            req.request_uri  # noqa: B018 - ParseError(416) for another scheme
        except ParseError as err:
            self._reject(req, flow, err.status or 400)
            return
        if method not in self.allow:
            if method in KNOWN_METHODS:
                self._reject(req, flow, 405, [("Allow", self.allow_header)])
            else:
                self._reject(req, flow, 501)
            return
        headers = req.headers
        if "require" in headers:
            unsupported = [t for t in headers.get_all("require") if t.lower() not in self.supported]
            if unsupported:
                self._reject(req, flow, 420, [("Unsupported", ", ".join(unsupported))])
                return
        if req.body:
            if method in _SDP_METHODS and not self._sdp_body(req):
                self._reject(req, flow, 415, [("Accept", "application/sdp")])
                return
            if "content-encoding" in headers and any(
                e.lower() != "identity" for e in headers.get_all("content-encoding")
            ):
                self._reject(req, flow, 415, [("Accept-Encoding", "identity")])
                return
        if method in _SDP_METHODS and "accept" in headers and not self._accepts_sdp(headers.get_all("accept")):
            # our answer would carry SDP, which the peer says it cannot take (RFC 4475 sdp01)
            self._reject(req, flow, 406, [("Accept", "application/sdp")])
            return
        tx = ServerTransaction(req, now=now, reliable=flow.reliable, timers=self.timers)
        # the key as the request arrived: an RFC 2543 key holds the whole top Via, which
        # _stamp_via has changed since, and retransmissions arrive unstamped
        tx.key = key
        entry = _Entry(tx, flow)
        self._servers[key] = entry
        if merge_key is not None:
            entry.merge_key = merge_key
            self._merge[merge_key] = key
        self._events.append(RequestReceived(req, flow, tx))
        self._drain(entry, now)

    @staticmethod
    def _sdp_body(req: Request) -> bool:
        media = req.media_type
        if media == "application/sdp":
            return True
        if media == "multipart/mixed":
            return b"application/sdp" in req.body.lower()
        return False

    @staticmethod
    def _accepts_sdp(accept: list[str]) -> bool:
        """Whether an Accept list (§20.1) admits application/sdp; an empty one is
        taken as absent."""
        if not accept:
            return True
        for item in accept:
            media = item.partition(";")[0].strip(" \t").lower()
            if media in ("application/sdp", "application/*", "*/*"):
                return True
        return False

    def _cancel(self, cancel: Request, key: tuple, flow: Flow, now: float) -> None:
        """§9.2: the CANCEL gets 200 (in its own transaction, so retransmissions get it
        again) if it matches an INVITE, 481 otherwise; the TU hears of it only while
        the INVITE has no final response."""
        invite_entry = self._servers.get(key[:-1] + ("INVITE",))
        if invite_entry is None:
            self._reject(cancel, flow, 481)
            return
        tx = ServerTransaction(cancel, now=now, reliable=flow.reliable, timers=self.timers)
        tx.key = key  # as it arrived (see _receive_request)
        entry = _Entry(tx, flow)
        self._servers[key] = entry
        response = make_response(cancel, 200, to_tag=self._to_tag(invite_entry.tx))
        if self.user_agent:
            response.headers.add("Server", self.user_agent)
        tx.send_response(response, now)
        invite_tx = invite_entry.tx
        if invite_tx.state is State.PROCEEDING:
            self._events.append(CancelReceived(cancel, flow, invite_tx))
        self._drain(entry, now)

    @staticmethod
    def _to_tag(tx: ServerTransaction) -> str:
        """The To tag the INVITE's responses carry, so the CANCEL's 200 has the same."""
        return tx.to_tag or new_tag()

    def _reject(self, req: Request, flow: Flow, status: int,
                headers: list[tuple[str, str]] | tuple = ()) -> None:
        response = make_response(req, status, to_tag=new_tag(), headers=headers)
        if self.user_agent:
            response.headers.add("Server", self.user_agent)
        self._out.append((bytes(response), flow))

    def _ack_2xx(self, ack: Request, flow: Flow) -> None:
        pending = self._pending.pop((ack.call_id, ack.cseq.seq, ack.to.tag), None)
        if pending is None:
            return  # a retransmitted ACK, or one for nothing we sent: drop
        pending.dead = True
        self._events.append(AckReceived(ack, flow))

    def _stamp_via(self, msg: Message, flow: Flow) -> None:
        """§18.2.1 / RFC 3581: received= when the sent-by host is not the source IP;
        rport=<source port> (and received=) when the Via asks for rport."""
        try:
            vias = msg.vias
        except ParseError:
            return
        top = vias[0]
        ip, port = flow.remote
        params = top.params
        rport = params.get("rport", 0)  # 0: absent; None: present without value
        if rport == 0:
            if _same_host(top.host, ip):
                return
            params = {**params, "received": ip}
        else:
            params = {**params, "received": ip, "rport": str(port)}
        new_top = Via(top.protocol, top.transport, top.host, top.port, params)
        headers = msg.headers
        fields = headers._fields
        for i, (key, name, value) in enumerate(fields):
            if key == "via":
                break
        if "," not in value:
            fields[i] = (key, name, str(new_top))  # the common case: one Via per field
            headers._changed("via")
        else:
            headers.remove_first("Via")
            headers.add("Via", str(new_top), first=True)
        headers._cache["via"] = [new_top, *vias[1:]]

    # -- responses -------------------------------------------------------------------------

    def _receive_response(self, response: Response, flow: Flow, now: float) -> None:
        try:
            key = _t.client_key(response)
        except ParseError:
            return
        entry = self._clients.get(key)
        if entry is None:
            if key[1] == "INVITE" and 200 <= response.status < 300 and self._ours(response, flow):
                # a 2xx retransmitted after its transaction ended: the TU re-sends the ACK
                self._events.append(ResponseReceived(response, None))
            return  # stray: dropped
        entry.tx.receive_response(response, now)
        self._drain(entry, now)

    @staticmethod
    def _ours(response: Response, flow: Flow) -> bool:
        """§18.1.2: the top Via of a response names us (we wrote it from flow.local);
        a stray 2xx with someone else's Via (RFC 4475 bcast) is dropped."""
        via = response.top_via
        host, port = flow.local
        return via.port == port and _same_host(via.host, host)

    def _prepare_request(self, request: Request, flow: Flow) -> None:
        headers = request.headers
        if "via" not in headers:
            host, port = flow.local
            if ":" in host:
                host = f"[{host}]"
            proto = "UDP" if flow.transport == "udp" else flow.transport.upper()
            headers.add("Via", f"SIP/2.0/{proto} {host}:{port};branch={new_branch()};rport", first=True)
        if self.user_agent and "user-agent" not in headers:
            headers.add("User-Agent", self.user_agent)

    # -- the UAS core's 2xx retransmission (§13.3.1.4) ------------------------------------------

    def _start_2xx(self, tx: ServerTransaction, flow: Flow, response: Response, now: float) -> None:
        t = self.timers
        request = tx.request  # its Call-ID and CSeq are parsed already; the response's are not
        key = (request.call_id, request.cseq.seq, response.to.tag)
        old = self._pending.pop(key, None)
        if old is not None:
            old.dead = True
        interval = 0.0 if flow.reliable else t.t1
        pending = _Pending2xx(key, tx, flow, response, interval, now + 64 * t.t1)
        self._pending[key] = pending
        self._schedule(pending, now + interval if interval else pending.give_up)

    def _fire_2xx(self, pending: _Pending2xx, now: float) -> None:
        if now >= pending.give_up:
            pending.dead = True
            if self._pending.get(pending.key) is pending:
                del self._pending[pending.key]
            self._events.append(AckTimeout(pending.tx))
            return
        data = pending.data
        if not isinstance(data, bytes):
            # serialized at the first retransmission only: on a LAN the ACK usually
            # arrives before T1 and the 2xx is never written twice
            data = pending.data = bytes(data)
        self._out.append((data, pending.flow))
        pending.interval = min(2 * pending.interval, self.timers.t2)
        self._schedule(pending, min(now + pending.interval, pending.give_up))

    # -- bookkeeping -------------------------------------------------------------------------

    def _schedule(self, item: _Entry | _Pending2xx, deadline: float | None) -> None:
        if deadline is not None and deadline != item.deadline:
            heapq.heappush(self._heap, (deadline, next(self._seq), item))
        item.deadline = deadline

    def _drain(self, entry: _Entry, now: float) -> None:
        """Move what a transaction produced to the endpoint's outbox and event queue."""
        tx = entry.tx
        for data in tx.datagrams_to_send(now):
            self._out.append((data, entry.flow))
        while (ev := tx.next_event()) is not None:
            if isinstance(ev, _t.ResponseReceived):
                self._events.append(ResponseReceived(ev.response, tx))  # type: ignore[arg-type]
            elif isinstance(ev, _t.TransactionTimeout):
                if ev.timer in ("B", "F"):
                    self._events.append(RequestTimeout(tx))  # type: ignore[arg-type]
                # H: our non-2xx final got no ACK; nothing the TU can do
            # AckReceived (of a non-2xx) and Terminated: nothing for the TU
        if tx.terminated:
            if isinstance(tx, ServerTransaction):
                self._forget_server(tx.key, entry, now)
            else:
                self._forget_client(tx.key, entry)
        else:
            self._schedule(entry, tx.get_timer())

    def _forget_server(self, key: tuple, entry: _Entry, now: float, *, absorb_copies: bool = True) -> None:
        """``absorb_copies=False``: a stateless answer, whose request's copies are answered again."""
        entry.dead = True
        if self._servers.get(key) is entry:
            del self._servers[key]
        tx = entry.tx
        if (absorb_copies and tx.kind is _t.Kind.INVITE_SERVER and (tx.last_status or 0) >= 300
                and not tx.reliable):
            # Timer I ends it T4 after the ACK, but a copy sent before the client had the final
            # may still be queued (a loaded box reads its socket late): keep absorbing copies
            # until the client's timer B (64*T1 from its first send) would have given up.
            self._remember_ended(key, tx.created + 64 * self.timers.t1, now)
        mk = entry.merge_key
        if mk is not None and self._merge.get(mk) == key:
            del self._merge[mk]

    def _remember_ended(self, key: tuple, until: float, now: float) -> None:
        order = self._ended_order
        # Drop what has expired, oldest first. Entries go in roughly in expiry order (all live
        # 64*T1 from their INVITE); one that outlives its neighbours only stays a little longer.
        while order and order[0][0] <= now:
            old_until, h = order.popleft()
            if self._ended.get(h) == old_until:
                del self._ended[h]
        h = hash(key)
        self._ended[h] = until
        order.append((until, h))

    def ended_count(self) -> int:
        """Ended INVITE transactions still remembered (for tests and health)."""
        return len(self._ended)

    def _forget_client(self, key: tuple, entry: _Entry) -> None:
        entry.dead = True
        if self._clients.get(key) is entry:
            del self._clients[key]

    def _send_out(self, message: Message, flow: Flow) -> None:
        self._out.append((bytes(message), flow))
