"""Voicemail (``/voicemail``): which extensions have a mailbox, whether calls they leave
unanswered go there, the box-wide message length; and each mailbox's messages
(``/voicemail/<mailbox>``) to play, download, mark heard or delete.

The ``voicemail`` section is replaced whole through ``LocalApi.set_section``. Messages are files
(firmware.store.messages); the web process reads and serves them itself, each found by listing its
mailbox, never by a path from the request. Marking heard and deleting change the files, which
the running box does (``LocalApi.voicemail_action``) so that its phones' lamps follow.
"""

from __future__ import annotations

import re
import time
from typing import Any, Mapping
from urllib.parse import quote

import bottle
from bottle import request

from firmware.api.localapi import Invalid, is_mailbox
from firmware.config.voicemail import DEFAULT_MAX_SECONDS
from webui.pages.ivr import FieldMap, apply_section, number
from webui.app import applied_text

NAV = [("Voicemail", "/voicemail")]
CSS = "/static/config.css"
# How the IVR and queue validation names a mailbox that is not one (firmware.ivr.schema).
NO_MAILBOX = re.compile(r"no voicemail '([0-9]+)'")
ACTIONS = {"heard": "marked heard", "delete": "deleted"}


class MailboxFieldMap(FieldMap):
    """A form field for each path, plus one thing paths cannot say: removing a mailbox an IVR
    option or queue sends callers to is reported at that option's path, but what the admin did
    was untick the mailbox, so the message goes next to that checkbox."""

    def place(self, errors: Mapping[str, str]) -> dict[str, str]:
        fields = set(self.paths.values())
        rest: dict[str, str] = {}
        moved: dict[str, str] = {}
        for path, message in errors.items():
            m = NO_MAILBOX.fullmatch(message)
            field = f"mb-{m.group(1)}" if m else ""
            if field in fields:
                said = f"{path} sends callers to this mailbox; change that first"
                moved[field] = f"{moved[field]}; {said}" if field in moved else said
            else:
                rest[path] = message
        out = super().place(rest)
        for field, said in moved.items():
            out[field] = f"{out[field]}; {said}" if field in out else said
        return out


def rows_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per extension, and per mailbox whose extension is gone (so it can be cleared)."""
    boxes = (doc.get("voicemail") or {}).get("mailboxes") or {}
    rows = [{"number": str(e["number"]), "name": str(e.get("name", ""))} for e in doc.get("extensions", [])]
    known = {r["number"] for r in rows}
    rows += [{"number": str(n), "name": "(no such extension)"} for n in boxes if str(n) not in known]
    for r in rows:
        box = boxes.get(r["number"])
        r["mailbox"] = isinstance(box, Mapping)
        r["unanswered"] = not isinstance(box, Mapping) or box.get("unanswered", True) is not False
        # the PIN is a secret: the page says whether there is one, never what it is (the box
        # keeps only its hash anyway)
        r["has_pin"] = isinstance(box, Mapping) and has_pin(box)
        r["clear_pin"] = False
    return rows


def has_pin(box: Mapping[str, Any]) -> bool:
    """A PIN stored (its hash) or typed now (digits the firmware hashes as it stores them)."""
    return bool(box.get("pin_hash") or box.get("pin"))


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``mailbox 1003 added, 1002 unanswered off, max_seconds 180 → 120`` for the audit log."""
    before, after = old.get("mailboxes") or {}, new.get("mailboxes") or {}
    out = []
    for n in sorted(set(before) | set(after)):
        if n not in before:
            out.append(f"mailbox {n} added" + ("" if after[n].get("unanswered", True) else " without unanswered calls"))
        elif n not in after:
            out.append(f"mailbox {n} removed")
        else:
            was, now = before[n].get("unanswered", True), after[n].get("unanswered", True)
            if was != now:
                out.append(f"{n} unanswered {'on' if now else 'off'}")
            was, now = has_pin(before[n]), has_pin(after[n])
            if "pin" in after[n] or was != now:  # a typed PIN is new even if it happens to be the same
                out.append(f"{n} PIN " + ("removed" if not now else "set" if not was else "changed"))
    was, now = old.get("max_seconds", DEFAULT_MAX_SECONDS), new.get("max_seconds", DEFAULT_MAX_SECONDS)
    if was != now:
        out.append(f"max_seconds {was} → {now}")
    return out


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


