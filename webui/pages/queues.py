"""Queues and their agents (``/queues``): every field of a queue document, grouped.

The form becomes one entry of the ``queues`` section (docs/config.md), validated by the
firmware with the whole configuration (``LocalApi.set_section``), all or nothing, applied live.
Only fields that differ from the queue engine's defaults (``firmware.acd.schema.DEFAULTS``) are
written, so an exported queue says what was chosen. What cannot be read as a number is passed
through as typed and the firmware names the problem (``queues[sales].ring_timeout: a number of
seconds > 0, not 'abc'``), which lands next to its field.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping
from urllib.parse import quote

import bottle
from bottle import request

# firmware.acd.schema's DEFAULTS is imported where it is read: that module brings the IVR's rules
# and the queue engine, which the web admin needs from the first queue page on, not at start.
from firmware.acd.strategies import STRATEGIES
from firmware.api.localapi import BoxUnreachable, Invalid
from firmware.schema import RECORDING_MODES
from webui.app import applied_text
from webui.pages.ivr import GOTO_ROUTE, FieldMap, changed_keys, dest_form, destination, describe_dest, number, \
    targets, text

NAV = [("Queues", "/queues")]
CSS = "/static/config.css"
SPARE_AGENTS = 2

# Form groups: (legend, [(field, label, hint)]); numbers unless listed in BOOLEANS/KEYS.
GROUPS: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("Ringing agents", [
        ("ring_timeout", "Ring an agent for (s)", "then the offer counts as missed"),
        ("retry", "Pause before offering again (s)", ""),
        ("wrapup", "Wrap-up after a call (s)", "before the agent gets the next"),
        ("max_misses", "Missed offers that pause an agent", "0: never"),
        ("sticky_seconds", "Sticky agent for (s)", "a returning caller gets their last agent first; 0: off"),
    ]),
    ("Waiting and overflow", [
        ("max_wait", "Longest wait (s)", "then the caller overflows; empty: no limit"),
        ("max_len", "Most callers waiting", "more overflow at once; empty: no limit"),
        ("join_empty", "Callers may join while no agent is logged in", ""),
        ("leave_empty", "Overflow the waiting callers when the last agent logs out", ""),
    ]),
    ("Announcements", [
        ("announce_every", "Announce every (s)", "position and expected wait; 0: never"),
        ("announce_position", "Say the caller's position", ""),
        ("announce_wait", "Say the expected wait", ""),
        ("default_handle_time", "Assumed handle time (s)", "for the expected wait until calls were handled"),
        ("handle_time_window", "Calls averaged for the wait", ""),
    ]),
    ("Skills", [
        ("skills", "Skills every caller needs", "e.g. french=2, billing=1 (levels 0-100)"),
        ("widen_after", "Lower the needed levels every (s)", ""),
        ("widen_step", "... by this many levels", ""),
    ]),
    ("Callback and exit", [
        ("callback_key", "Callback key", "a waiting caller presses it to be called back, keeping their place"),
        ("callback_attempts", "Calls before a callback is given up", ""),
        ("callback_retry", "Wait between callback attempts (s)", ""),
        ("exit_key", "Exit key", "leaves the queue for the exit destination"),
    ]),
    ("Priority, service level and recording", [
        ("priority_callers", "Priority callers", "caller numbers, separated by commas; they go ahead of everyone"),
        ("service_level", "Service level target (s)", "a call answered within this counts toward it"),
        ("recording", "Record the calls the queue connects", "never leaves it to the recording policy"),
    ]),
]
BOOLEANS = {"join_empty", "leave_empty", "announce_position", "announce_wait"}
KEYS = {"callback_key", "exit_key"}
NULLABLE = {"max_wait", "max_len"}


def _queues(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(q) for q in doc.get("queues") or [] if isinstance(q, Mapping)]


def _skills_text(skills: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in (skills or {}).items()) if isinstance(skills, Mapping) else ""


def _skills(raw: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in re.split(r"[,;]", raw):
        part = part.strip()
        if not part:
            continue
        name, _, level = part.partition("=")
        out[name.strip()] = number(level.strip()) if level.strip() else level.strip()
    return out


def _str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def form_values(q: Mapping[str, Any]) -> dict[str, Any]:
    from firmware.acd.schema import DEFAULTS

    d = {**DEFAULTS, **q}
    form: dict[str, Any] = {"id": str(q.get("id", "")), "number": str(q.get("number", "")), "name": d["name"],
                            "strategy": d["strategy"]}
    for _, fields in GROUPS:
        for key, _, _ in fields:
            v = d[key]
            if key in BOOLEANS:
                form[key] = bool(v)
            elif key == "skills":
                form[key] = _skills_text(v)
            elif key == "priority_callers":
                form[key] = ", ".join(v or [])
            else:
                form[key] = _str(v)
    agents = [(str(a.get("agent", "")), "member", _skills_text(a.get("skills"))) for a in d["members"] or []]
    agents += [(str(a.get("agent", "")), "agent", _skills_text(a.get("skills"))) for a in d["agents"] or []]
    form["agents"] = agents + [("", "agent", "")] * SPARE_AGENTS
    for key in ("overflow", "exit"):
        form[f"{key}-goto"], form[f"{key}-target"] = dest_form(d[key])
    return form


def form_from_request() -> dict[str, Any]:
    form: dict[str, Any] = {"id": text("id"), "number": text("number"), "name": text("name"),
                            "strategy": text("strategy")}
    for _, fields in GROUPS:
        for key, _, _ in fields:
            form[key] = request.forms.get(key) == "yes" if key in BOOLEANS else text(key)
    count = text("agent-rows", "0")
    rows = int(count) if count.isdigit() else 0
    form["agents"] = [(text(f"agent-{i}-agent"), text(f"agent-{i}-role", "agent"), text(f"agent-{i}-skills"))
                      for i in range(min(rows, 200))]
    for key in ("overflow", "exit"):
        form[f"{key}-goto"], form[f"{key}-target"] = text(f"{key}-goto"), text(f"{key}-target")
    return form


def queue_from_form(form: Mapping[str, Any], index: int, fm: FieldMap) -> dict[str, Any]:
    """The queue document of a form; ``fm`` learns which field each path came from."""
    from firmware.acd.schema import DEFAULTS

    ident = form["id"]
    path = f"queues[{ident}]"
    fm.add(f"queues[{index}]", "id")
    fm.add(f"queues[{index}].id", "id")
    q: dict[str, Any] = {"id": ident, "number": form["number"]}
    for key in ("id", "number", "name", "strategy"):
        fm.add(f"{path}.{key}", key)
    if form["name"]:
        q["name"] = form["name"]
    if form["strategy"] and form["strategy"] != DEFAULTS["strategy"]:
        q["strategy"] = form["strategy"]
    for _, fields in GROUPS:
        for key, _, _ in fields:
            fm.add(f"{path}.{key}", key)
            raw = form[key]
            if key in BOOLEANS:
                value: Any = bool(raw)
            elif key in KEYS:
                value = raw or None
            elif key == "skills":
                value = _skills(raw)
            elif key == "priority_callers":
                value = [c for c in re.split(r"[\s,;]+", raw) if c]
            elif key == "recording":
                value = raw or "never"
            else:
                value = number(raw)
                if value is None and key not in NULLABLE:
                    continue  # left empty: the default
            if value != DEFAULTS[key] or isinstance(value, str) != isinstance(DEFAULTS[key], str):
                q[key] = value
    members: list[dict[str, Any]] = []
    agents: list[dict[str, Any]] = []
    for i, (agent, role, skills) in enumerate(form["agents"]):
        if not agent and not skills:
            continue
        into, name = (members, "members") if role == "member" else (agents, "agents")
        p = f"{path}.{name}[{len(into)}]"
        entry: dict[str, Any] = {"agent": agent}
        if skills:
            entry["skills"] = _skills(skills)
        into.append(entry)
        fm.add(p, f"agent-{i}-agent")
        fm.add(f"{p}.agent", f"agent-{i}-agent")
        fm.add(f"{p}.skills", f"agent-{i}-skills")
    if members:
        q["members"] = members
    if agents:
        q["agents"] = agents
    fm.add(f"{path}.members", "agents")
    fm.add(f"{path}.agents", "agents")
    for key in ("overflow", "exit"):
        fm.add(f"{path}.{key}", f"{key}-goto")  # "exit_key and exit go together" with no goto chosen
        dest = destination(form, key, fm, f"{path}.{key}")
        if dest is not None:
            q[key] = dest
    return q


def _rename(doc: dict[str, Any], old: str, new: str) -> None:
    """Points IVR options and other queues' overflow/exit at a renamed queue."""

    def fix(dest: Any) -> None:
        if isinstance(dest, dict) and dest.get("goto") == "queue" and dest.get("target") == old:
            dest["target"] = new

    ivr = doc.get("ivr") or {}
    menus = ivr.get("menus") or []
    for m in menus.values() if isinstance(menus, dict) else menus:
        for d in (m.get("options") or {}).values():
            fix(d)
        fix(m.get("on_timeout"))
        fix(m.get("fallback"))
    for q in doc.get("queues") or []:
        fix(q.get("overflow"))
        fix(q.get("exit"))


