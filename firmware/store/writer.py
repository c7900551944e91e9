"""Group commit for the box's call path (CDR rows, bindings, the queue log) into the database of
firmware.store.db. A module of its own because it needs an event loop: the web admin opens the
same Store without one (``Store.open_blocking``)."""

from __future__ import annotations

import asyncio
import logging
from itertools import groupby
from operator import itemgetter
from typing import Any

from firmware.acd.events import Kind, QueueEvent
from firmware.store.db import Binding, CdrRecord, Store

log = logging.getLogger(__name__)

_CDR_UPSERT = (
    "INSERT INTO cdr (id, call_id, caller, callee, start, answer, end, disposition, duration, billsec, cause,"
    " recording) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(id) DO UPDATE SET answer = excluded.answer, end = excluded.end,"
    " disposition = excluded.disposition, duration = excluded.duration, billsec = excluded.billsec,"
    " cause = excluded.cause, recording = excluded.recording"
)
_QUEUE_EVENT_INSERT = (
    "INSERT INTO queue_log (time, queue, kind, call_id, agent, wait, talk, wrapup, position, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_BINDING_UPSERT = (
    "INSERT INTO registrations (aor, contact, expires_at, transport, source, call_id, cseq, user_agent)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(aor, contact) DO UPDATE SET expires_at = excluded.expires_at, transport = excluded.transport,"
    " source = excluded.source, call_id = excluded.call_id, cseq = excluded.cseq, user_agent = excluded.user_agent"
)


class Writer:
    """Group commit for the call path: callers queue rows and go on; one task commits them.

    Nothing on the call path awaits the disk. Each batch is one transaction, so a crash leaves
    either all or none of it, and with synchronous=FULL a committed batch survives a power cut.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[tuple[str, tuple[Any, ...]]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="db-writer")

    def cdr(self, rec: CdrRecord) -> None:
        self._put(_CDR_UPSERT, (rec.id, rec.call_id, rec.caller, rec.callee, rec.start, rec.answer, rec.end,
                                rec.disposition, rec.duration, rec.billsec, rec.cause, rec.recording))

    def queue_event(self, ev: QueueEvent) -> None:
        """Appends one line of the queue log (committed with the next batch)."""
        self._put(_QUEUE_EVENT_INSERT, (ev.time, ev.queue, Kind(ev.kind).value, ev.call_id, ev.agent, ev.wait,
                                        ev.talk, ev.wrapup, ev.position, ev.reason))

    def binding(self, b: Binding) -> None:
        self._put(_BINDING_UPSERT, (b.aor, b.contact, b.expires_at, b.transport, f"{b.source[0]} {b.source[1]}",
                                    b.call_id, b.cseq, b.user_agent))

    def remove_binding(self, aor: str, contact: str) -> None:
        self._put("DELETE FROM registrations WHERE aor = ? AND contact = ?", (aor, contact))

    def expire_bindings(self, now: float) -> None:
        self._put("DELETE FROM registrations WHERE expires_at <= ?", (now,))

    def heartbeat(self, now: float) -> None:
        self._put("INSERT INTO meta (key, value) VALUES ('alive_at', ?)"
                  " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (repr(now),))

    def _put(self, sql: str, args: tuple[Any, ...]) -> None:
        self._queue.append((sql, args))
        self._idle.clear()
        self._wake.set()

    async def flush(self) -> None:
        """Waits until everything queued so far is committed."""
        if self._task is None:
            await self._commit_pending()
            return
        await self._idle.wait()

    async def stop(self) -> None:
        if self._task is not None:
            await self.flush()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._commit_pending()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._commit_pending()
            except Exception:  # keep the writer alive: the rows stay queued and are retried
                log.exception("database write failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _commit_pending(self) -> None:
        if not self._queue:
            self._idle.set()
            return
        batch, self._queue = self._queue, []
        conn = self.store.conn
        try:
            await conn.execute("BEGIN IMMEDIATE")
            # each statement is a round trip to the connection's thread: runs of the same
            # statement (CDR upserts, most of a batch) go in one
            for sql, run in groupby(batch, key=itemgetter(0)):
                await conn.executemany(sql, [args for _, args in run])
            await conn.execute("COMMIT")
        except BaseException:
            try:
                await conn.execute("ROLLBACK")
            finally:
                self._queue[:0] = batch
            raise
        self.commits += 1
        if not self._queue:
            self._idle.set()
