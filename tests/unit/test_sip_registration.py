"""The trunk registration core (firmware.sip.registration) on a fake clock.

A test plays the provider's registrar: it takes the REGISTER the core wants sent, answers it
with bytes parsed back as a real response would be, and checks the credentials with the
server-side `digest.verify`. No socket, no sleep.
"""

from __future__ import annotations

import random

import pytest

from firmware.sip import registration as registration_module
from firmware.sip.digest import Challenge, Credentials, verify
from firmware.sip.message import Message, Request, Response, make_response, new_branch
from firmware.sip.registration import (
    MAX_CHALLENGES,
    MAX_REDIRECTS,
    Backoff,
    Hop,
    Registration,
    RegistrationSettings,
    RegistrationState,
    refresh_delay,
)

BOX = ("192.0.2.10", 5062)
SECRET = "s3cret-Pa55"
SETTINGS = RegistrationSettings(registrar="sip.provider.test", user="4930123", secret=SECRET,
                                auth_user="auth4930123", domain="provider.test")


def make(settings: RegistrationSettings = SETTINGS, **kw) -> Registration:
    kw.setdefault("rng", random.Random(7))
    return Registration(settings, contact=BOX, now=0.0, **kw)


def sent(reg: Registration, now: float) -> tuple[Request, Hop]:
    """The one REGISTER the core wants sent now, as it looks on the wire (our Via added,
    serialized, parsed back)."""
    out = reg.requests_to_send(now)
    assert len(out) == 1, out
    request = out[0].request
    request.headers.add("Via", f"SIP/2.0/UDP {BOX[0]}:{BOX[1]};branch={new_branch()};rport", first=True)
    parsed = Message.parse(bytes(request))
    assert isinstance(parsed, Request)
    return parsed, out[0].hop


def nothing_sent(reg: Registration, now: float) -> None:
    assert reg.requests_to_send(now) == []


def answer(request: Request, status: int, headers: list[tuple[str, str]] = (), reason: str | None = None) -> Response:
    response = make_response(request, status, reason, to_tag="reg", headers=list(headers))
    parsed = Message.parse(bytes(response))
    assert isinstance(parsed, Response)
    return parsed


def ok(request: Request, expires: int | None = None, *, others: tuple[str, ...] = ()) -> Response:
    """200 listing our Contact (with the granted expires) after the AOR's other bindings."""
    contact = request.contacts[0]
    granted = expires if expires is not None else request.expires
    values = [*others, f"<{contact.uri}>;expires={granted}"]
    return answer(request, 200, [("Contact", v) for v in values])


def challenge(request: Request, *, nonce: str = "n1", algorithm: str = "MD5", qop: str | None = "auth",
              stale: bool = False, status: int = 401, realm: str = "provider.test") -> Response:
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    ch = Challenge(realm=realm, nonce=nonce, algorithm=algorithm, qop=qop, opaque="op", stale=stale)
    return answer(request, status, [(header, ch.header_value())])


def credentials(request: Request, header: str = "Authorization") -> Credentials:
    value = request.headers.get(header)
    assert value is not None, f"no {header} in {request!r}"
    return Credentials.parse(value)


def registered(reg: Registration, now: float = 0.0, expires: int = 3600) -> Request:
    """Take the REGISTER out, challenge it, answer the credentials with 200."""
    first, _ = sent(reg, now)
    reg.receive_response(challenge(first), now)
    second, _ = sent(reg, now)
    reg.receive_response(ok(second, expires), now)
    assert reg.state.kind == "registered"
    return second


# -- the REGISTER itself --------------------------------------------------------------------


def test_the_first_register_names_the_account_and_carries_the_box_contact():
    reg = make()
    req, hop = sent(reg, 0.0)
    assert req.uri == "sip:provider.test"
    assert str(req.to.uri) == "sip:4930123@provider.test" and req.to.tag is None
    assert str(req.from_.uri) == "sip:4930123@provider.test" and req.from_.tag
    assert [str(c.uri) for c in req.contacts] == ["sip:4930123@192.0.2.10:5062"]
    assert req.expires == 3600 and req.cseq.seq == 1 and req.cseq.method == "REGISTER"
    assert "Authorization" not in req.headers and "Route" not in req.headers
    assert hop == Hop("udp", "sip.provider.test", 5060)
    assert reg.state == RegistrationState("registering")
    assert reg.get_timer() is None  # waits for the answer (the transaction times it)


