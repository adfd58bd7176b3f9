"""Provider results: stored in the inbox first, then applied monotonically.

A call event moves its attempt forward only (terminal states absorb); when the
attempt ends, the enrollment's next step is decided by the retry policy and the
goal: close it, plan the next call, and/or queue the WhatsApp fallback.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.policies.retry import NextStep, RetryPlan, decide_after_call
from dialer.policies.status import apply_provider_status, is_terminal
from dialer.policies.vocabulary import AttemptStatus, EnrollmentState, Outcome, ProviderCallStatus
from dialer.providers.base import CallRecord, ProviderEvent
from dialer.services.attempts import cancel_open_work, queue_message, schedule_call
from dialer.services.goals import evaluate_enrollment
from models import (
    CallAttempt,
    Campaign,
    ContactEvent,
    Enrollment,
    Message,
)
from models import (
    ProviderEvent as InboxRow,
)


def store_event(
    session: Session, event: ProviderEvent, payload: dict[str, Any]
) -> uuid.UUID | None:
    """Put the event in the inbox; None when this provider event id was seen before."""
    stmt = (
        insert(InboxRow)
        .values(
            provider=event.provider,
            event_id=event.event_id,
            kind=event.kind,
            payload=payload,
            attempt_id=_attempt_ref(event),
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(InboxRow.id)
    )
    return session.execute(stmt).scalar()


def _attempt_ref(event: ProviderEvent) -> uuid.UUID | None:
    raw = event.call.metadata.get("attempt_id") if event.call else None
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def find_attempt_for_call(
    session: Session, record: CallRecord, hint: uuid.UUID | None
) -> CallAttempt | None:
    query = select(CallAttempt).with_for_update()
    query = (
        query.where(CallAttempt.id == hint)
        if hint
        else query.where(CallAttempt.conv_id == record.id)
    )
    return session.scalars(query).first()


def apply_call_record(
    session: Session, attempt: CallAttempt, record: CallRecord, now: datetime
) -> bool:
    """Apply a call record to its (locked) attempt; True when the attempt changed."""
    status = ProviderCallStatus(record.status)
    change = apply_provider_status(
        AttemptStatus(attempt.status),
        Outcome(attempt.outcome) if attempt.outcome else None,
        status,
        voicemail=record.voicemail,
    )
    if not change.changed:
        return False
    was_terminal = is_terminal(AttemptStatus(attempt.status))
    attempt.status = change.status.value
    attempt.outcome = change.outcome.value if change.outcome else None
    _copy_record(attempt, record)
    if is_terminal(change.status) and not was_terminal:
        attempt.finished_at = record.ended_at or now
        finish_call(session, attempt, now, permanent_failure=False)
    return True


def _copy_record(attempt: CallAttempt, record: CallRecord) -> None:
    attempt.provider_status = record.status
    attempt.conv_id = attempt.conv_id or record.id
    for name in (
        "ringing_at",
        "answered_at",
        "ended_at",
        "billable_seconds",
        "cost_millicents",
        "extraction_status",
        "extraction_error",
        "provider_error_code",
        "hangup_reason",
    ):
        value = getattr(record, name)
        if value is not None:
            setattr(attempt, name, value)
    if record.duration_seconds is not None:
        attempt.duration_seconds = Decimal(str(round(record.duration_seconds, 2)))
    if record.extraction is not None:
        attempt.extraction = dict(record.extraction)
    if record.error_message:
        attempt.last_error = record.error_message
    if record.analysis is not None:
        _copy_analysis(attempt, record)


def _copy_analysis(attempt: CallAttempt, record: CallRecord) -> None:
    a = record.analysis
    assert a is not None
    attempt.call_summary_title = a.summary_title
    attempt.transcript_summary = a.transcript_summary
    attempt.call_successful = a.call_successful
    attempt.agent_goal_result = a.goal_result
    attempt.agent_goal_rationale = a.goal_rationale
    attempt.agent_goal_score = a.goal_score
    attempt.customer_sentiment = a.sentiment
    attempt.customer_sentiment_rationale = a.sentiment_rationale
    attempt.follow_up_required = a.follow_up_required
    attempt.follow_up_required_rationale = a.follow_up_rationale
    attempt.escalation_required = a.escalation_required
    attempt.escalation_required_rationale = a.escalation_rationale
    attempt.messages_count = a.messages_count


def finish_call(
    session: Session, attempt: CallAttempt, now: datetime, *, permanent_failure: bool
) -> NextStep | None:
    """The attempt just became terminal: count it, record facts, decide the next step."""
    enrollment = session.scalars(
        select(Enrollment).where(Enrollment.id == attempt.enrollment_id).with_for_update()
    ).one()
    campaign = session.get_one(Campaign, attempt.campaign_id)
    outcome = Outcome(attempt.outcome or "failed")
    _count_call(enrollment, outcome, now)
    _record_call_facts(session, attempt, enrollment, now)
    goal = evaluate_enrollment(session, enrollment, campaign)
    if enrollment.state != "active":
        return None  # closed meanwhile (opted out, goal met by a reply)
    step = decide_after_call(
        _retry_plan(campaign),
        outcome=Outcome.FAILED if outcome is Outcome.CANCELED else outcome,
        attempts_made=enrollment.calls_made - enrollment.round_base,
        unanswered_calls=enrollment.unanswered_calls,
        whatsapp_sent=_whatsapp_sent(session, enrollment.id),
        goal_met=goal.met,
        permanent_failure=permanent_failure,
        finished_at=now,
    )
    if campaign.status == "done":
        step = _closing_only(step)
    apply_next_step(session, enrollment, campaign, step, now)
    return step


def _closing_only(step: NextStep) -> NextStep:
    """The campaign was completed while this call was on the line: record the verdict
    (goal_met, unresolved...), plan nothing. Left active, the enrollment would hold a
    resumed campaign open forever; not_answered is what resume can select."""
    if step.close_as is not None:
        return replace(step, send_whatsapp=False)
    return NextStep(EnrollmentState.NOT_ANSWERED, None, False, "campaign completed")


def _count_call(enrollment: Enrollment, outcome: Outcome, now: datetime) -> None:
    enrollment.calls_made += 1
    if outcome is not Outcome.ANSWERED:
        enrollment.unanswered_calls += 1
    else:
        enrollment.last_contact_at = now


def _record_call_facts(
    session: Session, attempt: CallAttempt, enrollment: Enrollment, now: datetime
) -> None:
    if attempt.outcome != Outcome.ANSWERED:
        return
    base = {
        "enrollment_id": enrollment.id,
        "customer_id": enrollment.customer_id,
        "campaign_id": enrollment.campaign_id,
        "channel": "call",
        "source_id": attempt.id,
        "occurred_at": attempt.finished_at or now,
    }
    rows = [base | {"kind": "answered_call", "data": {}}]
    if attempt.customer_sentiment:
        data = {"label": attempt.customer_sentiment, "score": attempt.agent_goal_score}
        rows.append(base | {"kind": "ai_evaluation", "data": data})
    session.execute(insert(ContactEvent).values(rows).on_conflict_do_nothing())


def _retry_plan(campaign: Campaign) -> RetryPlan:
    whatsapp = campaign.whatsapp_channel_id is not None and bool(campaign.whatsapp_first_message)
    return RetryPlan(
        tuple(campaign.call_attempt_delays), campaign.whatsapp_after_attempts, whatsapp
    )


def _whatsapp_sent(session: Session, enrollment_id: uuid.UUID) -> bool:
    q = select(Message.id).where(
        Message.enrollment_id == enrollment_id,
        Message.channel == "whatsapp",
        Message.direction == "outbound",
    )
    return session.scalar(q.limit(1)) is not None


def apply_next_step(
    session: Session, enrollment: Enrollment, campaign: Campaign, step: NextStep, now: datetime
) -> None:
    if step.close_as in (EnrollmentState.GOAL_MET, EnrollmentState.FAILED):
        cancel_open_work(session, now, enrollment_ids=[enrollment.id], reason=step.reason)
    if step.send_whatsapp and campaign.whatsapp_channel_id and campaign.whatsapp_first_message:
        queue_message(
            session,
            enrollment,
            campaign.whatsapp_channel_id,
            "fallback",
            campaign.whatsapp_first_message,
            now,
        )
    if step.close_as is not None:
        enrollment.state = step.close_as.value
        enrollment.closed_at = now
        enrollment.close_reason = step.reason
    elif step.next_call_at is not None:
        schedule_call(session, enrollment, step.next_call_at)
