"""SIP transaction state machines (RFC 3261 §17, with RFC 6026), sans-I/O.

A transaction is a plain value a test can hold: it owns no socket and no
clock. Time is passed in as ``now``; the caller sends what
``datagrams_to_send(now)`` returns, re-arms one timer at ``get_timer()``
and calls ``handle_timer(now)`` when it fires; what the transaction user
(TU) must know comes out of ``next_event()``::

    tx = ClientTransaction(invite, now=0.0, reliable=False)
    send(tx.datagrams_to_send(0.0))      # the INVITE
    tx.handle_timer(0.5)                 # timer A
    send(tx.datagrams_to_send(0.5))      # the retransmission

All four machines (INVITE/non-INVITE × client/server) are the tables in
``TRANSITIONS``: (state, input) -> next state, the figures of RFC 3261
§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2 as amended by RFC 6026 (Accepted
state, timers L and M). An input absent from a table is absorbed. Timers keep
their RFC letters; on a reliable transport there are no retransmissions
(A, E, G) and timers D, I, J, K are zero, i.e. fire at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from .message import CSeq, Request, Response, make_response

__all__ = [
    "T1",
    "T2",
    "T4",
    "Timers",
    "DEFAULT",
    "State",
    "Input",
    "Kind",
    "TRANSITIONS",
    "Event",
    "ResponseReceived",
    "AckReceived",
    "TransactionTimeout",
    "Terminated",
    "TransactionError",
    "ClientTransaction",
    "ServerTransaction",
    "client_key",
    "server_key",
    "build_cancel",
    "build_ack_for_non2xx",
    "MAGIC_COOKIE",
]

T1 = 0.5  # RTT estimate (§17.1.1.1)
T2 = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
T4 = 5.0  # maximum duration a message will remain in the network
MAGIC_COOKIE = "z9hG4bK"


@dataclass(frozen=True)
class Timers:
    """Timer base values (RFC 3261 Table 4). ``d`` is timer D on unreliable
    transports (">32 s"); ``trying`` is the §17.2.1 200 ms before the INVITE
    server sends 100 Trying on its own."""

    t1: float = T1
    t2: float = T2
    t4: float = T4
    d: float = 32.0
    trying: float = 0.2


DEFAULT = Timers()


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"  # RFC 6026
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class Kind(enum.Enum):
    INVITE_CLIENT = "INVITE client"
    NON_INVITE_CLIENT = "non-INVITE client"
    INVITE_SERVER = "INVITE server"
    NON_INVITE_SERVER = "non-INVITE server"


class Input(enum.Enum):
    """What can happen to a transaction: a message from the transport, the TU
    sending a response, or a timer firing."""

    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_3XX_6XX = "300-699 received"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    SEND_1XX = "TU sends 1xx"
    SEND_2XX = "TU sends 2xx"
    SEND_3XX_6XX = "TU sends 300-699"
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"
    TIMER_TRYING = "200 ms without a provisional"


_S = State
_I = Input

# The one place where transitions live. An input absent from a state's row is
# absorbed (a late retransmission, a stale timer); for TU sends it is an error.
TRANSITIONS: dict[Kind, dict[tuple[State, Input], State]] = {
    # RFC 3261 Figure 5, RFC 6026 Figure 3
    Kind.INVITE_CLIENT: {
        (_S.CALLING, _I.TIMER_A): _S.CALLING,
        (_S.CALLING, _I.TIMER_B): _S.TERMINATED,
        (_S.CALLING, _I.RECV_1XX): _S.PROCEEDING,
        (_S.CALLING, _I.RECV_2XX): _S.ACCEPTED,
        (_S.CALLING, _I.RECV_3XX_6XX): _S.COMPLETED,
        (_S.PROCEEDING, _I.RECV_1XX): _S.PROCEEDING,
        (_S.PROCEEDING, _I.RECV_2XX): _S.ACCEPTED,
        (_S.PROCEEDING, _I.RECV_3XX_6XX): _S.COMPLETED,
        (_S.COMPLETED, _I.RECV_3XX_6XX): _S.COMPLETED,
        (_S.COMPLETED, _I.TIMER_D): _S.TERMINATED,
        (_S.ACCEPTED, _I.RECV_2XX): _S.ACCEPTED,
        (_S.ACCEPTED, _I.TIMER_M): _S.TERMINATED,
    },
    # RFC 3261 Figure 6
    Kind.NON_INVITE_CLIENT: {
        (_S.TRYING, _I.TIMER_E): _S.TRYING,
        (_S.TRYING, _I.TIMER_F): _S.TERMINATED,
        (_S.TRYING, _I.RECV_1XX): _S.PROCEEDING,
        (_S.TRYING, _I.RECV_2XX): _S.COMPLETED,
        (_S.TRYING, _I.RECV_3XX_6XX): _S.COMPLETED,
        (_S.PROCEEDING, _I.TIMER_E): _S.PROCEEDING,
        (_S.PROCEEDING, _I.TIMER_F): _S.TERMINATED,
        (_S.PROCEEDING, _I.RECV_1XX): _S.PROCEEDING,
        (_S.PROCEEDING, _I.RECV_2XX): _S.COMPLETED,
        (_S.PROCEEDING, _I.RECV_3XX_6XX): _S.COMPLETED,
        (_S.COMPLETED, _I.TIMER_K): _S.TERMINATED,
    },
    # RFC 3261 Figure 7, RFC 6026 Figure 5
    Kind.INVITE_SERVER: {
        (_S.PROCEEDING, _I.TIMER_TRYING): _S.PROCEEDING,
        (_S.PROCEEDING, _I.RECV_REQUEST): _S.PROCEEDING,
        (_S.PROCEEDING, _I.SEND_1XX): _S.PROCEEDING,
        (_S.PROCEEDING, _I.SEND_2XX): _S.ACCEPTED,
        (_S.PROCEEDING, _I.SEND_3XX_6XX): _S.COMPLETED,
        (_S.COMPLETED, _I.RECV_REQUEST): _S.COMPLETED,
        (_S.COMPLETED, _I.TIMER_G): _S.COMPLETED,
        (_S.COMPLETED, _I.TIMER_H): _S.TERMINATED,
        (_S.COMPLETED, _I.RECV_ACK): _S.CONFIRMED,
        (_S.CONFIRMED, _I.TIMER_I): _S.TERMINATED,
        (_S.ACCEPTED, _I.SEND_2XX): _S.ACCEPTED,
        (_S.ACCEPTED, _I.TIMER_L): _S.TERMINATED,
    },
    # RFC 3261 Figure 8
    Kind.NON_INVITE_SERVER: {
        (_S.TRYING, _I.SEND_1XX): _S.PROCEEDING,
        (_S.TRYING, _I.SEND_2XX): _S.COMPLETED,
        (_S.TRYING, _I.SEND_3XX_6XX): _S.COMPLETED,
        (_S.PROCEEDING, _I.SEND_1XX): _S.PROCEEDING,
        (_S.PROCEEDING, _I.SEND_2XX): _S.COMPLETED,
        (_S.PROCEEDING, _I.SEND_3XX_6XX): _S.COMPLETED,
        (_S.PROCEEDING, _I.RECV_REQUEST): _S.PROCEEDING,
        (_S.COMPLETED, _I.RECV_REQUEST): _S.COMPLETED,
        (_S.COMPLETED, _I.TIMER_J): _S.TERMINATED,
    },
}

# Which timers may run in each state; entering a state stops the others
# (e.g. a provisional stops A and B; a final stops E and F).
_STATE_TIMERS: dict[Kind, dict[State, frozenset[str]]] = {
    Kind.INVITE_CLIENT: {
        _S.CALLING: frozenset("AB"),
        _S.COMPLETED: frozenset("D"),
        _S.ACCEPTED: frozenset("M"),
    },
    Kind.NON_INVITE_CLIENT: {
        _S.TRYING: frozenset("EF"),
        _S.PROCEEDING: frozenset("EF"),
        _S.COMPLETED: frozenset("K"),
    },
    Kind.INVITE_SERVER: {
        _S.PROCEEDING: frozenset({"TRYING"}),
        _S.COMPLETED: frozenset("GH"),
        _S.CONFIRMED: frozenset("I"),
        _S.ACCEPTED: frozenset("L"),
    },
    Kind.NON_INVITE_SERVER: {
        _S.COMPLETED: frozenset("J"),
    },
}


# -- events ---------------------------------------------------------------------


class Event:
    """Base class of what a transaction reports to its TU."""


@dataclass(frozen=True)
class ResponseReceived(Event):
    """A response for the TU (client): each provisional, the first non-2xx
    final, and every 2xx (RFC 6026: 2xx retransmissions and forked 2xx go up
    so the TU can ACK them)."""

    response: Response


@dataclass(frozen=True)
class AckReceived(Event):
    """The ACK for our non-2xx final arrived (INVITE server → Confirmed)."""

    request: Request


@dataclass(frozen=True)
class TransactionTimeout(Event):
    """Timer B or F (client: no final response) or H (server: no ACK)."""

    timer: str


@dataclass(frozen=True)
class Terminated(Event):
    """The transaction reached Terminated; the endpoint may forget it."""


class TransactionError(RuntimeError):
    """The TU asked for something the state machine does not allow
    (e.g. a second final response)."""


# -- keys and helper requests ---------------------------------------------------------


def client_key(response: Response) -> tuple[str | None, str]:
    """§17.1.3: a response matches the client transaction whose request had
    the same top-Via branch and CSeq method."""
    method = response.cseq.method
    return (response.top_via.branch, "INVITE" if method == "ACK" else method)


def server_key(request: Request) -> tuple:
    """§17.2.3 matching key of a request.

    RFC 3261 branch (magic cookie): ``(branch, "host[:port]", method)`` with
    ACK counted as INVITE. CANCEL keeps its own method (its own transaction,
    §9.2); the INVITE it cancels is ``key[:2] + ("INVITE",)``.

    RFC 2543 fallback: ``("rfc2543", Request-URI, To tag, From tag, Call-ID,
    CSeq number, top Via, method)``. For INVITE/ACK the To tag is left out:
    the INVITE has none and the ACK carries the tag of our response.
    """
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        host, port = via.sent_by
        sent_by = host.lower() if port is None else f"{host.lower()}:{port}"
        return (branch, sent_by, method)
    to_tag = None if method == "INVITE" else request.to.tag
    return ("rfc2543", request.uri, to_tag, request.from_.tag, request.call_id, request.cseq.seq, str(via), method)


def _copy(src: Request, names: tuple[str, ...]) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for name in names:
        for value in src.headers.get_fields(name):
            fields.append((name, value))
    return fields


def build_cancel(invite: Request) -> Request:
    """CANCEL for ``invite`` (§9.1): same Request-URI, Call-ID, From, To, CSeq
    number and Route set; one Via, the INVITE's top Via (same branch)."""
    fields: list[tuple[str, str]] = [("Via", str(invite.top_via)), ("Max-Forwards", "70")]
    fields += _copy(invite, ("From", "To", "Call-ID"))
    fields.append(("CSeq", f"{invite.cseq.seq} CANCEL"))
    fields += _copy(invite, ("Route",))
    return Request("CANCEL", invite.uri, fields, b"")


