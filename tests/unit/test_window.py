"""The working-hours window: wall-clock membership, DST gaps and repeats, several zones.

Expected instants below were worked out by hand from the 2026 rules (and checked against
zoneinfo's offsets), not computed with the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.errors import ValidationFailed, WindowNeverOpens
from dialer.policies.window import (
    ALL_WEEKDAYS,
    MONDAY_TO_FRIDAY,
    CallWindow,
    LegalBound,
    WorkingHours,
    current_closing,
    is_open,
    local_time,
    may_start_call,
    next_opening,
    validate_window,
)

NY = "America/New_York"
LA = "America/Los_Angeles"
PHOENIX = "America/Phoenix"
ROME = "Europe/Rome"
LORD_HOWE = "Australia/Lord_Howe"
KOLKATA = "Asia/Kolkata"
CHATHAM = "Pacific/Chatham"
SANTIAGO = "America/Santiago"
ST_JOHNS = "America/St_Johns"

# Legal bound wide enough that windows can start inside the small-hours DST gaps.
WIDE_LEGAL = LegalBound(start=time(0), end=time(23, 59, 59))
US = timedelta(microseconds=1)
SECOND = timedelta(seconds=1)


def z(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def utc(text: str) -> datetime:
    """'2026-06-10 13:00' (or with seconds / microseconds) as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def wall(zone: str, text: str, fold: int = 0) -> datetime:
    """A wall-clock time in ``zone``; fold=1 picks the second of a repeated time."""
    return datetime.fromisoformat(text).replace(tzinfo=z(zone), fold=fold)


def window(
    start: time,
    end: time,
    weekdays: frozenset[int] = MONDAY_TO_FRIDAY,
    legal: LegalBound | None = None,
) -> CallWindow:
    return validate_window(WorkingHours(start, end, weekdays), legal or LegalBound())


NINE_TO_FIVE = window(time(9), time(17))

# 2026-06-10 is a Wednesday, 2026-06-12 a Friday, 2026-06-13/14 the weekend.

# --- is_open ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call_window", "zones", "at", "expected"),
    [
        # Start inclusive, end exclusive, on the contact's wall clock.
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 08:59:59.999999"), False),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 09:00"), True),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 16:59:59.999999"), True),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 17:00"), False),
        # The same instants written in UTC (EDT is UTC-4).
        (NINE_TO_FIVE, [NY], utc("2026-06-10 13:00"), True),
        (NINE_TO_FIVE, [NY], utc("2026-06-10 21:00"), False),
        # Weekends are closed by default; an explicit weekday set opens them.
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-13 10:00"), False),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-14 10:00"), False),
        (window(time(9), time(17), frozenset({5})), [NY], wall(NY, "2026-06-13 10:00"), True),
        (window(time(9), time(17), frozenset({5})), [NY], wall(NY, "2026-06-10 10:00"), False),
        # The weekday is the contact's: Friday 22:00 in NY is already Saturday in UTC.
        (window(time(8), time(21), ALL_WEEKDAYS), [NY], wall(NY, "2026-06-12 20:00"), True),
        (NINE_TO_FIVE, ["Asia/Tokyo"], utc("2026-06-12 01:00"), True),  # Fri 10:00 Tokyo
        (NINE_TO_FIVE, ["Asia/Tokyo"], utc("2026-06-14 01:00"), False),  # Sun 10:00 Tokyo
        # The legal bound clips a wider campaign window.
        (window(time(6), time(23)), [NY], wall(NY, "2026-06-10 07:59:59"), False),
        (window(time(6), time(23)), [NY], wall(NY, "2026-06-10 08:00"), True),
        (window(time(6), time(23)), [NY], wall(NY, "2026-06-10 20:59:59"), True),
        (window(time(6), time(23)), [NY], wall(NY, "2026-06-10 21:00"), False),
        (
            window(time(6), time(23), legal=LegalBound(time(9, 30), time(18))),
            [NY],
            wall(NY, "2026-06-10 09:29"),
            False,
        ),
        (
            window(time(6), time(23), legal=LegalBound(time(9, 30), time(18))),
            [NY],
            wall(NY, "2026-06-10 17:59"),
            True,
        ),
        # Several zones: open only where New York (9-17) and Los Angeles (9-17) overlap,
        # i.e. 12:00-17:00 New York time.
        (NINE_TO_FIVE, [NY, LA], wall(NY, "2026-06-10 11:59:59"), False),
        (NINE_TO_FIVE, [NY, LA], wall(NY, "2026-06-10 12:00"), True),
        (NINE_TO_FIVE, [NY, LA], wall(NY, "2026-06-10 16:59:59"), True),
        (NINE_TO_FIVE, [NY, LA], wall(NY, "2026-06-10 17:00"), False),
        # Zones without DST and with odd offsets.
        (NINE_TO_FIVE, [KOLKATA], utc("2026-06-10 03:29:59"), False),  # 08:59:59 IST
        (NINE_TO_FIVE, [KOLKATA], utc("2026-06-10 03:30"), True),  # 09:00 IST
        (NINE_TO_FIVE, [CHATHAM], utc("2026-06-09 20:15"), True),  # Wed 09:00 +12:45
        (NINE_TO_FIVE, [CHATHAM], utc("2026-06-09 20:14:59"), False),
        (NINE_TO_FIVE, [LORD_HOWE], utc("2026-06-09 22:30"), True),  # Wed 09:00 +10:30
        (NINE_TO_FIVE, [PHOENIX], utc("2026-06-10 16:00"), True),  # 09:00 MST
        (NINE_TO_FIVE, [PHOENIX], utc("2026-06-10 15:59:59"), False),
    ],
)
def test_is_open(call_window: CallWindow, zones: list[str], at: datetime, expected: bool) -> None:
    assert is_open(call_window, [z(name) for name in zones], at) is expected


