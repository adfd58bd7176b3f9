"""Remember a key once, fleet-wide: the placement journal and the webhook replay guard.

Two adapter needs come down to one question, "has anyone claimed this key yet?":

- **Placement journal.** Most voice providers honour no idempotency key, so the
  adapter claims ``placement:{provider}:{key}`` just before it sends a call. A
  second try with the same key (a task re-delivered after a crash, the reaper's
  re-send) finds the claim taken and must look the call up instead of sending it
  again. A claim is given back only when we know nothing reached the provider.
- **Replay guard.** A signed webhook captured and sent again inside the signature's
  tolerance window passes the HMAC check; claiming its signature makes the second
  delivery visible as a replay.

``InMemorySeenOnce`` serves one process (tests, the embedded default);
``RedisSeenOnce`` serves the fleet with ``SET key 1 NX EX ttl``, one atomic step.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Final, Protocol

import redis

DEFAULT_NAMESPACE: Final = "seen_once"


class SeenOnce(Protocol):
    def claim(self, key: str, ttl_seconds: float) -> bool:
        """True for the first claim of ``key`` within ``ttl_seconds``; False after that."""
        ...

    def release(self, key: str) -> None:
        """Forget ``key``: the next claim succeeds (the guarded step never happened)."""
        ...


class InMemorySeenOnce:
    """One process's memory of claimed keys, with expiry on an injected monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, key: str, ttl_seconds: float) -> bool:
        now = self._clock()
        with self._lock:
            if self._until.get(key, -math.inf) > now:
                return False
            self._until[key] = now + ttl_seconds
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._until.pop(key, None)


class RedisSeenOnce:
    """The fleet's memory of claimed keys: every worker and ingress process sees one set."""

    def __init__(self, client: redis.Redis, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._redis = client
        self._namespace = namespace

    def claim(self, key: str, ttl_seconds: float) -> bool:
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        return bool(self._redis.set(self._key(key), b"1", nx=True, px=ttl_ms))

    def release(self, key: str) -> None:
        self._redis.delete(self._key(key))

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{key}"