def test_without_a_domain_the_registrar_and_its_port_are_the_request_uri():
    reg = make(RegistrationSettings(registrar="203.0.113.5", port=5080, user="u", transport="tcp"))
    req, hop = sent(reg, 0.0)
    assert req.uri == "sip:203.0.113.5:5080" and str(req.to.uri) == "sip:u@203.0.113.5"
    assert str(req.contacts[0].uri) == "sip:u@192.0.2.10:5062;transport=tcp"
    assert hop == Hop("tcp", "203.0.113.5", 5080)


def test_an_outbound_proxy_gets_every_register_with_a_loose_route():
    reg = make(RegistrationSettings(registrar="provider.test", user="u", outbound_proxy="edge.provider.test:5070"))
    req, hop = sent(reg, 0.0)
    assert hop == Hop("udp", "edge.provider.test", 5070)
    assert req.headers.get("Route") == "<sip:edge.provider.test:5070;lr>"
    assert req.uri == "sip:provider.test"


@pytest.mark.parametrize("bad", [
    dict(transport="sctp"), dict(port=0), dict(user=""), dict(expires=0),
    dict(registrar="host:5060"), dict(outbound_proxy="a b"), dict(registrar="user@host"),
])
def test_settings_refuse_what_cannot_work(bad):
    fields = dict(registrar="provider.test", user="u") | bad
    with pytest.raises(ValueError):
        RegistrationSettings(**fields)


# -- digest authentication ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
def test_a_challenge_is_answered_once_with_credentials_the_server_verifies(algorithm):
    reg = make()
    first, _ = sent(reg, 0.0)
    reg.receive_response(challenge(first, algorithm=algorithm, nonce="abc"), 0.1)
    second, _ = sent(reg, 0.1)
    creds = credentials(second)
    assert creds.username == "auth4930123" and creds.realm == "provider.test"
    assert creds.algorithm == algorithm and creds.nonce == "abc" and creds.opaque == "op"
    assert creds.uri == second.uri and creds.qop == "auth" and creds.nc == "00000001" and creds.cnonce
    assert verify(creds, method="REGISTER", password=SECRET)
    assert not verify(creds, method="REGISTER", password="guess")
    assert second.call_id == first.call_id and second.cseq.seq == 2
    assert second.from_.tag == first.from_.tag


def test_rfc2069_and_auth_int_challenges_are_answered_too():
    reg = make()
    first, _ = sent(reg, 0.0)
    reg.receive_response(challenge(first, qop=None), 0.0)
    creds = credentials(sent(reg, 0.0)[0])
    assert creds.qop is None and creds.nc is None and verify(creds, method="REGISTER", password=SECRET)
    reg = make()
    first, _ = sent(reg, 0.0)
    reg.receive_response(challenge(first, qop="auth-int"), 0.0)
    creds = credentials(sent(reg, 0.0)[0])
    assert creds.qop == "auth-int" and verify(creds, method="REGISTER", password=SECRET)


def test_sha256_is_preferred_when_the_provider_offers_several_challenges():
    reg = make()
    first, _ = sent(reg, 0.0)
    offers = [Challenge(realm="provider.test", nonce=f"n-{alg}", algorithm=alg, qop="auth").header_value()
              for alg in ("MD5", "SHA-512-256", "SHA-256")]
    reg.receive_response(answer(first, 401, [("WWW-Authenticate", v) for v in offers]), 0.0)
    second, _ = sent(reg, 0.0)
    assert len(second.headers.get_fields("Authorization")) == 1
    creds = credentials(second)
    assert (creds.algorithm, creds.nonce) == ("SHA-256", "n-SHA-256")
    assert verify(creds, method="REGISTER", password=SECRET)


