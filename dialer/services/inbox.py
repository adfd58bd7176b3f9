"""The inbox path every provider event takes: parse, store (deduplicated), apply.

Storing and applying are separate transactions: once stored, an event is never
lost; if applying fails it stays `received` and the reaper applies it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.providers.base import ProviderEvent
from dialer.services.dispatch import UnitOfWork
from dialer.services.messages import apply_inbound, apply_message_status
from dialer.services.results import apply_call_record, find_attempt_for_call, store_event
from models import ProviderEvent as InboxRow

Parser = Callable[[Mapping[str, Any]], ProviderEvent]


class Intake(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class IntakeResult:
    intake: Intake
    inbox_id: uuid.UUID | None = None
    error: str | None = None


def take_in(
    session: Session, provider: str, parse: Parser, payload: Mapping[str, Any]
) -> IntakeResult:
    """Store one raw event. A malformed one is kept as `rejected` for inspection."""
    try:
        event = parse(payload)
    except ValueError as exc:
        _keep_rejected(session, provider, payload, str(exc))
        return IntakeResult(Intake.REJECTED, error=str(exc))
    inbox_id = store_event(session, event, dict(payload))
    return IntakeResult(Intake.STORED, inbox_id) if inbox_id else IntakeResult(Intake.DUPLICATE)


def _keep_rejected(session: Session, provider: str, payload: Mapping[str, Any], error: str) -> None:
    raw_id = str(payload.get("event_id") or uuid.uuid4())
    session.execute(
        insert(InboxRow)
        .values(
            provider=provider,
            event_id=f"rejected:{raw_id}:{uuid.uuid4()}",
            kind="rejected",
            status="rejected",
            payload=dict(payload),
            error=error,
        )
        .on_conflict_do_nothing()
    )


def apply_stored(session: Session, inbox_id: uuid.UUID, parse: Parser, now: datetime) -> str:
    """Apply one stored event exactly once (the row lock and its status make it so)."""
    row = session.scalars(
        select(InboxRow)
        .where(InboxRow.id == inbox_id, InboxRow.status == "received")
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return "not_pending"
    outcome = _dispatch(session, parse(row.payload), row.attempt_id, now)
    row.status = "applied" if outcome != "ignored" else "ignored"
    row.processed_at = now
    return outcome


def _dispatch(
    session: Session, event: ProviderEvent, attempt_hint: uuid.UUID | None, now: datetime
) -> str:
    if event.call is not None:
        attempt = find_attempt_for_call(session, event.call, attempt_hint)
        if attempt is None:
            return "ignored"
        return "applied" if apply_call_record(session, attempt, event.call, now) else "unchanged"
    if event.message_status is not None:
        return (
            "applied" if apply_message_status(session, event.message_status, now) else "unchanged"
        )
    if event.inbound is not None:
        return apply_inbound(session, event.inbound, now)
    return "ignored"


def ingest(
    uow: UnitOfWork, provider: str, parse: Parser, payload: Mapping[str, Any], now: datetime
) -> str:
    """Store, commit, then apply: the path for the simulator and (later) webhooks."""
    with uow() as session:
        result = take_in(session, provider, parse, payload)
    if result.inbox_id is None:
        return result.intake.value
    with uow() as session:
        return apply_stored(session, result.inbox_id, parse, now)


def unapplied_events(session: Session, older_than_seconds: float, limit: int) -> list[uuid.UUID]:
    """Stored but not applied for a while (received_at is the database's real clock)."""
    cutoff = func.now() - timedelta(seconds=older_than_seconds)
    return list(
        session.scalars(
            select(InboxRow.id)
            .where(InboxRow.status == "received", InboxRow.received_at < cutoff)
            .order_by(InboxRow.received_at)
            .limit(limit)
        )
    )
