"""The account's do-not-contact list: load, add, remove, list, and check set-based.

A suppressed number is never called or messaged, in any campaign of the account, on any
channel. It is checked where work is claimed (the scan) and again, under the attempt's
lock, just before dispatch and before a message is sent; a contact whose number is
listed is closed as ``opted_out`` with the reason ``suppressed``. Adding a number does
not sweep the account's enrollments: the checks find them as their work comes due,
which keeps a million-number import a bulk load and nothing more.

Numbers are stored in E.164, as customers' phones are, so the check is an exact
key lookup. ``load_numbers`` streams a file through PostgreSQL's COPY into a temporary
table and inserts it in batches (``ON CONFLICT DO NOTHING``: the first source kept).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, exists, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.phones import InvalidPhone, normalize_phone
from dialer.policies.retry import OPT_OUT_REASON
from dialer.schemas import SUPPRESSION_SOURCE_PATTERN
from models import CallAttempt, Customer, Enrollment, Suppression
from models.vocabulary import EnrollmentState

SOURCE_PATTERN = re.compile(SUPPRESSION_SOURCE_PATTERN)
SUPPRESSED = "suppressed"  # the close reason and the attempt's last_error
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SEPARATORS = re.compile(r"[\s().\-]")
_NANP_REGIONS = frozenset({"US", "CA"})
LOAD_BATCH = 50_000
_MAX_NUMBER_TEXT = 50
_ANALYZE_AFTER = 10_000


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    phone: str  # E.164
    source: str
    reason: str | None = None
    listed_on: date | None = None


@dataclass
class LoadReport:
    read: int = 0
    added: int = 0
    already_listed: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "read": self.read,
            "added": self.added,
            "already_listed": self.already_listed,
            "rejected": self.rejected,
        }


def to_e164(raw: str, default_region: str | None) -> str:
    """A list's number in E.164; ``InvalidPhone`` naming the reason.

    Fast paths first: DNC files hold millions of numbers, already in E.164 or as ten
    NANP digits, and phonenumbers' full parse costs tens of microseconds each.
    """
    text_ = _SEPARATORS.sub("", raw)
    if _E164.fullmatch(text_):
        return text_
    if default_region in _NANP_REGIONS and text_.isdigit():
        if len(text_) == 10 and text_[0] in "23456789":
            return f"+1{text_}"
        if len(text_) == 11 and text_[0] == "1" and text_[1] in "23456789":
            return f"+{text_}"
    return normalize_phone(raw, default_region)


def add_suppressions(
    session: Session, account_id: uuid.UUID, entries: Sequence[SuppressionEntry]
) -> int:
    """List the numbers; returns how many were new (a listed number keeps its first source)."""
    if not entries:
        return 0
    rows = [
        {
            "account_id": account_id,
            "phone": e.phone,
            "source": e.source,
            "reason": e.reason,
            "listed_on": e.listed_on,
        }
        for e in entries
    ]
    inserted = session.execute(
        insert(Suppression).values(rows).on_conflict_do_nothing().returning(Suppression.phone)
    ).all()
    return len(inserted)


def remove_suppression(session: Session, account_id: uuid.UUID, phone: str) -> bool:
    result = session.execute(
        delete(Suppression).where(Suppression.account_id == account_id, Suppression.phone == phone)
    )
    return bool(getattr(result, "rowcount", 0))


def list_suppressions(
    session: Session,
    account_id: uuid.UUID,
    *,
    limit: int,
    after: str | None = None,
    source: str | None = None,
) -> list[Suppression]:
    """One page in phone order (keyset: ``after`` is the last phone of the previous page)."""
    query = select(Suppression).where(Suppression.account_id == account_id)
    if after is not None:
        query = query.where(Suppression.phone > after)
    if source is not None:
        query = query.where(Suppression.source == source)
    return list(session.scalars(query.order_by(Suppression.phone).limit(limit)))


def get_suppression(session: Session, account_id: uuid.UUID, phone: str) -> Suppression | None:
    return session.get(Suppression, (account_id, phone))


def suppressed_pairs(
    session: Session, pairs: Iterable[tuple[uuid.UUID, str | None]]
) -> set[tuple[uuid.UUID, str]]:
    """Which (account, phone) pairs are listed: one statement, an index lookup per pair."""
    wanted = {(account, phone) for account, phone in pairs if phone}
    if not wanted:
        return set()
    rows = session.execute(
        select(Suppression.account_id, Suppression.phone).where(
            tuple_(Suppression.account_id, Suppression.phone).in_(sorted(wanted, key=str))
        )
    ).all()
    return {(row[0], row[1]) for row in rows}


def suppressed_phones_of_campaign(session: Session, campaign_id: uuid.UUID) -> set[str]:
    """The listed numbers among a campaign's contacts (one join, for the plan)."""
    rows = session.scalars(
        select(Customer.phone)
        .join(Enrollment, Enrollment.customer_id == Customer.id)
        .join(
            Suppression,
            (Suppression.account_id == Customer.account_id) & (Suppression.phone == Customer.phone),
        )
        .where(Enrollment.campaign_id == campaign_id)
    )
    return {phone for phone in rows if phone}