def test_a_proxy_challenge_is_answered_in_proxy_authorization_beside_the_registrar_s():
    reg = make()
    first, _ = sent(reg, 0.0)
    reg.receive_response(challenge(first, nonce="r1"), 0.0)
    second, _ = sent(reg, 0.0)
    reg.receive_response(challenge(second, status=407, realm="edge", nonce="p1"), 0.0)
    third, _ = sent(reg, 0.0)
    assert credentials(third).nonce == "r1" and credentials(third).nc == "00000002"
    proxy = credentials(third, "Proxy-Authorization")
    assert proxy.realm == "edge" and verify(proxy, method="REGISTER", password=SECRET)
    reg.receive_response(ok(third), 0.0)
    assert reg.state.kind == "registered"


def test_credentials_refused_in_the_same_attempt_mean_a_wrong_secret_and_nothing_is_retried():
    reg = make()
    first, _ = sent(reg, 0.0)
    reg.receive_response(challenge(first, nonce="n1"), 0.0)
    second, _ = sent(reg, 0.0)
    # Kamailio issues a new nonce with every challenge: a refused answer still ends here.
    reg.receive_response(challenge(second, nonce="n2"), 0.1)
    assert reg.state == RegistrationState("failing", last_response="401 Unauthorized", retry_at=None,
                                          reason="wrong credentials")
    assert str(reg.state) == "failing: 401 Unauthorized (wrong credentials)"
    assert reg.get_timer() is None
    reg.handle_timer(100_000.0)
    nothing_sent(reg, 100_000.0)


def test_a_stale_nonce_is_answered_again_with_the_new_nonce():
    reg = make()
    first, _ = sent(reg, 0.0)
    reg.receive_response(challenge(first, nonce="old"), 0.0)
    second, _ = sent(reg, 0.0)
    reg.receive_response(challenge(second, nonce="new", stale=True), 0.0)
    third, _ = sent(reg, 0.0)
    creds = credentials(third)
    assert creds.nonce == "new" and creds.nc == "00000001" and verify(creds, method="REGISTER", password=SECRET)
    reg.receive_response(ok(third), 0.0)
    assert reg.state.kind == "registered"


def test_a_registrar_that_says_stale_forever_is_given_up_on():
    reg = make()
    req, _ = sent(reg, 0.0)
    for i in range(MAX_CHALLENGES):
        reg.receive_response(challenge(req, nonce=f"n{i}", stale=i > 0), 0.0)
        req, _ = sent(reg, 0.0)
    reg.receive_response(challenge(req, nonce="again", stale=True), 0.0)
    assert reg.state.kind == "failing" and reg.state.retry_at is not None
    assert reg.state.reason == "challenged again and again"


def test_a_refresh_reuses_the_nonce_with_the_next_nc_and_answers_a_new_nonce_once():
    reg = make()
    second = registered(reg, 0.0)
    assert reg.get_timer() == refresh_delay(3600)
    t = reg.get_timer()
    reg.handle_timer(t)
    refresh, _ = sent(reg, t)
    assert refresh.call_id == second.call_id and refresh.cseq.seq == second.cseq.seq + 1
    creds = credentials(refresh)
    assert creds.nonce == "n1" and creds.nc == "00000002" and verify(creds, method="REGISTER", password=SECRET)
    # the registrar has forgotten that nonce (restarted): cached credentials meet a new one
    reg.receive_response(challenge(refresh, nonce="n-after-restart"), t)
    again, _ = sent(reg, t)
    assert credentials(again).nonce == "n-after-restart"
    reg.receive_response(ok(again), t)
    assert reg.state == RegistrationState("registered", until=t + 3600)


def test_cached_credentials_refused_for_the_same_nonce_mean_the_secret_changed():
    reg = make()
    registered(reg, 0.0)
    t = reg.get_timer()
    reg.handle_timer(t)
    refresh, _ = sent(reg, t)
    reg.receive_response(challenge(refresh, nonce="n1"), t)
    assert reg.state.reason == "wrong credentials" and reg.state.retry_at is None


def test_credentials_of_an_attempt_that_met_a_503_are_not_taken_for_refused_ones():
    reg = make(backoff=Backoff(first=10, cap=100))
    first, _ = sent(reg, 0.0)
    reg.receive_response(challenge(first, nonce="n1"), 0.0)
    second, _ = sent(reg, 0.0)
    reg.receive_response(answer(second, 503), 0.0)
    t = reg.get_timer()
    reg.handle_timer(t)
    retry, _ = sent(reg, t)
    assert credentials(retry).nonce == "n1"
    reg.receive_response(challenge(retry, nonce="n2"), t)  # that nonce had expired meanwhile
    final, _ = sent(reg, t)
    reg.receive_response(ok(final), t)
    assert reg.state.kind == "registered"


