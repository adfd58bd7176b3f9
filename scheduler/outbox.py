"""Relay outbox rows to the broker (at least once; the handlers are idempotent)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OutboxEvent

RELAY_BATCH = 100
Publish = Callable[[str, dict[str, Any]], None]


def relay(session: Session, publish: Publish, now: datetime) -> int:
    """Publish unpublished events in order and mark them; a crash re-publishes, never drops."""
    events = list(
        session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(RELAY_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    for event in events:
        publish(event.topic, event.payload)
        event.published_at = now
    return len(events)
