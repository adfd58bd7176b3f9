"""One function per beat duty, shared by the Celery tasks and the in-process driver.

Each takes a unit-of-work factory, `now`, and where it needs to hand work on, an
`enqueue` callable: Celery in production, a plain list in tests and benchmarks.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any

from sqlalchemy.orm import Session

from dialer import metrics
from dialer.dependencies import UnitOfWork
from dialer.policies.vocabulary import CampaignStatus
from dialer.policies.webhooks import RetryPolicy
from dialer.policies.window import LegalBound
from dialer.providers.base import MessageProvider, VoiceProvider
from dialer.providers.webhook_sender import WebhookSender
from dialer.services import uncertain
from dialer.services.attempts import materialize_first_contacts
from dialer.services.dispatch import (
    DispatchLimits,
    DispatchReport,
    Verdict,
    dispatch_batch,
)
from dialer.services.inbox import Parser, ingest_many, unapplied_events
from dialer.services.lifecycle import (
    finish_if_done,
    finish_marked,
    lock_campaign,
    marked_for_finish,
    running_without_work,
)
from dialer.services.message_reconcile import reconcile_message
from dialer.services.messages import (
    claim_due_messages,
    release_claimed_messages,
    send_message,
)
from dialer.services.outbox import CAMPAIGN_RESUMED, CAMPAIGN_STARTED, mark_handled
from dialer.services.reconcile import reconcile_call
from dialer.services.webhook_delivery import claim_due, postpone_endpoint, record_result
from models import Campaign
from scheduler import outbox, reaper
from scheduler.reaper import queued_count
from scheduler.scan import Partition, ScanLimits, due_campaign_count, scan_chunk

Enqueue = Callable[[list[uuid.UUID]], None]
MESSAGE_BATCH = 200
FINISH_BATCH = 500


@dataclass(frozen=True)
class ScanPlan:
    """How a tick's scan is split and bounded (settings: DIALER_SCAN_*, fairness)."""

    partitions: int = 1
    campaigns_per_chunk: int = 500
    # Fleet-wide most attempts claimed and not yet taken by a dispatch (None: no bound).
    max_queued: int | None = None
    account_concurrency: int | None = None


def scan_all(
    uow: UnitOfWork,
    now: datetime,
    legal: LegalBound,
    batch: int,
    enqueue: Enqueue,
    plan: ScanPlan = ScanPlan(),
) -> Counter[str]:
    """Every partition in turn (one process: the driver, tests, a one-partition beat)."""
    totals: Counter[str] = Counter()
    for index in range(plan.partitions):
        totals.update(
            scan_partition(uow, now, legal, batch, enqueue, Partition(index, plan.partitions), plan)
        )
    return totals


def scan_partition(
    uow: UnitOfWork,
    now: datetime,
    legal: LegalBound,
    batch: int,
    enqueue: Enqueue,
    partition: Partition = Partition(),
    plan: ScanPlan = ScanPlan(),
) -> Counter[str]:
    """The due campaigns of one partition, one transaction per chunk of them.

    With a claim budget each chunk gets its share of it (by its number of campaigns), so
    the campaigns of the last chunk are not always the ones left waiting.
    """
    started = perf_counter()
    budget = _partition_budget(uow, now, plan, partition)
    totals: Counter[str] = Counter()
    after: uuid.UUID | None = None
    while budget is None or budget.left > 0:
        share = None if budget is None else budget.chunk_share(plan.campaigns_per_chunk)
        limits = ScanLimits(batch, plan.campaigns_per_chunk, share, plan.account_concurrency)
        with uow() as session:  # one transaction per chunk of campaigns...
            result = scan_chunk(session, now, legal, limits, partition, after)
        if result.claimed:
            enqueue(result.claimed)  # ...enqueued only after it committed (GUIDE rule 2)
        totals.update(
            campaigns=result.campaigns,
            claimed=len(result.claimed),
            moved=result.moved,
            unreachable=result.unreachable,
        )
        if budget is not None:
            budget.spend(len(result.claimed), result.campaigns)
        if result.campaigns < plan.campaigns_per_chunk:
            break
        after = result.last_campaign
    metrics.scan_finished(perf_counter() - started, totals["claimed"])
    return totals