def test_a_challenge_with_nothing_we_can_answer_stops():
    reg = make()
    req, _ = sent(reg, 0.0)
    only = Challenge(realm="r", nonce="n", algorithm="SHA-512-256").header_value()
    reg.receive_response(answer(req, 401, [("WWW-Authenticate", only)]), 0.0)
    assert reg.state.kind == "failing" and reg.state.retry_at is None
    assert reg.state.reason == "no digest challenge we can answer"


# -- expiry and refresh ---------------------------------------------------------------------


@pytest.mark.parametrize("granted, refresh", [(3600, 3510), (600, 510), (180, 90), (120, 60), (60, 30),
                                              (20, 10), (4, 5)])
def test_refresh_comes_at_half_time_or_a_margin_before_expiry(granted, refresh):
    assert refresh_delay(granted) == refresh


def test_the_granted_expiry_is_our_contact_s_then_the_expires_header_then_what_we_asked():
    reg = make()
    req, _ = sent(reg, 0.0)
    others = ("<sip:4930123@198.51.100.7:5060>;expires=3000",)
    reg.receive_response(ok(req, 1200, others=others), 10.0)
    assert reg.state == RegistrationState("registered", until=1210.0)
    assert reg.get_timer() == 10.0 + refresh_delay(1200)

    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 200, [("Contact", "<sip:someone@198.51.100.7>;expires=50"),
                                           ("Expires", "900")]), 0.0)
    assert reg.state.until == 900.0

    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 200), 0.0)
    assert reg.state.until == 3600.0


def test_a_2xx_that_keeps_no_binding_is_a_failure():
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(ok(req, 0), 0.0)
    assert reg.state.kind == "failing" and reg.state.last_response == "200 OK"
    assert reg.state.retry_at is not None


def test_interval_too_brief_is_asked_again_with_min_expires_and_refreshes_keep_it():
    reg = make(RegistrationSettings(registrar="provider.test", user="u", expires=30))
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 423, [("Min-Expires", "120")]), 0.0)
    again, _ = sent(reg, 0.0)
    assert again.expires == 120 and again.cseq.seq == 2
    reg.receive_response(ok(again), 0.0)
    assert reg.state.until == 120.0
    reg.handle_timer(reg.get_timer())
    refresh, _ = sent(reg, 60.0)
    assert refresh.expires == 120


def test_a_423_without_a_larger_min_expires_backs_off():
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 423, [("Min-Expires", "60")]), 0.0)
    assert reg.state.kind == "failing" and reg.state.retry_at is not None
    nothing_sent(reg, 0.0)


def test_the_binding_lapses_when_a_refresh_is_still_unanswered_at_expiry():
    reg = make(RegistrationSettings(registrar="provider.test", user="u", expires=20))
    req, _ = sent(reg, 0.0)
    reg.receive_response(ok(req), 0.0)
    assert reg.get_timer() == 10.0
    reg.handle_timer(10.0)
    sent(reg, 10.0)
    assert reg.get_timer() == 20.0
    reg.handle_timer(20.0)
    assert reg.state == RegistrationState("registering")
    nothing_sent(reg, 20.0)


# -- redirects ----------------------------------------------------------------------------


def test_a_3xx_is_followed_to_its_first_contact_and_refreshes_stay_there():
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 302, [("Contact", "<sip:reg2.provider.test:5070;transport=tcp>"),
                                           ("Contact", "<sip:reg3.provider.test>")]), 0.0)
    again, hop = sent(reg, 0.0)
    assert hop == Hop("tcp", "reg2.provider.test", 5070)
    assert again.uri == "sip:reg2.provider.test:5070;transport=tcp" and again.cseq.seq == 2
    assert again.call_id == req.call_id and str(again.to.uri) == "sip:4930123@provider.test"
    reg.receive_response(challenge(again), 0.0)
    answered, hop = sent(reg, 0.0)
    assert credentials(answered).uri == again.uri and hop.host == "reg2.provider.test"
    reg.receive_response(ok(answered), 0.0)
    reg.handle_timer(reg.get_timer())
    refresh, hop = sent(reg, 3510.0)
    assert refresh.uri == again.uri and hop.host == "reg2.provider.test"


