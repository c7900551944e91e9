"""Time conditions: office-hour edges, overnight ranges, holidays, DST in Europe/Berlin, next_change."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from firmware.ivr.timecond import ConditionError, TimeCondition, parse_days

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
DAY = {"goto": "menu", "target": "main"}
NIGHT = {"goto": "voicemail", "target": "1001"}


def cond(hours, holidays=(), tz="Europe/Berlin") -> TimeCondition:
    return TimeCondition.from_document({"id": "t", "timezone": tz, "hours": list(hours),
                                        "holidays": list(holidays), "day": DAY, "night": NIGHT})


OFFICE = cond([{"days": "mon-fri", "from": "08:30", "to": "17:30"},
               {"days": "sat", "from": "09:00", "to": "12:00"}],
              [{"date": "12-25"}, {"date": "12-26"}, {"from": "12-31", "to": "01-01"},
               {"date": "2025-04-18", "name": "Good Friday"},
               {"from": "2025-08-04", "to": "2025-08-15", "name": "summer"}])


def b(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def u(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_office_hours_edges():
    # Monday 2 June 2025
    assert not OFFICE.matches(b(2025, 6, 2, 8, 29, 59))
    assert OFFICE.matches(b(2025, 6, 2, 8, 30, 0))
    assert OFFICE.matches(b(2025, 6, 2, 17, 29, 59))
    assert not OFFICE.matches(b(2025, 6, 2, 17, 30, 0))
    assert OFFICE.matches(b(2025, 6, 7, 11, 59, 59))       # Saturday
    assert not OFFICE.matches(b(2025, 6, 7, 12, 0))
    assert not OFFICE.matches(b(2025, 6, 8, 10, 0))        # Sunday
    # the instant counts, not how it is written: 06:30 UTC is 08:30 in Berlin summer time
    assert OFFICE.matches(u(2025, 6, 2, 6, 30))
    assert not OFFICE.matches(u(2025, 6, 2, 6, 29, 59))


def test_destination():
    assert OFFICE.destination(b(2025, 6, 2, 9, 0)) == DAY
    assert OFFICE.destination(b(2025, 6, 2, 20, 0)) == NIGHT


def test_next_change_over_a_week():
    assert OFFICE.next_change(b(2025, 6, 2, 8, 0)) == b(2025, 6, 2, 8, 30)
    assert OFFICE.next_change(b(2025, 6, 2, 8, 30)) == b(2025, 6, 2, 17, 30)   # strictly after
    assert OFFICE.next_change(b(2025, 6, 6, 18, 0)) == b(2025, 6, 7, 9, 0)     # Fri evening -> Sat
    assert OFFICE.next_change(b(2025, 6, 7, 12, 0)) == b(2025, 6, 9, 8, 30)    # Sat noon -> Mon
    change = OFFICE.next_change(u(2025, 6, 2, 6, 0))
    assert change == u(2025, 6, 2, 6, 30) and change.tzinfo == BERLIN


def test_overnight_range_belongs_to_the_day_it_starts():
    night = cond([{"days": "fri", "from": "22:00", "to": "06:00"}])
    assert not night.matches(b(2025, 6, 5, 23, 0))         # Thursday night
    assert not night.matches(b(2025, 6, 6, 21, 59, 59))
    assert night.matches(b(2025, 6, 6, 22, 0))
    assert night.matches(b(2025, 6, 7, 0, 0))              # Saturday morning, still Friday's night
    assert night.matches(b(2025, 6, 7, 5, 59, 59))
    assert not night.matches(b(2025, 6, 7, 6, 0))
    assert not night.matches(b(2025, 6, 7, 23, 0))         # Saturday night is not Friday's
    assert night.next_change(b(2025, 6, 6, 21, 0)) == b(2025, 6, 6, 22, 0)
    assert night.next_change(b(2025, 6, 6, 22, 0)) == b(2025, 6, 7, 6, 0)     # midnight is no change
    assert night.next_change(b(2025, 6, 7, 6, 0)) == b(2025, 6, 13, 22, 0)


def test_daily_overnight_and_until_midnight():
    n = cond([{"days": "daily", "from": "22:00", "to": "06:00"}])
    assert n.matches(b(2025, 6, 2, 3, 0)) and not n.matches(b(2025, 6, 2, 12, 0))
    late = cond([{"days": "mon", "from": "18:00", "to": "24:00"}])
    assert late.matches(b(2025, 6, 2, 23, 59, 59))
    assert not late.matches(b(2025, 6, 3, 0, 0))
    assert late.next_change(b(2025, 6, 2, 20, 0)) == b(2025, 6, 3, 0, 0)


def test_holidays_override_hours():
    assert not OFFICE.matches(b(2025, 12, 25, 10, 0))      # Thursday, yearly
    assert not OFFICE.matches(b(2026, 12, 25, 10, 0))      # Friday next year too
    assert not OFFICE.matches(b(2025, 4, 18, 10, 0))       # Good Friday 2025, one-off
    assert OFFICE.matches(b(2026, 4, 17, 10, 0))           # not the year after
    assert not OFFICE.matches(b(2025, 8, 4, 10, 0)) and not OFFICE.matches(b(2025, 8, 15, 10, 0))
    assert OFFICE.matches(b(2025, 8, 18, 10, 0))
    assert not OFFICE.matches(b(2025, 12, 31, 10, 0))      # a yearly range across the new year
    assert not OFFICE.matches(b(2027, 1, 1, 10, 0))
    assert OFFICE.matches(b(2027, 1, 4, 10, 0))
    # Christmas: Wednesday evening to Saturday morning (Thu 25, Fri 26 closed)
    assert OFFICE.next_change(b(2025, 12, 24, 17, 30)) == b(2025, 12, 27, 9, 0)
    assert OFFICE.next_change(b(2025, 8, 1, 12, 0)) == b(2025, 8, 1, 17, 30)
    assert OFFICE.next_change(b(2025, 8, 1, 17, 30)) == b(2025, 8, 2, 9, 0)      # Saturday before it
    assert OFFICE.next_change(b(2025, 8, 2, 12, 0)) == b(2025, 8, 16, 9, 0)      # two weeks closed


def test_a_holiday_starts_at_midnight():
    always = cond([{"days": "daily", "from": "00:00", "to": "24:00"}], [{"date": "12-25"}])
    assert always.next_change(b(2025, 12, 20, 15, 0)) == b(2025, 12, 25, 0, 0)
    assert always.next_change(b(2025, 12, 25, 0, 0)) == b(2025, 12, 26, 0, 0)


def test_dst_spring_forward_office_hours():
    # Berlin: Sunday 30 March 2025, 02:00 CET -> 03:00 CEST (01:00 UTC)
    assert OFFICE.next_change(b(2025, 3, 28, 17, 30)) == b(2025, 3, 29, 9, 0)
    monday = OFFICE.next_change(b(2025, 3, 29, 12, 0))
    assert monday == b(2025, 3, 31, 8, 30) and monday == u(2025, 3, 31, 6, 30)
    assert OFFICE.matches(u(2025, 3, 28, 7, 30)) and not OFFICE.matches(u(2025, 3, 28, 7, 29))  # CET
    assert OFFICE.matches(u(2025, 3, 31, 6, 30)) and not OFFICE.matches(u(2025, 3, 31, 6, 29))  # CEST


def test_dst_spring_forward_range_starting_in_the_gap_opens_at_the_jump():
    c = cond([{"days": "sun", "from": "02:30", "to": "05:00"}])
    assert not c.matches(u(2025, 3, 30, 0, 59, 59))        # 01:59:59 CET
    assert c.matches(u(2025, 3, 30, 1, 0))                 # 03:00 CEST: the clock is past 02:30
    assert c.next_change(b(2025, 3, 30, 0, 0)) == u(2025, 3, 30, 1, 0)
    assert c.next_change(u(2025, 3, 30, 1, 0)) == u(2025, 3, 30, 3, 0)   # 05:00 CEST
    # the same range a week earlier lasts 2.5 hours, this one 2
    assert c.next_change(b(2025, 3, 23, 0, 0)) == u(2025, 3, 23, 1, 30)


def test_dst_fall_back_overnight_is_an_hour_longer():
    # Sunday 26 October 2025, 03:00 CEST -> 02:00 CET (01:00 UTC)
    n = cond([{"days": "sat", "from": "22:00", "to": "06:00"}])
    start = n.next_change(b(2025, 10, 25, 12, 0))
    end = n.next_change(start)
    assert start == u(2025, 10, 25, 20, 0) and end == u(2025, 10, 26, 5, 0)
    # (aware datetimes in one zone subtract by wall clock in Python; compare instants in UTC)
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 9 * 3600
    assert n.matches(u(2025, 10, 26, 1, 30))               # 02:30 the second time


def test_dst_fall_back_repeated_wall_time_is_passed_twice():
    c = cond([{"days": "sun", "from": "02:00", "to": "02:30"}])
    t = u(2025, 10, 25, 23, 0)
    flips = []
    for _ in range(4):
        t = c.next_change(t)
        flips.append(t.astimezone(UTC))
    assert flips == [u(2025, 10, 26, 0, 0), u(2025, 10, 26, 0, 30), u(2025, 10, 26, 1, 0), u(2025, 10, 26, 1, 30)]
    assert [f.astimezone(BERLIN).fold for f in flips] == [0, 0, 1, 1]


def test_never_changes():
    assert cond([]).next_change(b(2025, 1, 1, 0, 0)) is None
    assert cond([{"days": "daily", "from": "00:00", "to": "24:00"}]).next_change(b(2025, 1, 1)) is None


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        OFFICE.matches(datetime(2025, 6, 2, 9, 0))


def test_parse_days():
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days(["mon", "wed,friday"]) == frozenset({0, 2, 4})
    assert parse_days("daily") == frozenset(range(7))
    with pytest.raises(ValueError):
        parse_days("funday")


def test_bad_document_raises_with_paths():
    with pytest.raises(ConditionError) as info:
        TimeCondition.from_document({"timezone": "Europe/Berlin", "hours": [{"days": "mon", "from": "9"}]},
                                    "time_conditions[x]")
    assert info.value.errors == [("time_conditions[x].hours[0].from", "time must be HH:MM, not '9'")]
