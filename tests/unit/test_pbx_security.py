"""Guard (flood/ban/scanner) and digest authenticator, on a fake clock."""

from __future__ import annotations

from firmware.pbx.auth import Authenticator
from firmware.pbx.guard import Guard
from firmware.sip.digest import Challenge, Credentials

SECRETS = {"1001": "Correct-Horse-42"}


def make_auth(**kw: object) -> Authenticator:
    return Authenticator(realm="linebox", secret_of=SECRETS.get, key=b"k" * 32, **kw)  # type: ignore[arg-type]


def answer(ch: Challenge, user: str, password: str, *, method: str = "REGISTER", nc: int = 1, cnonce: str = "abc") -> str:
    return Credentials.answer(ch, username=user, password=password, method=method, uri="sip:127.0.0.1",
                              nc=nc, cnonce=cnonce).header_value()


def test_guard_bans_after_failures_and_drops_silently() -> None:
    g = Guard(ban_failures=5, ban_window=5.0, ban_seconds=300.0)
    for i in range(4):
        g.auth_failed("198.51.100.7", 5060, 10.0 + i, user="1001", method="REGISTER", reason="wrong credentials")
    assert g.admit(b"REGISTER sip:x SIP/2.0\r\n", "198.51.100.7", 5060, 14.0)
    g.auth_failed("198.51.100.7", 5060, 14.0, user="1001", method="REGISTER", reason="wrong credentials")
    assert not g.admit(b"REGISTER sip:x SIP/2.0\r\n", "198.51.100.7", 5060, 14.1)
    assert not g.admit(b"OPTIONS sip:x SIP/2.0\r\n", "198.51.100.7", 5061, 313.0)
    assert g.admit(b"OPTIONS sip:x SIP/2.0\r\n", "198.51.100.7", 5061, 314.5)  # ban over
    assert g.admit(b"OPTIONS sip:x SIP/2.0\r\n", "198.51.100.8", 5060, 14.1)  # others unaffected
    kinds = [e.event for e in g.events]
    assert kinds.count("auth-failure") == 5 and kinds.count("ban") == 1


def test_guard_failures_outside_the_window_do_not_ban() -> None:
    g = Guard(ban_failures=3, ban_window=5.0, ban_seconds=300.0)
    for t in (0.0, 6.0, 12.0, 18.0):
        g.auth_failed("198.51.100.7", 1, t, user=None, method="REGISTER", reason="x")
    assert g.admit(b"x", "198.51.100.7", 1, 19.0)


def test_guard_never_bans_an_ip_with_a_live_registration() -> None:
    g = Guard(ban_failures=2, ban_window=5.0, ban_seconds=300.0, is_registered=lambda ip: ip == "192.0.2.10")
    for t in range(10):
        g.auth_failed("192.0.2.10", 5060, float(t), user="1001", method="INVITE", reason="wrong credentials")
    assert g.admit(b"INVITE", "192.0.2.10", 5060, 10.0)
    assert [e.event for e in g.events].count("ban") == 0


def test_guard_drops_scanner_user_agents_case_insensitively() -> None:
    g = Guard()
    msg = b"OPTIONS sip:100@x SIP/2.0\r\nVia: SIP/2.0/UDP x\r\nUser-Agent: Friendly-Scanner\r\n\r\n"
    assert not g.admit(msg, "203.0.113.5", 5070, 0.0)
    assert g.admit(msg.replace(b"Friendly-Scanner", b"Yealink SIP-T46S"), "203.0.113.6", 5070, 0.0)
    assert g.events[-1].event == "scanner"


def test_guard_rate_limits_per_source_and_refills() -> None:
    g = Guard(rate=10.0)
    admitted = sum(g.admit(b"x", "203.0.113.9", 1, 0.0) for _ in range(100))
    assert admitted == 20  # the burst
    assert g.admit(b"x", "203.0.113.9", 1, 1.0)  # refilled
    assert g.admit(b"x", "203.0.113.10", 1, 0.0)  # another source has its own bucket
    assert [e.event for e in g.events] == ["rate-limit"]  # logged once, not per packet


