"""SIP message core: round trips on captured-style messages, header semantics, typed
views, building requests and responses (RFC 3261 §7, §8.2.6, §20, §25)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.sip import message as msgmod
from firmware.sip.message import (
    CSeq,
    Headers,
    Message,
    ParseError,
    Request,
    Response,
    make_error_response,
    make_response,
    new_branch,
    new_tag,
)
from firmware.sip.uri import NameAddr, SipUri, Via

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sip"


def load(name: str) -> bytes:
    """Fixtures are stored with LF line ends (git-friendly); the wire has CRLF."""
    return (FIXTURES / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.txt"))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_round_trips_exactly(name: str) -> None:
    raw = load(name)
    msg = Message.parse(raw)
    assert bytes(msg) == raw
    # every typed view works on a real phone's message
    assert msg.call_id and msg.cseq.seq >= 0
    assert msg.vias and msg.top_via.branch and msg.top_via.branch.startswith("z9hG4bK")
    assert isinstance(msg.from_, NameAddr) and msg.from_.tag
    assert isinstance(msg.to, NameAddr)
    msg.contacts
    msg.routes
    msg.record_routes
    msg.expires
    msg.max_forwards


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_canonical_rewrite_parses_to_the_same_message(name: str) -> None:
    raw = load(name)
    msg = Message.parse(raw)
    msg.headers.add("X-Touched", "1")
    out = bytes(msg)
    assert out != raw
    again = Message.parse(out)
    assert again.headers.get("X-Touched") == "1"
    assert again.body == msg.body
    assert again.call_id == msg.call_id and again.cseq == msg.cseq
    assert [str(v) for v in again.vias] == [str(v) for v in msg.vias]
    assert str(again.from_) == str(msg.from_) and str(again.to) == str(msg.to)
    assert again.contacts == msg.contacts and again.routes == msg.routes


def test_invite_with_sdp_views() -> None:
    msg = Message.parse(load("invite_sdp.txt"))
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and msg.uri == "sip:202@linebox.local"
    assert msg.request_uri == SipUri("sip", "202", None, "linebox.local")
    assert msg.cseq == CSeq(1, "INVITE")
    assert msg.from_.display_name == "Reception" and msg.from_.tag == "3260375633"
    assert msg.to.tag is None
    via = msg.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "192.168.1.51", 5060)
    assert via.rport == "" and via.received is None
    assert msg.max_forwards == 70
    assert msg.content_type == "application/sdp" and msg.media_type == "application/sdp"
    assert msg.body.startswith(b"v=0\r\n") and len(msg.body) == int(msg.headers.get("Content-Length"))
    assert msg.headers.get_all("Allow")[:3] == ["INVITE", "INFO", "PRACK"]
    assert msg.headers.get_all("Allow-Events") == ["talk", "hold", "conference", "refer", "check-sync"]


def test_register_with_authorization_is_not_split_on_commas() -> None:
    msg = Message.parse(load("register_auth.txt"))
    auth = msg.headers.get_all("Authorization")
    assert len(auth) == 1 and auth[0].startswith("Digest username=\"201\"") and "nc=00000001" in auth[0]
    assert msg.expires == 3600
    (contact,) = msg.contacts
    assert contact.uri == SipUri("sip", "201", None, "192.168.1.51", 5060)
    assert contact.params["+sip.instance"] == '"<urn:uuid:00000000-0000-1000-8000-805ec0a1b2c3>"'
    assert contact.params["reg-id"] == "1"
    assert msg.headers.get_all("Supported") == ["path", "gruu", "outbound"]


def test_response_with_record_route_and_two_vias() -> None:
    msg = Message.parse(load("ok_record_route.txt"))
    assert isinstance(msg, Response) and msg.status == 200 and msg.reason == "OK"
    assert [v.host for v in msg.vias] == ["192.168.1.10", "192.168.1.51"]
    assert msg.vias[0].rport == "5060" and msg.vias[0].received == "192.168.1.10"
    rr = msg.record_routes
    assert [str(r.uri) for r in rr] == [
        "sip:192.168.1.10;lr;ftag=3260375633",
        "sip:proxy.example.net;lr",
        "sip:edge.example.net:5061;transport=tls;lr",
    ]
    assert rr[2].uri.transport == "tls" and rr[2].uri.port == 5061
    assert msg.headers.get_all("Record-Route")[1] == "<sip:proxy.example.net;lr>"
    assert msg.to.tag == "as6f2a1b3c"


def test_compact_forms_are_the_long_headers() -> None:
    msg = Message.parse(load("compact.txt"))
    h = msg.headers
    assert h.get("Call-ID") == h.get("i") == "MzYxNjg1ZjY2YzU4NDc0NWU2MzM5NzFlZTM0ZWE3ZTI"
    assert "Contact" in h and "m" in h and "CONTACT" in h
    assert h.get("content-length") == "132"
    assert h.get_all("Supported") == ["replaces", "outbound", "timer"]
    assert h.get_all("allow-events") == ["talk", "hold"]
    assert h.get("Subject") == "call"
    assert msg.top_via.transport == "TCP" and msg.top_via.port == 49152
    assert msg.from_.display_name == "Desk 204"
    assert msg.contacts[0].uri.params == {"transport": "TCP", "ob": None}
    # names are kept as written
    assert ("v", msg.headers.get("via")) in list(h)


def test_ipv6_message() -> None:
    msg = Message.parse(load("invite_ipv6.txt"))
    assert msg.request_uri.host == "2001:db8::2" and msg.request_uri.port == 5060
    assert str(msg.request_uri) == "sip:205@[2001:db8::2]:5060"
    assert msg.top_via.host == "2001:db8::51" and msg.top_via.port == 5070
    assert str(msg.top_via).startswith("SIP/2.0/UDP [2001:db8::51]:5070;branch=")
    assert msg.contacts[0].uri.host_port == ("2001:db8::51", 5070)
    assert msg.from_.tag == "ZPRz4~uLe"


def test_folded_route_header() -> None:
    msg = Message.parse(load("bye_routes.txt"))
    assert msg.headers.get_fields("Route")[1] == (
        "<sip:proxy.example.net;lr>, <sip:edge.example.net:5061;transport=tls;lr>"
    )
    assert [r.uri.host for r in msg.routes] == ["192.168.1.10", "proxy.example.net", "edge.example.net"]
    # Reason is a list header with a quoted comma-free text
    assert msg.headers.get_all("Reason") == ['Q.850;cause=16;text="Normal call clearing"']


# --- Headers --------------------------------------------------------------------------


def test_headers_multidict_semantics() -> None:
    h = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("v", "SIP/2.0/UDP b, SIP/2.0/UDP c")])
    assert h.get("VIA") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("via") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    h.add("Via", "SIP/2.0/UDP top", first=True)
    assert h.get_all("v")[0] == "SIP/2.0/UDP top"
    h.add("To", "<sip:x@y>")
    h.set("via", "SIP/2.0/TCP only")
    assert list(h) == [("via", "SIP/2.0/TCP only"), ("To", "<sip:x@y>")]
    h.set("Call-ID", "abc")
    assert list(h)[-1] == ("Call-ID", "abc")
    h.remove("i")
    assert "call-id" not in h and h.get("Call-ID") is None and h.get_all("Call-ID") == []
    c = h.copy()
    c.add("X", "1")
    assert "X" not in h and "x" in c


def test_get_all_splitting_rules() -> None:
    h = Headers(
        [
            ("Contact", '"Doe, John" <sip:j@a;x="1,2">;q=0.5, <sip:k@b>'),
            ("WWW-Authenticate", 'Digest realm="a", nonce="b"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("X-Unknown", "a, b"),
            ("Require", "timer,  100rel ,"),
        ]
    )
    assert h.get_all("m") == ['"Doe, John" <sip:j@a;x="1,2">;q=0.5', "<sip:k@b>"]
    assert h.get_all("www-authenticate") == ['Digest realm="a", nonce="b"']
    assert h.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert h.get_all("X-Unknown") == ["a, b"]
    assert h.get_all("Require") == ["timer", "100rel"]


def test_header_values_reject_injection() -> None:
    with pytest.raises(ValueError):
        Headers([("Subject", "a\r\nVia: evil")])
    h = Headers()
    with pytest.raises(ValueError):
        h.add("Subject", "x\nInjected: 1")


def test_remove_first_pops_the_top_via_of_a_combined_field() -> None:
    h = Headers([("Via", "SIP/2.0/UDP a, SIP/2.0/UDP b"), ("Via", "SIP/2.0/UDP c")])
    h.remove_first("Via")
    assert h.get_all("Via") == ["SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    h.remove_first("Via")
    h.remove_first("Via")
    assert "Via" not in h


# --- building and serializing -----------------------------------------------------------


def _invite() -> Request:
    return Request(
        "INVITE",
        "sip:bob@example.com",
        [
            ("Via", f"SIP/2.0/UDP 10.0.0.1:5060;branch={new_branch()};rport"),
            ("Max-Forwards", "70"),
            ("From", f'"Alice Smith" <sip:alice@example.com>;tag={new_tag()}'),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", "a84b4c76e66710@pc33.example.com"),
            ("CSeq", "314159 INVITE"),
            ("Contact", "<sip:alice@10.0.0.1:5060>"),
            ("Content-Type", "application/sdp"),
        ],
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n",
    )


def test_built_request_serializes_canonically_and_parses_back() -> None:
    req = _invite()
    raw = bytes(req)
    assert raw.startswith(b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK")
    assert b"\r\nContent-Length: 35\r\n\r\nv=0\r\n" in raw
    back = Message.parse(raw)
    assert isinstance(back, Request)
    assert bytes(back) == raw
    assert back.method == "INVITE" and back.cseq == CSeq(314159, "INVITE")
    assert back.from_.display_name == "Alice Smith" and back.body == req.body
    assert list(back.headers)[:-1] == list(req.headers)


def test_content_length_is_rewritten_when_body_changes() -> None:
    msg = Message.parse(load("invite_sdp.txt"))
    msg.body = b"v=0\r\n"
    out = bytes(msg)
    assert b"\r\nContent-Length: 5\r\n" in out and out.endswith(b"\r\n\r\nv=0\r\n")
    assert out.count(b"Content-Length") == 1
    assert Message.parse(out).body == b"v=0\r\n"


def test_start_line_change_is_serialized() -> None:
    msg = Message.parse(load("invite_sdp.txt"))
    msg.uri = "sip:202@192.168.1.52:5062"
    out = bytes(msg)
    assert out.startswith(b"INVITE sip:202@192.168.1.52:5062 SIP/2.0\r\n")
    assert Message.parse(out).request_uri.port == 5062


def test_cache_is_dropped_when_headers_change() -> None:
    msg = Message.parse(load("invite_sdp.txt"))
    assert msg.top_via.host == "192.168.1.51"
    msg.headers.add("Via", "SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKnew", first=True)
    assert msg.top_via.host == "192.168.1.2" and len(msg.vias) == 2
    msg.headers.remove("To")
    with pytest.raises(ParseError) as exc:
        msg.to
    assert exc.value.status == 400 and "To" in exc.value.reason


def test_a_header_change_drops_only_the_views_of_that_name() -> None:
    msg = Message.parse(load("invite_sdp.txt"))
    to, vias = msg.to, msg.vias
    msg.headers.add("Server", "linebox")
    assert msg.to is to and msg.vias is vias, "kept: no To or Via field changed"
    msg.headers.set("To", "<sip:203@192.168.1.52>;tag=t2")
    assert msg.to.tag == "t2" and msg.vias is vias


def test_a_response_says_the_to_it_carries() -> None:
    # its To view is made with it (the transaction reads the tag); it must be what its field says
    req = Message.parse(load("invite_sdp.txt"))
    for resp in (make_response(req, 407, to_tag="x1"), make_response(req, 100), make_response(req, 200, to_tag="x2")):
        assert resp.to == NameAddr.parse(resp.headers.get("To"))


def test_make_response_copies_rfc3261_8_2_6_headers() -> None:
    req = Message.parse(load("ok_record_route.txt").replace(b"SIP/2.0 200 OK", b"INVITE sip:202@linebox.local SIP/2.0", 1))
    assert isinstance(req, Request)
    resp = make_response(req, 180, to_tag="tt1", headers=[("Contact", "<sip:202@10.0.0.2>")])
    assert resp.status == 180 and resp.reason == "Ringing"
    names = [n for n, _ in resp.headers]
    assert names == ["Via", "Via", "From", "To", "Call-ID", "CSeq", "Contact"]
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    # the request's To already has a tag: it is kept, not doubled
    assert resp.to.tag == "as6f2a1b3c" and resp.headers.get("To").count("tag=") == 1
    raw = bytes(resp)
    assert raw.startswith(b"SIP/2.0 180 Ringing\r\n") and raw.endswith(b"Content-Length: 0\r\n\r\n")
    assert "record-route" not in resp.headers


def test_make_response_adds_to_tag_and_body() -> None:
    req = Message.parse(load("invite_sdp.txt"))
    resp = make_response(req, 200, to_tag="abc", body=b"v=0\r\n", content_type="application/sdp")
    back = Message.parse(bytes(resp))
    assert isinstance(back, Response)
    assert back.to.tag == "abc" and back.to.uri == req.to.uri
    assert back.from_ == req.from_ and back.call_id == req.call_id and back.cseq == req.cseq
    assert back.content_type == "application/sdp" and back.body == b"v=0\r\n"
    assert make_response(req, 100).to.tag is None
    assert make_response(req, 299).reason == "OK" and make_response(req, 488).reason == "Not Acceptable Here"
    assert make_response(req, 503, "Overloaded").reason == "Overloaded"


def test_new_branch_and_tag() -> None:
    b1, b2 = new_branch(), new_branch()
    assert b1.startswith("z9hG4bK") and b1 != b2 and len(b1) > 16
    assert new_tag() != new_tag()
    via = Via.parse(f"SIP/2.0/UDP host;branch={b1}")
    assert via.branch == b1


def test_request_constructor_rejects_bad_start_line() -> None:
    with pytest.raises(ValueError):
        Request("IN VITE", "sip:a@b")
    with pytest.raises(ValueError):
        Request("INVITE", "sip:a@b c")
    with pytest.raises(ValueError):
        Response(99)


# --- parse errors ------------------------------------------------------------------------


def _msg(start: str, *headers: str, body: bytes = b"") -> bytes:
    return ("\r\n".join((start,) + headers) + "\r\n\r\n").encode() + body


BASE = (
    "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx",
    "From: <sip:a@example.com>;tag=1",
    "To: <sip:b@example.com>",
    "Call-ID: c1",
    "CSeq: 1 OPTIONS",
)


def test_parse_error_carries_headers_for_an_answer() -> None:
    raw = _msg("OPTIONS sip:b@example.com SIP/2.0", *BASE[:4], "CSeq: x OPTIONS")
    with pytest.raises(ParseError) as exc:
        Message.parse(raw)
    err = exc.value
    assert err.status == 400 and err.is_request and err.reason == "Bad Request (bad CSeq)"
    assert err.headers is not None and err.headers.get("Call-ID") == "c1"
    resp = make_error_response(err, to_tag="zz")
    assert resp is not None and resp.status == 400 and resp.reason == err.reason
    raw_resp = bytes(resp)
    assert raw_resp.startswith(b"SIP/2.0 400 Bad Request (bad CSeq)\r\n")
    # the broken CSeq is echoed as written (the peer matches on it), To gets our tag
    assert b"\r\nCSeq: x OPTIONS\r\n" in raw_resp and b"To: <sip:b@example.com>;tag=zz\r\n" in raw_resp


def test_bad_version_is_505_and_unknown_scheme_is_416_on_access() -> None:
    with pytest.raises(ParseError) as exc:
        Message.parse(_msg("OPTIONS sip:b@example.com SIP/3.0", *BASE))
    assert exc.value.status == 505
    req = Message.parse(_msg("OPTIONS mailto:b@example.com SIP/2.0", *BASE))
    with pytest.raises(ParseError) as exc:
        req.request_uri
    assert exc.value.status == 416 and exc.value.headers is req.headers


def test_malformed_response_is_dropped() -> None:
    raw = _msg("SIP/2.0 200 OK", *BASE[:3])
    with pytest.raises(ParseError) as exc:
        Message.parse(raw)
    assert exc.value.status is None and not exc.value.is_request
    assert make_error_response(exc.value) is None


@pytest.mark.parametrize(
    "mutate, status",
    [
        (lambda b: b.replace(b"Call-ID: c1\r\n", b"X: " + b"y" * (msgmod.MAX_HEADER_LINE + 1) + b"\r\n"), 513),
        (lambda b: b.replace(b"\r\n\r\n", b"".join(b"\r\nX-%d: 1" % i for i in range(130)) + b"\r\n\r\n"), 513),
        (lambda b: b.replace(b"\r\n\r\n", b"\r\nContent-Length: 40000\r\n\r\n") + b"x" * 40000, 513),
        (lambda b: b.replace(b"\r\n\r\n", b"\r\nContent-Length: 99999999999999999999\r\n\r\n"), 513),
        (lambda b: b.replace(b"\r\n\r\n", b"\r\nContent-Length: +3\r\n\r\n") + b"abc", 400),
        (lambda b: b.replace(b"Call-ID: c1", b"Call-ID: c1\nVia: x"), 400),
        (lambda b: b.replace(b"Call-ID: c1", b"Call ID: c1"), 400),
        (lambda b: b.replace(b"Call-ID: c1", b"Call-ID c1"), 400),
        (lambda b: b.replace(b"Call-ID: c1", b"Call-ID: c1\r\nCall-ID: c2"), 400),
        (lambda b: b.replace(b"OPTIONS sip", b"OPTIONS\tsip"), 400),
        (lambda b: b.replace(b"\r\n\r\n", b"\r\nMax-Forwards: 256\r\n\r\n"), 400),
        (lambda b: b.replace(b"\r\n\r\n", b"\r\nMax-Forwards: -1\r\n\r\n"), 400),
        (lambda b: b.replace(b"branch=z9hG4bKx", b"branch=z9hG4bKx, "), 400),
        (lambda b: b.replace(b"SIP/2.0/UDP 10.0.0.1", b"SIP/2.0/UDP [10.0.0.1]"), 400),
        (lambda b: b.replace(b"<sip:b@example.com>", b"<sip:b@example.com"), 400),
        (lambda b: b.replace(b"<sip:b@example.com>", b"<sip:b@exa mple.com>"), 400),
        (lambda b: b.replace(b"<sip:b@example.com>", b"<sip:b@example.com:99999>"), 400),
        (lambda b: b.replace(b"<sip:b@example.com>", b"<sip:b%4@example.com>"), 400),
        (lambda b: b[:-4], 400),  # no end of the header section
    ],
)
def test_request_errors(mutate, status) -> None:  # type: ignore[no-untyped-def]
    raw = mutate(_msg("OPTIONS sip:b@example.com SIP/2.0", *BASE))
    with pytest.raises(ParseError) as exc:
        Message.parse(raw)
    assert exc.value.status == status, exc.value.reason


def test_datagram_ending_after_last_header_line_is_accepted() -> None:
    # RFC 3261 §7.5 wants the empty line, but a datagram's end is unambiguous (the RFC
    # 4475 archive's baddn.dat is cut like this)
    raw = _msg("OPTIONS sip:b@example.com SIP/2.0", *BASE)[:-2]
    msg = Message.parse(raw)
    assert msg.body == b"" and bytes(msg) == raw


def test_duplicate_equal_content_length_is_accepted() -> None:
    raw = _msg("OPTIONS sip:b@example.com SIP/2.0", *BASE, "Content-Length: 3", "l: 3", body=b"abc")
    assert Message.parse(raw).body == b"abc"


def test_body_longer_than_content_length_is_truncated_and_missing_length_takes_all() -> None:
    raw = _msg("OPTIONS sip:b@example.com SIP/2.0", *BASE, "Content-Length: 3", body=b"abcdef")
    msg = Message.parse(raw)
    assert msg.body == b"abc" and bytes(msg) == raw[:-3]
    raw2 = _msg("OPTIONS sip:b@example.com SIP/2.0", *BASE, body=b"abcdef")
    msg2 = Message.parse(raw2)
    assert msg2.body == b"abcdef" and bytes(msg2) == raw2


def test_nul_and_non_utf8_bytes_round_trip() -> None:
    raw = _msg(
        "MESSAGE sip:b@example.com SIP/2.0",
        *BASE[:4],
        "CSeq: 1 MESSAGE",
        "Subject: caf\xe9".encode("latin-1").decode("latin-1"),
    ).replace(b"caf\xc3\xa9", b"caf\xe9\x00\xff")
    msg = Message.parse(raw)
    assert bytes(msg) == raw
    msg.headers.add("X", "1")
    assert b"Subject: caf\xe9\x00\xff\r\n" in bytes(msg)


def test_contact_star_and_expires() -> None:
    raw = _msg("REGISTER sip:example.com SIP/2.0", *BASE[:4], "CSeq: 2 REGISTER", "Contact: *", "Expires: 0")
    msg = Message.parse(raw)
    assert msg.contacts == [] and msg.contact_star and msg.expires == 0
    raw = _msg("REGISTER sip:example.com SIP/2.0", *BASE[:4], "CSeq: 2 REGISTER", "Contact: *, <sip:a@b>")
    with pytest.raises(ParseError):
        Message.parse(raw)
    msg = Message.parse(_msg("OPTIONS sip:b@example.com SIP/2.0", *BASE, "Expires: 99999999999999"))
    assert msg.expires == 2**32 - 1
    msg = Message.parse(_msg("OPTIONS sip:b@example.com SIP/2.0", *BASE, "Expires: soon"))
    with pytest.raises(ParseError) as exc:
        msg.expires
    assert exc.value.status == 400


# --- typed values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sip:alice@atlanta.com", SipUri("sip", "alice", None, "atlanta.com")),
        ("sip:alice:secretword@atlanta.com;transport=tcp",
         SipUri("sip", "alice", "secretword", "atlanta.com", None, {"transport": "tcp"})),
        ("sips:alice@atlanta.com?subject=project%20x&priority=urgent",
         SipUri("sips", "alice", None, "atlanta.com", None, {}, {"subject": "project%20x", "priority": "urgent"})),
        ("sip:+1-212-555-1212:1234@gateway.com;user=phone",
         SipUri("sip", "+1-212-555-1212", "1234", "gateway.com", None, {"user": "phone"})),
        ("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
         SipUri("sip", None, None, "atlanta.com", None, {"method": "REGISTER"}, {"to": "alice%40atlanta.com"})),
        ("sip:alice;day=tuesday@atlanta.com", SipUri("sip", "alice;day=tuesday", None, "atlanta.com")),
        ("SIP:Bob@192.0.2.4:5070;LR", SipUri("sip", "Bob", None, "192.0.2.4", 5070, {"lr": None})),
        ("sip:[2001:db8::10]:5070", SipUri("sip", None, None, "2001:db8::10", 5070)),
        ("sip:[2001:db8::10:5070]", SipUri("sip", None, None, "2001:db8::10:5070", None)),
        ("tel:+1-201-555-0123;phone-context=example.com",
         SipUri("tel", "+1-201-555-0123", None, "", None, {"phone-context": "example.com"})),
    ],
)
def test_sip_uri_parse(text: str, expected: SipUri) -> None:
    uri = SipUri.parse(text)
    assert uri == expected
    assert SipUri.parse(str(uri)) == uri


@pytest.mark.parametrize(
    "text, status",
    [
        ("sip:", 400),
        ("sip:user@", 400),
        ("sip:user@host:port", 400),
        ("sip:2001:db8::10", 400),
        ("sip:[2001:db8:::192.0.2.1]", 400),
        ("sip:[2001:db8::1", 400),
        ("sip:a@b;=x", 400),
        ("sip:a b@c", 400),
        ("http://example.com/", 416),
        ("urn:service:sos", 416),
        ("noscheme", 400),
    ],
)
def test_sip_uri_errors(text: str, status: int) -> None:
    with pytest.raises(ParseError) as exc:
        SipUri.parse(text)
    assert exc.value.status == status


def test_sip_uri_escapes_kept_and_unescaped() -> None:
    uri = SipUri.parse("sip:%75se%72@example.com")
    assert uri.user == "%75se%72" and uri.user_unescaped == "user"
    assert str(uri) == "sip:%75se%72@example.com"


def test_name_addr_forms() -> None:
    na = NameAddr.parse('"Alice \\"A\\" Smith" <sip:alice@atlanta.com>;tag=1928301774')
    assert na.display_name == 'Alice "A" Smith' and na.tag == "1928301774"
    assert NameAddr.parse(str(na)) == na
    plain = NameAddr.parse("sip:alice@atlanta.com;tag=88sja8x")
    # addr-spec: ';tag' belongs to the header, not to the URI (RFC 3261 §20.10)
    assert plain.uri == SipUri("sip", "alice", None, "atlanta.com") and plain.tag == "88sja8x"
    assert str(plain) == "<sip:alice@atlanta.com>;tag=88sja8x"
    tokens = NameAddr.parse("Bob Jones <sip:bob@biloxi.com>")
    assert tokens.display_name == "Bob Jones"
    tagged = tokens.with_tag("x1")
    assert tagged.tag == "x1" and tokens.tag is None
    other = NameAddr.parse("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
    assert other.uri == "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    with pytest.raises(ParseError) as exc:
        other.sip_uri
    assert exc.value.status == 416
    for bad in ('"unbalanced <sip:a@b>', "Bell, Alexander <sip:a@b>", "< sip:a@b>", "<sip:a@b>;;",
                "sip:a@b?x=y", "<sip:a@b>junk", ""):
        with pytest.raises(ParseError):
            NameAddr.parse(bad)


def test_via_forms() -> None:
    via = Via.parse("SIP / 2.0 / udp  pc33.atlanta.com : 5066 ; branch = z9hG4bK776asdhds ; rport")
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "UDP", "pc33.atlanta.com", 5066)
    assert via.branch == "z9hG4bK776asdhds" and via.rport == ""
    assert str(via) == "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport"
    v6 = Via.parse("SIP/2.0/TCP [2001:db8::9:1];received=[2001:db8::9:255];rport=5070")
    assert v6.host == "2001:db8::9:1" and v6.received == "2001:db8::9:255" and v6.rport == "5070"
    stamped = via.with_params(received="192.0.2.1", rport="5066")
    assert stamped.received == "192.0.2.1" and via.received is None
    assert Via.parse(str(stamped)) == stamped
    for bad in ("SIP/2.0 host", "SIP/2.0/UDP", "SIP/2.0/UDP host;", "SIP/2.0/UDP [::1::2]", "SIP/2.0/UDP host:70000"):
        with pytest.raises(ParseError):
            Via.parse(bad)
