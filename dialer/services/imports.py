"""Enrol customers from parsed CSV rows, in batches, all-or-nothing unless asked.

A row whose only fault is its phone number is kept: the customer is stored and
enrolled as failed (reason invalid_number), so the user sees it in the plan and
can fix it and resume the failed segment. A row without a phone is enrolled as
missing_contact. Other bad rows and duplicates are reported with their line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.customers_csv import DUPLICATE, ParsedRow, RowProblem
from dialer.errors import DialerError
from dialer.policies.vocabulary import EnrollmentState
from models import Campaign, Customer, Enrollment

BATCH_SIZE = 1000


@dataclass
class ImportReport:
    rows_read: int = 0
    customers_created: int = 0
    customers_updated: int = 0
    enrolled: int = 0
    already_enrolled: int = 0
    missing_contact: int = 0
    invalid_phone: int = 0
    opted_out: int = 0
    errors: list[RowProblem] = field(default_factory=list)
    duplicates: list[RowProblem] = field(default_factory=list)

    @property
    def rejected(self) -> list[RowProblem]:
        return sorted(self.errors + self.duplicates, key=lambda p: p.line)


class ImportRejected(DialerError):
    """The file has bad rows; nothing was imported."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        n = len(report.rejected)
        super().__init__(f"{n} bad row(s); nothing was imported (use --partial to import the rest)")


def import_customers(
    session: Session, campaign: Campaign, items: Iterable[ParsedRow | RowProblem], *, partial: bool
) -> ImportReport:
    """Upsert customers and enrol them. Raises ImportRejected (caller rolls back) on bad rows."""
    report = ImportReport()
    batch: list[ParsedRow] = []
    for item in items:
        report.rows_read += 1
        if isinstance(item, RowProblem):
            (report.duplicates if item.field == DUPLICATE else report.errors).append(item)
            continue
        batch.append(item)
        if len(batch) >= BATCH_SIZE:
            _import_batch(session, campaign, batch, report)
            batch = []
    if batch:
        _import_batch(session, campaign, batch, report)
    if report.rejected and not partial:
        raise ImportRejected(report)
    return report


def _import_batch(
    session: Session, campaign: Campaign, rows: list[ParsedRow], report: ImportReport
) -> None:
    customers = _upsert_customers(session, campaign.account_id, rows, report)
    values = [_enrollment_values(campaign.id, row, customers[row.line], report) for row in rows]
    stmt = (
        insert(Enrollment)
        .values(values)
        .on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"])
    )
    inserted = session.execute(stmt.returning(Enrollment.id)).all()
    report.enrolled += len(inserted)
    report.already_enrolled += len(values) - len(inserted)


def _enrollment_values(
    campaign_id: uuid.UUID, row: ParsedRow, customer: Customer, report: ImportReport
) -> dict[str, object]:
    # Every row carries the same keys: a multi-row INSERT takes its columns from the first.
    values: dict[str, object] = {
        "campaign_id": campaign_id,
        "customer_id": customer.id,
        "state": EnrollmentState.ACTIVE,
        "close_reason": None,
    }
    if row.phone_problem is not None:
        report.invalid_phone += 1
        values |= {
            "state": EnrollmentState.FAILED,
            "close_reason": f"invalid_number: {row.phone_problem.reason}",
        }
    elif customer.opted_out:
        report.opted_out += 1
        values |= {"state": EnrollmentState.OPTED_OUT, "close_reason": "customer opted out"}
    elif not customer.phone:
        report.missing_contact += 1
        values |= {"state": EnrollmentState.MISSING_CONTACT, "close_reason": "no phone number"}
    return values


def _upsert_customers(
    session: Session, account_id: uuid.UUID, rows: list[ParsedRow], report: ImportReport
) -> dict[int, Customer]:
    """Return the stored customer for each row line; match on customer_id, else phone."""
    existing = _existing_customers(session, account_id, rows)
    by_line: dict[int, Customer] = {}
    for row in rows:
        cust = row.customer
        found = existing.get(("id", cust.customer_id)) or existing.get(("phone", cust.phone))
        if found is None:
            found = Customer(account_id=account_id)
            session.add(found)
            report.customers_created += 1
        else:
            report.customers_updated += 1
        _copy_fields(found, row)
        by_line[row.line] = found
    session.flush()
    return by_line


def _existing_customers(
    session: Session, account_id: uuid.UUID, rows: list[ParsedRow]
) -> dict[tuple[str, str | None], Customer]:
    ids = [r.customer.customer_id for r in rows if r.customer.customer_id]
    phones = [r.customer.phone for r in rows if r.customer.phone and not r.customer.customer_id]
    found: dict[tuple[str, str | None], Customer] = {}
    if ids:
        q = select(Customer).where(Customer.account_id == account_id, Customer.customer_id.in_(ids))
        found |= {("id", c.customer_id): c for c in session.scalars(q)}
    if phones:
        q = select(Customer).where(
            tuple_(Customer.account_id, Customer.phone).in_([(account_id, p) for p in phones])
        )
        found |= {("phone", c.phone): c for c in session.scalars(q)}
    return found


def _copy_fields(target: Customer, row: ParsedRow) -> None:
    cust = row.customer
    for name in ("customer_id", "name", "surname", "email", "timezone"):
        value = getattr(cust, name)
        if value is not None:
            setattr(target, name, value)
    if cust.phone is not None or row.phone_problem is not None:
        target.phone = cust.phone
    target.fields = {**(target.fields or {}), **cust.fields}