class QueuePages:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.api = admin.api

    def install(self) -> None:
        a = self.admin.app
        a.get("/queues", callback=self.index)
        a.get("/queues/<ident>", callback=self.edit)
        a.post("/queues/<ident>", callback=self.save)
        a.post("/queues/<ident>/remove", callback=self.remove)

    def _live(self) -> dict[str, dict[str, Any]]:
        try:
            return {q["queue"]: q for q in self.api.queues()}
        except (BoxUnreachable, Invalid):
            return {}

    def index(self, errors: dict[str, str] | None = None, status: int = 200) -> str:
        from firmware.acd.schema import DEFAULTS

        doc = self.api.export_document()
        return self.admin._render("queues", status, queues=[{**DEFAULTS, **q} for q in _queues(doc)],
                                  live=self._live(), errors=errors or {},
                                  notice=request.query.getunicode("done") or None, describe=describe_dest, css=CSS)

    def edit(self, ident: str) -> str:
        doc = self.api.export_document()
        found = {q.get("id"): q for q in _queues(doc)}
        if ident == "new":
            q: dict[str, Any] = {"id": "", "number": ""}
        elif ident in found:
            q = found[ident]
        else:
            bottle.abort(404, f"No queue {ident!r}.")
        return self._page(doc, ident, form_values(q), {}, notice=request.query.getunicode("done") or None)

    def _page(self, doc: Mapping[str, Any], ident: str, form: dict[str, Any], errors: dict[str, str],
              status: int = 200, notice: str | None = None, failed: str | None = None) -> str:
        return self.admin._render("queue_edit", status, ident=ident, form=form, errors=errors, notice=notice,
                                  failed=failed,
                                  groups=GROUPS, booleans=BOOLEANS, strategies=list(STRATEGIES),
                                  recording_modes=RECORDING_MODES, targets=targets(doc), goto_route=GOTO_ROUTE,
                                  is_new=ident not in {q.get("id") for q in _queues(doc)},
                                  live=self._live().get(ident), css=CSS)

    def save(self, ident: str) -> str:
        from firmware.acd.schema import DEFAULTS

        doc = self.api.export_document()
        queues = _queues(doc)
        index = next((i for i, q in enumerate(queues) if q.get("id") == ident), None)
        if ident != "new" and index is None:
            bottle.abort(404, f"No queue {ident!r}.")
        form = form_from_request()
        if request.forms.get("action") == "more":
            form["agents"] += [("", "agent", "")] * 3
            return self._page(doc, ident, form, {})
        if form["id"] != ident and form["id"] in {q.get("id") for q in queues}:
            return self._page(doc, ident, form, {"id": f"there is already a queue {form['id']!r}"}, 400,
                              failed="Nothing was changed: fix the fields marked below.")
        if form["id"] == "new":  # the editor's own route
            return self._page(doc, ident, form, {"id": "'new' names the page for a new queue; pick another id"}, 400,
                              failed="Nothing was changed: fix the fields marked below.")
        fm = FieldMap()
        at = len(queues) if index is None else index
        queue = queue_from_form(form, at, fm)
        new_doc = copy.deepcopy(dict(doc))
        new_queues = copy.deepcopy(queues)
        if index is None:
            new_queues.append(queue)
        else:
            new_queues[index] = queue
        new_doc["queues"] = new_queues
        old = queues[index] if index is not None else None
        if old is not None and form["id"] != ident:
            _rename(new_doc, ident, form["id"])
        if old is not None and old.get("number") != queue["number"]:  # the policy follows the number
            numbers = (new_doc.get("recording") or {}).get("numbers") or {}
            if old.get("number") in numbers:
                numbers[queue["number"]] = numbers.pop(old["number"])
        try:
            applied = self.api.apply_document(new_doc)
        except Invalid as exc:
            return self._page(doc, ident, form, fm.place(exc.errors), 400,
                              failed="Nothing was changed: fix the fields marked below.")

        if old is None:
            self.admin._audit(f"added queue {queue['id']} (number {queue['number']}, "
                              f"{queue.get('strategy', DEFAULTS['strategy'])})")
        else:
            keys = changed_keys(old, queue)
            self.admin._audit(f"changed queue {queue['id']}" + (f" ({', '.join(keys)})" if keys else " (nothing)"))
        raise bottle.redirect(f"/queues/{queue['id']}?done=" + quote(f"Saved queue {queue['id']}. "
                                                                     + applied_text(applied)), 303)

    def remove(self, ident: str) -> str:
        doc = self.api.export_document()
        queues = _queues(doc)
        if ident not in {q.get("id") for q in queues}:
            bottle.abort(404, f"No queue {ident!r}.")
        if request.forms.get("confirm") != "yes":
            return self.admin._render("queue_remove", ident=ident, css=CSS)
        number = next(q.get("number") for q in queues if q.get("id") == ident)
        new_doc = copy.deepcopy(dict(doc))
        new_doc["queues"] = [q for q in queues if q.get("id") != ident]
        numbers = (new_doc.get("recording") or {}).get("numbers") or {}
        numbers.pop(number, None)  # the policy of a number that no longer exists goes with it
        try:
            applied = self.api.apply_document(new_doc)
        except Invalid as exc:
            return self.index({"queues": f"Queue {ident} was not removed: " + "; ".join(
                f"{p}: {m}" for p, m in exc.errors.items())}, status=400)

        self.admin._audit(f"removed queue {ident}")
        raise bottle.redirect("/queues?done=" + quote(f"Removed queue {ident}. " + applied_text(applied)), 303)


def install(admin: Any) -> None:
    QueuePages(admin).install()
