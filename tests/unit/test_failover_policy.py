"""The failover circuit as tables: state, route, what a refusal or a success changes."""

from __future__ import annotations

import pytest

from dialer.policies.failover import (
    FailoverRule,
    ProviderHealth,
    after_refusal,
    circuit,
    closes_after_success,
    route,
)
from dialer.policies.vocabulary import ProviderCircuit, ProviderRoute

RULE = FailoverRule(refusals=3, window_seconds=60, cooldown_seconds=30, probe_seconds=10)
NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("open_until", "expected"),
    [
        (None, ProviderCircuit.CLOSED),
        (NOW + 0.001, ProviderCircuit.OPEN),
        (NOW, ProviderCircuit.HALF_OPEN),  # the cool-down ends at its deadline
        (NOW - 500, ProviderCircuit.HALF_OPEN),  # no probe yet: still half-open
    ],
)
def test_circuit_state(open_until: float | None, expected: ProviderCircuit) -> None:
    assert circuit(ProviderHealth(10, open_until), NOW) is expected


@pytest.mark.parametrize(
    ("open_until", "has_fallback", "expected"),
    [
        (None, True, ProviderRoute.PRIMARY),
        (None, False, ProviderRoute.PRIMARY),
        (NOW + 5, True, ProviderRoute.FALLBACK),
        (NOW + 5, False, ProviderRoute.PRIMARY),  # nowhere else to go
        (NOW - 1, True, ProviderRoute.PROBE),
        (NOW - 1, False, ProviderRoute.PRIMARY),
    ],
)
def test_route(open_until: float | None, has_fallback: bool, expected: ProviderRoute) -> None:
    health = ProviderHealth(refusals_in_window=50, open_until=open_until)
    assert route(health, NOW, has_fallback=has_fallback) is expected


@pytest.mark.parametrize(
    ("refusals", "open_until", "expected"),
    [
        (1, None, None),
        (3, None, None),  # the threshold itself does not trip: more than it does
        (4, None, NOW + 30),
        (40, NOW + 10, None),  # open: not extended
        (1, NOW - 1, NOW + 30),  # half-open: the probe (or anyone) was refused again
    ],
)
def test_after_refusal(refusals: int, open_until: float | None, expected: float | None) -> None:
    assert after_refusal(ProviderHealth(refusals, open_until), RULE, NOW) == expected


@pytest.mark.parametrize(
    ("open_until", "closes"),
    [(None, False), (NOW + 10, False), (NOW, True), (NOW - 100, True)],
)
def test_a_success_closes_only_a_half_open_circuit(open_until: float | None, closes: bool) -> None:
    assert closes_after_success(ProviderHealth(9, open_until), NOW) is closes


def test_a_whole_outage_and_recovery() -> None:
    health, now = ProviderHealth(), NOW
    for count in range(1, 5):
        health = ProviderHealth(count, health.open_until)
        deadline = after_refusal(health, RULE, now)
        health = ProviderHealth(count, deadline or health.open_until)
    assert route(health, now, has_fallback=True) is ProviderRoute.FALLBACK
    assert route(health, now + 29.9, has_fallback=True) is ProviderRoute.FALLBACK
    assert route(health, now + 30, has_fallback=True) is ProviderRoute.PROBE
    assert closes_after_success(health, now + 30)


@pytest.mark.parametrize(
    ("field", "value"),
    [("refusals", 0), ("window_seconds", 0), ("cooldown_seconds", -1), ("probe_seconds", 0)],
)
def test_a_bad_rule_names_its_field(field: str, value: float) -> None:
    values = {"refusals": 3, "window_seconds": 60, "cooldown_seconds": 30, "probe_seconds": 10}
    with pytest.raises(ValueError, match=field):
        FailoverRule(**{**values, field: value})  # type: ignore[arg-type]
