"""The web admin's defences, driven from a real browser against a real box: login lock-out
shared with the box's SIP brute-force guard (both ways), CSRF on every write, session cookies
and security headers, and no default password."""
from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

from tests.e2e.box import RawRegistrar, SipSocket, run_cli
from tests.web.conftest import ADMIN, PASSWORD, create_admin, login

LOCKED = "locked out"


def _settle_admin(page, web) -> None:
    create_admin(page, web)
    page.context.clear_cookies()  # log out the wizard's session: the tests log in themselves


def test_five_wrong_passwords_lock_out_the_address_and_ban_it_for_sip(box_factory, web_factory, page):
    # A wide ban window on the box, so the five browser attempts count as one burst there too.
    box = box_factory("box", extensions=("1001",), settings={"security.ban_window": 120})
    web = web_factory(box)
    _settle_admin(page, web)

    for attempt in range(1, 6):
        login(page, web, password=f"Wrong-guess-{attempt}")
        text = page.inner_text("#login-error")
        if attempt < 5:
            assert "Wrong user name or password" in text, (attempt, text)
        else:
            assert LOCKED in text, text
    # The right password no longer helps from this address.
    login(page, web)
    assert LOCKED in page.inner_text("#login-error")
    assert page.url.endswith("/login")
    page.goto(web.url("/extensions"))
    assert "/login" in page.url

    # Each failure reached the box's security log, and the box banned the address for SIP too.
    events = box.security_events()
    web_failures = [e for e in events if e["event"] == "auth-failure" and e.get("method") == "WEB-LOGIN"]
    assert len(web_failures) == 5, events
    assert all(e["user"] == ADMIN and e["source"].startswith("127.0.0.1:") for e in web_failures)
    assert any(e["event"] == "ban" for e in events), events
    assert PASSWORD not in str(events)
    with SipSocket(box.sip_hostport) as sock:
        assert RawRegistrar(sock, "1001").challenge(timeout=1.0) is None, "a banned address still got a SIP answer"


