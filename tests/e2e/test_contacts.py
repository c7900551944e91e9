"""Several contacts per extension (all ring, the first to answer wins) and SHA-256 digest on
the wire."""
from __future__ import annotations

import threading
from pathlib import Path

from tests.e2e.box import Box, RawRegistrar, SipSocket, digest_authorization, parse_challenge
from tests.e2e.test_calls import heard
from tests.peers.netutil import wait_until


def test_all_contacts_ring_and_the_first_to_answer_wins(box: Box, phones, tmp_path: Path) -> None:
    a = phones("a1001")
    desk = phones("desk1002", tone=1400.0)
    soft = phones("soft1002", tone=900.0)
    assert a.register(server=box.sip_addr, user="1001", password=box.secret("1001")) == 200
    for ph in (desk, soft):
        assert ph.register(server=box.sip_addr, user="1002", password=box.secret("1002")) == 200
    regs = box.http_get("/api/registrations")
    assert sorted(r["extension"] for r in regs) == ["1001", "1002", "1002"], regs

    a.record(tmp_path / "a-hears.wav")
    a.call("1002")
    desk.wait_incoming()
    soft.wait_incoming()
    soft.answer()
    a.wait_state("CONFIRMED")
    # The desk phone stops ringing: the box cancels its leg.
    assert desk.wait_state("DISCONNECTED")["code"] in (487, 200), desk.events("call_state")
    a.wait_rx_packets(100)
    a.stop_record()
    ok, desc = heard(tmp_path / "a-hears.wav", 900.0, 1400.0)
    assert ok, f"a should hear the phone that answered (900 Hz): {desc}"
    a.hangup()
    soft.wait_state("DISCONNECTED")
    wait_until(lambda: box.health()["calls"] == 0, 5, what="no calls left")


def test_sha256_digest_registers(box: Box) -> None:
    with SipSocket(box.sip_hostport) as s:
        reg = RawRegistrar(s, "1001")
        ch = reg.challenge()
        assert ch is not None and ch.status == 401, ch
        offered = {parse_challenge(v).get("algorithm", "MD5").upper(): v for v in ch.all("www-authenticate")}
        assert {"MD5", "SHA-256"} <= set(offered), ch.text()
        auth = digest_authorization(offered["SHA-256"], method="REGISTER", uri=reg.ruri,
                                    user="1001", password=box.secret("1001"))
        ok = s.request(reg.build(authorization=auth))
        assert ok is not None and ok.status == 200, ok and ok.text()
        # and a wrong SHA-256 password is refused like any other
        ch = s.request(reg.build())
        sha = next(v for v in ch.all("www-authenticate") if "SHA-256" in v)
        bad = digest_authorization(sha, method="REGISTER", uri=reg.ruri, user="1001", password="Wrong-Pass-123")
        r = s.request(reg.build(authorization=bad))
        assert r is not None and r.status == 401, r and r.text()


def _answer_200(request: bytes) -> bytes:
    """A 200 to a request from the box, headers copied as RFC 3261 §8.2.6 says."""
    head = request.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    keep = [h for h in head[1:] if h.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")]
    return ("\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0"]) + "\r\n\r\n").encode()


def test_qualify_marks_a_silent_contact_unreachable(box_factory) -> None:
    box = box_factory("qualify", settings={"sip.qualify_interval": 2, "sip.qualify_timeout": 2})
    with SipSocket(box.sip_hostport) as alive, SipSocket(box.sip_hostport, local_ip="127.0.0.71") as dead:
        for sock in (alive, dead):
            reg = RawRegistrar(sock, "1002")
            _, ok = reg.answer(reg.challenge(), box.secret("1002"), expires=300)
            assert ok is not None and ok.status == 200, ok and ok.text()
        options = alive.recv_raw(10)
        assert options is not None and options.startswith(b"OPTIONS "), options
        alive.send(_answer_200(options))
        assert dead.recv_raw(10).startswith(b"OPTIONS ")  # asked too, and never answers

        def reachability() -> dict[str, bool]:
            return {r["source"]: r["reachable"] for r in box.http_get("/api/registrations")}

        want = {f"127.0.0.1:{alive.local[1]}": True, f"127.0.0.71:{dead.local[1]}": False}
        stop = threading.Event()

        def keep_answering() -> None:  # the live phone answers every OPTIONS that follows
            while not stop.is_set():
                raw = alive.recv_raw(0.2)
                if raw is not None and raw.startswith(b"OPTIONS "):
                    alive.send(_answer_200(raw))

        answerer = threading.Thread(target=keep_answering, daemon=True)
        answerer.start()
        try:
            wait_until(lambda: reachability() == want, 12, what=f"reachability {want}")
            # ...and it stays so over further rounds of OPTIONS
            wait_until(lambda: "does not answer OPTIONS" in box.log_text(), 5, what="the log line")
            assert reachability() == want
        finally:
            stop.set()
            answerer.join(2)
