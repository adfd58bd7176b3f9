"""One function per beat duty, shared by the Celery tasks and the in-process driver.

Each takes a unit-of-work factory, `now`, and where it needs to hand work on, an
`enqueue` callable: Celery in production, a plain list in tests and benchmarks.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any

from dialer import metrics
from dialer.dependencies import UnitOfWork
from dialer.policies.vocabulary import CampaignStatus
from dialer.policies.window import LegalBound
from dialer.providers.base import MessageProvider, VoiceProvider
from dialer.services.attempts import materialize_first_contacts
from dialer.services.dispatch import (
    DispatchLimits,
    DispatchReport,
    Verdict,
    dispatch_batch,
)
from dialer.services.inbox import Parser, ingest_many, unapplied_events
from dialer.services.lifecycle import finish_if_done, lock_campaign
from dialer.services.message_reconcile import reconcile_message
from dialer.services.messages import (
    claim_due_messages,
    release_claimed_messages,
    send_message,
)
from dialer.services.outbox import CAMPAIGN_RESUMED, CAMPAIGN_STARTED, mark_handled
from dialer.services.reconcile import reconcile_call
from scheduler import outbox, reaper
from scheduler.scan import running_campaign_ids, scan_campaign

Enqueue = Callable[[list[uuid.UUID]], None]
MESSAGE_BATCH = 200


def scan_all(
    uow: UnitOfWork, now: datetime, legal: LegalBound, batch: int, enqueue: Enqueue
) -> Counter[str]:
    started = perf_counter()
    totals: Counter[str] = Counter()
    with uow() as session:
        campaign_ids = running_campaign_ids(session)
    for campaign_id in campaign_ids:
        with uow() as session:  # one transaction per campaign...
            result = scan_campaign(session, campaign_id, now, legal, batch)
        if result.claimed:
            enqueue(result.claimed)  # ...enqueued only after it committed (GUIDE rule 2)
        totals.update(
            campaigns=result.campaigns,
            claimed=len(result.claimed),
            moved=result.moved,
            unreachable=result.unreachable,
        )
    metrics.scan_finished(perf_counter() - started, totals["claimed"])
    return totals


@dataclass
class DispatchBatch:
    verdicts: Counter[str] = field(default_factory=Counter)
    retry: list[uuid.UUID] = field(default_factory=list)
    retry_after_seconds: float = 0.0


def dispatch_many(
    uow: UnitOfWork,
    provider: VoiceProvider,
    ids: list[uuid.UUID],
    clock: Callable[[], datetime],
    limits: DispatchLimits,
) -> DispatchBatch:
    out = DispatchBatch()
    reports = dispatch_batch(uow, provider, ids, clock, limits)
    _record_dispatch_metrics(reports)
    for report in reports:
        out.verdicts[report.verdict.value] += 1
        if report.verdict in (Verdict.RETRY, Verdict.THROTTLED):
            out.retry.append(report.attempt_id)
            out.retry_after_seconds = max(
                out.retry_after_seconds, report.retry_after_seconds or 0.0
            )
    return out


def _record_dispatch_metrics(reports: list[DispatchReport]) -> None:
    placed = Counter(r.campaign_id for r in reports if r.verdict is Verdict.PLACED)
    errors = Counter(r.error for r in reports if r.error is not None)
    tries = sum(placed.values()) + sum(errors.values())
    metrics.dispatch_finished(tries, {str(c): n for c, n in placed.items()}, errors)


def pump_events(
    uow: UnitOfWork,
    provider_name: str,
    parse: Parser,
    payloads: list[dict[str, object]],
    now: datetime,
) -> Counter[str]:
    """Provider events (simulator pops, webhook batches) through the inbox path, in bulk."""
    return ingest_many(uow, provider_name, parse, payloads, now)


def send_due(uow: UnitOfWork, provider: MessageProvider, now: datetime) -> Counter[str]:
    with uow() as session:
        ids = claim_due_messages(session, now, MESSAGE_BATCH)
    return Counter(send_message(uow, provider, message_id, now) for message_id in ids)


def materialize(
    uow: UnitOfWork,
    topic: str,
    campaign_id: uuid.UUID,
    now: datetime,
    event: dict[str, Any] | None = None,
) -> int:
    """Handler of campaign.started / campaign.resumed: create first contacts (idempotent).

    `event` is the published payload: the handler marks its outbox row handled in the
    same transaction, so the relay publishes it again only if this never committed.
    """
    with uow() as session:
        mark_handled(session, event or {}, now)
        if topic not in (CAMPAIGN_STARTED, CAMPAIGN_RESUMED):
            return 0
        campaign = lock_campaign(session, campaign_id)
        if campaign.status != CampaignStatus.RUNNING:
            return 0
        at = max(now, campaign.scheduled_at) if campaign.scheduled_at else now
        return materialize_first_contacts(session, campaign, at)


def relay_outbox(
    uow: UnitOfWork,
    publish: outbox.Publish,
    now: datetime,
    republish_after: timedelta | None = None,
) -> int:
    """Publish due outbox events after marking them (see scheduler.outbox.claim)."""
    with uow() as session:
        events = outbox.claim(session, now, republish_after)
    for topic, payload in events:
        publish(topic, payload)
    return len(events)


def finish_all(uow: UnitOfWork, now: datetime) -> list[uuid.UUID]:
    finished = []
    with uow() as session:
        ids = running_campaign_ids(session)
    for campaign_id in ids:
        with uow() as session:
            if finish_if_done(session, lock_campaign(session, campaign_id), now):
                finished.append(campaign_id)
    return finished


@dataclass(frozen=True)
class ReapLimits:
    queued: timedelta
    dispatching: timedelta
    max_call: timedelta
    inbox_retry_seconds: float
    # How long a claimed message may stay `queued`; None: as long as a claimed call.
    message_queued: timedelta | None = None
    # How long a sent WhatsApp message may wait for a status; None: no sweep.
    message_status: timedelta | None = None


def reap_all(
    uow: UnitOfWork,
    provider: VoiceProvider,
    now: datetime,
    limits: ReapLimits,
    redispatch: Enqueue,
    reapply: Callable[[uuid.UUID], None],
    messages: MessageProvider | None = None,
) -> Counter[str]:
    with uow() as session:
        queued = reaper.stale_queued(session, now, limits.queued)
        reaper.mark_requeued(session, queued, now)
        dispatching = reaper.stale_dispatching(session, now, limits.dispatching)
        overdue = reaper.overdue_calls(session, now, limits.max_call)
        unapplied = unapplied_events(session, limits.inbox_retry_seconds, reaper.REAP_BATCH)
        stuck_messages = reaper.stale_messages(session, now, limits.message_queued or limits.queued)
        released = release_claimed_messages(session, stuck_messages, now)
        unconfirmed = (
            reaper.unconfirmed_messages(session, now, limits.message_status)
            if messages is not None and limits.message_status is not None
            else []
        )
    if queued or dispatching:
        redispatch(queued + dispatching)
    counts = Counter(reconcile_call(uow, provider, attempt_id, now) for attempt_id, _ in overdue)
    for inbox_id in unapplied:
        reapply(inbox_id)
    if messages is not None:
        counts.update(
            f"message_{reconcile_message(uow, messages, message_id, now)}"
            for message_id in unconfirmed
        )
    counts.update(
        requeued=len(queued),
        redispatched=len(dispatching),
        reapplied=len(unapplied),
        messages_released=released,
    )
    return counts
