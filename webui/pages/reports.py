"""Queue and agent reports (``/reports``): service level, abandonment, average handle time and
call volume per hour or per day, as charts (uPlot) and as the table of figures behind them.

Every figure comes from ``LocalApi.queue_report`` (the JSON of ``linebox queue stats --json``,
keys in docs/config.md); this module only picks the window, reshapes the rows into chart series
(:func:`charts`, pure) and renders. The charts' data travels in a ``<script
type="application/json">`` block that ``static/reports.js`` reads, so no inline script runs
(the Content-Security-Policy forbids it).
"""

from __future__ import annotations

import calendar
import json
import time
from typing import Any, Mapping

from bottle import request

NAV = [("Reports", "/reports")]

PERIODS = ("hour", "day")
MAX_DAYS = 366  # a year of days; hours are capped tighter so a chart stays readable
MAX_HOUR_DAYS = 31


def _utc_day(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d")))


def _today(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def parse_window(query: Mapping[str, str], now: float) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(arguments for queue_report, the form as typed, errors by field). Days are UTC, like
    the report's periods; ``to`` is included."""
    form = {"from": (query.get("from") or "").strip() or _today(now),
            "to": (query.get("to") or "").strip() or _today(now),
            "period": (query.get("period") or "hour").strip(),
            "queue": (query.get("queue") or "").strip(),
            "agent": (query.get("agent") or "").strip()}
    errors: dict[str, str] = {}
    since = until = None
    try:
        since = _utc_day(form["from"])
    except ValueError:
        errors["from"] = "a date as YYYY-MM-DD"
    try:
        until = _utc_day(form["to"]) + 86400.0
    except ValueError:
        errors["to"] = "a date as YYYY-MM-DD"
    if form["period"] not in PERIODS:
        errors["period"] = "per hour or per day"
    if since is not None and until is not None:
        days = (until - since) / 86400.0
        if days <= 0:
            errors["to"] = "the end date is before the start date"
        elif form["period"] == "hour" and days > MAX_HOUR_DAYS:
            errors["to"] = f"at most {MAX_HOUR_DAYS} days per hour; pick per day for longer"
        elif days > MAX_DAYS:
            errors["to"] = f"at most {MAX_DAYS} days"
    args = {"queue": form["queue"] or None, "agents": True, "period": form["period"], "since": since,
            "until": until, "now": now}
    return args, form, errors


def _epoch(iso: str | None) -> float | None:
    return None if not iso else float(calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))


def abandon_pct(row: Mapping[str, Any]) -> float | None:
    return round(100.0 * row["abandoned"] / row["offered"], 1) if row.get("offered") else None


def _axis(report: Mapping[str, Any], rows: list[Mapping[str, Any]], step: float | None,
          since: float | None, until: float | None) -> list[float]:
    """Every period of the window (an hour with no call is a zero, not a gap in the chart)."""
    seen = sorted({t for t in (_epoch(r.get("period_start")) for r in rows) if t is not None})
    if step is None or since is None or until is None or (until - since) / step > 2000:
        return seen
    start = since - since % step
    return sorted(set(seen) | {start + i * step for i in range(int((until - start + step - 1) // step))})


def charts(report: Mapping[str, Any], *, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
    """Chart specs for reports.js: per queue, call volume, service level / abandonment (%) and
    average handle time; per queue, calls answered by each agent. x is epoch seconds (UTC),
    every period of the window [since, until); counts are 0 and averages null where no call was."""
    step = {"hour": 3600.0, "day": 86400.0}.get(str(report.get("period")))
    out: list[dict[str, Any]] = []
    by_queue: dict[str, dict[float, Mapping[str, Any]]] = {}
    for r in report.get("queues") or []:
        t = _epoch(r.get("period_start"))
        if t is not None:
            by_queue.setdefault(r["queue"], {})[t] = r
    for q, at in sorted(by_queue.items()):
        x = _axis(report, list(at.values()), step, since, until)

        def col(key: str, empty: Any = None, fn: Any = None) -> list[Any]:
            return [(fn(at[t]) if fn else at[t][key]) if t in at else empty for t in x]

        sl = next(iter(at.values()))["service_level_seconds"]
        out.append({"id": f"volume-{q}", "title": f"{q}: call volume", "unit": "calls", "x": x,
                    "series": [{"label": "offered", "values": col("offered", 0)},
                               {"label": "answered", "values": col("answered", 0)},
                               {"label": "abandoned", "values": col("abandoned", 0)}]})
        out.append({"id": f"sl-{q}", "title": f"{q}: service level and abandonment", "unit": "%", "x": x,
                    "series": [{"label": f"answered within {sl:g} s", "values": col("service_level_pct")},
                               {"label": "abandoned", "values": col("", None, abandon_pct)}]})
        out.append({"id": f"aht-{q}", "title": f"{q}: average handle time", "unit": "s", "x": x,
                    "series": [{"label": "handle time (talk + wrap-up)", "values": col("aht")},
                               {"label": "speed of answer", "values": col("asa")}]})
    agents: dict[str, dict[str, dict[float, int]]] = {}
    for r in report.get("agents") or []:
        t = _epoch(r.get("period_start"))
        if t is not None:
            agents.setdefault(r["queue"], {}).setdefault(r["agent"], {})[t] = r["answered"]
    for q, per_agent in sorted(agents.items()):
        x = _axis(report, [{"period_start": _iso(t)} for v in per_agent.values() for t in v], step, since, until)
        out.append({"id": f"agents-{q}", "title": f"{q}: calls answered per agent", "unit": "calls", "x": x,
                    "series": [{"label": a, "values": [v.get(t, 0) for t in x]} for a, v in sorted(per_agent.items())]})
    return out


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _json_block(value: Any) -> str:
    # Inside <script type="application/json"> only "</" could end the block early.
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def _queues(admin: Any) -> list[str]:
    try:
        doc = admin.api.export_document()
    except Exception:  # noqa: BLE001 -- the picker is a convenience; the report still works without it
        return []
    queues = doc.get("queues") or {}
    if isinstance(queues, Mapping):
        return sorted(queues)
    return sorted(str(q.get("id", "")) for q in queues if isinstance(q, Mapping))


def install(admin: Any) -> None:
    def reports() -> str:
        args, form, errors = parse_window(request.query.decode(), admin.clock())
        report: dict[str, Any] = {"queues": [], "agents": []}
        if not errors:
            report = admin.api.queue_report(**args)
        agents = sorted({str(r["agent"]) for r in report.get("agents") or []})
        if form["agent"]:  # one agent's rows (the queue figures stay whole: they are the queue's)
            report["agents"] = [r for r in report.get("agents") or [] if str(r["agent"]) == form["agent"]]
        queues = _queues(admin)
        for r in report.get("queues") or []:
            if r["queue"] not in queues:
                queues.append(r["queue"])
        return admin._render("reports", 400 if errors else 200, form=form, errors=errors, report=report,
                             queues=queues, agents=agents, periods=PERIODS, chart_json=_json_block(charts(report, since=args['since'], until=args['until'])),
                             abandon_pct=abandon_pct)

    admin.app.get("/reports", callback=reports)
