"""The fleet's record of each voice provider's health, in Redis, for failover.

Every worker sees one record per provider (``failover:<provider>:*``):

- ``refusals``: a sorted set of the provider's refusals that placed no call, scored by
  when they happened; those older than the window are dropped when one is added, so
  its size is the sliding count;
- ``open_until``: set when the circuit opened (dialer.policies.failover), the Unix
  time the cool-down ends; absent while the provider is healthy;
- ``probe``: the deadline of the one probe placement allowed while half-open, claimed
  with a script so two workers cannot both probe.

The decisions are the policy's; this module only reads, counts and writes. Times come
from an injected Unix clock (tests move it), Redis TTLs only collect the garbage.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Final, Protocol

import redis

from dialer.dependencies import UnixClock
from dialer.logging import get_logger
from dialer.policies.failover import (
    FailoverRule,
    ProviderHealth,
    after_refusal,
    closes_after_success,
    route,
)
from dialer.policies.vocabulary import ProviderRoute

DEFAULT_NAMESPACE: Final = "failover"
# Set the probe's deadline unless a live one is there (ARGV: now, deadline, ttl ms).
_CLAIM_PROBE: Final = """
local held = redis.call('GET', KEYS[1])
if held and tonumber(held) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

log = get_logger("dialer.providers.provider_health")


class HealthStore(Protocol):
    """What dispatch asks and tells about a provider's health."""

    def route(self, provider: str, *, has_fallback: bool) -> ProviderRoute:
        """PRIMARY, FALLBACK, or PROBE (the caller holds the one probe: send it to primary)."""
        ...

    def refused(self, provider: str, count: int = 1) -> None:
        """The provider refused ``count`` placements and provably placed no call."""
        ...

    def placed(self, provider: str) -> None:
        """The provider accepted a placement."""
        ...


class RedisProviderHealth:
    """The health record every worker shares (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        rule: FailoverRule,
        clock: UnixClock = time.time,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self._redis = client
        self._rule = rule
        self._clock = clock
        self._namespace = namespace
        self._claim_probe = client.register_script(_CLAIM_PROBE)

    def health(self, provider: str) -> ProviderHealth:
        now = self._clock()
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcount(self._key(provider, "refusals"), now - self._rule.window_seconds, "+inf")
        pipe.get(self._key(provider, "open_until"))
        count, open_until = pipe.execute()
        return ProviderHealth(int(count), None if open_until is None else float(open_until))

    def route(self, provider: str, *, has_fallback: bool) -> ProviderRoute:
        if not has_fallback:
            return ProviderRoute.PRIMARY  # no read: nothing would change the answer
        now = self._clock()
        decision = route(self.health(provider), now, has_fallback=True)
        if decision is not ProviderRoute.PROBE:
            return decision
        deadline = now + self._rule.probe_seconds
        ttl_ms = max(1, math.ceil(self._rule.probe_seconds * 1000))
        claimed = self._claim_probe(
            keys=[self._key(provider, "probe")], args=[now, deadline, ttl_ms]
        )
        return ProviderRoute.PROBE if claimed else ProviderRoute.FALLBACK

    def refused(self, provider: str, count: int = 1) -> None:
        now = self._clock()
        refusals = self._key(provider, "refusals")
        window_ms = max(1, math.ceil(self._rule.window_seconds * 1000))
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(refusals, {f"{now}:{uuid.uuid4().hex}": now for _ in range(count)})
        pipe.zremrangebyscore(refusals, "-inf", now - self._rule.window_seconds)
        pipe.zcard(refusals)
        pipe.pexpire(refusals, window_ms)
        pipe.get(self._key(provider, "open_until"))
        _, _, in_window, _, open_until = pipe.execute()
        health = ProviderHealth(int(in_window), None if open_until is None else float(open_until))
        deadline = after_refusal(health, self._rule, now)
        if deadline is None:
            return
        log.warning(
            "provider_failover_opened", provider=provider, refusals=int(in_window), until=deadline
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._key(provider, "open_until"), repr(deadline))
        pipe.delete(self._key(provider, "probe"))  # a refused probe frees the next one
        pipe.execute()

    def placed(self, provider: str) -> None:
        open_until = self._redis.get(self._key(provider, "open_until"))
        if open_until is None:
            return  # healthy: the common case costs one GET
        health = ProviderHealth(0, float(open_until))
        if closes_after_success(health, self._clock()):
            log.info("provider_failover_closed", provider=provider)
            self._redis.delete(
                *(self._key(provider, part) for part in ("open_until", "probe", "refusals"))
            )

    def _key(self, provider: str, part: str) -> str:
        return f"{self._namespace}:{provider}:{part}"


class NoFailover:
    """The health store of a fleet where no agent has a fallback: always the primary."""

    def route(self, provider: str, *, has_fallback: bool) -> ProviderRoute:
        return ProviderRoute.PRIMARY

    def refused(self, provider: str, count: int = 1) -> None:
        return None

    def placed(self, provider: str) -> None:
        return None
