"""Security of `linebox run` from the outside, with raw SIP from sockets this file owns:
no extension enumeration, brute force bans (while a registered phone keeps calling),
scanner User-Agents dropped, replayed REGISTERs refused, and no lost CDR on kill -9."""
from __future__ import annotations

import json
import re
import time

from tests.e2e.box import (Box, RawRegistrar, SipResponse, SipSocket, build_ack, build_request,
                           digest_authorization, new_call_id, new_tag, parse_challenge,
                           pick_challenge, sdp_offer)
from tests.e2e.test_calls import HIGH, LOW, _user, connect, heard

# How long a dropped request is listened for. Silence cannot be awaited as an event;
# this window starts only after the box has answered a later request from a clean
# socket, so the box had the dropped packet in hand well before.
SILENCE_WINDOW = 1.0


def _normalise(resp: SipResponse, *, user: str, sock: SipSocket, call_id: str,
               tag: str) -> list[tuple[str, str]]:
    """The response's status and headers with what legitimately differs between two
    requests masked: the user we asked about, our Call-ID/tag/branch/port, the nonce
    and the box's To tag."""
    out = [("status", f"{resp.status} {resp.reason}")]
    for name, value in resp.headers:
        v = value.replace(call_id, "<call-id>").replace(tag, "<from-tag>")
        v = v.replace(f"sip:{user}@", "sip:<user>@")
        v = v.replace(f"{sock.local[1]}", "<port>")
        v = re.sub(r"branch=[^;,\s]+", "branch=<branch>", v)
        v = re.sub(r'nonce="[^"]*"', 'nonce="<nonce>"', v)
        if name.lower() == "date":
            v = "<date>"
        if name.lower() in ("to", "t"):
            v = re.sub(r";tag=[^;,\s]+", ";tag=<to-tag>", v)
        out.append((name.lower(), v))
    return out


def _unauthenticated(sock: SipSocket, method: str, from_user: str, to_user: str):
    """An unauthenticated REGISTER (for from_user) or INVITE (from_user -> to_user) from
    `sock`; returns (request bytes, final response, normalised response)."""
    host, port = sock.box_addr
    call_id, tag = new_call_id(), new_tag()
    if method == "REGISTER":
        data = build_request("REGISTER", f"sip:{host}:{port}", sock=sock, from_user=from_user,
                             to_uri=f"sip:{from_user}@{host}:{port}", call_id=call_id, cseq=1,
                             from_tag=tag, contact_user=from_user, extra=["Expires: 60"])
    else:
        data = build_request("INVITE", f"sip:{to_user}@{host}:{port}", sock=sock,
                             from_user=from_user, to_uri=f"sip:{to_user}@{host}:{port}",
                             call_id=call_id, cseq=1, from_tag=tag, contact_user=from_user,
                             body=sdp_offer(sock.local[0], 40000), content_type="application/sdp")
    resp = sock.request(data)
    assert resp is not None, f"no answer to an unauthenticated {method} for {from_user}"
    if method == "INVITE":
        sock.send(build_ack(data, resp))
    norm = _normalise(resp, user=from_user if method == "REGISTER" else to_user, sock=sock,
                      call_id=call_id, tag=tag)
    if method == "INVITE":  # the From user differs too
        norm = [(n, v.replace(f"sip:{from_user}@", "sip:<user>@")) for n, v in norm]
    return data, resp, norm


def test_no_extension_enumeration(box: Box):
    for method, real, fake, target in (("REGISTER", "1001", "9999", None),
                                       ("INVITE", "1001", "9999", "1002")):
        with SipSocket(box.sip_hostport) as s1, SipSocket(box.sip_hostport) as s2:
            _, r_real, n_real = _unauthenticated(s1, method, real, target or real)
            _, r_fake, n_fake = _unauthenticated(s2, method, fake, target or fake)
        want = 401 if method == "REGISTER" else 407
        assert r_real.status == want, r_real.text()
        assert r_fake.status == want, f"unknown user {fake}: {r_fake.text()}"
        ch_real = parse_challenge(pick_challenge(r_real))
        ch_fake = parse_challenge(pick_challenge(r_fake))
        assert ch_real["realm"] == ch_fake["realm"] == "linebox"
        assert ch_real["nonce"] != ch_fake["nonce"], "nonces must be fresh per challenge"
        assert n_real == n_fake, (f"{method}: the answers for {real} and {fake} differ beyond "
                                  f"the nonce:\n{r_real.text()}\n---\n{r_fake.text()}")

    # INVITE from a real extension to an unknown number, unauthenticated: still 407, not 404
    with SipSocket(box.sip_hostport) as s:
        _, r, _ = _unauthenticated(s, "INVITE", "1001", "9999")
    assert r.status == 407, r.text()


