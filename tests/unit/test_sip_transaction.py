"""RFC 3261 §17 transactions (firmware.sip.transaction) on a fake clock: no sockets, no sleeps."""

from __future__ import annotations

import pytest

from firmware.sip.message import Message, Request, Response, make_response
from firmware.sip.transaction import (
    T1,
    T2,
    T4,
    TRANSITIONS,
    AckReceived,
    ClientTransaction,
    Event,
    Input,
    Kind,
    ResponseReceived,
    ServerTransaction,
    State,
    Terminated,
    Timers,
    TransactionError,
    TransactionTimeout,
    build_ack_for_non2xx,
    build_cancel,
    client_key,
    server_key,
)

S = State


def request(method: str = "INVITE", *, branch: str = "z9hG4bK74bf9", cseq: int = 1, call_id: str = "3848276298220188511@atlanta.example.com",
            via_host: str = "pc33.atlanta.example.com:5060", to_tag: str | None = None) -> Request:
    to = "Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else "")
    return Request(
        method,
        "sip:bob@biloxi.example.com",
        [
            ("Via", f"SIP/2.0/UDP {via_host};branch={branch}"),
            ("Max-Forwards", "70"),
            ("Route", "<sip:proxy.example.com;lr>"),
            ("From", "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl"),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", "<sip:alice@pc33.atlanta.example.com>"),
        ],
        b"",
    )


def wire(msg: Request | Response) -> Request | Response:
    """What the other side would see: serialized and parsed again."""
    return Message.parse(bytes(msg))


def response(req: Request, status: int, tag: str | None = "314159") -> Response:
    return wire(make_response(req, status, to_tag=None if status == 100 else tag))  # type: ignore[return-value]


def advance(tx: ClientTransaction | ServerTransaction, until: float) -> list[tuple[float, bytes]]:
    """Run the fake clock to `until`: fire each timer at its deadline, collect what is sent."""
    sent: list[tuple[float, bytes]] = []
    while (t := tx.get_timer()) is not None and t <= until:
        tx.handle_timer(t)
        sent += [(t, d) for d in tx.datagrams_to_send(t)]
    return sent


def drain(tx: ClientTransaction | ServerTransaction) -> list[Event]:
    out = []
    while (e := tx.next_event()) is not None:
        out.append(e)
    return out


def times(sent: list[tuple[float, bytes]]) -> list[float]:
    return [t for t, _ in sent]


# -- INVITE client (§17.1.1, RFC 6026) ---------------------------------------------------


def test_invite_client_retransmits_until_timer_b() -> None:
    inv = request()
    tx = ClientTransaction(inv, now=0.0, reliable=False)
    assert tx.state is S.CALLING and tx.key == ("z9hG4bK74bf9", "INVITE")
    assert tx.datagrams_to_send(0.0) == [bytes(inv)]
    assert tx.get_timer() == 0.5
    sent = advance(tx, 100.0)
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(d == bytes(inv) for _, d in sent)
    assert drain(tx) == [TransactionTimeout("B"), Terminated()]
    assert tx.history == [S.CALLING, S.TERMINATED]
    assert tx.get_timer() is None


def test_invite_client_timer_a_step_by_step() -> None:
    tx = ClientTransaction(request(), now=10.0, reliable=False)
    tx.datagrams_to_send(10.0)
    tx.handle_timer(10.4)  # early: nothing
    assert tx.datagrams_to_send(10.4) == []
    tx.handle_timer(10.5)
    assert len(tx.datagrams_to_send(10.5)) == 1
    assert tx.get_timer() == 11.5
    assert tx.timer_deadline("B") == 10.0 + 64 * T1


