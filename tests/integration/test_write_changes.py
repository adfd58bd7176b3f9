"""models.sql.write_changes: many rows' changes in one UPDATE per kind, nothing written twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from models import Account, Customer
from models.session import engine_for
from models.sql import write_changes


@pytest.fixture
def customers(session: Session) -> list[Customer]:
    account = Account(name="acct")
    session.add(account)
    session.flush()
    rows = [
        Customer(account_id=account.id, customer_id=f"c{i}", name=f"n{i}", fields={"i": i})
        for i in range(4)
    ]
    session.add_all(rows)
    session.commit()
    return rows


@pytest.fixture
def updates(clean_db: str) -> Iterator[list[str]]:
    """The UPDATE statements sent while the test runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append(statement)

    engine = engine_for(clean_db)
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_rows_changing_the_same_columns_share_one_statement(
    session: Session, customers: list[Customer], updates: list[str]
) -> None:
    first, second, third, untouched = customers
    # Read before changing anything: a query after the changes would autoflush them
    # through the ORM, and write_changes would have nothing left to do.
    before = session.scalar(select(Customer.updated_at).where(Customer.id == untouched.id))
    first.name, second.name = "renamed-1", "renamed-2"
    third.opted_out = True
    third.fields = {"i": 2, "note": "json too"}

    write_changes(session, customers)
    assert all("unnest" in statement for statement in updates), updates
    assert len(updates) == 2  # {name} and {opted_out, fields}
    session.flush()
    assert len(updates) == 2  # the flush found nothing left to write
    session.commit()

    stored = {c.customer_id: c for c in session.scalars(select(Customer))}
    assert stored["c0"].name == "renamed-1"
    assert stored["c1"].name == "renamed-2"
    assert stored["c2"].opted_out is True
    assert stored["c2"].fields == {"i": 2, "note": "json too"}
    assert stored["c3"].name == "n3"
    assert stored["c3"].updated_at == before


def test_updated_at_is_set_by_the_database_and_read_back(
    session: Session, customers: list[Customer]
) -> None:
    (first, *_rest) = customers
    loaded_at = first.updated_at
    session.commit()  # a new transaction: the database's now() moves on
    first.name = "later"
    write_changes(session, [first])
    session.commit()
    assert first.updated_at > loaded_at


def test_new_and_unchanged_rows_are_left_to_the_flush(
    session: Session, customers: list[Customer], updates: list[str]
) -> None:
    fresh = Customer(account_id=customers[0].account_id, customer_id="new")
    session.add(fresh)
    write_changes(session, [*customers, fresh])
    assert updates == []
    session.commit()
    assert session.scalar(select(Customer.id).where(Customer.customer_id == "new")) == fresh.id
