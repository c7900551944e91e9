"""The RFC 4475 / RFC 5118 torture messages on the wire, against `linebox run`.

Every message of /work/shared/testdata is sent to the box over UDP and over TCP from a
socket of ours (each case from its own 127.0.x.y address, so no case's source can be
held against another's). For each: the status class its README asks for (a box that
challenges first may answer a well-formed unauthenticated request with 401/407: "not
400, no crash"), the answer reaching the sending socket (not the 192.0.2.x host its
Via names), silence where the README says drop, and an OPTIONS still answered after.

One box per transport serves the whole module on purpose: the point is that no message
leaves the box unable to serve the next.

Many of the messages share a Via branch and sent-by (22 carry branch=z9hG4bKkdjuw) and
would, sent one after another within Timer J, rightly be taken by the box as
retransmissions of one transaction (RFC 3261 §17.2.3) and answered to the first sender.
So each send gets the message with a per-case suffix on its branch (when the branch has
more than the magic cookie: badbranch's bare cookie is its point) and on its Call-ID,
in the header section only; everything the RFCs torture is left as it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

import pytest

from tests.e2e.box import (REPO, Box, SipResponse, SipSocket, build_request, new_call_id, new_tag,
                           started_box)

TESTDATA = REPO.parent / "shared" / "testdata"
DROP_LISTEN = 0.3  # s listened for a (wrong) answer after the box answered a later OPTIONS
ANSWER_TIMEOUT = 5.0


@dataclass(frozen=True)
class Codes:
    """What final status a message may get."""
    desc: str
    ok: Callable[[int], bool]

    def __or__(self, other: "Codes") -> "Codes":
        return Codes(f"{self.desc} or {other.desc}", lambda s: self.ok(s) or other.ok(s))


def only(*codes: int) -> Codes:
    return Codes("/".join(map(str, codes)), lambda s: s in codes)


# A well-formed request: any final answer but 400 and server errors (501 allowed).
WELL = Codes("not 400, no 5xx but 501", lambda s: 200 <= s < 700 and s != 400 and (s < 500 or s == 501))
CH_INV = only(401, 407)  # an unauthenticated INVITE is challenged (never 403/404)
CH_REG = only(401)       # an unauthenticated REGISTER is challenged (never 403/404)
BAD = only(400)
DROP = None

# TCP modes: "answer" like UDP; "incomplete": the stream cannot frame the message (the box
# waits for bytes that never come) — any answer must be 400; "close": 400 and/or the box
# closes the connection, and it must close it.
ANSWER, INCOMPLETE, CLOSE = "answer", "incomplete", "close"


@dataclass(frozen=True)
class Expect:
    codes: Codes | None  # None: dropped silently
    header: str | None = None  # a header the answer must carry (when its status is the RFC's)
    header_when: int | None = None
    tcp_mode: str = ANSWER
    tcp_codes: Codes | None = None
    why: str = ""


E = Expect
EXPECT: dict[str, Expect] = {
    # RFC 4475 §3.1.1: valid, must parse
    "rfc4475/wsinv": E(only(481, 401, 407), why="its To has a tag: no such dialog"),
    "rfc4475/intmeth": E(only(501, 405, 401, 407), why="unknown method"),
    "rfc4475/esc01": E(CH_INV),
    "rfc4475/escnull": E(CH_REG),
    "rfc4475/esc02": E(only(501, 405, 401, 407), why="unknown method RE%47IST%45R"),
    "rfc4475/lwsdisp": E(WELL),
    "rfc4475/longreq": E(CH_INV),
    "rfc4475/dblreq": E(CH_REG, why="one REGISTER; the trailing INVITE is noise (on UDP)"),
    "rfc4475/semiuri": E(WELL),
    "rfc4475/transports": E(WELL),
    "rfc4475/mpart01": E(WELL),
    "rfc4475/unreason": E(DROP, why="a response matching no transaction"),
    "rfc4475/noreason": E(DROP, why="a response matching no transaction"),
    # §3.1.2: invalid, 400
    "rfc4475/badinv01": E(BAD),
    "rfc4475/clerr": E(BAD, tcp_mode=INCOMPLETE, why="Content-Length beyond the datagram"),
    "rfc4475/ncl": E(BAD, tcp_mode=CLOSE, why="negative Content-Length"),
    "rfc4475/scalar02": E(BAD),
    "rfc4475/quotbal": E(BAD),
    "rfc4475/ltgtruri": E(BAD),
    "rfc4475/lwsruri": E(BAD),
    "rfc4475/mismatch01": E(BAD),
    # 400 acceptable
    "rfc4475/lwsstart": E(BAD | CH_INV),
    "rfc4475/trws": E(BAD | WELL),
    "rfc4475/escruri": E(BAD | CH_INV),
    "rfc4475/regbadct": E(BAD | CH_REG),
    "rfc4475/badaspec": E(BAD | WELL),
    "rfc4475/baddn": E(BAD | WELL, tcp_mode=INCOMPLETE, why="no blank line ends the headers"),
    "rfc4475/baddate": E(CH_INV, why="the Date does not matter"),
    # specific codes
    "rfc4475/badvers": E(only(505)),
    "rfc4475/mismatch02": E(only(501, 400, 405, 401, 407)),
    "rfc4475/badbranch": E(WELL),
    # responses to drop
    "rfc4475/scalarlg": E(DROP),
    "rfc4475/bigcode": E(DROP),
    "rfc4475/bcast": E(DROP, why="never forwarded to the broadcast Via"),
    # §3.3 application layer
    "rfc4475/insuf": E(BAD),
    "rfc4475/unkscm": E(only(416, 401, 407)),
    "rfc4475/novelsc": E(only(416, 404, 401, 407)),
    "rfc4475/unksm2": E(only(400, 401), why="not a sip/sips AoR"),
    "rfc4475/bext01": E(only(420, 401, 407), header="Unsupported", header_when=420),
    "rfc4475/invut": E(only(415, 401, 407)),
    "rfc4475/regaut01": E(only(401), header="WWW-Authenticate", header_when=401,
                          why="an unknown scheme: a fresh Digest challenge"),
    "rfc4475/multi01": E(BAD),
    "rfc4475/mcl01": E(BAD, tcp_mode=CLOSE, why="two Content-Lengths: unframeable on a stream"),
    "rfc4475/zeromf": E(only(200, 483, 401, 407, 404, 480)),
    "rfc4475/cparam01": E(CH_REG),
    "rfc4475/cparam02": E(CH_REG),
    "rfc4475/regescrt": E(CH_REG),
    "rfc4475/sdp01": E(only(406, 400, 401, 407)),
    # §3.4
    "rfc4475/inv2543": E(CH_INV, tcp_codes=BAD | CH_INV,
                         why="no Content-Length: fine on UDP, mandatory on TCP (RFC 3261 §18.3)"),
    # RFC 5118
    "rfc5118/ipv4-mapped-ipv6": E(CH_INV),
    "rfc5118/ipv6-bad": E(BAD),
    "rfc5118/ipv6-bug-abnf-3-colons": E(BAD),
    "rfc5118/ipv6-correct-abnf-2-colons": E(WELL),
    "rfc5118/ipv6-good": E(CH_REG),
    "rfc5118/ipv6-in-sdp": E(CH_INV),
    "rfc5118/mult-ip-in-header": E(WELL, why="BYE outside a dialog: 481 (or a challenge)"),
    "rfc5118/mult-ip-in-sdp": E(CH_INV),
    "rfc5118/port-ambiguous": E(CH_REG),
    "rfc5118/port-unambiguous": E(CH_REG),
    "rfc5118/via-received-param-no-delim": E(WELL),
    "rfc5118/via-received-param-with-delim": E(WELL),
}

CASES = sorted(EXPECT)
SOURCE = {name: i + 1 for i, name in enumerate(CASES)}  # 127.0.{1,2}.N per case


def test_every_message_has_an_expectation():
    on_disk = sorted(f"{p.parent.name}/{p.stem}" for p in TESTDATA.glob("rfc*/*.dat"))
    assert len(on_disk) == 61, f"{TESTDATA}: {len(on_disk)} messages, want 49 + 12"
    assert on_disk == CASES


def _box_for(transport: str):
    @pytest.fixture(scope="module")
    def fixture(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Box]:
        b = started_box(tmp_path_factory.mktemp(f"wire-{transport}"))
        request.module._module_box = b
        try:
            yield b
        finally:
            b.stop()
            request.module._module_box = None
    return fixture


udp_box = _box_for("udp")
tcp_box = _box_for("tcp")

_BRANCH = re.compile(rb"(branch[ \t]*=[ \t]*)(z9hG4bK[^\s;,]+)", re.I)
_CALL_ID = re.compile(rb"(?im)^((?:call-id|i)[ \t]*:[ \t]*)(\S+)")


def uniquify(raw: bytes, suffix: str) -> bytes:
    """`raw` with `suffix` appended to its branch and Call-ID values (header section only)."""
    end = raw.find(b"\r\n\r\n")
    head, rest = (raw, b"") if end < 0 else (raw[:end], raw[end:])
    tag = suffix.encode()
    head = _BRANCH.sub(lambda m: m.group(1) + m.group(2) + tag, head)
    head = _CALL_ID.sub(lambda m: m.group(1) + m.group(2) + tag, head)
    return head + rest


def load(name: str, transport: str) -> bytes:
    return uniquify((TESTDATA / f"{name}.dat").read_bytes(), f".{transport}{SOURCE[name]}")


def _options(sock: SipSocket, box: Box) -> tuple[bytes, str]:
    cid = new_call_id()
    return build_request("OPTIONS", f"sip:{box.sip_addr}", sock=sock, from_user="probe",
                         to_uri=f"sip:{box.sip_addr}", call_id=cid, cseq=1,
                         from_tag=new_tag()), cid


def _check_status(name: str, transport: str, resp: SipResponse | None, codes: Codes,
                  exp: Expect, raw: bytes) -> None:
    assert resp is not None, (f"{transport} {name}: no answer within {ANSWER_TIMEOUT:g}s at the "
                              f"sending socket; want {codes.desc}")
    assert codes.ok(resp.status), (f"{transport} {name}: got {resp.status} {resp.reason!r}, want "
                                   f"{codes.desc} ({exp.why})\n{resp.text()[:800]}")
    if exp.header and resp.status == exp.header_when:
        assert resp.get(exp.header) is not None, \
            f"{transport} {name}: a {resp.status} without {exp.header}\n{resp.text()}"
    if resp.status == 401 and b"REGISTER" in raw[:20]:
        assert resp.get("www-authenticate"), resp.text()


def _alive_after(box: Box, name: str, transport: str) -> None:
    """A fresh OPTIONS over `transport` from 127.0.0.1 gets a final answer."""
    with SipSocket(box.sip_hostport, transport=transport) as s:
        data, cid = _options(s, box)
        s.send(data)
        r = s.recv_final(ANSWER_TIMEOUT, call_id=cid)
    assert r is not None, f"after {transport} {name} the box no longer answers OPTIONS"
    assert box.running(), f"linebox run died after {transport} {name}"


@pytest.mark.parametrize("name", CASES)
def test_udp(udp_box: Box, name: str):
    box = udp_box
    exp = EXPECT[name]
    raw = load(name, "udp")
    with SipSocket(box.sip_hostport, local_ip=f"127.0.1.{SOURCE[name]}") as s:
        s.send(raw)
        if exp.codes is not DROP:
            first = s.recv_final(ANSWER_TIMEOUT)
            _check_status(name, "udp", first, exp.codes, exp, raw)
        # then an OPTIONS from the same socket: answered, and nothing else arrives
        opt, cid = _options(s, box)
        s.send(opt)
        others: list[SipResponse] = []
        answered = None
        while answered is None:
            r = s.recv(ANSWER_TIMEOUT)
            if r is None:
                break
            if r.call_id == cid:
                if r.status >= 200:
                    answered = r
            else:
                others.append(r)
        assert answered is not None, f"udp {name}: an OPTIONS from the same socket got no answer after it"
        others += [SipResponse.parse(x) for x in s.drain(DROP_LISTEN) if x.startswith(b"SIP/2.0 ")]
    if exp.codes is DROP:
        assert others == [], f"udp {name} must be dropped silently, got {others}"
    else:
        # at most the INVITE retransmissions of the one answer; dblreq's noise INVITE unanswered
        statuses = {(r.call_id, r.status) for r in others if r.status >= 200}
        assert len({c for c, _ in statuses}) <= 1, f"udp {name}: answers to more than one request: {statuses}"
    _alive_after(box, name, "udp")


@pytest.mark.parametrize("name", CASES)
def test_tcp(tcp_box: Box, name: str):
    box = tcp_box
    exp = EXPECT[name]
    raw = load(name, "tcp")
    with SipSocket(box.sip_hostport, transport="tcp", local_ip=f"127.0.2.{SOURCE[name]}") as s:
        s.send(raw)
        if exp.codes is DROP:
            _alive_after(box, name, "tcp")
            got = [x for x in s.drain(DROP_LISTEN) if x.startswith(b"SIP/2.0 ")]
            assert got == [], f"tcp {name} must be dropped silently, got {got[0][:300]!r}"
            return
        if exp.tcp_mode == ANSWER:
            first = s.recv_final(ANSWER_TIMEOUT)
            _check_status(name, "tcp", first, exp.tcp_codes or exp.codes, exp, raw)
        elif exp.tcp_mode == CLOSE:
            first = s.recv_final(ANSWER_TIMEOUT)
            if first is not None:
                _check_status(name, "tcp", first, BAD, exp, raw)
            assert s.wait_closed(ANSWER_TIMEOUT), \
                f"tcp {name}: the box must close a stream it cannot frame ({exp.why})"
        else:  # INCOMPLETE
            _alive_after(box, name, "tcp")
            for x in s.drain(DROP_LISTEN):
                if x.startswith(b"SIP/2.0 "):
                    _check_status(name, "tcp", SipResponse.parse(x), BAD, exp, raw)
    _alive_after(box, name, "tcp")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_box_survived_the_torture(request: pytest.FixtureRequest, transport: str):
    box: Box = request.getfixturevalue(f"{transport}_box")
    h = box.health()
    assert h["status"] == "ok" and h["calls"] == 0, h
    assert h["registrations"] == 0, f"a torture REGISTER registered without credentials: {h}"
    log = box.log_text()
    assert not re.search(r"Traceback \(most recent call last\)", log), \
        "the box logged a traceback during the torture run\n" + box.log_tail(120)
