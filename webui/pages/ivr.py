"""IVR menus, time conditions and the numbers that enter them (``/ivr``).

The pages edit the ``ivr`` and ``ivr_numbers`` sections of the configuration document
(docs/config.md). A form is turned into a document section, handed to ``LocalApi.set_section``
(validated with the whole configuration, all or nothing, applied live), and the firmware's
error paths (``ivr.menus[main].options[1].target``) are mapped back to the form fields that
produced them, so each message sits next to its field. The rules live in the firmware only:
what a field cannot even be parsed as (``"abc"`` seconds) is passed through as typed, and the
firmware's validator says what is wrong with it.

This module also holds the helpers the other configuration pages share (:class:`FieldMap`,
destinations, number parsing).
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

import bottle
from bottle import request

from firmware.api.localapi import Invalid
from webui.pages._ivrdoc import conditions, menus  # noqa: F401 (also what other pages import from here)
from firmware.prompts import said_name
from webui.pages.prompts import preview_path
from firmware.prompts import language
from webui.pages.prompts import save_upload
from webui.pages.prompts import forget_upload
from urllib.parse import quote
from webui.app import applied_text

NAV = [("IVR", "/ivr")]

# What a caller may be sent to (firmware.ivr.menu.GOTO_KINDS).
GOTO_MENU = ("extension", "queue", "voicemail", "menu", "condition", "repeat", "back", "hangup")
GOTO_ROUTE = ("extension", "queue", "voicemail", "menu", "condition", "hangup")  # no back/repeat outside a menu
NEEDS_TARGET = ("extension", "queue", "voicemail", "menu", "condition")
PROMPT_KINDS = (("prompt", "prompt"), ("say", "say text"), ("file", "upload"))
SPARE_ROWS = 2
CSS = "/static/config.css"


# --- shared by the configuration pages --------------------------------------------------------

class FieldMap:
    """Which form field produced which document path, to put the firmware's messages back.

    ``add("ivr.menus[main].timeout", "timeout")``; ``place(errors)`` then gives
    ``{"timeout": message}`` for ``ivr.menus[main].timeout`` and for any deeper path, by the
    longest registered prefix. Messages no field claims are returned under ``"form"``.
    """

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def add(self, path: str, field: str) -> None:
        self.paths[path] = field

    def place(self, errors: Mapping[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        loose: list[str] = []
        for path, message in errors.items():
            field = self._field(path)
            if field is None:
                loose.append(f"{path}: {message}")
            elif field in out:
                out[field] += "; " + message
            else:
                out[field] = message
        if loose:
            out["form"] = "; ".join(loose)
        return out

    def _field(self, path: str) -> str | None:
        probe = path
        while probe:
            if probe in self.paths:
                return self.paths[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return None


def text(name: str, default: str = "") -> str:
    return (request.forms.getunicode(name) or default).strip()


def number(raw: str, *, null: bool = False) -> Any:
    """A typed number as JSON: "" -> None, "15" -> 15, "2.5" -> 2.5; anything else is passed
    through as typed, for the firmware's validator to name."""
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        value = float(raw)
    except ValueError:
        return raw
    return value if value == value and value not in (float("inf"), float("-inf")) else raw


def destination(form: Mapping[str, Any], prefix: str, fm: FieldMap, path: str) -> dict[str, Any] | None:
    """The destination of form fields ``{prefix}-goto`` / ``{prefix}-target`` (None when no goto)."""
    goto = str(form.get(f"{prefix}-goto") or "")
    if not goto:
        return None
    dest: dict[str, Any] = {"goto": goto}
    target = str(form.get(f"{prefix}-target") or "")
    if goto in NEEDS_TARGET or target:
        dest["target"] = target
    fm.add(path, f"{prefix}-target")
    fm.add(f"{path}.goto", f"{prefix}-goto")
    return dest


def dest_form(dest: Any) -> tuple[str, str]:
    if not isinstance(dest, Mapping):
        return "", ""
    return str(dest.get("goto", "")), str(dest.get("target", "") or "")


