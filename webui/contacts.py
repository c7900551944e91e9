"""The agent panel's own store in webui.db: contacts (the caller's record a screen pop shows),
what agents noted about calls (a disposition and a note, keyed by the box's call id, which is
also the CDR id), and which extension each web user sits at.

Web-only data, like the rest of webui.db: the box never reads it. Its own sqlite connection and
tables (created if missing, so webdb's migrations and ``user_version`` stay untouched); WAL and a
busy timeout let it share the file with :class:`webui.webdb.WebDb`.

Validation lives here too (``check_contact``, ``check_note``, ``check_crm_template``...): each
raises :class:`Problems` keyed by form field, so a page shows every message next to its field
and stores nothing.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote

DB_NAME = "webui.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, number TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    company TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '', updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS call_notes (
    call_id TEXT PRIMARY KEY, number TEXT NOT NULL, agent TEXT NOT NULL, disposition TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '', who TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS call_notes_number ON call_notes (number, at);
CREATE TABLE IF NOT EXISTS agent_desks (
    username TEXT PRIMARY KEY, extension TEXT NOT NULL, last_call TEXT, last_caller TEXT,
    last_queue TEXT, last_at REAL);
"""

DISPOSITIONS = ("resolved", "follow-up needed", "sale", "no sale", "complaint", "wrong number", "other")
# Pause reasons an agent picks from (the phone's *53 takes a digit code instead); free text
# within PAUSE_REASON is accepted too, so a site can use its own words.
PAUSE_REASONS = ("break", "lunch", "meeting", "training", "after-call work")
PAUSE_REASON = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,23}")
NUMBER = re.compile(r"\+?[0-9*#]{2,20}")
MAX_NAME, MAX_NOTES, MAX_NOTE, MAX_URL = 64, 2000, 1000, 300