def build_ack_for_non2xx(invite: Request, response: Response) -> Request:
    """ACK for a 300–699 final (§17.1.1.3): the INVITE's Request-URI, top
    Via, From, Call-ID, CSeq number and Route set; the response's To (with its
    tag)."""
    fields: list[tuple[str, str]] = [("Via", str(invite.top_via)), ("Max-Forwards", "70")]
    fields += _copy(invite, ("From",))
    to = response.headers.get("To")
    fields.append(("To", to if to is not None else invite.headers.get("To", "")))
    fields += _copy(invite, ("Call-ID",))
    fields.append(("CSeq", f"{invite.cseq.seq} ACK"))
    fields += _copy(invite, ("Route",))
    return Request("ACK", invite.uri, fields, b"")


def _response_input(status: int, prefix: str) -> Input:
    if status < 200:
        return Input[f"{prefix}_1XX"]
    if status < 300:
        return Input[f"{prefix}_2XX"]
    return Input[f"{prefix}_3XX_6XX"]


# -- the machinery both sides share ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestStub:
    """What a server transaction keeps of its request once it has answered with a final.

    From then on it only absorbs retransmissions (timers J, I, L) or waits for an ACK (G, H),
    which needs its key and the bytes of its last response, not the parsed request. Under load
    thousands of transactions sit in those states for 32 s; keeping ~10 KB of parsed message
    each is what filled the box's memory (docs/benchmarks.md)."""

    method: str
    uri: str
    call_id: str
    cseq: "CSeq"
    branch: str | None


