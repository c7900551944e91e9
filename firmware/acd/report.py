"""The queue and agent reports (`linebox queue stats`, the web admin's Reports page): the figures
of firmware.acd.stats over the stored queue log, shaped as the documented JSON (docs/config.md).

One place for both interfaces, below them: the CLI and the local API ask this module, and it
asks only for what it reads (the queues document and the queue log), not for a database.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Protocol

from firmware.acd.events import Kind, QueueEvent
from firmware.acd.schema import queue_specs
from firmware.acd.stats import PERIODS, QueueStats, agent_stats, queue_stats



class QueueLogSource(Protocol):
    """What a report reads: firmware.store.db.Store is one."""

    async def document(self, name: str) -> Any: ...

    async def queue_events(self, *, since: float | None = None, until: float | None = None,
                           queue: str | None = None) -> Iterable[QueueEvent]: ...


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


async def queue_report(store: QueueLogSource, *, queue: str | None = None, agents: bool = False, period: str = "all",
                       since: float | None = None, until: float | None = None, now: float) -> dict[str, Any]:
    """The figures of `linebox queue stats --json` (keys documented in docs/config.md), for the CLI
    and the web admin alike. Every figure comes from firmware.acd.stats over the stored queue log.

    A call counts in the window (and period) it entered, with its outcome whenever it came, so a
    report of yesterday shows how yesterday's callers fared. Agent times are cut exactly at
    ``since`` and ``until`` (default: ``now``).
    """
    specs = queue_specs(await store.document("queues"))
    seconds = PERIODS[period]
    entered = [e for e in await store.queue_events(since=since, queue=queue)
               if not (e.kind is Kind.ENTER and until is not None and e.time >= until)]
    by_queue: dict[str, list[Any]] = {q: [] for q in specs if queue in (None, q)} if seconds is None else {}
    for e in entered:
        by_queue.setdefault(e.queue, []).append(e)
    rows: list[dict[str, Any]] = []
    for q in sorted(by_queue):
        sl = specs[q].service_level if q in specs else 20.0
        buckets = queue_stats(by_queue[q], period=seconds, service_level=sl)
        if seconds is None and not buckets:
            buckets = {(q, None): _empty_queue_stats()}
        for (_, start), st in sorted(buckets.items(), key=lambda kv: kv[0][1] or 0.0):
            rows.append({
                "queue": q, "name": specs[q].name if q in specs else "", "period_start": _iso(start),
                "service_level_seconds": sl,
                "offered": st.offered, "answered": st.answered, "abandoned": st.abandoned,
                "overflowed": st.overflowed, "transferred": st.transferred,
                "answered_within_sl": st.answered_within_sl,
                "service_level_pct": _r(None if st.service_level is None else 100 * st.service_level),
                "asa": _r(st.asa), "aht": _r(st.aht), "average_talk": _r(st.average_talk),
                "average_abandon_wait": _r(st.average_abandon_wait),
                "longest_wait": _r(st.longest_wait) if st.offered else None,
                "callbacks_requested": st.callbacks_requested, "callbacks_answered": st.callbacks_answered,
                "callbacks_retried": st.callbacks_retried, "callbacks_failed": st.callbacks_failed,
            })
    report: dict[str, Any] = {"period": period, "since": _iso(since), "until": _iso(until), "queues": rows,
                              "agents": None}
    if agents:
        end = now if until is None else min(until, now)
        report["agents"] = await _agent_rows(store, queue, seconds, since, end)
    return report


def _empty_queue_stats() -> Any:
    return QueueStats()


async def _agent_rows(store: QueueLogSource, queue: str | None, seconds: float | None, since: float | None,
                      end: float) -> list[dict[str, Any]]:
    # An agent's state at ``since`` depends on what came before (a login at 07:00 makes 08:00-09:00
    # idle time), so the window is everything up to ``end`` minus everything up to ``since``.
    events = await store.queue_events(until=end, queue=queue)
    total = agent_stats(events, until=end, period=seconds)
    before = agent_stats([e for e in events if e.time < since], until=since, period=seconds) \
        if since is not None else {}
    rows = []
    for key in sorted(total, key=lambda k: (k[0], k[1], k[2] or 0.0)):
        a, b = total[key], before.get(key)
        if b is not None:
            a.answered -= b.answered
            a.missed -= b.missed
            a.transferred -= b.transferred
            a.talk_time -= b.talk_time
            a.wrapup_time -= b.wrapup_time
            a.idle_time -= b.idle_time
            for reason, t in b.pause_time.items():
                a.pause_time[reason] -= t
        pause = {r: round(t, 1) for r, t in sorted(a.pause_time.items()) if round(t, 1) > 0}
        figures = (a.answered, a.missed, a.transferred, round(a.talk_time, 1), round(a.wrapup_time, 1),
                   round(a.idle_time, 1))
        if not any(figures) and not pause:
            continue  # nothing in the window
        q, agent, start = key
        rows.append({"queue": q, "agent": agent, "period_start": _iso(start), "answered": a.answered,
                     "missed": a.missed, "transferred": a.transferred, "talk": figures[3], "wrapup": figures[4],
                     "idle": figures[5], "pause": pause, "pause_total": round(sum(pause.values()), 1)})
    return rows