def test_invite_client_provisional_stops_retransmission_then_non2xx_acked() -> None:
    inv = request()
    tx = ClientTransaction(inv, now=0.0, reliable=False)
    tx.datagrams_to_send(0.0)
    assert times(advance(tx, 0.6)) == [0.5]
    trying = response(inv, 100)
    tx.receive_response(trying, 0.7)
    assert tx.state is S.PROCEEDING
    assert drain(tx) == [ResponseReceived(trying)]
    # no timer A/B any more: Proceeding waits for the TU (CANCEL) forever
    assert tx.get_timer() is None and advance(tx, 100.0) == []
    ringing = response(inv, 180)
    tx.receive_response(ringing, 1.0)
    tx.receive_response(ringing, 1.1)  # provisionals go up as they come
    assert drain(tx) == [ResponseReceived(ringing), ResponseReceived(ringing)]

    busy = response(inv, 486)
    tx.receive_response(busy, 2.0)
    assert drain(tx) == [ResponseReceived(busy)]
    (ack,) = tx.datagrams_to_send(2.0)
    assert ack == bytes(build_ack_for_non2xx(inv, busy))
    assert tx.state is S.COMPLETED and tx.get_timer() == 2.0 + 32.0

    tx.receive_response(response(inv, 486), 3.0)  # our ACK was lost: the 486 again
    assert tx.datagrams_to_send(3.0) == [ack]
    assert drain(tx) == []  # retransmitted final absorbed
    tx.receive_response(response(inv, 180), 3.1)  # late provisional absorbed
    assert drain(tx) == [] and tx.datagrams_to_send(3.1) == []

    assert advance(tx, 33.9) == [] and tx.state is S.COMPLETED
    advance(tx, 34.0)
    assert drain(tx) == [Terminated()]
    assert tx.history == [S.CALLING, S.PROCEEDING, S.COMPLETED, S.TERMINATED]


