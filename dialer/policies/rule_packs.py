"""Jurisdiction rule packs: calling hours, days, public holidays and frequency caps per person.

A pack is data (``dialer.policies.rule_pack_data``) with a version and its sources; this
module applies the packs that govern a contact to the campaign's window, purely:

* hours: the packs' hours clip the window like the deployment's legal bound does;
* days: a pack's closed weekdays (Alabama: no Sunday) leave the campaign's weekdays;
* holidays: a pack closed on public holidays closes the window on every holiday of its
  jurisdiction (the ``holidays`` package's calendar, by country and subdivision);
* caps: at most N calls to one person per rolling period, across the account's
  campaigns (``cap_allows`` on the person's recent call times).

Which packs govern comes from ``dialer.policies.jurisdiction``: a contact whose state is
unknown gets every pack of its country at once, the strictest reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from dialer.policies.window import CallWindow, LegalBound


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most ``calls`` calls to one person within any ``hours``-long stretch."""

    calls: int
    hours: int

    @property
    def period(self) -> timedelta:
        return timedelta(hours=self.hours)


@dataclass(frozen=True, slots=True)
class RulePack:
    """The rules of one jurisdiction (a country, or one of its subdivisions)."""

    id: str  # "us-fl"
    version: str  # the date the pack was last checked against its sources
    country: str  # ISO 3166-1
    subdivision: str | None  # ISO 3166-2 code without the country, None: the whole country
    start: time
    end: time
    sources: tuple[str, ...]
    closed_weekdays: frozenset[int] = frozenset()  # 0 = Monday .. 6 = Sunday
    closed_on_holidays: bool = False
    caps: tuple[FrequencyCap, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"


@dataclass(frozen=True, slots=True)
class AppliedRules:
    """The packs governing a contact and why those."""

    packs: tuple[RulePack, ...]
    # True when the jurisdiction was not known exactly and every candidate pack applies.
    strictest: bool = False

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(pack.label for pack in self.packs)

    @property
    def caps(self) -> tuple[FrequencyCap, ...]:
        return tuple(cap for pack in self.packs for cap in pack.caps)


NO_RULES = AppliedRules(())


def apply_rules(window: CallWindow, rules: AppliedRules, years: Iterable[int]) -> CallWindow:
    """The window narrowed by the packs' hours, days and holidays (for ``years``)."""
    if not rules.packs:
        return window
    start = max((window.legal.start, *(p.start for p in rules.packs)))
    end = min((window.legal.end, *(p.end for p in rules.packs)))
    closed_days = frozenset().union(*(p.closed_weekdays for p in rules.packs))
    hours = window.hours
    if closed_days:
        hours = replace(hours, weekdays=hours.weekdays - closed_days)
    if end <= start:
        # No hour is left: say so with an empty window (the callers' "never opens").
        hours, legal = (
            replace(hours, start=window.legal.start, end=window.legal.start),
            window.legal,
        )
    else:
        legal = LegalBound(start, end)
    closed_dates = window.closed_dates | _holidays_of(rules.packs, tuple(sorted(set(years))))
    return CallWindow(hours=hours, legal=legal, closed_dates=closed_dates)


def _holidays_of(packs: Sequence[RulePack], years: tuple[int, ...]) -> frozenset[date]:
    dates: set[date] = set()
    for pack in packs:
        if pack.closed_on_holidays:
            dates |= public_holidays(pack.country, pack.subdivision, years)
    return frozenset(dates)


@lru_cache(maxsize=1024)
def public_holidays(
    country: str, subdivision: str | None, years: tuple[int, ...]
) -> frozenset[date]:
    """The jurisdiction's public holidays in ``years`` (the ``holidays`` package)."""
    calendar = holidays.country_holidays(country, subdiv=subdivision, years=years)
    return frozenset(calendar.keys())


def cap_allows(
    caps: Sequence[FrequencyCap], recent_calls: Sequence[datetime], at: datetime
) -> datetime | None:
    """None when another call at ``at`` keeps every cap; else when it would.

    ``recent_calls`` are the person's call start times (any order, any campaign).
    """
    reopens: datetime | None = None
    for cap in caps:
        inside = sorted(t for t in recent_calls if at - cap.period < t <= at)
        if len(inside) >= cap.calls:
            # The oldest call that must age out for one more to fit.
            frees_at = inside[len(inside) - cap.calls] + cap.period
            reopens = frees_at if reopens is None else max(reopens, frees_at)
    return reopens


def longest_cap_period(packs: Iterable[RulePack]) -> timedelta:
    """How far back the recent calls must be read for these packs' caps."""
    periods = [cap.period for pack in packs for cap in pack.caps]
    return max(periods, default=timedelta(0))