def targets(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """What a destination may name, by kind, for the target pickers."""
    ivr = doc.get("ivr") or {}
    return {"extension": [str(e["number"]) for e in doc.get("extensions", [])],
            "queue": [str(q.get("id")) for q in doc.get("queues") or [] if isinstance(q, Mapping)],
            "menu": [m["id"] for m in menus(ivr)],
            "condition": [c["id"] for c in conditions(ivr)]}


def describe_dest(dest: Any) -> str:
    if not isinstance(dest, Mapping):
        return "—"
    goto = str(dest.get("goto", ""))
    return f"{goto} {dest['target']}" if dest.get("target") else goto


def apply_section(admin: Any, name: str, value: Any, fm: FieldMap) -> tuple[dict[str, str], Any]:
    """set_section; returns (form errors, Applied). Errors mean nothing was changed."""
    try:
        return {}, admin.api.set_section(name, value)
    except Invalid as exc:
        return fm.place(exc.errors), None


def changed_keys(old: Any, new: Any) -> list[str]:
    """The top-level fields that differ between two objects, for the audit log."""
    old = old if isinstance(old, Mapping) else {}
    new = new if isinstance(new, Mapping) else {}
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def safe_id(ident: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in ident)


# --- the IVR document ----------------------------------------------------------------------------

def prompt_rows(items: Any) -> list[tuple[str, str]]:
    rows = []
    for item in items or []:
        if isinstance(item, str):
            rows.append(("prompt", item))
        elif isinstance(item, Mapping) and "say" in item:
            rows.append(("say", str(item["say"])))
        elif isinstance(item, Mapping) and "file" in item:
            rows.append(("file", str(item["file"])))
    return rows


def previewer(api: Any, phrases: Iterable[str], uploads: Iterable[str]) -> Any:
    """preview(kind, value) -> where the browser can play a prompt item, or None when there is
    nothing to play yet (a text not rendered until saved, a name that is no prompt)."""
    phrases, uploads = set(phrases), set(uploads)

    def preview(kind: str, value: str) -> str | None:
        if (kind == "prompt" and value not in phrases) or (kind == "file" and value not in uploads):
            return None
        if kind == "say" and not (api.data / "prompts" / "say" / f"{said_name(value)}.wav").is_file():
            return None
        return preview_path(kind, value)

    return preview


class IvrPages:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.api = admin.api

    def install(self) -> None:
        a = self.admin.app
        a.get("/ivr", callback=self.index)
        a.post("/ivr/numbers", callback=self.add_number)
        a.post("/ivr/numbers/<num>/remove", callback=self.remove_number)
        a.get("/ivr/menus/<ident>", callback=self.menu_page)
        a.post("/ivr/menus/<ident>", callback=self.save_menu)
        a.post("/ivr/menus/<ident>/remove", callback=self.remove_menu)
        a.get("/ivr/conditions/<ident>", callback=self.condition_page)
        a.post("/ivr/conditions/<ident>", callback=self.save_condition)
        a.post("/ivr/conditions/<ident>/remove", callback=self.remove_condition)

    # the list ---------------------------------------------------------------------------------

    def index(self, errors: dict[str, str] | None = None, notice: str | None = None, status: int = 200,
              form: dict[str, str] | None = None) -> str:
        doc = self.api.export_document()
        ivr = doc.get("ivr") or {}
        return self.admin._render("ivr", status, doc=doc, menus=menus(ivr), conditions=conditions(ivr),
                                  numbers=sorted((doc.get("ivr_numbers") or {}).items()),
                                  errors=errors or {}, notice=notice or _notice(), form=form or {},
                                  describe=describe_dest, css=CSS)

    def add_number(self) -> str:
        form = {"ivr-number": text("ivr-number"), "ivr-entry": text("ivr-entry")}
        doc = self.api.export_document()
        numbers = dict(doc.get("ivr_numbers") or {})
        if not form["ivr-number"]:
            return self.index({"ivr-number": "the number callers dial (2-10 digits)"}, status=400, form=form)
        if not form["ivr-number"].isdigit() or not 2 <= len(form["ivr-number"]) <= 10:
            return self.index({"ivr-number": "2 to 10 digits"}, status=400, form=form)
        if form["ivr-number"] in numbers:
            return self.index({"ivr-number": f"{form['ivr-number']} already enters {numbers[form['ivr-number']]}; "
                                             "remove it first"}, status=400, form=form)
        numbers[form["ivr-number"]] = form["ivr-entry"]
        fm = FieldMap()
        fm.add(f"ivr_numbers.{form['ivr-number']}", "ivr-entry")
        fm.add("ivr_numbers", "ivr-number")
        errors, applied = apply_section(self.admin, "ivr_numbers", numbers, fm)
        if errors:
            return self.index(errors, status=400, form=form)
        self.admin._audit(f"IVR: number {form['ivr-number']} now enters {form['ivr-entry']}")
        raise bottle.redirect("/ivr?done=" + _q(f"Number {form['ivr-number']} enters {form['ivr-entry']}. "
                                                + _applied(applied)), 303)

    def remove_number(self, num: str) -> str:
        numbers = dict(self.api.export_document().get("ivr_numbers") or {})
        if num not in numbers:
            bottle.abort(404, f"No IVR number {num}.")
        del numbers[num]
        errors, applied = apply_section(self.admin, "ivr_numbers", numbers, FieldMap())
        if errors:
            return self.index({"numbers": errors.get("form", "")}, status=400)
        self.admin._audit(f"IVR: removed number {num}")
        raise bottle.redirect("/ivr?done=" + _q(f"Removed number {num}. " + _applied(applied)), 303)

    # a menu -----------------------------------------------------------------------------------

    def menu_page(self, ident: str) -> str:
        doc = self.api.export_document()
        found = {m["id"]: m for m in menus(doc.get("ivr") or {})}
        if ident == "new":
            menu: dict[str, Any] = {"id": "", "options": {}}
        elif ident in found:
            menu = found[ident]
        else:
            bottle.abort(404, f"No IVR menu {ident!r}.")
        return self._menu_form(doc, ident, _menu_form_values(menu), {}, notice=_notice())

    def _menu_form(self, doc: Mapping[str, Any], ident: str, form: dict[str, Any], errors: dict[str, str],
                   status: int = 200, notice: str | None = None, failed: str | None = None) -> str:
        ivr = doc.get("ivr") or {}
        entries = [n for n, t in (doc.get("ivr_numbers") or {}).items() if t == ident]
        uploads = [u.name for u in self.api.prompts()]
        phrases = sorted(language("en").phrases)
        return self.admin._render("ivr_menu", status, ident=ident, form=form, errors=errors, notice=notice, failed=failed,
                                  targets=targets(doc), goto_menu=GOTO_MENU, goto_route=GOTO_ROUTE,
                                  prompt_kinds=PROMPT_KINDS, phrases=phrases,
                                  uploads=uploads, entries=entries, preview=previewer(self.api, phrases, uploads),
                                  is_new=ident == "new" or ident not in {m["id"] for m in menus(ivr)}, css=CSS)

    def save_menu(self, ident: str) -> str:
        doc = self.api.export_document()
        ivr = copy.deepcopy(doc.get("ivr") or {"menus": []})
        all_menus = menus(ivr)
        old = {m["id"]: m for m in all_menus}.get(ident)
        if ident != "new" and old is None:
            bottle.abort(404, f"No IVR menu {ident!r}.")
        form = _menu_form_from_request()
        if request.forms.get("action") == "more":  # more empty rows; nothing saved
            form["options"] += [("", "", "", False)] * 3
            form["greeting"] += [("prompt", "")] * 2
            return self._menu_form(doc, ident, form, {})
        fm = FieldMap()
        new_id = form["id"]
        path = f"ivr.menus[{new_id}]"
        errors: dict[str, str] = {}
        if not new_id:
            errors["id"] = "give the menu an id (letters, digits, - and _)"
        elif new_id != ident and new_id in old_ids(all_menus):
            errors["id"] = f"there is already a menu {new_id!r}"
        elif not all(c.isalnum() or c in "-_" for c in new_id) or len(new_id) > 32 or new_id == "new":
            errors["id"] = "up to 32 letters, digits, - and _ (not 'new')"
        menu, local, uploaded = self._menu_from_form(form, fm, path)
        errors.update(local)
        if errors:
            _undo_upload(self.api, form, errors, uploaded)
            return self._menu_form(doc, ident, form, errors, 400,
                                   failed="Nothing was changed: fix the fields marked below.")
        rest = [m for m in all_menus if m["id"] != ident]
        ivr["menus"] = rest + [menu] if old is None else [menu if m["id"] == ident else m for m in all_menus]
        ivr["time_conditions"] = conditions(ivr)
        if not ivr["time_conditions"]:
            ivr.pop("time_conditions")
        numbers = dict(doc.get("ivr_numbers") or {})
        if old is not None and new_id != ident:  # a renamed menu keeps what pointed at it
            _rename(ivr, numbers, "menu", ident, new_id)
        try:
            new_doc = {**doc, "ivr": ivr, "ivr_numbers": numbers}
            applied = self.api.apply_document(new_doc)
        except Invalid as exc:
            errors = fm.place(exc.errors)
            _undo_upload(self.api, form, errors, uploaded)
            return self._menu_form(doc, ident, form, errors, 400,
                                   failed="Nothing was changed: fix the fields marked below.")
        what = "added" if old is None else "changed"
        detail = ", ".join(changed_keys(old, menu)) if old is not None else _menu_summary(menu)
        self.admin._audit(f"IVR: {what} menu {new_id}" + (f" ({detail})" if detail else "")
                          + (f"; uploaded {uploaded}" if uploaded else ""))
        raise bottle.redirect(f"/ivr/menus/{new_id}?done=" + _q(f"Saved menu {new_id}. " + _applied(applied)), 303)

    def _menu_from_form(self, form: dict[str, Any], fm: FieldMap,
                        path: str) -> tuple[dict[str, Any], dict[str, str], str | None]:
        """The menu document of a form, the errors found before the firmware can look (by form
        field), and the name of a greeting uploaded with it (already stored)."""
        local: dict[str, str] = {}
        menu: dict[str, Any] = {"id": form["id"]}
        fm.add(f"{path}.id", "id")
        if form["name"]:
            menu["name"] = form["name"]
            fm.add(f"{path}.name", "name")
        uploaded = None
        greeting = _prompts(form["greeting"], "greeting", fm, f"{path}.greeting")
        upload = request.files.get("greeting-upload")
        if upload is not None and upload.filename:
            uploaded, upload_error = _take_upload(self.api, upload, text("greeting-upload-name"))
            if upload_error:
                local["greeting-upload"] = upload_error
            if uploaded:
                greeting.append({"file": uploaded})
                form["greeting"].append(("file", uploaded))
        menu["greeting"] = greeting
        fm.add(f"{path}.greeting", "greeting-0-value" if form["greeting"] else "form")
        invalid = _prompts(form["invalid"], "invalid", fm, f"{path}.invalid")
        if invalid:
            menu["invalid"] = invalid
        options: dict[str, Any] = {}
        for i, (key, goto, target, prefix) in enumerate(form["options"]):
            if not key and not goto and not target:
                continue
            # A key given twice or left empty cannot even be held by the document (an object
            # keyed by DTMF key): refused here, next to the row.
            if not key:
                local[f"opt-{i}-key"] = "a single DTMF key (0-9, *, #, A-D)"
                continue
            if key in options:
                local[f"opt-{i}-key"] = f"key {key} is already used above"
                continue
            p = f"{path}.options[{key}]"
            dest: dict[str, Any] = {"goto": goto}
            if goto in NEEDS_TARGET or target:
                dest["target"] = target
            if prefix:
                dest["extension_prefix"] = True
            options[key] = dest
            fm.add(p, f"opt-{i}-key")
            fm.add(f"{p}.goto", f"opt-{i}-goto")
            fm.add(f"{p}.target", f"opt-{i}-target")
            fm.add(f"{p}.extension_prefix", f"opt-{i}-prefix")
        menu["options"] = options
        fm.add(f"{path}.options", "options")
        for key in ("timeout", "retries", "inter_digit_timeout"):
            value = number(form[key])
            if value is not None:
                menu[key] = value
            fm.add(f"{path}.{key}", key)
        menu["dial_by_extension"] = form["dial_by_extension"]
        fm.add(f"{path}.dial_by_extension", "dial_by_extension")
        for key in ("on_timeout", "fallback"):
            dest = destination(form, key, fm, f"{path}.{key}")
            if dest is not None:
                menu[key] = dest
        return menu, local, uploaded

    def remove_menu(self, ident: str) -> str:
        doc = self.api.export_document()
        ivr = copy.deepcopy(doc.get("ivr") or {})
        all_menus = menus(ivr)
        if ident not in old_ids(all_menus):
            bottle.abort(404, f"No IVR menu {ident!r}.")
        if request.forms.get("confirm") != "yes":
            return self.admin._render("ivr_remove", kind="menu", ident=ident, action=f"/ivr/menus/{ident}/remove",
                                      css=CSS)
        ivr["menus"] = [m for m in all_menus if m["id"] != ident]
        try:
            applied = self.api.set_section("ivr", ivr)
        except Invalid as exc:
            return self.index({"menus": "Menu %s was not removed: %s" % (ident, "; ".join(
                f"{p}: {m}" for p, m in exc.errors.items()))}, status=400)
        self.admin._audit(f"IVR: removed menu {ident}")
        raise bottle.redirect("/ivr?done=" + _q(f"Removed menu {ident}. " + _applied(applied)), 303)

    # a time condition -------------------------------------------------------------------------

    def condition_page(self, ident: str) -> str:
        doc = self.api.export_document()
        found = {c["id"]: c for c in conditions(doc.get("ivr") or {})}
        if ident == "new":
            cond: dict[str, Any] = {"id": "", "timezone": "UTC",
                                    "hours": [{"days": "mon-fri", "from": "09:00", "to": "17:00"}]}
        elif ident in found:
            cond = found[ident]
        else:
            bottle.abort(404, f"No time condition {ident!r}.")
        return self._condition_form(doc, ident, _condition_form_values(cond), {}, notice=_notice())

    def _condition_form(self, doc: Mapping[str, Any], ident: str, form: dict[str, Any], errors: dict[str, str],
                        status: int = 200, notice: str | None = None, failed: str | None = None) -> str:
        entries = [n for n, t in (doc.get("ivr_numbers") or {}).items() if t == ident]
        return self.admin._render("ivr_condition", status, ident=ident, form=form, errors=errors, notice=notice,
                                  failed=failed,
                                  targets=targets(doc), goto_route=GOTO_ROUTE, entries=entries,
                                  is_new=ident not in {c["id"] for c in conditions(doc.get("ivr") or {})}, css=CSS)

    def save_condition(self, ident: str) -> str:
        doc = self.api.export_document()
        ivr = copy.deepcopy(doc.get("ivr") or {"menus": []})
        conds = conditions(ivr)
        old = {c["id"]: c for c in conds}.get(ident)
        if ident != "new" and old is None:
            bottle.abort(404, f"No time condition {ident!r}.")
        form = _condition_form_from_request()
        if request.forms.get("action") == "more":
            form["hours"] += [("", "", "")] * 2
            form["holidays"] += [("", "", "")] * 2
            return self._condition_form(doc, ident, form, {})
        new_id = form["id"]
        errors: dict[str, str] = {}
        if not new_id:
            errors["id"] = "give the condition an id (letters, digits, - and _)"
        elif new_id != ident and (new_id in {c["id"] for c in conds} or new_id in old_ids(menus(ivr))):
            errors["id"] = f"there is already a menu or condition {new_id!r}"
        elif not all(c.isalnum() or c in "-_" for c in new_id) or len(new_id) > 32 or new_id == "new":
            errors["id"] = "up to 32 letters, digits, - and _ (not 'new')"
        if errors:
            return self._condition_form(doc, ident, form, errors, 400)
        fm = FieldMap()
        path = f"ivr.time_conditions[{new_id}]"
        cond: dict[str, Any] = {"id": new_id, "timezone": form["timezone"] or "UTC"}
        fm.add(f"{path}.id", "id")
        fm.add(f"{path}.timezone", "timezone")
        if form["name"]:
            cond["name"] = form["name"]
        hours = []
        for i, (days, start, end) in enumerate(form["hours"]):
            if not (days or start or end):
                continue
            p = f"{path}.hours[{len(hours)}]"
            hours.append({"days": days, "from": start, "to": end})
            fm.add(p, f"hours-{i}-days")
            fm.add(f"{p}.days", f"hours-{i}-days")
            fm.add(f"{p}.from", f"hours-{i}-from")
            fm.add(f"{p}.to", f"hours-{i}-to")
        cond["hours"] = hours
        fm.add(f"{path}.hours", "hours")
        holidays = []
        for i, (start, end, name) in enumerate(form["holidays"]):
            if not (start or end):
                continue
            p = f"{path}.holidays[{len(holidays)}]"
            h: dict[str, Any] = {"from": start, "to": end} if end else {"date": start}
            if name:
                h["name"] = name
            holidays.append(h)
            fm.add(p, f"hol-{i}-from")
            fm.add(f"{p}.date", f"hol-{i}-from")
            fm.add(f"{p}.from", f"hol-{i}-from")
            fm.add(f"{p}.to", f"hol-{i}-to")
        if holidays:
            cond["holidays"] = holidays
        for key in ("day", "night"):
            dest = destination(form, key, fm, f"{path}.{key}")
            fm.add(f"{path}.{key}", f"{key}-target")
            if dest is not None:
                cond[key] = dest
        ivr["time_conditions"] = ([c for c in conds] + [cond]) if old is None else \
            [cond if c["id"] == ident else c for c in conds]
        ivr["menus"] = menus(ivr)
        numbers = dict(doc.get("ivr_numbers") or {})
        if old is not None and new_id != ident:
            _rename(ivr, numbers, "condition", ident, new_id)
        try:
            applied = self.api.apply_document({**doc, "ivr": ivr, "ivr_numbers": numbers})
        except Invalid as exc:
            return self._condition_form(doc, ident, form, fm.place(exc.errors), 400,
                                        failed="Nothing was changed: fix the fields marked below.")
        what = "added" if old is None else "changed"
        detail = ", ".join(changed_keys(old, cond)) if old is not None else ""
        self.admin._audit(f"IVR: {what} time condition {new_id}" + (f" ({detail})" if detail else ""))
        raise bottle.redirect(f"/ivr/conditions/{new_id}?done=" + _q(f"Saved time condition {new_id}. "
                                                                      + _applied(applied)), 303)

    def remove_condition(self, ident: str) -> str:
        doc = self.api.export_document()
        ivr = copy.deepcopy(doc.get("ivr") or {})
        conds = conditions(ivr)
        if ident not in {c["id"] for c in conds}:
            bottle.abort(404, f"No time condition {ident!r}.")
        if request.forms.get("confirm") != "yes":
            return self.admin._render("ivr_remove", kind="time condition", ident=ident,
                                      action=f"/ivr/conditions/{ident}/remove", css=CSS)
        ivr["time_conditions"] = [c for c in conds if c["id"] != ident]
        try:
            applied = self.api.set_section("ivr", ivr)
        except Invalid as exc:
            return self.index({"conditions": "Time condition %s was not removed: %s" % (ident, "; ".join(
                f"{p}: {m}" for p, m in exc.errors.items()))}, status=400)
        self.admin._audit(f"IVR: removed time condition {ident}")
        raise bottle.redirect("/ivr?done=" + _q(f"Removed time condition {ident}. " + _applied(applied)), 303)


def old_ids(items: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(m["id"]) for m in items}


def _rename(ivr: dict[str, Any], numbers: dict[str, str], kind: str, old: str, new: str) -> None:
    """Points every destination and IVR number at a renamed menu or condition."""

    def fix(dest: Any) -> None:
        if isinstance(dest, dict) and dest.get("goto") == kind and dest.get("target") == old:
            dest["target"] = new

    for m in ivr.get("menus", []):
        for d in (m.get("options") or {}).values():
            fix(d)
        fix(m.get("on_timeout"))
        fix(m.get("fallback"))
    for c in ivr.get("time_conditions", []):
        fix(c.get("day"))
        fix(c.get("night"))
    for n, t in list(numbers.items()):
        if t == old:
            numbers[n] = new


def _prompts(rows: list[tuple[str, str]], prefix: str, fm: FieldMap, path: str) -> list[Any]:
    out: list[Any] = []
    for i, (kind, value) in enumerate(rows):
        if not value:
            continue
        p = f"{path}[{len(out)}]"
        out.append(value if kind == "prompt" else {kind: value})
        fm.add(p, f"{prefix}-{i}-value")
    return out


def _menu_form_values(menu: Mapping[str, Any]) -> dict[str, Any]:
    options = [(str(k), *dest_form(d), bool(isinstance(d, Mapping) and d.get("extension_prefix")))
               for k, d in (menu.get("options") or {}).items()]
    greeting = prompt_rows(menu.get("greeting"))
    invalid = prompt_rows(menu.get("invalid"))
    form = {"id": menu.get("id", ""), "name": menu.get("name", ""),
            "greeting": greeting + [("say", "")] * (1 if greeting else 1) + [("prompt", "")] * (SPARE_ROWS - 1),
            "invalid": invalid + [("prompt", "")],
            "options": options + [("", "", "", False)] * (SPARE_ROWS + (2 if not options else 0)),
            "timeout": _str(menu.get("timeout")), "retries": _str(menu.get("retries")),
            "inter_digit_timeout": _str(menu.get("inter_digit_timeout")),
            "dial_by_extension": bool(menu.get("dial_by_extension", False))}
    for key in ("on_timeout", "fallback"):
        form[f"{key}-goto"], form[f"{key}-target"] = dest_form(menu.get(key))
    return form


def _rows(prefix: str, fields: tuple[str, ...]) -> list[tuple[str, ...]]:
    count = int(number(text(f"{prefix}-rows", "0")) or 0) if text(f"{prefix}-rows", "0").isdigit() else 0
    return [tuple(text(f"{prefix}-{i}-{f}") for f in fields) for i in range(min(count, 64))]


def _menu_form_from_request() -> dict[str, Any]:
    form: dict[str, Any] = {"id": text("id"), "name": text("name"),
                            "greeting": [(k or "prompt", v) for k, v in _rows("greeting", ("kind", "value"))],
                            "invalid": [(k or "prompt", v) for k, v in _rows("invalid", ("kind", "value"))],
                            "options": [(k, g, t, p == "yes") for k, g, t, p in
                                        _rows("opt", ("key", "goto", "target", "prefix"))],
                            "timeout": text("timeout"), "retries": text("retries"),
                            "inter_digit_timeout": text("inter_digit_timeout"),
                            "dial_by_extension": request.forms.get("dial_by_extension") == "yes"}
    for key in ("on_timeout", "fallback"):
        form[f"{key}-goto"], form[f"{key}-target"] = text(f"{key}-goto"), text(f"{key}-target")
    return form


def _condition_form_values(cond: Mapping[str, Any]) -> dict[str, Any]:
    hours = [(str(h.get("days", "")), str(h.get("from", "")), str(h.get("to", "")))
             for h in cond.get("hours") or [] if isinstance(h, Mapping)]
    holidays = []
    for h in cond.get("holidays") or []:
        if isinstance(h, str):
            h = {"date": h}
        if isinstance(h, Mapping):
            holidays.append((str(h.get("date", h.get("from", ""))), str(h.get("to", "")), str(h.get("name", ""))))
    form = {"id": cond.get("id", ""), "name": cond.get("name", ""), "timezone": cond.get("timezone", "UTC"),
            "hours": hours + [("", "", "")] * SPARE_ROWS, "holidays": holidays + [("", "", "")] * SPARE_ROWS}
    for key in ("day", "night"):
        form[f"{key}-goto"], form[f"{key}-target"] = dest_form(cond.get(key))
    return form


def _condition_form_from_request() -> dict[str, Any]:
    form: dict[str, Any] = {"id": text("id"), "name": text("name"), "timezone": text("timezone"),
                            "hours": _rows("hours", ("days", "from", "to")),
                            "holidays": _rows("hol", ("from", "to", "name"))}
    for key in ("day", "night"):
        form[f"{key}-goto"], form[f"{key}-target"] = text(f"{key}-goto"), text(f"{key}-target")
    return form


def _menu_summary(menu: Mapping[str, Any]) -> str:
    opts = ", ".join(f"{k} → {describe_dest(d)}" for k, d in (menu.get("options") or {}).items())
    return f"options {opts}" if opts else ""


def _str(v: Any) -> str:
    return "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def _take_upload(api: Any, upload: Any, name: str) -> tuple[str | None, str | None]:
    """Saves a browser upload as a prompt; (name, None) or (None, message)."""
    return save_upload(api, upload, name)


def _undo_upload(api: Any, form: dict[str, Any], errors: dict[str, str], uploaded: str | None) -> None:
    """A refused form keeps nothing: the greeting uploaded with it is removed again."""
    if not uploaded:
        return
    _forget_upload(api, uploaded)
    if ("file", uploaded) in form["greeting"]:
        form["greeting"].remove(("file", uploaded))
    errors.setdefault("greeting-upload", f"{uploaded} was not kept: fix the fields marked below, then upload it again")


def _forget_upload(api: Any, name: str) -> None:
    forget_upload(api, name)


def _notice() -> str | None:
    return request.query.getunicode("done") or None


def _q(s: str) -> str:
    return quote(s)


def _applied(applied: Any) -> str:
    return applied_text(applied) if applied is not None else ""


def install(admin: Any) -> None:
    IvrPages(admin).install()


__all__ = ["NAV", "install", "FieldMap", "number", "destination", "dest_form", "targets", "describe_dest",
           "apply_section", "changed_keys", "text"]
