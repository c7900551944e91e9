"""StreamFramer: SIP over a byte stream (RFC 3261 §18.3), keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.sip.framing import StreamFramer
from firmware.sip.message import Message, ParseError, Request, Response

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sip"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


INVITE = load("invite_sdp.txt")  # has a body
OK = load("ok_record_route.txt")  # a response with a body
BYE = load("bye_routes.txt")  # Content-Length: 0, a folded header


def test_one_message_in_one_chunk() -> None:
    f = StreamFramer()
    assert f.feed(INVITE) == [INVITE]
    assert f.buffered == 0 and f.pings == 0


def test_every_split_point_of_two_pipelined_messages() -> None:
    stream = INVITE + OK
    for cut in range(len(stream) + 1):
        f = StreamFramer()
        out = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert out == [INVITE, OK], cut
        assert f.buffered == 0


def test_byte_by_byte_with_keepalives_between_messages() -> None:
    stream = b"\r\n\r\n" + BYE + b"\r\n\r\n" + b"\r\n" + INVITE + b"\r\n\r\n"
    f = StreamFramer()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += f.feed(stream[i : i + 1])
    assert out == [BYE, INVITE]
    assert f.pings == 3 and f.pop_pings() == 3 and f.pings == 0
    assert [type(Message.parse(m)) for m in out] == [Request, Request]


def test_three_messages_in_one_chunk_and_a_partial_fourth() -> None:
    f = StreamFramer()
    assert f.feed(BYE + OK + INVITE + BYE[:20]) == [BYE, OK, INVITE]
    assert f.buffered == 20
    assert f.feed(BYE[20:]) == [BYE]


def test_lone_crlf_pong_is_skipped_not_counted() -> None:
    f = StreamFramer()
    assert f.feed(b"\r\n") == []
    assert f.feed(BYE) == [BYE]
    assert f.pings == 0


def test_half_a_ping_waits() -> None:
    f = StreamFramer()
    assert f.feed(b"\r\n\r") == [] and f.pings == 0
    assert f.feed(b"\n") == [] and f.pings == 1


def test_missing_content_length_on_a_stream_is_400_with_headers() -> None:
    raw = INVITE.replace(b"Content-Length: 306\r\n", b"")
    with pytest.raises(ParseError) as exc:
        StreamFramer().feed(raw)
    err = exc.value
    assert err.status == 400 and err.is_request and "Content-Length" in err.reason
    assert err.headers is not None and err.headers.get("Call-ID") == "1954823961@192.168.1.51"


def test_response_without_content_length_is_dropped() -> None:
    raw = OK.replace(b"Content-Length: 210\r\n", b"")
    with pytest.raises(ParseError) as exc:
        StreamFramer().feed(raw)
    assert exc.value.status is None and not exc.value.is_request


@pytest.mark.parametrize("value", [b"-999", b"+5", b"abc", b"", b"1 2"])
def test_invalid_content_length(value: bytes) -> None:
    raw = BYE.replace(b"Content-Length: 0", b"Content-Length: " + value)
    with pytest.raises(ParseError) as exc:
        StreamFramer().feed(raw)
    assert exc.value.status == 400


def test_conflicting_content_lengths_and_compact_form() -> None:
    raw = BYE.replace(b"Content-Length: 0\r\n", b"Content-Length: 0\r\nl: 4\r\n")
    with pytest.raises(ParseError):
        StreamFramer().feed(raw)
    compact = BYE.replace(b"Content-Length: 0", b"l : 0")
    assert StreamFramer().feed(compact) == [compact]
    folded = BYE.replace(b"Content-Length: 0", b"content-length:\r\n 0")
    assert StreamFramer().feed(folded) == [folded]


def test_oversized_header_section_is_rejected_before_it_completes() -> None:
    f = StreamFramer(max_buffer=4096, max_message=4096)
    f.feed(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n")
    with pytest.raises(ParseError) as exc:
        for _ in range(200):
            f.feed(b"X-Junk: " + b"a" * 30 + b"\r\n")
    assert exc.value.status == 513 and exc.value.headers is not None
    assert exc.value.headers.get("Via") == "SIP/2.0/TCP h;branch=z9hG4bK1"


def test_announced_body_over_the_cap_is_rejected_at_once() -> None:
    raw = BYE.replace(b"Content-Length: 0", b"Content-Length: 70000")
    with pytest.raises(ParseError) as exc:
        StreamFramer().feed(raw)
    assert exc.value.status == 513


def test_garbage_between_messages() -> None:
    with pytest.raises(ParseError):
        StreamFramer().feed(b"\r\r\r\r\r\r")


def test_framed_messages_round_trip_through_the_parser() -> None:
    f = StreamFramer()
    for raw in f.feed(INVITE + OK + BYE):
        assert bytes(Message.parse(raw)) == raw
    assert isinstance(Message.parse(OK), Response)


def test_messages_before_bad_bytes_are_returned_and_the_error_waits() -> None:
    # RFC 4475 dblreq over TCP: a whole REGISTER, then an INVITE with no Content-Length.
    ok = b"REGISTER sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    bad = b"INVITE sip:y SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n"
    f = StreamFramer()
    assert f.feed(ok + bad) == [ok]
    assert f.error is not None and f.error.status == 400
    with pytest.raises(ParseError):
        f.feed(b"more")
