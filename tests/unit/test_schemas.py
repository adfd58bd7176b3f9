"""The campaign schema mirrors seed 002 and names the field of every error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dialer.errors import describe_validation_error
from dialer.schemas import (
    FALLBACK_WIRE_NAMES,
    AiObjectiveIn,
    CampaignSpec,
    ContactObjectiveIn,
    column_of,
)
from models import Campaign

BASE: dict[str, Any] = {"name": "Renewals", "agent": {"name": "a", "provider_agent_id": "agt"}}


def errors(**changes: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        CampaignSpec.model_validate(BASE | changes)
    return dict(describe_validation_error(info.value))


def test_seed_defaults() -> None:
    spec = CampaignSpec.model_validate(BASE)
    assert spec.goal_logic == "all"
    assert spec.first_contact_channel == "call"
    assert spec.whatsapp_after_attempts == 3
    hours = spec.call_working_hours
    assert (hours.start.hour, hours.end.hour, hours.weekdays) == (9, 19, [0, 1, 2, 3, 4])
    assert spec.concurrency == 10
    assert spec.max_calls_per_day is None


def test_objectives_are_discriminated_by_type() -> None:
    spec = CampaignSpec.model_validate(
        BASE
        | {"goal_spec": {"objectives": [{"type": "contact", "channels": ["call"]}, {"type": "ai"}]}}
    )
    kinds = [type(o) for o in spec.goal_spec.objectives]
    assert kinds == [ContactObjectiveIn, AiObjectiveIn]


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"timezone": "Mars/Base"}, "timezone", "unknown IANA time zone"),
        ({"concurrency": 1001}, "concurrency", "less than or equal to 1000"),
        ({"concurrency": 0}, "concurrency", "greater than or equal to 1"),
        ({"whatsapp_after_attempts": 0}, "whatsapp_after_attempts", "greater than or equal to 1"),
        ({"call_attempt_delays": [60, -5]}, "call_attempt_delays.1", "greater than or equal to 0"),
        (
            {"call_working_hours": {"weekdays": [7]}},
            "call_working_hours.weekdays.0",
            "less than or equal to 6",
        ),
        ({"goal_logic": "most"}, "goal_logic", "'all' or 'any'"),
        (
            {"goal_spec": {"objectives": [{"type": "ai", "min_score": 2}]}},
            "goal_spec.objectives.0.ai.min_score",
            "less than or equal to 1",
        ),
        ({"max_calls_per_day": 0}, "max_calls_per_day", "greater than or equal to 1"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_errors_name_the_field(changes: dict[str, Any], field: str, reason: str) -> None:
    found = errors(**changes)
    assert field in found, found
    assert reason in found[field]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"schedule_type": "scheduled"}, "scheduled_at is required"),
        ({"first_contact_channel": "whatsapp"}, "needs a sender"),
        ({"agent": None}, "exactly one of agent_id or agent"),
        ({"scheduled_at": "2026-12-01T09:00:00"}, "must include a UTC offset"),
    ],
)
def test_cross_field_rules(changes: dict[str, Any], reason: str) -> None:
    assert any(reason in r for r in errors(**changes).values())


def test_the_fallback_wire_names_map_to_campaign_columns() -> None:
    columns = set(Campaign.__table__.columns.keys())
    assert set(FALLBACK_WIRE_NAMES) <= set(CampaignSpec.model_fields)  # seed 002's names
    assert set(FALLBACK_WIRE_NAMES.values()) <= columns
    assert not {name for name in columns if name.startswith("whatsapp")}
    assert column_of("whatsapp_after_attempts") == "fallback_after_attempts"
    assert column_of("call_attempt_delays") == "call_attempt_delays"
