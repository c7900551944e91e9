"""Digest authentication of extensions (RFC 3261 §22, RFC 7616): nonces and the verdict.

Nonces are self-certifying (an HMAC over their issue time and a random part, keyed by a secret
made at start), so a flood of unauthenticated requests costs no memory. Each nonce is accepted
once: the box remembers used nonces until they expire. Any reuse of a used nonce with a correct
digest gets ``stale=true`` and a fresh nonce (the password was right; a phone simply answers the
new challenge); the exact same credentials again in another transaction are a replay and also
count as a failure. The same credentials in the *same* transaction (the request that spent the
nonce, retransmitted) are not a replay: the endpoint absorbs such copies while it remembers the
transaction; one that comes later still is answered like any spent nonce but costs its source
nothing (RFC 3261 §17: a retransmission is the client's duty, not an attack). Unknown users get
exactly the challenge and the failure a real user gets: the digest is computed against a dummy
secret so even the timing matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from typing import Callable

from firmware.sip.digest import Challenge, Credentials, DigestError, verify

ALGORITHMS = ("MD5", "SHA-256")  # challenge order: MD5 first so every phone (and sipp) can answer


@dataclass(frozen=True)
class Verdict:
    """The outcome for one request carrying credentials."""

    user: str | None  # authenticated user, None unless ok
    ok: bool
    stale: bool = False  # credentials were right but the nonce is spent/expired: re-challenge quietly
    failure: str | None = None  # reason when this counts as a failed attempt


class Authenticator:
    def __init__(
        self,
        *,
        realm: str,
        secret_of: Callable[[str], str | None],
        nonce_ttl: float = 30.0,
        key: bytes | None = None,
    ) -> None:
        self.realm = realm
        self.secret_of = secret_of
        self.nonce_ttl = nonce_ttl
        self._key = key or os.urandom(32)
        # nonce -> (expires, nc, cnonce, transaction key of the request that spent it)
        self._used: dict[str, tuple[float, str | None, str | None, tuple | None]] = {}
        self._dummy = base64.b64encode(os.urandom(18)).decode()

    # --- nonces --------------------------------------------------------------------------------

    def new_nonce(self, now: float) -> str:
        body = struct.pack("!d", now) + os.urandom(9)
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")

    def _nonce_time(self, nonce: str) -> float | None:
        """Issue time of a nonce we made, or None for a forged/garbled one."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != 29:
            return None
        body, mac = raw[:17], raw[17:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:12]):
            return None
        return struct.unpack("!d", body[:8])[0]

    def challenges(self, now: float, *, stale: bool = False) -> list[Challenge]:
        """One challenge per algorithm (RFC 8760: the server lists them in preference order)."""
        nonce = self.new_nonce(now)
        return [Challenge(realm=self.realm, nonce=nonce, algorithm=alg, qop="auth", stale=stale) for alg in ALGORITHMS]

    # --- the verdict ---------------------------------------------------------------------------

    def check(self, header_value: str, *, method: str, now: float, transaction: tuple | None = None) -> Verdict:
        """The verdict on credentials; ``transaction`` is the key of the server transaction the
        request arrived in (``transaction.server_key``), so its retransmissions are told from replays."""
        try:
            creds = Credentials.parse(header_value)
        except DigestError:
            return Verdict(None, False, failure="malformed credentials")
        if creds.realm != self.realm:
            return Verdict(None, False, failure="wrong realm")
        if creds.algorithm.upper() not in ALGORITHMS:
            return Verdict(None, False, failure=f"unsupported algorithm {creds.algorithm}")
        issued = self._nonce_time(creds.nonce)
        if issued is None:
            return Verdict(None, False, failure="unknown nonce")
        secret = self.secret_of(creds.username)
        right = verify(creds, method=method, password=secret if secret is not None else self._dummy)
        if secret is None or not right:
            return Verdict(None, False, failure="wrong credentials")
        if now - issued > self.nonce_ttl or issued - now > 1.0:
            return Verdict(None, False, stale=True)
        used = self._used.get(creds.nonce)
        if used is not None:
            if (used[1], used[2]) == (creds.nc, creds.cnonce) and transaction is not None and used[3] == transaction:
                return Verdict(None, False, stale=True)  # the spending request again: no failure
            if (used[1], used[2]) == (creds.nc, creds.cnonce):
                # An exact replay counts against its source; the answer is still the stale
                # challenge every reuse gets, so a replay learns nothing new.
                return Verdict(None, False, stale=True, failure="replayed nonce")
            return Verdict(None, False, stale=True)
        self._used[creds.nonce] = (issued + self.nonce_ttl, creds.nc, creds.cnonce, transaction)
        return Verdict(creds.username, True)

    def housekeeping(self, now: float) -> None:
        """Forgets used nonces that have expired anyway (an expired nonce is refused by age).
        They were spent in about the order they expire (each lives ``nonce_ttl`` from its issue),
        so the walk stops at the first one still live instead of visiting all of them (9,000 at
        300 calls/s) on every housekeeping tick."""
        used = self._used
        expired = []
        for nonce, (exp, *_) in used.items():
            if exp >= now:
                break
            expired.append(nonce)
        for nonce in expired:
            del used[nonce]

    @staticmethod
    def username_of(header_value: str) -> str | None:
        """The username a client claimed, for the security log (never the secret)."""
        try:
            return Credentials.parse(header_value).username
        except DigestError:
            return None
