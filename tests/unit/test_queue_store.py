"""Configuration documents and the queue log in the real SQLite file: the migration from a
box already in service, round trips, group commit, and what a crash leaves behind."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from firmware.acd.events import Kind, QueueEvent
from firmware.store.db import DB_NAME, MIGRATIONS, CdrRecord, Store, _statements
from firmware.store.writer import Writer

REPO = Path(__file__).resolve().parents[2]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def version3_database(path: Path) -> None:
    """A database as the previous release left it: 3 migrations and a CDR row."""
    conn = sqlite3.connect(path / DB_NAME, isolation_level=None)
    for script in MIGRATIONS[:3]:
        for stmt in _statements(script):
            conn.execute(stmt)
    conn.execute("PRAGMA user_version=3")
    conn.execute("INSERT INTO cdr (id, call_id, caller, callee, start, answer, end, disposition, duration,"
                 " billsec, cause, recording) VALUES ('x', 'cid', '1001', '1002', 10, 11, 20, 'ANSWERED', 10, 9,"
                 " 'caller-hangup', 'rec.wav')")
    conn.execute("INSERT INTO ivr (id, document) VALUES (1, '{\"menus\": []}')")
    conn.close()


def test_a_version_3_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    version3_database(tmp_path)

    async def go() -> None:
        store = await Store.open(tmp_path)
        try:
            (version,) = await (await store.conn.execute("PRAGMA user_version")).fetchone()
            assert version == len(MIGRATIONS) == 5
            [cdr] = await store.cdrs()
            assert (cdr["id"], cdr["billsec"], cdr["recording"]) == ("x", 9, "rec.wav")
            assert await store.ivr_document() == {"menus": []}
            assert await store.document("queues") is None
            assert await store.queue_events() == []
        finally:
            await store.close()

    run(go())
    raw = sqlite3.connect(tmp_path / DB_NAME)
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert {"documents", "queue_log", "queue_log_time"} <= tables
    raw.close()


def test_documents_round_trip_and_bump_the_config_revision(tmp_path: Path) -> None:
    queues = [{"id": "sales", "number": "600", "members": [{"agent": "1001", "skills": {"fr": 3}}],
               "max_wait": None, "overflow": {"goto": "hangup"}}]

    async def go() -> None:
        store = await Store.open(tmp_path)
        try:
            r0 = await store.config_rev()
            await store.set_document("queues", queues)
            assert await store.document("queues") == queues
            await store.set_document("queues", [])  # replaced, not added
            assert await store.document("queues") == []
            await store.set_document("recording", {"extensions": {"1001": "always"}})
            await store.set_document("recording", None)
            assert await store.document("recording") is None
            assert await store.config_rev() == r0 + 4  # insert, update, insert, delete
        finally:
            await store.close()

    run(go())


EVENTS = [
    QueueEvent(100.0, "sales", Kind.ENTER, "c1", position=1, reason="555"),
    QueueEvent(100.0, "support", Kind.LOGIN, agent="1002"),
    QueueEvent(105.5, "sales", Kind.CONNECT, "c1", "1001", wait=5.5),
    QueueEvent(160.0, "sales", Kind.COMPLETE, "c1", "1001", talk=54.5, wrapup=10.0),
    QueueEvent(200.0, "sales", Kind.PAUSE, agent="1001", reason="lunch"),
    QueueEvent(200.0, "sales", Kind.ENTER, "c2", position=1, reason="+4420"),
    QueueEvent(212.0, "sales", Kind.ABANDON, "c2", wait=12.0, position=1),
]


def test_the_writer_appends_queue_events_in_group_commits_and_they_read_back_in_order(tmp_path: Path) -> None:
    async def go() -> None:
        store = await Store.open(tmp_path)
        writer = Writer(store)
        writer.start()
        try:
            r0 = await store.config_rev()
            for ev in EVENTS:  # queued without awaiting, as the call path does
                writer.queue_event(ev)
            writer.cdr(CdrRecord("a", "cid-a", "555", "600", start=100.0))
            await writer.flush()
            assert writer.commits == 1  # everything queued in one tick shares one transaction
            assert await store.queue_events() == EVENTS  # equal times keep the order written
            assert await store.config_rev() == r0  # the log is not configuration
            assert await store.queue_events(queue="support") == [EVENTS[1]]
            assert await store.queue_events(since=105.5, until=200.0) == EVENTS[2:4]
            assert await store.queue_events(since=200.0, queue="sales") == EVENTS[4:]
            assert await store.queue_events(until=100.0) == []
            # A later append still reads back in time order behind the earlier ones.
            late = QueueEvent(150.0, "sales", Kind.LOGIN, agent="1003")
            writer.queue_event(late)
            await writer.flush()
            assert writer.commits == 2
            assert (await store.queue_events())[3] == late
        finally:
            await writer.stop()
            await store.close()
        # On disk, for anyone reading the file.
        raw = sqlite3.connect(tmp_path / DB_NAME)
        rows = raw.execute("SELECT kind, wait, reason FROM queue_log ORDER BY id").fetchall()
        raw.close()
        assert rows[:3] == [("ENTER", 0.0, "555"), ("LOGIN", 0.0, ""), ("CONNECT", 5.5, "")]

    run(go())


def test_a_kill_mid_stream_loses_at_most_the_uncommitted_tail(tmp_path: Path) -> None:
    """A writer process appends numbered events as fast as it can and is SIGKILLed while doing
    so; what is on disk must be a whole prefix of what it wrote, in a sound file."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from firmware.acd.events import Kind, QueueEvent
        from firmware.store.db import Store
        from firmware.store.writer import Writer

        async def main():
            store = await Store.open(Path({str(tmp_path)!r}))
            w = Writer(store)
            w.start()
            i = 0
            while True:
                for _ in range(50):
                    w.queue_event(QueueEvent(float(i), "sales", Kind.ENTER, f"c{{i}}", position=i))
                    i += 1
                if i == 500:
                    print("going", flush=True)
                await asyncio.sleep(0.002)  # a busy call path: bursts, never awaiting the disk

        asyncio.run(main())
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "going\n"
        # Let it commit a while, then kill it without warning.
        deadline = 200
        while deadline:
            try:
                raw = sqlite3.connect(tmp_path / DB_NAME, timeout=5)
                (n,) = raw.execute("SELECT COUNT(*) FROM queue_log").fetchone()
                raw.close()
            except sqlite3.OperationalError:
                n = 0
            if n >= 1000:
                break
            deadline -= 1
            subprocess.run(["sleep", "0.02"])
        p.kill()
    finally:
        p.kill()
        p.wait(timeout=10)

    raw = sqlite3.connect(tmp_path / DB_NAME)
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = raw.execute("SELECT time, call_id, position FROM queue_log ORDER BY id").fetchall()
    raw.close()
    assert len(rows) >= 1000
    assert rows == [(float(i), f"c{i}", i) for i in range(len(rows))]  # a prefix: no gap, no half batch

    async def reopen() -> None:
        store = await Store.open(tmp_path)
        try:
            assert len(await store.queue_events()) == len(rows)
        finally:
            await store.close()

    run(reopen())


def test_json_documents_are_stored_as_json(tmp_path: Path) -> None:
    async def go() -> None:
        store = await Store.open(tmp_path)
        try:
            await store.set_document("recording", {"numbers": {"500": "on-demand"}})
        finally:
            await store.close()

    run(go())
    raw = sqlite3.connect(tmp_path / DB_NAME)
    (text,) = raw.execute("SELECT document FROM documents WHERE name = 'recording'").fetchone()
    raw.close()
    assert json.loads(text) == {"numbers": {"500": "on-demand"}}
