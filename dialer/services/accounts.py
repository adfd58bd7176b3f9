"""Accounts (tenants). The CLI works in one account, 'default' unless told otherwise."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import Account

DEFAULT_ACCOUNT = "default"


def get_or_create_account(session: Session, name: str = DEFAULT_ACCOUNT) -> Account:
    """The account with this name, created if missing (safe when two processes race)."""
    session.execute(
        insert(Account).values(name=name).on_conflict_do_nothing(index_elements=["name"])
    )
    return session.execute(select(Account).where(Account.name == name)).scalar_one()
