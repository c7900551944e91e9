"""CDR search (``/cdr``): filter by date, caller, callee and disposition, page through the rows,
export the filtered rows as CSV, and play or download each call's recording.

The filter is a plain value (:class:`CdrFilter`) parsed from the query string and applied by
:func:`search`; the page, the CSV export and ``/api/v1/cdrs`` share both, so the three always
agree on what "the filtered rows" are.

A recording is served only as the file a CDR row names (``/cdr/<id>/recording``), never by a
path from the request; ``bottle.static_file`` answers Range requests (206), so the browser's
``<audio>`` can seek.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

import bottle
from bottle import request, response

NAV = [("CDR", "/cdr")]

PAGE_SIZE = 50
# LocalApi.cdrs(limit) reads newest first; the search filters in Python over at most this many
# rows (a few MB; ~0.1 s on a Pi). A box with more calls than this searches its newest ones.
SCAN_LIMIT = 50_000
DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "INTERRUPTED", "in-progress")
CSV_COLUMNS = ("id", "start", "answer", "end", "caller", "callee", "disposition", "duration", "billsec",
               "cause", "recording")
# Spreadsheets run a cell that starts with one of these as a formula. Callers write their own
# display names and numbers, and a recording's or cause's text may one day carry theirs too, so
# every text cell gets a leading quote when it starts so; only true numbers go out as they are.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


@dataclass(frozen=True)
class CdrFilter:
    """What an admin searches for. ``since``/``until`` are epoch seconds (``until`` excluded)."""

    since: float | None = None
    until: float | None = None
    caller: str = ""
    callee: str = ""
    disposition: str = ""
    form: dict[str, str] = field(default_factory=dict, compare=False)  # as typed, for the form

    def matches(self, row: Mapping[str, Any]) -> bool:
        start = float(row.get("start") or 0.0)
        if self.since is not None and start < self.since:
            return False
        if self.until is not None and start >= self.until:
            return False
        if self.caller and self.caller.lower() not in str(row.get("caller", "")).lower():
            return False
        if self.callee and self.callee.lower() not in str(row.get("callee", "")).lower():
            return False
        return not self.disposition or row.get("disposition") == self.disposition


def _day(text: str) -> float:
    """Midnight (the box's local time) starting the day YYYY-MM-DD."""
    return time.mktime(time.strptime(text, "%Y-%m-%d"))


def parse_filter(query: Mapping[str, str]) -> tuple[CdrFilter, dict[str, str]]:
    """The filter of a query string (``from``/``to`` dates, both days included), and the errors
    keyed by field. With errors, the filter matches nothing rather than everything."""
    form = {k: (query.get(k) or "").strip() for k in ("from", "to", "caller", "callee", "disposition")}
    errors: dict[str, str] = {}
    since = until = None
    if form["from"]:
        try:
            since = _day(form["from"])
        except ValueError:
            errors["from"] = "a date as YYYY-MM-DD"
    if form["to"]:
        try:
            until = _day(form["to"]) + 86400.0  # the whole "to" day is included
        except ValueError:
            errors["to"] = "a date as YYYY-MM-DD"
    if since is not None and until is not None and until <= since:
        errors["to"] = "the end date is before the start date"
    for key in ("caller", "callee"):
        if len(form[key]) > 64:
            errors[key] = "at most 64 characters"
    if form["disposition"] and form["disposition"] not in DISPOSITIONS:
        errors["disposition"] = "one of " + ", ".join(DISPOSITIONS)
    return CdrFilter(since, until, form["caller"], form["callee"], form["disposition"], form), errors


def search(rows: Iterable[Mapping[str, Any]], flt: CdrFilter) -> list[dict[str, Any]]:
    """The rows the filter keeps, in the order given (newest first from the store)."""
    return [dict(r) for r in rows if flt.matches(r)]


def _iso(t: Any) -> str:
    if t is None or t == "":
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(t)))


def _cell(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """The rows as CSV (RFC 4180 quoting, CRLF line ends), times in the box's local time."""
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        # One guard for every column: which column carries text an outsider chose is not ours to
        # keep track of (ids, dispositions and recording names too).
        w.writerow([_cell(v) for v in (
            r.get("id"), _iso(r.get("start")), _iso(r.get("answer")), _iso(r.get("end")), r.get("caller"),
            r.get("callee"), r.get("disposition"), r.get("duration"), r.get("billsec"), r.get("cause"),
            r.get("recording"))])
    return out.getvalue()


class CdrPages:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        # CDR id -> recording name, filled as pages are shown: a recording's name never changes,
        # and the <audio> element asks for its file several times (Range requests) per play.
        self._recordings: dict[str, str] = {}
        self._lock = threading.Lock()

    def rows(self, flt: CdrFilter) -> list[dict[str, Any]]:
        found = search(self.admin.api.cdrs(SCAN_LIMIT), flt)
        with self._lock:
            if len(self._recordings) > 10_000:
                self._recordings.clear()
            self._recordings.update({str(r["id"]): r["recording"] for r in found if r.get("recording")})
        return found

    def page(self) -> str:
        flt, errors = parse_filter(request.query.decode())
        rows = [] if errors else self.rows(flt)
        try:
            number = max(1, int(request.query.get("page") or 1))
        except ValueError:
            number = 1
        pages = max(1, (len(rows) + PAGE_SIZE - 1) // PAGE_SIZE)
        number = min(number, pages)
        shown = rows[(number - 1) * PAGE_SIZE:number * PAGE_SIZE]
        for r in shown:  # the storage quota removes the oldest recordings; their rows say so
            r["playable"] = bool(r.get("recording")) and self.admin.api.recording_path(r["recording"]) is not None
        query = urlencode({k: v for k, v in flt.form.items() if v})
        return self.admin._render("cdr", 400 if errors else 200, rows=shown, total=len(rows), page=number,
                                  pages=pages, query=query, form=flt.form, errors=errors,
                                  dispositions=DISPOSITIONS, when=_iso)

    def export(self) -> str:
        flt, errors = parse_filter(request.query.decode())
        if errors:
            bottle.abort(400, "; ".join(f"{k}: {v}" for k, v in errors.items()))
        rows = self.rows(flt)
        self.admin._audit(f"exported {len(rows)} CDR rows as CSV")
        stamp = time.strftime("%Y%m%d-%H%M", time.localtime(self.admin.clock()))
        response.content_type = "text/csv; charset=utf-8"
        response.set_header("Content-Disposition", f'attachment; filename="linebox-cdr-{stamp}.csv"')
        return csv_text(rows)

    def recording(self, cdr_id: str) -> Any:
        with self._lock:
            name = self._recordings.get(cdr_id)
        if name is None:
            row = next((r for r in self.admin.api.cdrs(SCAN_LIMIT) if str(r["id"]) == cdr_id), None)
            name = row.get("recording") if row else None
        path = self.admin.api.recording_path(name) if name else None
        if path is None:
            bottle.abort(404, "This call has no recording (or its file was removed by the storage quota).")
        download = path.name if request.query.get("download") else False
        return bottle.static_file(path.name, root=str(path.parent), mimetype="audio/wav", download=download)


def install(admin: Any) -> None:
    pages = CdrPages(admin)
    admin.cdr_pages = pages  # the REST API shares its search
    admin.app.get("/cdr", callback=pages.page)
    admin.app.get("/cdr.csv", callback=pages.export)
    admin.app.get("/cdr/<cdr_id>/recording", callback=pages.recording)
