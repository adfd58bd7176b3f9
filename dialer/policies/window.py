"""The working-hours window: when a contact may be called, on the contact's own wall clock.

The truth is a wall-clock test. The window is open at instant ``t`` in zone ``Z`` iff
``local = t.astimezone(Z)`` falls on an allowed weekday (0=Monday, Python ``weekday()``)
and ``effective_start <= local.time() < effective_end``. The effective bounds are the
campaign's hours clipped to the deployment's legal bound. A contact may live in several
zones (one phone prefix can span several); the call is allowed only when the window is
open in all of them.

``is_open`` applies that test directly. ``next_opening`` and ``current_closing`` need
the same set as UTC intervals, which is where DST bites: on a spring-forward day local
times in the gap never happen, so a window starting at 02:30 opens at the transition
instant (local 03:00); on a fall-back day local times repeat, so one wall-clock window
can be two UTC intervals. We therefore split time into constant-offset segments (the
transitions are found by sampling offsets and bisecting to the second, because
zoneinfo does not expose its transition table) and map the wall-clock window onto each
segment exactly. Segments and per-date intervals are cached: the scheduler asks the
same questions for thousands of attempts per tick.

Everything here is pure: ``at`` is always passed in, timezone-aware.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dialer.errors import WindowNeverOpens

MONDAY_TO_FRIDAY: frozenset[int] = frozenset(range(5))
ALL_WEEKDAYS: frozenset[int] = frozenset(range(7))

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
# Offsets are sampled this often to find transitions; two equal samples are taken to mean
# no change between them. In tzdata 2026 the closest two offset changes in any zone are
# about 4 days apart (Africa/Freetown, 1939), so 6 hours leaves a wide margin.
_OFFSET_SAMPLE_STEP = timedelta(hours=6)

# A UTC interval [start, end) in which the window is open.
Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """A campaign's ``call_working_hours``: local wall-clock times on some weekdays."""

    start: time
    end: time
    weekdays: frozenset[int] = MONDAY_TO_FRIDAY

    @classmethod
    def create(cls, start: time, end: time, weekdays: Iterable[int] | None = None) -> WorkingHours:
        """Build from any iterable of weekdays; None means Monday to Friday."""
        days = MONDAY_TO_FRIDAY if weekdays is None else frozenset(weekdays)
        return cls(start=start, end=end, weekdays=days)


@dataclass(frozen=True, slots=True)
class LegalBound:
    """The deployment's legal calling hours, applied on top of every campaign's window."""

    start: time = time(8)
    end: time = time(21)

    def __post_init__(self) -> None:
        # A deployment setting, not user input: fail fast when the process starts.
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("legal bound times must be wall-clock times without tzinfo")
        if self.end <= self.start:
            raise ValueError(f"legal bound end {self.end} must be after start {self.start}")


@dataclass(frozen=True, slots=True)
class CallWindow:
    """Working hours clipped to the legal bound. Build it with ``validate_window``."""

    hours: WorkingHours
    legal: LegalBound
    # Local dates on which no call is allowed in a zone (a jurisdiction's public
    # holidays, from its rule pack): the window is closed all day on them.
    closed_dates: frozenset[date] = frozenset()

    @property
    def effective_start(self) -> time:
        return max(self.hours.start, self.legal.start)

    @property
    def effective_end(self) -> time:
        return min(self.hours.end, self.legal.end)


