"""Outbound routes: which outside line a dialled number leaves on, and what is sent down it.

The ``routes`` configuration document is a list, tried in order; the first route whose
pattern matches the whole number dialled takes the call::

    [{"name": "emergency", "pattern": "911", "lines": ["fxo1"]},
     {"name": "local", "pattern": "9NXXXXXX", "strip": 1, "lines": ["fxo2", "fxo1"]},
     {"name": "anything else", "pattern": "9X.", "strip": 1}]

Patterns are written the way PBX installers already know them (Asterisk, FreePBX): digits,
``*`` and ``#`` stand for themselves, ``X`` is any digit, ``Z`` 1-9, ``N`` 2-9, ``[1-5]`` or
``[147]`` one of a set, and a final ``.`` one or more further digits. ``strip`` drops that many
leading digits, ``prepend`` is put in front; ``lines`` are the FXO ports to try, in order (left
out: every FXO line). An empty document means one route: ``analog.trunk_prefix`` followed by
anything, the prefix stripped, on any line.

Numbers the box owns (extensions, IVRs, queues, feature codes) are never routed out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from firmware.schema import FieldError

FIELDS = ("name", "pattern", "strip", "prepend", "lines")
_TOKEN = re.compile(r"[0-9*#XZN]|\[[0-9](?:-[0-9])?(?:[0-9](?:-[0-9])?)*\]")
_CLASSES = {"X": "0123456789", "Z": "123456789", "N": "23456789"}
_DIALLED = re.compile(r"[0-9*#]{1,40}")


class PatternError(ValueError):
    pass


@dataclass(frozen=True)
class Pattern:
    """A compiled dial pattern: the set of characters each position accepts."""
    text: str
    positions: tuple[frozenset[str], ...]
    open_ended: bool   # a final "." : one or more further digits

    @classmethod
    def parse(cls, text: str) -> "Pattern":
        body, open_ended = (text[:-1], True) if text.endswith(".") else (text, False)
        positions: list[frozenset[str]] = []
        at = 0
        while at < len(body):
            m = _TOKEN.match(body, at)
            if m is None:
                raise PatternError(f"{body[at]!r} at position {at + 1} is not a digit, *, #, X, Z, N, "
                                   f"[set] or a final '.'")
            positions.append(frozenset(_chars(m.group())))
            at = m.end()
        if not positions:
            raise PatternError("empty: give at least one digit or X, Z, N")
        return cls(text, tuple(positions), open_ended)

    def matches(self, number: str) -> bool:
        n = len(self.positions)
        if self.open_ended:
            return len(number) > n and self._fits(number[:n]) and number[n:].isdigit()
        return len(number) == n and self._fits(number)

    def could_grow_into(self, number: str) -> bool:
        """True when more digits after ``number`` could still make it match."""
        n = len(self.positions)
        if len(number) < n:
            return self._fits(number)
        return self.open_ended and self._fits(number[:n]) and (number[n:].isdigit() or number[n:] == "")

    def _fits(self, digits: str) -> bool:
        return all(c in allowed for c, allowed in zip(digits, self.positions))


def _chars(token: str) -> str:
    if token in _CLASSES:
        return _CLASSES[token]
    if not token.startswith("["):
        return token
    out, body, i = "", token[1:-1], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            out += "".join(chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            out += body[i]
            i += 1
    return out


@dataclass(frozen=True)
class Route:
    name: str
    pattern: Pattern
    strip: int = 0
    prepend: str = ""
    lines: tuple[str, ...] = ()   # () : any FXO line

    def outside(self, number: str) -> str:
        """What is dialled on the line for ``number``."""
        return self.prepend + number[self.strip:]


class Routes:
    """The routes in force, in order."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)

    @classmethod
    def from_document(cls, doc: Any, trunk_prefix: str) -> "Routes":
        """The routes of a validated ``routes`` document; none: the trunk-prefix route."""
        if not doc:
            if not trunk_prefix:
                return cls(())
            return cls([Route("outside", Pattern.parse(trunk_prefix + "X."), strip=len(trunk_prefix))])
        return cls(Route(str(r.get("name") or r["pattern"]), Pattern.parse(r["pattern"]),
                         int(r.get("strip", 0)), str(r.get("prepend", "")), tuple(r.get("lines", ())))
                   for r in doc)

    def match(self, number: str) -> Route | None:
        return next((r for r in self.routes if r.pattern.matches(number)), None)

    def verdict(self, number: str, final: bool = False) -> bool | None:
        """For a dial plan (board.fxs.DialPlan): True when ``number`` matches a route and no
        route could take more digits, None when more could still match, False when no route
        can. ``final``: the caller stopped dialling; True or False only."""
        if not final and any(r.pattern.could_grow_into(number) for r in self.routes):
            return None
        return self.match(number) is not None


