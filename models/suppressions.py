"""Account-level do-not-contact lists: numbers never called or messaged (issue 16).

One row per account and E.164 number, keyed by both: a national DNC list runs to
millions of rows, so no surrogate id and no per-row index beyond the key. ``source``
names the list a number came from (an imported file's source, or one of the internal
sources in ``models.vocabulary.SuppressionSource``); ``listed_on`` is the list's own
date when it has one.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Suppression(Base):
    __tablename__ = "suppressions"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    phone: Mapped[str] = mapped_column(String(50), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    listed_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
