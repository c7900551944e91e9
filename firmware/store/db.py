"""The database: configuration (source of truth), registrations, CDR and the queue log, in one SQLite file.

WAL with ``synchronous=FULL``: a commit is on the disk before it returns, so a power cut loses no
committed CDR. Writes of the call path go through firmware.store.writer.Writer, which commits whatever is
queued in one transaction (group commit): under load many calls share one fsync; when idle, a row is
committed within milliseconds of being queued. Schema changes are numbered migrations (``PRAGMA user_version``).

The box and the CLI open the Store on their event loop (``Store.open``: aiosqlite, the disk waits in
its thread). The web admin has no event loop, only worker threads that may wait: it opens the same
Store over a plain sqlite3 connection (``Store.open_blocking``) and runs each of its coroutines to the
end at once (``run_blocking``), so both go through the same queries and migrations.

The file holds every SIP secret: it is created 0600 in a 0700 directory (firmware.store.datadir), and
``secure_delete`` overwrites what a change removes, so a replaced secret does not linger in the
file's free space.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, Iterable, Protocol, Sequence, TypeVar

from firmware.acd.events import Kind, QueueEvent
from firmware.store.datadir import private_dir, private_file
from firmware.config.pins import seal_pins

log = logging.getLogger(__name__)

DB_NAME = "linebox.db"
T = TypeVar("T")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    async def fetchone(self) -> Any: ...


class Connection(Protocol):
    """What the Store asks of its connection: the part of aiosqlite.Connection it uses, which
    BlockingConnection offers too."""

    async def execute(self, sql: str, parameters: Sequence[Any] = ...) -> Cursor: ...

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ...) -> Iterable[Any]: ...

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor: ...

    async def commit(self) -> None: ...

    async def close(self) -> None: ...


async def _hash_voicemail_pins(conn: Connection) -> bool:
    """Schema 5: voicemail PINs stored in the clear become salted hashes (firmware.config.pins).
    True if one was rewritten: its old bytes are then purged from the file (Store._purge)."""
    row = await (await conn.execute("SELECT document FROM documents WHERE name = 'voicemail'")).fetchone()
    if row is None:
        return False
    section = json.loads(row[0])
    sealed = seal_pins(section)
    if sealed == section:
        return False
    await conn.execute("UPDATE documents SET document = ? WHERE name = 'voicemail'", (json.dumps(sealed),))
    return True


Migration = str | Callable[[Connection], Awaitable[bool]]

# Each entry moves the schema from version i to i+1: SQL, or a function for a change of data
# (it returns whether it rewrote secrets). Never edit a released entry: add one.
MIGRATIONS: list[Migration] = [
    """
    CREATE TABLE extensions (
        number     TEXT PRIMARY KEY,
        name       TEXT NOT NULL DEFAULT '',
        secret     TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    -- Bumped by triggers on every configuration table, so the daemon sees CLI/web changes
    -- with one tiny query and re-reads its configuration without a restart.
    CREATE TABLE config_rev (id INTEGER PRIMARY KEY CHECK (id = 1), rev INTEGER NOT NULL);
    INSERT INTO config_rev VALUES (1, 0);
    CREATE TRIGGER extensions_ins AFTER INSERT ON extensions BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER extensions_upd AFTER UPDATE ON extensions BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER extensions_del AFTER DELETE ON extensions BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER settings_ins AFTER INSERT ON settings BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER settings_upd AFTER UPDATE ON settings BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER settings_del AFTER DELETE ON settings BEGIN UPDATE config_rev SET rev = rev + 1; END;

    CREATE TABLE registrations (
        aor        TEXT NOT NULL,
        contact    TEXT NOT NULL,
        expires_at REAL NOT NULL,
        transport  TEXT NOT NULL,
        source     TEXT NOT NULL,      -- "ip port" the REGISTER really came from (NAT)
        call_id    TEXT NOT NULL,
        cseq       INTEGER NOT NULL,
        user_agent TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (aor, contact)
    );

    CREATE TABLE cdr (
        id          TEXT PRIMARY KEY,
        call_id     TEXT NOT NULL,
        caller      TEXT NOT NULL,
        callee      TEXT NOT NULL,
        start       REAL NOT NULL,
        answer      REAL,
        end         REAL,
        disposition TEXT NOT NULL,     -- in-progress, ANSWERED, NO ANSWER, BUSY, FAILED, INTERRUPTED
        duration    REAL,
        billsec     REAL,
        cause       TEXT
    );
    CREATE INDEX cdr_start ON cdr (start);

    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    ALTER TABLE cdr ADD COLUMN recording TEXT;
    """,
    """
    -- The IVR menu set as one validated document, and the numbers callers dial to enter it.
    CREATE TABLE ivr (id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT NOT NULL);
    CREATE TABLE ivr_numbers (number TEXT PRIMARY KEY, menu TEXT NOT NULL);
    CREATE TRIGGER ivr_ins AFTER INSERT ON ivr BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER ivr_upd AFTER UPDATE ON ivr BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER ivr_numbers_ins AFTER INSERT ON ivr_numbers BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER ivr_numbers_upd AFTER UPDATE ON ivr_numbers BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER ivr_numbers_del AFTER DELETE ON ivr_numbers BEGIN UPDATE config_rev SET rev = rev + 1; END;
    """,
    """
    -- Configuration sections kept as one validated JSON document each ("queues", "recording", ...):
    -- a new section needs no migration, and config_rev still sees every change.
    CREATE TABLE documents (name TEXT PRIMARY KEY, document TEXT NOT NULL);
    CREATE TRIGGER documents_ins AFTER INSERT ON documents BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER documents_upd AFTER UPDATE ON documents BEGIN UPDATE config_rev SET rev = rev + 1; END;
    CREATE TRIGGER documents_del AFTER DELETE ON documents BEGIN UPDATE config_rev SET rev = rev + 1; END;

    -- The ACD queue log (firmware.acd.events.QueueEvent, one row per fact). Not configuration:
    -- no config_rev trigger, or every call would make the daemon re-read its configuration.
    CREATE TABLE queue_log (
        id       INTEGER PRIMARY KEY,
        time     REAL NOT NULL,
        queue    TEXT NOT NULL,
        kind     TEXT NOT NULL,
        call_id  TEXT NOT NULL DEFAULT '',
        agent    TEXT NOT NULL DEFAULT '',
        wait     REAL NOT NULL DEFAULT 0,
        talk     REAL NOT NULL DEFAULT 0,
        wrapup   REAL NOT NULL DEFAULT 0,
        position INTEGER NOT NULL DEFAULT 0,
        reason   TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX queue_log_time ON queue_log (time);
    """,
    _hash_voicemail_pins,
]

IN_PROGRESS = "in-progress"


@dataclass(frozen=True)
class Extension:
    number: str
    name: str
    secret: str


@dataclass(frozen=True)
class Binding:
    """One registered contact of an address-of-record (RFC 3261 §10)."""

    aor: str
    contact: str
    expires_at: float
    transport: str
    source: tuple[str, int]
    call_id: str
    cseq: int
    user_agent: str = ""


@dataclass
class CdrRecord:
    id: str
    call_id: str
    caller: str
    callee: str
    start: float
    answer: float | None = None
    end: float | None = None
    disposition: str = IN_PROGRESS
    cause: str | None = None
    recording: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.end is None else round(self.end - self.start, 3)

    @property
    def billsec(self) -> float | None:
        if self.end is None:
            return None
        return 0.0 if self.answer is None else round(self.end - self.answer, 3)


class Store:
    """The database of one LineBox data directory."""

    def __init__(self, conn: Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    async def open(cls, data_dir: Path) -> "Store":
        import aiosqlite  # and asyncio with it: not in the web admin, which opens the Store blocking

        path = _private_path(data_dir)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return await cls._prepared(conn, path)

    @classmethod
    def open_blocking(cls, data_dir: Path) -> "Store":
        """The Store over a plain sqlite3 connection, for threads that may wait on the disk; its
        coroutines are run with ``run_blocking``, under one lock (the connection is shared)."""
        path = _private_path(data_dir)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return run_blocking(cls._prepared(BlockingConnection(conn), path))

    @classmethod
    async def _prepared(cls, conn: Connection, path: Path) -> "Store":
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA secure_delete=ON")
        store = cls(conn, path)
        await store._migrate()
        return store

    async def close(self) -> None:
        await self.conn.close()

    async def _migrate(self) -> None:
        (version,) = await (await self.conn.execute("PRAGMA user_version")).fetchone()
        rewrote = False
        for i in range(version, len(MIGRATIONS)):
            step = MIGRATIONS[i]
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                if callable(step):
                    rewrote |= await step(self.conn)
                else:
                    for stmt in _statements(step):
                        await self.conn.execute(stmt)
                await self.conn.execute(f"PRAGMA user_version={i + 1}")
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            log.info("database migrated to schema %d", i + 1)
        if rewrote:
            await self._purge()

    async def _purge(self) -> None:
        """After a migration rewrote secrets: rebuild the file so no free page, and no frame
        of the write-ahead log, still holds them as they were (secure_delete only covers what
        is deleted from now on). Once per upgrade; a failure leaves a working database."""
        try:
            await self.conn.execute("VACUUM")
            busy, _, _ = await (await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")).fetchone()
            problem = "another process was reading it" if busy else None
        except sqlite3.Error as exc:
            problem = str(exc)
        if problem:
            log.warning("could not rebuild %s after the upgrade (%s): old copies of secrets may remain "
                        "in its free space until `sqlite3 %s VACUUM` is run", self.path, problem, self.path)

    # --- configuration -------------------------------------------------------------------------

    async def config_rev(self) -> int:
        (rev,) = await (await self.conn.execute("SELECT rev FROM config_rev")).fetchone()
        return int(rev)

    async def extensions(self) -> list[Extension]:
        rows = await self.conn.execute_fetchall("SELECT number, name, secret FROM extensions ORDER BY number")
        return [Extension(r["number"], r["name"], r["secret"]) for r in rows]

    async def add_extension(self, number: str, secret: str, name: str = "") -> None:
        await self.conn.execute(
            "INSERT INTO extensions (number, name, secret, created_at) VALUES (?, ?, ?, ?)",
            (number, name, secret, time.time()),
        )

    async def remove_extension(self, number: str) -> bool:
        cur = await self.conn.execute("DELETE FROM extensions WHERE number = ?", (number,))
        return cur.rowcount > 0

    async def settings(self) -> dict[str, str]:
        rows = await self.conn.execute_fetchall("SELECT key, value FROM settings")
        return {r["key"]: r["value"] for r in rows}

    async def set_setting(self, key: str, value: str) -> None:
        await self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def ivr_document(self) -> dict[str, Any] | None:
        row = await (await self.conn.execute("SELECT document FROM ivr WHERE id = 1")).fetchone()
        return None if row is None else json.loads(row[0])

    async def set_ivr_document(self, document: dict[str, Any]) -> None:
        await self.conn.execute(
            "INSERT INTO ivr (id, document) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET document = excluded.document",
            (json.dumps(document),),
        )

    async def ivr_numbers(self) -> dict[str, str]:
        rows = await self.conn.execute_fetchall("SELECT number, menu FROM ivr_numbers ORDER BY number")
        return {r["number"]: r["menu"] for r in rows}

    async def set_ivr_number(self, number: str, menu: str | None) -> None:
        if menu is None:
            await self.conn.execute("DELETE FROM ivr_numbers WHERE number = ?", (number,))
        else:
            await self.conn.execute(
                "INSERT INTO ivr_numbers (number, menu) VALUES (?, ?)"
                " ON CONFLICT(number) DO UPDATE SET menu = excluded.menu", (number, menu))

    async def document(self, name: str) -> Any | None:
        """The configuration section ``name`` (e.g. "queues"), or None if it was never set."""
        row = await (await self.conn.execute("SELECT document FROM documents WHERE name = ?", (name,))).fetchone()
        return None if row is None else json.loads(row[0])

    async def set_document(self, name: str, document: Any | None) -> None:
        """Stores section ``name`` (None removes it). Validate it first: this stores anything JSON."""
        if document is None:
            await self.conn.execute("DELETE FROM documents WHERE name = ?", (name,))
            return
        await self.conn.execute(
            "INSERT INTO documents (name, document) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET document = excluded.document", (name, json.dumps(document)))

    # --- queue log -----------------------------------------------------------------------------

    async def queue_events(self, *, since: float | None = None, until: float | None = None,
                           queue: str | None = None) -> list[QueueEvent]:
        """Queue log rows with ``since <= time < until`` (either bound optional), in time order
        and, at equal times, in the order they were written."""
        where, args = [], []
        for clause, value in (("time >= ?", since), ("time < ?", until), ("queue = ?", queue)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = ("SELECT time, queue, kind, call_id, agent, wait, talk, wrapup, position, reason FROM queue_log"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY time, id")
        rows = await self.conn.execute_fetchall(sql, args)
        return [QueueEvent(r["time"], r["queue"], Kind(r["kind"]), r["call_id"], r["agent"], r["wait"],
                           r["talk"], r["wrapup"], r["position"], r["reason"]) for r in rows]

    # --- registrations -------------------------------------------------------------------------

    async def bindings(self, now: float) -> list[Binding]:
        rows = await self.conn.execute_fetchall(
            "SELECT * FROM registrations WHERE expires_at > ? ORDER BY aor, contact", (now,)
        )
        out = []
        for r in rows:
            host, _, port = r["source"].rpartition(" ")
            out.append(
                Binding(r["aor"], r["contact"], r["expires_at"], r["transport"], (host, int(port)),
                        r["call_id"], r["cseq"], r["user_agent"])
            )
        return out

    # --- CDR -----------------------------------------------------------------------------------

    async def cdrs(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = await self.conn.execute_fetchall("SELECT * FROM cdr ORDER BY start DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    async def merge_history(self, cdrs: list[dict[str, Any]], events: list[Any]) -> tuple[int, int]:
        """Adds call records and queue-log lines a backup brought that the box does not have
        (a restore never rewrites or drops the history the box already holds). One transaction."""
        conn = self.conn
        await conn.execute("BEGIN IMMEDIATE")
        try:
            added_cdr = 0
            for r in cdrs:
                cur = await conn.execute(
                    "INSERT OR IGNORE INTO cdr (id, call_id, caller, callee, start, answer, end, disposition, duration,"
                    " billsec, cause, recording) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (r["id"], r["call_id"], r["caller"], r["callee"], r["start"], r.get("answer"), r.get("end"),
                     r["disposition"], r.get("duration"), r.get("billsec"), r.get("cause"), r.get("recording")))
                added_cdr += cur.rowcount
            added_log = 0
            for e in events:
                row = (e.time, e.queue, e.kind.value, e.call_id, e.agent)
                seen = await (await conn.execute(
                    "SELECT 1 FROM queue_log WHERE time = ? AND queue = ? AND kind = ? AND call_id = ? AND agent = ?",
                    row)).fetchone()
                if seen is None:
                    await conn.execute(
                        "INSERT INTO queue_log (time, queue, kind, call_id, agent, wait, talk, wrapup, position, reason)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?)", (*row, e.wait, e.talk, e.wrapup, e.position, e.reason))
                    added_log += 1
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        return added_cdr, added_log

    async def forget_before(self, t: float) -> int:
        """The retention: CDR rows of calls that started before ``t`` and the queue log of that
        time go together (statistics stay what the CDRs say). Returns the CDR rows deleted."""
        cur = await self.conn.execute("DELETE FROM cdr WHERE start < ? AND end IS NOT NULL", (t,))
        await self.conn.execute("DELETE FROM queue_log WHERE time < ?", (t,))
        await self.conn.commit()
        return cur.rowcount

    async def close_interrupted(self, now: float) -> int:
        """Calls that were in progress when the box stopped become INTERRUPTED rows.

        Their end is the last moment the daemon was known alive (its heartbeat), not the restart.
        """
        alive = await self.get_meta("alive_at")
        end_at = float(alive) if alive else now
        cur = await self.conn.execute(
            "UPDATE cdr SET disposition = 'INTERRUPTED', cause = 'interrupted',"
            " end = MAX(start, ?), duration = ROUND(MAX(start, ?) - start, 3),"
            " billsec = CASE WHEN answer IS NULL THEN 0 ELSE ROUND(MAX(answer, ?) - answer, 3) END"
            " WHERE disposition = ?",
            (end_at, end_at, end_at, IN_PROGRESS),
        )
        return cur.rowcount

    async def get_meta(self, key: str) -> str | None:
        row = await (await self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,))).fetchone()
        return None if row is None else row[0]


def _statements(script: str) -> Iterable[str]:
    """Splits a migration into statements (sqlite3.complete_statement knows trigger bodies)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete statement in migration: {buf.strip()[:60]}")


def _private_path(data_dir: Path) -> Path:
    private_dir(data_dir)
    path = data_dir / DB_NAME
    private_file(path)  # 0600 before SQLite opens it; its -wal and -shm take the same mode
    return path


class _BlockingCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()


class BlockingConnection:
    """A sqlite3 connection with aiosqlite's coroutine methods: each one does its work before it
    returns, so a Store coroutine over it never suspends (see ``run_blocking``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _BlockingCursor:
        return _BlockingCursor(self._conn.execute(sql, parameters))

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, parameters).fetchall()

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> _BlockingCursor:
        return _BlockingCursor(self._conn.executemany(sql, parameters))

    async def commit(self) -> None:
        self._conn.commit()

    async def close(self) -> None:
        self._conn.close()


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine of a Store opened with ``Store.open_blocking`` to its end, in this thread."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a Store coroutine waited on something other than its BlockingConnection")
