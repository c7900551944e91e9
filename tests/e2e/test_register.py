"""Registration against `linebox run` with real pjsua2 phones: digest, refusal, unregister,
live configuration, TCP, and bindings that survive a restart."""
from __future__ import annotations

import json

from tests.e2e.box import Box, strong_secret


def _register(ph, box: Box, ext: str, password: str | None = None) -> int:
    return ph.register(server=box.sip_addr, user=ext,
                       password=box.secret(ext) if password is None else password)


def test_two_phones_register(box: Box, phones):
    a, b = phones("a1001"), phones("b1002")
    assert _register(a, box, "1001") == 200, box.log_tail()
    assert _register(b, box, "1002") == 200, box.log_tail()
    h = box.wait_health(lambda h: h.get("registrations", 0) >= 2, 5, "2 registrations")
    assert h["calls"] == 0, h


def test_wrong_password_is_refused_and_logged_without_the_password(box: Box, phones):
    wrong = "Wr0ng-" + strong_secret()
    a = phones("a1001")
    code = _register(a, box, "1001", password=wrong)
    assert code != 200 and code >= 400, f"a wrong password got {code}\n{box.log_tail()}"
    assert box.health()["registrations"] == 0

    ev = box.wait_security_event(
        lambda e: e.get("event") == "auth-failure" and str(e.get("user")) == "1001",
        what="an auth-failure event for 1001")
    assert str(ev.get("source", "")).startswith("127.0.0.1:"), ev
    assert ev.get("method") == "REGISTER", ev
    assert "time" in ev and "reason" in ev, ev

    events_text = json.dumps(box.security_events())
    log = box.log_text()
    for secret, what in ((wrong, "the wrong password"), (box.secret("1001"), "1001's secret")):
        assert secret not in log, f"{what} appears in the box log"
        assert secret not in events_text, f"{what} appears in /api/security-events"


def test_unregister_then_calls_get_480(box: Box, phones):
    a, b = phones("a1001"), phones("b1002")
    assert _register(a, box, "1001") == 200
    assert _register(b, box, "1002") == 200
    box.wait_health(lambda h: h.get("registrations", 0) >= 2, 5, "2 registrations")
    assert b.unregister() == 200, box.log_tail()
    box.wait_health(lambda h: h.get("registrations") == 1, 5, "1 registration after unregister")

    a.call("1002")
    ended = a.wait_state("DISCONNECTED", timeout=10)
    assert ended["code"] == 480, ended
    assert b.events("incoming") == []


def test_extension_added_while_running_registers_without_restart(box: Box, phones):
    secret = strong_secret()
    box.cli("ext", "add", "1004", "--secret", secret, "--name", "Live Added")
    d = phones("d1004")
    assert d.register(server=box.sip_addr, user="1004", password=secret) == 200, box.log_tail()
    assert box.starts == 1

    # and a removed one can no longer register (live too)
    box.cli("ext", "remove", "1003")
    c = phones("c1003")
    code = c.register(server=box.sip_addr, user="1003", password=box.secret("1003"))
    assert code != 200, f"removed extension 1003 registered ({code})"


def test_tcp_phone_registers_and_is_called_over_tcp(box: Box, phones):
    a = phones("a1001")
    t = phones("t1002", transport="tcp")
    assert _register(a, box, "1001") == 200
    assert _register(t, box, "1002") == 200, box.log_tail()
    a.call("1002")
    t.wait_incoming(timeout=10)
    t.answer()
    a.wait_state("CONFIRMED")
    t.wait_state("CONFIRMED")
    t.wait_rx_packets(25)
    a.hangup()
    t.wait_state("DISCONNECTED")
    a.wait_state("DISCONNECTED")


def test_bindings_survive_a_restart(box: Box, phones):
    a, b = phones("a1001"), phones("b1002")
    assert _register(a, box, "1001") == 200
    assert _register(b, box, "1002") == 200
    box.wait_health(lambda h: h.get("registrations", 0) >= 2, 5, "2 registrations")
    reg_events = len(b.events("reg_state"))

    rc = box.stop(timeout=10)
    assert rc is not None, "linebox run did not leave within 10 s of SIGTERM"
    box.start()
    h = box.wait_health(lambda h: h.get("registrations", 0) >= 2, 5,
                        "the 2 bindings restored after the restart")
    assert h["calls"] == 0

    a.call("1002")
    inc = b.wait_incoming(timeout=10)
    assert "1001" in inc["from"], inc
    b.answer()
    a.wait_state("CONFIRMED")
    b.wait_state("CONFIRMED")
    a.hangup()
    b.wait_state("DISCONNECTED")
    # b was reached through the binding stored before the restart, not a new REGISTER
    assert len(b.events("reg_state")) == reg_events