def _wrong_digest_round(reg: RawRegistrar) -> SipResponse | None:
    """One challenge + wrong answer; returns the answer to the wrong digest (None if the
    box stayed silent at either step)."""
    ch = reg.challenge(timeout=2)
    if ch is None:
        return None
    assert ch.status == 401, ch.text()
    _, resp = reg.answer(ch, "not-the-password-" + new_tag(), timeout=2)
    return resp


def _banned(sock: SipSocket, clean: SipSocket, box: Box) -> bool:
    """True when `sock` gets no answer at all to a fresh REGISTER while a clean socket
    keeps getting answers."""
    reg = RawRegistrar(sock, "1001")
    sock.send(reg.build())
    options = build_request("OPTIONS", f"sip:{box.sip_addr}", sock=clean, from_user="probe",
                            to_uri=f"sip:{box.sip_addr}", call_id=new_call_id(), cseq=1,
                            from_tag=new_tag())
    assert clean.request(options) is not None, "the box stopped answering a clean source"
    return sock.drain(SILENCE_WINDOW) == []


def test_brute_force_source_is_banned_while_a_registered_phone_keeps_calling(
        box: Box, registered, tmp_path):
    a, b = registered
    with SipSocket(box.sip_hostport, local_ip="127.0.0.66") as attacker, \
            SipSocket(box.sip_hostport) as clean:
        reg = RawRegistrar(attacker, "1001", user_agent="Linphone/5.2")
        answered = []
        for i in range(5):
            resp = _wrong_digest_round(reg)
            assert resp is not None, f"failure #{i + 1} got no answer (ban came too early)"
            assert resp.status in (401, 403), resp.text()
            answered.append(resp.status)
        assert _banned(attacker, clean, box), "after 5 failures in 5 s the source still gets answers"
        ev = box.wait_security_event(
            lambda e: e.get("event") == "ban" and str(e.get("source", "")).startswith("127.0.0.66"),
            what="a ban event for 127.0.0.66")
        fails = [e for e in box.security_events()
                 if e.get("event") == "auth-failure"
                 and str(e.get("source", "")).startswith("127.0.0.66:")]
        assert len(fails) >= 5, fails

        # 127.0.0.1 holds live registrations: failures from it never ban it
        own = RawRegistrar(SipSocket(box.sip_hostport), "1001")
        try:
            for i in range(6):
                resp = _wrong_digest_round(own)
                assert resp is not None, f"127.0.0.1 (live registrations) was banned after {i} failures"
        finally:
            own.sock.close()

    # the registered phones on 127.0.0.1 still call, with audio both ways
    a.play_tone(LOW)
    b.play_tone(HIGH)
    b.record(tmp_path / "b-hears.wav")
    a.record(tmp_path / "a-hears.wav")
    connect(a, b)
    a.wait_rx_packets(75, timeout=15)
    b.wait_rx_packets(75, timeout=15)
    a.stop_record()
    b.stop_record()
    a.hangup()
    b.wait_state("DISCONNECTED")
    ok, desc = heard(tmp_path / "b-hears.wav", LOW, HIGH)
    assert ok, f"b should hear a's tone: {desc}"
    ok, desc = heard(tmp_path / "a-hears.wav", HIGH, LOW)
    assert ok, f"a should hear b's tone: {desc}"
    assert "not-the-password" not in box.log_text()


SCANNERS = ("friendly-scanner", "sipvicious", "sipcli/v1.8", "VaxSIPUserAgent/3.1", "sundayddr",
            "iWar", "SIPBomber", "sip-scan", "smap 0.6.0")