def test_is_open_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(NINE_TO_FIVE, [z(NY)], datetime(2026, 6, 10, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(NINE_TO_FIVE, [z(NY)], datetime(2026, 6, 10, 12))


def test_zones_are_required() -> None:
    with pytest.raises(ValueError, match="at least one"):
        is_open(NINE_TO_FIVE, [], utc("2026-06-10 13:00"))
    with pytest.raises(ValueError, match="at least one"):
        next_opening(NINE_TO_FIVE, [], utc("2026-06-10 13:00"))


def test_local_time_is_the_contacts_wall_clock() -> None:
    assert local_time(z(NY), utc("2026-06-10 13:00")) == wall(NY, "2026-06-10 09:00")
    assert local_time(z(NY), utc("2026-06-10 13:00")).hour == 9
    # A nonexistent wall time is read as the instant it denotes (fold=1: 06:45 UTC).
    assert local_time(z(NY), wall(NY, "2026-03-08 02:45", fold=1)).hour == 1


# --- next_opening ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call_window", "zones", "at", "expected"),
    [
        # Open now: the same instant comes back.
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 09:00"), utc("2026-06-10 13:00")),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 12:34:56.789"), utc("2026-06-10 16:34:56.789")),
        # Before the window on a weekday: today's start.
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 06:00"), utc("2026-06-10 13:00")),
        # After the window: tomorrow's start.
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 17:00"), utc("2026-06-11 13:00")),
        # Friday evening and the weekend: Monday's start.
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-12 17:00"), utc("2026-06-15 13:00")),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-13 10:00"), utc("2026-06-15 13:00")),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-14 23:59"), utc("2026-06-15 13:00")),
        # Weekend-only campaign on a Monday: next Saturday.
        (
            window(time(10), time(12), frozenset({5, 6})),
            [NY],
            wall(NY, "2026-06-15 10:00"),
            utc("2026-06-20 14:00"),
        ),
        # The legal bound moves the opening: campaign says 06:00, law says 08:00.
        (window(time(6), time(23)), [NY], wall(NY, "2026-06-10 05:00"), utc("2026-06-10 12:00")),
        # Several zones: the later local start wins (Los Angeles 09:00 = NY 12:00).
        (NINE_TO_FIVE, [NY, LA], wall(NY, "2026-06-10 10:00"), utc("2026-06-10 16:00")),
        (NINE_TO_FIVE, [LA, NY], wall(NY, "2026-06-12 17:00"), utc("2026-06-15 16:00")),
        # Exact to the microsecond when the opening is a window start.
        (
            window(time(9, 0, 0, 500), time(17)),
            [NY],
            wall(NY, "2026-06-10 08:00"),
            utc("2026-06-10 13:00:00.000500"),
        ),
        # No DST, half-hour offset: 09:00 IST is 03:30 UTC.
        (NINE_TO_FIVE, [KOLKATA], utc("2026-06-10 00:00"), utc("2026-06-10 03:30")),
        # Wednesday 09:00 on Chatham (+12:45) is Tuesday 20:15 UTC.
        (NINE_TO_FIVE, [CHATHAM], utc("2026-06-09 12:00"), utc("2026-06-09 20:15")),
    ],
)
def test_next_opening(
    call_window: CallWindow, zones: list[str], at: datetime, expected: datetime
) -> None:
    result = next_opening(call_window, [z(name) for name in zones], at)
    assert result == expected
    assert result is not None
    assert result.utcoffset() == timedelta(0)


