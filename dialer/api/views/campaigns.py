"""Campaign answers: seed 002 ``CampaignOut`` plus seed 003's settings and counters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dialer.policies.batch_status import batch_status
from dialer.policies.vocabulary import Segment
from dialer.policies.zones import ZONE_NAME_MAX_LENGTH
from dialer.schemas import (
    CallWindowIn,
    GoalSpecIn,
    RetryByOutcomeIn,
    WallClockTime,
    column_of,
    refuse_nul,
)
from dialer.services.lifecycle import ResumeResult
from models import Campaign

CampaignStatusName = Literal["draft", "running", "paused", "done"]
BatchStatusName = Literal[
    "draft", "scheduled", "active", "paused", "completed", "failed", "cancelled"
]
# GET /campaigns?status=: seed 003's words, or the project's own (running, done).
ListStatusFilter = Literal[
    "draft", "scheduled", "active", "paused", "completed", "failed", "cancelled", "running", "done"
]


class CallWindowOut(BaseModel):
    """seed 002 CampaignCallWindow; weekdays 0=Monday .. 6=Sunday."""

    start: WallClockTime
    end: WallClockTime
    weekdays: list[int]


class CampaignOut(BaseModel):
    """seed 002 CampaignOut, plus seed 003's batch settings (the project's extras)."""

    id: uuid.UUID
    name: str
    status: CampaignStatusName
    agent_id: uuid.UUID
    phone_number_id: uuid.UUID | None
    phone_number_ids: list[uuid.UUID]
    phone_rotation_strategy: Literal["random", "sequential", "round_robin"]
    email_channel_id: uuid.UUID | None
    whatsapp_channel_id: uuid.UUID | None
    goal: str | None
    goal_spec: GoalSpecIn
    goal_logic: Literal["all", "any"]
    first_contact_channel: Literal["call", "whatsapp", "sms"]
    fallback_channel: Literal["whatsapp", "sms"] = Field(
        description="Extension to seed 002: the channel the whatsapp_* fields configure."
    )
    call_opening_message: str | None
    whatsapp_first_message: str | None
    whatsapp_after_attempts: int
    voicemail_action: Literal["hang_up", "leave_message"] | None = Field(
        description="Extension to seed 002 (issue 16); null: the agent's own setting."
    )
    voicemail_message: str | None
    email_subject: str | None
    email_goal_counts: Literal["accepted", "delivered"]
    call_attempt_delays: list[int]
    retry_by_outcome: RetryByOutcomeIn = Field(
        description="Extension to seed 002 (issue 16): retries per unanswered outcome."
    )
    call_working_hours: CallWindowOut
    timezone: str
    concurrency: int
    max_calls_per_day: int | None
    schedule_type: Literal["immediate", "scheduled"]
    scheduled_at: datetime | None
    variables: dict[str, Any]
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CampaignCounters(BaseModel):
    """seed 003 counters; cost also in milli-cents, the project's unit of money."""

    total_contacts: int
    completed_contacts: int = Field(description="Contacts whose contact plan has ended.")
    successful_contacts: int = Field(description="Contacts whose goal was met.")
    failed_contacts: int
    voicemail_contacts: int = Field(description="Contacts whose calls reached voicemail.")
    no_answer_contacts: int
    total_cost_usd: float
    total_cost_millicents: int
    average_duration_seconds: int = Field(description="Of answered calls.")


class CampaignSummaryOut(CampaignCounters, CampaignOut):
    """A campaign with its counters (GET /campaigns/{id})."""


class CampaignListItemOut(CampaignSummaryOut):
    """One campaign of GET /campaigns, seed 003's list: ``status`` in seed 003's words
    (dialer.policies.batch_status), the project's own beside it as ``lifecycle_status``."""

    status: BatchStatusName  # type: ignore[assignment]  # seed 003's words here
    lifecycle_status: CampaignStatusName


