"""Sending the queued webhook deliveries (issue 17): claim, sign, record the outcome.

At least once: a due delivery is claimed with a lease (``next_attempt_at`` moved past
the send) and committed before the POST; the outcome is recorded in a transaction of
its own. A sender killed mid-POST leaves the lease to run out and the event is sent
again with the same ``Dialer-Event-Id``, which receivers deduplicate on.

A failed try is retried with exponential backoff and jitter (dialer.policies.webhooks)
and postpones the endpoint's other owed deliveries to the same time, so an endpoint
that is down backs off as a whole. After ``max_attempts`` a delivery is ``dead``;
after ``disable_after`` consecutive failed tries the endpoint is disabled, with its
reason, until the account enables it again (API or CLI).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dialer import metrics
from dialer.logging import get_logger
from dialer.policies.vocabulary import WebhookDeliveryStatus
from dialer.policies.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    RetryPolicy,
    after_failure,
    should_disable,
    signature_header,
)
from dialer.providers.webhook_sender import SendResult
from dialer.settings import Settings
from models import WebhookDelivery, WebhookEndpoint

log = get_logger("dialer.webhooks")

HISTORY_KEPT: Final = 20
ERROR_CHARS: Final = 200
_OWED = (WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.FAILED)


@dataclass(frozen=True)
class DeliveryJob:
    """A claimed delivery: everything the POST needs, read before the claim committed."""

    delivery_id: int
    endpoint_id: uuid.UUID
    url: str
    secret: str
    event_id: uuid.UUID
    event_type: str
    body: bytes

    def headers(self, now: datetime) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(self.secret, self.body, int(now.timestamp())),
            EVENT_ID_HEADER: str(self.event_id),
            EVENT_TYPE_HEADER: self.event_type,
        }


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): the same for every try of one delivery."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def claim_due(session: Session, now: datetime, limit: int, lease: timedelta) -> list[DeliveryJob]:
    """Lease due deliveries of enabled endpoints, oldest due first (skip locked ones)."""
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status.in_(_OWED),
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    ).all()
    jobs = []
    for delivery, endpoint in rows:
        delivery.next_attempt_at = now + lease
        jobs.append(
            DeliveryJob(
                delivery.id,
                endpoint.id,
                endpoint.url,
                endpoint.secret,
                delivery.event_id,
                delivery.event_type,
                body_of(delivery.payload),
            )
        )
    return jobs


@dataclass(frozen=True)
class Recorded:
    """What a try changed: the delivery's new status, and until when its endpoint waits."""

    status: WebhookDeliveryStatus | None  # None: the row was gone or already final
    endpoint_waits_until: datetime | None = None
    endpoint_disabled: bool = False


def record_result(
    session: Session,
    job: DeliveryJob,
    result: SendResult,
    now: datetime,
    policy: RetryPolicy,
    jitter: float,
) -> Recorded:
    """Write the try's outcome on the delivery and its endpoint (locked, in that order)."""
    delivery = session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
    if delivery is None or delivery.status not in _OWED:
        return Recorded(None)
    endpoint = session.get(WebhookEndpoint, job.endpoint_id, with_for_update=True)
    assert endpoint is not None  # the delivery's foreign key cascades
    _note_try(delivery, result, now)
    if result.ok:
        delivery.status = WebhookDeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        endpoint.consecutive_failures = 0
        metrics.webhook_delivery(WebhookDeliveryStatus.DELIVERED)
        return Recorded(WebhookDeliveryStatus.DELIVERED)
    decision = after_failure(delivery.attempts, now, jitter, policy)
    delivery.status = WebhookDeliveryStatus.DEAD if decision.dead else WebhookDeliveryStatus.FAILED
    delivery.next_attempt_at = decision.next_attempt_at
    metrics.webhook_delivery(delivery.status)
    endpoint.consecutive_failures += 1
    disabled = _disable_if_failing(endpoint, delivery.last_error or "", now, policy)
    waits = decision.next_attempt_at or now + timedelta(seconds=policy.base_seconds)
    return Recorded(delivery.status, waits, disabled)


def _note_try(delivery: WebhookDelivery, result: SendResult, now: datetime) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = result.status_code
    delivery.last_error = None if result.error is None else result.error[:ERROR_CHARS]
    entry = {"at": now.isoformat(), "status_code": result.status_code, "error": delivery.last_error}
    delivery.history = [*delivery.history, entry][-HISTORY_KEPT:]


def _disable_if_failing(
    endpoint: WebhookEndpoint, last_error: str, now: datetime, policy: RetryPolicy
) -> bool:
    if not endpoint.enabled or not should_disable(endpoint.consecutive_failures, policy):
        return False
    endpoint.enabled = False
    endpoint.disabled_at = now
    reason = f"{endpoint.consecutive_failures} consecutive failed deliveries; last: {last_error}"
    endpoint.disabled_reason = reason[:ERROR_CHARS]
    log.warning(
        "webhook_endpoint_disabled",
        endpoint_id=str(endpoint.id),
        account_id=str(endpoint.account_id),
        failures=endpoint.consecutive_failures,
    )
    return True


def postpone_endpoint(
    session: Session, endpoint_id: uuid.UUID, until: datetime, also: list[int]
) -> None:
    """The endpoint failed: its other owed deliveries wait until its next try.

    ``also``: deliveries of this tick's claim not sent because the endpoint failed
    first (their lease would otherwise hold them past ``until``).
    """
    due_sooner = WebhookDelivery.next_attempt_at < until
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status.in_(_OWED),
            due_sooner | WebhookDelivery.id.in_(also),
        )
        .values(next_attempt_at=until)
    )


def retry_policy_of(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base_seconds=settings.webhook_backoff_base_seconds,
        cap_seconds=settings.webhook_backoff_cap_seconds,
        max_attempts=settings.webhook_max_attempts,
        disable_after=settings.webhook_disable_after_failures,
    )


def lease_for(settings: Settings) -> timedelta:
    """Long enough for a whole tick's sends, one after another, to time out."""
    return timedelta(seconds=settings.webhook_timeout_seconds * (settings.webhook_batch_size + 1))