def customer_is_suppressed() -> Any:
    """SQL: whether the row's customer's number is on its account's list (for the scan)."""
    return exists().where(
        Suppression.account_id == Customer.account_id, Suppression.phone == Customer.phone
    )


def close_suppressed_enrollments(
    session: Session, attempt_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Close the still-active enrollments of these (canceled) attempts as suppressed."""
    enrollments = select(CallAttempt.enrollment_id).where(CallAttempt.id.in_(attempt_ids))
    session.execute(
        update(Enrollment)
        .where(Enrollment.id.in_(enrollments), Enrollment.state == EnrollmentState.ACTIVE)
        .values(state=EnrollmentState.OPTED_OUT, closed_at=now, close_reason=SUPPRESSED)
    )


def suppress_customer(
    session: Session, customer: Customer, source: str, now: datetime, reason: str | None = None
) -> None:
    """Put a customer's number on its account's list (an opt-out the dialer learnt itself)."""
    if not customer.phone:
        return
    session.execute(
        insert(Suppression)
        .values(
            account_id=customer.account_id,
            phone=customer.phone,
            source=source,
            reason=reason,
            listed_on=now.date(),
        )
        .on_conflict_do_nothing()
    )


# Closed enrollments an opt-out still closes: a later resume must not select them.
_REOPENABLE = (EnrollmentState.ACTIVE, EnrollmentState.UNRESOLVED, EnrollmentState.NOT_ANSWERED)


def opt_out_customers(
    session: Session, customer_ids: Collection[uuid.UUID], source: str, now: datetime
) -> list[uuid.UUID]:
    """The customers asked not to be contacted: flag them, list their numbers on their
    accounts' lists, close their enrollments in every campaign as ``opted_out``.

    Set-based, for a batch of results. Returns the enrollments it closed (the caller
    cancels their open work).
    """
    if not customer_ids:
        return []
    ids = sorted(customer_ids)
    session.execute(
        update(Customer).where(Customer.id.in_(ids)).values(opted_out=True, opted_out_at=now)
    )
    listed = select(
        Customer.account_id,
        Customer.phone,
        literal(source),
        literal(now.date()),
    ).where(Customer.id.in_(ids), Customer.phone.is_not(None))
    session.execute(
        insert(Suppression)
        .from_select(["account_id", "phone", "source", "listed_on"], listed)
        .on_conflict_do_nothing()
    )
    closed = session.scalars(
        update(Enrollment)
        .where(Enrollment.customer_id.in_(ids), Enrollment.state.in_(_REOPENABLE))
        .values(state=EnrollmentState.OPTED_OUT, closed_at=now, close_reason=OPT_OUT_REASON)
        .returning(Enrollment.id)
    )
    return list(closed)


def load_numbers(
    session: Session,
    account_id: uuid.UUID,
    lines: Iterable[str],
    *,
    source: str,
    listed_on: date | None,
    default_region: str | None,
    reject: Callable[[int, str, str], None],
) -> LoadReport:
    """Stream numbers (one per line, or the first CSV cell) into the list, in batches.

    ``reject(line_no, raw, reason)`` receives each line that is not a number, so the
    caller can keep it where it can be inspected; the load goes on.
    """
    report = LoadReport()
    session.execute(
        text("CREATE TEMP TABLE IF NOT EXISTS suppression_load (phone varchar(50)) ON COMMIT DROP")
    )
    raw_connection: Any = session.connection().connection.driver_connection
    for batch in _batches(_numbers(lines, default_region, report, reject), LOAD_BATCH):
        with (
            raw_connection.cursor() as cursor,
            cursor.copy("COPY suppression_load (phone) FROM STDIN") as copy,
        ):
            for phone in batch:
                copy.write_row((phone,))
        added = session.execute(
            text(
                "INSERT INTO suppressions (account_id, phone, source, listed_on) "
                "SELECT DISTINCT CAST(:account AS uuid), phone, CAST(:source AS varchar), "
                "CAST(:listed_on AS date) FROM suppression_load "
                "ON CONFLICT DO NOTHING"
            ),
            {"account": account_id, "source": source, "listed_on": listed_on},
        )
        new = int(getattr(added, "rowcount", 0) or 0)
        report.added += new
        report.already_listed += len(batch) - new
        session.execute(text("TRUNCATE suppression_load"))
    if report.added >= _ANALYZE_AFTER:
        # A big load changes the table's size by orders of magnitude: without fresh
        # statistics the planner may scan the whole list for the scan's per-row check.
        session.execute(text("ANALYZE suppressions"))
    return report


def _numbers(
    lines: Iterable[str],
    default_region: str | None,
    report: LoadReport,
    reject: Callable[[int, str, str], None],
) -> Iterator[str]:
    for line_no, line in enumerate(lines, start=1):
        raw = line.split(",", 1)[0].strip().strip('"')
        if not raw or (line_no == 1 and not any(ch.isdigit() for ch in raw)):
            continue  # blank lines and a header row
        report.read += 1
        if len(raw) > _MAX_NUMBER_TEXT:
            report.rejected += 1
            reject(line_no, line[:200].rstrip("\r\n"), "longer than any phone number")
            continue
        try:
            yield to_e164(raw, default_region)
        except InvalidPhone as exc:
            report.rejected += 1
            reject(line_no, line.rstrip("\r\n"), str(exc))


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