class CampaignPatch(BaseModel):
    """The settings PATCH /campaigns/{id} may change; a field left out keeps its value.

    Nested objects (call_working_hours, goal_spec, retry_by_outcome, variables) are replaced whole.
    ``customer_fields`` names extra CSV columns new templates may use, as on create.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = None
    goal: str | None = None
    goal_spec: GoalSpecIn | None = None
    goal_logic: Literal["all", "any"] | None = None
    first_contact_channel: Literal["call", "whatsapp", "sms"] | None = None
    call_opening_message: str | None = None
    whatsapp_first_message: str | None = None
    whatsapp_after_attempts: int | None = None
    voicemail_action: Literal["hang_up", "leave_message"] | None = None
    voicemail_message: str | None = None
    email_subject: str | None = None  # checked like a new campaign's (one line, bounded)
    email_goal_counts: Literal["accepted", "delivered"] | None = None
    call_attempt_delays: list[int] | None = None
    retry_by_outcome: RetryByOutcomeIn | None = None
    call_working_hours: CallWindowIn | None = None
    timezone: str | None = Field(default=None, max_length=ZONE_NAME_MAX_LENGTH)
    concurrency: int | None = None
    max_calls_per_day: int | None = None
    schedule_type: Literal["immediate", "scheduled"] | None = None
    scheduled_at: datetime | None = None
    variables: dict[str, str] | None = None
    phone_number_ids: list[uuid.UUID] | None = None
    phone_rotation_strategy: Literal["random", "sequential", "round_robin"] | None = None
    customer_fields: list[str] | None = None

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        return refuse_nul(value)

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent (an explicit null included), as JSON values."""
        return self.model_dump(mode="json", exclude_unset=True)


class CampaignResumeRequest(BaseModel):
    """seed 002 CampaignResumeRequest."""

    model_config = ConfigDict(extra="forbid")

    segment: Segment = Segment.NOT_ANSWERED


class CampaignResumeResultOut(BaseModel):
    """seed 002 CampaignResumeResult."""

    campaign: CampaignOut
    segment: Segment
    selected_targets: int
    scheduled_calls: int
    queued_whatsapp: int
    skipped_existing_pending: int
    skipped_missing_contact: int


def campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(_campaign_fields(campaign))


def summary_out(campaign: Campaign, counters: dict[str, Any]) -> CampaignSummaryOut:
    return CampaignSummaryOut.model_validate(_campaign_fields(campaign) | counters)


def list_item_out(
    campaign: Campaign, counters: dict[str, Any], now: datetime
) -> CampaignListItemOut:
    fields = _campaign_fields(campaign) | counters
    fields["lifecycle_status"] = campaign.status
    fields["status"] = batch_status(
        campaign.status, campaign.schedule_type, campaign.scheduled_at, now
    ).value
    return CampaignListItemOut.model_validate(fields)


def resume_out(result: ResumeResult) -> CampaignResumeResultOut:
    return CampaignResumeResultOut(
        campaign=campaign_out(result.campaign),
        segment=result.segment,
        selected_targets=result.selected_targets,
        scheduled_calls=result.scheduled_calls,
        queued_whatsapp=result.queued_messages,
        skipped_existing_pending=result.skipped_existing_pending,
        skipped_missing_contact=result.skipped_missing_contact,
    )


# Seed 002 field names; column_of maps the whatsapp_* ones to the fallback columns.
_COLUMNS_AS_IS = (
    "id",
    "name",
    "status",
    "agent_id",
    "phone_number_id",
    "phone_number_ids",
    "phone_rotation_strategy",
    "email_channel_id",
    "whatsapp_channel_id",
    "goal",
    "goal_spec",
    "goal_logic",
    "first_contact_channel",
    "fallback_channel",
    "call_opening_message",
    "whatsapp_first_message",
    "whatsapp_after_attempts",
    "voicemail_action",
    "voicemail_message",
    "email_subject",
    "email_goal_counts",
    "call_attempt_delays",
    "retry_by_outcome",
    "timezone",
    "concurrency",
    "max_calls_per_day",
    "schedule_type",
    "scheduled_at",
    "variables",
    "started_at",
    "completed_at",
    "created_at",
    "updated_at",
)


def _campaign_fields(campaign: Campaign) -> dict[str, Any]:
    fields = {name: getattr(campaign, column_of(name)) for name in _COLUMNS_AS_IS}
    fields["call_working_hours"] = {
        "start": campaign.window_start,
        "end": campaign.window_end,
        "weekdays": list(campaign.window_weekdays),
    }
    return fields
