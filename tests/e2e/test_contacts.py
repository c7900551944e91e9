"""Several contacts per extension (all ring, the first to answer wins) and SHA-256 digest on
the wire."""
from __future__ import annotations

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
