"""Outbound routes (``/routes``): which FXO line a dialled number leaves on, and what is sent
down it.

The page edits the ``routes`` section (a list, first match wins; firmware/config/routes.py) as one
table, one row per route plus a blank row to add one. The rows are put in the order their
order numbers say, and the list replaces the section through ``LocalApi.set_section``
(validated with the whole configuration, all or nothing, applied live); the firmware's paths
(``routes[1].pattern``) are mapped back to the row the route came from. The rules live in the
firmware only; the page merely refuses what it cannot turn into JSON (a strip of "one").

"Try a number" (``GET /routes?try=95551234``) answers from the saved section and the
``analog.trunk_prefix`` setting with the firmware's own :class:`Routes`, so it says what a call
would really do.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping
from urllib.parse import quote

import bottle
from bottle import request

from firmware.config.routes import FIELDS, PatternError, Routes, trunks_of
from webui.pages.ivr import FieldMap, apply_section, changed_keys, text
from webui.app import applied_text

NAV = [("Routes", "/routes")]
CSS = "/static/config.css"
MAX_ROWS = 200  # what one form may post; far more routes than a four-line box needs
_DIALLED = re.compile(r"[0-9*#]{1,40}")
FAILED = "Nothing was changed: fix the routes marked below."


def _section(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in doc.get("routes") or [] if isinstance(r, Mapping)]


def _digest(section: list[dict[str, Any]]) -> str:
    """What the form was made from: rows are matched to routes by position, so a save over a
    list someone else changed meanwhile would remove or edit the wrong route."""
    return hashlib.sha256(json.dumps(section, sort_keys=True).encode()).hexdigest()[:16]


def _label(route: Mapping[str, Any]) -> str:
    name, pattern = str(route.get("name") or ""), str(route.get("pattern", ""))
    return f"{name} ({pattern})" if name and name != pattern else pattern


def _row(route: Mapping[str, Any], order: int) -> dict[str, Any]:
    lines = route.get("lines") or []
    return {"order": str(order), "name": str(route.get("name") or ""), "pattern": str(route.get("pattern", "")),
            "strip": str(route.get("strip") or ""), "prepend": str(route.get("prepend") or ""),
            "lines": ", ".join(map(str, lines)) if isinstance(lines, list) else str(lines), "remove": False}


def rows_of(section: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table for a section: one row per route and a blank one to add a route."""
    return [_row(r, i + 1) for i, r in enumerate(section)] + [_row({}, len(section) + 1)]


def rows_from_request() -> list[dict[str, Any]]:
    count = text("rows", "0")
    n = min(int(count), MAX_ROWS) if count.isdigit() else 0
    return [{**{k: text(f"route-{i}-{k}") for k in ("order", *FIELDS)},
             "remove": request.forms.get(f"route-{i}-remove") == "yes"} for i in range(n)]


def section_from_rows(rows: list[dict[str, Any]], fm: FieldMap) -> tuple[list[dict[str, Any]], list[int],
                                                                          dict[str, str]]:
    """The ``routes`` section the rows ask for, the row each route came from, and the fields the
    page cannot even put into JSON. ``fm`` learns which row each ``routes[i]`` path is."""
    errors: dict[str, str] = {}
    kept: list[tuple[tuple[int, int, int], int]] = []
    for i, r in enumerate(rows):
        if r["remove"] or not any(r[k] for k in FIELDS):
            continue  # removed, or the blank row left blank
        if r["strip"] and not r["strip"].isdigit():
            errors[f"route-{i}-strip"] = f"a whole number of leading digits to drop, not {r['strip']!r}"
        if r["order"] and not r["order"].isdigit():
            errors[f"route-{i}-order"] = f"a position in the list (1 is tried first), not {r['order']!r}"
            continue
        order = int(r["order"]) if r["order"] else i + 1
        # A row given a new number goes before the row that already had it: "3" means "make it third".
        kept.append(((order, 0 if order != i + 1 else 1, i), i))
    section: list[dict[str, Any]] = []
    came_from: list[int] = []
    for _, i in sorted(kept):
        r = rows[i]
        route: dict[str, Any] = {"name": r["name"]} if r["name"] else {}
        route["pattern"] = r["pattern"]
        if r["strip"].isdigit() and int(r["strip"]):
            route["strip"] = int(r["strip"])
        if r["prepend"]:
            route["prepend"] = r["prepend"]
        lines = [n for n in re.split(r"[\s,;]+", r["lines"]) if n]
        if lines:
            route["lines"] = lines
        at = len(section)
        fm.add(f"routes[{at}]", f"route-{i}-pattern")
        for key in FIELDS:
            fm.add(f"routes[{at}].{key}", f"route-{i}-{key}")
        section.append(route)
        came_from.append(i)
    return section, came_from, errors


