"""Set-based reads for applying many results in one transaction: one query per kind of fact.

Applying a thousand call results must not mean a thousand round trips per fact, so
everything a decision needs (locked attempts and enrollments, goal facts, WhatsApp
history, the last attempt number) is read for the whole batch at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session, load_only

from dialer.policies.goals import GoalFacts
from dialer.policies.vocabulary import ContactEventKind, Direction, FallbackChannel
from models import CallAttempt, ContactEvent, Customer, Enrollment, Message
from models.sql import among

# What applying a result reads of an attempt. The other columns are only written, so
# they are not loaded: a batch of results then reads a quarter of each row. (A column
# read but missing here costs one query per row; tests/integration/test_no_lazy_loads.py
# fails when that happens on the pipeline's paths.)
RESULT_COLUMNS = (
    CallAttempt.enrollment_id,
    CallAttempt.campaign_id,
    CallAttempt.customer_id,
    CallAttempt.status,
    CallAttempt.outcome,
    CallAttempt.conv_id,
    CallAttempt.finished_at,
    CallAttempt.customer_sentiment,
    CallAttempt.agent_goal_score,
    CallAttempt.attempt_no,  # in the call.completed webhook event (issue 17)
)


def lock_attempts(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, CallAttempt]:
    """Row locks in id order, so two batches over the same attempts cannot deadlock."""
    if not ids:
        return {}
    rows = session.scalars(
        select(CallAttempt)
        .options(load_only(*RESULT_COLUMNS))
        .where(among(CallAttempt.id, ids))
        .order_by(CallAttempt.id)
        .with_for_update()
    )
    return {attempt.id: attempt for attempt in rows}


# What deciding after a call reads of an enrollment (goal_result, closing fields and
# timestamps are only written).
DECISION_COLUMNS = (
    Enrollment.campaign_id,
    Enrollment.customer_id,
    Enrollment.state,
    Enrollment.calls_made,
    Enrollment.unanswered_calls,
    Enrollment.round_base,
    Enrollment.outcome_calls,
)


def lock_enrollments(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Enrollment]:
    if not ids:
        return {}
    rows = session.scalars(
        select(Enrollment)
        .options(load_only(*DECISION_COLUMNS))
        .where(among(Enrollment.id, ids))
        .order_by(Enrollment.id)
        .with_for_update()
    )
    return {enrollment.id: enrollment for enrollment in rows}


def attempt_ids_for_calls(session: Session, conv_ids: Collection[str]) -> dict[str, uuid.UUID]:
    """Provider call id -> attempt, for events that carry no attempt id of ours."""
    if not conv_ids:
        return {}
    rows = session.execute(
        select(CallAttempt.conv_id, CallAttempt.id).where(among(CallAttempt.conv_id, conv_ids))
    )
    return {str(conv_id): attempt_id for conv_id, attempt_id in rows}


@dataclass
class FactCounts:
    """Mutable goal facts of one enrollment: loaded once, then kept current in memory."""

    answered_calls: int = 0
    whatsapp_replies: int = 0
    sms_replies: int = 0
    emails_delivered: int = 0
    emails_accepted: int = 0
    latest_ai_label: str | None = None
    latest_ai_score: float | None = None
    latest_ai_at: datetime | None = None

    def count(self, kind: str, times: int = 1) -> None:
        if kind == ContactEventKind.ANSWERED_CALL:
            self.answered_calls += times
        elif kind == ContactEventKind.WHATSAPP_REPLY:
            self.whatsapp_replies += times
        elif kind == ContactEventKind.SMS_REPLY:
            self.sms_replies += times
        elif kind == ContactEventKind.EMAIL_DELIVERED:
            self.emails_delivered += times
        elif kind == ContactEventKind.EMAIL_ACCEPTED:
            self.emails_accepted += times

    def add(self, kind: str, data: dict[str, object], at: datetime) -> None:
        """One new contact event; an AI evaluation replaces an older one."""
        if kind != ContactEventKind.AI_EVALUATION:
            self.count(kind)
        elif self.latest_ai_at is None or at >= self.latest_ai_at:
            label, score = data.get("label"), data.get("score")
            self.latest_ai_label = label if isinstance(label, str) else None
            self.latest_ai_score = float(score) if isinstance(score, int | float) else None
            self.latest_ai_at = at

    def frozen(self) -> GoalFacts:
        return GoalFacts(
            answered_calls=self.answered_calls,
            whatsapp_replies=self.whatsapp_replies,
            emails_delivered=self.emails_delivered,
            latest_ai_label=self.latest_ai_label,
            latest_ai_score=self.latest_ai_score,
            sms_replies=self.sms_replies,
            emails_accepted=self.emails_accepted,
        )


def goal_facts_of(
    session: Session, enrollment_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, FactCounts]:
    """Counts per kind and the latest AI evaluation, for every enrollment given."""
    facts = {enrollment_id: FactCounts() for enrollment_id in enrollment_ids}
    if not facts:
        return facts
    counts = session.execute(
        select(ContactEvent.enrollment_id, ContactEvent.kind, func.count())
        .where(
            among(ContactEvent.enrollment_id, facts),
            ContactEvent.kind != ContactEventKind.AI_EVALUATION,
        )
        .group_by(ContactEvent.enrollment_id, ContactEvent.kind)
    )
    for enrollment_id, kind, count in counts:
        facts[enrollment_id].count(kind, count)
    latest = session.execute(
        select(ContactEvent.enrollment_id, ContactEvent.data, ContactEvent.occurred_at)
        .where(
            among(ContactEvent.enrollment_id, facts),
            ContactEvent.kind == ContactEventKind.AI_EVALUATION,
        )
        .ext(distinct_on(ContactEvent.enrollment_id))
        .order_by(
            ContactEvent.enrollment_id, ContactEvent.occurred_at.desc(), ContactEvent.id.desc()
        )
    )
    for enrollment_id, data, occurred_at in latest:
        facts[enrollment_id].add(ContactEventKind.AI_EVALUATION, data or {}, occurred_at)
    return facts


def fallback_sent_among(session: Session, enrollment_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Enrollments with an outbound message on a fallback channel (the fallback fires once)."""
    if not enrollment_ids:
        return set()
    return set(
        session.scalars(
            select(Message.enrollment_id)
            .where(
                among(Message.enrollment_id, enrollment_ids),
                Message.channel.in_(tuple(FallbackChannel)),
                Message.direction == Direction.OUTBOUND,
            )
            .distinct()
        )
    )


def last_attempt_numbers(
    session: Session, enrollment_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, int]:
    # Not calls_made: a canceled attempt keeps its number without counting as a call,
    # and reusing that number would make the next insert a silent no-op.
    if not enrollment_ids:
        return {}
    rows = session.execute(
        select(CallAttempt.enrollment_id, func.max(CallAttempt.attempt_no))
        .where(among(CallAttempt.enrollment_id, enrollment_ids))
        .group_by(CallAttempt.enrollment_id)
    )
    return {enrollment_id: int(last) for enrollment_id, last in rows}


def phones_of(session: Session, enrollment_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not enrollment_ids:
        return {}
    rows = session.execute(
        select(Enrollment.id, Customer.phone)
        .join(Customer, Customer.id == Enrollment.customer_id)
        .where(among(Enrollment.id, enrollment_ids))
    )
    return {enrollment_id: phone for enrollment_id, phone in rows if phone}
