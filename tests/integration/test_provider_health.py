"""The fleet's provider health record in real Redis: shared by workers, one probe at a time."""

from __future__ import annotations

import uuid

import pytest
import redis

from dialer.policies.failover import FailoverRule
from dialer.policies.vocabulary import ProviderRoute
from dialer.providers.provider_health import RedisProviderHealth

pytestmark = pytest.mark.integration

RULE = FailoverRule(refusals=2, window_seconds=60, cooldown_seconds=30, probe_seconds=10)


def _two_workers(redis_url: str, clock: list[float]) -> tuple[RedisProviderHealth, ...]:
    namespace = uuid.uuid4().hex
    return tuple(
        RedisProviderHealth(redis.Redis.from_url(redis_url), RULE, lambda: clock[0], namespace)
        for _ in range(2)
    )


def test_refusals_counted_by_any_worker_open_the_circuit_for_all(redis_url: str) -> None:
    clock = [1000.0]
    one, other = _two_workers(redis_url, clock)
    one.refused("vapi")
    other.refused("vapi", 2)

    assert one.route("vapi", has_fallback=True) is ProviderRoute.FALLBACK
    assert other.route("vapi", has_fallback=False) is ProviderRoute.PRIMARY
    assert other.route("retell", has_fallback=True) is ProviderRoute.PRIMARY  # per provider


def test_refusals_older_than_the_window_do_not_count(redis_url: str) -> None:
    clock = [1000.0]
    one, other = _two_workers(redis_url, clock)
    one.refused("vapi", 2)
    clock[0] += RULE.window_seconds + 1
    other.refused("vapi")

    assert one.health("vapi").refusals_in_window == 1
    assert one.route("vapi", has_fallback=True) is ProviderRoute.PRIMARY


def test_one_probe_at_a_time_and_a_lost_probe_frees_the_next(redis_url: str) -> None:
    clock = [1000.0]
    one, other = _two_workers(redis_url, clock)
    one.refused("vapi", 3)
    clock[0] += RULE.cooldown_seconds

    assert one.route("vapi", has_fallback=True) is ProviderRoute.PROBE
    assert other.route("vapi", has_fallback=True) is ProviderRoute.FALLBACK
    clock[0] += RULE.probe_seconds + 0.5  # the probe's answer never came
    assert other.route("vapi", has_fallback=True) is ProviderRoute.PROBE

    other.placed("vapi")
    assert one.health("vapi").open_until is None
    assert one.route("vapi", has_fallback=True) is ProviderRoute.PRIMARY