def validate_routes(doc: Any, *, trunks: set[str] | None) -> list[FieldError]:
    """Every problem of a ``routes`` document, with paths like ``routes[1].pattern``.
    ``trunks``: the FXO ports the ports document configures (None: not checked)."""
    if doc is None:
        return []
    if not isinstance(doc, list):
        return [FieldError("routes", 'a list of {"pattern": ..., "strip": N, "prepend": ..., "lines": [...]}')]
    errors: list[FieldError] = []
    for i, route in enumerate(doc):
        path = f"routes[{i}]"
        if not isinstance(route, Mapping):
            errors.append(FieldError(path, 'an object like {"pattern": "9X.", "strip": 1}'))
            continue
        errors += [FieldError(f"{path}.{k}", f"unknown; known: {', '.join(FIELDS)}") for k in route if k not in FIELDS]
        name = route.get("name", "")
        if not isinstance(name, str) or len(name) > 40 or any(c in name for c in '"<>\r\n'):
            errors.append(FieldError(f"{path}.name", "up to 40 characters, no quotes, angle brackets or line breaks"))
        pattern = route.get("pattern")
        fixed = 0
        if not isinstance(pattern, str):
            errors.append(FieldError(f"{path}.pattern", 'a dial pattern like "9NXXXXXX" or "00X."'))
        else:
            try:
                fixed = len(Pattern.parse(pattern).positions)
            except PatternError as exc:
                errors.append(FieldError(f"{path}.pattern", str(exc)))
        strip = route.get("strip", 0)
        if type(strip) is not int or strip < 0 or (fixed and strip > fixed):
            errors.append(FieldError(f"{path}.strip", f"a whole number of leading digits to drop, 0-{fixed or 'the pattern length'}"))
        prepend = route.get("prepend", "")
        if not isinstance(prepend, str) or (prepend and not _DIALLED.fullmatch(prepend)) or len(prepend) > 20:
            errors.append(FieldError(f"{path}.prepend", "digits, * or # to put in front (up to 20)"))
        lines = route.get("lines", [])
        if not isinstance(lines, list) or not all(isinstance(n, str) for n in lines):
            errors.append(FieldError(f"{path}.lines", 'a list of FXO port names, e.g. ["fxo1", "fxo2"]'))
        elif trunks is not None:
            for n in lines:
                if n not in trunks:
                    known = ", ".join(sorted(trunks)) or "none yet: give a port an inbound destination first"
                    errors.append(FieldError(f"{path}.lines", f"{n!r} is no configured FXO line (configured: {known})"))
            if len(set(lines)) != len(lines):
                errors.append(FieldError(f"{path}.lines", "a line appears twice"))
    return errors


def trunks_of(ports: Any) -> set[str]:
    """The FXO lines a ``ports`` document configures (those with an inbound destination)."""
    if not isinstance(ports, Mapping):
        return set()
    return {str(n) for n, spec in ports.items() if isinstance(spec, Mapping) and "inbound" in spec}
