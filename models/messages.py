"""WhatsApp and email messages, and the contact events goals are counted from."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdMixin, TimestampMixin, Word, one_of
from models.vocabulary import (
    CONTACT_CHANNELS,
    CONTACT_EVENT_KINDS,
    MESSAGE_CHANNELS,
    MESSAGE_DIRECTIONS,
    MESSAGE_PURPOSES,
    MESSAGE_STATUSES,
    Channel,
    ContactEventKind,
    Direction,
    MessagePurpose,
    MessageStatus,
)


class Message(IdMixin, TimestampMixin, Base):
    __tablename__ = "messages"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    enrollment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE")
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id"))
    channel: Mapped[Channel] = mapped_column(Word(Channel))
    direction: Mapped[Direction] = mapped_column(Word(Direction))
    purpose: Mapped[MessagePurpose] = mapped_column(Word(MessagePurpose))
    status: Mapped[MessageStatus] = mapped_column(Word(MessageStatus), server_default="pending")
    to_address: Mapped[str | None] = mapped_column(String(320))
    body: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    scheduled_at: Mapped[datetime | None]
    queued_at: Mapped[datetime | None]  # claimed by a send task; the reaper's clock
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(one_of("channel", MESSAGE_CHANNELS), name="channel"),
        CheckConstraint(one_of("direction", MESSAGE_DIRECTIONS), name="direction"),
        CheckConstraint(one_of("purpose", MESSAGE_PURPOSES), name="purpose"),
        CheckConstraint(one_of("status", MESSAGE_STATUSES), name="status"),
        # The WhatsApp fallback and the first-contact message go out once per enrollment.
        Index(
            "uq_messages_once_per_enrollment",
            "enrollment_id",
            "channel",
            "purpose",
            unique=True,
            postgresql_where=text("purpose IN ('first_contact', 'fallback')"),
        ),
        Index("ix_messages_pending", "scheduled_at", postgresql_where=text("status = 'pending'")),
        Index("ix_messages_provider_id", "provider_message_id"),
        Index("ix_messages_queued", "queued_at", postgresql_where=text("status = 'queued'")),
        # Sent, no delivery status yet: the reaper's status sweep reads only these.
        Index(
            "ix_messages_unconfirmed",
            "sent_at",
            postgresql_where=text("status = 'sent' AND direction = 'outbound'"),
        ),
        Index(
            "ix_messages_owed",
            "campaign_id",
            postgresql_where=text("status IN ('pending', 'queued') AND direction = 'outbound'"),
        ),
    )


class ContactEvent(IdMixin, Base):
    """A recorded fact about reaching a customer; goals are evaluated from these."""

    __tablename__ = "contact_events"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE")
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    kind: Mapped[ContactEventKind] = mapped_column(Word(ContactEventKind, 32))
    channel: Mapped[Channel] = mapped_column(Word(Channel))
    # The attempt or message the fact came from; unique per kind so a replayed event counts once.
    source_id: Mapped[uuid.UUID]
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))

    __table_args__ = (
        CheckConstraint(one_of("kind", CONTACT_EVENT_KINDS), name="kind"),
        CheckConstraint(one_of("channel", CONTACT_CHANNELS), name="channel"),
        UniqueConstraint("kind", "source_id"),
        Index("ix_contact_events_enrollment", "enrollment_id", "kind"),
    )
