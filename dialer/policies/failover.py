"""Failover between an agent's voice providers: a circuit breaker per provider account.

The fleet counts a provider's refusals that provably placed no call (429, a 5xx
answered before a call was created, connection refused) in a sliding window. More
than ``FailoverRule.refusals`` of them within ``window_seconds`` open the circuit:
for ``cooldown_seconds`` new placements of agents that name a fallback provider go
to the fallback. When the cool-down is over the circuit is half-open: one placement
at a time (the probe) tries the primary again; a success closes the circuit, a
refusal opens it for another cool-down. Agents without a fallback keep using their
provider whatever its circuit says: there is nowhere else to send them.

Pure: the caller (dialer.providers.provider_health, in Redis) reads the state, asks
here, and writes what the answer says. Times are Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialer.policies.vocabulary import ProviderCircuit, ProviderRoute


@dataclass(frozen=True)
class FailoverRule:
    """When a provider counts as refusing, and how long it is left alone (settings)."""

    refusals: int  # more than this many within the window open the circuit
    window_seconds: float
    cooldown_seconds: float
    probe_seconds: float  # a probe whose answer never came frees the circuit after this

    def __post_init__(self) -> None:
        if self.refusals < 1:
            raise ValueError(f"refusals: must be at least 1, got {self.refusals}")
        for name in ("window_seconds", "cooldown_seconds", "probe_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be above 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class ProviderHealth:
    """What the fleet knows of one provider: recent refusals and the circuit's deadline."""

    refusals_in_window: int = 0
    open_until: float | None = None  # set: the circuit was opened; None: closed


def circuit(health: ProviderHealth, now: float) -> ProviderCircuit:
    if health.open_until is None:
        return ProviderCircuit.CLOSED
    return ProviderCircuit.OPEN if now < health.open_until else ProviderCircuit.HALF_OPEN


def route(health: ProviderHealth, now: float, *, has_fallback: bool) -> ProviderRoute:
    """Where an agent's next placement goes. PROBE: the primary, if the probe is free."""
    if not has_fallback:
        return ProviderRoute.PRIMARY
    state = circuit(health, now)
    if state is ProviderCircuit.CLOSED:
        return ProviderRoute.PRIMARY
    return ProviderRoute.FALLBACK if state is ProviderCircuit.OPEN else ProviderRoute.PROBE


def after_refusal(health: ProviderHealth, rule: FailoverRule, now: float) -> float | None:
    """The circuit's new deadline after a refusal (counted in ``health``), or None: unchanged.

    An open circuit is not extended by further refusals (agents without a fallback
    still use the primary), so the probe comes when the cool-down says.
    """
    state = circuit(health, now)
    if state is ProviderCircuit.OPEN:
        return None
    if state is ProviderCircuit.HALF_OPEN or health.refusals_in_window > rule.refusals:
        return now + rule.cooldown_seconds
    return None


def closes_after_success(health: ProviderHealth, now: float) -> bool:
    """A placement the primary accepted: does it close the circuit (the probe succeeded)?

    Only once the cool-down is over: a success during it (an agent without a fallback)
    does not cut the cool-down short.
    """
    return circuit(health, now) is ProviderCircuit.HALF_OPEN
