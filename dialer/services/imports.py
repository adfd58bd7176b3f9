"""Enrol customers from parsed CSV rows, in batches, all-or-nothing unless asked.

A row whose only fault is its phone number is kept: the customer is stored and
enrolled as failed (reason invalid_number), so the user sees it in the plan and
can fix it and resume the failed segment. A row without a phone is enrolled as
missing_contact. Other bad rows and duplicates are reported with their line.

Memory stays flat in the size of the file (issue 15: a million rows): rows are
taken BATCH_SIZE at a time and written set-based (one SELECT of the batch's known
customers, a COPY of the new ones, one executemany UPDATE of the known ones, a COPY
of the enrollments into a staging table and one INSERT ... SELECT ... ON CONFLICT DO
NOTHING from it; no ORM objects); repeats across the whole file are found in a
temporary table of the keys seen so far (``import_seen``, dropped at commit), and
rejected rows go to a ``ProblemLog`` spool, not a list.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import psycopg
from sqlalchemy import Boolean, String, Table, bindparam, case, func, select, text, tuple_, update
from sqlalchemy.orm import Session

from dialer.customers_csv import DUPLICATE, ParsedRow, ProblemLog, RowProblem
from dialer.errors import DialerError
from dialer.policies.vocabulary import EnrollmentState
from models import Campaign, Customer

BATCH_SIZE: Final = 2000
_SEEN_TABLE: Final = "import_seen"
_STAGED_ENROLLMENTS: Final = "import_enrollments"
# The columns a row's given value replaces (named through the model: column names, not words).
_COPIED: Final = tuple(
    column.key
    for column in (
        Customer.customer_id,
        Customer.name,
        Customer.surname,
        Customer.email,
        Customer.timezone,
    )
)


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
    problems: ProblemLog = field(default_factory=ProblemLog)

    @property
    def rejected(self) -> list[RowProblem]:
        """The first KEPT_PROBLEMS rejected rows, in line order (all: ``problems``)."""
        return self.problems.kept

    @property
    def rejected_count(self) -> int:
        return self.problems.count

    @property
    def errors(self) -> list[RowProblem]:
        return [p for p in self.problems.kept if p.field != DUPLICATE]

    @property
    def duplicates(self) -> list[RowProblem]:
        return [p for p in self.problems.kept if p.field == DUPLICATE]


class ImportRejected(DialerError):
    """The file has bad rows; nothing was imported."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        n = report.rejected_count
        super().__init__(f"{n} bad row(s); nothing was imported (use --partial to import the rest)")


def import_customers(
    session: Session, campaign: Campaign, items: Iterable[ParsedRow | RowProblem], *, partial: bool
) -> ImportReport:
    """Upsert customers and enrol them. Raises ImportRejected (caller rolls back) on bad rows."""
    report = ImportReport()
    _create_seen_table(session)
    for batch in _batches(items, report):
        fresh = _drop_repeats(session, batch, report)
        if fresh:
            _import_batch(session, campaign, fresh, report)
    if report.rejected_count and not partial:
        raise ImportRejected(report)
    return report


def _batches(
    items: Iterable[ParsedRow | RowProblem], report: ImportReport
) -> Iterator[list[ParsedRow]]:
    batch: list[ParsedRow] = []
    for item in items:
        report.rows_read += 1
        if isinstance(item, RowProblem):
            report.problems.add(item)
            continue
        batch.append(item)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def _create_seen_table(session: Session) -> None:
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_SEEN_TABLE} (key text PRIMARY KEY, line int)"
            " ON COMMIT DROP"
        )
    )
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGED_ENROLLMENTS}"
            " (customer_id uuid, state text, close_reason text) ON COMMIT DROP"
        )
    )
    # A second import in the same transaction starts from no keys seen.
    session.execute(text(f"TRUNCATE {_SEEN_TABLE}"))


def _keys(row: ParsedRow) -> list[str]:
    cust = row.customer
    keys = [f"id:{cust.customer_id}"] if cust.customer_id else []
    return keys + ([f"phone:{cust.phone}"] if cust.phone else [])


