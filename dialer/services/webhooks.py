"""Outbound event webhooks (issue 17): an account's endpoints, and the events they hear.

``announce`` is called in the transaction of the change an event reports (a campaign
started, a call ended, a customer's goal met...): it writes one delivery row per
enabled endpoint of the account that subscribed to the event, so a rolled-back
change announces nothing and a committed one is never lost (the outbox). The
sender (``dialer.services.webhook_delivery``) POSTs them from there.

Bodies carry ids, statuses and times, never a phone number, name or transcript: an
integrator reads those through the API with its key.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.errors import NotFound, ValidationFailed
from dialer.policies.vocabulary import EnrollmentState, WebhookEventType
from dialer.policies.webhooks import url_problem
from models import CallAttempt, Enrollment, WebhookDelivery, WebhookEndpoint

SECRET_PREFIX: Final = "whsec_"
MAX_ENDPOINTS_PER_ACCOUNT: Final = 20
MANUAL_DISABLE_REASON: Final = "disabled by the account"
# call.completed ids derive from the attempt: announcing the same end twice is one event.
_EVENT_NAMESPACE: Final = uuid.UUID("6f1d5d0e-17a1-4c8e-9d57-0b7f3c2a9e17")


@dataclass(frozen=True)
class WebhookEvent:
    """One event to announce: what happened, to which account, when, with what data."""

    account_id: uuid.UUID
    type: WebhookEventType
    at: datetime
    data: dict[str, Any]
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    def envelope(self) -> dict[str, Any]:
        """The JSON body every endpoint receives (docs/OPERATIONS.md, "Event webhooks")."""
        return {
            "id": str(self.id),
            "type": str(self.type),
            "created_at": self.at.isoformat(),
            "data": self.data,
        }


def event_id_for(kind: WebhookEventType, subject: uuid.UUID) -> uuid.UUID:
    """A stable id for an event that can happen once per subject (a call's end)."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{kind}:{subject}")


def campaign_event(
    account_id: uuid.UUID,
    campaign_id: uuid.UUID,
    kind: WebhookEventType,
    status: str,
    at: datetime,
    reason: str | None = None,
) -> WebhookEvent:
    data: dict[str, Any] = {"campaign_id": str(campaign_id), "status": str(status)}
    if reason is not None:
        data["reason"] = reason
    return WebhookEvent(account_id, kind, at, data)


def call_completed_event(account_id: uuid.UUID, attempt: CallAttempt, at: datetime) -> WebhookEvent:
    """``attempt``: a CallAttempt that just became terminal (its id is the event's)."""
    data = {
        "campaign_id": str(attempt.campaign_id),
        "enrollment_id": str(attempt.enrollment_id),
        "customer_id": str(attempt.customer_id),
        "attempt_id": str(attempt.id),
        "attempt_no": attempt.attempt_no,
        "status": str(attempt.status),
        "outcome": None if attempt.outcome is None else str(attempt.outcome),
        "finished_at": (attempt.finished_at or at).isoformat(),
    }
    kind = WebhookEventType.CALL_COMPLETED
    return WebhookEvent(account_id, kind, at, data, id=event_id_for(kind, attempt.id))


def contact_events(
    account_id: uuid.UUID, enrollment: Enrollment, at: datetime
) -> list[WebhookEvent]:
    """``enrollment`` just closed: contact.closed, and contact.goal_met when it met it."""
    data = {
        "campaign_id": str(enrollment.campaign_id),
        "enrollment_id": str(enrollment.id),
        "customer_id": str(enrollment.customer_id),
        "state": str(enrollment.state),
        "reason": enrollment.close_reason,
        "closed_at": (enrollment.closed_at or at).isoformat(),
    }
    events = [WebhookEvent(account_id, WebhookEventType.CONTACT_CLOSED, at, data)]
    if enrollment.state == EnrollmentState.GOAL_MET:
        goal = {**data, "goal_result": enrollment.goal_result}
        events.insert(0, WebhookEvent(account_id, WebhookEventType.CONTACT_GOAL_MET, at, goal))
    return events


# --------------------------------------------------------------------------- announcing


def announce(session: Session, events: Sequence[WebhookEvent]) -> int:
    """Queue ``events`` for every subscribed, enabled endpoint (one read, one insert).

    Runs in the caller's transaction. Returns how many delivery rows were written; an
    event already queued for an endpoint (same id) is kept, not doubled.
    """
    if not events:
        return 0
    endpoints = _subscribers(session, {event.account_id for event in events})
    rows = [
        {
            "endpoint_id": endpoint.id,
            "event_id": event.id,
            "event_type": str(event.type),
            "payload": event.envelope(),
            "next_attempt_at": event.at,
        }
        for event in events
        for endpoint in endpoints.get(event.account_id, ())
        if str(event.type) in endpoint.events
    ]
    if not rows:
        return 0
    statement = insert(WebhookDelivery).values(rows)
    session.execute(statement.on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"]))
    return len(rows)


def _subscribers(
    session: Session, account_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookEndpoint]]:
    found: dict[uuid.UUID, list[WebhookEndpoint]] = {}
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.account_id.in_(list(account_ids)), WebhookEndpoint.enabled.is_(True)
    )
    for endpoint in session.scalars(query):
        found.setdefault(endpoint.account_id, []).append(endpoint)
    return found


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class NewEndpoint:
    """A created endpoint and its signing secret, which is shown this once."""

    endpoint: WebhookEndpoint
    secret: str


