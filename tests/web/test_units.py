"""The web admin's pure parts and the firmware's local API, without a browser: password rules
and hashing, the lock-out rule, sessions on a fake clock, /proc parsers, and the box's JSON
actions over a real socket with the real SIP guard."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest

from firmware.api import localapi
from firmware.api.httpapi import ActionError, HttpApi
from firmware.pbx.guard import Guard
from webui import auth, sysinfo
from webui.webdb import WebDb


@pytest.mark.parametrize("password,why", [
    ("short", "at least 10"), ("Password123", "attacker"), ("1234567890", "attacker"),
    ("xadminadminx", "user name"), ("aaaaabbbbb", "different characters"),
])
def test_weak_admin_passwords_are_refused(password, why):
    with pytest.raises(auth.PasswordError, match=why):
        auth.check_password(password, "admin")


def test_a_strong_password_hashes_with_scrypt_and_verifies():
    assert auth.check_password("Tr1cky-Harbour-42", "admin")
    stored = auth.hash_password("Tr1cky-Harbour-42")
    assert stored.startswith("scrypt$16384$8$1$") and "Tr1cky" not in stored
    assert auth.verify_password("Tr1cky-Harbour-42", stored)
    assert not auth.verify_password("Tr1cky-Harbour-43", stored)
    assert not auth.verify_password("anything", "md5$garbage")
    assert auth.hash_password("x" * 12) != auth.hash_password("x" * 12)  # salted


def test_lockout_rule_counts_failures_in_the_window_only():
    rule = auth.LockoutPolicy(failures=3, window=60, lockout=300)
    assert rule.locked_until([0, 10], 20) is None
    assert rule.locked_until([0, 10, 20], 20) == 320
    assert rule.locked_until([0, 10, 100], 100) is None  # the first two fell out of the window
    assert rule.locked_until([0, 10, 20], 200) == 320  # the lock-out outlives the burst's window
    assert rule.locked_until([0, 10, 20], 320) is None


def test_sessions_end_after_the_idle_timeout_and_tokens_are_stored_hashed(tmp_path: Path):
    db = WebDb(tmp_path)
    db.create_session("tok", "admin", "csrf1", now=1000.0)
    assert db.session("tok", 1000.0 + 899, idle=900, lifetime=43200, touch=True).csrf == "csrf1"
    # touched at +899: alive until +1799
    assert db.session("tok", 1000.0 + 1700, idle=900, lifetime=43200, touch=False) is not None
    assert db.session("tok", 1000.0 + 1800, idle=900, lifetime=43200, touch=False) is None
    assert db.session("tok", 1000.0, idle=900, lifetime=43200, touch=False) is None  # deleted when found idle
    assert b"tok\x00" not in (tmp_path / "webui.db").read_bytes()
    db.create_session("long", "admin", "c", now=0.0)
    assert db.session("long", 50.0, idle=900, lifetime=40, touch=True) is None  # absolute lifetime


def test_login_failures_lock_out_per_address_and_success_clears(tmp_path: Path):
    db = WebDb(tmp_path)
    rule = auth.LockoutPolicy(failures=3, window=60, lockout=300)
    assert db.login_failed("10.0.0.9", 0.0, rule) is None
    assert db.login_failed("10.0.0.9", 1.0, rule) is None
    assert db.login_failed("10.0.0.7", 1.5, rule) is None
    assert db.login_failed("10.0.0.9", 2.0, rule) == 302.0
    assert db.locked_until("10.0.0.9", 100.0, rule) == 302.0
    assert db.locked_until("10.0.0.7", 100.0, rule) is None
    assert db.locked_until("10.0.0.9", 303.0, rule) is None
    db.login_succeeded("10.0.0.7")
    assert db.create_admin("admin", "h", 0.0) and not db.create_admin("other", "h", 1.0)


PROC_STAT_1 = "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n"
PROC_STAT_2 = "cpu  150 0 150 900 0 0 0 0 0 0\ncpu0 75 0 75 450 0 0 0 0 0 0\n"
MEMINFO = "MemTotal:        4000000 kB\nMemFree:          500000 kB\nMemAvailable:    3000000 kB\n"


def test_proc_parsers():
    a, b = sysinfo.parse_cpu(PROC_STAT_1), sysinfo.parse_cpu(PROC_STAT_2)
    assert sysinfo.cpu_percent(a, b) == 50.0
    assert sysinfo.cpu_percent(b, b) is None
    assert sysinfo.parse_meminfo(MEMINFO) == (4000000 * 1024, 1000000 * 1024)
    assert sysinfo.parse_temperature("48312\n") == 48.312
    h = sysinfo.sample(Path("/"), a, b)
    assert h.mem_total > 0 and h.disk_total > 0 and h.cpu_percent == 50.0


def test_box_actions_feed_the_real_guard():
    clock = [100.0]
    guard = Guard(ban_failures=3, ban_window=60, ban_seconds=300)

    class Call:  # the one attribute and method box_actions uses of a live call
        def __init__(self, id: str) -> None:
            self.id, self.ended = id, None

        def end(self, cause: str) -> None:
            self.ended = cause

    calls = [Call("c1"), Call("c2")]
    actions = localapi.box_actions(guard=guard, calls=lambda: calls, clock=lambda: clock[0])
    fail = actions[localapi.AUTH_FAILURE]
    assert fail({"ip": "192.0.2.5", "user": "admin"}) == {"banned": False, "retry_in": 0.0}
    fail({"ip": "192.0.2.5", "user": "admin"})
    assert fail({"ip": "192.0.2.5", "user": "admin"}) == {"banned": True, "retry_in": 300.0}
    assert not guard.admit(b"OPTIONS sip:x SIP/2.0\r\n\r\n", "192.0.2.5", 5060, clock[0])  # SIP banned too
    assert guard.events[0].method == localapi.WEB_LOGIN and guard.events[0].user == "admin"
    assert actions[localapi.BAN_CHECK]({"ip": "192.0.2.6"})["banned"] is False
    with pytest.raises(ActionError) as bad:
        fail({"ip": "not-an-address"})
    assert bad.value.status.startswith("400")
    assert actions[localapi.HANGUP]({"call": "c2"}) == {"ended": "c2"}
    assert calls[1].ended == "admin-hangup" and calls[0].ended is None
    with pytest.raises(ActionError) as missing:
        actions[localapi.HANGUP]({"call": "c9"})
    assert missing.value.status.startswith("404")


def _http(port: int, raw: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


SECRET = "per-boot-secret-for-the-test"


def _post(body: bytes, *, ctype: str = "application/json", secret: str | None = SECRET, host: str = "") -> bytes:
    lines = ["POST /api/echo HTTP/1.0", f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    if secret is not None:
        lines.append(f"X-LineBox-Secret: {secret}")
    if host:
        lines.append(f"Host: {host}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_http_api_actions_over_a_socket():
    async def main() -> list[tuple[int, dict]]:
        seen = []
        api = HttpApi({"/health": lambda: {"status": "ok"}}, {"/api/echo": lambda a: {"got": a}}, secret=SECRET)
        await api.start("127.0.0.1", 0)
        port = api.server.sockets[0].getsockname()[1]
        body = b'{"x": 1}'
        reqs = [
            _post(body, host=f"127.0.0.1:{port}"),
            _post(body, ctype="Application/JSON; charset=utf-8", host="localhost"),
            _post(body, ctype="text/plain"),
            # What a cross-site page may send without a preflight, with the words in a parameter.
            _post(body, ctype="text/plain; charset=application/json"),
            _post(body, ctype="application/jsonx"),
            _post(body, secret=None),
            _post(body, secret="a-guess"),
            _post(body, secret=""),
            _post(body, host=f"rebound.evil.example:{port}"),
            b"GET /api/calls HTTP/1.1\r\nHost: rebound.evil.example\r\n\r\n",
            _post(b"[1]"),
            b"POST /api/nothing HTTP/1.0\r\nContent-Type: application/json\r\nX-LineBox-Secret: %s\r\n"
            b"Content-Length: 2\r\n\r\n{}" % SECRET.encode(),
            b"GET /health HTTP/1.0\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            b"DELETE /health HTTP/1.0\r\n\r\n",
        ]
        for raw in reqs:
            seen.append(await asyncio.to_thread(_http, port, raw))
        await api.close()
        return seen

    # A thread of its own: Playwright's sync API keeps an event loop running in this one.
    results: list = []
    t = threading.Thread(target=lambda: results.append(asyncio.run(main())))
    t.start()
    t.join(30)
    (echo, echo_params, text, text_json, jsonx, no_secret, guessed, empty, rebound, rebound_get, not_object,
     missing, health, health_v6, delete) = results[0]
    assert echo == echo_params == (200, {"got": {"x": 1}})
    assert text[0] == text_json[0] == jsonx[0] == 415
    assert no_secret[0] == guessed[0] == empty[0] == 403 and "X-LineBox-Secret" in guessed[1]["error"]
    assert rebound[0] == rebound_get[0] == 421
    assert not_object[0] == 400 and missing[0] == 404 and delete[0] == 405
    assert health == health_v6 == (200, {"status": "ok"})


def test_http_api_actions_only_from_this_machine_and_never_without_a_secret():
    head = _post(b"")
    assert HttpApi({}, {"/api/echo": lambda a: a}, secret=SECRET)._answer(head, b"{}", local=False)[0].startswith("403")
    assert HttpApi({}, {"/api/echo": lambda a: a}, secret=SECRET)._answer(head, b"{}", local=True)[0].startswith("200")
    # A box that has no secret (yet) takes no action at all, not every action.
    assert HttpApi({}, {"/api/echo": lambda a: a})._answer(_post(b"", secret=""), b"{}")[0].startswith("403")


def test_localapi_adds_all_or_nothing_on_a_real_store(tmp_path: Path):
    api = localapi.LocalApi(tmp_path, api=None)
    try:
        with pytest.raises(localapi.Invalid) as bad:
            api.add_extensions([("2001", "Front"), ("20x2", ""), ("2003", 'Say "hi"')])
        assert set(bad.value.errors) == {"rows[1].number", "rows[2].name"}
        assert api.extensions() == []
        made, applied = api.add_extensions([("2001", "Front"), ("2002", "")])
        assert set(made) == {"2001", "2002"} and all(len(s) == 20 for s in made.values())
        assert not applied.running  # no box on this directory: it reads the database when it starts
        assert [e.number for e in api.extensions()] == ["2001", "2002"]
        assert "secret" not in repr(api.extensions())
        secret, _ = api.new_secret("2001")
        assert secret != made["2001"] and api.secret_for_provisioning("2001") == secret
        assert api.export_document()["extensions"][0]["secret"] == secret
        with pytest.raises(localapi.Invalid):
            api.add_extensions([("2002", "again")])
        with pytest.raises(localapi.BoxUnreachable):
            api.calls()
    finally:
        api.close()


def test_open_redirects_after_login_are_refused(box_factory, web_factory):
    """`next` must be a path on this site: not //host, not /\\host (which browsers read as //)."""
    import http.client
    import re as _re

    from tests.web.test_memory import _admin_session

    box = box_factory("idle", start=False, extensions=())  # logins work with the box stopped, too
    web = web_factory(box)
    _admin_session(web)
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    conn.request("GET", "/login")
    r = conn.getresponse()
    page = r.read().decode()
    anon = _re.search(r"lb_csrf=([^;]+)", r.getheader("Set-Cookie")).group(1)
    token = _re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    from tests.web.conftest import PASSWORD
    from urllib.parse import urlencode

    for nxt, want in (("//evil.example/", "/"), ("/\\evil.example/", "/"), ("/extensions", "/extensions")):
        body = urlencode({"csrf": token, "username": "admin", "password": PASSWORD, "next": nxt})
        conn.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"lb_csrf={anon}"})
        r = conn.getresponse()
        r.read()
        assert r.status == 303
        assert r.getheader("Location").split("127.0.0.1:%d" % web.port, 1)[-1] == want, r.getheader("Location")


def test_live_streams_are_capped_and_a_stream_needs_a_session(box_factory, web_factory):
    from tests.web.test_memory import _admin_session, _read_events, _sse_client

    box = box_factory("idle", start=False, extensions=())
    web = web_factory(box, "--max-sse", "1", "--sse-interval", "0.2")
    session = _admin_session(web)
    first = _sse_client(web, session)
    try:
        assert b"200 OK" in _read_events(first, 1)
        second = _sse_client(web, session)
        with second:
            assert second.recv(200).startswith(b"HTTP/1.1 503")
        with _sse_client(web, "not-a-session") as stranger:
            assert stranger.recv(200).startswith(b"HTTP/1.1 401")
    finally:
        first.close()
