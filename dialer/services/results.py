"""Provider results: stored in the inbox first, then applied monotonically.

A call event moves its attempt forward only (terminal states absorb); when the
attempt ends, the enrollment's next step is decided by the retry policy and the
goal: close it, plan the next call, and/or queue the fallback message.

`ResultBatch` does this for many attempts in one transaction: it locks them and
their enrollments, reads every fact a decision needs with one query per kind,
decides in memory, and writes new contact events, attempts and messages with one
statement each. One result is a batch of one; there is no second code path.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from dialer import metrics
from dialer.policies.goals import evaluate_goal
from dialer.policies.retry import (
    OPT_OUT_REASON,
    WRONG_NUMBER_REASON,
    NextStep,
    OutcomeRetries,
    RetryPlan,
    decide_after_call,
    stop_signals,
)
from dialer.policies.status import apply_provider_status, is_terminal
from dialer.policies.vocabulary import (
    AttemptStatus,
    CampaignStatus,
    Channel,
    ContactEventKind,
    Direction,
    EnrollmentState,
    FallbackChannel,
    MessagePurpose,
    MessageStatus,
    Outcome,
    ProviderCallStatus,
    StopSignal,
    SuppressionSource,
)
from dialer.providers.base import CallRecord, ProviderEvent
from dialer.services import batch_reads, webhooks
from dialer.services.attempts import cancel_open_work, idempotency_key
from dialer.services.campaigns import outcome_retries_of, retry_plan_of
from dialer.services.goals import objectives_of
from dialer.services.suppressions import opt_out_customers
from models import Base, CallAttempt, Campaign, ContactEvent, Enrollment, Message
from models import ProviderEvent as InboxRow
from models.sql import insert_rows, write_changes


def store_event(
    session: Session, event: ProviderEvent, payload: dict[str, Any]
) -> uuid.UUID | None:
    """Put the event in the inbox; None when this provider event id was seen before."""
    return store_events(session, [(event, payload)]).get(event.event_id)


def store_events(
    session: Session, events: Iterable[tuple[ProviderEvent, dict[str, Any]]]
) -> dict[str, uuid.UUID]:
    """Store many events with one statement; returns event id -> inbox id of the new ones."""
    rows = [
        {
            "provider": event.provider,
            "event_id": event.event_id,
            "kind": event.kind,
            "payload": payload,
            "attempt_id": attempt_ref(event),
        }
        for event, payload in events
    ]
    table = cast(Table, InboxRow.__table__)
    new = insert_rows(
        session,
        table,
        rows,
        conflict_columns=["provider", "event_id"],
        returning=["event_id", "id"],
    )
    return {row.event_id: row.id for row in new}


def attempt_ref(event: ProviderEvent) -> uuid.UUID | None:
    raw = event.call.metadata.get("attempt_id") if event.call else None
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def apply_call_record(
    session: Session, attempt: CallAttempt, record: CallRecord, now: datetime
) -> bool:
    """Apply a call record to its (locked) attempt; True when the attempt changed."""
    batch = ResultBatch(session, now)
    batch.lock([attempt.id])
    changed = batch.apply(attempt, record)
    batch.flush()
    return changed


def finish_call(
    session: Session, attempt: CallAttempt, now: datetime, *, permanent_failure: bool
) -> NextStep | None:
    """The (locked) attempt just became terminal: count it, record facts, decide what next."""
    batch = ResultBatch(session, now)
    batch.lock([attempt.id])
    step = batch.finish(attempt, permanent_failure=permanent_failure)
    batch.flush()
    return step


@dataclass
class _Writes:
    """What a batch's decisions add, written with one statement each at flush."""

    contact_events: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    cancel_for: list[uuid.UUID] = field(default_factory=list)
    cancel_reasons: dict[uuid.UUID, str] = field(default_factory=dict)
    opt_outs: set[uuid.UUID] = field(default_factory=set)  # customers, from call extractions
    webhook_events: list[webhooks.WebhookEvent] = field(default_factory=list)


