"""The contact plan as a timeline: per time zone, when its contacts are callable.

``dialer plan`` classifies each contact (dialer.services.plan); the dashboard groups
that same plan by the contacts' zones and asks the campaign's window when it opens in
each group over the next days (dialer.policies.window.open_intervals), beside the
contacts the plan skips, by reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from dialer.policies.plan import SKIPPED, PlanBucket
from dialer.policies.window import Interval, LegalBound, open_intervals
from dialer.services.campaigns import window_of
from dialer.services.plan import build_contact_plan
from models import Campaign

TIMELINE_DAYS: Final = 7
MAX_ZONE_ROWS: Final = 12  # the busiest zone groups; the rest are counted together


@dataclass(frozen=True)
class ZoneRow:
    zones: tuple[str, ...]  # a number in several zones is callable only where all are open
    waiting: int  # contacts with calls still planned
    callable_now: int
    intervals: tuple[Interval, ...]


@dataclass
class Timeline:
    at: datetime
    until: datetime
    rows: list[ZoneRow] = field(default_factory=list)
    other_zone_contacts: int = 0  # waiting contacts in zone groups past MAX_ZONE_ROWS
    skipped: Counter[PlanBucket] = field(default_factory=Counter)
    closed: int = 0  # contacts whose plan has ended
    counts: Counter[PlanBucket] = field(default_factory=Counter)


def zone_timeline(
    session: Session, campaign: Campaign, at: datetime, legal: LegalBound
) -> Timeline:
    """Who is callable when over the next TIMELINE_DAYS, per zone group, and who is skipped."""
    plan = build_contact_plan(session, campaign, at, legal)
    until = at + timedelta(days=TIMELINE_DAYS)
    timeline = Timeline(at=at, until=until, counts=plan.counts)
    waiting: Counter[tuple[str, ...]] = Counter()
    now: Counter[tuple[str, ...]] = Counter()
    for row in plan.rows:
        if row.bucket in SKIPPED:
            timeline.skipped[row.bucket] += 1
        elif row.bucket == PlanBucket.CLOSED:
            timeline.closed += 1
        elif row.zones:
            waiting[row.zones] += 1
            now[row.zones] += row.bucket == PlanBucket.NOW
    window = window_of(campaign, legal)
    for zones, count in waiting.most_common(MAX_ZONE_ROWS):
        intervals = open_intervals(window, [ZoneInfo(z) for z in zones], at, until)
        timeline.rows.append(ZoneRow(zones, count, now[zones], intervals))
    timeline.other_zone_contacts = sum(waiting.values()) - sum(r.waiting for r in timeline.rows)
    return timeline