class VoicemailPages:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.api = admin.api

    def install(self) -> None:
        a = self.admin.app
        a.get("/voicemail", callback=self.page)
        a.post("/voicemail", callback=self.save)
        a.get("/voicemail/<mailbox>", callback=self.mailbox)
        a.get("/voicemail/<mailbox>/<ident>/audio", callback=self.audio)
        a.post("/voicemail/<mailbox>/<ident>", callback=self.act)

    # --- the mailboxes --------------------------------------------------------------------------

    def _render(self, doc: Mapping[str, Any], errors: dict[str, str], status: int = 200,
                typed: Mapping[str, Any] | None = None, notice: str | None = None, failed: str | None = None) -> str:
        rows = rows_of(doc)
        for r in rows:
            folders = [m.folder for m in self.api.voicemail_messages(r["number"])]
            r["new"], r["old"] = folders.count("new"), folders.count("old")
            if typed is not None:
                n = r["number"]
                r["mailbox"], r["unanswered"] = typed[f"mb-{n}"], typed[f"un-{n}"]
                r["clear_pin"] = typed[f"nopin-{n}"]  # a typed PIN is not sent back: it is typed again
        section = doc.get("voicemail") or {}
        seconds = typed["max_seconds"] if typed is not None else section.get("max_seconds", DEFAULT_MAX_SECONDS)
        return self.admin._render("voicemail", status, rows=rows, max_seconds=seconds, errors=errors,
                                  notice=notice, failed=failed, css=CSS)

    def page(self) -> str:
        return self._render(self.api.export_document(), {}, notice=request.query.getunicode("done") or None)

    def save(self) -> str:
        doc = self.api.export_document()
        fm = MailboxFieldMap()
        typed: dict[str, Any] = {"max_seconds": (request.forms.getunicode("max_seconds") or "").strip()}
        boxes: dict[str, dict[str, Any]] = {}
        old_boxes = (doc.get("voicemail") or {}).get("mailboxes") or {}
        for r in rows_of(doc):
            n = r["number"]
            has, unanswered = bool(request.forms.get(f"mb-{n}")), bool(request.forms.get(f"un-{n}"))
            pin, clear = (request.forms.getunicode(f"pin-{n}") or "").strip(), bool(request.forms.get(f"nopin-{n}"))
            typed[f"mb-{n}"], typed[f"un-{n}"], typed[f"nopin-{n}"] = has, unanswered, clear
            fm.add(f"voicemail.mailboxes.{n}", f"mb-{n}")
            fm.add(f"voicemail.mailboxes.{n}.unanswered", f"un-{n}")
            fm.add(f"voicemail.mailboxes.{n}.pin", f"pin-{n}")
            if has:
                # A typed PIN goes as digits (the firmware stores its hash); an empty field keeps
                # the PIN there was, as its hash: the page never shows it.
                old_hash = (old_boxes.get(n) or {}).get("pin_hash")
                kept = {} if clear else {"pin": pin} if pin else {"pin_hash": old_hash} if old_hash else {}
                boxes[n] = {**({} if unanswered else {"unanswered": False}), **kept}
        fm.add("voicemail.max_seconds", "max_seconds")
        # Whatever was typed goes to the firmware as it is: its message says what it takes.
        section = {"mailboxes": boxes, "max_seconds": number(typed["max_seconds"])}
        old = doc.get("voicemail") or {}
        errors, applied = apply_section(self.admin, "voicemail", section, fm)
        if errors:
            return self._render(doc, errors, 400, typed, failed="Nothing was changed: fix what is marked below.")

        said = changes(old, section)
        self.admin._audit("voicemail: " + (", ".join(said) if said else "saved unchanged"))
        raise bottle.redirect("/voicemail?done=" + quote("Saved voicemail. " + applied_text(applied)), 303)

    # --- one mailbox's messages -----------------------------------------------------------------

    def _known(self, mailbox: str) -> Mapping[str, Any]:
        """The configuration, if ``mailbox`` is an extension or a mailbox; 404 otherwise."""
        doc = self.api.export_document()
        if not is_mailbox(mailbox) or mailbox not in {r["number"] for r in rows_of(doc)}:
            bottle.abort(404, f"No extension or mailbox {mailbox!r}.")
        return doc

    def mailbox(self, mailbox: str, errors: dict[str, str] | None = None, status: int = 200) -> str:
        doc = self._known(mailbox)
        row = next(r for r in rows_of(doc) if r["number"] == mailbox)
        return self.admin._render("voicemail_box", status, box=row, messages=self.api.voicemail_messages(mailbox),
                                  when=when, errors=errors or {}, css=CSS,
                                  notice=request.query.getunicode("done") or None)

    def audio(self, mailbox: str, ident: str) -> Any:
        message = self.api.voicemail_message(mailbox, ident)
        if message is None:
            bottle.abort(404, "No such message (heard and deleted meanwhile?).")
        download = f"voicemail-{mailbox}-{ident}.wav" if request.query.get("download") else False
        # static_file answers Range requests (206), so the <audio> player can seek.
        return bottle.static_file(message.path.name, root=str(message.path.parent), mimetype="audio/wav",
                                  download=download)

    def act(self, mailbox: str, ident: str) -> str:
        self._known(mailbox)
        action = request.forms.getunicode("action") or ""
        if action not in ACTIONS:
            bottle.abort(400, "action must be heard or delete")
        try:
            done = self.api.voicemail_action(mailbox, ident, action)
        except Invalid as exc:
            return self.mailbox(mailbox, {"form": "; ".join(exc.errors.values())}, 409)
        who = done.get("caller") or "an unknown caller"
        self.admin._audit(f"voicemail {mailbox}: {ACTIONS[action]} the message from {who} "
                          f"of {when(float(done.get('received', 0)))}")
        lamps = ("The phones' message lamps are updated." if done.get("live") else
                 "The box is not running: phones learn of it when it starts and they register.")
        raise bottle.redirect(f"/voicemail/{mailbox}?done=" + quote(f"Message {ACTIONS[action]}. {lamps}"), 303)


def install(admin: Any) -> None:
    VoicemailPages(admin).install()
