"""Thin tasks: parse ids, call one scheduler duty, enqueue follow-ups. All safe to run twice.

Celery messages other services may send:
- ``dialer.campaign.start`` with args ``["<campaign uuid>"]``: start a campaign
  (draft/paused -> running; a done campaign is refused and logged).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from celery import Task

from dialer.clock import simulated_delta, utcnow
from dialer.composition import worker
from dialer.errors import DialerError
from dialer.logging import get_logger
from dialer.policies.retry import dispatch_backoff_seconds
from dialer.services.inbox import apply_stored
from dialer.services.lifecycle import lock_campaign, start_campaign
from dialer.services.webhook_delivery import lease_for, retry_policy_of
from scheduler import ticks
from scheduler.scan import Partition
from tasks.app import app

log = get_logger("dialer.tasks")
PUMP_BATCH = 500


def enqueue_dispatch(
    ids: Iterable[uuid.UUID], countdown: float | None = None, redelivery: int = 0
) -> None:
    ids = list(ids)
    size = worker().runtime.settings.dispatch_chunk_size
    kwargs = {"redelivery": redelivery} if redelivery else {}
    for start in range(0, len(ids), size):
        chunk = [str(i) for i in ids[start : start + size]]
        dispatch_attempts.apply_async(args=[chunk], kwargs=kwargs, countdown=countdown)


def _now() -> Any:
    return utcnow(worker().runtime.settings)


def _scan_plan() -> ticks.ScanPlan:
    cfg = worker().runtime.settings
    return ticks.ScanPlan(
        partitions=cfg.scan_partitions,
        campaigns_per_chunk=cfg.scan_campaigns_per_transaction,
        max_queued=cfg.max_queued_attempts,
        account_concurrency=cfg.account_concurrency,
    )


@app.task(name="dialer.scan")
def scan_tick() -> dict[str, int]:
    """One partition: scan here; several: one task each, run by whichever worker is free."""
    plan = _scan_plan()
    if plan.partitions == 1:
        return scan_partition(0, 1)
    expires = worker().runtime.settings.scan_interval_seconds
    for index in range(plan.partitions):
        # Expiring: a partition task that waited past the next tick is that tick's work.
        scan_partition_task.apply_async(args=[index, plan.partitions], expires=max(expires, 1.0))
    return {"partitions": plan.partitions}


def scan_partition(index: int, count: int) -> dict[str, int]:
    w = worker()
    totals = ticks.scan_partition(
        w.runtime.session,
        _now(),
        w.limits.legal,
        w.runtime.settings.scan_batch_size,
        enqueue_dispatch,
        Partition(index, count),
        _scan_plan(),
    )
    if totals["claimed"] or totals["moved"]:
        log.info("scan_claimed", partition=index, **totals)
    return dict(totals)


@app.task(name="dialer.scan_partition")
def scan_partition_task(index: int, count: int) -> dict[str, int]:
    return scan_partition(index, count)


@app.task(name="dialer.dispatch", bind=True)
def dispatch_attempts(self: Task, attempt_ids: list[str], redelivery: int = 0) -> dict[str, int]:
    """Dispatch a chunk; what was refused is sent again by a new task, `redelivery` + 1."""
    w = worker()
    batch = ticks.dispatch_many(
        w.runtime.session, w.voice, [uuid.UUID(i) for i in attempt_ids], _now, w.limits
    )
    if batch.retry:
        countdown = dispatch_backoff_seconds(
            max(redelivery, self.request.retries or 0),
            batch.retry_after_seconds,
            w.runtime.settings.visibility_timeout_seconds / 2,  # never past the timeout
        )
        enqueue_dispatch(batch.retry, countdown=countdown, redelivery=redelivery + 1)
    return dict(batch.verdicts)


@app.task(name="dialer.pump_simulated_events")
def pump_simulated_events() -> dict[str, int]:
    """The simulator's stand-in for webhooks: due events enter through the inbox path."""
    w = worker()
    source = w.event_source
    if source is None:
        return {}
    now = _now()
    payloads = source.pop_due_events(now, PUMP_BATCH)
    return dict(
        ticks.pump_events(w.runtime.session, source.name, source.parse_event, payloads, now)
    )


