"""The webhook inbox (provider events) and the outbox of campaign events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdMixin, Word, one_of
from models.vocabulary import PROVIDER_EVENT_STATUSES, ProviderEventStatus


class ProviderEvent(IdMixin, Base):
    """Every provider event is stored here before it is acted on (the inbox)."""

    __tablename__ = "provider_events"

    provider: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[ProviderEventStatus] = mapped_column(
        Word(ProviderEventStatus), server_default="received"
    )
    payload: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    attempt_id: Mapped[uuid.UUID | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(one_of("status", PROVIDER_EVENT_STATUSES), name="status"),
        UniqueConstraint("provider", "event_id"),
        Index(
            "ix_provider_events_unprocessed",
            "received_at",
            postgresql_where=text("status = 'received'"),
        ),
    )


class OutboxEvent(Base):
    """Campaign events written in the same transaction as the change they announce."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None]
    # Set by the handler: a published event whose handler never ran is published again.
    handled_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
        Index(
            "ix_outbox_unhandled",
            "published_at",
            postgresql_where=text("handled_at IS NULL AND published_at IS NOT NULL"),
        ),
    )
