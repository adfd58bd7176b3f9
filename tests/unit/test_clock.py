"""The one clock: the wall clock, or the demo's fast clock from its anchors (freezegun)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from dialer.clock import simulated_delta, utcnow
from dialer.settings import Settings

REAL_ANCHOR = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SIM_ANCHOR = datetime(2026, 7, 15, 6, 0, tzinfo=UTC)


def _settings(**update: object) -> Settings:
    return Settings().model_copy(update=update)


@freeze_time("2026-12-03T09:00:00Z")
def test_without_anchors_now_is_the_wall_clock_in_utc() -> None:
    now = utcnow(_settings())
    assert now == REAL_ANCHOR
    assert now.tzinfo is not None


@pytest.mark.parametrize(
    ("real_elapsed", "speed", "expected_sim"),
    [
        (timedelta(0), 10_800.0, SIM_ANCHOR),
        (timedelta(seconds=1), 10_800.0, SIM_ANCHOR + timedelta(hours=3)),
        (timedelta(seconds=20), 10_800.0, SIM_ANCHOR + timedelta(hours=60)),
        (timedelta(minutes=5), 1.0, SIM_ANCHOR + timedelta(minutes=5)),
    ],
)
def test_the_fast_clock_runs_speed_times_the_wall_clock_from_its_anchors(
    real_elapsed: timedelta, speed: float, expected_sim: datetime
) -> None:
    cfg = _settings(clock_speed=speed, clock_anchor_real=REAL_ANCHOR, clock_anchor_sim=SIM_ANCHOR)
    with freeze_time(REAL_ANCHOR) as frozen:
        frozen.tick(real_elapsed)
        assert utcnow(cfg) == expected_sim


def test_naive_anchors_are_read_as_utc() -> None:
    naive_real, naive_sim = REAL_ANCHOR.replace(tzinfo=None), SIM_ANCHOR.replace(tzinfo=None)
    cfg = _settings(clock_speed=60.0, clock_anchor_real=naive_real, clock_anchor_sim=naive_sim)
    with freeze_time(REAL_ANCHOR + timedelta(seconds=2)):
        assert utcnow(cfg) == SIM_ANCHOR + timedelta(minutes=2)


def test_operational_timeouts_are_real_seconds_scaled_into_simulated_time() -> None:
    assert simulated_delta(2.0, _settings(clock_speed=180.0)) == timedelta(minutes=6)