def test_credentials_are_not_carried_to_the_registrar_a_3xx_names():
    reg = make()
    first = registered(reg, 0.0)
    reg.handle_timer(reg.get_timer())
    refresh, _ = sent(reg, 3510.0)
    assert "Authorization" in refresh.headers
    reg.receive_response(answer(refresh, 301, [("Contact", "<sip:elsewhere.test>")]), 3510.0)
    moved, hop = sent(reg, 3510.0)
    assert hop.host == "elsewhere.test" and "Authorization" not in moved.headers
    assert moved.call_id == first.call_id


def test_redirects_are_bounded():
    reg = make()
    req, _ = sent(reg, 0.0)
    for i in range(MAX_REDIRECTS):
        reg.receive_response(answer(req, 302, [("Contact", f"<sip:r{i}.test>")]), 0.0)
        req, hop = sent(reg, 0.0)
        assert hop.host == f"r{i}.test"
    reg.receive_response(answer(req, 302, [("Contact", "<sip:loop.test>")]), 0.0)
    assert reg.state.kind == "failing" and reg.state.reason == "too many redirects"
    assert reg.state.last_response == "302 Moved Temporarily"
    reg.handle_timer(reg.get_timer())
    _, hop = sent(reg, reg.state.retry_at)
    assert hop.host == "sip.provider.test"  # a new attempt starts at the configured registrar


# -- refusals, back-off and Retry-After ---------------------------------------------------------


@pytest.mark.parametrize("status, line", [(403, "403 Forbidden"), (404, "404 Not Found")])
def test_a_refused_account_stops_until_reset(status, line):
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, status), 0.0)
    assert reg.state == RegistrationState("failing", last_response=line)
    assert str(reg.state) == f"failing: {line}"
    assert reg.get_timer() is None
    reg.handle_timer(1e9)
    nothing_sent(reg, 1e9)
    reg.reset(50.0)
    again, _ = sent(reg, 50.0)
    assert again.call_id == req.call_id and again.cseq.seq == 2
    reg.reset(60.0, RegistrationSettings(registrar="provider.test", user="other"))
    other, _ = sent(reg, 60.0)
    assert other.call_id != req.call_id and other.cseq.seq == 1 and str(other.to.uri) == "sip:other@provider.test"
    reg.receive_response(answer(again, 200), 60.0)  # the abandoned REGISTER's answer is ignored
    assert reg.state.kind == "registering"


def test_back_off_doubles_with_jitter_up_to_its_cap():
    backoff = Backoff(first=30, cap=1800)
    reg = make(backoff=backoff)
    now = 0.0
    delays = []
    for _ in range(9):
        req, _ = sent(reg, now)
        reg.receive_response(answer(req, 500, reason="Server Internal Error"), now)
        assert reg.state.kind == "failing" and reg.state.last_response == "500 Server Internal Error"
        delays.append(reg.state.retry_at - now)
        now = reg.get_timer()
        nothing_sent(reg, now - 0.001)
        reg.handle_timer(now)
    ceilings = [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings)), delays
    assert len({round(d, 3) for d in delays[-3:]}) == 3  # jittered, not in lock-step
    req, _ = sent(reg, now)
    reg.receive_response(ok(req), now)
    now = reg.get_timer()
    reg.handle_timer(now)
    req, _ = sent(reg, now)
    reg.receive_response(answer(req, 503), now)
    assert reg.state.retry_at - now <= 30  # a success starts the count again


def test_retry_after_of_a_503_is_honoured():
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 503, [("Retry-After", "300 (maintenance);duration=60")]), 5.0)
    assert reg.state.retry_at == 305.0 and reg.get_timer() == 305.0
    assert str(reg.state) == "failing: 503 Service Unavailable"


