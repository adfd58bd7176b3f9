"""The Redis token bucket: the shared contract, atomicity across workers, key expiry."""

from __future__ import annotations

import threading

import pytest
import redis

from dialer.providers.ratelimit import (
    BucketLimits,
    RedisRateLimiter,
    provider_rate_limiter,
)
from dialer.settings import Settings
from tests.ratelimit_contract import CONTRACT, Case, FakeClock

LIMITS = BucketLimits(rate_per_second=10, burst=3, recovery_seconds=10)


@pytest.fixture
def bucket_key(redis_namespace: str) -> str:
    """A key of the test's own namespace (deleted afterwards)."""
    return f"{redis_namespace}:ratelimit"


@pytest.mark.parametrize("case", CONTRACT, ids=lambda case: case.__name__)
def test_redis_limiter_keeps_the_contract(
    case: Case, redis_client: redis.Redis, bucket_key: str
) -> None:
    clock = FakeClock()
    case(lambda limits: RedisRateLimiter(redis_client, limits, bucket_key, clock), clock)


def test_two_workers_share_one_budget(redis_client: redis.Redis, bucket_key: str) -> None:
    clock = FakeClock()
    first = RedisRateLimiter(redis_client, LIMITS, bucket_key, clock)
    second = RedisRateLimiter(redis_client, LIMITS, bucket_key, clock)
    assert [first.acquire(), second.acquire(), first.acquire()] == [0, 0, 0]
    assert second.acquire() == pytest.approx(0.1)
    second.slow_down(1.0)
    assert first.acquire() == pytest.approx(1.0 + 0.2), "one worker's 429 pauses the other"


def test_concurrent_workers_get_exactly_the_burst_at_one_instant(
    redis_url: str, bucket_key: str
) -> None:
    clock = FakeClock()
    granted: list[float] = []

    def worker() -> None:
        own_client = redis.Redis.from_url(redis_url)  # a worker process has its own connection
        limiter = RedisRateLimiter(own_client, LIMITS, bucket_key, clock)
        granted.extend(wait for wait in (limiter.acquire() for _ in range(20)) if wait == 0)
        own_client.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == LIMITS.burst


def test_the_bucket_expires_once_an_idle_bucket_would_be_full(
    redis_client: redis.Redis, bucket_key: str
) -> None:
    clock = FakeClock()
    limiter = RedisRateLimiter(redis_client, LIMITS, bucket_key, clock)
    limiter.acquire()
    idle_ms = LIMITS.idle_ttl_seconds() * 1000
    assert 0 < redis_client.pttl(bucket_key) <= idle_ms + 1
    limiter.slow_down(30.0)
    assert redis_client.pttl(bucket_key) > idle_ms, "a pause lengthens the key's life"


def test_the_settings_limiter_allows_one_second_of_calls_at_once(
    redis_url: str, bucket_key: str
) -> None:
    settings = Settings(provider_calls_per_second=2.5, _env_file=None)
    limiter = provider_rate_limiter(settings, redis_url, bucket_key)
    assert limiter.limits == BucketLimits(rate_per_second=2.5, burst=3)
    assert limiter.acquire(3) == 0
