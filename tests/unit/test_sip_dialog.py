"""RFC 3261 §12 dialogs (firmware.sip.dialog): creation on both sides, requests within, CSeq checks."""

from __future__ import annotations

import pytest

from firmware.sip.dialog import Dialog
from firmware.sip.message import Message, ParseError, Request, make_response

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n"
    b"Max-Forwards: 70\r\n"
    b"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Record-Route: <sip:p3.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def invite() -> Request:
    msg = Message.parse(INVITE)
    assert isinstance(msg, Request)
    return msg


def uas_dialog() -> Dialog:
    return Dialog.from_uas(invite(), "a6c85cf")


def test_from_uas() -> None:
    d = uas_dialog()
    assert d.key == ("a84b4c76e66710", "a6c85cf", "1928301774")
    assert d.remote_seq == 314159 and d.local_seq == 0
    assert d.remote_target == "sip:alice@pc33.atlanta.example.com"
    assert d.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"]
    assert "tag=a6c85cf" in d.local_uri and "tag=1928301774" in d.remote_uri
    assert not d.secure


def test_from_uac_reverses_record_route_and_takes_contact_of_response() -> None:
    req = invite()
    resp = make_response(req, 200, to_tag="314", headers=[
        ("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
        ("Contact", "<sip:bob@192.0.2.4>"),
    ])
    d = Dialog.from_uac(req, Message.parse(bytes(resp)))  # type: ignore[arg-type]
    assert d.key == ("a84b4c76e66710", "1928301774", "314")
    assert d.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert d.remote_target == "sip:bob@192.0.2.4"
    assert d.local_seq == 314159 and d.remote_seq is None


def test_from_uac_needs_to_tag() -> None:
    req = invite()
    with pytest.raises(ParseError):
        Dialog.from_uac(req, make_response(req, 180))


def test_create_request_loose_routing() -> None:
    d = uas_dialog()
    bye = d.create_request("BYE", headers=[("Reason", "Q.850;cause=16")])
    assert bye.method == "BYE" and bye.uri == "sip:alice@pc33.atlanta.example.com"
    assert bye.headers.get_all("Route") == d.route_set
    assert bye.cseq.seq == 1 and bye.cseq.method == "BYE"
    assert bye.from_.tag == "a6c85cf" and bye.to.tag == "1928301774"
    assert bye.call_id == "a84b4c76e66710"
    assert bye.max_forwards == 70
    assert "via" not in bye.headers
    assert bye.headers.get("Reason") == "Q.850;cause=16"
    assert d.create_request("INFO").cseq.seq == 2
    # it serializes and parses back once the endpoint adds a Via
    bye.headers.add("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx", first=True)
    assert Message.parse(bytes(bye)).method == "BYE"


def test_create_request_strict_routing() -> None:
    d = uas_dialog()
    d.route_set = ["<sip:strict.example.com;method=INVITE>", "<sip:p2.example.com;lr>"]
    req = d.create_request("BYE", contact="<sip:me@10.0.0.1>")
    assert req.uri == "sip:strict.example.com"
    assert req.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:alice@pc33.atlanta.example.com>"]
    assert req.headers.get("Contact") == "<sip:me@10.0.0.1>"


def test_no_route_set() -> None:
    d = uas_dialog()
    d.route_set = []
    req = d.create_request("UPDATE", body=b"v=0\r\n", headers=[("Content-Type", "application/sdp")])
    assert "route" not in req.headers and req.body == b"v=0\r\n"


def test_ack_for_keeps_invite_cseq() -> None:
    req = invite()
    resp = make_response(req, 200, to_tag="314", headers=[("Contact", "<sip:bob@192.0.2.4>")])
    d = Dialog.from_uac(req, resp)
    reinvite = d.create_request("INVITE")
    assert reinvite.cseq.seq == 314160
    ack = d.ack_for(reinvite)
    assert ack.method == "ACK" and ack.cseq.seq == 314160 and ack.cseq.method == "ACK"
    assert ack.uri == "sip:bob@192.0.2.4"
    assert d.local_seq == 314160  # the ACK takes no new number
    ack2 = d.ack_for(reinvite, body=b"v=0\r\n")
    assert ack2.headers.get("Content-Type") == "application/sdp"
    with pytest.raises(ValueError):
        d.create_request("ACK")


def in_dialog(method: str, seq: int, contact: str | None = None) -> Request:
    fields = [
        ("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKx"),
        ("From", "<sip:alice@atlanta.example.com>;tag=1928301774"),
        ("To", "<sip:bob@biloxi.example.com>;tag=a6c85cf"),
        ("Call-ID", "a84b4c76e66710"),
        ("CSeq", f"{seq} {method}"),
    ]
    if contact:
        fields.append(("Contact", contact))
    return Request(method, "sip:bob@192.0.2.4", fields)


def test_receive_request_cseq_and_target_refresh() -> None:
    d = uas_dialog()
    assert d.receive_request(in_dialog("INFO", 314160)) is None
    assert d.remote_seq == 314160
    assert d.receive_request(in_dialog("INFO", 314100)) == 500
    assert d.remote_seq == 314160
    assert d.receive_request(in_dialog("ACK", 1)) is None  # ACK carries its INVITE's number
    # a re-INVITE with a new Contact refreshes the target; a BYE with Contact does not
    assert d.receive_request(in_dialog("INVITE", 314161, "<sip:alice@198.51.100.9:5062>")) is None
    assert d.remote_target == "sip:alice@198.51.100.9:5062"
    assert d.receive_request(in_dialog("NOTIFY", 314162, "<sip:elsewhere@192.0.2.99>")) is None
    assert d.remote_target == "sip:alice@198.51.100.9:5062"
    assert d.receive_request(in_dialog("UPDATE", 314163, "<sip:alice@198.51.100.10>")) is None
    assert d.remote_target == "sip:alice@198.51.100.10"


def test_remote_seq_none_accepts_any() -> None:
    req = invite()
    d = Dialog.from_uac(req, make_response(req, 200, to_tag="a6c85cf", headers=[("Contact", "<sip:bob@192.0.2.4>")]))
    # the far end sends its first request in the dialog: any CSeq is fine
    bye = Request("BYE", "sip:alice@pc33.atlanta.example.com", [
        ("Via", "SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKb"),
        ("From", "<sip:bob@biloxi.example.com>;tag=a6c85cf"),
        ("To", "<sip:alice@atlanta.example.com>;tag=1928301774"),
        ("Call-ID", "a84b4c76e66710"), ("CSeq", "7 BYE"),
    ])
    assert d.matches(bye)
    assert d.receive_request(bye) is None and d.remote_seq == 7


def test_matches() -> None:
    d = uas_dialog()
    assert d.matches(in_dialog("BYE", 314160))
    other = in_dialog("BYE", 314160)
    other.headers.set("To", "<sip:bob@biloxi.example.com>;tag=other")
    assert not d.matches(other)
    other.headers.set("To", "<sip:bob@biloxi.example.com>;tag=a6c85cf")
    other.headers.set("Call-ID", "nope")
    assert not d.matches(other)
    # a response to our request: our tag in From
    bye = d.create_request("BYE")
    bye.headers.add("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKq", first=True)
    assert d.matches(make_response(bye, 200))


def test_secure_for_sips() -> None:
    req = invite()
    req.uri = "sips:bob@biloxi.example.com"
    assert Dialog.from_uas(req, "t").secure


def test_no_contact_is_an_error() -> None:
    req = invite()
    req.headers.remove("Contact")
    with pytest.raises(ParseError):
        Dialog.from_uas(req, "t")