def create_endpoint(
    session: Session,
    account_id: uuid.UUID,
    url: str,
    events: Sequence[str],
    *,
    allow_private: bool,
    description: str | None = None,
) -> NewEndpoint:
    problem = url_problem(url, allow_private=allow_private)
    if problem is not None:
        raise ValidationFailed("url", problem)
    if len(url) > 2048:
        raise ValidationFailed("url", "at most 2048 characters")
    words = _event_words(events)
    count = session.scalar(select(func.count()).where(WebhookEndpoint.account_id == account_id))
    if (count or 0) >= MAX_ENDPOINTS_PER_ACCOUNT:
        raise ValidationFailed("url", f"an account has at most {MAX_ENDPOINTS_PER_ACCOUNT}")
    secret = SECRET_PREFIX + secrets.token_hex(24)
    endpoint = WebhookEndpoint(
        account_id=account_id, url=url, events=words, secret=secret, description=description
    )
    session.add(endpoint)
    session.flush()
    return NewEndpoint(endpoint, secret)


def _event_words(events: Sequence[str]) -> list[str]:
    known = {str(word) for word in WebhookEventType}
    unknown = sorted(set(events) - known)
    if unknown:
        raise ValidationFailed("events", f"unknown event(s) {unknown}; known: {sorted(known)}")
    if not events:
        raise ValidationFailed("events", "subscribe to at least one event")
    return sorted(set(events))


def _of_account(account_id: uuid.UUID) -> Any:
    return (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.account_id == account_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )


def list_endpoints(session: Session, account_id: uuid.UUID) -> list[WebhookEndpoint]:
    return list(session.scalars(_of_account(account_id)))


def get_endpoint(
    session: Session, account_id: uuid.UUID, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.account_id == account_id
    )
    endpoint = session.scalars(query.with_for_update() if lock else query).first()
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def remove_endpoint(session: Session, account_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    """Delete the endpoint and its delivery log (nothing more is sent to it)."""
    result = session.execute(
        delete(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.account_id == account_id
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"webhook endpoint {endpoint_id} not found")


def set_enabled(
    session: Session, account_id: uuid.UUID, endpoint_id: uuid.UUID, enabled: bool, now: datetime
) -> WebhookEndpoint:
    """Enable (its failure count starts again, owed deliveries resume) or disable it."""
    endpoint = get_endpoint(session, account_id, endpoint_id, lock=True)
    if enabled and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_reason = None
        endpoint.disabled_at = None
        endpoint.consecutive_failures = 0
    elif not enabled and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_reason = MANUAL_DISABLE_REASON
        endpoint.disabled_at = now
    session.flush()
    return endpoint


def list_deliveries(
    session: Session,
    account_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    limit: int,
    before: int | None = None,
    status: str | None = None,
) -> list[WebhookDelivery]:
    """The endpoint's delivery log, newest first, keyset-paged by ``before`` (a row id)."""
    get_endpoint(session, account_id, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


def disabled_endpoint_count(session: Session) -> int:
    """The gauge ``dialer_webhook_endpoints_disabled``: endpoints switched off."""
    query = select(func.count()).where(WebhookEndpoint.enabled.is_(False))
    return int(session.scalar(query) or 0)
