"""Relay outbox rows to the broker (at least once; the handlers are idempotent).

The broker taking an event is not the event being handled: a worker killed while
holding it leaves it unacknowledged in Redis for the whole visibility timeout (and
a Redis without its append-only file forgets it). So the relay publishes again an
event whose handler has not marked it handled within ``republish_after``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from dialer.services.outbox import OUTBOX_ID_KEY
from models import OutboxEvent

RELAY_BATCH = 100
Publish = Callable[[str, dict[str, Any]], None]


def claim(
    session: Session, now: datetime, republish_after: timedelta | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Mark due events published and return them, in order, to publish after the commit.

    Due: never published, or published but unhandled for ``republish_after``. The
    caller publishes once this transaction committed, so a handler in the same process
    can mark its row handled; a crash before the publish is covered by the same rule.
    """
    due: ColumnElement[bool] = OutboxEvent.published_at.is_(None)
    if republish_after is not None:
        late = OutboxEvent.handled_at.is_(None) & (OutboxEvent.published_at < now - republish_after)
        due = or_(due, late)
    events = list(
        session.scalars(
            select(OutboxEvent)
            .where(due)
            .order_by(OutboxEvent.id)
            .limit(RELAY_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    for event in events:
        event.published_at = now
    return [(event.topic, {**event.payload, OUTBOX_ID_KEY: event.id}) for event in events]