def _drop_repeats(session: Session, rows: list[ParsedRow], report: ImportReport) -> list[ParsedRow]:
    """The rows whose customer_id, else phone, no earlier line had; the others reported.

    The keys of earlier batches are in the temporary table, this batch's in a dict:
    memory holds one batch, whatever the file's size.
    """
    wanted = sorted({key for row in rows for key in _keys(row)})
    found = session.execute(
        text(f"SELECT key, line FROM {_SEEN_TABLE} WHERE key = ANY(CAST(:keys AS text[]))"),
        {"keys": wanted},
    )
    seen: dict[str, int] = {str(key): int(line) for key, line in found}
    fresh: list[ParsedRow] = []
    added: dict[str, int] = {}
    for row in rows:
        repeat = next((key for key in _keys(row) if key in seen), None)
        if repeat is not None:
            kind, _, value = repeat.partition(":")
            what = "customer_id" if kind == "id" else f"phone {value}"
            reason = f"{what} repeats line {seen[repeat]}"
            raw = row.raw if row.raw is not None else _raw(row)
            report.problems.add(RowProblem(row.line, DUPLICATE, reason, raw))
            continue
        for key in _keys(row):
            seen[key] = added[key] = row.line
        fresh.append(row)
    if added:
        session.execute(
            text(
                f"INSERT INTO {_SEEN_TABLE}"
                " SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:lines AS int[]))"
            ),
            {"keys": list(added), "lines": list(added.values())},
        )
    return fresh


def _raw(row: ParsedRow) -> dict[str, str]:
    """The cells of a row that came without them (a JSON item)."""
    cust = row.customer
    values = {name: getattr(cust, name) for name in (*_COPIED, "phone")}
    return {k: str(v) for k, v in values.items() if v is not None} | {
        k: str(v) for k, v in cust.fields.items()
    }


@dataclass(frozen=True)
class _Stored:
    """What the enrollment of a row needs to know of its customer after the upsert."""

    id: uuid.UUID
    phone: str | None
    opted_out: bool


def _import_batch(
    session: Session, campaign: Campaign, rows: list[ParsedRow], report: ImportReport
) -> None:
    stored = _upsert_customers(session, campaign.account_id, rows, report)
    values = [_enrollment_values(campaign.id, row, stored[row.line], report) for row in rows]
    copy_rows(
        session,
        f"COPY {_STAGED_ENROLLMENTS} (customer_id, state, close_reason) FROM STDIN",
        ((v["customer_id"], str(v["state"]), v["close_reason"]) for v in values),
        truncate=_STAGED_ENROLLMENTS,
    )
    inserted = session.execute(
        text(
            "INSERT INTO enrollments (id, campaign_id, customer_id, state, close_reason)"
            f" SELECT gen_random_uuid(), :campaign, customer_id, state, close_reason"
            f" FROM {_STAGED_ENROLLMENTS}"
            " ON CONFLICT (campaign_id, customer_id) DO NOTHING"
        ),
        {"campaign": campaign.id},
    )
    count = _rowcount(inserted)
    report.enrolled += count
    report.already_enrolled += len(values) - count


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def copy_rows(
    session: Session, statement: str, rows: Iterable[Sequence[Any]], *, truncate: str | None = None
) -> None:
    """COPY ``rows`` in the session's transaction (psycopg's COPY FROM STDIN, text format).

    No SQL is compiled per row or per batch: a 2,000-row multi-row INSERT spent more
    time in SQLAlchemy's compiler and psycopg's query splitter than in PostgreSQL.
    """
    session.flush()
    raw = cast(psycopg.Connection[Any], session.connection().connection.driver_connection)
    with raw.cursor() as cursor:
        if truncate is not None:
            cursor.execute(f"TRUNCATE {truncate}")
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


