"""Validation of IVR menus and time conditions as a configuration document.

``validate(document, ...)`` returns every problem as a ``FieldError`` naming the path of the bad
field, the way ``linebox config import`` reports them (issue 4: an error names the path of the
bad field and changes nothing)::

    menus[main].options[1].target: no queue 'sales'
    time_conditions[office].hours[0].from: time must be HH:MM, not '8.30'

The document is ``{"menus": [...], "time_conditions": [...]}`` (lists of objects with an
``id``, or objects keyed by id). What the menus point at outside themselves is checked only
when the caller says what exists: ``phrases`` (prompt names), ``files`` (uploaded WAVs),
``extensions``, ``queues``, ``voicemail`` (mailboxes; default: the extensions). ``None`` means
"not known here, do not check".

Beyond references: option keys are single DTMF keys, numbers are positive, destinations have
the targets their kind needs, and no chain of no-input exits (a menu's timeout/fallback, a
condition's day/night) loops back on itself, since a caller who presses nothing would then
never leave.
"""

from __future__ import annotations

from typing import Any, Collection, Iterable, Mapping

from firmware.schema import FieldError

from .menu import DTMF_KEYS, GOTO_KINDS, ROUTE_KINDS
from .timecond import TimeCondition, parse_time_condition

__all__ = ["DocumentError", "validate", "check"]

MENU_FIELDS = frozenset({"id", "name", "greeting", "options", "timeout", "retries", "invalid", "on_timeout",
                         "fallback", "dial_by_extension", "inter_digit_timeout"})
DEST_FIELDS = frozenset({"goto", "target", "extension_prefix", "reason"})
NEEDS_TARGET = ROUTE_KINDS | {"menu"}


