"""Campaigns (seed 002 CampaignOut plus seed 003's batch settings) and enrollments."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdMixin, TimestampMixin, Word, one_of
from models.vocabulary import (
    CAMPAIGN_STATUSES,
    EMAIL_GOAL_COUNTS,
    ENROLLMENT_STATES,
    FALLBACK_CHANNELS,
    FIRST_CONTACT_CHANNELS,
    GOAL_LOGICS,
    ROTATION_STRATEGIES,
    SCHEDULE_TYPES,
    VOICEMAIL_ACTIONS,
    CampaignStatus,
    Channel,
    EmailGoalCount,
    EnrollmentState,
    FallbackChannel,
    GoalLogic,
    RotationStrategy,
    ScheduleType,
    VoicemailAction,
)


class Campaign(IdMixin, TimestampMixin, Base):
    __tablename__ = "campaigns"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id"))
    phone_number_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("phone_numbers.id"))
    phone_number_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default=text("'{}'")
    )
    phone_rotation_strategy: Mapped[RotationStrategy] = mapped_column(
        Word(RotationStrategy), server_default="round_robin"
    )
    email_channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id"))
    # The fallback channel (seed 002 spells its fields whatsapp_*: the API maps them).
    fallback_channel: Mapped[FallbackChannel] = mapped_column(
        Word(FallbackChannel), server_default="whatsapp"
    )
    # The sender on the fallback channel (wire: whatsapp_channel_id).
    fallback_channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id"))
    goal: Mapped[str | None] = mapped_column(Text)
    goal_spec: Mapped[dict[str, Any]] = mapped_column(
        server_default=text("""'{"objectives": []}'::jsonb""")
    )
    goal_logic: Mapped[GoalLogic] = mapped_column(Word(GoalLogic, 8), server_default="all")
    first_contact_channel: Mapped[Channel] = mapped_column(Word(Channel), server_default="call")
    call_opening_message: Mapped[str | None] = mapped_column(Text)
    # What the agent does on reaching voicemail; None leaves the agent's own setting.
    voicemail_action: Mapped[VoicemailAction | None] = mapped_column(Word(VoicemailAction))
    # The message left with leave_message (a template, dialer.policies.templates rules).
    voicemail_message: Mapped[str | None] = mapped_column(Text)
    # The fallback (and message-first) message (wire: whatsapp_first_message).
    fallback_first_message: Mapped[str | None] = mapped_column(Text)
    # Unanswered calls before the fallback goes out (wire: whatsapp_after_attempts).
    fallback_after_attempts: Mapped[int] = mapped_column(Integer, server_default="3")
    # The subject template of the campaign's e-mails (dialer.policies.templates rules).
    email_subject: Mapped[str | None] = mapped_column(String(200))
    # What an email objective counts: accepted or delivered mail.
    email_goal_counts: Mapped[EmailGoalCount] = mapped_column(
        Word(EmailGoalCount, 16), server_default="delivered"
    )
    call_attempt_delays: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), server_default=text("'{}'")
    )
    # Retries per unanswered outcome (dialer.schemas.RetryByOutcomeIn); {} is the plain plan.
    retry_by_outcome: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    # Due attempts a rule held back while the campaign's hours were open, by reason
    # (held_holiday, held_closed_day, held_pack_hours, frequency_cap): the scan adds to it.
    holds: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    window_start: Mapped[time] = mapped_column(Time, server_default="09:00:00")
    window_end: Mapped[time] = mapped_column(Time, server_default="19:00:00")
    window_weekdays: Mapped[list[int]] = mapped_column(
        ARRAY(SmallInteger), server_default=text("'{0,1,2,3,4}'")
    )
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    concurrency: Mapped[int] = mapped_column(Integer, server_default="10")
    max_calls_per_day: Mapped[int | None] = mapped_column(Integer)
    schedule_type: Mapped[ScheduleType] = mapped_column(
        Word(ScheduleType), server_default="immediate"
    )
    scheduled_at: Mapped[datetime | None]
    variables: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[CampaignStatus] = mapped_column(Word(CampaignStatus), server_default="draft")
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Earliest scheduled_at of a pending attempt (kept by triggers and the scan, 0011).
    next_due_at: Mapped[datetime | None]
    # Set (by a trigger) when the last active enrollment closed: the finish duty looks.
    finish_check_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(one_of("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint(one_of("goal_logic", GOAL_LOGICS), name="goal_logic"),
        CheckConstraint(one_of("email_goal_counts", EMAIL_GOAL_COUNTS), name="email_goal_counts"),
        CheckConstraint(
            one_of("first_contact_channel", FIRST_CONTACT_CHANNELS), name="first_channel"
        ),
        CheckConstraint(one_of("phone_rotation_strategy", ROTATION_STRATEGIES), name="rotation"),
        CheckConstraint(one_of("schedule_type", SCHEDULE_TYPES), name="schedule_type"),
        CheckConstraint("concurrency BETWEEN 1 AND 1000", name="concurrency"),
        CheckConstraint("max_calls_per_day IS NULL OR max_calls_per_day > 0", name="daily_cap"),
        CheckConstraint(one_of("fallback_channel", FALLBACK_CHANNELS), name="fallback_channel"),
        CheckConstraint("fallback_after_attempts >= 1", name="fallback_after"),
        CheckConstraint(one_of("voicemail_action", VOICEMAIL_ACTIONS), name="voicemail_action"),
        CheckConstraint("window_start < window_end", name="window_order"),
        CheckConstraint(
            "schedule_type = 'immediate' OR scheduled_at IS NOT NULL", name="scheduled_needs_time"
        ),
        UniqueConstraint("account_id", "name"),
        # The scan walks running campaigns only.
        Index("ix_campaigns_running", "id", postgresql_where=text("status = 'running'")),
        # The scan reads running campaigns with due work only: nothing due, nothing read.
        Index("ix_campaigns_due", "next_due_at", postgresql_where=text("status = 'running'")),
        Index(
            "ix_campaigns_finish_check",
            "finish_check_at",
            postgresql_where=text("status = 'running' AND finish_check_at IS NOT NULL"),
        ),
    )


class Enrollment(IdMixin, TimestampMixin, Base):
    """A customer in a campaign, with where their contact plan stands."""

    __tablename__ = "enrollments"

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    state: Mapped[EnrollmentState] = mapped_column(Word(EnrollmentState), server_default="active")
    calls_made: Mapped[int] = mapped_column(Integer, server_default="0")
    unanswered_calls: Mapped[int] = mapped_column(Integer, server_default="0")
    # Calls made before the current round; a resume starts a new round of attempts.
    round_base: Mapped[int] = mapped_column(Integer, server_default="0")
    # Calls of the current round by unanswered outcome ({"busy": 2}), for max_tries.
    outcome_calls: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    fallback_at: Mapped[datetime | None]
    last_contact_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)
    goal_result: Mapped[dict[str, Any] | None]

    __table_args__ = (
        CheckConstraint(one_of("state", ENROLLMENT_STATES), name="state"),
        CheckConstraint(
            "calls_made >= 0 AND unanswered_calls BETWEEN 0 AND calls_made", name="counts"
        ),
        UniqueConstraint("campaign_id", "customer_id"),
        Index("ix_enrollments_campaign_state", "campaign_id", "state"),
        Index("ix_enrollments_customer", "customer_id"),
    )


class RotationCursor(Base):
    """Where round-robin caller-ID rotation stands, per campaign.

    Its own row, not a column of campaigns: dispatch advances it on every batch,
    and a lock on the campaign row would make the scan skip the campaign.
    """

    __tablename__ = "rotation_cursors"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, server_default="0")


class DailyClaims(Base):
    """How many attempts the scan claimed for a campaign on one local day.

    The daily cap (seed 003 ``max_calls_per_day``) is read from here in one lookup,
    so the scan's cost does not grow with the rows a campaign has accumulated.
    ``day`` is the date in the campaign's time zone.
    """

    __tablename__ = "campaign_daily_claims"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    claimed: Mapped[int] = mapped_column(Integer, server_default="0")
