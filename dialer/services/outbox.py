"""Campaign events, written in the transaction of the change they announce."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models import OutboxEvent

CAMPAIGN_STARTED = "campaign.started"
CAMPAIGN_RESUMED = "campaign.resumed"
CAMPAIGN_PAUSED = "campaign.paused"
CAMPAIGN_COMPLETED = "campaign.completed"


def record_event(
    session: Session, topic: str, campaign_id: uuid.UUID, at: datetime, **extra: Any
) -> None:
    payload = {"campaign_id": str(campaign_id), "at": at.isoformat(), **extra}
    session.add(OutboxEvent(topic=topic, payload=payload))