def validate_window(hours: WorkingHours, legal: LegalBound) -> CallWindow:
    """Return the window, or raise WindowNeverOpens naming the field at fault."""
    if not hours.weekdays:
        raise WindowNeverOpens("call_working_hours.weekdays", "at least one weekday is required")
    bad_days = sorted(
        (d for d in hours.weekdays if not isinstance(d, int) or not 0 <= d <= 6), key=str
    )
    if bad_days:
        raise WindowNeverOpens(
            "call_working_hours.weekdays",
            f"weekdays are 0 (Monday) to 6 (Sunday), got {bad_days}",
        )
    for name, value in (("start", hours.start), ("end", hours.end)):
        if value.tzinfo is not None:
            raise WindowNeverOpens(
                f"call_working_hours.{name}", "must be a local wall-clock time without a zone"
            )
    if hours.end <= hours.start:
        raise WindowNeverOpens(
            "call_working_hours.end",
            f"end {_hhmm(hours.end)} must be after start {_hhmm(hours.start)}",
        )
    window = CallWindow(hours=hours, legal=legal)
    if window.effective_end <= window.effective_start:
        raise WindowNeverOpens(
            "call_working_hours",
            f"window {_hhmm(hours.start)}-{_hhmm(hours.end)} lies entirely outside the "
            f"legal calling hours {_hhmm(legal.start)}-{_hhmm(legal.end)}",
        )
    return window


def local_time(zone: ZoneInfo, at: datetime) -> datetime:
    """The instant ``at`` on the wall clock of ``zone``."""
    # Through UTC: astimezone() to the zone ``at`` already carries returns ``at`` as is,
    # which for a nonexistent wall time (02:30 on a spring-forward day) is not the
    # wall reading of the instant it denotes.
    return _utc(at).astimezone(zone)


def is_open(window: CallWindow, zones: Sequence[ZoneInfo], at: datetime) -> bool:
    """True when the window is open at ``at`` in every one of ``zones``."""
    _require_zones(zones)
    at_utc = _utc(at)  # see local_time for why not at.astimezone(zone)
    start, end, weekdays = window.effective_start, window.effective_end, window.hours.weekdays
    closed = window.closed_dates
    for zone in zones:
        local = at_utc.astimezone(zone)
        if local.weekday() not in weekdays or not start <= local.time() < end:
            return False
        if closed and local.date() in closed:
            return False
    return True


def next_opening(
    window: CallWindow, zones: Sequence[ZoneInfo], at: datetime, horizon_days: int = 14
) -> datetime | None:
    """The earliest instant >= ``at`` at which the window is open, in UTC.

    Returns ``at`` (converted to UTC, so equal to it) when the window is open now, and
    None when it does not open within ``horizon_days`` (zones far apart may never
    share an open moment).
    """
    at_utc = _utc(at)
    intervals = _intervals_around(window, zones, at_utc, horizon_days)
    # The first interval that ends after ``at``: intervals are sorted and disjoint.
    index = bisect_right(intervals, at_utc, key=lambda interval: interval[1])
    if index == len(intervals):
        return None
    opening = max(intervals[index][0], at_utc)
    return opening if opening - at_utc <= timedelta(days=horizon_days) else None


# A year and a week: every zone's clock changes fall inside it, so a window that does not
# open within it does not open at all under the current rules.
SEASONAL_HORIZON_DAYS = 371


def next_opening_within_a_year(
    window: CallWindow, zones: Sequence[ZoneInfo], at: datetime
) -> datetime | None:
    """``next_opening``, searched over a year of clock changes before answering None.

    Zones that change their clocks on different dates (Los Angeles and London) may
    share an open hour only in the weeks between the two changes: two weeks of search
    would call such a contact never callable and cancel it. The short search answers
    almost every contact; the long one runs only for those it leaves without an opening.
    """
    soon = next_opening(window, zones, at)
    if soon is not None:
        return soon
    return next_opening(window, zones, at, horizon_days=SEASONAL_HORIZON_DAYS)


def current_closing(window: CallWindow, zones: Sequence[ZoneInfo], at: datetime) -> datetime | None:
    """When the window is open at ``at``, the first later instant at which it is closed."""
    if not is_open(window, zones, at):
        return None
    at_utc = _utc(at)
    intervals = _intervals_around(window, zones, at_utc, horizon_days=2)
    index = bisect_right(intervals, at_utc, key=lambda interval: interval[1])
    # is_open and the intervals describe the same set, so the interval contains ``at``.
    return intervals[index][1]


