"""The demo's simulated week always holds a public holiday of a shipped pack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.demo.history import EARLIER_CALLS_HOURS, demo_start
from dialer.policies.rule_packs import FrequencyCap, cap_allows, public_holidays


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 12, 4, 20, tzinfo=UTC), datetime(2026, 12, 7, 6, tzinfo=UTC)),  # Dec 8, ES
        (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 12, 6, tzinfo=UTC)),  # Oct 12, ES
        (datetime(2026, 12, 7, 6, tzinfo=UTC), datetime(2026, 12, 21, 6, tzinfo=UTC)),  # Dec 25
    ],
)
def test_the_demo_starts_on_a_monday_of_a_week_with_a_holiday(
    now: datetime, expected: datetime
) -> None:
    start = demo_start(now)
    assert start == expected
    assert start.weekday() == 0
    assert start > now
    week = {(start + timedelta(days=d)).date() for d in range(5)}
    assert week & (
        public_holidays("ES", None, (start.year,)) | public_holidays("FR", None, (start.year,))
    )


def test_the_other_campaign_keeps_florida_s_cap_full_until_wednesday() -> None:
    start = datetime(2026, 12, 7, 6, tzinfo=UTC)
    calls = [start + timedelta(hours=h) for h in EARLIER_CALLS_HOURS]
    florida = (FrequencyCap(calls=3, hours=24),)
    monday_opening = start + timedelta(hours=8)  # 09:00 in Miami
    assert cap_allows(florida, [c for c in calls if c <= monday_opening], monday_opening)
    thursday = start + timedelta(days=3, hours=8)
    assert cap_allows(florida, [c for c in calls if c <= thursday], thursday) is None