class ResultBatch:
    """Call results for many attempts, applied in one transaction (see the module doc)."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now
        self.attempts: dict[uuid.UUID, CallAttempt] = {}
        self.enrollments: dict[uuid.UUID, Enrollment] = {}
        # Held here: the session's identity map is weak, and a campaign re-read per
        # result would also autoflush every pending change each time.
        self.campaigns: dict[uuid.UUID, Campaign] = {}
        self._facts: dict[uuid.UUID, batch_reads.FactCounts] | None = None
        self._retries: dict[uuid.UUID, OutcomeRetries] = {}
        self._fallback_sent: set[uuid.UUID] = set()
        self._last_no: dict[uuid.UUID, int] = {}
        self._writes = _Writes()

    def lock(self, attempt_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, CallAttempt]:
        """Lock the attempts. Their enrollments are locked after, when a call ends."""
        self.attempts.update(batch_reads.lock_attempts(self.session, attempt_ids))
        return self.attempts

    def _enrollment_of(self, attempt: CallAttempt) -> Enrollment:
        """Lock every enrollment of the batch at once, in id order, after the attempts."""
        if attempt.enrollment_id not in self.enrollments:
            wanted = {a.enrollment_id for a in self.attempts.values()} | {attempt.enrollment_id}
            self.enrollments.update(
                batch_reads.lock_enrollments(self.session, wanted - set(self.enrollments))
            )
            self._facts = None  # new enrollments: read facts again when first needed
        return self.enrollments[attempt.enrollment_id]

    def _campaign_of(self, attempt: CallAttempt) -> Campaign:
        if attempt.campaign_id not in self.campaigns:
            wanted = {a.campaign_id for a in self.attempts.values()} | {attempt.campaign_id}
            found = self.session.scalars(select(Campaign).where(Campaign.id.in_(wanted)))
            self.campaigns.update((campaign.id, campaign) for campaign in found)
        return self.campaigns[attempt.campaign_id]

    def _retries_of(self, campaign: Campaign) -> OutcomeRetries:
        """The campaign's retry_by_outcome, validated once per batch."""
        if campaign.id not in self._retries:
            self._retries[campaign.id] = outcome_retries_of(campaign)
        return self._retries[campaign.id]

    def apply(self, attempt: CallAttempt, record: CallRecord) -> bool:
        """Move the attempt forward by the record; True when it changed."""
        change = apply_provider_status(
            AttemptStatus(attempt.status),
            Outcome(attempt.outcome) if attempt.outcome else None,
            ProviderCallStatus(record.status),
            voicemail=record.voicemail,
        )
        signals = stop_signals(record.extraction)
        if not change.changed:
            # The extraction may come after the call ended (seed 004: pending, then
            # completed): its "never again" still counts.
            return bool(signals) and self._late_signals(attempt, record, signals)
        was_terminal = is_terminal(AttemptStatus(attempt.status))
        attempt.status = change.status
        attempt.outcome = change.outcome
        copy_record(attempt, record)
        if is_terminal(change.status) and not was_terminal:
            attempt.finished_at = record.ended_at or self.now
            self.finish(attempt, permanent_failure=False, signals=signals)
        return True

    def finish(
        self,
        attempt: CallAttempt,
        *,
        permanent_failure: bool,
        signals: frozenset[StopSignal] = frozenset(),
    ) -> NextStep | None:
        """The attempt just became terminal: count it, record facts, decide the next step.

        ``signals`` are the call extraction's "never again" words (``stop_signals``).
        """
        enrollment = self._enrollment_of(attempt)
        campaign = self._campaign_of(attempt)
        retries = self._retries_of(campaign)
        signals = signals & retries.stop_outcomes
        if StopSignal.OPT_OUT in signals:
            self._writes.opt_outs.add(enrollment.customer_id)
        outcome = Outcome(attempt.outcome or Outcome.FAILED)
        metrics.attempt_finished(outcome.value)
        self._writes.webhook_events.append(
            webhooks.call_completed_event(campaign.account_id, attempt, self.now)
        )
        outcome_calls = _count_call(enrollment, outcome, self.now)
        self._record_call_facts(attempt, enrollment)
        goal = evaluate_goal(
            objectives_of(campaign.goal_spec, campaign.email_goal_counts),
            campaign.goal_logic,
            self._facts_of(enrollment.id).frozen(),
        )
        enrollment.goal_result = goal.to_dict()
        if enrollment.state != EnrollmentState.ACTIVE:
            return None  # closed meanwhile (opted out, goal met by a reply)
        step = decide_after_call(
            _retry_plan(campaign, retries),
            outcome=Outcome.FAILED if outcome is Outcome.CANCELED else outcome,
            attempts_made=enrollment.calls_made - enrollment.round_base,
            unanswered_calls=enrollment.unanswered_calls,
            fallback_sent=enrollment.id in self._fallback_sent,
            goal_met=goal.met,
            permanent_failure=permanent_failure,
            finished_at=self.now,
            outcome_calls=outcome_calls,
            signals=signals,
        )
        if campaign.status == CampaignStatus.DONE:
            step = _closing_only(step)
        self._apply_next_step(enrollment, campaign, step)
        return step

    def flush(self) -> None:
        """Write the ORM changes, then everything the decisions added."""
        write_changes(self.session, [*self.attempts.values(), *self.enrollments.values()])
        self.session.flush()
        writes, self._writes = self._writes, _Writes()
        if writes.opt_outs:
            closed = opt_out_customers(
                self.session, writes.opt_outs, SuppressionSource.CALL_EXTRACTION, self.now
            )
            for enrollment_id in closed:
                writes.cancel_for.append(enrollment_id)
                writes.cancel_reasons[enrollment_id] = OPT_OUT_REASON
        for reason in set(writes.cancel_reasons.values()):
            ids = [e for e in writes.cancel_for if writes.cancel_reasons[e] == reason]
            cancel_open_work(self.session, self.now, enrollment_ids=ids, reason=reason)
        _insert_all(self.session, ContactEvent, writes.contact_events)
        _insert_all(self.session, CallAttempt, writes.attempts)
        if writes.messages:
            self._insert_messages(writes.messages)
        webhooks.announce(self.session, writes.webhook_events)

    # ------------------------------------------------------------------ decisions

    def _facts_of(self, enrollment_id: uuid.UUID) -> batch_reads.FactCounts:
        if self._facts is None:
            self._read_facts()
        assert self._facts is not None
        return self._facts[enrollment_id]

    def _read_facts(self) -> None:
        """Facts for every enrollment of the batch at once; kept current in memory after."""
        ids = list(self.enrollments)
        self._facts = batch_reads.goal_facts_of(self.session, ids)
        for pending in self._writes.contact_events:  # added but not yet written
            self._facts[pending["enrollment_id"]].add(
                pending["kind"], pending["data"], pending["occurred_at"]
            )
        self._fallback_sent |= batch_reads.fallback_sent_among(self.session, ids)
        for enrollment_id, last in batch_reads.last_attempt_numbers(self.session, ids).items():
            self._last_no[enrollment_id] = max(self._last_no.get(enrollment_id, 0), last)

    def _record_call_facts(self, attempt: CallAttempt, enrollment: Enrollment) -> None:
        if attempt.outcome != Outcome.ANSWERED:
            return
        at = attempt.finished_at or self.now
        facts = self._facts_of(enrollment.id)
        base = {
            "enrollment_id": enrollment.id,
            "customer_id": enrollment.customer_id,
            "campaign_id": enrollment.campaign_id,
            "channel": Channel.CALL,
            "source_id": attempt.id,
            "occurred_at": at,
        }
        kinds: list[tuple[str, dict[str, object]]] = [(ContactEventKind.ANSWERED_CALL, {})]
        if attempt.customer_sentiment:
            data: dict[str, object] = {
                "label": attempt.customer_sentiment,
                "score": attempt.agent_goal_score,
            }
            kinds.append((ContactEventKind.AI_EVALUATION, data))
        for kind, data in kinds:
            facts.add(kind, data, at)
            self._writes.contact_events.append(base | {"kind": kind, "data": data})

    def _late_signals(
        self, attempt: CallAttempt, record: CallRecord, signals: frozenset[StopSignal]
    ) -> bool:
        """A finished call's extraction says "never again": close what is still open."""
        if not is_terminal(AttemptStatus(attempt.status)) or record.extraction is None:
            return False
        attempt.extraction = dict(record.extraction)
        signals = signals & self._retries_of(self._campaign_of(attempt)).stop_outcomes
        enrollment = self._enrollment_of(attempt)
        if StopSignal.OPT_OUT in signals:
            self._writes.opt_outs.add(enrollment.customer_id)
            return True
        if StopSignal.WRONG_NUMBER in signals and enrollment.state == EnrollmentState.ACTIVE:
            step = NextStep(EnrollmentState.FAILED, None, None, WRONG_NUMBER_REASON)
            self._apply_next_step(enrollment, self._campaign_of(attempt), step)
        return True

    def _apply_next_step(self, enrollment: Enrollment, campaign: Campaign, step: NextStep) -> None:
        if step.close_as in _CANCELS_OPEN_WORK:
            self._writes.cancel_for.append(enrollment.id)
            self._writes.cancel_reasons[enrollment.id] = step.reason
        if step.send_fallback is not None:
            self._queue_fallback(enrollment, campaign, step.send_fallback)
        if step.close_as is not None:
            enrollment.state = step.close_as
            enrollment.closed_at = self.now
            enrollment.close_reason = step.reason
            self._writes.webhook_events.extend(
                webhooks.contact_events(campaign.account_id, enrollment, self.now)
            )
        elif step.next_call_at is not None:
            self._schedule_call(enrollment, step.next_call_at)

    def _schedule_call(self, enrollment: Enrollment, at: datetime) -> None:
        self._facts_of(enrollment.id)  # makes sure the last attempt numbers were read
        attempt_no = self._last_no.get(enrollment.id, 0) + 1
        self._last_no[enrollment.id] = attempt_no
        self._writes.attempts.append(
            {
                "id": uuid.uuid4(),
                "enrollment_id": enrollment.id,
                "campaign_id": enrollment.campaign_id,
                "customer_id": enrollment.customer_id,
                "attempt_no": attempt_no,
                "idempotency_key": idempotency_key(enrollment.id, attempt_no),
                "scheduled_at": at,
            }
        )

    def _queue_fallback(
        self, enrollment: Enrollment, campaign: Campaign, channel: FallbackChannel
    ) -> None:
        self._fallback_sent.add(enrollment.id)
        self._writes.messages.append(
            {
                "id": uuid.uuid4(),
                "customer_id": enrollment.customer_id,
                "enrollment_id": enrollment.id,
                "campaign_id": enrollment.campaign_id,
                "channel_id": campaign.fallback_channel_id,
                "channel": channel,
                "direction": Direction.OUTBOUND,
                "purpose": MessagePurpose.FALLBACK,
                "status": MessageStatus.PENDING,
                "body": campaign.fallback_first_message,
                "idempotency_key": f"msg:{enrollment.id}:fallback",
                "scheduled_at": self.now,
            }
        )

    def _insert_messages(self, rows: list[dict[str, Any]]) -> None:
        phones = batch_reads.phones_of(self.session, {row["enrollment_id"] for row in rows})
        for row in rows:
            row["to_address"] = phones.get(row["enrollment_id"])
        _insert_all(self.session, Message, rows)


