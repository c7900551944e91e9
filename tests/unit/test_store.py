"""The database: migrations, group commit, and what a crash leaves behind."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from firmware.store.db import MIGRATIONS, Binding, CdrRecord, Store, run_blocking
from firmware.store.writer import Writer


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_migrations_bring_a_new_database_to_the_latest_schema(tmp_path: Path) -> None:
    async def go() -> None:
        store = await Store.open(tmp_path)
        try:
            (version,) = await (await store.conn.execute("PRAGMA user_version")).fetchone()
            assert version == len(MIGRATIONS)
            (mode,) = await (await store.conn.execute("PRAGMA journal_mode")).fetchone()
            assert mode == "wal"
            (sync,) = await (await store.conn.execute("PRAGMA synchronous")).fetchone()
            assert sync == 2  # FULL: a committed CDR survives a power cut
        finally:
            await store.close()
        again = await Store.open(tmp_path)  # reopening applies nothing twice
        await again.close()

    run(go())


def test_the_blocking_store_is_the_same_database_without_an_event_loop(tmp_path: Path) -> None:
    """The web admin's path: the Store over plain sqlite3, each coroutine run to its end in the
    calling thread, with the migrations and queries the box uses; one that would wait on
    anything but the database is refused rather than left half done."""
    store = Store.open_blocking(tmp_path)
    try:
        (version,) = run_blocking(run_blocking(store.conn.execute("PRAGMA user_version")).fetchone())
        assert version == len(MIGRATIONS)
        r0 = run_blocking(store.config_rev())
        run_blocking(store.add_extension("1001", "Secret-Pass-1", "Front"))
        assert run_blocking(store.config_rev()) == r0 + 1
    finally:
        run_blocking(store.close())

    async def read() -> list[str]:
        again = await Store.open(tmp_path)
        try:
            return [e.name for e in await again.extensions()]
        finally:
            await again.close()

    assert run(read()) == ["Front"]  # what the box's Store sees
    with pytest.raises(RuntimeError):
        run_blocking(asyncio.sleep(0))


def test_config_changes_bump_the_revision_the_daemon_watches(tmp_path: Path) -> None:
    async def go() -> None:
        store = await Store.open(tmp_path)
        try:
            r0 = await store.config_rev()
            await store.add_extension("1001", "Secret-Pass-1")
            await store.set_setting("rtp.timeout", "30")
            await store.remove_extension("1001")
            assert await store.config_rev() == r0 + 3
        finally:
            await store.close()

    run(go())


def test_writer_commits_cdr_and_bindings_and_restart_marks_live_calls_interrupted(tmp_path: Path) -> None:
    async def go() -> None:
        store = await Store.open(tmp_path)
        writer = Writer(store)
        writer.start()
        done = CdrRecord("a", "cid-a", "1001", "1002", start=100.0, answer=101.0, end=110.0, disposition="ANSWERED",
                         cause="caller-hangup")
        live = CdrRecord("b", "cid-b", "1001", "1003", start=200.0, answer=201.0)
        writer.cdr(done)
        writer.cdr(live)
        writer.binding(Binding("1001", "sip:1001@10.0.0.1", 10_000.0, "udp", ("10.0.0.1", 5060), "c", 1))
        writer.heartbeat(230.0)
        await writer.flush()
        # A crash here: the process dies without closing anything. Read what is on disk.
        raw = sqlite3.connect(tmp_path / "linebox.db")
        assert raw.execute("SELECT disposition FROM cdr WHERE id='a'").fetchone() == ("ANSWERED",)
        raw.close()
        await writer.stop()
        await store.close()

        store = await Store.open(tmp_path)
        try:
            assert await store.close_interrupted(now=999.0) == 1
            rows = {r["id"]: r for r in await store.cdrs()}
            assert rows["a"]["billsec"] == 9.0 and rows["a"]["duration"] == 10.0
            b = rows["b"]
            # ended at the last heartbeat, not at the restart
            assert (b["disposition"], b["end"], b["billsec"]) == ("INTERRUPTED", 230.0, 29.0)
            assert [x.aor for x in await store.bindings(now=500.0)] == ["1001"]
        finally:
            await store.close()

    run(go())


def test_writer_keeps_the_order_of_interleaved_rows_in_one_commit(tmp_path: Path) -> None:
    """Runs of the same statement go to the database together; rows of other statements between
    them still take effect in between (a binding removed, then made again, exists)."""
    async def go() -> None:
        store = await Store.open(tmp_path)
        writer = Writer(store)
        writer.start()
        b = Binding("1001", "sip:1001@10.0.0.1", 10_000.0, "udp", ("10.0.0.1", 5060), "c", 1)
        for i in range(3):
            writer.cdr(CdrRecord(f"c{i}", f"x{i}", "1001", "1002", start=100.0 + i))
        writer.binding(b)
        writer.remove_binding(b.aor, b.contact)
        writer.cdr(CdrRecord("c0", "x0", "1001", "1002", start=100.0, answer=101.0, end=105.0,
                             disposition="ANSWERED"))
        writer.remove_binding(b.aor, b.contact)
        writer.binding(b)
        await writer.flush()
        try:
            assert [x.contact for x in await store.bindings(now=500.0)] == [b.contact]
            rows = {r["id"]: r for r in await store.cdrs()}
            assert sorted(rows) == ["c0", "c1", "c2"] and rows["c0"]["disposition"] == "ANSWERED"
        finally:
            await writer.stop()
            await store.close()

    run(go())


def test_retention_forgets_old_cdrs_and_queue_log_together(tmp_path):
    import asyncio

    from firmware.acd.events import Kind, QueueEvent
    from firmware.store.db import CdrRecord, Store
    from firmware.store.writer import Writer

    async def scenario():
        store = await Store.open(tmp_path)
        w = Writer(store)  # the real path of CDR rows, as the box writes them
        w.start()
        for i, start in enumerate((100.0, 200.0, 300.0)):
            w.cdr(CdrRecord(id=f"c{i}", call_id=f"x{i}", caller="1001", callee="1002", start=start,
                            end=start + 10, disposition="ANSWERED"))
        w.cdr(CdrRecord(id="live", call_id="y", caller="1001", callee="1003", start=50.0))  # still going
        for t in (150.0, 250.0):
            w.queue_event(QueueEvent(t, "q", Kind.ENTER, call_id=f"e{t}"))
        await w.stop()
        gone = await store.forget_before(250.0)
        left = sorted(r["id"] for r in await store.cdrs())
        events = [e.time for e in await store.queue_events()]
        await store.close()
        return gone, left, events

    gone, left, events = asyncio.run(scenario())
    assert gone == 2 and left == ["c2", "live"]  # a call in progress is never forgotten
    assert events == [250.0]


def test_recording_retention_deletes_only_old_finished_files(tmp_path):
    import os

    from firmware.media.recorder import RecordingStore

    for name, age in (("old.wav", 10 * 86400), ("new.wav", 3600), ("live.wav.part", 10 * 86400)):
        f = tmp_path / name
        f.write_bytes(b"RIFF")
        t = 2_000_000_000 - age
        os.utime(f, (t, t))
    store = RecordingStore(str(tmp_path), 1 << 30)
    gone = store.expire(2_000_000_000 - 7 * 86400)
    assert [os.path.basename(g) for g in gone] == ["old.wav"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.wav.part", "new.wav"]