class DocumentError(ValueError):
    """A document failed validation; ``errors`` lists every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def check(document: Mapping[str, Any], **known: Any) -> None:
    """Raises DocumentError when ``validate`` finds anything."""
    errors = validate(document, **known)
    if errors:
        raise DocumentError(errors)


def _entries(container: Any, path: str, errors: list[FieldError]) -> list[tuple[str, str, Any]]:
    """(label for the path, id, document) for a list of {id, ...} or a mapping id -> document."""
    out: list[tuple[str, str, Any]] = []
    if container is None:
        return out
    if isinstance(container, Mapping):
        for key, doc in container.items():
            if isinstance(doc, Mapping) and "id" in doc and str(doc["id"]) != str(key):
                errors.append(FieldError(f"{path}[{key}].id", f"id {doc['id']!r} differs from its key {key!r}"))
            out.append((str(key), str(key), doc))
    elif isinstance(container, list):
        seen: set[str] = set()
        for i, doc in enumerate(container):
            ident = doc.get("id") if isinstance(doc, Mapping) else None
            if not isinstance(ident, str) or not ident:
                errors.append(FieldError(f"{path}[{i}].id", "missing id (a non-empty text)"))
                continue
            if ident in seen:
                errors.append(FieldError(f"{path}[{ident}].id", f"duplicate id {ident!r}"))
                continue
            seen.add(ident)
            out.append((ident, ident, doc))
    else:
        errors.append(FieldError(path, "a list of objects with an id, or an object keyed by id"))
    return out


class _Validator:
    def __init__(self, menus: set[str], conditions: set[str], phrases: Collection[str] | None,
                 files: Collection[str] | None, extensions: Collection[str] | None,
                 queues: Collection[str] | None, voicemail: Collection[str] | None) -> None:
        self.menus = menus
        self.conditions = conditions
        self.phrases = phrases
        self.files = files
        self.known = {"extension": extensions, "queue": queues, "voicemail": voicemail,
                      "menu": menus, "condition": conditions}
        self.errors: list[FieldError] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def prompts(self, items: Any, path: str) -> None:
        if not isinstance(items, list):
            self.err(path, "a list of prompt names, {say: text} or {file: name}")
            return
        for i, item in enumerate(items):
            p = f"{path}[{i}]"
            if isinstance(item, str):
                if self.phrases is not None and item not in self.phrases:
                    self.err(p, f"no prompt {item!r} in the phrase table")
            elif isinstance(item, Mapping) and set(item) == {"say"}:
                if not isinstance(item["say"], str) or not item["say"].strip():
                    self.err(f"{p}.say", "text to speak must not be empty")
            elif isinstance(item, Mapping) and set(item) == {"file"}:
                name = item["file"]
                if not isinstance(name, str) or not name:
                    self.err(f"{p}.file", "a file name")
                elif self.files is not None and name not in self.files:
                    self.err(f"{p}.file", f"no uploaded file {name!r}")
            else:
                self.err(p, "a prompt is a name, {say: text} or {file: name}")

    def number(self, doc: Mapping, key: str, path: str, *, integer: bool = False, zero: bool = False) -> None:
        if key not in doc:
            return
        v = doc[key]
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or v < 0 or (v == 0 and not zero):
            kind = "a whole number" if integer else "a number of seconds"
            self.err(f"{path}.{key}", f"must be {kind} {'>= 0' if zero else '> 0'}, not {v!r}")

    def destination(self, doc: Any, path: str, *, option_key: str | None = None,
                    in_menu: bool = True, dial_by_extension: bool = False) -> None:
        if not isinstance(doc, Mapping):
            self.err(path, "a destination is {goto, target}")
            return
        for key in doc:
            if key not in DEST_FIELDS:
                self.err(f"{path}.{key}", f"unknown field (known: {', '.join(sorted(DEST_FIELDS))})")
        goto = doc.get("goto")
        allowed = GOTO_KINDS if in_menu else GOTO_KINDS - {"back", "repeat"}
        if goto not in allowed:
            self.err(f"{path}.goto", f"unknown destination {goto!r} (one of: {', '.join(sorted(allowed))})")
            return
        target = doc.get("target")
        if goto in NEEDS_TARGET:
            if not isinstance(target, str) or not target:
                self.err(f"{path}.target", f"'{goto}' needs a target")
            else:
                known = self.known[goto]
                if known is not None and target not in known:
                    self.err(f"{path}.target", f"no {goto} {target!r}")
        elif target is not None:
            self.err(f"{path}.target", f"'{goto}' takes no target")
        if doc.get("extension_prefix"):
            if option_key is None:
                self.err(f"{path}.extension_prefix", "only an option can mark an extension prefix")
            elif not option_key.isdigit():
                self.err(f"{path}.extension_prefix", f"key {option_key!r} cannot begin an extension number")
            elif not dial_by_extension:
                self.err(f"{path}.extension_prefix", "the menu does not have dial_by_extension")
        if "reason" in doc and (goto != "hangup" or not isinstance(doc["reason"], str)):
            self.err(f"{path}.reason", "a reason (text) belongs to a hangup only")

    def menu(self, doc: Any, path: str) -> None:
        if not isinstance(doc, Mapping):
            self.err(path, "a menu is an object")
            return
        for key in doc:
            if key not in MENU_FIELDS:
                self.err(f"{path}.{key}", f"unknown field (known: {', '.join(sorted(MENU_FIELDS))})")
        self.prompts(doc.get("greeting", []), f"{path}.greeting")
        if "invalid" in doc:
            self.prompts(doc["invalid"], f"{path}.invalid")
        self.number(doc, "timeout", path)
        self.number(doc, "inter_digit_timeout", path)
        self.number(doc, "retries", path, integer=True, zero=True)
        dial = doc.get("dial_by_extension", False)
        if not isinstance(dial, bool):
            self.err(f"{path}.dial_by_extension", f"true or false, not {dial!r}")
            dial = False
        if dial and self.known["extension"] is not None and not self.known["extension"]:
            self.err(f"{path}.dial_by_extension", "there are no extensions to dial")
        options = doc.get("options", {})
        if not isinstance(options, Mapping):
            self.err(f"{path}.options", "an object of key -> destination")
            options = {}
        for key, dest in options.items():
            p = f"{path}.options[{key}]"
            if not isinstance(key, str) or len(key) != 1 or key not in DTMF_KEYS:
                self.err(p, f"option keys are single DTMF keys (0-9, *, #, A-D), not {key!r}")
                continue
            self.destination(dest, p, option_key=key, dial_by_extension=dial)
        if not options and not dial:
            self.err(f"{path}.options", "a menu needs options or dial_by_extension")
        for key in ("on_timeout", "fallback"):
            if doc.get(key) is not None:
                self.destination(doc[key], f"{path}.{key}")
                if isinstance(doc[key], Mapping) and doc[key].get("goto") == "repeat":
                    self.err(f"{path}.{key}.goto", "'repeat' without input loops forever; "
                                                  "send the caller somewhere")


def ids(document: Mapping[str, Any], key: str) -> set[str]:
    """The ids of the menus (key "menus") or time conditions (key "time_conditions")."""
    return {ident for _, ident, _ in _entries(document.get(key), key, [])}


def said_texts(document: Mapping[str, Any]) -> list[str]:
    """Every {"say": text} in the menus' prompts, each once, to render when the document is applied."""
    texts: list[str] = []
    for _, _, menu in _entries(document.get("menus"), "menus", []):
        if not isinstance(menu, Mapping):
            continue
        for key in ("greeting", "invalid"):
            for item in menu.get(key) or []:
                if isinstance(item, Mapping) and isinstance(item.get("say"), str) and item["say"] not in texts:
                    texts.append(item["say"])
    return texts


