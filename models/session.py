"""Engine and session factory: one engine per process and URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker


@lru_cache(maxsize=8)
def engine_for(url: str, pool_size: int = 5) -> Engine:
    """A pooled engine; pre-ping so a restarted database does not fail the first query.

    Errors never carry a statement's parameters (names, phones, e-mails reach logs).
    """
    # sqlalchemy.create_engine looked up at each call: tracing (dialer.composition.tracing)
    # wraps it there, and an engine made after tracing started is traced.
    return sqlalchemy.create_engine(
        url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True, hide_parameters=True
    )


@lru_cache(maxsize=8)
def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with session_factory(url).begin() as session:
        yield session
