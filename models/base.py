"""Declarative base, shared column types and naming conventions.

Naming conventions make constraint names stable, so Alembic migrations and the
models agree (the drift test checks it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import DateTime, Dialect, MetaData, String, TypeDecorator, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
    }


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class TimestampMixin:
    """created_at/updated_at, set by the database so every writer agrees on UTC."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def one_of(column: str, values: tuple[str, ...] | list[str] | frozenset[str]) -> str:
    """A CHECK expression that pins a status column to its vocabulary."""
    quoted = ", ".join(f"'{v}'" for v in sorted(values))
    return f"{column} IN ({quoted})"


W = TypeVar("W", bound=StrEnum)


class Word(TypeDecorator[W]):
    """A vocabulary column: stored as the word's string, read back as the enum member.

    The column stays a VARCHAR with the same strings, so the schema and the wire do
    not change; code compares and assigns enum members. A bound plain string is
    passed through unchanged, so the CHECK constraint (not Python) rejects a bad word.
    """

    impl = String
    cache_ok = True

    def __init__(self, words: type[W], length: int = 16) -> None:
        super().__init__(length)
        self.words = words
        # A dict lookup, not words(value): the enum's __call__ costs several times more,
        # and the result paths read a few of these columns for every row.
        self._members: dict[str, W] = {str(word): word for word in words}

    def process_bind_param(self, value: W | str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> W | None:
        return None if value is None else self._members[value]