def test_next_opening_returns_none_when_zones_never_overlap() -> None:
    # Kiritimati (+14) and Pago Pago (-11) are 25 hours apart: a 09:00-10:00 window in
    # one is 19:00-20:00 UTC, in the other 20:00-21:00 UTC. They touch, never overlap.
    zones = [z("Pacific/Kiritimati"), z("Pacific/Pago_Pago")]
    nine_to_ten = window(time(9), time(10), ALL_WEEKDAYS)
    assert next_opening(nine_to_ten, zones, utc("2026-06-10 00:00")) is None
    assert next_opening(nine_to_ten, zones, utc("2026-06-10 00:00"), horizon_days=60) is None


def test_next_opening_finds_a_one_second_overlap() -> None:
    # One more second on the window makes the two zones share exactly 20:00:00 UTC
    # (10:00:00 Kiritimati, 09:00:00 the previous day in Pago Pago).
    zones = [z("Pacific/Kiritimati"), z("Pacific/Pago_Pago")]
    call_window = window(time(9), time(10, 0, 1), ALL_WEEKDAYS)
    opening = next_opening(call_window, zones, utc("2026-06-10 00:00"))
    assert opening == utc("2026-06-10 20:00")
    assert current_closing(call_window, zones, utc("2026-06-10 20:00")) == utc(
        "2026-06-10 20:00:01"
    )


@pytest.mark.parametrize(
    ("horizon_days", "expected"),
    [(0, None), (1, None), (2, None), (3, utc("2026-06-15 13:00")), (14, utc("2026-06-15 13:00"))],
)
def test_next_opening_horizon(horizon_days: int, expected: datetime | None) -> None:
    # Friday 17:00 New York to Monday 09:00 is 2 days 16 hours.
    at = wall(NY, "2026-06-12 17:00")
    assert next_opening(NINE_TO_FIVE, [z(NY)], at, horizon_days=horizon_days) == expected


def test_next_opening_with_zero_horizon_still_answers_open_now() -> None:
    at = wall(NY, "2026-06-10 10:00")
    assert next_opening(NINE_TO_FIVE, [z(NY)], at, horizon_days=0) == at


# --- current_closing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call_window", "zones", "at", "expected"),
    [
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 09:00"), utc("2026-06-10 21:00")),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 16:59:59.999999"), utc("2026-06-10 21:00")),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-10 17:00"), None),
        (NINE_TO_FIVE, [NY], wall(NY, "2026-06-13 10:00"), None),
        (window(time(6), time(23)), [NY], wall(NY, "2026-06-10 12:00"), utc("2026-06-11 01:00")),
        # Several zones: New York's 17:00 closes the shared window.
        (NINE_TO_FIVE, [NY, LA], wall(NY, "2026-06-10 13:00"), utc("2026-06-10 21:00")),
        (NINE_TO_FIVE, [NY, LA], wall(NY, "2026-06-10 10:00"), None),
        (NINE_TO_FIVE, [KOLKATA], utc("2026-06-10 04:00"), utc("2026-06-10 11:30")),
    ],
)
def test_current_closing(
    call_window: CallWindow, zones: list[str], at: datetime, expected: datetime | None
) -> None:
    assert current_closing(call_window, [z(name) for name in zones], at) == expected