class Problems(ValueError):
    """What is wrong with a form, by field name; nothing was stored."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Contact:
    id: int
    number: str
    name: str
    company: str
    notes: str
    updated: float


@dataclass(frozen=True)
class CallNote:
    call_id: str
    number: str
    agent: str
    disposition: str
    note: str
    who: str
    at: float


@dataclass(frozen=True)
class Desk:
    """Which extension a web user is, and the last queue call that rang it (the pop to show)."""
    username: str
    extension: str
    last_call: str | None
    last_caller: str | None
    last_queue: str | None
    last_at: float | None


def normal_number(text: str) -> str:
    """A phone number as the box shows callers: digits (and * #), a leading + kept; spaces,
    dashes, dots and brackets people type dropped."""
    text = (text or "").strip()
    plus = text.startswith("+")
    digits = re.sub(r"[\s().\-/]", "", text.lstrip("+"))
    return ("+" if plus else "") + digits


def _text(value: str | None) -> str:
    return (value or "").strip()


def check_contact(form: Mapping[str, str]) -> dict[str, str]:
    """The cleaned contact fields, or Problems keyed number / name / company / notes."""
    errors: dict[str, str] = {}
    number = normal_number(form.get("number", ""))
    if not NUMBER.fullmatch(number):
        errors["number"] = "a phone number: 2 to 20 digits, may start with + (spaces and dashes are ignored)"
    name, company, notes = _text(form.get("name")), _text(form.get("company")), _text(form.get("notes"))
    if not name:
        errors["name"] = "a name is needed"
    elif len(name) > MAX_NAME:
        errors["name"] = f"at most {MAX_NAME} characters"
    if len(company) > MAX_NAME:
        errors["company"] = f"at most {MAX_NAME} characters"
    if len(notes) > MAX_NOTES:
        errors["notes"] = f"at most {MAX_NOTES} characters"
    for key, value in (("name", name), ("company", company)):
        if key not in errors and any(ord(c) < 32 for c in value):
            errors[key] = "no control characters or line breaks"
    if errors:
        raise Problems(errors)
    return {"number": number, "name": name, "company": company, "notes": notes}


def check_note(form: Mapping[str, str]) -> dict[str, str]:
    disposition, note = _text(form.get("disposition")), _text(form.get("note"))
    errors = {}
    if disposition not in DISPOSITIONS:
        errors["disposition"] = "pick how the call ended: " + ", ".join(DISPOSITIONS)
    if len(note) > MAX_NOTE:
        errors["note"] = f"at most {MAX_NOTE} characters"
    if errors:
        raise Problems(errors)
    return {"disposition": disposition, "note": note}


def check_pause_reason(text: str | None) -> str:
    reason = _text(text)
    if not reason:
        raise Problems({"reason": "say why you pause (e.g. " + ", ".join(PAUSE_REASONS[:3]) + ")"})
    if not PAUSE_REASON.fullmatch(reason):
        raise Problems({"reason": "1 to 24 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit"})
    return reason


def check_crm_template(text: str | None) -> str:
    """'' (no CRM link) or an http(s) URL with {number} where the caller's number goes."""
    url = _text(text)
    if not url:
        return ""
    if len(url) > MAX_URL:
        raise Problems({"crm_url": f"at most {MAX_URL} characters"})
    if not re.fullmatch(r"https?://[^\s\"'<>`]+", url):
        raise Problems({"crm_url": "an http:// or https:// address without spaces or quotes"})
    if "{number}" not in url:
        raise Problems({"crm_url": "put {number} where the caller's number goes, e.g. https://crm.example/search?q={number}"})
    if re.search(r"\{(?!number\})", url):
        raise Problems({"crm_url": "{number} is the only placeholder"})
    return url


def crm_link(template: str, number: str) -> str | None:
    return template.replace("{number}", quote(number, safe="+")) if template and number else None


class ContactsDb:
    def __init__(self, data: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.path = data / DB_NAME
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        with self._lock:
            self._conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # --- contacts --------------------------------------------------------------------------------

    def contacts(self, search: str = "") -> list[Contact]:
        like = f"%{search.strip()}%"
        rows = self._q("SELECT id, number, name, company, notes, updated FROM contacts"
                       " WHERE number LIKE ? OR name LIKE ? OR company LIKE ? ORDER BY name COLLATE NOCASE, number",
                       (like, like, like))
        return [Contact(*r) for r in rows]

    def contact(self, contact_id: int) -> Contact | None:
        rows = self._q("SELECT id, number, name, company, notes, updated FROM contacts WHERE id = ?", (contact_id,))
        return Contact(*rows[0]) if rows else None

    def by_number(self, number: str) -> Contact | None:
        number = normal_number(number)
        rows = self._q("SELECT id, number, name, company, notes, updated FROM contacts WHERE number = ?", (number,))
        return Contact(*rows[0]) if rows else None

    def names(self, numbers: Iterable[str]) -> dict[str, str]:
        wanted = sorted({normal_number(n) for n in numbers if n})
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        return dict(self._q(f"SELECT number, name FROM contacts WHERE number IN ({marks})", tuple(wanted)))

    def save_contact(self, fields: Mapping[str, str], now: float, contact_id: int | None = None) -> int:
        """Adds (``contact_id`` None) or replaces a contact; Problems if its number is taken."""
        try:
            with self._lock:
                if contact_id is None:
                    cur = self._conn.execute(
                        "INSERT INTO contacts (number, name, company, notes, updated) VALUES (?, ?, ?, ?, ?)",
                        (fields["number"], fields["name"], fields["company"], fields["notes"], now))
                    return int(cur.lastrowid)
                cur = self._conn.execute(
                    "UPDATE contacts SET number = ?, name = ?, company = ?, notes = ?, updated = ? WHERE id = ?",
                    (fields["number"], fields["name"], fields["company"], fields["notes"], now, contact_id))
                if cur.rowcount != 1:
                    raise Problems({"form": "this contact was removed meanwhile"})
                return contact_id
        except sqlite3.IntegrityError:
            raise Problems({"number": f"{fields['number']} is already another contact's number"}) from None

    def remove_contact(self, contact_id: int) -> bool:
        return bool(self._q("DELETE FROM contacts WHERE id = ? RETURNING id", (contact_id,)))

    # --- what agents noted about calls -----------------------------------------------------------

    def note_call(self, call_id: str, number: str, agent: str, fields: Mapping[str, str], who: str, now: float) -> None:
        """One disposition per call; noting it again replaces it (the agent corrected it)."""
        self._q("INSERT INTO call_notes (call_id, number, agent, disposition, note, who, at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (call_id) DO UPDATE SET disposition = excluded.disposition, note = excluded.note,"
                " who = excluded.who, at = excluded.at, agent = excluded.agent",
                (call_id, normal_number(number), agent, fields["disposition"], fields["note"], who, now))

    def call_notes(self, number: str) -> dict[str, CallNote]:
        rows = self._q("SELECT call_id, number, agent, disposition, note, who, at FROM call_notes WHERE number = ?",
                       (normal_number(number),))
        return {r[0]: CallNote(*r) for r in rows}

    def call_note(self, call_id: str) -> CallNote | None:
        rows = self._q("SELECT call_id, number, agent, disposition, note, who, at FROM call_notes WHERE call_id = ?",
                       (call_id,))
        return CallNote(*rows[0]) if rows else None

    # --- which extension a web user is -----------------------------------------------------------

    def desk(self, username: str) -> Desk | None:
        rows = self._q("SELECT username, extension, last_call, last_caller, last_queue, last_at FROM agent_desks"
                       " WHERE username = ?", (username,))
        return Desk(*rows[0]) if rows else None

    def set_extension(self, username: str, extension: str) -> None:
        self._q("INSERT INTO agent_desks (username, extension) VALUES (?, ?) ON CONFLICT (username) DO UPDATE"
                " SET extension = excluded.extension, last_call = CASE WHEN agent_desks.extension = excluded.extension"
                " THEN agent_desks.last_call END", (username, extension))

    def set_last_call(self, username: str, call_id: str, caller: str, queue: str, now: float) -> None:
        self._q("UPDATE agent_desks SET last_call = ?, last_caller = ?, last_queue = ?, last_at = ? WHERE username = ?",
                (call_id, caller, queue, now, username))


__all__ = ["ContactsDb", "Contact", "CallNote", "Desk", "Problems", "DISPOSITIONS", "PAUSE_REASONS",
           "normal_number", "check_contact", "check_note", "check_pause_reason", "check_crm_template", "crm_link"]