def test_scanner_user_agents_are_dropped(box: Box):
    socks = [SipSocket(box.sip_hostport, local_ip=f"127.0.0.{100 + i}") for i in range(len(SCANNERS))]
    control = SipSocket(box.sip_hostport, local_ip="127.0.0.99")
    try:
        for sock, ua in zip(socks, SCANNERS):
            sock.send(build_request("OPTIONS", f"sip:100@{box.sip_addr}", sock=sock,
                                    from_user="100", to_uri=f"sip:100@{box.sip_addr}",
                                    call_id=new_call_id(), cseq=1, from_tag=new_tag(),
                                    user_agent=ua))
            sock.send(RawRegistrar(sock, "1001", user_agent=ua).build())
        # the same requests with an ordinary User-Agent are answered
        r = control.request(build_request("OPTIONS", f"sip:100@{box.sip_addr}", sock=control,
                                          from_user="100", to_uri=f"sip:100@{box.sip_addr}",
                                          call_id=new_call_id(), cseq=1, from_tag=new_tag(),
                                          user_agent="Yealink SIP-T46S 66.86.0.15"))
        assert r is not None, "an ordinary OPTIONS got no answer"
        assert RawRegistrar(control, "1001").challenge() is not None
        deadline = time.monotonic() + SILENCE_WINDOW
        for sock, ua in zip(socks, SCANNERS):
            got = sock.drain(max(0.05, deadline - time.monotonic()))
            assert got == [], f"User-Agent {ua!r} was answered: {got[0][:200]!r}"
    finally:
        for s in socks + [control]:
            s.close()
    evs = [e for e in box.security_events() if e.get("event") == "scanner"]
    assert evs, "no scanner security event"


def test_replayed_authenticated_register_is_refused(box: Box):
    # Over TCP there is no transaction state left once the 200 is sent (Timer J = 0),
    # so the replay of the exact bytes on a new connection must meet the nonce check.
    with SipSocket(box.sip_hostport, transport="tcp") as s:
        reg = RawRegistrar(s, "1001")
        ch = reg.challenge()
        assert ch is not None and ch.status == 401, ch
        sent, ok = reg.answer(ch, box.secret("1001"))
        assert ok is not None and ok.status == 200, ok and ok.text()
    with SipSocket(box.sip_hostport, transport="tcp", local_ip="127.0.0.67") as replayer:
        r = replayer.request(sent)
        assert r is not None, "no answer to the replay"
        assert r.status == 401, f"the replayed REGISTER got {r.status}:\n{r.text()}"
        ch2 = parse_challenge(pick_challenge(r))
        assert ch2["nonce"] != parse_challenge(pick_challenge(ch))["nonce"]
        assert ch2.get("stale", "").lower() == "true", r.text()

    # The same nonce in a new transaction over UDP (new branch, CSeq): 401 stale=true too.
    with SipSocket(box.sip_hostport) as s:
        reg = RawRegistrar(s, "1001")
        ch = reg.challenge()
        _, ok = reg.answer(ch, box.secret("1001"))
        assert ok is not None and ok.status == 200
        auth = digest_authorization(pick_challenge(ch), method="REGISTER", uri=reg.ruri,
                                    user="1001", password=box.secret("1001"))
        r = s.request(reg.build(authorization=auth))
        assert r is not None and r.status == 401, r and r.text()
        assert parse_challenge(pick_challenge(r)).get("stale", "").lower() == "true", r.text()


def test_kill9_during_calls_loses_no_finished_cdr(box: Box, registered):
    a, b = registered
    finished = []
    for _ in range(3):
        connect(a, b)
        finished.append(a.call_info()["call_id"])
        a.wait_rx_packets(50)  # a billable second
        a.hangup()
        b.wait_state("DISCONNECTED")
        a.wait_state("DISCONNECTED")
    box.wait_cdr(3, 10)  # the box has the rows; the kill comes right after

    connect(a, b)
    live_call_id = a.call_info()["call_id"]
    box.wait_health(lambda h: h["calls"] == 1, 5, "the 4th call is up")
    box.kill9()

    on_disk = box.cdr()  # the CLI reads the database without the box running
    assert sum(r["disposition"] == "ANSWERED" for r in on_disk) == 3, on_disk
    box.start()
    rows = box.wait_cdr(4, 10)
    assert len(rows) == 4, json.dumps(rows, indent=1)
    interrupted, *done = rows  # newest first
    assert interrupted["disposition"] == "INTERRUPTED", interrupted
    assert interrupted["cause"] == "interrupted", interrupted
    assert _user(interrupted["caller"]) == "1001" and _user(interrupted["callee"]) == "1002"
    for row in done:
        assert row["disposition"] == "ANSWERED" and row["cause"] == "caller-hangup", row
        assert 0 < row["billsec"] <= row["duration"], row
    # the rows are the calls we made (by the caller leg's Call-ID, if the box records it)
    ids = {r["call_id"] for r in done}
    if ids & set(finished):
        assert ids == set(finished), (ids, finished)
        assert interrupted["call_id"] == live_call_id, (interrupted, live_call_id)
    assert len({r["id"] for r in rows}) == 4
    assert box.health()["calls"] == 0