# --- DST change days -------------------------------------------------------------------
#
# 2026 transitions (UTC instant: local before -> local after):
#   New York     03-08 07:00: 02:00 EST -> 03:00 EDT;     11-01 06:00: 02:00 EDT -> 01:00 EST
#   Rome         03-29 01:00: 02:00 CET -> 03:00 CEST;    10-25 01:00: 03:00 CEST -> 02:00 CET
#   Lord Howe    10-03 15:30: 02:00 +10:30 -> 02:30 +11;  04-04 15:00: 02:00 +11 -> 01:30 +10:30
#   Chatham      09-26 14:00: 02:45 +12:45 -> 03:45 +13:45; 04-04 14:00: 03:45 -> 02:45
#   Santiago     09-06 04:00: 00:00 -04 -> 01:00 -03;     04-05 03:00: 00:00 -03 -> 23:00 -04
#   Phoenix and Kolkata have no DST.
#   St John's 2010-11-07 02:31: Sunday 00:01 -02:30 -> Saturday 23:01 -03:30


# Every row: zone, window start-end (every day, small hours allowed), the instant asked
# about (UTC), the expected next opening and the closing that follows it (UTC).
DST_CASES = [
    # Spring forward, window starts inside the gap: it opens at the transition instant.
    (NY, "02:30", "04:00", "2026-03-08 05:00", "2026-03-08 07:00", "2026-03-08 08:00"),
    (ROME, "02:15", "05:00", "2026-03-28 23:00", "2026-03-29 01:00", "2026-03-29 03:00"),
    (LORD_HOWE, "02:10", "03:00", "2026-10-03 12:00", "2026-10-03 15:30", "2026-10-03 16:00"),
    (CHATHAM, "03:00", "04:00", "2026-09-26 11:00", "2026-09-26 14:00", "2026-09-26 14:15"),
    # Santiago's gap is at midnight: Sunday 00:00-01:00 never happens.
    (SANTIAGO, "00:00", "02:00", "2026-09-06 00:00", "2026-09-06 04:00", "2026-09-06 05:00"),
    # Window entirely inside the gap: nothing that day, the next day as usual.
    (NY, "02:10", "02:50", "2026-03-08 05:00", "2026-03-09 06:10", "2026-03-09 06:50"),
    # Window ending inside the gap: it closes at the transition.
    (NY, "01:00", "02:30", "2026-03-08 05:00", "2026-03-08 06:00", "2026-03-08 07:00"),
    # The same wall times in zones without DST are ordinary.
    (PHOENIX, "02:30", "04:00", "2026-03-08 05:00", "2026-03-08 09:30", "2026-03-08 11:00"),
    (KOLKATA, "02:30", "04:00", "2026-03-28 12:00", "2026-03-28 21:00", "2026-03-28 22:30"),
    # Fall back, window starting in the repeated hour: the first pass opens it, the
    # jump back to 01:00 closes it, and it reopens when 01:30 comes round again.
    (NY, "01:30", "03:00", "2026-11-01 04:00", "2026-11-01 05:30", "2026-11-01 06:00"),
    (NY, "01:30", "03:00", "2026-11-01 06:00", "2026-11-01 06:30", "2026-11-01 08:00"),
    # Window ending in the repeated hour: closed at 01:30 EDT, reopened by the jump back
    # to 01:00 EST (an opening at a transition instant), closed again at 01:30 EST.
    (NY, "00:30", "01:30", "2026-11-01 04:00", "2026-11-01 04:30", "2026-11-01 05:30"),
    (NY, "00:30", "01:30", "2026-11-01 05:30", "2026-11-01 06:00", "2026-11-01 06:30"),
    # Window inside the repeated hour happens twice.
    (ROME, "02:30", "02:45", "2026-10-25 00:00", "2026-10-25 00:30", "2026-10-25 00:45"),
    (ROME, "02:30", "02:45", "2026-10-25 00:45", "2026-10-25 01:30", "2026-10-25 01:45"),
    (LORD_HOWE, "01:40", "01:50", "2026-04-04 14:00", "2026-04-04 14:40", "2026-04-04 14:50"),
    (LORD_HOWE, "01:40", "01:50", "2026-04-04 14:50", "2026-04-04 15:10", "2026-04-04 15:20"),
    (CHATHAM, "03:00", "03:30", "2026-04-04 12:00", "2026-04-04 13:15", "2026-04-04 13:45"),
    (CHATHAM, "03:00", "03:30", "2026-04-04 13:45", "2026-04-04 14:15", "2026-04-04 14:45"),
    # Santiago falls back at midnight: Sunday 00:00 -03 never comes (the clock goes back
    # to Saturday 23:00), so Sunday's 00:00-01:00 happens once, at -04 ...
    (SANTIAGO, "00:00", "01:00", "2026-04-05 00:00", "2026-04-05 04:00", "2026-04-05 05:00"),
    # ... and Saturday's 23:00-23:59 twice, first at -03 then at -04.
    (SANTIAGO, "23:00", "23:59", "2026-04-05 01:00", "2026-04-05 02:00", "2026-04-05 02:59"),
    (SANTIAGO, "23:00", "23:59", "2026-04-05 02:59", "2026-04-05 03:00", "2026-04-05 03:59"),
    # St John's fell back at 00:01 local until 2011, so the clock went from Sunday 00:01
    # back to Saturday 23:01: a later local date's minute came first.
    (ST_JOHNS, "00:00", "23:59", "2010-11-07 02:29:30", "2010-11-07 02:30", "2010-11-07 03:29"),
]  # fmt: skip