@dataclass(frozen=True, slots=True)
class StartCheck:
    """May a call start now; when not, the instant to try again (None: not within 14 days)."""

    allowed: bool
    reopens: datetime | None = None


def may_start_call(
    window: CallWindow, zones: Sequence[ZoneInfo], at: datetime, margin: timedelta
) -> StartCheck:
    """A call may start at ``at`` only if the window stays open until ``at + margin``.

    Being open at the instant a request is sent is not enough: the provider takes a
    moment to ring the phone, and a call sent 1 s before closing rings after it. The
    margin covers that latency. A refused call reopens at the first opening after the
    current stretch closes (or after ``at`` when the window is already closed).
    """
    if margin < timedelta(0):
        raise ValueError(f"margin must be >= 0, got {margin}")
    closing = current_closing(window, zones, at)
    if closing is not None and _utc(at) + margin < closing:
        return StartCheck(allowed=True)
    return StartCheck(allowed=False, reopens=next_opening(window, zones, closing or at))


# --- UTC intervals -------------------------------------------------------------------


def open_intervals(
    window: CallWindow, zones: Sequence[ZoneInfo], since: datetime, until: datetime
) -> tuple[Interval, ...]:
    """The UTC intervals in [since, until) at which the window is open in every zone.

    What a timeline draws (the dashboard's "who is callable when"): the same intervals
    ``next_opening`` searches, clipped to the range.
    """
    since_utc, until_utc = _utc(since), _utc(until)
    if until_utc <= since_utc:
        return ()
    horizon_days = (until_utc - since_utc).days + 1
    clipped = (
        (max(opens, since_utc), min(closes, until_utc))
        for opens, closes in _intervals_around(window, zones, since_utc, horizon_days)
    )
    return tuple((opens, closes) for opens, closes in clipped if opens < closes)


def _intervals_around(
    window: CallWindow, zones: Sequence[ZoneInfo], at_utc: datetime, horizon_days: int
) -> tuple[Interval, ...]:
    """Open intervals covering the UTC days from the day before ``at`` to past the horizon."""
    _require_zones(zones)
    if horizon_days < 0:
        raise ValueError(f"horizon_days must be >= 0, got {horizon_days}")
    day = at_utc.date()
    return _open_intervals(
        window.effective_start,
        window.effective_end,
        window.hours.weekdays,
        tuple(zones),
        day - _DAY,
        day + timedelta(days=horizon_days + 2),
        window.closed_dates,
    )


@lru_cache(maxsize=4096)
def _open_intervals(
    start: time,
    end: time,
    weekdays: frozenset[int],
    zones: tuple[ZoneInfo, ...],
    first_day: date,
    end_day: date,
    closed: frozenset[date] = frozenset(),
) -> tuple[Interval, ...]:
    """Intervals open in every zone, clipped to the UTC days [first_day, end_day)."""
    result = _zone_intervals(start, end, weekdays, zones[0], first_day, end_day, closed)
    for zone in zones[1:]:
        result = _intersect(
            result, _zone_intervals(start, end, weekdays, zone, first_day, end_day, closed)
        )
    return result


def _zone_intervals(
    start: time,
    end: time,
    weekdays: frozenset[int],
    zone: ZoneInfo,
    first_day: date,
    end_day: date,
    closed: frozenset[date] = frozenset(),
) -> tuple[Interval, ...]:
    """One zone's open intervals, sorted, merged, clipped to the UTC days [first, end)."""
    lower, upper = _utc_midnight(first_day), _utc_midnight(end_day)
    pieces: list[Interval] = []
    # Offsets are within +-24 h, so local dates one day either side can reach the range.
    local_day = first_day - _DAY
    while local_day <= end_day:
        if local_day.weekday() in weekdays and local_day not in closed:
            for opens, closes in _local_date_intervals(zone, local_day, start, end):
                opens, closes = max(opens, lower), min(closes, upper)
                if opens < closes:
                    pieces.append((opens, closes))
        local_day += _DAY
    # A fall-back across midnight can put a later local date's time before an earlier one's.
    pieces.sort()
    return _merge_adjacent(pieces)


