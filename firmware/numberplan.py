"""The number plan: every number the box answers to, who owns it, and where a call to it goes.

Features do not add branches to the call controller; they register here (STYLE.md §10). A
feature declares the numbers it answers to (an ``Entry``) and, with the PBX, the destination
kinds it handles. The same rules serve two moments:

* at configuration time, ``conflicts`` walks the ``Claim`` of every configured number (with
  the field that made it) and refuses two owners of one number, or a route pattern that would
  take one, with that field's path: the CLI, the web forms and a document import all end here;
* at call time, ``NumberPlan.resolve`` turns a dialled number into a ``Destination``, and
  ``NumberPlan.complete`` tells an analog phone's dial plan whether the digits make a number.

Precedence, in this order (``Tier``), and tested:

1. ``EXACT``: a number some feature owns outright: an extension, an IVR number, a queue's
   number, a feature code (``*43``, ``*97``). Two owners of one number are refused when the
   configuration is validated, so order does not decide among them; should a database written
   before that rule hold one anyway, the first registered wins (IVR numbers, queues, voicemail
   and feature codes, then extensions: what the box always did).
2. ``PREFIX``: a code followed by digits (``*51`` + a queue number, ``*53`` + a pause reason),
   for a number no exact owner has.
3. ``PATTERN``: outbound routes (``9NXXXXXX``), for a number nobody inside owns: an extension is
   never shadowed by a route, and a pattern that would take an inside number is refused.
4. Anything else is dialled as an extension, which answers "not found" for a number nobody has.

Pure: no I/O, no PBX; the tables an entry reads are the caller's (callables, so a live change
of configuration is seen at the next call without registering again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Callable, Collection, Iterable, Mapping, Protocol


class Tier(IntEnum):
    EXACT = 0
    PREFIX = 1
    PATTERN = 2


@dataclass(frozen=True)
class Destination:
    """Where a call goes: a kind some feature handles, and what it needs to know.

    ``target``: the extension, menu, queue or mailbox; the number to send out for a route.
    ``arg``: the digits after a prefix code. ``lines``: a route's lines, in hunt order.
    """

    kind: str
    target: str | None = None
    arg: str = ""
    lines: tuple[str, ...] = ()


class Entry(Protocol):
    """What a feature registers: numbers (or codes, or patterns) and where each leads."""

    tier: Tier

    def numbers(self) -> Iterable[str]:
        """The numbers (EXACT) or bare codes (PREFIX) dialling completes on; () for patterns."""

    def resolve(self, number: str) -> Destination | None:
        """Where ``number`` goes, if this entry owns it."""

    def verdict(self, number: str, final: bool) -> bool | None:
        """For patterns: whether ``number`` is a complete outside number (None: more digits may
        still decide); entries of the other tiers answer False."""


@dataclass
class Numbers:
    """Exact numbers from a live table: number -> destination."""

    table: Callable[[], Mapping[str, Destination]]
    tier: Tier = Tier.EXACT

    def numbers(self) -> Iterable[str]:
        return self.table().keys()

    def resolve(self, number: str) -> Destination | None:
        return self.table().get(number)

    def verdict(self, number: str, final: bool) -> bool | None:
        return False


@dataclass
class Keyed:
    """Exact numbers: the members of a live collection (the extensions, the queues' numbers),
    each leading where ``make`` says; nothing is built for the numbers not dialled."""

    keys: Callable[[], Collection[str]]
    make: Callable[[str], Destination]
    tier: Tier = Tier.EXACT

    def numbers(self) -> Iterable[str]:
        return self.keys()

    def resolve(self, number: str) -> Destination | None:
        return self.make(number) if number in self.keys() else None

    def verdict(self, number: str, final: bool) -> bool | None:
        return False


@dataclass
class Codes:
    """Codes followed by optional digits: ``*51`` alone or ``*51600``. ``make(code, digits)``
    gives the destination."""

    codes: Iterable[str]
    make: Callable[[str, str], Destination]
    tier: Tier = Tier.PREFIX

    def numbers(self) -> Iterable[str]:
        return self.codes

    def resolve(self, number: str) -> Destination | None:
        for code in self.codes:
            digits = number[len(code):]
            if number.startswith(code) and (digits == "" or digits.isdigit()):
                return self.make(code, digits)
        return None

    def verdict(self, number: str, final: bool) -> bool | None:
        return False


@dataclass
class Patterns:
    """Numbers matched by patterns (outbound routes): ``match`` gives the destination of a
    number, ``verdict`` says whether dialled digits make a complete one."""

    match: Callable[[str], Destination | None]
    verdict_of: Callable[[str, bool], bool | None]
    tier: Tier = Tier.PATTERN

    def numbers(self) -> Iterable[str]:
        return ()

    def resolve(self, number: str) -> Destination | None:
        return self.match(number)

    def verdict(self, number: str, final: bool) -> bool | None:
        return self.verdict_of(number, final)


def extension(number: str) -> Destination:
    """The last resort: dial it as an extension (which says "not found" for nobody's number)."""
    return Destination("extension", number)


@dataclass
class NumberPlan:
    """The numbers the running box answers to, as its features registered them."""

    fallback: Callable[[str], Destination] = extension
    entries: list[Entry] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.entries.sort(key=lambda e: e.tier)  # stable: registration order within a tier

    def resolve(self, number: str) -> Destination:
        for entry in self.entries:
            found = entry.resolve(number)
            if found is not None:
                return found
        return self.fallback(number)

    def numbers(self) -> set[str]:
        """Every number and bare code the box answers to (what dialling completes on)."""
        return {n for e in self.entries for n in e.numbers()}

    def complete(self, number: str, final: bool = False) -> bool | None:
        """An analog phone's dial plan (board.fxs.DialPlan): True when ``number`` is complete,
        False when it is no number, None when more digits could still make one. ``final``: the
        caller stopped dialling (the inter-digit pause)."""
        known = self.numbers()
        verdicts = [e.verdict(number, final) for e in self.entries if e.tier is Tier.PATTERN]
        outside: bool | None = None if any(v is None for v in verdicts) else any(verdicts)
        if final:
            return number in known or bool(outside)
        if outside is None or any(k.startswith(number) and k != number for k in known):
            return None  # more digits could still make another number
        return number in known or outside


# --- configuration time ----------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """A configured number (or route pattern) and the field that claims it."""

    owner: str          # what it is to a person: "extension", "IVR number", "queue", "route"
    number: str         # the number, or a route's pattern as written
    path: str           # the claiming field, e.g. "queues[support].number"
    ident: str = ""     # the thing's id, for messages (a queue's id)
    tier: Tier = Tier.EXACT
    matches: Callable[[str], bool] | None = None  # patterns: does a number fall under it


# How a number already owned is named to whoever claims it next: (claimant, owner) first, then
# the owner alone. Written as data so a new owner kind adds a line, not a branch.
_TAKEN: dict[tuple[str, str] | str, str] = {
    ("extension", "extension"): "extension {number} already exists; pick another number",
    ("IVR number", "extension"): "{number} is also an extension",
    "extension": "{number} is an extension",
    "IVR number": "{number} is already an IVR number",
    "queue": "{number} is also queue {ident!r}'s number",
}


@dataclass(frozen=True)
class Conflict:
    path: str
    message: str


def conflicts(claims: Iterable[Claim]) -> list[Conflict]:
    """Every claim on a number someone claimed before it, and every pattern that would take an
    inside number; each at the path of the later claim (or the pattern)."""
    owners: dict[str, Claim] = {}
    patterns: list[Claim] = []
    found: list[Conflict] = []
    for c in claims:
        if c.tier is Tier.PATTERN:
            patterns.append(c)
            continue
        first = owners.get(c.number)
        if first is None:
            owners[c.number] = c
            continue
        text = _TAKEN.get((c.owner, first.owner)) or _TAKEN.get(first.owner, "{number} is already a {owner}")
        found.append(Conflict(c.path, text.format(number=c.number, ident=first.ident, owner=first.owner)))
    for p in patterns:
        taken = sorted(n for n in owners if p.matches is not None and p.matches(n))
        if taken:
            first = owners[taken[0]]
            more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
            found.append(Conflict(p.path, f"{p.number} would take {first.owner} {first.number}'s number{more}; "
                                          f"an inside number never leaves on a route: give the pattern a prefix "
                                          f"(e.g. 9) or renumber"))
    return found
