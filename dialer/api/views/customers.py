"""Customer answers (seed 000 CustomerOut plus the project's fields) and import reports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from dialer.customers_csv import RowProblem
from dialer.services.imports import ImportReport
from models import Customer


class CustomerOut(BaseModel):
    """seed 000 CustomerOut, plus timezone, opt-out and the extra template fields."""

    id: uuid.UUID
    customer_id: str | None
    name: str | None
    surname: str | None
    email: str | None
    phone: str | None
    status: str | None
    agent_id: uuid.UUID | None
    timezone: str | None
    opted_out: bool
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RowProblemOut(BaseModel):
    """A CSV row that was not imported; ``line`` counts the header as line 1."""

    line: int
    field: str
    reason: str


class ImportReportOut(BaseModel):
    """What an enrollment request did (everything it counts is committed)."""

    rows_read: int
    enrolled: int
    already_enrolled: int
    customers_created: int
    customers_updated: int
    missing_contact: int = Field(description="Enrolled without a phone: missing_contact.")
    invalid_phone: int = Field(description="Enrolled as failed (invalid_number): fix, resume.")
    opted_out: int
    rejected: list[RowProblemOut] = Field(
        description="Rows skipped (partial=true only): bad rows and repeated customers "
        "(the first 1000; rejected_count counts them all)."
    )
    rejected_count: int = Field(default=0, description="Every row skipped.")


def customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut.model_validate(customer, from_attributes=True)


def report_out(report: ImportReport) -> ImportReportOut:
    return ImportReportOut(
        rows_read=report.rows_read,
        enrolled=report.enrolled,
        already_enrolled=report.already_enrolled,
        customers_created=report.customers_created,
        customers_updated=report.customers_updated,
        missing_contact=report.missing_contact,
        invalid_phone=report.invalid_phone,
        opted_out=report.opted_out,
        rejected=[problem_out(p) for p in report.rejected],
        rejected_count=report.rejected_count,
    )


def problem_out(problem: RowProblem) -> RowProblemOut:
    return RowProblemOut(line=problem.line, field=problem.field, reason=problem.reason)
