"""Zones whose clocks change on different dates: callable for a few weeks, not never."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

import pytest

from dialer.policies.location import NO_LOCATION
from dialer.policies.plan import ContactFacts, ContactStanding, PlanBucket, classify_contact
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.window import (
    LegalBound,
    WorkingHours,
    next_opening,
    next_opening_within_a_year,
    validate_window,
)
from dialer.policies.zones import parse_zone
from scheduler import scan

NINE_TO_FIVE = validate_window(WorkingHours.create(time(9), time(17)), LegalBound())
LA_AND_LONDON = (parse_zone("America/Los_Angeles"), parse_zone("Europe/London"))
# 8 h apart in winter: no shared hour. From 2026-03-08 (US DST) to 2026-03-29 (UK
# summer time) they are 7 h apart: 16:00-17:00 UTC is 09:00-10:00 in LA, 16:00 in London.
MID_JANUARY = datetime(2026, 1, 14, 12, tzinfo=UTC)
FIRST_SHARED_HOUR = datetime(2026, 3, 9, 16, tzinfo=UTC)  # Monday


def test_two_weeks_of_search_finds_no_opening() -> None:
    assert next_opening(NINE_TO_FIVE, LA_AND_LONDON, MID_JANUARY) is None


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (MID_JANUARY, FIRST_SHARED_HOUR),
        (datetime(2026, 3, 9, 16, 30, tzinfo=UTC), datetime(2026, 3, 9, 16, 30, tzinfo=UTC)),
        (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 10, 26, 16, tzinfo=UTC)),
    ],
)
def test_a_year_of_search_finds_the_weeks_between_the_clock_changes(
    at: datetime, expected: datetime
) -> None:
    assert next_opening_within_a_year(NINE_TO_FIVE, LA_AND_LONDON, at) == expected


def test_zones_half_a_day_apart_still_never_open() -> None:
    far_apart = (parse_zone("America/New_York"), parse_zone("Asia/Tokyo"))
    assert next_opening_within_a_year(NINE_TO_FIVE, far_apart, MID_JANUARY) is None


def test_the_scan_moves_a_seasonal_contact_to_its_opening_instead_of_cancelling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scan, "contact_zones", lambda *_args: LA_AND_LONDON)
    attempt_id = uuid.uuid4()
    sorted_ = scan._sort(
        [scan._Due(attempt_id, None, "+15555550100", NO_LOCATION)],
        NINE_TO_FIVE,
        "UTC",
        10,
        scan._ChunkDecisions(MID_JANUARY, PACKS),
    )
    assert sorted_.never == []
    assert sorted_.move_ids == [attempt_id]
    assert sorted_.move_to == [FIRST_SHARED_HOUR]


def test_the_plan_shows_a_seasonal_contact_as_later_not_as_never() -> None:
    facts = ContactFacts(state="active", has_phone=True, opted_out=False, invalid_number=False)
    standing = classify_contact(NINE_TO_FIVE, LA_AND_LONDON, facts, MID_JANUARY)
    assert standing == ContactStanding(PlanBucket.LATER, FIRST_SHARED_HOUR)
