"""Campaign lifecycle: start, pause, resume(segment), complete, start-scheduled, finish.

Each service locks the campaign row, applies the pure transition (seed 002 rules)
and writes an outbox event in the same transaction; the relay publishes it and the
handler creates the work (dialer.services.attempts).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from dialer.errors import Conflict, NotFound
from dialer.policies.lifecycle import Action, transition
from dialer.policies.segments import EnrollmentSnapshot, ResumePlan, plan_resume
from dialer.policies.vocabulary import (
    AttemptStatus,
    CampaignStatus,
    Channel,
    Direction,
    EnrollmentState,
    MessagePurpose,
    MessageStatus,
    Segment,
    WebhookEventType,
)
from dialer.services import outbox, webhooks
from dialer.services.attempts import cancel_open_work, queue_message, schedule_call
from models import CallAttempt, Campaign, Customer, Enrollment, Message
from models.vocabulary import OPEN_ATTEMPT_STATUSES


@dataclass(frozen=True)
class ResumeResult:
    """seed 002 CampaignResumeResult."""

    campaign: Campaign
    segment: Segment
    selected_targets: int
    scheduled_calls: int
    queued_messages: int  # wire: queued_whatsapp
    skipped_existing_pending: int
    skipped_missing_contact: int


# A close marks its campaign for the finish duty while at most this many other
# enrollments are still active (the trigger of migration 0019): concurrent last closes
# each see the others active, and every one of them must still mark it.
NEAR_END = 2


def lock_campaign(
    session: Session, campaign_id: uuid.UUID, account_id: uuid.UUID | None = None
) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id).with_for_update()
    if account_id is not None:
        query = query.where(Campaign.account_id == account_id)
    campaign = session.scalars(query).first()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def start_campaign(session: Session, campaign: Campaign, now: datetime) -> Campaign:
    """draft/paused -> running (running: no-op; done: CampaignStateError)."""
    move = transition(CampaignStatus(campaign.status), Action.START)
    if move.changed:
        campaign.status = move.new_status
        campaign.started_at = campaign.started_at or now
        # Checked once by the finish duty: a campaign started with nothing to do ends.
        campaign.finish_check_at = now
        outbox.record_event(session, outbox.CAMPAIGN_STARTED, campaign.id, now)
        _announce(session, campaign, outbox.CAMPAIGN_STARTED, now)
    return campaign


def pause_campaign(session: Session, campaign: Campaign, now: datetime) -> Campaign:
    """running -> paused: no new dispatches; pending work waits for start/resume."""
    move = transition(CampaignStatus(campaign.status), Action.PAUSE)
    if move.changed:
        campaign.status = move.new_status
        outbox.record_event(session, outbox.CAMPAIGN_PAUSED, campaign.id, now)
        _announce(session, campaign, outbox.CAMPAIGN_PAUSED, now)
    return campaign


def _announce(
    session: Session,
    campaign: Campaign,
    kind: WebhookEventType,
    now: datetime,
    reason: str | None = None,
) -> None:
    """The account's webhooks hear of it, in this transaction (dialer.services.webhooks)."""
    event = webhooks.campaign_event(
        campaign.account_id, campaign.id, kind, campaign.status, now, reason
    )
    webhooks.announce(session, [event])


def complete_campaign(session: Session, campaign: Campaign, now: datetime) -> Campaign:
    """-> done; pending attempts canceled; calls in flight are still recorded."""
    move = transition(CampaignStatus(campaign.status), Action.COMPLETE)
    if move.changed:
        _close(session, campaign, now, reason="campaign completed")
        _end_waiting_enrollments(session, campaign.id, now)
    return campaign


def _end_waiting_enrollments(session: Session, campaign_id: uuid.UUID, now: datetime) -> None:
    """Their pending work was just canceled and nothing would move them on again: they
    end not_answered, which resume selects (an active one would keep a resumed campaign
    running forever). One with a call on the line ends when that call does."""
    call_on_line = exists().where(
        CallAttempt.enrollment_id == Enrollment.id,
        CallAttempt.status.in_(OPEN_ATTEMPT_STATUSES),
    )
    session.execute(
        update(Enrollment)
        .where(
            Enrollment.campaign_id == campaign_id,
            Enrollment.state == EnrollmentState.ACTIVE,
            ~call_on_line,
        )
        .values(
            state=EnrollmentState.NOT_ANSWERED, closed_at=now, close_reason="campaign completed"
        )
    )


