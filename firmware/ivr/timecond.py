"""Time conditions: office hours and holidays choose between two destinations (day / night).

A condition as a document::

    {"id": "office", "timezone": "Europe/Berlin",
     "hours": [{"days": "mon-fri", "from": "08:30", "to": "17:30"},
               {"days": "sat", "from": "09:00", "to": "12:00"},
               {"days": ["fri", "sat"], "from": "22:00", "to": "06:00"}],
     "holidays": [{"date": "12-25"}, {"from": "12-31", "to": "01-01"},
                  {"date": "2025-04-18"}, {"from": "2025-08-04", "to": "2025-08-15", "name": "summer"}],
     "day": {"goto": "menu", "target": "main"}, "night": {"goto": "voicemail", "target": "1001"}}

Rules, all in the condition's local wall-clock time (zoneinfo):

* A range is open from ``from`` (inclusive) to ``to`` (exclusive); ``to`` may be ``24:00``.
  When ``to`` <= ``from`` the range runs overnight and belongs to the day it starts on
  ("fri 22:00-06:00" is Friday night into Saturday morning).
* Holidays are whole local calendar days and override the hours (closed). ``MM-DD`` recurs
  every year (a range may wrap the new year); ``YYYY-MM-DD`` is one-off; ranges include both ends.
* DST: hours follow the wall clock, so a range that starts inside the spring-forward gap opens
  at the transition, and a wall time repeated in autumn is passed twice.

``matches(dt)`` says whether it is office time; ``next_change(dt)`` when that flips (or None if
it never does within two years), so the PBX can log or announce it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

# zoneinfo (with sysconfig: 0.23 MB) is imported when a condition is built, not by every box
# and web admin that imports this module and has no time condition (scripts/bench_memory.py).

__all__ = ["Hours", "Holiday", "TimeCondition", "parse_days", "parse_clock", "parse_time_condition",
           "ConditionError"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_SECONDS = 86400
HORIZON_DAYS = 2 * 366
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_YEARLY_RE = re.compile(r"^(\d{2})-(\d{2})$")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class ConditionError(ValueError):
    """A bad time-condition document; ``errors`` holds (path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{p}: {m}" for p, m in errors))


# ------------------------------------------------------------------ parsing single fields

def parse_days(spec: str | Sequence[str]) -> frozenset[int]:
    """"mon-fri", "sat", "mon,wed,fri", "fri-mon" (wraps), "daily", or a list of those -> 0..6."""
    parts = [spec] if isinstance(spec, str) else list(spec)
    out: set[int] = set()
    for part in parts:
        if not isinstance(part, str):
            raise ValueError(f"days must be text like 'mon-fri', not {part!r}")
        for item in part.lower().replace(" ", "").split(","):
            if item in ("daily", "all", "*"):
                out.update(range(7))
                continue
            lo, _, hi = item.partition("-")
            for name in (lo, hi) if hi else (lo,):
                if name not in DAYS and name not in _DAY_NAMES:
                    raise ValueError(f"unknown day {name!r} (use mon, tue, wed, thu, fri, sat, sun)")
            a = DAYS.index(lo[:3])
            b = DAYS.index(hi[:3]) if hi else a
            d = a
            out.add(d)
            while d != b:
                d = (d + 1) % 7
                out.add(d)
    if not out:
        raise ValueError("no days given")
    return frozenset(out)


def parse_clock(spec: str, *, end: bool = False) -> int:
    """"HH:MM" or "HH:MM:SS" -> seconds after midnight; "24:00" only as an end."""
    m = _CLOCK_RE.match(spec) if isinstance(spec, str) else None
    if not m:
        raise ValueError(f"time must be HH:MM, not {spec!r}")
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    if end and (h, mi, s) == (24, 0, 0):
        return DAY_SECONDS
    if h > 23 or mi > 59 or s > 59:
        raise ValueError(f"no such time of day {spec!r}" + (" (24:00 ends a range)" if h == 24 else ""))
    return h * 3600 + mi * 60 + s


@dataclass(frozen=True)
class Hours:
    """Open on ``days`` (0=Monday) from ``start`` to ``end`` seconds after local midnight."""
    days: frozenset[int]
    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def open_at(self, weekday: int, seconds: int) -> bool:
        if not self.overnight:
            return weekday in self.days and self.start <= seconds < self.end
        return (weekday in self.days and seconds >= self.start) or \
            ((weekday - 1) % 7 in self.days and seconds < self.end)


@dataclass(frozen=True)
class Holiday:
    """A closed day or inclusive range of days; ``yearly`` ones ignore the year of start/end."""
    start: date
    end: date
    yearly: bool = False
    name: str = ""

    def covers(self, day: date) -> bool:
        if not self.yearly:
            return self.start <= day <= self.end
        key, lo, hi = (day.month, day.day), (self.start.month, self.start.day), (self.end.month, self.end.day)
        return lo <= key <= hi if lo <= hi else (key >= lo or key <= hi)


def _parse_date(spec: Any) -> tuple[date, bool]:
    if isinstance(spec, str):
        try:
            m = _YEARLY_RE.match(spec)
            if m:
                return date(2000, int(m[1]), int(m[2])), True  # 2000 is a leap year: 02-29 is fine
            m = _DATE_RE.match(spec)
            if m:
                return date(int(m[1]), int(m[2]), int(m[3])), False
        except ValueError:
            raise ValueError(f"no such date {spec!r}") from None
    raise ValueError(f"date must be MM-DD (every year) or YYYY-MM-DD, not {spec!r}")


# ------------------------------------------------------------------ the condition

def _zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


@dataclass(frozen=True)
class TimeCondition:
    hours: tuple[Hours, ...]
    holidays: tuple[Holiday, ...] = ()
    tz: ZoneInfo = field(default_factory=lambda: _zone("UTC"))
    day: Mapping[str, Any] | None = None
    night: Mapping[str, Any] | None = None
    id: str = ""

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], path: str = "time_condition") -> TimeCondition:
        cond, errors = parse_time_condition(doc, path)
        if errors or cond is None:
            raise ConditionError(errors)
        return cond

    def _local(self, when: datetime) -> datetime:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("time conditions need an aware datetime (a naive one is ambiguous)")
        return when.astimezone(self.tz)

    def is_holiday(self, day: date) -> bool:
        return any(h.covers(day) for h in self.holidays)

    def matches(self, when: datetime) -> bool:
        """True in office hours (the ``day`` destination), False at night or on a holiday."""
        local = self._local(when)
        if self.is_holiday(local.date()):
            return False
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return any(h.open_at(local.weekday(), seconds) for h in self.hours)

    def destination(self, when: datetime) -> Mapping[str, Any] | None:
        return self.day if self.matches(when) else self.night

    def next_change(self, when: datetime) -> datetime | None:
        """The first instant after ``when`` at which ``matches`` gives the other answer.

        The answer can only change where the local wall clock reaches a range edge or midnight,
        or jumps (a DST transition); those instants are the candidates, checked in order.
        The result is in the condition's zone (with ``fold`` set in the repeated autumn hour);
        Python compares and subtracts datetimes of one zone by wall clock, so do arithmetic
        on ``.astimezone(timezone.utc)``."""
        local = self._local(when)
        current = self.matches(when)
        after = when.astimezone(timezone.utc)
        walls = sorted({0} | {s for h in self.hours for s in (h.start, h.end) if s < DAY_SECONDS})
        day = local.date() - timedelta(days=1)
        chunk = 7
        for _ in range(0, HORIZON_DAYS, chunk):
            candidates: set[datetime] = set()
            for i in range(chunk + 1):
                d = day + timedelta(days=i)
                for s in walls:
                    wall = datetime.combine(d, time(s // 3600, s % 3600 // 60, s % 60))
                    for fold in (0, 1):
                        candidates.add(wall.replace(tzinfo=self.tz, fold=fold).astimezone(timezone.utc))
                candidates.update(self._transitions(d))
            for c in sorted(candidates):
                if c > after and self.matches(c) != current:
                    return c.astimezone(self.tz)
            day += timedelta(days=chunk)
        return None

    def _transitions(self, d: date) -> list[datetime]:
        """UTC offset changes between local midnight of ``d`` and of the next day (bisected)."""
        lo = datetime.combine(d, time(0), tzinfo=self.tz).astimezone(timezone.utc)
        hi = datetime.combine(d + timedelta(days=1), time(0), tzinfo=self.tz).astimezone(timezone.utc)
        if lo.astimezone(self.tz).utcoffset() == hi.astimezone(self.tz).utcoffset():
            return []
        before = lo.astimezone(self.tz).utcoffset()
        while (hi - lo).total_seconds() > 1:
            mid = lo + (hi - lo) // 2
            mid = mid.replace(microsecond=0)
            if mid.astimezone(self.tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return [hi]


# ------------------------------------------------------------------ document -> condition

def parse_time_condition(doc: Any, path: str = "time_condition") -> tuple[TimeCondition | None,
                                                                              list[tuple[str, str]]]:
    """Parses a condition document; returns it (or None) and every error as (path, message)."""
    errors: list[tuple[str, str]] = []
    if not isinstance(doc, Mapping):
        return None, [(path, "a time condition is an object")]
    known = {"id", "timezone", "hours", "holidays", "day", "night", "name"}
    for key in doc:
        if key not in known:
            errors.append((f"{path}.{key}", f"unknown field (known: {', '.join(sorted(known))})"))
    from zoneinfo import ZoneInfoNotFoundError

    tz: ZoneInfo | None = None
    tzname = doc.get("timezone", "UTC")
    try:
        tz = _zone(tzname) if isinstance(tzname, str) and tzname else None
        if tz is None:
            raise ValueError
    except (ZoneInfoNotFoundError, ValueError):
        errors.append((f"{path}.timezone", f"unknown time zone {tzname!r} (e.g. Europe/Berlin)"))
    hours: list[Hours] = []
    raw_hours = doc.get("hours", [])
    if not isinstance(raw_hours, list):
        errors.append((f"{path}.hours", "hours is a list of {days, from, to}"))
        raw_hours = []
    for i, h in enumerate(raw_hours):
        p = f"{path}.hours[{i}]"
        if not isinstance(h, Mapping):
            errors.append((p, "an hours entry is {days, from, to}"))
            continue
        try:
            days = parse_days(h.get("days", "daily"))
        except ValueError as e:
            errors.append((f"{p}.days", str(e)))
            continue
        try:
            start = parse_clock(h.get("from", ""))
        except ValueError as e:
            errors.append((f"{p}.from", str(e)))
            continue
        try:
            end = parse_clock(h.get("to", ""), end=True)
        except ValueError as e:
            errors.append((f"{p}.to", str(e)))
            continue
        if start == end:
            errors.append((f"{p}.to", "a range from and to the same time is empty; use 00:00-24:00 for all day"))
            continue
        hours.append(Hours(days, start, end))
    holidays: list[Holiday] = []
    raw_hol = doc.get("holidays", [])
    if not isinstance(raw_hol, list):
        errors.append((f"{path}.holidays", "holidays is a list of {date} or {from, to}"))
        raw_hol = []
    for i, h in enumerate(raw_hol):
        p = f"{path}.holidays[{i}]"
        if isinstance(h, str):
            h = {"date": h}
        if not isinstance(h, Mapping) or not (("date" in h) ^ ("from" in h and "to" in h)):
            errors.append((p, "a holiday is {date} or {from, to}"))
            continue
        try:
            if "date" in h:
                start, yearly = _parse_date(h["date"])
                end, yearly_end = start, yearly
            else:
                field_ = "from"
                start, yearly = _parse_date(h["from"])
                field_ = "to"
                end, yearly_end = _parse_date(h["to"])
        except ValueError as e:
            errors.append((f"{p}.{'date' if 'date' in h else field_}", str(e)))
            continue
        if yearly != yearly_end:
            errors.append((f"{p}.to", "from and to must both be MM-DD or both YYYY-MM-DD"))
            continue
        if not yearly and end < start:
            errors.append((f"{p}.to", f"{end} is before {start}"))
            continue
        holidays.append(Holiday(start, end, yearly, str(h.get("name", ""))))
    for key in ("day", "night"):
        if key in doc and not isinstance(doc[key], Mapping):
            errors.append((f"{path}.{key}", "a destination is {goto, target}"))
    if errors or tz is None:
        return None, errors
    return TimeCondition(tuple(hours), tuple(holidays), tz, doc.get("day"), doc.get("night"),
                         str(doc.get("id", ""))), errors