def test_408_backs_off_and_a_transaction_timeout_is_unreachable():
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 408), 0.0)
    assert reg.state.kind == "failing" and reg.state.last_response == "408 Request Timeout"
    reg.handle_timer(reg.get_timer())
    req, _ = sent(reg, 30.0)
    reg.request_failed(62.0, cseq=req.cseq.seq)
    assert reg.state.kind == "unreachable" and str(reg.state) == "unreachable"
    assert 62.0 + 30 <= reg.state.retry_at <= 62.0 + 60
    reg.request_failed(63.0, cseq=req.cseq.seq)  # late news of the same request: no effect
    assert reg.get_timer() == reg.state.retry_at


def test_a_stray_or_provisional_response_changes_nothing():
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 100), 0.0)
    old = Message.parse(bytes(req).replace(b"CSeq: 1 REGISTER", b"CSeq: 9 REGISTER"))
    reg.receive_response(answer(old, 200), 0.0)
    assert reg.state.kind == "registering"
    reg.receive_response(ok(req), 0.0)
    assert reg.state.kind == "registered"


# -- unregistering ------------------------------------------------------------------------------


def test_unregister_sends_expires_0_with_the_cached_credentials_then_stops():
    reg = make()
    second = registered(reg, 0.0)
    reg.unregister(100.0)
    bye, _ = sent(reg, 100.0)
    assert bye.expires == 0 and bye.contacts[0].params.get("expires") == "0"
    assert bye.call_id == second.call_id and bye.cseq.seq == second.cseq.seq + 1
    assert verify(credentials(bye), method="REGISTER", password=SECRET)
    reg.receive_response(challenge(bye, nonce="fresh"), 100.0)  # a challenge is still answered
    bye2, _ = sent(reg, 100.0)
    reg.receive_response(answer(bye2, 200), 100.0)
    assert reg.state == RegistrationState("stopped") and reg.get_timer() is None


def test_unregister_waits_for_the_register_in_flight():
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.unregister(0.5)
    nothing_sent(reg, 0.5)
    reg.receive_response(ok(req), 1.0)
    bye, _ = sent(reg, 1.0)
    assert bye.expires == 0
    reg.request_failed(33.0, cseq=bye.cseq.seq)
    assert reg.state.kind == "stopped"


def test_unregister_without_a_binding_just_stops():
    reg = make()
    req, _ = sent(reg, 0.0)
    reg.receive_response(answer(req, 403), 0.0)
    reg.unregister(1.0)
    nothing_sent(reg, 1.0)
    assert reg.state.kind == "stopped"


def test_the_whole_state_history_of_a_trunk_through_an_outage():
    """registering -> registered -> unreachable (refresh unanswered) -> failing (503 while the
    provider comes back) -> registered again -> stopped."""
    reg = make(RegistrationSettings(registrar="provider.test", user="u", secret=SECRET, expires=120),
               backoff=Backoff(first=10, cap=60))
    history = [reg.state.kind]

    def note() -> None:
        if reg.state.kind != history[-1]:
            history.append(reg.state.kind)

    req, _ = sent(reg, 0.0)
    reg.receive_response(challenge(req), 0.0)
    req, _ = sent(reg, 0.0)
    reg.receive_response(ok(req), 0.0)
    note()
    reg.handle_timer(60.0)
    req, _ = sent(reg, 60.0)
    reg.request_failed(92.0, cseq=req.cseq.seq)
    note()
    now = reg.get_timer()
    reg.handle_timer(now)
    req, _ = sent(reg, now)
    reg.receive_response(answer(req, 503), now)
    note()
    now = reg.get_timer()
    reg.handle_timer(now)
    req, _ = sent(reg, now)
    reg.receive_response(challenge(req, nonce="after"), now)
    req, _ = sent(reg, now)
    reg.receive_response(ok(req), now)
    note()
    reg.unregister(now + 1)
    req, _ = sent(reg, now + 1)
    reg.receive_response(answer(req, 200), now + 1)
    note()
    assert history == ["registering", "registered", "unreachable", "failing", "registered", "stopped"]


def test_the_core_imports_no_io():
    source = registration_module.__file__
    text = open(source).read()
    for banned in ("import asyncio", "import socket", "import time"):
        assert banned not in text
