"""The agent panel (``/agent``) with its screen pop, and the contacts it pops (``/contacts``).

The web user says which extension they sit at (kept per web user in webui.db by
:mod:`webui.contacts`); the panel then logs that extension in and out of its queues and pauses
it with a reason through ``LocalApi.agent`` (what *51–*54 do from the phone), and shows its state
live over SSE. When a queue call rings that extension (``ringing`` in ``/api/queues``) the panel
pops the caller's record: the contact with that number, its previous calls (CDRs, with what
agents noted about each), a link into the CRM when a URL template is set, and a form to note a
disposition for this call. The pop is sent once per call, so what the agent types into it is
never swapped away by the next update.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator
from urllib.parse import quote

import bottle
from bottle import request, response

from firmware.api.localapi import BoxUnreachable, Invalid
from webui.app import _sse_event
from webui.contacts import (DISPOSITIONS, PAUSE_REASONS, ContactsDb, Problems, check_contact, check_crm_template,
                            check_note, check_pause_reason, crm_link, normal_number)
from webui.pages.wallboard import board, clock, render, short_when

log = logging.getLogger("linebox.web.agent")

NAV = [("Agent", "/agent"), ("Contacts", "/contacts")]

CRM_KEY = "crm_url_template"  # in webui.db's settings table (WebDb.get / put)
HISTORY = 500  # most recent CDRs searched for a caller's previous calls
POP_ROWS = 5  # calls a pop lists (the contact's page lists them all)
VERBS = {"login": "Logged in to your queues.", "logout": "Logged out of your queues.",
         "pause": "Paused.", "unpause": "Back from pause: calls will be offered again."}


def current_call(snap: dict[str, Any], ext: str) -> dict[str, Any] | None:
    """The queue call ringing or talking at ``ext`` now: {call, caller, queue, queue_name, state}."""
    for q in snap.get("queues", []):
        for r in q["ringing"]:
            if r["agent"] == ext:
                return {"call": r["call"], "caller": r["caller"], "queue": q["queue"], "queue_name": q["name"],
                        "state": "ringing", "callback": r.get("callback", False)}
    for q in snap.get("queues", []):
        for call_id, t in q["talking"].items():
            if t.get("agent") == ext:
                return {"call": call_id, "caller": t.get("caller") or "", "queue": q["queue"],
                        "queue_name": q["name"], "state": "on call", "since": t.get("since")}
    return None


def my_queues(snap: dict[str, Any], ext: str) -> list[dict[str, Any]]:
    return [{"queue": q["queue"], "name": q["name"], "number": q["number"], "state": q["agents"][ext],
             "waiting": len(q["waiting"])}
            for q in snap.get("queues", []) if ext in q["agents"]]


class AgentPages:
    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.contacts: ContactsDb = getattr(admin, "contacts", None) or ContactsDb(admin.cfg.data)
        admin.contacts = self.contacts  # the wallboard shows waiting callers by name too
        self.board = board(admin)

    # --- shared pieces -----------------------------------------------------------------------

    def crm_template(self) -> str:
        return self.admin.db.get(CRM_KEY) or ""

    def history(self, number: str) -> list[dict[str, Any]]:
        """The number's calls, newest first: CDR rows with the agent's note, and notes whose CDR
        is no longer among the recent ones."""
        number = normal_number(number)
        if not number:
            return []
        notes = self.contacts.call_notes(number)
        rows = []
        try:
            cdrs = self.admin.api.cdrs(HISTORY)
        except Exception as exc:  # the store is local; a failure here must not hide the pop
            log.warning("cannot read CDRs: %s", exc)
            cdrs = []
        for c in cdrs:
            caller, callee = normal_number(c.get("caller", "")), normal_number(c.get("callee", ""))
            if number not in (caller, callee):
                continue
            rows.append({"id": c["id"], "start": c["start"], "inbound": caller == number,
                         "other": callee if caller == number else caller, "disposition": c.get("disposition", ""),
                         "billsec": c.get("billsec"), "note": notes.pop(c["id"], None)})
        for n in notes.values():
            rows.append({"id": n.call_id, "start": n.at, "inbound": True, "other": "", "disposition": "",
                         "billsec": None, "note": n})
        rows.sort(key=lambda r: r["start"] or 0, reverse=True)
        return rows

    def pop(self, call: dict[str, Any] | None, csrf: str, **extra: Any) -> str:
        ctx: dict[str, Any] = {"call": call, "csrf": csrf, "contact": None, "crm": None, "rows": [], "more": False,
                               "this_note": None, "dispositions": DISPOSITIONS, "errors": {}, "form": {}}
        if call is not None:
            number = call.get("caller") or ""
            rows = self.history(number)
            ctx.update(contact=self.contacts.by_number(number), crm=crm_link(self.crm_template(), number),
                       rows=rows[:POP_ROWS], more=len(rows) > POP_ROWS, this_note=self.contacts.call_note(call["call"]),
                       new_contact="/contacts?number=" + quote(number))
        ctx.update(extra)
        return render("agent_pop", **ctx)

    def state(self, ext: str | None, snap: dict[str, Any]) -> str:
        call = current_call(snap, ext) if ext else None
        return render("agent_state", ext=ext, snap=snap, queues=my_queues(snap, ext) if ext else [], call=call,
                      pause_reason=self._pause_reason(ext) if ext and any(
                          q["state"] == "paused" for q in my_queues(snap, ext)) else None)

    def _pause_reason(self, ext: str) -> str | None:
        try:
            events = self.admin.api.queue_events()
        except (BoxUnreachable, Invalid):
            return None
        reason = None
        for e in events:
            if e.get("agent") == ext and e.get("kind") in ("PAUSE", "UNPAUSE", "LOGOUT"):
                reason = e.get("reason") if e["kind"] == "PAUSE" else None
        return reason

    # --- the panel ---------------------------------------------------------------------------

    def panel(self, status: int = 200, **extra: Any) -> str:
        a = self.admin
        desk = self.contacts.desk(a.session.username)
        ext = desk.extension if desk else None
        snap = self.board.snapshot()
        call = current_call(snap, ext) if ext else None
        if call is not None and desk is not None and desk.last_call != call["call"]:
            self.contacts.set_last_call(a.session.username, call["call"], call["caller"], call["queue"], a.clock())
        elif call is None and desk is not None and desk.last_call:
            call = {"call": desk.last_call, "caller": desk.last_caller or "", "queue": desk.last_queue or "",
                    "queue_name": desk.last_queue or "", "state": "ended"}
        pop_extra = {k: extra.pop(k) for k in ("pop_errors", "pop_form") if k in extra}
        pop = self.pop(call, a.session.csrf, errors=pop_extra.get("pop_errors", {}), form=pop_extra.get("pop_form", {}))
        notice = {"saved": "Noted.", **VERBS}.get(request.query.getunicode("done") or "", None)
        return a._render("agent", status, ext=ext, extensions=a.api.extensions(), state_html=self.state(ext, snap),
                         pop_html=pop, call_id=call["call"] if call else "", reasons=PAUSE_REASONS,
                         **{"notice": notice, **extra})

    def choose(self) -> str:
        ext = (request.forms.getunicode("extension") or "").strip()
        if ext not in {e.number for e in self.admin.api.extensions()}:
            return self.panel(400, errors={"extension": "pick your extension from the list"})
        self.contacts.set_extension(self.admin.session.username, ext)
        self.admin._audit(f"chose extension {ext} for the agent panel")
        raise bottle.redirect("/agent", 303)

    def act(self, verb: str) -> str:
        a = self.admin
        desk = self.contacts.desk(a.session.username)
        if desk is None:
            return self.panel(400, errors={"extension": "pick your extension first"})
        reason = ""
        if verb == "pause":
            try:
                reason = check_pause_reason(request.forms.getunicode("reason"))
            except Problems as exc:
                return self.panel(400, errors=exc.errors, form={"reason": request.forms.getunicode("reason") or ""})
        try:
            a.api.agent(desk.extension, verb, reason)
        except Invalid as exc:
            message = exc.errors.get("box") or str(exc)
            return self.panel(409, errors={"action": f"The box refused: {message}."},
                              form={"reason": reason})
        except BoxUnreachable as exc:
            return self.panel(503, errors={"action": f"The box does not answer: {exc}"}, form={"reason": reason})
        a._audit(f"agent {desk.extension}: {verb}" + (f" ({reason})" if reason else "") + " from the agent panel")
        raise bottle.redirect(f"/agent?done={verb}", 303)

    def note(self, call_id: str) -> str:
        """The disposition (and note) of a call this panel popped: its last call, or one it
        noted before (a correction)."""
        a = self.admin
        desk = self.contacts.desk(a.session.username)
        before = self.contacts.call_note(call_id)
        if desk is not None and desk.last_call == call_id:
            number = desk.last_caller or ""
        elif desk is not None and before is not None:
            number = before.number
        else:
            bottle.abort(404, "That call is not one of your panel's calls.")
        form = {"disposition": request.forms.getunicode("disposition") or "",
                "note": request.forms.getunicode("note") or ""}
        try:
            fields = check_note(form)
        except Problems as exc:
            return self.panel(400, pop_errors=exc.errors, pop_form=form)
        self.contacts.note_call(call_id, number, desk.extension, fields, a.session.username, a.clock())
        a._audit(f"noted call {call_id} from {number or 'unknown'}: {fields['disposition']}")
        raise bottle.redirect("/agent?done=saved", 303)

    def events(self) -> Iterator[str]:
        a = self.admin
        if not a._sse.acquire(blocking=False):
            bottle.abort(503, "Too many live pages are open; close one.")
        token = request.environ["webui.token"]
        shown = request.query.getunicode("call") or None
        response.content_type = "text/event-stream"
        response.set_header("Cache-Control", "no-store")
        response.set_header("X-Accel-Buffering", "no")
        return self._stream(token, shown)

    def _stream(self, token: str, shown: str | None) -> Iterator[str]:
        a = self.admin
        try:
            yield "retry: 3000\n\n"
            while not a.stopping.is_set():
                sess = a.db.session(token, a.clock(), idle=a.cfg.session_idle, lifetime=a.cfg.session_lifetime,
                                    touch=False)
                if sess is None:
                    return
                desk = self.contacts.desk(sess.username)
                ext = desk.extension if desk else None
                snap = self.board.snapshot()
                out = _sse_event("agent_state", self.state(ext, snap))
                call = current_call(snap, ext) if ext else None
                if call is not None and call["call"] != shown:
                    # A new call at the desk: pop its caller's record, once.
                    self.contacts.set_last_call(sess.username, call["call"], call["caller"], call["queue"], a.clock())
                    out += _sse_event("agent_pop", self.pop(call, sess.csrf))
                    shown = call["call"]
                yield out
                a.stopping.wait(a.cfg.sse_interval)
        finally:
            a._sse.release()

    # --- contacts ----------------------------------------------------------------------------

    def contact_list(self, status: int = 200, **extra: Any) -> str:
        q = (request.query.getunicode("q") or "").strip()
        ctx: dict[str, Any] = {"q": q, "rows": self.contacts.contacts(q), "crm": self.crm_template(),
                               "form": {"number": request.query.getunicode("number") or ""}}
        ctx.update(extra)
        return self.admin._render("agent_contacts", status, **ctx)

    def add_contact(self) -> str:
        form = {k: request.forms.getunicode(k) or "" for k in ("number", "name", "company", "notes")}
        try:
            fields = check_contact(form)
            cid = self.contacts.save_contact(fields, self.admin.clock())
        except Problems as exc:
            return self.contact_list(400, form=form, errors=exc.errors)
        self.admin._audit(f"added contact {fields['number']} ({fields['name']})")
        raise bottle.redirect(f"/contacts/{cid}?saved=1", 303)

    def contact_page(self, cid: int, status: int = 200, **extra: Any) -> str:
        c = self.contacts.contact(cid)
        if c is None:
            bottle.abort(404, "There is no such contact.")
        ctx: dict[str, Any] = {"c": c, "form": {"number": c.number, "name": c.name, "company": c.company,
                                                "notes": c.notes},
                               "rows": self.history(c.number), "crm": crm_link(self.crm_template(), c.number),
                               "notice": "Saved." if request.query.get("saved") else None, "short_when": short_when}
        ctx.update(extra)
        return self.admin._render("agent_contact", status, **ctx)

    def save_contact(self, cid: int) -> str:
        before = self.contacts.contact(cid)
        if before is None:
            bottle.abort(404, "There is no such contact.")
        form = {k: request.forms.getunicode(k) or "" for k in ("number", "name", "company", "notes")}
        try:
            fields = check_contact(form)
            self.contacts.save_contact(fields, self.admin.clock(), cid)
        except Problems as exc:
            return self.contact_page(cid, 400, form=form, errors=exc.errors,
                                     notice="Nothing was changed: fix the fields marked below.")
        changed = [k for k in ("number", "name", "company", "notes") if getattr(before, k) != fields[k]]
        self.admin._audit(f"edited contact {fields['number']} ({fields['name']}): "
                          + (", ".join(changed) if changed else "no change"))
        raise bottle.redirect(f"/contacts/{cid}?saved=1", 303)

    def remove_contact(self, cid: int) -> None:
        c = self.contacts.contact(cid)
        if c is None or not self.contacts.remove_contact(cid):
            bottle.abort(404, "There is no such contact.")
        self.admin._audit(f"removed contact {c.number} ({c.name})")
        raise bottle.redirect("/contacts", 303)

    def save_crm(self) -> str:
        text = request.forms.getunicode("crm_url") or ""
        try:
            url = check_crm_template(text)
        except Problems as exc:
            return self.contact_list(400, errors=exc.errors, crm=text)
        self.admin.db.put(CRM_KEY, url)
        self.admin._audit(f"set the CRM link template to {url}" if url else "removed the CRM link template")
        return self.contact_list(notice="CRM link saved." if url else "CRM link removed.")


def install(admin: Any) -> None:
    p = AgentPages(admin)
    app = admin.app
    app.get("/agent", callback=lambda: p.panel())
    app.post("/agent/desk", callback=p.choose)
    for verb in ("login", "logout", "pause", "unpause"):
        app.post(f"/agent/{verb}", callback=lambda verb=verb: p.act(verb))
    app.post("/agent/calls/<call_id>/note", callback=p.note)
    app.get("/events/agent", callback=p.events)
    app.get("/contacts", callback=lambda: p.contact_list())
    app.post("/contacts", callback=p.add_contact)
    app.post("/contacts/crm", callback=p.save_crm)
    app.get("/contacts/<cid:int>", callback=lambda cid: p.contact_page(cid))
    app.post("/contacts/<cid:int>", callback=p.save_contact)
    app.post("/contacts/<cid:int>/remove", callback=p.remove_contact)


__all__ = ["NAV", "install", "current_call", "my_queues", "clock"]
