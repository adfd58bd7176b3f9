"""A campaign's results, one row per enrolled customer, read as a stream (CSV export).

Rows come from one query read through a server-side cursor in batches, so a campaign
of any size is exported in constant memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import BigInteger, Subquery, cast, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from dialer.policies.evidence import evidence_columns, flat_evidence
from dialer.policies.vocabulary import Channel, Direction, EnrollmentState, MessageStatus
from models import CallAttempt, Customer, Enrollment, Message

EXPORT_BATCH_ROWS: Final = 1000
_SENT_STATUSES: Final = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


@dataclass(frozen=True)
class ResultRow:
    """Where one customer stands in the campaign; the CSV columns, in order."""

    customer: uuid.UUID
    customer_id: str | None
    name: str | None
    surname: str | None
    phone: str | None
    email: str | None
    state: str
    close_reason: str | None
    goal_met: bool
    calls_made: int
    last_outcome: str | None
    last_call_at: datetime | None
    last_call_duration_seconds: Decimal | None
    total_cost_millicents: int
    whatsapp_sent: int
    last_contact_at: datetime | None
    enrolled_at: datetime
    closed_at: datetime | None

    def values(self) -> tuple[Any, ...]:
        return astuple(self)


RESULT_COLUMNS: Final = tuple(f.name for f in fields(ResultRow))


def campaign_results(session: Session, campaign_id: uuid.UUID) -> Iterator[ResultRow]:
    """Every enrollment of the campaign, oldest first, with its latest call and totals."""
    last = _last_calls(campaign_id)
    totals = _call_totals(campaign_id)
    sent = _whatsapp_sent(campaign_id)
    query = (
        select(
            Customer.id.label("customer"),
            Customer.customer_id,
            Customer.name,
            Customer.surname,
            Customer.phone,
            Customer.email,
            Enrollment.state,
            Enrollment.close_reason,
            Enrollment.calls_made,
            last.c.outcome.label("last_outcome"),
            last.c.finished_at.label("last_call_at"),
            last.c.duration_seconds.label("last_call_duration_seconds"),
            cast(func.coalesce(totals.c.cost, 0), BigInteger).label("total_cost_millicents"),
            func.coalesce(sent.c.count, 0).label("whatsapp_sent"),
            Enrollment.last_contact_at,
            Enrollment.created_at.label("enrolled_at"),
            Enrollment.closed_at,
        )
        .join(Customer, Customer.id == Enrollment.customer_id)
        .outerjoin(last, last.c.enrollment_id == Enrollment.id)
        .outerjoin(totals, totals.c.enrollment_id == Enrollment.id)
        .outerjoin(sent, sent.c.enrollment_id == Enrollment.id)
        .where(Enrollment.campaign_id == campaign_id)
        .order_by(Enrollment.created_at, Enrollment.id)
        .execution_options(yield_per=EXPORT_BATCH_ROWS)
    )
    for row in session.execute(query):
        values = dict(row._mapping)
        yield ResultRow(goal_met=values["state"] == EnrollmentState.GOAL_MET, **values)


def _last_calls(campaign_id: uuid.UUID) -> Subquery:
    """Per enrollment, its latest attempt that has an outcome."""
    a = CallAttempt
    return (
        select(a.enrollment_id, a.outcome, a.finished_at, a.duration_seconds)
        .ext(distinct_on(a.enrollment_id))
        .where(a.campaign_id == campaign_id, a.outcome.is_not(None))
        .order_by(a.enrollment_id, a.attempt_no.desc())
        .subquery()
    )


def _call_totals(campaign_id: uuid.UUID) -> Subquery:
    a = CallAttempt
    return (
        select(a.enrollment_id, func.sum(a.cost_millicents).label("cost"))
        .where(a.campaign_id == campaign_id)
        .group_by(a.enrollment_id)
        .subquery()
    )


def _whatsapp_sent(campaign_id: uuid.UUID) -> Subquery:
    m = Message
    return (
        select(m.enrollment_id, func.count().label("count"))
        .where(m.campaign_id == campaign_id, m.channel == Channel.WHATSAPP)
        .where(m.direction == Direction.OUTBOUND, m.status.in_(_SENT_STATUSES))
        .group_by(m.enrollment_id)
        .subquery()
    )


@dataclass(frozen=True)
class EvidenceRow:
    """One dialed call and the record of why it was allowed (``--evidence``, issue 16)."""

    attempt: uuid.UUID
    customer_id: str | None
    phone: str | None
    attempt_no: int
    dispatched_at: datetime | None
    status: str
    outcome: str | None
    evidence: dict[str, Any] | None

    def values(self) -> tuple[Any, ...]:
        cells = flat_evidence(self.evidence)
        head = astuple(self)[:-1]
        return (*head, *(cells[name] for name in evidence_columns()))


EVIDENCE_COLUMNS: Final = (
    *(f.name for f in fields(EvidenceRow) if f.name != "evidence"),
    *(f"evidence_{name}" for name in evidence_columns()),
)


def campaign_evidence(session: Session, campaign_id: uuid.UUID) -> Iterator[EvidenceRow]:
    """Every call the campaign dialed, in dial order, with its evidence (streamed)."""
    a = CallAttempt
    query = (
        select(
            a.id.label("attempt"),
            Customer.customer_id,
            Customer.phone,
            a.attempt_no,
            a.dispatched_at,
            a.status,
            a.outcome,
            a.evidence,
        )
        .join(Customer, Customer.id == a.customer_id)
        .where(a.campaign_id == campaign_id, a.dispatched_at.is_not(None))
        .order_by(a.dispatched_at, a.id)
        .execution_options(yield_per=EXPORT_BATCH_ROWS)
    )
    for row in session.execute(query):
        yield EvidenceRow(**row._mapping)
