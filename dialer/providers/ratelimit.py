"""A token bucket for provider calls, shared by every worker through Redis.

The provider accepts ``rate_per_second`` calls with bursts of ``burst``. Every worker
takes a token before it places a call; a worker that gets none is told how long to
wait instead of being made to spin on Redis.

When the provider still answers 429, ``slow_down`` makes the whole fleet back off:
the bucket is emptied until the Retry-After has passed (no refill meanwhile, so the
fleet does not burst again the moment the pause ends) and the rate is halved, down
to ``min_rate_factor``. The factor then climbs back linearly, by ``1 /
recovery_seconds`` per second, so a provider that recovered is used fully again
without another operator step. Several workers hitting 429 on the same overload
halve the rate once: a slow-down that arrives during a pause only extends it.

The arithmetic lives once in Python (``take`` and ``slowed_down``, pure functions of
a ``BucketState`` and ``now``) and once in the Lua script that Redis runs atomically;
the same contract tests run against ``InMemoryRateLimiter`` and ``RedisRateLimiter``
to keep the two in step. Times are Unix seconds from an injected clock: every worker
reads its own (NTP-synchronised) clock, and a worker whose clock runs behind never
moves the bucket's time backwards.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Final, Protocol

import redis

from dialer.dependencies import UnixClock
from dialer.providers.base import TransientProviderError
from dialer.settings import Settings

DEFAULT_MIN_RATE_FACTOR: Final = 0.125
DEFAULT_RECOVERY_SECONDS: Final = 60.0
DEFAULT_PAUSE_SECONDS: Final = 1.0
DEFAULT_KEY: Final = "ratelimit:provider_calls"
# Unix seconds in a double carry about 0.2 microseconds of precision, so waiting
# exactly the wait we returned can refill a hair less than a token: count that as one.
TOKEN_EPSILON: Final = 1e-6


class RateLimited(TransientProviderError):
    """The fleet's call budget is spent for now; no request was sent to the provider."""


class CallRateLimiter(Protocol):
    """What the voice adapter needs from a rate limiter."""

    def acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens and return 0, or take none and return the seconds to wait."""
        ...

    def slow_down(self, retry_after_seconds: float | None) -> None:
        """The provider answered 429: pause everyone and lower the rate for a while."""
        ...


@dataclass(frozen=True)
class BucketLimits:
    """The bucket's configuration; validated so a bad setting fails at start-up."""

    rate_per_second: float
    burst: int
    min_rate_factor: float = DEFAULT_MIN_RATE_FACTOR
    recovery_seconds: float = DEFAULT_RECOVERY_SECONDS
    default_pause_seconds: float = DEFAULT_PAUSE_SECONDS

    def __post_init__(self) -> None:
        if self.rate_per_second <= 0:
            raise ValueError(f"rate_per_second: must be above 0, got {self.rate_per_second}")
        if self.burst < 1:
            raise ValueError(f"burst: must be at least 1, got {self.burst}")
        if not 0 < self.min_rate_factor <= 1:
            raise ValueError(f"min_rate_factor: must be in (0, 1], got {self.min_rate_factor}")
        if self.recovery_seconds <= 0:
            raise ValueError(f"recovery_seconds: must be above 0, got {self.recovery_seconds}")
        if self.default_pause_seconds < 0:
            raise ValueError("default_pause_seconds: must be >= 0")

    def idle_ttl_seconds(self) -> float:
        """How long an untouched bucket takes to be full at full rate again.

        After that its stored state equals a fresh one, so Redis may forget it.
        """
        slowest_fill = self.burst / (self.rate_per_second * self.min_rate_factor)
        return slowest_fill + self.recovery_seconds + 1.0


@dataclass(frozen=True)
class BucketState:
    """Tokens as of ``updated_at`` (in the future while paused) and the rate factor."""

    tokens: float
    updated_at: float
    factor: float = 1.0
    factor_at: float = 0.0  # the factor climbs back from this moment on


def fresh_state(limits: BucketLimits, now: float) -> BucketState:
    return BucketState(tokens=float(limits.burst), updated_at=now, factor=1.0, factor_at=now)


def rate_factor(state: BucketState, limits: BucketLimits, at: float) -> float:
    """The share of the configured rate in force at ``at`` (1 = full rate)."""
    if at <= state.factor_at:
        return state.factor
    return min(1.0, state.factor + (at - state.factor_at) / limits.recovery_seconds)


def settle(state: BucketState, limits: BucketLimits, now: float) -> BucketState:
    """Refill up to ``now`` at the rate in force when the interval began (the cautious side)."""
    if now <= state.updated_at:
        return state
    rate = limits.rate_per_second * rate_factor(state, limits, state.updated_at)
    tokens = min(float(limits.burst), state.tokens + (now - state.updated_at) * rate)
    return replace(state, tokens=tokens, updated_at=now)


def take(
    state: BucketState, limits: BucketLimits, now: float, n: int = 1
) -> tuple[BucketState, float]:
    """Take ``n`` tokens (wait 0), or none and say how long until ``n`` are there."""
    _require_grantable(limits, n)
    state = settle(state, limits, now)
    if state.tokens + TOKEN_EPSILON >= n:
        return replace(state, tokens=max(0.0, state.tokens - n)), 0.0
    start = max(now, state.updated_at)
    rate = limits.rate_per_second * rate_factor(state, limits, start)
    return state, (start - now) + (n - state.tokens) / rate


