"""What every rate limiter must do, run against the in-memory and the Redis bucket alike.

Each case takes a factory ``make(limits) -> limiter`` whose limiter reads ``clock``,
a hand-advanced fake clock, so nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dialer.providers.ratelimit import BucketLimits, CallRateLimiter


class FakeClock:
    """Unix seconds, advanced by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeLimiter = Callable[[BucketLimits], CallRateLimiter]
Case = Callable[[MakeLimiter, FakeClock], None]

TEN_PER_SECOND = BucketLimits(rate_per_second=10, burst=3, recovery_seconds=10)


def grants_the_burst_then_says_how_long_to_wait(make: MakeLimiter, clock: FakeClock) -> None:
    limiter = make(TEN_PER_SECOND)
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire() == pytest.approx(0.1)
    assert limiter.acquire() == pytest.approx(0.1), "a refused acquire takes nothing"


def waiting_the_answer_is_enough(make: MakeLimiter, clock: FakeClock) -> None:
    limiter = make(TEN_PER_SECOND)
    for _ in range(3):
        limiter.acquire()
    clock.advance(limiter.acquire())
    assert limiter.acquire() == 0


def refills_with_time_but_never_past_the_burst(make: MakeLimiter, clock: FakeClock) -> None:
    limiter = make(TEN_PER_SECOND)
    for _ in range(3):
        limiter.acquire()
    clock.advance(0.25)  # 2.5 tokens
    assert limiter.acquire(2) == 0
    assert limiter.acquire() == pytest.approx(0.05)
    clock.advance(100)
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire() > 0


def slow_down_pauses_everyone_then_halves_the_rate(make: MakeLimiter, clock: FakeClock) -> None:
    limiter = make(TEN_PER_SECOND)
    limiter.slow_down(2.0)
    assert limiter.acquire() == pytest.approx(2.0 + 0.2), "pause, then one token at 5/s"
    clock.advance(2.0)
    assert limiter.acquire() == pytest.approx(0.2), "nothing refilled during the pause"
    clock.advance(0.2)
    assert limiter.acquire() == 0


def a_burst_of_429s_halves_the_rate_once(make: MakeLimiter, clock: FakeClock) -> None:
    limiter = make(TEN_PER_SECOND)
    limiter.slow_down(1.0)
    clock.advance(0.5)
    limiter.slow_down(2.0)  # a second worker's 429 on the same overload
    assert limiter.acquire() == pytest.approx(2.0 + 0.2), "pause extended, rate halved once"


def slow_down_without_retry_after_uses_the_default_pause(
    make: MakeLimiter, clock: FakeClock
) -> None:
    limiter = make(BucketLimits(rate_per_second=10, burst=3, default_pause_seconds=1.5))
    limiter.slow_down(None)
    assert limiter.acquire() == pytest.approx(1.5 + 0.2)


def the_rate_recovers_linearly(make: MakeLimiter, clock: FakeClock) -> None:
    limiter = make(TEN_PER_SECOND)  # recovers 1/10 of the rate per second
    limiter.slow_down(0.0)
    clock.advance(2.0)
    for _ in range(3):
        assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(1 / 7), "factor 0.5 + 2 s / 10 s = 0.7"
    clock.advance(3.0)
    for _ in range(3):
        limiter.acquire()
    assert limiter.acquire() == pytest.approx(0.1), "full rate again"


def the_rate_never_drops_below_the_floor(make: MakeLimiter, clock: FakeClock) -> None:
    limiter = make(BucketLimits(rate_per_second=10, burst=3, min_rate_factor=0.25))
    for _ in range(5):
        limiter.slow_down(0.0)  # separate overloads, each after the last pause ended
    assert limiter.acquire() == pytest.approx(1 / 2.5)


def refuses_more_than_the_burst(make: MakeLimiter, clock: FakeClock) -> None:
    limiter = make(TEN_PER_SECOND)
    with pytest.raises(ValueError, match="n: must be between 1 and the burst"):
        limiter.acquire(4)


CONTRACT: list[Case] = [
    grants_the_burst_then_says_how_long_to_wait,
    waiting_the_answer_is_enough,
    refills_with_time_but_never_past_the_burst,
    slow_down_pauses_everyone_then_halves_the_rate,
    a_burst_of_429s_halves_the_rate_once,
    slow_down_without_retry_after_uses_the_default_pause,
    the_rate_recovers_linearly,
    the_rate_never_drops_below_the_floor,
    refuses_more_than_the_burst,
]