def test_an_address_banned_for_sip_cannot_log_in_to_the_web(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001",), settings={"security.ban_failures": 3, "security.ban_window": 120})
    web = web_factory(box)
    _settle_admin(page, web)
    with SipSocket(box.sip_hostport) as sock:
        reg = RawRegistrar(sock, "1001")
        for _ in range(3):
            ch = reg.challenge()
            assert ch is not None and ch.status == 401
            _, final = reg.answer(ch, "Not-the-secret-123")
            assert final is not None and final.status in (401, 403)
    box.wait_security_event(lambda e: e["event"] == "ban", what="the SIP ban")

    login(page, web)  # the right password
    assert "brute-force guard" in page.inner_text("#login-error")
    assert page.url.endswith("/login")


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(box_factory, web_factory, page):
    box = box_factory("box", extensions=("1001",))
    web = web_factory(box)
    create_admin(page, web)
    before = run_cli(box.data, "ext", "list").stdout
    for form in ({"number": "1010", "name": "Forged"}, {"number": "1010", "name": "Forged", "csrf": "0" * 43}):
        r = page.request.post(web.url("/extensions"), form=form)
        assert r.status == 403, (form, r.status)
        assert "CSRF" in r.text()
    r = page.request.post(web.url("/extensions/1001/remove"), form={"csrf": "nope"}, max_redirects=0)
    assert r.status == 403
    r = page.request.post(web.url("/logout"), form={}, max_redirects=0)
    assert r.status == 403
    assert run_cli(box.data, "ext", "list").stdout == before
    page.goto(web.url("/audit"))
    assert "1010" not in page.inner_text("#audit")

    # The same request with the page's own token goes through: the token is what was missing.
    page.goto(web.url("/extensions"))
    token = page.get_attribute("form.add input[name=csrf]", "value")
    r = page.request.post(web.url("/extensions"), form={"number": "1010", "name": "Forged", "csrf": token})
    assert r.status == 200
    assert "1010" in run_cli(box.data, "ext", "list").stdout

    # Forms used before a session exists (login, the wizard's first step) are covered too.
    page.context.clear_cookies()
    r = page.request.post(web.url("/login"), form={"username": ADMIN, "password": PASSWORD}, max_redirects=0)
    assert r.status == 403


def test_a_large_post_before_login_is_refused_before_its_body_is_read(box_factory, web_factory):
    """The first-admin form is read before anyone logged in: a stranger announcing a 10 MB
    multipart body (which bottle would spool to a temporary file) gets 413 at once, with only a
    few bytes sent (the server never waited for the rest)."""
    web = web_factory(box_factory("box", extensions=()))
    where = urlsplit(web.url("/"))
    with socket.create_connection((where.hostname, where.port), timeout=10) as s:
        s.sendall(b"POST /setup/admin HTTP/1.1\r\nHost: box\r\n"
                  b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n"
                  b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]


def test_cookies_and_headers(box_factory, web_factory, page):
    web = web_factory(box_factory("box", extensions=()))
    response = page.goto(web.url("/"))
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    create_admin(page, web)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["lb_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert len(session["value"]) >= 40
    # A redirect is protected as well as a page, and an error page as well as both.
    r = page.request.get(web.url("/nowhere"))
    assert r.status == 404 and r.headers["x-frame-options"] == "DENY"
    # The session cookie is the session: without it nothing is shown.
    page.context.clear_cookies()
    page.goto(web.url("/extensions"))
    assert re.search(r"/login\?next=(%2F|/)extensions$", page.url), page.url


def test_an_idle_session_ends_even_with_the_dashboard_streaming(box_factory, web_factory, page):
    box = box_factory("box", extensions=())
    web = web_factory(box, "--session-idle", "2", "--sse-interval", "0.2")
    create_admin(page, web)
    page.goto(web.url("/extensions"))
    page.goto(web.url("/"))  # the wizard is not finished: the dashboard's place is the wizard
    page.goto(web.url("/extensions"))
    assert page.url.endswith("/extensions")
    # Nothing but the live stream for longer than the idle limit: the stream is no activity.
    page.evaluate("() => { const es = new EventSource('/events/dashboard'); window._es = es; }")
    page.wait_for_timeout(2600)
    page.goto(web.url("/extensions"))
    assert "/login" in page.url, "an idle session outlived --session-idle"
    page.fill("#username", ADMIN)  # logging in again leads back to the page asked for
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    assert page.url.endswith("/extensions"), (page.url, page.inner_text("main"))
    page.context.clear_cookies()
    login(page, web)  # plain login: on to the wizard step still to do
    assert page.url.endswith("/setup/region"), (page.url, page.inner_text("main"))


HOSTILE_NEXT = ("/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\\evil.example",
                "\\\\evil.example", "//evil.example", "///evil.example", "https://evil.example/",
                "http:/evil.example", "javascript:alert(1)", "/%09/evil.example", "%2F%2Fevil.example",
                "/ /evil.example", "/\x00/evil.example", "/\u3000/evil.example", " //evil.example")


def test_login_leads_only_to_a_local_page_whatever_next_says(box_factory, web_factory, page):
    from urllib.parse import quote, urlsplit

    web = web_factory(box_factory("box", extensions=()))
    _settle_admin(page, web)
    home = urlsplit(web.base).netloc

    def land(query: str, field: str | None = None) -> str:
        page.goto(web.url("/login" + query))
        token = page.get_attribute("main form input[name=csrf]", "value")
        form = {"username": ADMIN, "password": PASSWORD, "csrf": token}
        if field is not None:
            form["next"] = field
        r = page.request.post(web.url("/login" + query), form=form, max_redirects=0)
        assert r.status == 303, (query, field, r.status)
        where = urlsplit(r.headers["location"])
        assert where.scheme == "http" and where.netloc == home, (query, field, r.headers["location"])
        return where.path

    for nxt in HOSTILE_NEXT:
        assert land("?next=" + quote(nxt, safe="")) == "/", nxt  # in the query, as a link carries it
        assert land("", field=nxt) == "/", nxt                    # in the form, as the login page posts it
    assert land("?next=/%09/evil.example") == "/"  # the reported link, byte for byte
    # A real local page is still where the login leads.
    assert land("?next=" + quote("/cdr?from=2026-01-01")) == "/cdr"
    assert land("", field="/extensions") == "/extensions"
