"""Every random fault decision of the sandbox, from one seeded generator (reproducible runs)."""

from __future__ import annotations

import random
import threading
from enum import StrEnum

from dialer.sandbox.config import FaultConfig


class RequestFault(StrEnum):
    """What goes wrong with one POST /v1/calls."""

    TOO_MANY_REQUESTS = "429"
    UNAVAILABLE = "5xx"
    TIMEOUT = "timeout"  # held past the client's timeout; nothing created
    LOST_RESPONSE = "lost_response"  # created, but the answer never reaches the client


class FaultDice:
    """A seeded generator behind a lock: request handlers and tests may share it."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests = 0

    def request_fault(self, faults: FaultConfig) -> RequestFault | None:
        """At most one fault per request: the script's next, else one draw against the rates."""
        with self._lock:
            number, self._requests = self._requests, self._requests + 1
        if number < len(faults.scripted):
            return RequestFault(faults.scripted[number])
        draw = self.uniform(0.0, 1.0)
        rates = (
            (RequestFault.TOO_MANY_REQUESTS, faults.rate_429),
            (RequestFault.UNAVAILABLE, faults.rate_5xx),
            (RequestFault.TIMEOUT, faults.rate_timeout),
            (RequestFault.LOST_RESPONSE, faults.rate_lost_response),
        )
        for fault, rate in rates:
            if draw < rate:
                return fault
            draw -= rate
        return None

    def chance(self, rate: float) -> bool:
        """True with probability ``rate``; a rate of 0 never fires, 1 always does."""
        return rate > 0 and self.uniform(0.0, 1.0) < rate

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._rng.uniform(low, high)
