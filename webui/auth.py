"""Admin passwords, session and CSRF tokens, and the login lock-out rule: pure functions, no I/O.

Passwords are stored as scrypt hashes (RFC 7914) with a per-password salt, in a self-describing
string so the cost can be raised later without breaking old hashes. Tokens handed to the browser
are random; only their SHA-256 is stored, so a copy of webui.db opens no session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

# N=2**14, r=8: 16 MiB and ~50 ms per hash on a Pi-class CPU -- a guess per login attempt
# costs an attacker the same, and the lock-out caps attempts long before that matters.
SCRYPT_N, SCRYPT_R, SCRYPT_P, DKLEN = 1 << 14, 8, 1, 32
MIN_PASSWORD = 10
# The passwords of at least 10 characters that lead every leaked-password list, plus the
# appliance-ish ones an installer reaches for first. Checked case-insensitively.
COMMON_PASSWORDS = frozenset("""
1234567890 0123456789 12345678910 1111111111 0000000000 9876543210 1234512345 1q2w3e4r5t
qwertyuiop qwerty1234 qwerty12345 1qaz2wsx3edc asdfghjkl; asdfghjkl1 zaq12wsxcv abcdefghij
password12 password123 password1234 passw0rd123 p@ssw0rd123 p@ssword123 iloveyou12 princess12
letmein123 welcome123 welcome1234 trustno1234 football12 baseball12 sunshine12 superman12
administrator admin12345 admin123456 adminadmin administrator1 changeme12 changeme123
linebox123 linebox1234 lineboxadmin raspberry1 raspberrypi secret1234 default123 password!!
""".split())


class PasswordError(ValueError):
    """Why a new admin password is refused; shown next to the field."""


def check_password(password: str, username: str) -> str:
    """The strength rule for the admin password (server-side; the browser is not trusted)."""
    if len(password) < MIN_PASSWORD:
        raise PasswordError(f"use at least {MIN_PASSWORD} characters (this one has {len(password)})")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        raise PasswordError("this password is on every attacker's list; pick another")
    if username and (lowered == username.lower() or (len(username) >= 4 and username.lower() in lowered)):
        raise PasswordError("the password must not be or contain the user name")
    if len(set(password)) < 5:
        raise PasswordError("use more different characters (at least 5)")
    if len(password) > 256:
        raise PasswordError("use at most 256 characters")
    return password


def check_username(username: str) -> str:
    if not (1 <= len(username) <= 32) or not all(c.isalnum() or c in "._-" for c in username):
        raise PasswordError("1 to 32 letters, digits, dots, dashes or underscores")
    return username


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=DKLEN,
                            maxmem=64 * 1024 * 1024)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = bytes.fromhex(digest)
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A hash no password matches, with the admin's scrypt parameters: a login for an unknown user
# costs the same scrypt as one for the admin, so response time does not tell which user names
# exist. A random digest rather than hash_password() of a random password: no scrypt (and its
# 16 MiB, the web's peak RSS) at import, and nothing to guess.
DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${secrets.token_hex(16)}${secrets.token_hex(DKLEN)}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


@dataclass(frozen=True)
class LockoutPolicy:
    """``failures`` wrong passwords from one address within ``window`` seconds lock that address
    out for ``lockout`` seconds."""

    failures: int = 5
    window: float = 900.0
    lockout: float = 900.0

    def locked_until(self, failure_times: list[float], now: float) -> float | None:
        """Until when the address is locked out at ``now`` (None: it is not). A lock-out starts at
        the failure that completed a burst and lasts its full time, even once the burst itself
        has left the window."""
        times = sorted(t for t in failure_times if t <= now)
        n = self.failures
        until = None
        for i in range(n - 1, len(times)):
            if times[i] - times[i - n + 1] <= self.window:
                until = times[i] + self.lockout
        return until if until is not None and until > now else None

    @property
    def keep(self) -> float:
        """How long a failure matters: a burst's window plus the lock-out it may start."""
        return self.window + self.lockout
