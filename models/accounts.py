"""Tenants and what they own: API keys, agents, caller-ID numbers, message channels."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, CheckConstraint, ForeignKey, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models import vocabulary
from models.base import Base, IdMixin, TimestampMixin, Word, one_of
from models.vocabulary import CHANNEL_KINDS


class Account(IdMixin, TimestampMixin, Base):
    __tablename__ = "accounts"

    name: Mapped[str] = mapped_column(String(255), unique=True)


class ApiKey(IdMixin, TimestampMixin, Base):
    """An API key: only a hash of the secret is stored; the sk_ secret is shown once."""

    __tablename__ = "api_keys"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    revoked_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("prefix LIKE 'sk\\_%'", name="sk_prefix"),)


class Agent(IdMixin, TimestampMixin, Base):
    """An outbound voice agent at the provider (seed 004 agent_id)."""

    __tablename__ = "agents"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    # A name in the provider registry; None: the deployment's DIALER_PROVIDER.
    provider: Mapped[str | None] = mapped_column(String(64))
    provider_agent_id: Mapped[str] = mapped_column(String(255))
    # Where new placements go while the primary refuses (dialer.policies.failover).
    fallback_provider: Mapped[str | None] = mapped_column(String(64))
    fallback_provider_agent_id: Mapped[str | None] = mapped_column(String(255))  # None: the same

    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        CheckConstraint(
            "fallback_provider_agent_id IS NULL OR fallback_provider IS NOT NULL",
            name="fallback_agent_needs_provider",
        ),
    )


class PhoneNumber(IdMixin, TimestampMixin, Base):
    """A caller-ID number attached to an agent (seed 004: from_number must belong to it)."""

    __tablename__ = "phone_numbers"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(20))

    __table_args__ = (UniqueConstraint("account_id", "e164"),)


class Channel(IdMixin, TimestampMixin, Base):
    """A WhatsApp sender or an email sender an account owns."""

    __tablename__ = "channels"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[vocabulary.Channel] = mapped_column(Word(vocabulary.Channel))
    name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))

    __table_args__ = (
        CheckConstraint(one_of("kind", CHANNEL_KINDS), name="kind"),
        UniqueConstraint("account_id", "kind", "name"),
    )