def finish_if_done(session: Session, campaign: Campaign, now: datetime) -> bool:
    """A running campaign whose enrollments are all closed becomes done by itself."""
    if campaign.status != CampaignStatus.RUNNING or _has_work_left(session, campaign.id):
        return False
    transition(CampaignStatus(campaign.status), Action.FINISH)
    _close(session, campaign, now, reason="campaign finished")
    return True


def finish_marked(session: Session, campaign: Campaign, now: datetime) -> bool:
    """Finish a campaign marked when one of its last enrollments closed (migrations
    0011, 0019: marked while at most NEAR_END others are active).

    The mark stays while only in-flight calls, owed messages or NEAR_END active
    enrollments are left, and moves to the back of the queue (checked again next
    tick): dropping it while the last closes were in flight would lose the finish to
    the slow sweep again. It goes when more are active (a resume) or the campaign is
    no longer running.
    """
    if finish_if_done(session, campaign, now):
        return True
    if campaign.status != CampaignStatus.RUNNING or _active_count(session, campaign.id) > NEAR_END:
        campaign.finish_check_at = None
    else:
        campaign.finish_check_at = func.now()  # the trigger's clock: the marks' one order
    return False


def marked_for_finish(session: Session, limit: int) -> list[uuid.UUID]:
    """Running campaigns whose last active enrollment closed, oldest mark first."""
    return list(
        session.scalars(
            select(Campaign.id)
            .where(Campaign.status == CampaignStatus.RUNNING, Campaign.finish_check_at.is_not(None))
            .order_by(Campaign.finish_check_at)
            .limit(limit)
        )
    )


def running_without_work(session: Session, limit: int) -> list[uuid.UUID]:
    """The safety sweep, one statement: running campaigns with nothing left to do.

    It catches what the mark can miss: more than NEAR_END + 1 last enrollments closed
    by concurrent transactions, each of which still saw the others active.
    """
    return list(
        session.scalars(
            select(Campaign.id)
            .where(Campaign.status == CampaignStatus.RUNNING, ~_work_left(Campaign.id))
            .limit(limit)
        )
    )


def _active_count(session: Session, campaign_id: uuid.UUID) -> int:
    """How many enrollments are active, counted no further than NEAR_END + 1."""
    active = (
        select(Enrollment.id)
        .where(Enrollment.campaign_id == campaign_id, Enrollment.state == EnrollmentState.ACTIVE)
        .limit(NEAR_END + 1)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(active)) or 0)


def _close(session: Session, campaign: Campaign, now: datetime, *, reason: str) -> None:
    campaign.status = CampaignStatus.DONE
    campaign.completed_at = now
    cancel_open_work(session, now, campaign_id=campaign.id, reason=reason)
    outbox.record_event(session, outbox.CAMPAIGN_COMPLETED, campaign.id, now, reason=reason)
    _announce(session, campaign, outbox.CAMPAIGN_COMPLETED, now, reason)


def _has_work_left(session: Session, campaign_id: uuid.UUID) -> bool:
    return bool(session.scalar(select(_work_left(campaign_id))))


def _work_left(campaign_id: Any) -> ColumnElement[bool]:
    active = exists().where(
        Enrollment.campaign_id == campaign_id, Enrollment.state == EnrollmentState.ACTIVE
    )
    open_attempt = exists().where(
        CallAttempt.campaign_id == campaign_id, CallAttempt.status.in_(OPEN_ATTEMPT_STATUSES)
    )
    # A WhatsApp fallback still owed (due, or claimed by a send) keeps the campaign open:
    # closing would cancel it, or leave a claimed one that nothing sends.
    owed_message = exists().where(
        Message.campaign_id == campaign_id,
        Message.direction == Direction.OUTBOUND,
        Message.status.in_((MessageStatus.PENDING, MessageStatus.QUEUED)),
    )
    return active | open_attempt | owed_message


def resume_campaign(
    session: Session, campaign: Campaign, segment: Segment, now: datetime
) -> ResumeResult:
    """done/paused/running -> running, with a new round for the segment's enrollments."""
    move = transition(CampaignStatus(campaign.status), Action.RESUME)
    snapshots, enrollments = _snapshots(session, campaign.id)
    channel = (
        Channel(campaign.first_contact_channel) if campaign.fallback_channel_id else Channel.CALL
    )
    plan = plan_resume(segment, snapshots, channel)
    used = Counter(
        _reopen(session, campaign, enrollments[index], channel, now) for index in plan.to_schedule
    )
    if move.changed:
        campaign.status = move.new_status
        campaign.completed_at = None
    outbox.record_event(session, outbox.CAMPAIGN_RESUMED, campaign.id, now, segment=segment.value)
    return _resume_result(campaign, segment, plan, used)