@pytest.mark.parametrize(("zone", "start", "end", "at", "opening", "closing"), DST_CASES)
def test_dst_change_days(
    zone: str, start: str, end: str, at: str, opening: str, closing: str
) -> None:
    call_window = window(
        time.fromisoformat(start), time.fromisoformat(end), ALL_WEEKDAYS, WIDE_LEGAL
    )
    zones = [z(zone)]
    assert next_opening(call_window, zones, utc(at)) == utc(opening)
    assert is_open(call_window, zones, utc(opening))
    assert not is_open(call_window, zones, utc(opening) - US)
    assert current_closing(call_window, zones, utc(opening)) == utc(closing)
    assert not is_open(call_window, zones, utc(closing))
    assert is_open(call_window, zones, utc(closing) - US)


@pytest.mark.parametrize(
    ("zone", "start", "at", "expected"),
    [
        # Window 02:30-04:00 on spring-forward day: 02:00-03:00 does not exist.
        (NY, time(2, 30), wall(NY, "2026-03-08 01:59:59"), False),
        (NY, time(2, 30), utc("2026-03-08 07:00"), True),  # the transition: local 03:00
        # A nonexistent wall time still names an instant, and fold decides which one:
        # fold=0 reads 02:45 with the old offset (07:45 UTC = 03:45 EDT, open), fold=1
        # with the new one (06:45 UTC = 01:45 EST, closed). The instant is what counts.
        (NY, time(2, 30), wall(NY, "2026-03-08 02:45", fold=0), True),
        (NY, time(2, 30), wall(NY, "2026-03-08 02:45", fold=1), False),
        (ROME, time(2, 30), utc("2026-03-29 00:59:59"), False),  # 01:59:59 CET
        (ROME, time(2, 30), utc("2026-03-29 01:00"), True),  # 03:00 CEST
        # Window 01:30-04:00 on fall-back day: both passes through the repeated hour count.
        (NY, time(1, 30), wall(NY, "2026-11-01 01:45", fold=0), True),
        (NY, time(1, 30), wall(NY, "2026-11-01 01:45", fold=1), True),
        (NY, time(1, 30), wall(NY, "2026-11-01 01:15", fold=1), False),
        (LORD_HOWE, time(1, 30), wall(LORD_HOWE, "2026-04-05 01:45", fold=0), True),
        (LORD_HOWE, time(1, 30), wall(LORD_HOWE, "2026-04-05 01:45", fold=1), True),
    ],
)
def test_is_open_on_dst_days(zone: str, start: time, at: datetime, expected: bool) -> None:
    call_window = window(start, time(4), ALL_WEEKDAYS, WIDE_LEGAL)
    assert is_open(call_window, [z(zone)], at) is expected


