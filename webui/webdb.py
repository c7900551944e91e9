"""webui.db: what only the web admin keeps -- its account, sessions, login failures, the audit
log and web-only settings (the region, whether the wizard ran).

Beside linebox.db in the data directory but a file of its own: the box never reads it, and the
web never opens linebox.db itself (it goes through firmware.api.localapi). Plain sqlite3 with one
connection shared by bottle's threads under a lock: every operation is a few rows.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.api.localapi import private_dir, private_file
from webui.auth import LockoutPolicy, token_hash

DB_NAME = "webui.db"

MIGRATIONS = [
    """
    CREATE TABLE admin (id INTEGER PRIMARY KEY CHECK (id = 1), username TEXT NOT NULL,
                        password TEXT NOT NULL, created REAL NOT NULL);
    CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL,
                           created REAL NOT NULL, last_seen REAL NOT NULL);
    CREATE TABLE login_failures (ip TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX login_failures_ip ON login_failures (ip, at);
    CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
                        ip TEXT NOT NULL, what TEXT NOT NULL);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
]


@dataclass(frozen=True)
class Session:
    username: str
    csrf: str
    created: float
    last_seen: float


class WebDb:
    def __init__(self, data: Path) -> None:
        private_dir(data)
        self.path = data / DB_NAME
        private_file(self.path)  # password hashes and the audit log: 0600, like linebox.db
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _migrate(self) -> None:
        with self._lock:
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
            for i in range(version, len(MIGRATIONS)):
                self._conn.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[i]} PRAGMA user_version={i + 1}; COMMIT;")

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # --- the admin account -----------------------------------------------------------------------

    def admin(self) -> tuple[str, str] | None:
        rows = self._q("SELECT username, password FROM admin WHERE id = 1")
        return (rows[0][0], rows[0][1]) if rows else None

    def create_admin(self, username: str, password_hash: str, now: float) -> bool:
        """False if an admin exists already (two browsers racing through the first wizard step)."""
        try:
            self._q("INSERT INTO admin (id, username, password, created) VALUES (1, ?, ?, ?)",
                    (username, password_hash, now))
        except sqlite3.IntegrityError:
            return False
        return True

    # --- sessions --------------------------------------------------------------------------------

    def create_session(self, token: str, username: str, csrf: str, now: float) -> None:
        self._q("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (token_hash(token), username, csrf, now, now))

    def session(self, token: str, now: float, *, idle: float, lifetime: float, touch: bool) -> Session | None:
        """The live session of ``token``; an idle or too old one is deleted and None returned."""
        h = token_hash(token)
        rows = self._q("SELECT username, csrf, created, last_seen FROM sessions WHERE token_hash = ?", (h,))
        if not rows:
            return None
        s = Session(*rows[0])
        if now - s.last_seen > idle or now - s.created > lifetime:
            self._q("DELETE FROM sessions WHERE token_hash = ?", (h,))
            return None
        if touch:
            self._q("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, h))
        return s

    def end_session(self, token: str) -> None:
        self._q("DELETE FROM sessions WHERE token_hash = ?", (token_hash(token),))

    def expire_sessions(self, now: float, idle: float, lifetime: float) -> None:
        self._q("DELETE FROM sessions WHERE last_seen < ? OR created < ?", (now - idle, now - lifetime))

    # --- login failures --------------------------------------------------------------------------

    def locked_until(self, ip: str, now: float, policy: LockoutPolicy) -> float | None:
        times = [t for (t,) in self._q("SELECT at FROM login_failures WHERE ip = ? AND at > ?",
                                       (ip, now - policy.keep))]
        return policy.locked_until(times, now)

    def login_failed(self, ip: str, now: float, policy: LockoutPolicy) -> float | None:
        """Records a failure; returns until when ``ip`` is now locked out, if it is."""
        self._q("DELETE FROM login_failures WHERE at < ?", (now - policy.keep,))
        self._q("INSERT INTO login_failures VALUES (?, ?)", (ip, now))
        return self.locked_until(ip, now, policy)

    def login_succeeded(self, ip: str) -> None:
        self._q("DELETE FROM login_failures WHERE ip = ?", (ip,))

    # --- audit log -------------------------------------------------------------------------------

    def audit(self, who: str, ip: str, what: str, now: float) -> None:
        self._q("INSERT INTO audit (at, who, ip, what) VALUES (?, ?, ?, ?)", (now, who, ip, what))

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = self._q("SELECT at, who, ip, what FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [{"at": at, "who": who, "ip": ip, "what": what} for at, who, ip, what in rows]

    # --- web-only settings -----------------------------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        rows = self._q("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def put(self, key: str, value: str) -> None:
        self._q("INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value))
