"""The board's analog ports (``/ports``): which extension each FXS port is, where calls on each
FXO line go; and each FXO line's own settings (``/ports/<name>/line``).

The ports come from the running box (``LocalApi.ports()``: name, kind, line state, whether in
a call) together with those the ``ports`` section configures (a port configured for a board
not fitted is still shown, to be cleared). The section is replaced through
``LocalApi.set_section``. ``/ports`` keeps an FXO line's ``line`` object as it is; the line page
changes only that object (answering and disconnect supervision, firmware.config.ports.LINE_FIELDS),
from its form, back to the region defaults, or to the last line test's proposal. The box
applies a ports change when no analog call is up.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Mapping
from urllib.parse import quote

import bottle
from bottle import request

from board.regions import region as region_profile
from firmware.api.localapi import BoxUnreachable, Invalid
from webui.pages.ivr import FieldMap, apply_section, number, text
from webui.app import applied_text
from firmware.config.ports import proposal_line

NAV = [("Ports", "/ports")]
CSS = "/static/config.css"


def _kind(name: str, live: Mapping[str, Any] | None, spec: Any) -> str:
    if live and live.get("kind") in ("fxs", "fxo"):
        return str(live["kind"])
    if isinstance(spec, Mapping):
        return "fxs" if "extension" in spec else "fxo"
    return "fxs" if name.startswith("fxs") else "fxo"


class PortsPage:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.api = admin.api

    def install(self) -> None:
        self.admin.app.get("/ports", callback=self.page)
        self.admin.app.post("/ports", callback=self.save)

    def _ports(self, doc: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        try:
            live = {str(p["port"]): p for p in self.api.ports()}  # every port of the board
            down = None
        except (BoxUnreachable, Invalid) as exc:
            live, down = {}, f"The running box did not say which ports it has ({exc}); showing the configured ones."
        section = doc.get("ports") or {}
        rows = []
        for name in sorted(set(live) | set(section), key=lambda n: (n.rstrip("0123456789"), len(n), n)):
            spec = section.get(name) or {}
            kind = _kind(name, live.get(name), spec)
            rows.append({"port": name, "kind": kind, "live": live.get(name),
                         "value": str(spec.get("extension" if kind == "fxs" else "inbound", "") or ""),
                         "line": spec.get("line") if kind == "fxo" else None,
                         "call_waiting": spec.get("call_waiting", True) is not False})
        return rows, down

    def _render(self, doc: Mapping[str, Any], errors: dict[str, str], status: int = 200,
                typed: dict[str, str] | None = None, notice: str | None = None, failed: str | None = None) -> str:
        rows, down = self._ports(doc)
        for r in rows:
            r["value"] = (typed or {}).get(f"port-{r['port']}", r["value"])
        numbers = sorted(set(doc.get("ivr_numbers") or {}) |
                         {str(q.get("number")) for q in doc.get("queues") or [] if isinstance(q, Mapping)})
        return self.admin._render("ports", status, rows=rows, down=down, errors=errors, notice=notice, failed=failed,
                                  extensions=[str(e["number"]) for e in doc.get("extensions", [])],
                                  numbers=numbers, driver=str(self.api.settings().get("analog.driver", "")), css=CSS)

    def page(self) -> str:
        return self._render(self.api.export_document(), {}, notice=request.query.getunicode("done") or None)

    def save(self) -> str:
        doc = self.api.export_document()
        rows, _ = self._ports(doc)
        old = copy.deepcopy(doc.get("ports") or {})
        section: dict[str, Any] = {}
        typed: dict[str, str] = {}
        errors: dict[str, str] = {}
        fm = FieldMap()
        for r in rows:
            field = f"port-{r['port']}"
            value = (request.forms.getunicode(field) or "").strip()
            typed[field] = value
            fm.add(f"ports.{r['port']}", field)
            spec = dict(old.get(r["port"]) or {})
            if r["kind"] == "fxs":
                waiting = request.forms.getunicode(f"cw-{r['port']}") == "on"
                if value:
                    section[r["port"]] = {"extension": value, **({} if waiting else {"call_waiting": False})}
            elif value:
                section[r["port"]] = {"inbound": value, **({"line": spec["line"]} if "line" in spec else {})}
            elif "line" in spec:
                errors[field] = ("this line has its own line settings: give it an inbound number, or first "
                                 "reset them to the region defaults on its Line settings page")
        if errors:
            return self._render(doc, errors, 400, typed, failed="Nothing was changed: fix the ports marked below.")
        placed, applied = apply_section(self.admin, "ports", section, fm)
        if placed:
            return self._render(doc, placed, 400, typed, failed="Nothing was changed: fix the ports marked below.")
        changes = []
        for name in sorted(set(old) | set(section)):
            a, b = old.get(name) or {}, section.get(name) or {}
            key = "extension" if "extension" in a or "extension" in b else "inbound"
            if a.get(key) != b.get(key):
                changes.append(f"{name} {key} {a.get(key) or '-'} → {b.get(key) or '-'}")
            if key == "extension" and a.get("call_waiting", True) != b.get("call_waiting", True) and b:
                changes.append(f"{name} call waiting {'on' if b.get('call_waiting', True) else 'off'}")

        self.admin._audit("analog ports: " + (", ".join(changes) if changes else "saved unchanged"))
        raise bottle.redirect("/ports?done=" + quote("Saved the ports. " + applied_text(applied)
                                                     + " Ports in a call take it when the call ends."), 303)


# --- one FXO line's settings (/ports/<name>/line) ----------------------------------------------

NUMBERS = ("rings_before_answer", "loop_drop_ms", "silence_timeout")  # empty = not written
SWITCHES = ("answer_on_cid", "answer_polarity", "disconnect_polarity")
TONES = ("busy", "congestion", "dial")

# label, what it does (the region default is added from FxoConfig/the region)
LINE_HELP: dict[str, tuple[str, str]] = {
    "rings_before_answer": ("Rings before answering", "the box answers after this many rings (1-10)"),
    "answer_on_cid": ("Answer on caller ID",
                      "answer as soon as caller ID is in (after one ring), not after all the rings"),
    "answer_polarity": ("Answer by polarity", "calls out: the exchange reverses polarity when the far end "
                        "answers (without it, a call counts as answered once dialled)"),
    "disconnect_polarity": ("Disconnect by polarity", "a polarity reversal during a call means the far end hung up"),
    "loop_drop_ms": ("Loop drop (ms)",
                     "a break in loop current at least this long (10-2000 ms) means the far end hung up"),
    "disconnect_tones": ("Disconnect tones", "hearing one of these tones during a call means the far end hung up"),
    "silence_timeout": ("Silence timeout (s)", "hang up after this many seconds without voice (5-3600)"),
}


def line_defaults(region_code: str) -> dict[str, Any]:
    """What the box uses for a setting the ``line`` object leaves out: FxoConfig's default, or
    the region's when FxoConfig says None and the region has one (as board.fxo.FxoLine does)."""
    # Imported here: board.fxo brings the line's DSP and SIP modules (1 MB) the web needs only
    # for this page.
    from board.fxo import FxoConfig

    base, reg = FxoConfig(), region_profile(region_code)
    out = {}
    for key in LINE_HELP:
        value = getattr(base, key)
        if value is None:
            value = getattr(reg, key, None)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def shown(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def line_form(line: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values for a stored ``line`` object: numbers as typed text, switches as bools."""
    form: dict[str, Any] = {k: "" if line.get(k) is None else shown(line[k]) for k in NUMBERS}
    form.update({k: bool(line.get(k, defaults[k])) for k in SWITCHES})
    form["disconnect_tones"] = list(line.get("disconnect_tones", defaults["disconnect_tones"]))
    return form


def read_line_form() -> dict[str, Any]:
    form: dict[str, Any] = {k: text(k) for k in NUMBERS}
    form.update({k: bool(request.forms.get(k)) for k in SWITCHES})
    form["disconnect_tones"] = [t for t in TONES if request.forms.get(f"tone-{t}")]
    return form


def line_from_form(form: Mapping[str, Any], old: Mapping[str, Any], defaults: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``line`` object a form asks for, and the fields that are not numbers at all.

    A typed number is written even when it equals the default (the admin chose it); an empty
    one is left out (the default). A checkbox cannot say "default", so a switch or the tones
    are written when they differ from the default, or when the object already had them: what
    a line test measured stays explicit even where it agrees with today's region.
    """
    line: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for key in NUMBERS:
        raw = form[key]
        value = number(raw)
        if isinstance(value, str):
            bad[key] = f"a number, not {raw!r}"  # not worth a round trip to the box
        elif value is not None:
            line[key] = value
    for key in (*SWITCHES, "disconnect_tones"):
        if form[key] != defaults[key] or key in old:
            line[key] = form[key]
    return {k: line[k] for k in LINE_HELP if k in line}, bad


def line_changes(old: Mapping[str, Any], new: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """``loop_drop_ms - → 300, disconnect_polarity false → true`` for the audit log: a number
    left out is "-", a switch left out is its default (what its checkbox showed)."""
    def say(line: Mapping[str, Any], key: str) -> str:
        if key not in line:
            return "-" if key in NUMBERS else say(defaults, key)
        value = line[key]
        if isinstance(value, list):
            return "+".join(value) or "none"
        return json.dumps(value)
    return [f"{k} {say(old, k)} → {say(new, k)}" for k in LINE_HELP if say(old, k) != say(new, k)]


class LinePage:
    """``/ports/<name>/line``: the ``line`` object of one FXO port; ``inbound`` is kept as it is."""

    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.api = admin.api

    def install(self) -> None:
        self.admin.app.get("/ports/<name>/line", callback=self.page)
        self.admin.app.post("/ports/<name>/line", callback=self.save)

    def _port(self, name: str, doc: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """The port's configured spec and its region; 404 for no such FXO port."""
        try:
            live = next((p for p in self.api.ports() if p.get("port") == name), None)
        except (BoxUnreachable, Invalid):
            live = None
        spec = (doc.get("ports") or {}).get(name)
        if (live is None and spec is None) or _kind(name, live, spec) != "fxo":
            bottle.abort(404, f"No FXO line {name!r} on this box.")
        region = (live or {}).get("region") or str(self.api.settings().get("analog.region", "us"))
        return dict(spec or {}), region

    def _proposal(self, name: str) -> dict[str, Any] | None:
        """The port's last line test, when the box has one: its state and proposed ``line``."""
        try:
            state = self.api.line_tests().get(name)
        except (BoxUnreachable, Invalid):
            return None
        if not state:
            return None
        if state.get("finished") and state.get("settings"):
            state = {**state, "line": proposal_line(state["settings"])}
        return state

    def _render(self, name: str, spec: Mapping[str, Any], region: str, form: Mapping[str, Any],
                errors: dict[str, str], status: int = 200, failed: str | None = None) -> str:
        defaults = line_defaults(region)
        return self.admin._render("port_line", status, port=name, spec=spec, region=region, form=form,
                                  errors=errors, failed=failed, info=LINE_HELP, defaults=defaults,
                                  shown=shown, tones=TONES, proposal=self._proposal(name), css=CSS)

    def page(self, name: str) -> str:
        spec, region = self._port(name, self.api.export_document())
        return self._render(name, spec, region, line_form(spec.get("line") or {}, line_defaults(region)), {})

    def save(self, name: str) -> str:
        doc = self.api.export_document()
        spec, region = self._port(name, doc)
        defaults = line_defaults(region)
        old = dict(spec.get("line") or {})
        action = request.forms.getunicode("action") or "save"
        form = read_line_form() if action == "save" else line_form(old, defaults)
        if "inbound" not in spec:
            return self._render(name, spec, region, form, {"form": f"{name} has no inbound number: give it one on the "
                                                           "ports page first (line settings belong to a line in use)."},
                                400, failed="Nothing was changed.")
        if action == "reset":
            if not old:
                raise bottle.redirect("/ports?done=" + quote(f"{name} already uses the region defaults."), 303)
            line: dict[str, Any] = {}
        elif action == "proposal":
            proposal = self._proposal(name)
            if not proposal or "line" not in proposal:
                return self._render(name, spec, region, form, {"form": "The box has no finished line test of "
                                                               f"{name} to take settings from."}, 400,
                                    failed="Nothing was changed.")
            line = proposal["line"]
        else:
            line, bad = line_from_form(form, old, defaults)
            if bad:
                return self._render(name, spec, region, form, bad, 400,
                                    failed="Nothing was changed: fix the settings marked below.")
        ports = copy.deepcopy(doc.get("ports") or {})
        ports[name] = {k: v for k, v in spec.items() if k != "line"} | ({"line": line} if line else {})
        fm = FieldMap()
        for key in LINE_HELP:
            fm.add(f"ports.{name}.line.{key}", key)
        placed, applied = apply_section(self.admin, "ports", ports, fm)
        if placed:
            return self._render(name, spec, region, form, placed, 400,
                                failed="Nothing was changed: fix the settings marked below.")

        what = {"reset": "reset to region defaults", "proposal": "took the line test's proposal"}.get(action)
        changes = ", ".join(line_changes(old, line, defaults))
        self.admin._audit(f"{name} line: " + ("; ".join(filter(None, [what, changes])) or "saved unchanged"))
        done = f"Saved the line settings of {name}" + (" (region defaults)" if not line else "")
        raise bottle.redirect("/ports?done=" + quote(f"{done}. {applied_text(applied)} "
                                                     "A call on the line keeps the old settings until it ends."), 303)


def install(admin: Any) -> None:
    PortsPage(admin).install()
    LinePage(admin).install()