def test_nine_to_five_across_dst_keeps_local_hours() -> None:
    # Friday before and Monday after spring-forward in New York: 09:00 EST then EDT.
    assert next_opening(NINE_TO_FIVE, [z(NY)], wall(NY, "2026-03-06 17:00")) == utc(
        "2026-03-09 13:00"
    )
    assert next_opening(NINE_TO_FIVE, [z(NY)], wall(NY, "2026-03-06 08:00")) == utc(
        "2026-03-06 14:00"
    )
    # Between the US (03-08) and EU (03-29) changes New York and Rome are 5 hours apart,
    # not 6: their shared 9-17 window is 09:00-12:00 New York.
    zones = [z(NY), z(ROME)]
    assert next_opening(NINE_TO_FIVE, zones, utc("2026-03-16 00:00")) == utc("2026-03-16 13:00")
    assert current_closing(NINE_TO_FIVE, zones, utc("2026-03-16 13:00")) == utc("2026-03-16 16:00")


# --- validate_window -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "legal", "field", "reason_part"),
    [
        (
            WorkingHours(time(9), time(17), frozenset()),
            LegalBound(),
            "call_working_hours.weekdays",
            "at least one weekday",
        ),
        (
            WorkingHours(time(9), time(17), frozenset({1, 7})),
            LegalBound(),
            "call_working_hours.weekdays",
            "got [7]",
        ),
        (
            WorkingHours(time(9), time(17), frozenset({-1})),
            LegalBound(),
            "call_working_hours.weekdays",
            "got [-1]",
        ),
        (
            WorkingHours(time(17), time(17)),
            LegalBound(),
            "call_working_hours.end",
            "end 17:00 must be after start 17:00",
        ),
        (
            WorkingHours(time(17), time(9)),
            LegalBound(),
            "call_working_hours.end",
            "end 09:00 must be after start 17:00",
        ),
        (
            WorkingHours(time(21), time(23)),
            LegalBound(),
            "call_working_hours",
            "legal calling hours 08:00-21:00",
        ),
        (
            WorkingHours(time(5), time(8)),
            LegalBound(),
            "call_working_hours",
            "window 05:00-08:00 lies entirely outside",
        ),
        (
            WorkingHours(time(9), time(10)),
            LegalBound(time(10, 30), time(18)),
            "call_working_hours",
            "legal calling hours 10:30-18:00",
        ),
        (
            WorkingHours(time(9, tzinfo=UTC), time(17)),
            LegalBound(),
            "call_working_hours.start",
            "without a zone",
        ),
    ],
)
def test_validate_window_names_the_field(
    hours: WorkingHours, legal: LegalBound, field: str, reason_part: str
) -> None:
    with pytest.raises(WindowNeverOpens) as caught:
        validate_window(hours, legal)
    err = caught.value
    assert isinstance(err, ValidationFailed)
    assert err.field == field
    assert reason_part in err.reason
    assert str(err) == f"{field}: {err.reason}"


def test_validate_window_clips_to_the_legal_bound() -> None:
    call_window = validate_window(WorkingHours.create(time(6), time(23)), LegalBound())
    assert (call_window.effective_start, call_window.effective_end) == (time(8), time(21))
    assert call_window.hours.weekdays == frozenset({0, 1, 2, 3, 4})
    inside = validate_window(WorkingHours.create(time(9), time(17), [5, 6, 6]), LegalBound())
    assert (inside.effective_start, inside.effective_end) == (time(9), time(17))
    assert inside.hours.weekdays == frozenset({5, 6})


def test_legal_bound_must_be_a_real_range() -> None:
    with pytest.raises(ValueError, match="after start"):
        LegalBound(time(21), time(8))


