"""A tenant's customers, one at a time (the control API's /customers).

Customers are matched the way imports match them: by ``customer_id``, else by phone.
Creating one that would match an existing customer is a Conflict, so an import
never has two candidates for one row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.errors import Conflict, NotFound
from dialer.schemas import CustomerIn
from models import Customer

_SEARCHED = (Customer.name, Customer.surname, Customer.phone, Customer.customer_id, Customer.email)


@dataclass(frozen=True)
class CustomerPage:
    customers: list[Customer]
    total: int  # of every customer the query matches, not only this page


def create_customer(session: Session, account_id: uuid.UUID, data: CustomerIn) -> Customer:
    if data.customer_id is None and data.phone is not None:
        _refuse_known_phone(session, account_id, data.phone)
    values = data.model_dump() | {"account_id": account_id}
    # ON CONFLICT, not a look-up first: two requests racing for one customer_id both
    # pass a look-up, and the loser would hit the unique index as a 500.
    created = session.scalars(
        insert(Customer)
        .values(values)
        .on_conflict_do_nothing(index_elements=["account_id", "customer_id"])
        .returning(Customer)
    ).first()
    if created is None:
        raise Conflict(f"customer_id: a customer {data.customer_id!r} already exists")
    return created


def find_customer(session: Session, account_id: uuid.UUID, customer_id: uuid.UUID) -> Customer:
    """A customer of this account; another account's is not found (never 'forbidden')."""
    query = select(Customer).where(Customer.id == customer_id, Customer.account_id == account_id)
    customer = session.scalars(query).first()
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


def list_customers(
    session: Session, account_id: uuid.UUID, *, q: str | None, limit: int, offset: int
) -> CustomerPage:
    """Newest first; ``q`` matches part of the name, surname, phone, customer_id or email."""
    where = [Customer.account_id == account_id]
    if q:
        where.append(_matches(q))
    total = session.scalar(select(func.count()).select_from(Customer).where(*where)) or 0
    query = (
        select(Customer)
        .where(*where)
        .order_by(Customer.created_at.desc(), Customer.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return CustomerPage(customers=list(session.scalars(query)), total=total)


def _matches(q: str) -> ColumnElement[bool]:
    pattern = "%" + _escape_like(q.strip()) + "%"
    return or_(*(column.ilike(pattern, escape="\\") for column in _SEARCHED))


def _escape_like(text: str) -> str:
    """The user's % and _ are letters to find, not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _refuse_known_phone(session: Session, account_id: uuid.UUID, phone: str) -> None:
    query = select(Customer.id).where(Customer.account_id == account_id, Customer.phone == phone)
    existing = session.scalars(query).first()
    if existing is not None:
        raise Conflict(f"phone: customer {existing} already has the phone number {phone}")
