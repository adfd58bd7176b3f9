"""Campaign events, written in the transaction of the change they announce."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from dialer.policies.vocabulary import WebhookEventType
from models import OutboxEvent

# The outbox topics; those an integrator may also hear are the webhook event words.
CAMPAIGN_STARTED = WebhookEventType.CAMPAIGN_STARTED
CAMPAIGN_RESUMED = "campaign.resumed"
CAMPAIGN_PAUSED = WebhookEventType.CAMPAIGN_PAUSED
CAMPAIGN_COMPLETED = WebhookEventType.CAMPAIGN_COMPLETED


def record_event(
    session: Session, topic: str, campaign_id: uuid.UUID, at: datetime, **extra: Any
) -> None:
    payload = {"campaign_id": str(campaign_id), "at": at.isoformat(), **extra}
    session.add(OutboxEvent(topic=topic, payload=payload))


# The key the relay adds to a published payload: which row to mark handled.
OUTBOX_ID_KEY = "outbox_id"


def mark_handled(session: Session, payload: dict[str, Any], at: datetime) -> None:
    """The event's handler ran (in this transaction): the relay stops publishing it."""
    outbox_id = payload.get(OUTBOX_ID_KEY)
    if outbox_id is None:
        return
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == int(outbox_id), OutboxEvent.handled_at.is_(None))
        .values(handled_at=at)
    )
