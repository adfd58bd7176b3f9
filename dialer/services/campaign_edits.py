"""Changing a created campaign's settings (PATCH /campaigns/{id}).

What may change depends on the campaign's status:

- draft and paused: every field of EDITABLE_FIELDS. The campaign with the changes
  applied is validated exactly like a new one (schema, window, templates), so an
  edit can never make a campaign that create would refuse.
- running: only EDITABLE_WHILE_RUNNING (name and the two throttles, which dispatch
  re-reads at every claim). Who is called, when and with what words changes only
  while paused, so no call goes out under half-applied settings.
- done: nothing; resume it first (CampaignStateError, a 400).

Never editable: the agent and the fallback/email channels (they decide which
caller IDs and senders exist: create another campaign), and the status (use the
lifecycle actions). Changes apply to work planned after them: pending attempts
keep their due time, and are checked against the new window when claimed.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.errors import CampaignStateError, Conflict, ValidationFailed, describe_validation_error
from dialer.policies.templates import template_fields as placeholders_in
from dialer.policies.vocabulary import CampaignStatus
from dialer.policies.window import LegalBound
from dialer.schemas import CampaignSpec, column_of
from dialer.services.campaigns import validate_spec
from models import Campaign, PhoneNumber

EDITABLE_WHILE_RUNNING: Final = frozenset({"name", "concurrency", "max_calls_per_day"})
EDITABLE_FIELDS: Final = EDITABLE_WHILE_RUNNING | {
    "goal",
    "goal_spec",
    "goal_logic",
    "first_contact_channel",
    "call_opening_message",
    "whatsapp_first_message",
    "whatsapp_after_attempts",
    "voicemail_action",
    "voicemail_message",
    "email_subject",
    "email_goal_counts",
    "call_attempt_delays",
    "retry_by_outcome",
    "call_working_hours",
    "timezone",
    "schedule_type",
    "scheduled_at",
    "variables",
    "phone_number_ids",
    "phone_rotation_strategy",
    "customer_fields",  # not stored: names the extra columns new templates may use
}
_STORED_AS_IS: Final = EDITABLE_FIELDS - {"call_working_hours", "customer_fields"}


def update_campaign(
    session: Session, campaign: Campaign, changes: Mapping[str, Any], legal: LegalBound
) -> Campaign:
    """Apply ``changes`` (JSON values by field name) to a campaign the caller holds locked."""
    _refuse_frozen_fields(campaign, changes.keys())
    spec = _edited_spec(campaign, changes)
    validate_spec(spec, legal)
    if spec.name != campaign.name:
        _refuse_taken_name(session, campaign, spec.name)
    if "phone_number_ids" in changes:
        _check_numbers(session, campaign, spec.phone_number_ids)
        campaign.phone_number_id = spec.phone_number_ids[0]
    _store(campaign, spec, changes.keys())
    session.flush()
    return campaign


def _refuse_frozen_fields(campaign: Campaign, fields: Collection[str]) -> None:
    status = CampaignStatus(campaign.status)
    unknown = sorted(set(fields) - EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(unknown[0], "cannot be changed after the campaign is created")
    if status is CampaignStatus.DONE:
        raise CampaignStateError(
            status, "edit", "campaign is done; resume and pause it to change it"
        )
    frozen = sorted(set(fields) - EDITABLE_WHILE_RUNNING)
    if status is CampaignStatus.RUNNING and frozen:
        allowed = ", ".join(sorted(EDITABLE_WHILE_RUNNING))
        raise CampaignStateError(
            status,
            "edit",
            f"campaign is running: only {allowed} can change; pause it to change {frozen[0]}",
        )


def _edited_spec(campaign: Campaign, changes: Mapping[str, Any]) -> CampaignSpec:
    """The campaign as a spec with the changes applied, validated like a new one."""
    current = _spec_data(campaign)
    data = current | dict(changes)
    data["customer_fields"] = sorted(
        set(current["customer_fields"]) | set(changes.get("customer_fields") or [])
    )
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        field = ",".join(dict.fromkeys(f for f, _ in problems))
        reason = "; ".join(r if len(problems) == 1 else f"{f}: {r}" for f, r in problems)
        raise ValidationFailed(field, reason) from None


def _spec_data(campaign: Campaign) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: getattr(campaign, column_of(name)) for name in sorted(_STORED_AS_IS)
    }
    data |= {
        "agent_id": campaign.agent_id,
        "whatsapp_channel_id": campaign.fallback_channel_id,
        "fallback_channel": campaign.fallback_channel,  # not editable: it names the sender's kind
        "email_channel_id": campaign.email_channel_id,
        "call_working_hours": {
            "start": campaign.window_start,
            "end": campaign.window_end,
            "weekdays": list(campaign.window_weekdays),
        },
        # Placeholders the stored templates use were accepted at create: keep them valid.
        "customer_fields": sorted(_placeholders(campaign)),
    }
    return data


def _placeholders(campaign: Campaign) -> set[str]:
    texts = (
        campaign.call_opening_message,
        campaign.fallback_first_message,
        campaign.email_subject,
        campaign.voicemail_message,
    )
    return {name for text in texts if text for name in placeholders_in(text)}


def _refuse_taken_name(session: Session, campaign: Campaign, name: str) -> None:
    query = select(Campaign.id).where(
        Campaign.account_id == campaign.account_id,
        Campaign.name == name,
        Campaign.id != campaign.id,
    )
    if session.scalar(query) is not None:
        raise Conflict(f"name: a campaign named {name!r} already exists")


def _check_numbers(session: Session, campaign: Campaign, number_ids: list[uuid.UUID]) -> None:
    """Caller IDs must belong to the campaign's agent (seed 004 from_number rule)."""
    if not number_ids:
        raise ValidationFailed("phone_number_ids", "give at least one caller-ID number")
    owned = set(
        session.scalars(select(PhoneNumber.id).where(PhoneNumber.agent_id == campaign.agent_id))
    )
    for index, number_id in enumerate(number_ids):
        if number_id not in owned:
            raise ValidationFailed(
                f"phone_number_ids.{index}", f"number {number_id} does not belong to the agent"
            )


def _store(campaign: Campaign, spec: CampaignSpec, fields: Collection[str]) -> None:
    for name in set(fields) & _STORED_AS_IS:
        value = getattr(spec, name)
        nested = name in {"goal_spec", "retry_by_outcome"}
        stored = value.model_dump(mode="json") if nested else value
        setattr(campaign, column_of(name), stored)
    if "call_working_hours" in fields:
        hours = spec.call_working_hours
        campaign.window_start = hours.start
        campaign.window_end = hours.end
        campaign.window_weekdays = sorted(set(hours.weekdays))