def _enrollment_values(
    campaign_id: uuid.UUID, row: ParsedRow, customer: _Stored, report: ImportReport
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
) -> dict[int, _Stored]:
    """The stored customer of each row line; match on customer_id, else phone."""
    existing = _existing_customers(session, account_id, rows)
    by_line: dict[int, _Stored] = {}
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for row in rows:
        cust = row.customer
        found = existing.get(("id", cust.customer_id)) or existing.get(("phone", cust.phone))
        sets_phone = cust.phone is not None or row.phone_problem is not None
        if found is None:
            values = _new_customer(account_id, row)
            new.append(values)
            by_line[row.line] = _Stored(values["id"], cust.phone, False)
            continue
        changed.append(_changes(found.id, row, sets_phone))
        phone = cust.phone if sets_phone else found.phone
        by_line[row.line] = _Stored(found.id, phone, found.opted_out)
    if new:
        copy_rows(session, _COPY_CUSTOMERS, (_customer_cells(v) for v in new))
    if changed:
        session.connection().execute(_UPDATE_KNOWN, changed)
    report.customers_created += len(new)
    report.customers_updated += len(changed)
    return by_line


def _new_customer(account_id: uuid.UUID, row: ParsedRow) -> dict[str, Any]:
    cust = row.customer
    # Every row the same keys (a multi-row INSERT); the id is made here, so no RETURNING.
    return {
        "id": uuid.uuid4(),
        "account_id": account_id,
        **{name: getattr(cust, name) for name in _COPIED},
        "phone": cust.phone,
        "fields": dict(cust.fields),
    }


_NEW_COLUMNS: Final = ("id", "account_id", *_COPIED, "phone", "fields")
_COPY_CUSTOMERS: Final = f"COPY customers ({', '.join(_NEW_COLUMNS)}) FROM STDIN"


def _customer_cells(values: dict[str, Any]) -> tuple[Any, ...]:
    cells = [values[name] for name in _NEW_COLUMNS]
    cells[-1] = json.dumps(values["fields"])  # jsonb reads its text form
    return tuple(cells)


def _changes(customer_id: uuid.UUID, row: ParsedRow, sets_phone: bool) -> dict[str, Any]:
    cust = row.customer
    return {
        "b_id": customer_id,
        **{f"b_{name}": getattr(cust, name) for name in _COPIED},
        "b_sets_phone": sets_phone,
        "b_phone": cust.phone,
        "b_fields": dict(cust.fields),
    }


_CUSTOMERS: Final = cast(Table, Customer.__table__)


def _keep_unless_given(name: str) -> Any:
    """A value the row gives replaces the stored one; an absent one (None) keeps it."""
    column = _CUSTOMERS.c[name]
    return func.coalesce(bindparam(f"b_{name}", type_=column.type), column)


# One statement, executemany'd over the batch's known customers (same rules as before:
# given values replace, the phone is set when given or invalid, fields are merged).
_UPDATE_KNOWN: Final = (
    update(_CUSTOMERS)
    .where(_CUSTOMERS.c.id == bindparam("b_id"))
    .values(
        {
            **{name: _keep_unless_given(name) for name in _COPIED},
            "phone": case(
                (bindparam("b_sets_phone", type_=Boolean), bindparam("b_phone", type_=String)),
                else_=_CUSTOMERS.c.phone,
            ),
            "fields": func.coalesce(_CUSTOMERS.c.fields, text("'{}'::jsonb")).op("||")(
                bindparam("b_fields", type_=_CUSTOMERS.c.fields.type)
            ),
        }
    )
)


@dataclass(frozen=True)
class _Known:
    id: uuid.UUID
    customer_id: str | None
    phone: str | None
    opted_out: bool


def _existing_customers(
    session: Session, account_id: uuid.UUID, rows: list[ParsedRow]
) -> dict[tuple[str, str | None], _Known]:
    ids = [r.customer.customer_id for r in rows if r.customer.customer_id]
    phones = [r.customer.phone for r in rows if r.customer.phone and not r.customer.customer_id]
    columns = (Customer.id, Customer.customer_id, Customer.phone, Customer.opted_out)
    found: dict[tuple[str, str | None], _Known] = {}
    if ids:
        q = select(*columns).where(Customer.account_id == account_id, Customer.customer_id.in_(ids))
        found |= {("id", c.customer_id): c for c in (_Known(*r) for r in session.execute(q))}
    if phones:
        q = select(*columns).where(
            tuple_(Customer.account_id, Customer.phone).in_([(account_id, p) for p in phones])
        )
        found |= {("phone", c.phone): c for c in (_Known(*r) for r in session.execute(q))}
    return found