def test_horizon_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        next_opening(NINE_TO_FIVE, [z(NY)], utc("2026-06-13 00:00"), horizon_days=-1)


# --- properties ------------------------------------------------------------------------

PROPERTY_ZONES = [
    NY, LA, PHOENIX, ROME, LORD_HOWE, KOLKATA, CHATHAM, SANTIAGO,
    "UTC", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Australia/Sydney",
    "Europe/London", "Asia/Kathmandu", ST_JOHNS, "Africa/Casablanca",
]  # fmt: skip

# Instants near the 2026 DST changes above, where the bugs live, plus random ones.
DST_INSTANTS = [
    utc("2026-03-08 07:00"), utc("2026-11-01 06:00"), utc("2026-03-29 01:00"),
    utc("2026-10-25 01:00"), utc("2026-10-03 15:30"), utc("2026-04-04 15:00"),
    utc("2026-09-26 14:00"), utc("2026-04-04 14:00"), utc("2026-09-06 04:00"),
    utc("2026-04-05 03:00"),
]  # fmt: skip

instants = st.one_of(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(UTC)
    ),
    st.builds(
        lambda base, seconds: base + timedelta(seconds=seconds),
        st.sampled_from(DST_INSTANTS),
        st.integers(min_value=-3 * 86400, max_value=3 * 86400),
    ),
)
# Whole minutes usually (real windows), any microsecond sometimes.
clock_times = st.one_of(
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])), st.times()
)
zone_lists = st.lists(st.sampled_from(PROPERTY_ZONES), min_size=1, max_size=3, unique=True).map(
    lambda names: [z(name) for name in names]
)


@st.composite
def ordered_pair(draw: st.DrawFn) -> tuple[time, time]:
    first, second = draw(clock_times), draw(clock_times)
    if first == second:
        second = time(23, 59, 59, 999999) if first < time(23, 59, 59, 999999) else time(23)
    return min(first, second), max(first, second)


@st.composite
def call_windows(draw: st.DrawFn) -> CallWindow:
    start, end = draw(ordered_pair())
    legal_start, legal_end = draw(
        st.one_of(st.just((time(8), time(21))), st.just((time(0), time(23, 59))), ordered_pair())
    )
    weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    # Windows the validator would reject still have well-defined (never open) answers.
    return CallWindow(WorkingHours(start, end, weekdays), LegalBound(legal_start, legal_end))


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
SAMPLE_STEP = timedelta(minutes=15)


@PROPERTY_SETTINGS
@given(call_window=call_windows(), zones=zone_lists, at=instants)
def test_never_open_outside_the_legal_bound(
    call_window: CallWindow, zones: list[ZoneInfo], at: datetime
) -> None:
    if is_open(call_window, zones, at):
        for zone in zones:
            local = at.astimezone(zone)
            assert call_window.legal.start <= local.time() < call_window.legal.end
            assert call_window.hours.start <= local.time() < call_window.hours.end
            assert local.weekday() in call_window.hours.weekdays


@PROPERTY_SETTINGS
@given(call_window=call_windows(), zones=zone_lists, at=instants)
def test_next_opening_is_the_earliest_open_instant(
    call_window: CallWindow, zones: list[ZoneInfo], at: datetime
) -> None:
    opening = next_opening(call_window, zones, at)
    if is_open(call_window, zones, at):
        assert opening == at
        return
    last_checked = opening if opening is not None else at + timedelta(days=14)
    if opening is not None:
        assert opening > at
        assert is_open(call_window, zones, opening)
        for before in (opening - SECOND, opening - US):
            if before > at:
                assert not is_open(call_window, zones, before), before
    probe = at + SAMPLE_STEP
    while probe < last_checked:
        assert not is_open(call_window, zones, probe), probe
        probe += SAMPLE_STEP