@app.task(name="dialer.apply_event")
def apply_event(inbox_id: str) -> str:
    w = worker()
    with w.runtime.session() as session:
        return apply_stored(session, uuid.UUID(inbox_id), w.parse_event, _now(), w.parser_for)


@app.task(name="dialer.send_messages")
def send_due_messages() -> dict[str, int]:
    w = worker()
    return dict(ticks.send_due(w.runtime.session, w.messages, _now()))


@app.task(name="dialer.deliver_webhooks")
def deliver_webhooks() -> dict[str, int]:
    """POST the due account event webhooks (signed, retried with backoff; issue 17)."""
    w = worker()
    cfg = w.runtime.settings
    plan = ticks.WebhookPlan(
        policy=retry_policy_of(cfg), batch=cfg.webhook_batch_size, lease=lease_for(cfg)
    )
    counts = ticks.deliver_webhooks(w.runtime.session, w.webhook_sender(), _now(), plan)
    if counts:
        log.info("webhooks_sent", **counts)
    return dict(counts)


@app.task(name="dialer.relay_outbox")
def relay_outbox() -> int:
    w = worker()
    cfg = w.runtime.settings
    # A start event held by a killed worker waits in Redis's unacked set for the whole
    # visibility timeout: unhandled after the queued timeout, it is published again.
    republish_after = simulated_delta(cfg.queued_timeout_seconds, cfg)
    return ticks.relay_outbox(w.runtime.session, _publish, _now(), republish_after)


def _publish(topic: str, payload: dict[str, Any]) -> None:
    campaign_event.apply_async(args=[topic, payload])


@app.task(name="dialer.campaign_event")
def campaign_event(topic: str, payload: dict[str, Any]) -> int:
    w = worker()
    campaign_id = uuid.UUID(payload["campaign_id"])
    created = ticks.materialize(w.runtime.session, topic, campaign_id, _now(), payload)
    if created:
        log.info("campaign_materialized", campaign_id=payload["campaign_id"], created=created)
    return created


@app.task(name="dialer.campaign.start")
def start_campaign_message(campaign_id: str) -> str:
    w = worker()
    try:
        with w.runtime.session() as session:
            campaign = lock_campaign(session, uuid.UUID(campaign_id))
            start_campaign(session, campaign, _now())
            return campaign.status
    except DialerError as exc:
        log.warning("campaign_start_refused", campaign_id=campaign_id, reason=str(exc))
        return f"refused: {exc}"


@app.task(name="dialer.finish_campaigns")
def finish_campaigns() -> int:
    """The campaigns whose last enrollment closed (marked where it closed)."""
    w = worker()
    finished = ticks.finish_all(w.runtime.session, _now())
    for campaign_id in finished:
        log.info("campaign_finished", campaign_id=str(campaign_id))
    return len(finished)


@app.task(name="dialer.finish_sweep")
def finish_sweep() -> int:
    """The slow safety sweep: running campaigns with nothing left, whatever their mark."""
    w = worker()
    finished = ticks.finish_sweep(w.runtime.session, _now())
    for campaign_id in finished:
        log.info("campaign_finished_by_sweep", campaign_id=str(campaign_id))
    return len(finished)


@app.task(name="dialer.reap")
def reap() -> dict[str, int]:
    w = worker()
    cfg = w.runtime.settings
    limits = ticks.ReapLimits(
        queued=simulated_delta(cfg.queued_timeout_seconds, cfg),
        dispatching=simulated_delta(cfg.dispatching_timeout_seconds, cfg),
        max_call=simulated_delta(cfg.max_call_seconds, cfg),
        inbox_retry_seconds=cfg.inbox_retry_seconds,
        uncertain_deadline=simulated_delta(cfg.uncertain_placement_deadline_seconds, cfg),
        message_status=simulated_delta(cfg.message_status_timeout_seconds, cfg),
    )
    counts = ticks.reap_all(
        w.runtime.session,
        w.voice,
        _now(),
        limits,
        enqueue_dispatch,
        lambda inbox_id: apply_event.delay(str(inbox_id)),
        messages=w.messages,
    )
    if any(counts.values()):
        log.info("reaped", **counts)
    return dict(counts)
