"""The sans-I/O SIP endpoint (firmware.sip.endpoint) on a fake clock: bytes in, bytes and events out."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.sip.endpoint import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    Flow,
    RequestReceived,
    RequestTimeout,
    ResponseReceived,
    SipEndpoint,
)
from firmware.sip.message import Message, Request, Response, make_response
from firmware.sip.transaction import T1, T2, TransactionError, build_cancel

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
RFC4475 = TESTDATA / "rfc4475"

LOCAL = ("10.0.0.1", 5060)
PEER = ("198.51.100.7", 40123)
UDP = Flow("udp", PEER, LOCAL)
TCP = Flow("tcp", PEER, LOCAL, conn_id=7)


def torture(name: str) -> bytes:
    return (RFC4475 / f"{name}.dat").read_bytes()


def raw_request(method: str = "INVITE", *, branch: str = "z9hG4bKabc1", cseq: int = 1, call_id: str = "call-1",
                from_tag: str = "ft1", to_tag: str | None = None, via_host: str = "198.51.100.7:40123",
                rport: bool = True, extra: str = "", body: bytes = b"", ruri: str = "sip:bob@10.0.0.1",
                cseq_method: str | None = None) -> bytes:
    to = "<sip:bob@10.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    via = f"SIP/2.0/UDP {via_host};branch={branch}" + (";rport" if rport else "")
    head = (
        f"{method} {ruri} SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:alice@example.com>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Contact: <sip:alice@198.51.100.7:40123>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def drain(ep: SipEndpoint) -> tuple[list[tuple[Message, Flow]], list[object]]:
    out = [(Message.parse(data), flow) for data, flow in ep.datagrams_to_send()]
    events = []
    while (ev := ep.next_event()) is not None:
        events.append(ev)
    return out, events


def statuses(out: list[tuple[Message, Flow]]) -> list[int]:
    return [m.status for m, _ in out if isinstance(m, Response)]


def run_timers(ep: SipEndpoint, until: float) -> list[tuple[float, bytes, Flow]]:
    """Fire every timer up to `until`, returning what was sent, with the time."""
    sent = []
    while (t := ep.get_timer()) is not None and t <= until:
        ep.handle_timer(t)
        sent += [(t, d, f) for d, f in ep.datagrams_to_send()]
    return sent


# -- requests reaching the TU ----------------------------------------------------------------


def test_invite_goes_up_once_retransmission_absorbed_and_trying_after_200ms() -> None:
    ep = SipEndpoint()
    data = raw_request()
    ep.receive(data, UDP, 0.0)
    out, events = drain(ep)
    assert out == []
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    ev = events[0]
    assert ev.flow == UDP and ev.request.method == "INVITE"
    # RFC 3581: rport and received stamped on the top Via
    assert ev.request.top_via.params["rport"] == "40123"
    assert ev.request.top_via.received == "198.51.100.7"
    ep.receive(data, UDP, 0.1)
    assert drain(ep) == ([], [])  # retransmission before anything was sent: absorbed
    assert ep.get_timer() == pytest.approx(0.2)
    ep.handle_timer(0.2)
    out, events = drain(ep)
    assert statuses(out) == [100] and events == []
    assert out[0][1] == UDP
    ep.receive(data, UDP, 0.3)
    out, _ = drain(ep)
    assert statuses(out) == [100]  # the retransmission gets the last response again


def test_response_carries_received_and_rport_and_goes_to_the_source() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request("OPTIONS", via_host="evil.example.net:9", rport=True), UDP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="t"), 0.0)
    [(resp, flow)] = drain(ep)[0]
    assert flow == UDP  # never to evil.example.net:9
    via = resp.top_via
    assert via.host == "evil.example.net" and via.received == "198.51.100.7" and via.rport == "40123"
    assert resp.headers.get("Server") == "LineBox"


def test_no_rport_same_host_leaves_via_alone() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request("OPTIONS", via_host="198.51.100.7:40123", rport=False), UDP, 0.0)
    _, [ev] = drain(ep)
    assert "received" not in ev.request.top_via.params
    assert "rport" not in ev.request.top_via.params


def test_hostile_via_answer_goes_to_flow_source() -> None:
    ep = SipEndpoint()
    # a request that gets a 501 from the endpoint itself, with a Via naming a third party
    ep.receive(raw_request("FOO", via_host="192.0.2.200:5060", rport=False), UDP, 0.0)
    [(resp, flow)] = drain(ep)[0]
    assert resp.status == 501 and flow == UDP
    assert resp.top_via.received == "198.51.100.7"


def test_tcp_flow_kept_for_responses() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request("OPTIONS"), TCP, 0.0)
    _, [ev] = drain(ep)
    assert ev.flow == TCP
    ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="t"), 0.0)
    [(resp, flow)] = drain(ep)[0]
    assert flow == TCP and flow.conn_id == 7
    run_timers(ep, 1.0)  # timer J is zero on TCP
    assert ep.transaction_count() == 0


# -- the endpoint's own answers (RFC 4475 where it fits) ----------------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [("bext01", 420), ("invut", 415), ("esc02", 501), ("mismatch02", 501), ("unkscm", 416), ("novelsc", 416),
     ("badvers", 505), ("clerr", 400), ("mismatch01", 400), ("ncl", 400), ("sdp01", 406)],
)
def test_rfc4475_answers(name: str, status: int) -> None:
    ep = SipEndpoint()
    ep.receive(torture(name), UDP, 0.0)
    out, events = drain(ep)
    assert statuses(out) == [status]
    assert events == []
    resp, flow = out[0]
    assert flow == UDP
    if status != 100:
        assert resp.to.tag  # §8.2.6.2
    if name == "bext01":
        assert resp.headers.get_all("Unsupported") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    if name == "invut":
        assert resp.headers.get("Accept") == "application/sdp"
    assert ep.transaction_count() == 0  # rejected requests leave no state


def test_insuf_gets_400_naming_what_is_missing() -> None:
    # RFC 4475 §3.3.1: no Call-ID, From or To -> 400, built from what the request has
    ep = SipEndpoint()
    ep.receive(torture("insuf"), UDP, 0.0)
    [(data, flow)] = ep.datagrams_to_send()  # raw: a response lacking From/To does not parse
    assert data.startswith(b"SIP/2.0 400 ") and ep.next_event() is None
    assert flow.remote == UDP.remote
    assert b"\r\nVia:" in data and b"\r\nCSeq:" in data


def test_zeromf_options_reaches_tu_but_invite_gets_483() -> None:
    ep = SipEndpoint()
    ep.receive(torture("zeromf"), UDP, 0.0)
    out, events = drain(ep)
    assert out == [] and isinstance(events[0], RequestReceived)
    data = torture("zeromf").replace(b"OPTIONS", b"INVITE")
    ep.receive(data.replace(b"z9hG4bKkdjuw2349i", b"z9hG4bKother"), UDP, 0.0)
    out, events = drain(ep)
    assert statuses(out) == [483] and events == []


@pytest.mark.parametrize("name", ["scalarlg", "bigcode", "bcast", "unreason", "noreason"])
# bcast and unreason are 2xx to INVITE: a stray 2xx goes up only when its top Via is ours
def test_responses_that_match_nothing_are_dropped(name: str) -> None:
    ep = SipEndpoint()
    ep.receive(torture(name), UDP, 0.0)
    assert drain(ep) == ([], [])


def test_405_for_known_method_not_allowed_lists_allow() -> None:
    ep = SipEndpoint(allow=frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"}))
    ep.receive(raw_request("REGISTER"), UDP, 0.0)
    [(resp, _)] = drain(ep)[0]
    assert resp.status == 405
    assert set(resp.headers.get_all("Allow")) == {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"}


def test_accept_with_sdp_passes() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request(extra="Accept: application/sdp;level=1, text/html\r\n"), UDP, 0.0)
    assert isinstance(drain(ep)[1][0], RequestReceived)


def test_require_supported_tag_passes() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request(extra="Require: Timer\r\n"), UDP, 0.0)
    assert isinstance(drain(ep)[1][0], RequestReceived)


def test_content_encoding_gzip_gets_415_with_accept_encoding() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request("MESSAGE", extra="Content-Type: text/plain\r\nContent-Encoding: gzip\r\n", body=b"x"), UDP, 0.0)
    [(resp, _)] = drain(ep)[0]
    assert resp.status == 415 and resp.headers.get("Accept-Encoding") == "identity"


def test_invite_with_sdp_and_multipart_sdp_accepted() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request(extra="Content-Type: application/sdp\r\n", body=b"v=0\r\n"), UDP, 0.0)
    assert isinstance(drain(ep)[1][0], RequestReceived)
    body = b"--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b--\r\n"
    ep.receive(raw_request(branch="z9hG4bKmp", call_id="c2", extra="Content-Type: multipart/mixed;boundary=b\r\n", body=body), UDP, 0.0)
    assert isinstance(drain(ep)[1][0], RequestReceived)


def test_merged_request_482() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request(branch="z9hG4bKpath1"), UDP, 0.0)
    [ev] = drain(ep)[1]
    ep.receive(raw_request(branch="z9hG4bKpath2"), Flow("udp", ("203.0.113.9", 5060), LOCAL), 0.0)
    [(resp, flow)] = drain(ep)[0]
    assert resp.status == 482 and flow.remote == ("203.0.113.9", 5060)
    ep.send_response(ev.tx, make_response(ev.request, 486, to_tag="x"), 0.0)
    # the transaction is gone: the same request is new again
    run_timers(ep, 1000)
    assert ep.transaction_count() == 0
    ep.receive(raw_request(branch="z9hG4bKpath2"), UDP, 2000.0)
    assert isinstance(drain(ep)[1][0], RequestReceived)


def test_unparseable_request_without_headers_is_dropped() -> None:
    ep = SipEndpoint()
    ep.receive(b"\r\n\r\n", UDP, 0.0)
    ep.receive(b"garbage", UDP, 0.0)
    assert drain(ep) == ([], [])


# -- CANCEL ----------------------------------------------------------------------------------


def test_cancel_answers_200_and_tells_the_tu() -> None:
    ep = SipEndpoint()
    invite = raw_request()
    ep.receive(invite, UDP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 180, to_tag="uas1"), 0.0)
    drain(ep)
    cancel = bytes(build_cancel(Message.parse(invite)))
    ep.receive(cancel, UDP, 1.0)
    out, events = drain(ep)
    assert [(m.status, m.cseq.method) for m, _ in out] == [(200, "CANCEL")]
    assert out[0][0].to.tag == "uas1"
    assert len(events) == 1 and isinstance(events[0], CancelReceived)
    assert events[0].invite_tx is ev.tx
    # a retransmitted CANCEL gets its 200 again, no second event
    ep.receive(cancel, UDP, 1.1)
    out, events = drain(ep)
    assert statuses(out) == [200] and events == []
    ep.send_response(ev.tx, make_response(ev.request, 487, to_tag="uas1"), 1.2)
    out, _ = drain(ep)
    assert statuses(out) == [487]
    # the ACK for the 487 is absorbed by the INVITE transaction
    ack = raw_request("ACK", to_tag="uas1", cseq_method="ACK")
    ep.receive(ack, UDP, 1.3)
    assert drain(ep) == ([], [])
    run_timers(ep, 100)
    assert ep.transaction_count() == 0


def test_cancel_without_invite_481_and_after_final_200_without_event() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request("CANCEL"), UDP, 0.0)
    assert statuses(drain(ep)[0]) == [481]
    invite = raw_request(branch="z9hG4bKdone")
    ep.receive(invite, UDP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 486, to_tag="x"), 0.0)
    drain(ep)
    ep.receive(bytes(build_cancel(Message.parse(invite))), UDP, 0.5)
    out, events = drain(ep)
    assert statuses(out) == [200] and events == []


# -- 2xx to INVITE: retransmitted by the UAS core until the ACK -------------------------------


def test_2xx_retransmitted_until_ack() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request(), UDP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="uas"), 0.0)
    assert statuses(drain(ep)[0]) == [200]
    sent = run_timers(ep, 3.6)
    assert [t for t, _, _ in sent] == pytest.approx([T1, 3 * T1, 7 * T1])  # T1, 2T1, 4T1 apart
    assert all(Message.parse(d).status == 200 and f == UDP for _, d, f in sent)
    sent = run_timers(ep, 12)
    gaps = [b - a for (a, _, _), (b, _, _) in zip(sent, sent[1:])]
    assert all(g == pytest.approx(T2) for g in gaps)  # capped at T2
    ack = raw_request("ACK", branch="z9hG4bKack", to_tag="uas", cseq_method="ACK")
    ep.receive(ack, UDP, 12.5)
    out, events = drain(ep)
    assert out == [] and len(events) == 1 and isinstance(events[0], AckReceived)
    assert events[0].flow == UDP
    assert run_timers(ep, 100) == []  # no more retransmissions, no AckTimeout
    assert drain(ep) == ([], [])
    ep.receive(ack, UDP, 13.0)  # a retransmitted ACK: dropped
    assert drain(ep) == ([], [])
    assert ep.transaction_count() == 0 and ep.pending_2xx_count() == 0


def test_invite_retransmission_after_2xx_is_absorbed() -> None:
    ep = SipEndpoint()
    data = raw_request()
    ep.receive(data, UDP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="uas"), 0.0)
    drain(ep)
    ep.receive(data, UDP, 0.1)
    assert drain(ep) == ([], [])


def test_ack_timeout_after_64_t1() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request(), UDP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="uas"), 0.0)
    drain(ep)
    run_timers(ep, 64 * T1 - 0.01)
    assert drain(ep)[1] == []
    run_timers(ep, 64 * T1)
    events = drain(ep)[1]
    assert len(events) == 1 and isinstance(events[0], AckTimeout) and events[0].tx is ev.tx
    run_timers(ep, 1000)
    assert ep.transaction_count() == 0 and ep.pending_2xx_count() == 0


def test_2xx_on_tcp_not_retransmitted_but_ack_timeout_runs() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request(), TCP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="uas"), 0.0)
    assert statuses(drain(ep)[0]) == [200]
    assert run_timers(ep, 64 * T1) == []
    assert isinstance(drain(ep)[1][0], AckTimeout)


def test_ack_with_same_branch_as_invite_counts_as_2xx_ack() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request(branch="z9hG4bKsame"), UDP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="uas"), 0.0)
    drain(ep)
    ep.receive(raw_request("ACK", branch="z9hG4bKsame", to_tag="uas", cseq_method="ACK"), UDP, 0.1)
    assert isinstance(drain(ep)[1][0], AckReceived)


def test_stray_ack_dropped() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request("ACK", to_tag="nobody", cseq_method="ACK"), UDP, 0.0)
    assert drain(ep) == ([], [])


def test_second_final_raises() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request("OPTIONS"), UDP, 0.0)
    _, [ev] = drain(ep)
    ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="a"), 0.0)
    with pytest.raises(TransactionError):
        ep.send_response(ev.tx, make_response(ev.request, 200, to_tag="a"), 0.0)


# -- client side ---------------------------------------------------------------------------


def new_request(method: str = "INVITE") -> Request:
    return Request(method, "sip:alice@198.51.100.7:40123", [
        ("Max-Forwards", "70"),
        ("From", "<sip:bob@10.0.0.1>;tag=uac"),
        ("To", "<sip:alice@198.51.100.7>"),
        ("Call-ID", "out-1"),
        ("CSeq", f"1 {method}"),
    ])


def answer(req_bytes: bytes, status: int, to_tag: str = "far") -> bytes:
    return bytes(make_response(Message.parse(req_bytes), status, to_tag=to_tag))


def test_send_request_adds_via_and_matches_responses() -> None:
    ep = SipEndpoint()
    tx = ep.send_request(new_request(), UDP, 0.0)
    [(data, flow)] = ep.datagrams_to_send()
    assert flow == UDP
    sent = Message.parse(data)
    via = sent.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "10.0.0.1", 5060)
    assert via.branch.startswith("z9hG4bK") and "rport" in via.params
    assert sent.headers.get("User-Agent") == "LineBox"
    ep.receive(answer(data, 180), UDP, 0.1)
    ep.receive(answer(data, 200), UDP, 0.2)
    _, events = drain(ep)
    assert [(type(e), e.response.status, e.tx) for e in events] == [
        (ResponseReceived, 180, tx), (ResponseReceived, 200, tx)]
    ep.receive(answer(data, 200), UDP, 0.3)  # retransmitted 2xx: up again (RFC 6026)
    assert [e.tx for e in drain(ep)[1]] == [tx]
    run_timers(ep, 100)
    assert ep.transaction_count() == 0
    ep.receive(answer(data, 200), UDP, 101)  # after timer M: tx None, the TU re-ACKs
    [ev] = drain(ep)[1]
    assert isinstance(ev, ResponseReceived) and ev.tx is None
    ep.receive(answer(data, 486), UDP, 102)  # a stray non-2xx: dropped
    assert drain(ep) == ([], [])


def test_tcp_via_and_no_retransmission() -> None:
    ep = SipEndpoint()
    ep.send_request(new_request("OPTIONS"), TCP, 0.0)
    [(data, flow)] = ep.datagrams_to_send()
    assert Message.parse(data).top_via.transport == "TCP" and flow == TCP
    assert run_timers(ep, 64 * T1) == []
    [ev] = drain(ep)[1]
    assert isinstance(ev, RequestTimeout)
    assert ep.transaction_count() == 0


def test_non_2xx_final_is_acked_by_the_transaction() -> None:
    ep = SipEndpoint()
    ep.send_request(new_request(), UDP, 0.0)
    [(data, _)] = ep.datagrams_to_send()
    ep.receive(answer(data, 486), UDP, 0.1)
    out, events = drain(ep)
    assert [m.method for m, _ in out] == ["ACK"]
    assert events[0].response.status == 486


def test_invite_timeout_timer_b() -> None:
    ep = SipEndpoint()
    tx = ep.send_request(new_request(), UDP, 0.0)
    ep.datagrams_to_send()
    sent = run_timers(ep, 64 * T1)
    assert len(sent) == 6  # timer A: T1, 2T1, ... 32T1
    [ev] = drain(ep)[1]
    assert isinstance(ev, RequestTimeout) and ev.tx is tx
    assert ep.transaction_count() == 0


def test_cancel_runs_in_its_own_client_transaction() -> None:
    ep = SipEndpoint()
    invite_tx = ep.send_request(new_request(), UDP, 0.0)
    [(data, _)] = ep.datagrams_to_send()
    ep.receive(answer(data, 180), UDP, 0.1)
    drain(ep)
    cancel_tx = ep.send_request(build_cancel(invite_tx.request), UDP, 0.2)
    [(cdata, _)] = ep.datagrams_to_send()
    cancel = Message.parse(cdata)
    assert cancel.method == "CANCEL" and cancel.top_via.branch == invite_tx.request.top_via.branch
    ep.receive(answer(cdata, 200), UDP, 0.3)
    ep.receive(answer(data, 487), UDP, 0.4)
    out, events = drain(ep)
    assert [(e.tx, e.response.status) for e in events] == [(cancel_tx, 200), (invite_tx, 487)]
    assert [m.method for m, _ in out] == ["ACK"]


def test_send_ack_without_transaction() -> None:
    ep = SipEndpoint()
    ack = new_request("ACK")
    ep.send_ack(ack, UDP)
    [(data, flow)] = ep.datagrams_to_send()
    assert Message.parse(data).method == "ACK" and flow == UDP
    assert ep.transaction_count() == 0
    with pytest.raises(ValueError):
        ep.send_request(new_request("ACK"), UDP, 0.0)


def test_flow_failed_reports_request_timeout() -> None:
    ep = SipEndpoint()
    flow = Flow("tcp", PEER, LOCAL)
    tx = ep.send_request(new_request(), flow, 0.0)
    other = ep.send_request(new_request("OPTIONS"), Flow("tcp", ("192.0.2.1", 5060), LOCAL), 0.0)
    ep.datagrams_to_send()
    ep.flow_failed(flow, 0.01)
    [ev] = drain(ep)[1]
    assert isinstance(ev, RequestTimeout) and ev.tx is tx
    assert ep.transaction_count() == 1
    assert other.state.name == "TRYING"
    run_timers(ep, 100)


def test_send_stateless() -> None:
    ep = SipEndpoint()
    resp = make_response(Message.parse(raw_request("OPTIONS")), 404, to_tag="x")
    ep.send_stateless(resp, UDP)
    assert ep.datagrams_to_send() == [(bytes(resp), UDP)]


# -- no leaks -------------------------------------------------------------------------------


def test_1000_transactions_leave_nothing_behind() -> None:
    ep = SipEndpoint()
    now = 0.0
    for i in range(1000):
        method = ("INVITE", "OPTIONS", "BYE")[i % 3]
        ep.receive(raw_request(method, branch=f"z9hG4bKleak{i}", call_id=f"leak-{i}",
                               to_tag=None if method != "BYE" else "t"), UDP, now)
        _, events = drain(ep)
        [ev] = [e for e in events if isinstance(e, RequestReceived)]
        status = 200 if i % 2 else 486
        ep.send_response(ev.tx, make_response(ev.request, status, to_tag="t"), now)
        if method == "INVITE" and status == 200 and i % 5:
            ep.receive(raw_request("ACK", branch=f"z9hG4bKack{i}", call_id=f"leak-{i}", to_tag="t",
                                   cseq_method="ACK"), UDP, now)
        if i % 7 == 0:
            ep.send_request(new_request(), UDP, now)
        now += 0.001
        ep.handle_timer(now)
        ep.datagrams_to_send()
    assert ep.transaction_count() > 0
    run_timers(ep, now + 200)
    drain(ep)
    assert ep.transaction_count() == 0
    assert ep.pending_2xx_count() == 0
    assert ep._merge == {}
    assert ep.get_timer() is None
    assert ep._heap == []


# -- challenged INVITEs under load (issue 11) ----------------------------------------------------

AUTH = 'Proxy-Authorization: Digest username="alice", realm="linebox", nonce="n1", uri="sip:bob@10.0.0.1", response="0"\r\n'


def test_a_stateless_challenge_is_one_datagram_and_leaves_nothing_behind() -> None:
    # A spoofed INVITE never ACKs: kept in a transaction, its 407 would go to the forged
    # address again and again until timer H (the reflection the trunks issue measured).
    ep = SipEndpoint()
    ep.receive(raw_request("INVITE", branch="z9hG4bKinv1"), UDP, now=0.0)
    _, (ev,) = drain(ep)
    ep.answer_statelessly(ev.tx, make_response(ev.request, 407, to_tag="t407"), now=0.0)
    out, events = drain(ep)
    assert statuses(out) == [407] and events == []
    assert ev.tx.last_status == 407, "the transaction still tells the TU what it was answered"
    assert run_timers(ep, 64 * T1) == [] and ep.transaction_count() == 0 and ep.ended_count() == 0
    # its ACK matches nothing and is dropped; a retransmission of the INVITE is a request again,
    # so the TU answers it again: one datagram out per datagram in
    ep.receive(raw_request("ACK", branch="z9hG4bKinv1", to_tag="t407"), UDP, now=0.1)
    assert drain(ep) == ([], [])
    ep.receive(raw_request("INVITE", branch="z9hG4bKinv1"), UDP, now=0.5)
    _, (again,) = drain(ep)
    assert isinstance(again, RequestReceived) and again.tx is not ev.tx


def test_only_a_known_transaction_is_answered_statelessly_and_only_with_a_final() -> None:
    ep = SipEndpoint()
    ep.receive(raw_request("INVITE", branch="z9hG4bKinv1"), UDP, now=0.0)
    _, (ev,) = drain(ep)
    with pytest.raises(ValueError):
        ep.answer_statelessly(ev.tx, make_response(ev.request, 180, to_tag="t1"), now=0.0)
    with pytest.raises(ValueError):  # a 2xx is re-sent until its ACK: never stateless
        ep.answer_statelessly(ev.tx, make_response(ev.request, 200, to_tag="t1"), now=0.0)
    ep.send_response(ev.tx, make_response(ev.request, 486, to_tag="t1"), now=0.0)
    ep.receive(raw_request("ACK", branch="z9hG4bKinv1", to_tag="t1"), UDP, now=0.1)
    run_timers(ep, 10.0)
    with pytest.raises(TransactionError):
        ep.answer_statelessly(ev.tx, make_response(ev.request, 407, to_tag="t1"), now=10.0)


def test_late_invite_retransmission_after_its_transaction_ended_is_absorbed() -> None:
    # Answered 480 and ACKed, the transaction ends T4 later (timer I). A copy of the INVITE
    # that the client sent before it had the final, read late from a loaded socket, must not
    # come up as a new request: the PBX would challenge it again (its nonce is spent).
    ep = SipEndpoint()
    invite = raw_request("INVITE", branch="z9hG4bKlate", cseq=2, extra=AUTH)
    ep.receive(invite, UDP, now=0.0)
    (ev,) = drain(ep)[1]
    ep.send_response(ev.tx, make_response(ev.request, 480, to_tag="t480"), now=0.1)
    drain(ep)
    ep.receive(raw_request("ACK", branch="z9hG4bKlate", cseq=2, to_tag="t480", cseq_method="ACK"), UDP, now=0.2)
    drain(ep)
    run_timers(ep, 6.0)                                  # timer I
    assert ep.transaction_count() == 0 and ep.ended_count() == 1
    ep.receive(invite, UDP, now=7.0)
    assert drain(ep) == ([], []), "a late retransmission came up as a new request"
    # once its client's timer B is long past, the memory is given back
    ep.receive(raw_request("INVITE", branch="z9hG4bKother", call_id="call-2"), UDP, now=40.0)
    (ev2,) = drain(ep)[1]
    ep.send_response(ev2.tx, make_response(ev2.request, 486, to_tag="t486"), now=40.0)
    run_timers(ep, 80.0)
    assert ep.ended_count() == 1        # call-2's INVITE; the first one expired
    ep.receive(invite, UDP, now=80.0)
    assert [type(e) for e in drain(ep)[1]] == [RequestReceived]
