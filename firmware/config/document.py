"""The box's configuration as one document: export it, validate it, apply it all or nothing.

A backup, a template for a new office, or what a web admin's "import" sends. The document is
JSON (docs/config.md describes every field). Validation runs over the whole document first and
reports each problem with the path of its field, e.g. ``extensions[2].secret: ...``; only a
document without problems is applied, in one database transaction, so a bad field changes
nothing and a good document changes everything at once while calls go on.

Secrets: the SIP secrets travel in the clear (a phone's configuration needs them back, so the
document must too: keep it safe), voicemail PINs only as their salted hashes. An imported
document may give a mailbox's PIN as digits (``"pin"``); it is hashed as it is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from firmware.acd.schema import validate_queues
from firmware.numberplan import Claim, Conflict, Tier, conflicts
from firmware.config.extensions import ExtensionError, check_number, check_secret
from firmware.ivr.schema import validate as validate_ivr
from firmware.config.settings import SETTINGS, SettingError
from firmware.prompts import language
from firmware.config.ports import validate_ports
from firmware.config.recpolicy import validate_recording_policy
from firmware.config.routes import Pattern, PatternError, trunks_of, validate_routes
from firmware.config.pins import seal_pins
from firmware.config.voicemail import mailboxes_of, validate_voicemail

VERSION = 1
SECTIONS = ("version", "extensions", "settings", "ivr", "ivr_numbers", "queues", "recording", "ports", "routes", "voicemail")
# Sections kept whole in the documents table, and what an export shows when one was never set.
DOCUMENT_SECTIONS: dict[str, Any] = {"queues": [], "recording": {"extensions": {}, "numbers": {}}, "ports": {},
                                   "routes": [], "voicemail": {"mailboxes": {}}}
# Sections holding a field that is stored in another form than it is typed in.
STORED_FORM: dict[str, Callable[[Any], Any]] = {"voicemail": seal_pins}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def validate(doc: Any, *, files: set[str] | None = None) -> list[Problem]:
    """Every problem in ``doc``, each with its path; [] means it can be applied. ``files``: the
    uploaded prompts menus may play (None: not checked)."""
    if not isinstance(doc, Mapping):
        return [Problem("", "the configuration is a JSON object (see docs/config.md)")]
    problems = [Problem(key, f"unknown section; known: {', '.join(SECTIONS)}") for key in doc if key not in SECTIONS]
    if doc.get("version") != VERSION:
        problems.append(Problem("version", f"must be {VERSION} (got {doc.get('version')!r})"))
    numbers: set[str] = set()
    exts = doc.get("extensions", [])
    if not isinstance(exts, list):
        problems.append(Problem("extensions", "a list of {number, name, secret}"))
        exts = []
    for i, ext in enumerate(exts):
        path = f"extensions[{i}]"
        if not isinstance(ext, Mapping):
            problems.append(Problem(path, "an object with number, name and secret"))
            continue
        number = str(ext.get("number", ""))
        try:
            check_number(number)
        except ExtensionError as exc:
            problems.append(Problem(f"{path}.number", str(exc)))
            continue
        numbers.add(number)
        try:
            check_secret(number, str(ext.get("secret", "")))
        except ExtensionError as exc:
            problems.append(Problem(f"{path}.secret", str(exc)))
        name = ext.get("name", "")
        if not isinstance(name, str) or len(name) > 64 or any(c in name for c in '"\r\n<>'):
            problems.append(Problem(f"{path}.name", "up to 64 characters, no quotes, angle brackets or line breaks"))
    settings = doc.get("settings", {})
    if not isinstance(settings, Mapping):
        problems.append(Problem("settings", "an object of name: value"))
        settings = {}
    for key, value in settings.items():
        setting = SETTINGS.get(key)
        if setting is None:
            problems.append(Problem(f"settings.{key}", "unknown setting (see `linebox settings`)"))
            continue
        try:
            setting.parse(str(value))
        except SettingError as exc:
            problems.append(Problem(f"settings.{key}", str(exc)))
    queues = doc.get("queues", [])
    queue_ids = {q["id"] for q in queues if isinstance(q, Mapping) and isinstance(q.get("id"), str)} \
        if isinstance(queues, list) else set()
    ivr = doc.get("ivr", {"menus": []})
    problems += [Problem(e.path, e.message) for e in validate_voicemail(doc.get("voicemail"), extensions=numbers)]
    mailboxes = mailboxes_of(doc.get("voicemail")) & numbers
    for err in validate_ivr(ivr, phrases=set(language("en").phrases), files=files, extensions=numbers, queues=queue_ids,
                            voicemail=mailboxes):
        problems.append(Problem(f"ivr.{err.path}" if err.path else "ivr", err.message))
    targets = _ids(ivr, "menus") | _ids(ivr, "time_conditions")
    ivr_numbers = doc.get("ivr_numbers", {})
    if not isinstance(ivr_numbers, Mapping):
        problems.append(Problem("ivr_numbers", "an object of number: menu or time condition"))
        ivr_numbers = {}
    for number, target in ivr_numbers.items():
        path = f"ivr_numbers.{number}"
        if target not in targets:
            problems.append(Problem(path, f"no menu or time condition {target!r}"))
    problems += [Problem(e.path, e.message) for e in validate_queues(
        queues, extensions=numbers, menus=_ids(ivr, "menus"), conditions=_ids(ivr, "time_conditions"),
        taken_numbers=set(ivr_numbers), voicemail=mailboxes)]
    queue_numbers = {q["number"] for q in queues if isinstance(q, Mapping) and isinstance(q.get("number"), str)} \
        if isinstance(queues, list) else set()
    problems += [Problem(e.path, e.message) for e in validate_recording_policy(
        doc.get("recording"), numbers, set(ivr_numbers) | queue_numbers)]
    problems += [Problem(e.path, e.message) for e in validate_ports(
        doc.get("ports"), extensions=numbers, numbers=numbers | set(ivr_numbers) | queue_numbers)]
    problems += [Problem(e.path, e.message) for e in validate_routes(doc.get("routes"), trunks=trunks_of(doc.get("ports")))]
    # Who owns which number: the number plan's one rule. A queue's claims are checked where its
    # other fields are (validate_queues, with the same rule), so they are not reported twice.
    problems += [Problem(c.path, c.message) for c in conflicts(claims(doc)) if not c.path.startswith("queues[")]
    return problems


def claims(doc: Mapping[str, Any]) -> list[Claim]:
    """Every number ``doc`` makes the box answer to, with its field, in the number plan's order
    of validation: extensions, IVR numbers, queues, then route patterns. Fields too malformed to
    name a number are left to their sections' checks."""
    out: list[Claim] = []
    exts = doc.get("extensions")
    for i, ext in enumerate(exts if isinstance(exts, list) else []):
        if isinstance(ext, Mapping) and isinstance(ext.get("number"), (str, int)):
            out.append(Claim("extension", str(ext["number"]), f"extensions[{i}].number"))
    ivr_numbers = doc.get("ivr_numbers")
    for number in ivr_numbers if isinstance(ivr_numbers, Mapping) else {}:
        out.append(Claim("IVR number", str(number), f"ivr_numbers.{number}"))
    queues = doc.get("queues")
    for q in queues if isinstance(queues, list) else []:
        if isinstance(q, Mapping) and isinstance(q.get("number"), str) and isinstance(q.get("id"), str):
            out.append(Claim("queue", q["number"], f"queues[{q['id']}].number", q["id"]))
    routes = doc.get("routes")
    for i, r in enumerate(routes if isinstance(routes, list) else []):
        try:
            pattern = Pattern.parse(r["pattern"])
        except (TypeError, KeyError, PatternError):
            continue  # validate_routes says why
        out.append(Claim("route", pattern.text, f"routes[{i}].pattern", tier=Tier.PATTERN, matches=pattern.matches))
    return out


def new_conflicts(doc: Mapping[str, Any], added: list[Claim]) -> list[Conflict]:
    """What claiming ``added`` numbers (a new extension, a new IVR number) would clash with in a
    valid configuration ``doc``: the CLI and the web ask this before they change anything."""
    before = set(conflicts(claims(doc)))
    return [c for c in conflicts([*claims(doc), *added]) if c not in before]


def _ids(ivr: Any, key: str) -> set[str]:
    from firmware.ivr.schema import ids

    return ids(ivr, key) if isinstance(ivr, Mapping) else set()


