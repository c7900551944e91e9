"""RFC 4475 (SIP torture tests) and RFC 5118 (IPv6 torture tests) at the parser level.

Each message of /work/shared/testdata gets one case asserting what that data set's
README says the parser must do: parse (and round-trip), or raise ParseError with
the status to answer (400, 505, 416 when the Request-URI is accessed, None for a
response to drop silently). Expectations that belong to the endpoint or registrar
(420, 415, 406, 401, 501 ...) are named in comments; here they only have to parse.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.sip.message import Message, ParseError, Request, Response
from firmware.sip.uri import SipUri

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"

PARSES = "parses"
RURI_416 = "416 on request_uri"

EXPECTED: dict[str, object] = {
    # --- RFC 4475 §3.1.1 valid messages
    "wsinv": PARSES,
    "intmeth": PARSES,
    "esc01": PARSES,
    "escnull": PARSES,
    "esc02": PARSES,  # endpoint: unknown method RE%47IST%45R -> 501 (or 405)
    "lwsdisp": PARSES,
    "longreq": PARSES,
    "dblreq": PARSES,  # one REGISTER; the INVITE after its Content-Length is noise
    "semiuri": PARSES,
    "transports": PARSES,
    "mpart01": PARSES,
    "unreason": PARSES,
    "noreason": PARSES,
    # --- RFC 4475 §3.1.2 invalid: 400
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,  # on TCP the transport also closes the connection
    "scalar02": 400,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "mismatch01": 400,
    # 400 acceptable (chosen here, so the bad form is never re-emitted)
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "baddate": PARSES,  # the Date does not matter to this box
    # specific codes
    "badvers": 505,
    "mismatch02": PARSES,  # unknown method NEWMETHOD: endpoint answers 501 (400 acceptable)
    "badbranch": PARSES,  # must not break the parser
    # responses to drop silently
    "scalarlg": None,
    "bigcode": None,
    # well formed; dropped by the transaction layer (no matching client transaction)
    # and never forwarded to the broadcast Via (RFC 4475 §3.1.2.18)
    "bcast": PARSES,
    # --- RFC 4475 §3.3 application layer
    "insuf": 400,  # missing Call-ID / From / To
    "unkscm": RURI_416,
    "novelsc": RURI_416,  # 416 (or 404)
    "unksm2": PARSES,  # registrar: 400, To is not a sip/sips AoR
    "bext01": PARSES,  # endpoint: 420 Bad Extension with Unsupported
    "invut": PARSES,  # endpoint: 415 Unsupported Media Type
    "regaut01": PARSES,  # registrar: 401 with a fresh challenge
    "multi01": 400,
    "mcl01": 400,
    "zeromf": PARSES,  # processed by an endpoint (a proxy would answer 483)
    "cparam01": PARSES,  # registrar: 200, parameters kept
    "cparam02": PARSES,
    "regescrt": PARSES,  # registrar: 200, escaped Route kept in the binding
    "sdp01": PARSES,  # endpoint: 406 (or 400), Accept lists no type it can send
    # --- RFC 4475 §3.4 backward compatibility
    "inv2543": PARSES,
    # --- RFC 5118
    "ipv6-bad": 400,
    "ipv6-bug-abnf-3-colons": 400,
    "ipv4-mapped-ipv6": PARSES,
    "ipv6-correct-abnf-2-colons": PARSES,
    "ipv6-good": PARSES,
    "ipv6-in-sdp": PARSES,
    "mult-ip-in-header": PARSES,
    "mult-ip-in-sdp": PARSES,
    "port-ambiguous": PARSES,
    "port-unambiguous": PARSES,
    "via-received-param-no-delim": PARSES,
    "via-received-param-with-delim": PARSES,
}

FILES = sorted((TESTDATA / "rfc4475").glob("*.dat")) + sorted((TESTDATA / "rfc5118").glob("*.dat"))


def test_every_file_has_an_expectation() -> None:
    assert len(FILES) == 49 + 12
    assert {f.stem for f in FILES} == set(EXPECTED)


def _touch_views(msg: Request | Response) -> None:
    """The views the transaction layer and endpoint read must work on what parses."""
    msg.call_id, msg.cseq, msg.from_, msg.to, msg.vias, msg.top_via, msg.contacts
    msg.max_forwards


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_torture_message(path: Path) -> None:
    data = path.read_bytes()
    expected = EXPECTED[path.stem]
    if expected in (PARSES, RURI_416):
        msg = Message.parse(data)
        out = bytes(msg)
        # exact round trip, up to Content-Length (what follows is not the message)
        assert data.startswith(out)
        _touch_views(msg)
        if isinstance(msg, Request):
            if expected == RURI_416:
                with pytest.raises(ParseError) as exc:
                    msg.request_uri
                assert exc.value.status == 416
                assert exc.value.headers is not None and exc.value.headers.get("Call-ID") == msg.call_id
            else:
                assert isinstance(msg.request_uri, SipUri)
        # a canonical rewrite of what parsed parses again to the same values
        msg.headers.add("X-Rewritten", "yes")
        again = Message.parse(bytes(msg))
        assert again.call_id == msg.call_id and again.cseq == msg.cseq and again.body == msg.body
        assert [str(v) for v in again.vias] == [str(v) for v in msg.vias]
    else:
        with pytest.raises(ParseError) as exc:
            Message.parse(data)
        err = exc.value
        assert err.status == expected, err.reason
        if expected is None:
            assert not err.is_request and err.headers is None
        else:
            assert err.is_request
            assert err.reason.startswith({400: "Bad Request (", 505: "Version Not Supported ("}[expected])
            # enough headers survive to build the answer
            assert err.headers is not None and "Via" in err.headers and "CSeq" in err.headers


def _parse(name: str, rfc: str = "rfc4475") -> Request | Response:
    return Message.parse((TESTDATA / rfc / f"{name}.dat").read_bytes())


# --- details the RFCs call out -----------------------------------------------------------


def test_wsinv_whitespace_and_folding() -> None:
    msg = _parse("wsinv")
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"' and msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68 and msg.cseq.seq == 9 and msg.cseq.method == "INVITE"
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.headers.get("Subject") == ""
    (contact,) = msg.contacts
    assert contact.display_name == 'Quoted string ""' and contact.params["q"] == "0.33"
    assert contact.params["newparam"] == "newvalue" and "secondparam" in contact.params


def test_intmeth_odd_tokens() -> None:
    msg = _parse("intmeth")
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~" == msg.cseq.method
    uri = msg.request_uri
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.tag == "_token~1'+`*%!-."


def test_esc01_escapes_are_kept_as_written() -> None:
    msg = _parse("esc01")
    assert msg.request_uri.user == "sips%3Auser%40example.com"
    assert msg.request_uri.user_unescaped == "sips:user@example.com"
    assert msg.to.uri.user_unescaped == "user"
    assert msg.contacts[0].uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}


def test_escnull_and_esc02() -> None:
    msg = _parse("escnull")
    assert [c.uri.user_unescaped for c in msg.contacts] == ["\x00", "\x00\x00"]
    msg = _parse("esc02")
    assert msg.method == "RE%47IST%45R"
    # C%6Fntact is an unknown header, not a Contact
    assert len(msg.contacts) == 2 and msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_longreq_dblreq_semiuri_transports() -> None:
    msg = _parse("longreq")
    assert len(msg.vias) == 34 and msg.vias[-1].received == "192.0.2.5"
    assert len(msg.body) == 150
    dbl = _parse("dblreq")
    assert isinstance(dbl, Request) and dbl.method == "REGISTER" and dbl.body == b""
    semi = _parse("semiuri")
    assert semi.request_uri.user == "user;par=u%40example.net" and semi.request_uri.host == "example.com"
    assert len(semi.headers.get_all("Accept")) == 6
    tr = _parse("transports")
    assert [v.transport for v in tr.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_responses_reason_phrases() -> None:
    unreason = _parse("unreason")
    assert isinstance(unreason, Response) and unreason.status == 200
    assert unreason.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    noreason = _parse("noreason")
    assert noreason.status == 100 and noreason.reason == ""


def test_mpart01_binary_body() -> None:
    msg = _parse("mpart01")
    assert len(msg.body) == 553 and b"\x00" in msg.body
    assert msg.top_via.rport == ""


def test_unksm2_keeps_other_schemes_raw() -> None:
    msg = _parse("unksm2")
    assert msg.to.uri == "isbn:2983792873" and msg.from_.uri == "http://www.example.com"
    assert msg.contacts[0].uri == "name:John_Smith"


def test_regescrt_and_cparam() -> None:
    msg = _parse("regescrt")
    assert msg.contacts[0].uri.headers == {"Route": "%3Csip:sip.example.com%3E"}
    c1 = _parse("cparam01").contacts[0]
    assert c1.params == {"unknownparam": None} and c1.uri.params == {}
    c2 = _parse("cparam02").contacts[0]
    assert c2.params == {} and c2.uri.params == {"unknownparam": None}


def test_inv2543_without_max_forwards_or_branch() -> None:
    msg = _parse("inv2543")
    assert msg.max_forwards is None and msg.top_via.branch is None
    assert msg.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")


def test_rfc5118_addresses() -> None:
    amb = _parse("port-ambiguous", "rfc5118")
    assert amb.request_uri.host == "2001:db8::10:5070" and amb.request_uri.port is None
    unamb = _parse("port-unambiguous", "rfc5118")
    assert unamb.request_uri.host == "2001:db8::10" and unamb.request_uri.port == 5070
    nodelim = _parse("via-received-param-no-delim", "rfc5118")
    assert nodelim.top_via.received == "2001:db8::9:255"
    delim = _parse("via-received-param-with-delim", "rfc5118")
    assert delim.top_via.received == "2001:db8::9:255"
    mapped = _parse("ipv4-mapped-ipv6", "rfc5118")
    assert [(v.host, v.port) for v in mapped.vias] == [("::ffff:192.0.2.10", 19823), ("::ffff:192.0.2.2", None)]
    assert mapped.contacts[0].uri.host == "::ffff:192.0.2.2"
    multi = _parse("mult-ip-in-header", "rfc5118")
    assert [v.host for v in multi.vias] == ["2001:db8::9:1", "192.0.2.1", "2001:db8::9:255"]
    two = _parse("ipv6-correct-abnf-2-colons", "rfc5118")
    assert two.to.uri.host == "2001:db8::192.0.2.1"