def audit_text(old: list[dict[str, Any]], new: list[dict[str, Any]], came_from: list[int]) -> str:
    """What a save did, route by route: rows 0..len(old)-1 are the old routes, in order."""
    kept = [i for i in came_from if i < len(old)]
    parts = [f"added {_label(r)}" for r, i in zip(new, came_from) if i >= len(old)]
    parts += [f"changed {_label(r)} {'/'.join(changed_keys(old[i], r))}"
              for r, i in zip(new, came_from) if i < len(old) and changed_keys(old[i], r)]
    parts += [f"removed {_label(r)}" for i, r in enumerate(old) if i not in kept]
    if kept != sorted(kept):
        parts.append("order now " + " → ".join(_label(r) for r in new))
    return "outbound routes: " + (", ".join(parts) if parts else "saved unchanged")


class RoutesPage:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.api = admin.api

    def install(self) -> None:
        self.admin.app.get("/routes", callback=self.page)
        self.admin.app.post("/routes", callback=self.save)

    def _prefix(self) -> str:
        return str(self.api.settings().get("analog.trunk_prefix", ""))

    def try_number(self, doc: Mapping[str, Any], number: str) -> dict[str, Any]:
        """Where a call to ``number`` goes, the way the box's call routing decides it."""
        if not _DIALLED.fullmatch(number):
            return {"kind": "bad", "text": "Type the digits a phone would dial (0-9, * and #)."}
        owned = {str(e.get("number")): "an extension" for e in doc.get("extensions") or [] if isinstance(e, Mapping)}
        owned.update({str(n): "an IVR number" for n in doc.get("ivr_numbers") or {}})
        owned.update({str(q.get("number")): "a queue number" for q in doc.get("queues") or [] if isinstance(q, Mapping)})
        if number in owned:
            return {"kind": "owned", "text": f"{number} is {owned[number]} of this box: calls to it stay "
                                             f"inside and are never routed out."}
        try:
            hit = Routes.from_document(_section(doc), self._prefix()).match(number)
        except (PatternError, KeyError, TypeError, ValueError):  # the section was validated; belt and braces
            hit = None
        if hit is None:
            return {"kind": "none", "text": f"No route matches {number}: the call is refused."}
        return {"kind": "route", "name": hit.name, "pattern": hit.pattern.text, "outside": hit.outside(number),
                "lines": list(hit.lines)}

    def _render(self, doc: Mapping[str, Any], rows: list[dict[str, Any]], errors: dict[str, str],
                status: int = 200, notice: str | None = None, failed: str | None = None,
                tried: str = "", seen: str | None = None) -> str:
        section = _section(doc)
        prefix = self._prefix()
        default = Routes.from_document([], prefix).routes
        return self.admin._render(
            "routes", status, rows=rows, errors=errors, notice=notice, failed=failed, configured=bool(section),
            default=default[0] if default else None, prefix=prefix, trunks=sorted(trunks_of(doc.get("ports"))),
            tried=tried, result=self.try_number(doc, tried) if tried else None,
            seen=seen or _digest(section), css=CSS)

    def page(self) -> str:
        doc = self.api.export_document()
        tried = (request.query.getunicode("try") or "").strip()[:40]
        return self._render(doc, rows_of(_section(doc)), {}, notice=request.query.getunicode("done") or None,
                            tried=tried)

    def save(self) -> str:
        doc = self.api.export_document()
        old = _section(doc)
        if text("seen") != _digest(old):
            return self._render(doc, rows_of(old), {}, 409,
                                failed="The routes were changed elsewhere while you edited them; nothing was "
                                       "saved. These are the routes now: make your change again.")
        rows = rows_from_request()
        fm = FieldMap()
        section, came_from, errors = section_from_rows(rows, fm)
        if errors:
            return self._render(doc, rows, errors, 400, failed=FAILED)
        placed, applied = apply_section(self.admin, "routes", section, fm)
        if placed:
            return self._render(doc, rows, placed, 400, failed=FAILED)

        self.admin._audit(audit_text(old, section, came_from))
        done = "Saved the outbound routes. " if section else \
            "Saved: no routes configured, the default route is in force. "
        raise bottle.redirect("/routes?done=" + quote(done + applied_text(applied)), 303)


def install(admin: Any) -> None:
    RoutesPage(admin).install()