# Closing as these cancels the enrollment's pending calls and unsent messages.
_CANCELS_OPEN_WORK = frozenset(
    {EnrollmentState.GOAL_MET, EnrollmentState.FAILED, EnrollmentState.OPTED_OUT}
)


def _insert_all(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """New rows, one statement (models.sql.insert_rows); a row that exists already is kept."""
    insert_rows(session, cast(Table, model.__table__), rows)


def copy_record(attempt: CallAttempt, record: CallRecord) -> None:
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


def _closing_only(step: NextStep) -> NextStep:
    """The campaign was completed while this call was on the line: record the verdict
    (goal_met, unresolved...), plan nothing. Left active, the enrollment would hold a
    resumed campaign open forever; not_answered is what resume can select."""
    if step.close_as is not None:
        return replace(step, send_fallback=None)
    return NextStep(EnrollmentState.NOT_ANSWERED, None, None, "campaign completed")


def _count_call(enrollment: Enrollment, outcome: Outcome, now: datetime) -> int:
    """Count the call; returns this round's calls with its outcome, this one included."""
    enrollment.calls_made += 1
    if outcome is not Outcome.ANSWERED:
        enrollment.unanswered_calls += 1
    else:
        enrollment.last_contact_at = now
    counts = dict(enrollment.outcome_calls or {})
    made = int(counts.get(outcome.value, 0)) + 1
    counts[outcome.value] = made
    enrollment.outcome_calls = counts  # a new dict: JSONB changes are seen by assignment
    return made


def _retry_plan(campaign: Campaign, retries: OutcomeRetries) -> RetryPlan:
    return retry_plan_of(campaign, retries)