def test_guard_tables_stay_bounded_under_spoofed_sources() -> None:
    import firmware.pbx.guard as guard

    g = Guard(rate=1.0)
    for i in range(guard.MAX_TRACKED + 500):
        g.admit(b"x", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1, i * 0.0001)
    assert len(g._buckets) <= guard.MAX_TRACKED


def test_auth_accepts_right_password_once_per_nonce() -> None:
    auth = make_auth()
    ch = auth.challenges(100.0)[0]
    v = auth.check(answer(ch, "1001", "Correct-Horse-42"), method="REGISTER", now=100.5)
    assert v.ok and v.user == "1001"
    # The same header again is a replay: refused and counted.
    v = auth.check(answer(ch, "1001", "Correct-Horse-42"), method="REGISTER", now=101.0)
    assert not v.ok and v.failure == "replayed nonce" and v.stale
    # A new nc on the spent nonce: password right, nonce spent -> stale, not a failure.
    v = auth.check(answer(ch, "1001", "Correct-Horse-42", nc=2, cnonce="def"), method="REGISTER", now=101.0)
    assert not v.ok and v.stale and v.failure is None


def test_auth_sha256_and_stale_after_expiry() -> None:
    auth = make_auth(nonce_ttl=30.0)
    md5, sha = auth.challenges(0.0)
    assert (md5.algorithm, sha.algorithm) == ("MD5", "SHA-256") and md5.nonce == sha.nonce
    assert auth.check(answer(sha, "1001", "Correct-Horse-42"), method="REGISTER", now=1.0).ok
    late = auth.challenges(0.0)[1]
    v = auth.check(answer(late, "1001", "Correct-Horse-42"), method="REGISTER", now=31.0)
    assert v.stale and v.failure is None


def test_auth_unknown_user_and_wrong_password_look_the_same() -> None:
    auth = make_auth()
    ch = auth.challenges(0.0)[0]
    unknown = auth.check(answer(ch, "9999", "Correct-Horse-42"), method="REGISTER", now=1.0)
    wrong = auth.check(answer(ch, "1001", "wrong-password-1"), method="REGISTER", now=1.0)
    assert unknown == wrong and unknown.failure == "wrong credentials"


def test_auth_refuses_forged_nonces_and_other_realms() -> None:
    auth = make_auth()
    forged = Challenge(realm="linebox", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert auth.check(answer(forged, "1001", "Correct-Horse-42"), method="REGISTER", now=1.0).failure == "unknown nonce"
    other = Challenge(realm="elsewhere", nonce=auth.new_nonce(0.0))
    assert auth.check(answer(other, "1001", "Correct-Horse-42"), method="REGISTER", now=1.0).failure == "wrong realm"
    assert auth.check("Digest garbage", method="REGISTER", now=1.0).failure == "malformed credentials"


def test_auth_forgets_used_nonces_after_they_expire() -> None:
    auth = make_auth(nonce_ttl=30.0)
    ch = auth.challenges(0.0)[0]
    assert auth.check(answer(ch, "1001", "Correct-Horse-42"), method="REGISTER", now=1.0).ok
    auth.housekeeping(31.0)
    assert auth._used == {}
    # ...and the expired nonce is still refused, by its age.
    assert auth.check(answer(ch, "1001", "Correct-Horse-42", nc=2), method="REGISTER", now=31.0).stale


def test_auth_retransmission_in_the_spending_transaction_is_no_failure() -> None:
    # Issue 11: under load a retransmitted INVITE with credentials may reach the check again
    # (its transaction was forgotten). The same transaction key is the client doing its duty:
    # stale, with no failure to count toward a ban; the same credentials in another
    # transaction are a replay and still count.
    auth = make_auth()
    ch = auth.challenges(100.0)[0]
    value = answer(ch, "1001", SECRETS["1001"], method="INVITE")
    tx = ("z9hG4bK-1", "127.0.0.1:5104", "INVITE")
    assert auth.check(value, method="INVITE", now=100.1, transaction=tx).ok
    again = auth.check(value, method="INVITE", now=101.0, transaction=tx)
    assert not again.ok and again.stale and again.failure is None
    replay = auth.check(value, method="INVITE", now=101.0, transaction=("z9hG4bK-2", "127.0.0.1:5104", "INVITE"))
    assert not replay.ok and replay.stale and replay.failure == "replayed nonce"