@PROPERTY_SETTINGS
@given(call_window=call_windows(), zones=zone_lists, at=instants)
def test_current_closing_is_the_first_closed_instant(
    call_window: CallWindow, zones: list[ZoneInfo], at: datetime
) -> None:
    if not is_open(call_window, zones, at):
        assert current_closing(call_window, zones, at) is None
        opened = next_opening(call_window, zones, at, horizon_days=3)
        if opened is None:
            return
        at = opened
    closing = current_closing(call_window, zones, at)
    assert closing is not None
    assert closing > at
    assert not is_open(call_window, zones, closing)
    assert is_open(call_window, zones, closing - US)
    if closing - SECOND >= at:
        assert is_open(call_window, zones, closing - SECOND)
    probe = at + SAMPLE_STEP
    while probe < closing:
        assert is_open(call_window, zones, probe), probe
        probe += SAMPLE_STEP


# --- may_start_call: the window must stay open for the margin after the request ---------

# Legal bound 08:00-21:00 on top of a campaign window that would run later.
EVENING = CallWindow(WorkingHours.create(time(8), time(22)), LegalBound())
FIVE_SECONDS = timedelta(seconds=5)


@pytest.mark.parametrize(
    ("zones", "at", "allowed", "reopens"),
    [
        # Monday 2026-11-23, New York on EST (UTC-5): 21:00 local is 02:00 UTC Tuesday.
        ((NY,), datetime(2026, 11, 23, 19, tzinfo=UTC), True, None),
        # 20:59:58 local: open, but it closes within the 5 s margin.
        (
            (NY,),
            datetime(2026, 11, 24, 1, 59, 58, tzinfo=UTC),
            False,
            datetime(2026, 11, 24, 13, tzinfo=UTC),  # Tuesday 08:00 New York
        ),
        # Exactly the margin before closing: the call would ring at 21:00:00, refused.
        (
            (NY,),
            datetime(2026, 11, 24, 1, 59, 55, tzinfo=UTC),
            False,
            datetime(2026, 11, 24, 13, tzinfo=UTC),
        ),
        # A hair more than the margin: allowed.
        ((NY,), datetime(2026, 11, 24, 1, 59, 54, 999999, tzinfo=UTC), True, None),
        # Already closed (21:30 local): refused, next opening the next morning.
        (
            (NY,),
            datetime(2026, 11, 24, 2, 30, tzinfo=UTC),
            False,
            datetime(2026, 11, 24, 13, tzinfo=UTC),
        ),
        # Los Angeles alone at 17:59:58 local is well inside its window ...
        ((LA,), datetime(2026, 11, 24, 1, 59, 58, tzinfo=UTC), True, None),
        # ... but a number spanning New York and Los Angeles closes with New York first,
        # and reopens when both are open: Tuesday 08:00 in Los Angeles (16:00 UTC).
        (
            (NY, LA),
            datetime(2026, 11, 24, 1, 59, 58, tzinfo=UTC),
            False,
            datetime(2026, 11, 24, 16, tzinfo=UTC),
        ),
        # Friday 20:59:58 New York: the next opening is Monday 08:00 (weekend closed).
        (
            (NY,),
            datetime(2026, 11, 28, 1, 59, 58, tzinfo=UTC),
            False,
            datetime(2026, 11, 30, 13, tzinfo=UTC),
        ),
    ],
)
def test_may_start_call_needs_the_window_open_for_the_margin(
    zones: tuple[str, ...], at: datetime, allowed: bool, reopens: datetime | None
) -> None:
    check = may_start_call(EVENING, [ZoneInfo(z) for z in zones], at, FIVE_SECONDS)
    assert (check.allowed, check.reopens) == (allowed, reopens)


def test_may_start_call_with_no_margin_is_is_open() -> None:
    at = datetime(2026, 11, 24, 1, 59, 59, 999999, tzinfo=UTC)  # 20:59:59.999999 New York
    assert may_start_call(EVENING, [ZoneInfo(NY)], at, timedelta(0)).allowed
    assert is_open(EVENING, [ZoneInfo(NY)], at)


def test_may_start_call_refuses_a_negative_margin() -> None:
    at = datetime(2026, 11, 23, 19, tzinfo=UTC)
    with pytest.raises(ValueError, match="margin"):
        may_start_call(EVENING, [ZoneInfo(NY)], at, timedelta(seconds=-1))