def slowed_down(
    state: BucketState, limits: BucketLimits, now: float, retry_after_seconds: float | None
) -> BucketState:
    """Empty the bucket until the pause ends; halve the rate unless already paused."""
    pause = limits.default_pause_seconds if retry_after_seconds is None else retry_after_seconds
    state = settle(state, limits, now)
    already_paused = state.updated_at > now
    factor = state.factor
    if not already_paused:
        factor = max(limits.min_rate_factor, rate_factor(state, limits, now) / 2)
    until = max(state.updated_at, now + max(0.0, pause))
    return BucketState(tokens=0.0, updated_at=until, factor=factor, factor_at=until)


def _require_grantable(limits: BucketLimits, n: int) -> None:
    if not 1 <= n <= limits.burst:
        raise ValueError(f"n: must be between 1 and the burst ({limits.burst}), got {n}")


class InMemoryRateLimiter:
    """The bucket for one process (tests, a single worker); thread safe."""

    def __init__(self, limits: BucketLimits, clock: UnixClock = time.time) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._state = fresh_state(limits, clock())

    def acquire(self, n: int = 1) -> float:
        with self._lock:
            self._state, wait = take(self._state, self.limits, self._clock(), n)
        return wait

    def slow_down(self, retry_after_seconds: float | None) -> None:
        with self._lock:
            self._state = slowed_down(self._state, self.limits, self._clock(), retry_after_seconds)


# The same arithmetic as settle/take/slowed_down above, run atomically in Redis.
# KEYS[1]: the bucket hash (tokens, updated_at, factor, factor_at).
# ARGV: op ('take' | 'slow'), now, rate, burst, min_factor, recovery_seconds,
#       idle_ttl_seconds, amount (tokens for 'take', pause seconds for 'slow'), epsilon.
# Returns the seconds to wait as a string (Lua numbers would be truncated to integers).
_BUCKET_LUA: Final = """
local op = ARGV[1]
local now = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local min_factor = tonumber(ARGV[5])
local recovery = tonumber(ARGV[6])
local idle_ttl = tonumber(ARGV[7])
local amount = tonumber(ARGV[8])
local epsilon = tonumber(ARGV[9])

local saved = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at', 'factor', 'factor_at')
local tokens = tonumber(saved[1]) or burst
local updated_at = tonumber(saved[2]) or now
local factor = tonumber(saved[3]) or 1
local factor_at = tonumber(saved[4]) or now

local function factor_at_time(t)
  if t <= factor_at then return factor end
  return math.min(1, factor + (t - factor_at) / recovery)
end

if now > updated_at then
  tokens = math.min(burst, tokens + (now - updated_at) * rate * factor_at_time(updated_at))
  updated_at = now
end

local wait = 0
if op == 'take' then
  if tokens + epsilon >= amount then
    tokens = math.max(0, tokens - amount)
  else
    local start = math.max(now, updated_at)
    wait = (start - now) + (amount - tokens) / (rate * factor_at_time(start))
  end
else
  if updated_at <= now then
    factor = math.max(min_factor, factor_at_time(now) / 2)
  end
  updated_at = math.max(updated_at, now + math.max(0, amount))
  tokens = 0
  factor_at = updated_at
end

redis.call('HSET', KEYS[1],
  'tokens', string.format('%.17g', tokens),
  'updated_at', string.format('%.17g', updated_at),
  'factor', string.format('%.17g', factor),
  'factor_at', string.format('%.17g', factor_at))
redis.call('PEXPIRE', KEYS[1], math.ceil((updated_at - now + idle_ttl) * 1000))
return string.format('%.17g', wait)
"""


class RedisRateLimiter:
    """The bucket every worker shares: one hash in Redis, changed only by one Lua script."""

    def __init__(
        self,
        client: redis.Redis,
        limits: BucketLimits,
        key: str = DEFAULT_KEY,
        clock: UnixClock = time.time,
    ) -> None:
        self.limits = limits
        self.key = key
        self._clock = clock
        self._script = client.register_script(_BUCKET_LUA)

    def acquire(self, n: int = 1) -> float:
        _require_grantable(self.limits, n)
        return self._run("take", n)

    def slow_down(self, retry_after_seconds: float | None) -> None:
        pause = retry_after_seconds
        self._run("slow", self.limits.default_pause_seconds if pause is None else pause)

    def _run(self, op: str, amount: float) -> float:
        limits = self.limits
        args: list[str | int] = [
            op,
            repr(self._clock()),
            repr(limits.rate_per_second),
            limits.burst,
            repr(limits.min_rate_factor),
            repr(limits.recovery_seconds),
            repr(limits.idle_ttl_seconds()),
            repr(float(amount)),
            repr(TOKEN_EPSILON),
        ]
        raw = self._script(keys=[self.key], args=args)
        return float(raw.decode() if isinstance(raw, bytes) else raw)


def provider_rate_limiter(
    settings: Settings, redis_url: str, key: str = DEFAULT_KEY
) -> RedisRateLimiter:
    """The fleet's limiter for seed 004 calls: ``provider_calls_per_second``, a 1 s burst."""
    rate = settings.provider_calls_per_second
    limits = BucketLimits(rate_per_second=rate, burst=max(1, math.ceil(rate)))
    return RedisRateLimiter(redis.Redis.from_url(redis_url), limits, key)