@dataclass
class _Budget:
    """Claims this partition may still make, spread over its due campaigns chunk by chunk."""

    left: int
    due_campaigns: int

    def chunk_share(self, chunk: int) -> int:
        if self.due_campaigns <= chunk:
            return self.left
        return min(self.left, -(-self.left * chunk // self.due_campaigns))

    def spend(self, claimed: int, campaigns: int) -> None:
        self.left -= claimed
        self.due_campaigns = max(0, self.due_campaigns - campaigns)


def _partition_budget(
    uow: UnitOfWork, now: datetime, plan: ScanPlan, partition: Partition
) -> _Budget | None:
    """This partition's share of the room left under the fleet-wide queued bound."""
    if plan.max_queued is None:
        return None
    with uow() as session:
        room = max(0, plan.max_queued - queued_count(session))
        due = due_campaign_count(session, now, partition)
    return _Budget(left=-(-room // partition.count), due_campaigns=due)


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


@dataclass(frozen=True)
class WebhookPlan:
    """How the webhook duty sends (settings DIALER_WEBHOOK_*)."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    batch: int = 50
    lease: timedelta = timedelta(minutes=10)


def deliver_webhooks(
    uow: UnitOfWork,
    sender: WebhookSender,
    now: datetime,
    plan: WebhookPlan = WebhookPlan(),
    jitter: Callable[[], float] = random.random,
) -> Counter[str]:
    """Send the due webhook deliveries, one transaction to claim and one per outcome.

    An endpoint that fails is not tried again in this tick: its other claimed
    deliveries wait with it until its next try (dialer.services.webhook_delivery).
    """
    with uow() as session:
        jobs = claim_due(session, now, plan.batch, plan.lease)
    counts: Counter[str] = Counter()
    waiting: dict[uuid.UUID, datetime] = {}
    skipped: dict[uuid.UUID, list[int]] = {}
    for job in jobs:
        if job.endpoint_id in waiting:
            skipped.setdefault(job.endpoint_id, []).append(job.delivery_id)
            continue
        result = sender.send(job.url, job.headers(now), job.body)
        with uow() as session:
            recorded = record_result(session, job, result, now, plan.policy, jitter())
        counts[str(recorded.status or "gone")] += 1
        counts["endpoints_disabled"] += recorded.endpoint_disabled
        if recorded.endpoint_waits_until is not None:
            waiting[job.endpoint_id] = recorded.endpoint_waits_until
    for endpoint_id, until in waiting.items():
        with uow() as session:
            postpone_endpoint(session, endpoint_id, until, skipped.get(endpoint_id, []))
    return +counts


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
    """Event-driven finish: only the campaigns marked when their last enrollment closed."""
    with uow() as session:
        ids = marked_for_finish(session, FINISH_BATCH)
    return _finish_each(uow, ids, now, finish_marked)


def finish_sweep(uow: UnitOfWork, now: datetime) -> list[uuid.UUID]:
    """The slow safety sweep: running campaigns with no work left, found in one statement."""
    with uow() as session:
        ids = running_without_work(session, FINISH_BATCH)
    return _finish_each(uow, ids, now, finish_if_done)


def _finish_each(
    uow: UnitOfWork,
    ids: list[uuid.UUID],
    now: datetime,
    finish: Callable[[Session, Campaign, datetime], bool],
) -> list[uuid.UUID]:
    finished = []
    for campaign_id in ids:
        with uow() as session:
            if finish(session, lock_campaign(session, campaign_id), now):
                finished.append(campaign_id)
    return finished


DEFAULT_UNCERTAIN_DEADLINE = timedelta(hours=3)  # Settings.uncertain_placement_deadline_seconds


@dataclass(frozen=True)
class ReapLimits:
    queued: timedelta
    dispatching: timedelta
    max_call: timedelta
    inbox_retry_seconds: float
    # How long a claimed message may stay `queued`; None: as long as a claimed call.
    message_queued: timedelta | None = None
    # How long a placement whose answer was lost is held and looked up before it ends.
    uncertain_deadline: timedelta = DEFAULT_UNCERTAIN_DEADLINE
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
        held = reaper.uncertain_due(session, now)
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
    counts.update(
        uncertain.resolve(uow, provider, attempt_id, now, limits.uncertain_deadline).value
        for attempt_id in held
    )
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
