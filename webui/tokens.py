"""API tokens for ``/api/v1``: made and revoked on the web admin's token page, sent by clients
as ``Authorization: Bearer lbx_...``.

A token is 32 random bytes (URL-safe base64 behind the ``lbx_`` prefix, so a leaked one is easy
to grep for); webui.db keeps only its SHA-256 -- a token has the entropy a password lacks, so a
plain hash is enough -- and the first characters, so the admin can tell tokens apart. The
secret is shown once, on the page answering its creation.

The table lives in webui.db beside webui.webdb's, created here with ``IF NOT EXISTS`` on a
connection of this module's own (webui.webdb's migrations number only its own tables).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "webui.db"
PREFIX = "lbx_"
NAME = re.compile(r"[^\x00-\x1f\x7f]{1,40}")
TOUCH_EVERY = 60.0  # seconds between writes of a token's "last used" (not one write per request)

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE,
    shown     TEXT NOT NULL,
    created   REAL NOT NULL,
    last_used REAL,
    revoked   REAL
);
"""


class TokenError(ValueError):
    """A token name the page refuses (the message goes next to the field)."""


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    shown: str  # the first characters of the secret, to tell tokens apart
    created: float
    last_used: float | None
    revoked: float | None


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME.fullmatch(name):
        raise TokenError("1 to 40 characters, no control characters (e.g. \"crm-sync\")")
    return name


class TokenStore:
    def __init__(self, data: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(data / DB_NAME, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def create(self, name: str, now: float) -> tuple[Token, str]:
        """A new token named ``name``; returns it and its secret (never stored, shown once)."""
        name = check_name(name)
        secret = PREFIX + secrets.token_urlsafe(32)
        shown = secret[: len(PREFIX) + 6]
        with self._lock:
            cur = self._conn.execute("INSERT INTO api_tokens (name, hash, shown, created) VALUES (?, ?, ?, ?)",
                                     (name, token_hash(secret), shown, now))
            tid = int(cur.lastrowid)
        return Token(tid, name, shown, now, None, None), secret

    def tokens(self) -> list[Token]:
        return [Token(*r) for r in self._q("SELECT id, name, shown, created, last_used, revoked FROM api_tokens"
                                           " ORDER BY revoked IS NOT NULL, id DESC")]

    def revoke(self, tid: int, now: float) -> Token | None:
        rows = self._q("UPDATE api_tokens SET revoked = ? WHERE id = ? AND revoked IS NULL"
                       " RETURNING id, name, shown, created, last_used, revoked", (now, tid))
        return Token(*rows[0]) if rows else None

    def verify(self, secret: str | None, now: float) -> Token | None:
        """The live token with this secret, or None (unknown, malformed or revoked)."""
        if not secret or not secret.startswith(PREFIX) or len(secret) > 100:
            return None
        rows = self._q("SELECT id, name, shown, created, last_used, revoked FROM api_tokens"
                       " WHERE hash = ? AND revoked IS NULL", (token_hash(secret),))
        if not rows:
            return None
        tok = Token(*rows[0])
        if tok.last_used is None or now - tok.last_used > TOUCH_EVERY:
            self._q("UPDATE api_tokens SET last_used = ? WHERE id = ?", (now, tok.id))
        return tok


__all__ = ["TokenStore", "Token", "TokenError", "check_name", "PREFIX"]