def load_conditions(document: Mapping[str, Any]) -> dict[str, TimeCondition]:
    """The time conditions of a validated document, by id."""
    return {ident: TimeCondition.from_document(doc, f"time_conditions[{ident}]")
            for _, ident, doc in _entries(document.get("time_conditions"), "time_conditions", [])}


def validate(document: Mapping[str, Any], *, phrases: Collection[str] | None = None,
             files: Collection[str] | None = None, extensions: Collection[str] | None = None,
             queues: Collection[str] | None = None, voicemail: Collection[str] | None = None) -> list[FieldError]:
    """Every problem in the menus and time conditions of ``document``, each with its path."""
    errors: list[FieldError] = []
    if not isinstance(document, Mapping):
        return [FieldError("", "the document is an object with menus and time_conditions")]
    menus = _entries(document.get("menus"), "menus", errors)
    conditions = _entries(document.get("time_conditions"), "time_conditions", errors)
    v = _Validator({m[1] for m in menus}, {c[1] for c in conditions}, phrases, files, extensions, queues,
                   voicemail if voicemail is not None else extensions)
    v.errors = errors
    for label, _, doc in menus:
        v.menu(doc, f"menus[{label}]")
    for label, _, doc in conditions:
        path = f"time_conditions[{label}]"
        _, cond_errors = parse_time_condition(doc, path)
        errors.extend(FieldError(p, m) for p, m in cond_errors)
        if isinstance(doc, Mapping):
            for key in ("day", "night"):
                if key not in doc:
                    errors.append(FieldError(f"{path}.{key}", "missing destination"))
                elif isinstance(doc[key], Mapping):
                    v.destination(doc[key], f"{path}.{key}", in_menu=False)
    errors.extend(_no_input_loops(menus, conditions))
    return errors


def _no_input_loops(menus: Iterable[tuple[str, str, Any]],
                    conditions: Iterable[tuple[str, str, Any]]) -> list[FieldError]:
    """Cycles a caller who presses nothing would go round forever."""
    edges: dict[tuple[str, str], list[tuple[tuple[str, str], str]]] = {}

    def edge(src: tuple[str, str], dest: Any, path: str) -> None:
        if isinstance(dest, Mapping) and dest.get("goto") in ("menu", "condition") \
                and isinstance(dest.get("target"), str):
            edges.setdefault(src, []).append(((dest["goto"], dest["target"]), path))

    for label, ident, doc in menus:
        if not isinstance(doc, Mapping):
            continue
        # On timeout the session leaves by on_timeout if set, else fallback.
        key = "on_timeout" if doc.get("on_timeout") is not None else "fallback"
        edge(("menu", ident), doc.get(key), f"menus[{label}].{key}.target")
    for label, ident, doc in conditions:
        if isinstance(doc, Mapping):
            for key in ("day", "night"):
                edge(("condition", ident), doc.get(key), f"time_conditions[{label}].{key}.target")

    errors: list[FieldError] = []
    state: dict[tuple[str, str], int] = {}  # 1 on the path, 2 done
    trail: list[tuple[str, str]] = []

    def visit(node: tuple[str, str]) -> None:
        state[node] = 1
        trail.append(node)
        for nxt, path in edges.get(node, []):
            if state.get(nxt) == 1:
                loop = trail[trail.index(nxt):] + [nxt]
                names = " -> ".join(f"{kind} {ident}" for kind, ident in loop)
                errors.append(FieldError(path, f"loops without input ({names}); a caller who presses "
                                               "nothing never leaves"))
            elif nxt not in state:
                visit(nxt)
        trail.pop()
        state[node] = 2

    for node in list(edges):
        if node not in state:
            visit(node)
    return errors