def resume_counts(result: ResumeResult) -> dict[str, object]:
    """The seed's CampaignResumeResult counts (the API adds the campaign object)."""
    return {
        "segment": result.segment.value,
        "selected_targets": result.selected_targets,
        "scheduled_calls": result.scheduled_calls,
        "queued_whatsapp": result.queued_messages,
        "skipped_existing_pending": result.skipped_existing_pending,
        "skipped_missing_contact": result.skipped_missing_contact,
    }


def _resume_result(
    campaign: Campaign, segment: Segment, plan: ResumePlan, used: Counter[Channel]
) -> ResumeResult:
    # What was actually created: the plan assumes the campaign's first channel for all.
    return ResumeResult(
        campaign=campaign,
        segment=segment,
        selected_targets=plan.selected_targets,
        scheduled_calls=used[Channel.CALL],
        queued_messages=sum(n for channel, n in used.items() if channel is not Channel.CALL),
        skipped_existing_pending=plan.skipped_existing_pending,
        skipped_missing_contact=plan.skipped_missing_contact,
    )


def _snapshots(
    session: Session, campaign_id: uuid.UUID
) -> tuple[list[EnrollmentSnapshot], list[Enrollment]]:
    open_attempt = (
        exists()
        .where(
            CallAttempt.enrollment_id == Enrollment.id,
            CallAttempt.status.in_(OPEN_ATTEMPT_STATUSES),
        )
        .correlate(Enrollment)
    )
    sent = (
        select(func.count())
        .where(Message.enrollment_id == Enrollment.id, Message.direction == Direction.OUTBOUND)
        .correlate(Enrollment)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Enrollment, Customer.phone, open_attempt, sent)
        .join(Customer, Customer.id == Enrollment.customer_id)
        .where(Enrollment.campaign_id == campaign_id)
        .order_by(Enrollment.id)
    ).all()
    snapshots = [
        EnrollmentSnapshot(
            state=EnrollmentState(e.state),  # the policy compares members, not strings
            attempts_made=e.calls_made,
            messages_sent=n_sent,
            has_contact=bool(phone),
            has_open_attempt=bool(is_open),
        )
        for e, phone, is_open, n_sent in rows
    ]
    return snapshots, [row[0] for row in rows]


def _reopen(
    session: Session, campaign: Campaign, enrollment: Enrollment, channel: Channel, now: datetime
) -> Channel:
    """Start the enrollment's new round; returns the channel its first contact went on."""
    enrollment.state = EnrollmentState.ACTIVE
    enrollment.closed_at = None
    enrollment.close_reason = None
    enrollment.round_base = enrollment.calls_made
    enrollment.outcome_calls = {}  # max_tries counts per round
    enrollment.unanswered_calls = min(enrollment.unanswered_calls, enrollment.calls_made)
    # The first message goes out once per enrollment (a unique index): when an earlier
    # round sent it, this round starts with a call instead of silently queuing nothing.
    if (
        channel is not Channel.CALL
        and campaign.fallback_channel_id
        and campaign.fallback_first_message
        and queue_message(
            session,
            enrollment,
            campaign.fallback_channel,
            campaign.fallback_channel_id,
            MessagePurpose.FIRST_CONTACT,
            campaign.fallback_first_message,
            now,
        )
    ):
        return channel
    schedule_call(session, enrollment, now)
    return Channel.CALL


def start_scheduled(
    session: Session, attempt_id: uuid.UUID, now: datetime, account_id: uuid.UUID | None = None
) -> CallAttempt:
    """seed 000: set scheduled_at to now for a pending attempt (Conflict otherwise)."""
    query = select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
    if account_id is not None:
        query = query.join(Customer, Customer.id == CallAttempt.customer_id).where(
            Customer.account_id == account_id
        )
    attempt = session.scalars(query).first()
    if attempt is None:
        raise NotFound(f"call attempt {attempt_id} not found")
    if attempt.status != AttemptStatus.PENDING:
        raise Conflict(
            f"call attempt {attempt_id} is {attempt.status}; only a pending attempt can start now"
        )
    attempt.scheduled_at = now
    return attempt