class _Transaction:
    kind: Kind

    def __init__(self, request: Request, *, now: float, reliable: bool, timers: Timers) -> None:
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.created = now
        self.history: list[State] = []  # every state entered, in order
        self._deadlines: dict[str, float] = {}  # timer letter -> absolute time
        self._intervals: dict[str, float] = {}  # current interval of A, E, G
        self._outbox: list[bytes] = []
        self._events: list[Event] = []  # a deque costs 600 bytes; these hold one or two events
        self.state: State = State.TERMINATED  # set by _enter in subclasses

    # -- public verbs shared by both sides

    def get_timer(self) -> float | None:
        """The next deadline, or None when nothing is pending."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, earliest first."""
        while self._deadlines:
            name, deadline = min(self._deadlines.items(), key=lambda kv: (kv[1], kv[0]))
            if deadline > now:
                break
            del self._deadlines[name]
            self._fire(name, deadline)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """What to hand to the transport now (and forget)."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    def timer_deadline(self, letter: str) -> float | None:
        """When timer ``letter`` ("A" … "M", "TRYING") fires, None if not running."""
        return self._deadlines.get(letter)

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    # -- internals

    def _step(self, inp: Input) -> State | None:
        return TRANSITIONS[self.kind].get((self.state, inp))

    def _enter(self, state: State) -> None:
        if state is not self.state or not self.history:
            self.state = state
            self.history.append(state)
            allowed = _STATE_TIMERS[self.kind].get(state, frozenset())
            for name in list(self._deadlines):
                if name not in allowed:
                    del self._deadlines[name]
            if state is State.TERMINATED:
                self._events.append(Terminated())

    def _start(self, name: str, delay: float, base: float) -> None:
        """Arm timer ``name`` at ``base + delay``; a zero timer fires at once."""
        if delay <= 0:
            self._fire(name, base)
        else:
            self._deadlines[name] = base + delay

    def _fire(self, name: str, at: float) -> None:
        inp = Input[f"TIMER_{name}"]
        old = self.state
        new = self._step(inp)
        if new is None:  # stale timer: absorbed
            return
        if name in ("B", "F", "H"):
            self._events.append(TransactionTimeout(name))
        self._enter(new)
        self._on_timer(name, old, at)

    def _on_timer(self, name: str, old: State, at: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.kind.value}, {self.request.method} "
            f"key={self.key}, state={self.state.name}, timers={self._deadlines})"
        )


_ANSWERED = frozenset({State.COMPLETED, State.CONFIRMED, State.ACCEPTED, State.TERMINATED})


class ClientTransaction(_Transaction):
    """INVITE client (§17.1.1 + RFC 6026) or non-INVITE client (§17.1.2),
    chosen by the request method. The request is queued for sending at
    creation."""

    def __init__(self, request: Request, *, now: float, reliable: bool, timers: Timers = DEFAULT) -> None:
        if request.method == "ACK":
            raise ValueError("ACK has no client transaction (§17.1.1.3, §13.2.2.4)")
        super().__init__(request, now=now, reliable=reliable, timers=timers)
        self.kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        self.key: tuple[str | None, str] = (request.top_via.branch, request.method)
        self._request_bytes = bytes(request)
        self._ack_bytes: bytes | None = None  # the ACK we built for a non-2xx final
        self.final_response: Response | None = None
        self.final_status: int | None = None  # kept after the response itself is let go
        self._outbox.append(self._request_bytes)
        t = timers
        if self.kind is Kind.INVITE_CLIENT:
            self._enter(State.CALLING)
            if not reliable:
                self._intervals["A"] = t.t1
                self._start("A", t.t1, now)
            self._start("B", 64 * t.t1, now)
        else:
            self._enter(State.TRYING)
            if not reliable:
                self._intervals["E"] = t.t1
                self._start("E", t.t1, now)
            self._start("F", 64 * t.t1, now)

    def receive_response(self, response: Response, now: float) -> None:
        """A response matched to this transaction by ``client_key``."""
        inp = _response_input(response.status, "RECV")
        old = self.state
        new = self._step(inp)
        if new is None:
            return  # absorbed (late/retransmitted response)
        t = self.timers
        if self.kind is Kind.INVITE_CLIENT:
            if inp is Input.RECV_3XX_6XX:
                if old is State.COMPLETED:
                    # A retransmitted final: our ACK was lost; re-send it (§17.1.1.2).
                    assert self._ack_bytes is not None
                    self._outbox.append(self._ack_bytes)
                    return
                self.final_response = response
                self.final_status = response.status
                self._ack_bytes = bytes(build_ack_for_non2xx(self.request, response))
                self._events.append(ResponseReceived(response))
                self._outbox.append(self._ack_bytes)
                self._enter(new)
                self._start("D", 0 if self.reliable else t.d, now)
                return
            self._events.append(ResponseReceived(response))
            if inp is Input.RECV_2XX and old is not State.ACCEPTED:
                self.final_response = response
                self.final_status = response.status
                self._enter(new)
                self._start("M", 64 * t.t1, now)
                return
            self._enter(new)
            return
        # non-INVITE client
        self._events.append(ResponseReceived(response))
        if inp is Input.RECV_1XX:
            self._enter(new)
            return
        self.final_response = response
        self.final_status = response.status
        self._enter(new)
        self._start("K", 0 if self.reliable else t.t4, now)

    def _enter(self, state: State) -> None:
        super()._enter(state)
        # Once a final is in, only retransmitted finals are left to absorb (or 2xx to pass up,
        # which carry themselves): the parsed request and response can go (see RequestStub).
        if state in _ANSWERED and not isinstance(self.request, RequestStub):
            req = self.request
            self.request = RequestStub(req.method, req.uri, req.call_id, req.cseq, req.top_via.branch)  # type: ignore[assignment]
            self._request_bytes = b""
            self.final_response = None

    def _on_timer(self, name: str, old: State, at: float) -> None:
        t = self.timers
        if name == "A":
            self._outbox.append(self._request_bytes)
            self._intervals["A"] *= 2
            self._start("A", self._intervals["A"], at)
        elif name == "E":
            self._outbox.append(self._request_bytes)
            if self.state is State.PROCEEDING:
                self._intervals["E"] = t.t2
            else:
                self._intervals["E"] = min(2 * self._intervals["E"], t.t2)
            self._start("E", self._intervals["E"], at)
        # B, F (timeout queued by _fire), D, K, M: entering Terminated was all there was to do.


class ServerTransaction(_Transaction):
    """INVITE server (§17.2.1 + RFC 6026) or non-INVITE server (§17.2.2),
    chosen by the request method. The TU answers through ``send_response``;
    an INVITE server answers 100 Trying by itself after ``timers.trying``
    (200 ms, timer "TRYING") if the TU has not."""

    def __init__(self, request: Request, *, now: float, reliable: bool, timers: Timers = DEFAULT) -> None:
        if request.method == "ACK":
            raise ValueError("ACK has no server transaction of its own (§17.2.3)")
        super().__init__(request, now=now, reliable=reliable, timers=timers)
        self.kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        self.key: tuple = server_key(request)
        self.last_response: Response | None = None
        self.last_status: int | None = None  # kept after the response itself is let go
        self.to_tag: str | None = None  # the To tag our responses carry (for the CANCEL's 200)
        self._last_bytes: bytes | None = None
        if self.kind is Kind.INVITE_SERVER:
            self._enter(State.PROCEEDING)
            self._start("TRYING", timers.trying, now)
        else:
            self._enter(State.TRYING)

    def send_response(self, response: Response, now: float) -> None:
        """The TU's response: queued for sending, and the state moves on.

        Raises TransactionError when the state does not allow it (a second
        final, a provisional after the final, anything once terminated)."""
        inp = _response_input(response.status, "SEND")
        old = self.state
        new = self._step(inp)
        if new is None:
            raise TransactionError(f"cannot send {response.status} in {self.kind.value} {old.name}")
        self._deadlines.pop("TRYING", None)
        self._send(response)
        self._enter(new)
        if old is new:
            return
        t = self.timers
        if self.kind is Kind.INVITE_SERVER:
            if new is State.COMPLETED:
                if not self.reliable:
                    self._intervals["G"] = t.t1
                    self._start("G", t.t1, now)
                self._start("H", 64 * t.t1, now)
            elif new is State.ACCEPTED:
                self._start("L", 64 * t.t1, now)
        elif new is State.COMPLETED:
            self._start("J", 0 if self.reliable else 64 * t.t1, now)

    def receive_request(self, request: Request, now: float) -> None:
        """A request matched to this transaction by ``server_key``: a
        retransmission (re-send the last response) or the ACK for a non-2xx
        final (→ Confirmed, timer I)."""
        inp = Input.RECV_ACK if request.method == "ACK" else Input.RECV_REQUEST
        new = self._step(inp)
        if new is None:
            return  # absorbed
        if inp is Input.RECV_ACK:
            self._events.append(AckReceived(request))
            self._enter(new)
            self._start("I", 0 if self.reliable else self.timers.t4, now)
            return
        if self._last_bytes is not None:
            self._outbox.append(self._last_bytes)
        self._enter(new)

    def _send(self, response: Response) -> None:
        self.last_response = response
        self.last_status = response.status
        if response.status > 100:
            self.to_tag = response.to.tag
        self._last_bytes = bytes(response)
        self._outbox.append(self._last_bytes)

    def _enter(self, state: State) -> None:
        super()._enter(state)
        if state in _ANSWERED and self.last_response is not None and not isinstance(self.request, RequestStub):
            req = self.request
            self.request = RequestStub(req.method, req.uri, req.call_id, req.cseq, req.top_via.branch)  # type: ignore[assignment]
            self.last_response = None

    def _on_timer(self, name: str, old: State, at: float) -> None:
        if name == "TRYING":
            self._send(make_response(self.request, 100))
        elif name == "G":
            assert self._last_bytes is not None
            self._outbox.append(self._last_bytes)
            self._intervals["G"] = min(2 * self._intervals["G"], self.timers.t2)
            self._start("G", self._intervals["G"], at)
        # H (timeout queued by _fire), I, J, L: entering Terminated was all there was to do.

