"""The geometry of the dashboard's inline SVG charts: pure functions, numbers in, shapes out.

The templates draw what these return; nothing here knows HTML. Widths are in the
SVG's own units (its viewBox), so the browser scales a chart to the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from dialer.policies.window import Interval

CHART_WIDTH: Final = 1000
LABEL_WIDTH: Final = 230
BAR_WIDTH: Final = CHART_WIDTH - LABEL_WIDTH - 90
ROW_HEIGHT: Final = 30
TIMELINE_WIDTH: Final = CHART_WIDTH - LABEL_WIDTH
TIMELINE_ROW: Final = 38
# Colour classes (dashboard.css): a palette readable by colour-blind people (Okabe-Ito),
# every segment also named in a legend with its number, never by colour alone.
OUTCOME_CLASSES: Final = {
    "answered": "c-good",
    "no_answer": "c-wait",
    "busy": "c-warn",
    "voicemail": "c-info",
    "rejected": "c-bad",
    "failed": "c-bad2",
    "canceled": "c-mute",
}
STATE_CLASSES: Final = {
    "active": "c-info",
    "goal_met": "c-good",
    "unresolved": "c-warn",
    "not_answered": "c-wait",
    "failed": "c-bad",
    "opted_out": "c-bad2",
    "missing_contact": "c-mute",
}


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    whole: int
    y: int
    width: float  # of the filled part, out of BAR_WIDTH


@dataclass(frozen=True)
class Segment:
    label: str
    value: int
    x: float
    width: float
    css: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Lane:
    label: str
    detail: str
    y: int
    spans: tuple[tuple[float, float, str], ...]  # x, width, title (the local hours)


def progress_bars(values: Sequence[tuple[str, int, int]]) -> list[Bar]:
    """One bar per (label, value, whole): the filled share of value in whole."""
    bars = []
    for index, (label, value, whole) in enumerate(values):
        share = min(1.0, value / whole) if whole else 0.0
        bars.append(Bar(label, value, whole, index * ROW_HEIGHT, round(share * BAR_WIDTH, 1)))
    return bars


def stacked(counts: Mapping[str, int], classes: Mapping[str, str]) -> list[Segment]:
    """One bar split by ``counts`` (known words in their order first), across CHART_WIDTH."""
    total = sum(counts.values())
    order = [w for w in classes if counts.get(w)] + sorted(
        w for w in counts if w not in classes and counts[w]
    )
    segments, x = [], 0.0
    for word in order:
        width = CHART_WIDTH * counts[word] / total
        segments.append(
            Segment(word, counts[word], round(x, 2), round(width, 2), classes.get(word, "c-mute"))
        )
        x += width
    return segments


def timeline_ticks(start: datetime, end: datetime, zone: ZoneInfo) -> list[Tick]:
    """A tick at each local midnight of ``zone`` between start and end, labelled by day."""
    width = TIMELINE_WIDTH
    span = (end - start).total_seconds()
    local = start.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    ticks = []
    while midnight < end:
        offset = (midnight - start).total_seconds()
        ticks.append(
            Tick(round(LABEL_WIDTH + width * offset / span, 1), midnight.strftime("%a %d"))
        )
        midnight = (midnight + timedelta(days=1, hours=2)).replace(hour=0)
    return ticks


def timeline_lanes(
    rows: Sequence[tuple[str, str, Sequence[Interval], ZoneInfo]],
    start: datetime,
    end: datetime,
) -> list[Lane]:
    """One lane per (label, detail, open intervals, zone): each interval as an x span,
    titled with its hours on the zone's wall clock."""
    width = TIMELINE_WIDTH
    span = (end - start).total_seconds()
    lanes = []
    for index, (label, detail, intervals, zone) in enumerate(rows):
        spans = tuple(
            (
                round(LABEL_WIDTH + width * (opens - start).total_seconds() / span, 2),
                max(1.0, round(width * (closes - opens).total_seconds() / span, 2)),
                _local_span(opens, closes, zone),
            )
            for opens, closes in intervals
        )
        lanes.append(Lane(label, detail, index * TIMELINE_ROW + 20, spans))
    return lanes


def _local_span(opens: datetime, closes: datetime, zone: ZoneInfo) -> str:
    start, end = opens.astimezone(zone), closes.astimezone(zone)
    return f"{start:%a %H:%M}-{end:%H:%M} {zone.key}"
