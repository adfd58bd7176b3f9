"""Outbound event webhooks (issue 17): an account's endpoints and each event's delivery.

A delivery row is written in the transaction of the change it announces (the
outbox), one per subscribed endpoint; ``(endpoint_id, event_id)`` is unique, so an
event announced twice is delivered once, and every retry carries the same id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdMixin, Word, one_of
from models.vocabulary import WEBHOOK_DELIVERY_STATUSES, WebhookDeliveryStatus


class WebhookEndpoint(IdMixin, Base):
    """Where an account wants its events POSTed, signed with ``secret``."""

    __tablename__ = "webhook_endpoints"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    # Kept to sign every delivery (HMAC needs the secret itself); shown once, at creation.
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_webhook_endpoints_account_id", "account_id"),)


class WebhookDelivery(Base):
    """One event for one endpoint: its body, and how its tries went."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[WebhookDeliveryStatus] = mapped_column(
        Word(WebhookDeliveryStatus), server_default="pending"
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    # Our own words (timeout, connection refused, HTTP 500): never the response body.
    last_error: Mapped[str | None] = mapped_column(String(200))
    # The last tries, newest last: [{"at", "status_code", "error"}] (bounded).
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint(one_of("status", WEBHOOK_DELIVERY_STATUSES), name="status"),
        UniqueConstraint("endpoint_id", "event_id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('failed', 'pending')"),
        ),
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
    )