def test_invite_client_ack_for_non2xx_shape() -> None:
    inv = request()
    ack = build_ack_for_non2xx(inv, response(inv, 404, tag="zz9"))
    assert bytes(ack) == (
        b"ACK sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>;tag=zz9\r\n"
        b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
        b"CSeq: 1 ACK\r\n"
        b"Route: <sip:proxy.example.com;lr>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert server_key(wire(ack)) == server_key(inv)  # the server matches it to the INVITE


def test_invite_client_2xx_accepted_timer_m() -> None:
    inv = request()
    tx = ClientTransaction(inv, now=0.0, reliable=False)
    tx.datagrams_to_send(0.0)
    ok = response(inv, 200)
    tx.receive_response(ok, 0.2)
    assert tx.state is S.ACCEPTED
    assert tx.datagrams_to_send(0.2) == []  # the ACK for 2xx is the TU's (§13.2.2.4)
    assert tx.get_timer() == pytest.approx(0.2 + 64 * T1)
    ok_forked = response(inv, 200, tag="other-fork")
    tx.receive_response(ok, 1.0)  # retransmitted 2xx: RFC 6026 passes it up for re-ACK
    tx.receive_response(ok_forked, 1.1)
    tx.receive_response(response(inv, 486), 1.2)  # absorbed
    assert advance(tx, 40.0) == []
    assert drain(tx) == [ResponseReceived(ok), ResponseReceived(ok), ResponseReceived(ok_forked), Terminated()]
    assert tx.history == [S.CALLING, S.ACCEPTED, S.TERMINATED]
    assert tx.final_status == 200 and tx.final_response is None  # let go once answered


def test_invite_client_reliable() -> None:
    inv = request()
    tx = ClientTransaction(inv, now=0.0, reliable=True)
    assert tx.datagrams_to_send(0.0) == [bytes(inv)]
    assert tx.get_timer() == 64 * T1  # only timer B
    tx.receive_response(response(inv, 603), 1.0)
    assert len(tx.datagrams_to_send(1.0)) == 1  # the ACK, once
    assert tx.history == [S.CALLING, S.COMPLETED, S.TERMINATED]  # timer D = 0
    assert [type(e) for e in drain(tx)] == [ResponseReceived, Terminated]

    tx2 = ClientTransaction(inv, now=0.0, reliable=True)
    tx2.datagrams_to_send(0.0)
    assert advance(tx2, 100.0) == []  # no retransmissions on a reliable transport
    assert drain(tx2) == [TransactionTimeout("B"), Terminated()]


def test_invite_client_custom_timers() -> None:
    tx = ClientTransaction(request(), now=0.0, reliable=False, timers=Timers(t1=0.1, t2=1.0, t4=1.0))
    tx.datagrams_to_send(0.0)
    assert times(advance(tx, 10.0)) == pytest.approx([0.1, 0.3, 0.7, 1.5, 3.1, 6.3])  # B at 6.4
    assert drain(tx) == [TransactionTimeout("B"), Terminated()]


def test_ack_has_no_client_transaction() -> None:
    with pytest.raises(ValueError):
        ClientTransaction(request("ACK"), now=0.0, reliable=False)


# -- non-INVITE client (§17.1.2) ------------------------------------------------------------


def test_non_invite_client_timer_e_doubles_capped_then_timer_f() -> None:
    reg = request("REGISTER")
    tx = ClientTransaction(reg, now=0.0, reliable=False)
    assert tx.state is S.TRYING and tx.key == ("z9hG4bK74bf9", "REGISTER")
    assert tx.datagrams_to_send(0.0) == [bytes(reg)]
    sent = advance(tx, 100.0)
    # intervals 0.5, 1, 2, 4 (=T2), 4, 4 ... until timer F at 64*T1 = 32
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert drain(tx) == [TransactionTimeout("F"), Terminated()]
    assert tx.history == [S.TRYING, S.TERMINATED]


def test_non_invite_client_proceeding_retransmits_at_t2_then_timer_k() -> None:
    opt = request("OPTIONS")
    tx = ClientTransaction(opt, now=0.0, reliable=False)
    tx.datagrams_to_send(0.0)
    trying = response(opt, 100)
    tx.receive_response(trying, 0.2)
    assert tx.state is S.PROCEEDING
    # E keeps running in Proceeding, then at T2 intervals
    assert times(advance(tx, 9.0)) == [0.5, 0.5 + T2, 0.5 + 2 * T2]
    ok = response(opt, 200)
    tx.receive_response(ok, 9.0)
    assert tx.state is S.COMPLETED and tx.get_timer() == 9.0 + T4
    tx.receive_response(ok, 9.5)  # retransmission absorbed
    assert advance(tx, 20.0) == []
    assert drain(tx) == [ResponseReceived(trying), ResponseReceived(ok), Terminated()]
    assert tx.history == [S.TRYING, S.PROCEEDING, S.COMPLETED, S.TERMINATED]


def test_non_invite_client_final_in_trying() -> None:
    reg = request("REGISTER")
    tx = ClientTransaction(reg, now=0.0, reliable=False)
    tx.datagrams_to_send(0.0)
    unauthorized = response(reg, 401)
    tx.receive_response(unauthorized, 0.1)
    assert tx.datagrams_to_send(0.1) == []  # no ACK outside INVITE
    assert advance(tx, 0.1 + T4) == []
    assert drain(tx) == [ResponseReceived(unauthorized), Terminated()]
    assert tx.history == [S.TRYING, S.COMPLETED, S.TERMINATED]


def test_non_invite_client_reliable() -> None:
    bye = request("BYE", to_tag="314159")
    tx = ClientTransaction(bye, now=0.0, reliable=True)
    tx.datagrams_to_send(0.0)
    assert tx.get_timer() == 64 * T1  # F only
    tx.receive_response(response(bye, 200), 0.3)
    assert tx.history == [S.TRYING, S.COMPLETED, S.TERMINATED]  # timer K = 0
    tx2 = ClientTransaction(bye, now=0.0, reliable=True)
    tx2.datagrams_to_send(0.0)
    assert advance(tx2, 100.0) == []
    assert drain(tx2) == [TransactionTimeout("F"), Terminated()]


# -- INVITE server (§17.2.1, RFC 6026) ---------------------------------------------------------


def test_invite_server_auto_100_after_200ms() -> None:
    inv = request()
    tx = ServerTransaction(wire(inv), now=0.0, reliable=False)  # type: ignore[arg-type]
    assert tx.state is S.PROCEEDING and tx.datagrams_to_send(0.0) == []
    assert tx.get_timer() == pytest.approx(0.2)
    sent = advance(tx, 1.0)
    assert times(sent) == [pytest.approx(0.2)]
    trying = Message.parse(sent[0][1])
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.top_via.branch == "z9hG4bK74bf9" and trying.to.tag is None
    # the INVITE retransmitted: the 100 again
    tx.receive_request(wire(inv), 0.5)  # type: ignore[arg-type]
    assert tx.datagrams_to_send(0.5) == [sent[0][1]]
    assert drain(tx) == []


def test_invite_server_tu_answers_in_time_no_auto_100() -> None:
    inv = wire(request())
    tx = ServerTransaction(inv, now=0.0, reliable=False)  # type: ignore[arg-type]
    ringing = make_response(inv, 180, to_tag="t1")  # type: ignore[arg-type]
    tx.send_response(ringing, 0.1)
    assert tx.datagrams_to_send(0.1) == [bytes(ringing)]
    assert tx.get_timer() is None and advance(tx, 5.0) == []


def test_invite_server_non2xx_timer_g_until_ack_then_timer_i() -> None:
    inv = wire(request())
    tx = ServerTransaction(inv, now=0.0, reliable=False)  # type: ignore[arg-type]
    advance(tx, 0.2)  # auto 100
    busy = make_response(inv, 486, to_tag="t1")  # type: ignore[arg-type]
    tx.send_response(busy, 1.0)
    assert tx.datagrams_to_send(1.0) == [bytes(busy)]
    assert tx.state is S.COMPLETED
    assert tx.timer_deadline("H") == 1.0 + 64 * T1
    # G: 0.5, 1, 2, 4, 4 ...
    sent = advance(tx, 13.0)
    assert times(sent) == [1.5, 2.5, 4.5, 8.5, 12.5]
    assert all(d == bytes(busy) for _, d in sent)
    tx.receive_request(wire(inv), 13.2)  # type: ignore[arg-type]  # INVITE again: the 486 again
    assert tx.datagrams_to_send(13.2) == [bytes(busy)]
    ack = wire(build_ack_for_non2xx(inv, wire(busy)))  # type: ignore[arg-type]
    assert server_key(ack) == tx.key  # type: ignore[arg-type]
    tx.receive_request(ack, 14.0)  # type: ignore[arg-type]
    assert tx.state is S.CONFIRMED and tx.get_timer() == 14.0 + T4  # G and H stopped
    tx.receive_request(ack, 14.5)  # type: ignore[arg-type]  # ACK retransmission absorbed
    tx.receive_request(wire(inv), 14.6)  # type: ignore[arg-type]
    assert tx.datagrams_to_send(14.6) == []
    assert advance(tx, 100.0) == []
    assert drain(tx) == [AckReceived(ack), Terminated()]  # type: ignore[arg-type]
    assert tx.history == [S.PROCEEDING, S.COMPLETED, S.CONFIRMED, S.TERMINATED]


def test_invite_server_timer_h_without_ack() -> None:
    inv = wire(request())
    tx = ServerTransaction(inv, now=0.0, reliable=False)  # type: ignore[arg-type]
    tx.send_response(make_response(inv, 404, to_tag="t"), 0.0)  # type: ignore[arg-type]
    tx.datagrams_to_send(0.0)
    sent = advance(tx, 100.0)
    assert times(sent) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert drain(tx) == [TransactionTimeout("H"), Terminated()]
    assert tx.history == [S.PROCEEDING, S.COMPLETED, S.TERMINATED]


def test_invite_server_2xx_accepted_timer_l() -> None:
    inv = wire(request())
    tx = ServerTransaction(inv, now=0.0, reliable=False)  # type: ignore[arg-type]
    ok = make_response(inv, 200, to_tag="t")  # type: ignore[arg-type]
    tx.send_response(ok, 0.1)
    assert tx.state is S.ACCEPTED and tx.get_timer() == pytest.approx(0.1 + 64 * T1)
    tx.datagrams_to_send(0.1)
    tx.receive_request(wire(inv), 0.6)  # type: ignore[arg-type]  # absorbed: the TU retransmits 2xx
    assert tx.datagrams_to_send(0.6) == []
    tx.send_response(ok, 0.6)  # TU's 2xx retransmission (§13.3.1.4) goes through
    assert tx.datagrams_to_send(0.6) == [bytes(ok)]
    with pytest.raises(TransactionError):
        tx.send_response(make_response(inv, 500), 0.7)  # type: ignore[arg-type]
    advance(tx, 100.0)
    assert drain(tx) == [Terminated()]
    assert tx.history == [S.PROCEEDING, S.ACCEPTED, S.TERMINATED]
    with pytest.raises(TransactionError):
        tx.send_response(ok, 100.0)


def test_invite_server_reliable() -> None:
    inv = wire(request())
    tx = ServerTransaction(inv, now=0.0, reliable=True)  # type: ignore[arg-type]
    assert len(advance(tx, 0.2)) == 1  # 100 Trying is sent on reliable transports too
    busy = make_response(inv, 486, to_tag="t1")  # type: ignore[arg-type]
    tx.send_response(busy, 1.0)
    tx.datagrams_to_send(1.0)
    assert tx.get_timer() == 1.0 + 64 * T1  # H only, no G
    tx.receive_request(wire(build_ack_for_non2xx(inv, busy)), 2.0)  # type: ignore[arg-type]
    assert tx.history == [S.PROCEEDING, S.COMPLETED, S.CONFIRMED, S.TERMINATED]  # I = 0
    assert [type(e) for e in drain(tx)] == [AckReceived, Terminated]
    assert tx.get_timer() is None


# -- non-INVITE server (§17.2.2) ----------------------------------------------------------------


def test_non_invite_server_timer_j_absorbs_retransmissions() -> None:
    reg = wire(request("REGISTER"))
    tx = ServerTransaction(reg, now=0.0, reliable=False)  # type: ignore[arg-type]
    assert tx.state is S.TRYING and tx.get_timer() is None  # no auto 100 outside INVITE
    tx.receive_request(reg, 0.5)  # type: ignore[arg-type]  # nothing sent yet: absorbed
    assert tx.datagrams_to_send(0.5) == []
    trying = make_response(reg, 100)  # type: ignore[arg-type]
    tx.send_response(trying, 0.6)
    tx.receive_request(reg, 1.5)  # type: ignore[arg-type]
    assert tx.datagrams_to_send(1.5) == [bytes(trying), bytes(trying)]
    ok = make_response(reg, 200, to_tag="t")  # type: ignore[arg-type]
    tx.send_response(ok, 2.0)
    assert tx.state is S.COMPLETED and tx.get_timer() == 2.0 + 64 * T1
    tx.receive_request(reg, 3.5)  # type: ignore[arg-type]
    tx.receive_request(reg, 7.5)  # type: ignore[arg-type]
    assert tx.datagrams_to_send(7.5) == [bytes(ok), bytes(ok), bytes(ok)]
    with pytest.raises(TransactionError):
        tx.send_response(make_response(reg, 500), 8.0)  # type: ignore[arg-type]
    advance(tx, 100.0)
    assert drain(tx) == [Terminated()]
    assert tx.history == [S.TRYING, S.PROCEEDING, S.COMPLETED, S.TERMINATED]


def test_non_invite_server_reliable_and_ack_ignored() -> None:
    bye = wire(request("BYE", to_tag="t"))
    tx = ServerTransaction(bye, now=0.0, reliable=True)  # type: ignore[arg-type]
    tx.receive_request(wire(request("ACK")), 0.1)  # type: ignore[arg-type]
    assert drain(tx) == [] and tx.state is S.TRYING
    tx.send_response(make_response(bye, 200), 0.2)  # type: ignore[arg-type]
    assert tx.history == [S.TRYING, S.COMPLETED, S.TERMINATED]  # J = 0
    assert drain(tx) == [Terminated()]


# -- matching and helper requests (§17.1.3, §17.2.3, §9.1) -------------------------------------


def test_client_key_matches_branch_and_cseq_method() -> None:
    inv = request()
    tx = ClientTransaction(inv, now=0.0, reliable=False)
    assert client_key(response(inv, 180)) == tx.key
    cancel = build_cancel(inv)
    ctx = ClientTransaction(cancel, now=0.0, reliable=False)
    assert ctx.key == ("z9hG4bK74bf9", "CANCEL") != tx.key
    assert client_key(response(wire(cancel), 200)) == ctx.key  # type: ignore[arg-type]


def test_server_key_rfc3261() -> None:
    inv = wire(request())
    key = server_key(inv)  # type: ignore[arg-type]
    assert key == ("z9hG4bK74bf9", "pc33.atlanta.example.com:5060", "INVITE")
    ack = wire(build_ack_for_non2xx(inv, make_response(inv, 486, to_tag="t")))  # type: ignore[arg-type]
    assert server_key(ack) == key  # type: ignore[arg-type]
    cancel = wire(build_cancel(inv))  # type: ignore[arg-type]
    assert server_key(cancel) == key[:2] + ("CANCEL",)  # type: ignore[arg-type]
    # same branch from another sent-by is another transaction
    assert server_key(wire(request(via_host="10.0.0.9"))) != key  # type: ignore[arg-type]
    assert server_key(wire(request(via_host="10.0.0.9")))[1] == "10.0.0.9"  # type: ignore[arg-type]


def test_server_key_rfc2543_fallback() -> None:
    inv = wire(request(branch="1"))  # an RFC 2543 UA: no magic cookie
    key = server_key(inv)  # type: ignore[arg-type]
    assert key[0] == "rfc2543"
    retrans = wire(request(branch="1"))
    assert server_key(retrans) == key  # type: ignore[arg-type]
    ack = wire(build_ack_for_non2xx(inv, make_response(inv, 486, to_tag="t")))  # type: ignore[arg-type]
    assert server_key(ack) == key  # type: ignore[arg-type]
    assert server_key(wire(request(branch="1", call_id="other"))) != key  # type: ignore[arg-type]
    assert server_key(wire(request(branch="1", cseq=2))) != key  # type: ignore[arg-type]
    bye1 = server_key(wire(request("BYE", branch="1", to_tag="a")))  # type: ignore[arg-type]
    bye2 = server_key(wire(request("BYE", branch="1", to_tag="b")))  # type: ignore[arg-type]
    assert bye1 != bye2  # the To tag counts outside INVITE/ACK


def test_build_cancel_shape() -> None:
    inv = request()
    assert bytes(build_cancel(inv)) == (
        b"CANCEL sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>\r\n"
        b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
        b"CSeq: 1 CANCEL\r\n"
        b"Route: <sip:proxy.example.com;lr>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


# -- the table itself -------------------------------------------------------------------------


def test_transition_table_covers_timers_a_to_m() -> None:
    timers_used = {inp.name for table in TRANSITIONS.values() for (_, inp) in table}
    for letter in "ABDEFGHIJKLM":
        assert f"TIMER_{letter}" in timers_used
    # every non-terminal state of each machine can reach Terminated through the table
    for kind, table in TRANSITIONS.items():
        states = {s for s, _ in table} | set(table.values())
        for start in states - {S.TERMINATED}:
            seen, todo = {start}, [start]
            while todo:
                cur = todo.pop()
                for (s, _), nxt in table.items():
                    if s is cur and nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            assert S.TERMINATED in seen, (kind, start)
    assert TRANSITIONS[Kind.INVITE_CLIENT][(S.CALLING, Input.RECV_2XX)] is S.ACCEPTED


# -- both ends over a lossy link (aioquic-style pump) ------------------------------------------


def test_client_and_server_over_lossy_udp() -> None:
    """INVITE → 486; the first ACK is lost; G makes the server re-send the 486,
    the client re-sends its ACK, and both ends terminate cleanly."""
    inv = request()
    client = ClientTransaction(inv, now=0.0, reliable=False)
    server: ServerTransaction | None = None
    lost = {"ACK": 1}  # drop the first ACK
    trace: list[tuple[float, str]] = []

    def deliver(now: float) -> None:
        nonlocal server
        for data in client.datagrams_to_send(now):
            msg = Message.parse(data)
            assert isinstance(msg, Request)
            if lost.get(msg.method):
                lost[msg.method] -= 1
                trace.append((now, f"lost {msg.method}"))
                continue
            trace.append((now, f"c→s {msg.method}"))
            if server is None:
                server = ServerTransaction(msg, now=now, reliable=False)
                server.send_response(make_response(msg, 486, to_tag="s1"), now)
            else:
                server.receive_request(msg, now)
        if server is not None:
            for data in server.datagrams_to_send(now):
                resp = Message.parse(data)
                assert isinstance(resp, Response)
                trace.append((now, f"s→c {resp.status}"))
                client.receive_response(resp, now)
            for data in client.datagrams_to_send(now):  # the ACK answers at once
                msg = Message.parse(data)
                if lost.get(msg.method):  # type: ignore[union-attr]
                    lost[msg.method] -= 1  # type: ignore[union-attr]
                    trace.append((now, f"lost {msg.method}"))  # type: ignore[union-attr]
                    continue
                trace.append((now, f"c→s {msg.method}"))  # type: ignore[union-attr]
                assert server is not None
                server.receive_request(msg, now)  # type: ignore[arg-type]

    now = 0.0
    deliver(now)
    while True:
        deadlines = [t for t in (client.get_timer(), server.get_timer() if server else None) if t is not None]
        if not deadlines:
            break
        now = min(deadlines)
        client.handle_timer(now)
        if server is not None:
            server.handle_timer(now)
        deliver(now)

    assert trace == [
        (0.0, "c→s INVITE"),
        (0.0, "s→c 486"),
        (0.0, "lost ACK"),
        (0.5, "s→c 486"),  # timer G
        (0.5, "c→s ACK"),  # the client re-sends its ACK
    ]
    assert client.history == [S.CALLING, S.COMPLETED, S.TERMINATED]
    assert server is not None
    assert server.history == [S.PROCEEDING, S.COMPLETED, S.CONFIRMED, S.TERMINATED]
    assert [type(e) for e in drain(client)] == [ResponseReceived, Terminated]
    assert [type(e) for e in drain(server)] == [AckReceived, Terminated]
    assert now == pytest.approx(32.0)  # the last thing to fire is the client's timer D
