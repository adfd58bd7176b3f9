"""Call attempts (seed 000 CallAttemptOut plus enrollment, idempotency key and seed 004 fields)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdMixin, TimestampMixin, Word, one_of
from models.vocabulary import (
    ATTEMPT_STATUSES,
    OPEN_ATTEMPT_STATUSES,
    OUTCOMES,
    VOICEMAIL_ACTIONS,
    AttemptStatus,
    Direction,
    Outcome,
    VoicemailAction,
)

_OPEN = one_of("status", OPEN_ATTEMPT_STATUSES)
IN_FLIGHT_WHERE = "status IN ('queued', 'dispatching', 'uncertain', 'in_progress')"


class CallAttempt(IdMixin, TimestampMixin, Base):
    __tablename__ = "call_attempts"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE")
    )
    # Denormalised from the enrollment: the scan filters by campaign, /calls by customer.
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[AttemptStatus] = mapped_column(Word(AttemptStatus), server_default="pending")
    outcome: Mapped[Outcome | None] = mapped_column(Word(Outcome))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    scheduled_at: Mapped[datetime]
    queued_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Seed 000 fields.
    conv_id: Mapped[str | None] = mapped_column(String(255))
    # The voice provider the attempt was sent to (its conv_id is that provider's call).
    provider: Mapped[str | None] = mapped_column(String(64))
    n8n_exec_id: Mapped[str | None] = mapped_column(String(255))
    direction: Mapped[Direction] = mapped_column(Word(Direction), server_default="outbound")
    external_from: Mapped[str | None] = mapped_column(String(50))
    external_to: Mapped[str | None] = mapped_column(String(50))
    duration_seconds: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    messages_count: Mapped[int] = mapped_column(Integer, server_default="0")
    call_successful: Mapped[str | None] = mapped_column(String(32))
    call_summary_title: Mapped[str | None] = mapped_column(Text)
    transcript_summary: Mapped[str | None] = mapped_column(Text)
    agent_goal_result: Mapped[str | None] = mapped_column(String(64))
    agent_goal_rationale: Mapped[str | None] = mapped_column(Text)
    agent_goal_score: Mapped[float | None]
    customer_sentiment: Mapped[str | None] = mapped_column(String(32))
    customer_sentiment_rationale: Mapped[str | None] = mapped_column(Text)
    follow_up_required: Mapped[bool | None] = mapped_column(Boolean)
    follow_up_required_rationale: Mapped[str | None] = mapped_column(Text)
    escalation_required: Mapped[bool | None] = mapped_column(Boolean)
    escalation_required_rationale: Mapped[str | None] = mapped_column(Text)
    delivery_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # Seed 004 call record fields.
    provider_status: Mapped[str | None] = mapped_column(String(16))
    ringing_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    billable_seconds: Mapped[int | None] = mapped_column(Integer)
    cost_millicents: Mapped[int | None] = mapped_column(BigInteger)
    extraction: Mapped[dict[str, Any] | None]
    extraction_status: Mapped[str | None] = mapped_column(String(16))
    extraction_error: Mapped[str | None] = mapped_column(Text)
    provider_error_code: Mapped[str | None] = mapped_column(String(64))
    hangup_reason: Mapped[str | None] = mapped_column(String(128))
    # The campaign's voicemail policy sent with the placement (None: the agent's own).
    voicemail_action: Mapped[VoicemailAction | None] = mapped_column(Word(VoicemailAction))
    # An `uncertain` attempt: when reconciliation next looks the call up at the provider.
    next_check_at: Mapped[datetime | None]
    # Why the call was allowed when it was dialed (dialer.policies.evidence): zones and
    # their source, local times, rule packs, window, suppression check. For audits.
    evidence: Mapped[dict[str, Any] | None]

    __table_args__ = (
        CheckConstraint(one_of("status", ATTEMPT_STATUSES), name="status"),
        CheckConstraint(f"outcome IS NULL OR {one_of('outcome', OUTCOMES)}", name="outcome"),
        CheckConstraint("attempt_no >= 1", name="attempt_no"),
        CheckConstraint(one_of("voicemail_action", VOICEMAIL_ACTIONS), name="voicemail_action"),
        CheckConstraint("delivery_attempts >= 0", name="delivery_attempts"),
        CheckConstraint(f"({_OPEN}) = (finished_at IS NULL)", name="finished_iff_terminal"),
        UniqueConstraint("enrollment_id", "attempt_no"),
        # Never two open attempts for one person in one campaign: no double call by mistake.
        Index(
            "uq_call_attempts_one_open_per_enrollment",
            "enrollment_id",
            unique=True,
            postgresql_where=text(_OPEN),
        ),
        # The due-scan reads only pending rows: O(due attempts), not O(all attempts).
        Index(
            "ix_call_attempts_due",
            "campaign_id",
            "scheduled_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # Concurrency counting and the reaper read only in-flight rows.
        Index(
            "ix_call_attempts_in_flight",
            "campaign_id",
            "status",
            postgresql_where=text(IN_FLIGHT_WHERE),
        ),
        # Reconciliation reads only held placements, by when they are next looked up.
        Index(
            "ix_call_attempts_uncertain",
            "next_check_at",
            postgresql_where=text("status = 'uncertain'"),
        ),
        # The reaper reads stale in-flight rows oldest first, not every in-flight row.
        Index(
            "ix_call_attempts_queued_at",
            "queued_at",
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_call_attempts_dispatched_at",
            "status",
            "dispatched_at",
            postgresql_where=text("status IN ('dispatching', 'in_progress')"),
        ),
        Index("ix_call_attempts_customer", "customer_id"),
        Index("ix_call_attempts_conv_id", "conv_id"),
    )