@lru_cache(maxsize=16384)
def _local_date_intervals(
    zone: ZoneInfo, local_day: date, start: time, end: time
) -> tuple[Interval, ...]:
    """UTC intervals whose wall-clock time in ``zone`` is in [start, end) on ``local_day``."""
    wall_start = datetime.combine(local_day, start, tzinfo=UTC)
    wall_end = datetime.combine(local_day, end, tzinfo=UTC)
    pieces: list[Interval] = []
    # Within a constant-offset segment wall = utc + offset, so the inverse is exact;
    # gaps and repeats fall out of clipping to the segment.
    for utc_day in (local_day - _DAY, local_day, local_day + _DAY):
        for seg_start, seg_end, offset in _utc_day_segments(zone, utc_day):
            opens = max(seg_start, wall_start - offset)
            closes = min(seg_end, wall_end - offset)
            if opens < closes:
                pieces.append((opens, closes))
    return _merge_adjacent(pieces)


@lru_cache(maxsize=8192)
def _utc_day_segments(
    zone: ZoneInfo, utc_day: date
) -> tuple[tuple[datetime, datetime, timedelta], ...]:
    """Split a UTC day into [start, end) stretches of constant UTC offset in ``zone``."""
    day_start = _utc_midnight(utc_day)
    day_end = day_start + _DAY
    segments: list[tuple[datetime, datetime, timedelta]] = []
    seg_start, offset = day_start, _offset(zone, day_start)
    sample = day_start
    while sample < day_end:
        following = sample + _OFFSET_SAMPLE_STEP
        following_offset = _offset(zone, following)
        if following_offset != offset:
            change = _transition_instant(zone, sample, following)
            if seg_start < change:
                segments.append((seg_start, min(change, day_end), offset))
            seg_start, offset = change, following_offset
        sample = following
    if seg_start < day_end:
        segments.append((seg_start, day_end, offset))
    return tuple(segments)


def _transition_instant(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first whole second in (before, after] with the offset ``after`` has.

    tzdata transitions fall on whole seconds, and ``before`` is on one, so this is exact.
    """
    old = _offset(zone, before)
    while after - before > _SECOND:
        middle = before + (after - before) // 2
        middle -= timedelta(microseconds=middle.microsecond)
        if _offset(zone, middle) == old:
            before = middle
        else:
            after = middle
    return after


def _offset(zone: ZoneInfo, at_utc: datetime) -> timedelta:
    offset = at_utc.astimezone(zone).utcoffset()
    assert offset is not None  # ZoneInfo always knows its offset for an aware instant.
    return offset


def _intersect(left: Sequence[Interval], right: Sequence[Interval]) -> tuple[Interval, ...]:
    """Intersection of two sorted lists of disjoint intervals (two-pointer sweep)."""
    result: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        opens = max(left[i][0], right[j][0])
        closes = min(left[i][1], right[j][1])
        if opens < closes:
            result.append((opens, closes))
        # Drop whichever interval ends first: it cannot meet anything further on.
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return tuple(result)


def _merge_adjacent(sorted_pieces: Iterable[Interval]) -> tuple[Interval, ...]:
    """Join touching intervals so a closing time is never a mere seam between pieces."""
    merged: list[Interval] = []
    for opens, closes in sorted_pieces:
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(closes, merged[-1][1]))
        else:
            merged.append((opens, closes))
    return tuple(merged)


# --- small helpers -------------------------------------------------------------------


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _utc(at: datetime) -> datetime:
    _require_aware(at)
    return at.astimezone(UTC)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {at.isoformat()}")


def _require_zones(zones: Sequence[ZoneInfo]) -> None:
    # all() over no zones would be vacuously true: an empty list is a caller bug.
    if not zones:
        raise ValueError("at least one time zone is required")


def _hhmm(value: time) -> str:
    return value.isoformat(timespec="seconds" if value.second else "minutes")
