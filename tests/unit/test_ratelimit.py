"""The token bucket's arithmetic (pure functions) and the in-memory limiter.

The same contract runs against Redis in tests/integration/test_ratelimit_redis.py.
"""

from __future__ import annotations

import threading

import pytest

from dialer.providers.ratelimit import (
    BucketLimits,
    BucketState,
    InMemoryRateLimiter,
    fresh_state,
    rate_factor,
    settle,
    slowed_down,
    take,
)
from tests.ratelimit_contract import CONTRACT, Case, FakeClock

LIMITS = BucketLimits(rate_per_second=10, burst=3, recovery_seconds=10)
T0 = 1_000.0


@pytest.mark.parametrize("case", CONTRACT, ids=lambda case: case.__name__)
def test_in_memory_limiter_keeps_the_contract(case: Case) -> None:
    clock = FakeClock()
    case(lambda limits: InMemoryRateLimiter(limits, clock), clock)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rate_per_second": 0}, "rate_per_second: must be above 0"),
        ({"burst": 0}, "burst: must be at least 1"),
        ({"min_rate_factor": 0}, "min_rate_factor: must be in"),
        ({"min_rate_factor": 1.5}, "min_rate_factor: must be in"),
        ({"recovery_seconds": 0}, "recovery_seconds: must be above 0"),
        ({"default_pause_seconds": -1}, "default_pause_seconds: must be >= 0"),
    ],
)
def test_bad_limits_name_the_setting(changes: dict[str, float], message: str) -> None:
    values = {"rate_per_second": 10.0, "burst": 3, **changes}
    with pytest.raises(ValueError, match=message):
        BucketLimits(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(-1.0, 0.5), (0.0, 0.5), (1.0, 0.6), (4.0, 0.9), (5.0, 1.0), (60.0, 1.0)],
)
def test_rate_factor_climbs_back_linearly_and_stops_at_one(elapsed: float, expected: float) -> None:
    state = BucketState(tokens=0, updated_at=T0, factor=0.5, factor_at=T0)
    assert rate_factor(state, LIMITS, T0 + elapsed) == pytest.approx(expected)


def test_a_clock_behind_the_bucket_never_moves_it_back() -> None:
    state = BucketState(tokens=2.0, updated_at=T0 + 5, factor=1.0, factor_at=T0)
    assert settle(state, LIMITS, T0) == state
    after, wait = take(state, LIMITS, T0)
    assert wait == 0
    assert after.updated_at == T0 + 5
    assert after.tokens == pytest.approx(1.0)


def test_while_paused_the_wait_counts_the_rest_of_the_pause() -> None:
    paused = slowed_down(fresh_state(LIMITS, T0), LIMITS, T0, 3.0)
    assert paused.tokens == 0
    assert paused.updated_at == T0 + 3
    assert paused.factor == pytest.approx(0.5)
    assert paused.factor_at == T0 + 3, "recovery starts when the pause ends"
    _, wait = take(paused, LIMITS, T0 + 1)
    assert wait == pytest.approx(2.0 + 0.2)


def test_a_negative_retry_after_does_not_pause() -> None:
    state = slowed_down(fresh_state(LIMITS, T0), LIMITS, T0, -5.0)
    assert state.updated_at == T0


def test_idle_ttl_covers_a_slow_refill_and_the_recovery() -> None:
    limits = BucketLimits(rate_per_second=2, burst=4, min_rate_factor=0.25, recovery_seconds=30)
    assert limits.idle_ttl_seconds() == pytest.approx(4 / 0.5 + 30 + 1)


def test_threads_sharing_a_limiter_get_exactly_the_burst_at_one_instant() -> None:
    limiter = InMemoryRateLimiter(LIMITS, FakeClock())
    granted: list[float] = []

    def worker() -> None:
        granted.extend(wait for wait in (limiter.acquire() for _ in range(20)) if wait == 0)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == LIMITS.burst
