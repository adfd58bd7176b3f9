"""Call attempts with their customer and campaigns (seed 000 ``GET /calls``).

The API and ``dialer calls list`` both go through ``build_query`` (raw parameters
in, a checked ``CallsQuery`` out, every refusal naming its parameter) and
``list_calls`` (the SQL).

Ownership is via the customer (seed 000): every query joins the attempt's customer
and keeps the caller's account only, so another account's attempts never reach the
page, the total or the aggregations. A request costs one page query, one count
query (skipped when the page itself shows the total), one query for the campaigns
of the page's customers, and one aggregation query only when asked.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    UnaryExpression,
    exists,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from dialer.errors import NotFound, ValidationFailed
from models import CallAttempt, Campaign, Customer, Enrollment
from models.vocabulary import ATTEMPT_STATUSES, OUTCOMES

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 200
# PostgreSQL's OFFSET is a bigint: past it a request would fail in the database (a 500).
MAX_OFFSET: Final = 2**63 - 1
# The word that selects attempts without an outcome in ``outcome=`` (seed 000: "supports null").
NULL_OUTCOME: Final = "null"

SortDirection = Literal["asc", "desc"]

# "Recent activity" (seed 000's date filter): the latest thing that happened to the
# attempt. Its domain timestamps, not updated_at, which any bookkeeping write moves.
LAST_ACTIVITY_AT: Final = func.coalesce(
    CallAttempt.finished_at,
    CallAttempt.dispatched_at,
    CallAttempt.queued_at,
    CallAttempt.scheduled_at,
)

# An allow-list: a sort parameter never reaches SQL as text.
SORT_COLUMNS: Final[dict[str, SQLColumnExpression[Any]]] = {
    "created_at": CallAttempt.created_at,
    "updated_at": CallAttempt.updated_at,
    "scheduled_at": CallAttempt.scheduled_at,
    "dispatched_at": CallAttempt.dispatched_at,
    "finished_at": CallAttempt.finished_at,
    "last_activity_at": LAST_ACTIVITY_AT,
    "attempt_no": CallAttempt.attempt_no,
    "status": CallAttempt.status,
    "outcome": CallAttempt.outcome,
    "duration_seconds": CallAttempt.duration_seconds,
}
DEFAULT_SORT_FIELD: Final = "created_at"


@dataclass(frozen=True)
class Sort:
    field: str
    direction: SortDirection


@dataclass(frozen=True)
class CallsQuery:
    """What ``GET /calls`` asked for, checked. Empty tuples mean "no filter"."""

    statuses: tuple[str, ...] = ()
    outcomes: tuple[str | None, ...] = ()  # None: outcome IS NULL
    campaign_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    q: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None  # inclusive
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    sort: Sort = Sort(DEFAULT_SORT_FIELD, "desc")
    include_aggregations: bool = False


@dataclass(frozen=True)
class CampaignName:
    """seed 000 CampaignRef."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class CallRow:
    attempt: CallAttempt
    customer: Customer
    campaign: CampaignName  # the campaign this attempt belongs to
    campaigns: list[CampaignName]  # every campaign the customer is enrolled in


@dataclass(frozen=True)
class CallCounts:
    """Attempts of the filtered set per status and per outcome (None: no outcome yet)."""

    by_status: dict[str, int]
    by_outcome: dict[str | None, int]


@dataclass(frozen=True)
class CallsPage:
    rows: list[CallRow]
    total: int
    counts: CallCounts | None


# --- parameters ---------------------------------------------------------------------------


def build_query(
    *,
    status: str | None = None,
    outcome: str | None = None,
    campaign_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    q: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    sort_field: str | None = None,
    sort_dir: str = "desc",
    include_aggregations: bool = False,
) -> CallsQuery:
    """Check raw parameters; ValidationFailed names the first bad one."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit", f"must be between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise ValidationFailed("offset", f"must be between 0 and {MAX_OFFSET}")
    start = parse_instant(date_from, "date_from")
    end = parse_instant(date_to, "date_to", end_of_day=True)
    if start is not None and end is not None and end < start:
        raise ValidationFailed("date_to", "is before date_from")
    return CallsQuery(
        statuses=parse_words(status, "status", ATTEMPT_STATUSES),
        outcomes=parse_outcomes(outcome),
        campaign_id=campaign_id,
        customer_id=customer_id,
        q=search_term(q, "q"),
        date_from=start,
        date_to=end,
        limit=limit,
        offset=offset,
        sort=parse_sort(sort_field, sort_dir),
        include_aggregations=include_aggregations,
    )


def parse_words(raw: str | None, field: str, known: Sequence[str]) -> tuple[str, ...]:
    """``"completed, failed"`` -> ``("completed", "failed")``, in order, without repeats.

    An unknown word is refused by name: a typo must not read as "nothing matches".
    """
    words = _split(raw)
    unknown = [word for word in words if word not in known]
    if unknown:
        raise ValidationFailed(field, f"unknown value(s) {unknown}; known: {list(known)}")
    return words


def parse_outcomes(raw: str | None) -> tuple[str | None, ...]:
    """Like ``parse_words`` over the outcomes, where ``null`` stands for "no outcome"."""
    words = _split(raw)
    known = (*OUTCOMES, NULL_OUTCOME)
    parse_words(",".join(words), "outcome", known)
    return tuple(None if word == NULL_OUTCOME else word for word in words)


def _split(raw: str | None) -> tuple[str, ...]:
    words = (word.strip().lower() for word in (raw or "").split(","))
    return tuple(dict.fromkeys(word for word in words if word))


def search_term(raw: str | None, field: str) -> str | None:
    """The trimmed text to search for, None for none. PostgreSQL text cannot hold NUL."""
    term = (raw or "").strip()
    if "\x00" in term:
        raise ValidationFailed(field, "must not contain NUL characters")
    return term or None


def parse_sort(field: str | None, direction: str) -> Sort:
    name = (field or "").strip() or DEFAULT_SORT_FIELD
    if name not in SORT_COLUMNS:
        raise ValidationFailed(
            "sort_field", f"unknown field {name!r}; sortable: {list(SORT_COLUMNS)}"
        )
    if direction not in ("asc", "desc"):
        raise ValidationFailed("sort_dir", "must be asc or desc")
    return Sort(name, "asc" if direction == "asc" else "desc")


def parse_instant(raw: str | None, field: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 date or date-time; UTC when it names no offset.

    A bare date means the start of that day, or its last microsecond for an upper
    bound, so ``date_to=2026-11-23`` includes the whole of the 23rd.
    """
    text = (raw or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return _parse_datetime(text, field)
    if end_of_day:
        return datetime.combine(day + timedelta(days=1), time(), UTC) - timedelta(microseconds=1)
    return datetime.combine(day, time(), UTC)


def _parse_datetime(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        reason = f"{text!r} is not an ISO 8601 date or date-time (e.g. 2026-11-23T09:00:00Z)"
        raise ValidationFailed(field, reason) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- the queries --------------------------------------------------------------------------


def list_calls(session: Session, account_id: uuid.UUID, query: CallsQuery) -> CallsPage:
    """One page of the account's attempts that match ``query``, with their context."""
    conditions = _conditions(account_id, query)
    page = _page(session, conditions, query)
    total = _total_shown_by(page, query)
    if total is None:
        total = _count(session, conditions)
    campaigns = _campaigns_of(session, account_id, {customer.id for _, customer, _ in page})
    rows = [
        CallRow(attempt, customer, campaign, campaigns.get(customer.id, []))
        for attempt, customer, campaign in page
    ]
    counts = _counts(session, conditions) if query.include_aggregations else None
    return CallsPage(rows=rows, total=total, counts=counts)


def _conditions(account_id: uuid.UUID, query: CallsQuery) -> list[ColumnElement[bool]]:
    """The WHERE clause over ``call_attempts JOIN customers``; the account comes first."""
    conditions: list[ColumnElement[bool]] = [Customer.account_id == account_id]
    if query.statuses:
        conditions.append(CallAttempt.status.in_(query.statuses))
    if query.outcomes:
        conditions.append(_outcome_in(query.outcomes))
    if query.campaign_id is not None:
        conditions.append(_enrolled_in(query.campaign_id))
    if query.customer_id is not None:
        conditions.append(CallAttempt.customer_id == query.customer_id)
    if query.q:
        conditions.append(_matches(account_id, query.q))
    activity_at = LAST_ACTIVITY_AT
    if query.date_from is not None:
        conditions.append(activity_at >= query.date_from)
    if query.date_to is not None:
        conditions.append(activity_at <= query.date_to)
    return conditions


def _outcome_in(outcomes: tuple[str | None, ...]) -> ColumnElement[bool]:
    named = [outcome for outcome in outcomes if outcome is not None]
    either: list[ColumnElement[bool]] = [CallAttempt.outcome.in_(named)] if named else []
    if None in outcomes:  # SQL's IN never matches NULL: it needs its own test
        either.append(CallAttempt.outcome.is_(None))
    return or_(*either)


def _enrolled_in(campaign_id: uuid.UUID) -> ColumnElement[bool]:
    """seed 000: "restrict to customers enrolled in that campaign" (all their attempts)."""
    return exists().where(
        Enrollment.customer_id == CallAttempt.customer_id,
        Enrollment.campaign_id == campaign_id,
    )


def _matches(account_id: uuid.UUID, term: str) -> ColumnElement[bool]:
    """Case-insensitive substring over name, surname, phone, customer_id and conv_id.

    Written as "the attempt is among (the attempts of matching customers) UNION (the
    attempts whose conv_id matches)" rather than one OR over the join: each branch's
    OR is then over one table, which PostgreSQL answers with a BitmapOr of the
    trigram GIN indexes of migration 0012 (models.optional_indexes) instead of
    filtering every joined row. Without the indexes the result is the same.
    """
    pattern = "%" + escape_like(term) + "%"
    customer_columns = (Customer.name, Customer.surname, Customer.phone, Customer.customer_id)
    by_customer = (
        select(CallAttempt.id)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(
            Customer.account_id == account_id,
            or_(*(column.ilike(pattern, escape="\\") for column in customer_columns)),
        )
    )
    # The provider's call id; the outer conditions keep it to the account.
    by_conv_id = select(CallAttempt.id).where(CallAttempt.conv_id.ilike(pattern, escape="\\"))
    return CallAttempt.id.in_(union_all(by_customer, by_conv_id))


def escape_like(term: str) -> str:
    """A user's % or _ is a character to find, not a wildcard."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _page(
    session: Session, conditions: list[ColumnElement[bool]], query: CallsQuery
) -> list[tuple[CallAttempt, Customer, CampaignName]]:
    statement = (
        select(CallAttempt, Customer, Campaign.id, Campaign.name)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(*conditions)
        .order_by(*_order_by(query.sort))
        .limit(query.limit)
        .offset(query.offset)
    )
    return [
        (attempt, customer, CampaignName(campaign_id, name))
        for attempt, customer, campaign_id, name in session.execute(statement)
    ]


def _order_by(sort: Sort) -> list[UnaryExpression[Any]]:
    """The chosen column, then the id, so equal values never shuffle between pages."""
    columns = (SORT_COLUMNS[sort.field], CallAttempt.id)
    if sort.direction == "asc":
        return [column.asc().nulls_last() for column in columns]
    return [column.desc().nulls_last() for column in columns]


def _total_shown_by(page: Sequence[object], query: CallsQuery) -> int | None:
    """A page that is not full and not past the end already tells the total."""
    if 0 < len(page) < query.limit or (not page and query.offset == 0):
        return query.offset + len(page)
    return None


def _count(session: Session, conditions: list[ColumnElement[bool]]) -> int:
    statement = (
        select(func.count())
        .select_from(CallAttempt)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(*conditions)
    )
    return int(session.scalar(statement) or 0)


def _campaigns_of(
    session: Session, account_id: uuid.UUID, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[CampaignName]]:
    """Every campaign each customer is enrolled in, for the whole page in one query."""
    ids = list(customer_ids)
    if not ids:
        return {}
    statement = (
        select(Enrollment.customer_id, Campaign.id, Campaign.name)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(Enrollment.customer_id.in_(ids), Campaign.account_id == account_id)
        .order_by(Campaign.name, Campaign.id)
    )
    found: dict[uuid.UUID, list[CampaignName]] = {}
    for customer_id, campaign_id, name in session.execute(statement):
        found.setdefault(customer_id, []).append(CampaignName(campaign_id, name))
    return found


def _counts(session: Session, conditions: list[ColumnElement[bool]]) -> CallCounts:
    """Both facets from one GROUP BY (status, outcome) over the filtered set.

    Every known status and outcome is present, zeros included, so a client can draw
    its quick filters without knowing the vocabulary.
    """
    statement = (
        select(CallAttempt.status, CallAttempt.outcome, func.count())
        .select_from(CallAttempt)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(*conditions)
        .group_by(CallAttempt.status, CallAttempt.outcome)
    )
    by_status: Counter[str] = Counter(dict.fromkeys(ATTEMPT_STATUSES, 0))
    by_outcome: Counter[str | None] = Counter(dict.fromkeys((*OUTCOMES, None), 0))
    for status, outcome, count in session.execute(statement):
        by_status[status] += count
        by_outcome[outcome] += count
    return CallCounts(by_status=dict(by_status), by_outcome=dict(by_outcome))


def find_call(session: Session, account_id: uuid.UUID, attempt_id: uuid.UUID) -> CallRow:
    """One attempt of the account with its context, as a row of ``list_calls`` (the
    dashboard's call page); another account's is NotFound, as in the list."""
    statement = (
        select(CallAttempt, Customer, Campaign.id, Campaign.name)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(CallAttempt.id == attempt_id, Customer.account_id == account_id)
    )
    found = session.execute(statement).first()
    if found is None:
        raise NotFound(f"call attempt {attempt_id} not found")
    attempt, customer, campaign_id, name = found
    campaigns = _campaigns_of(session, account_id, [customer.id])
    return CallRow(
        attempt, customer, CampaignName(campaign_id, name), campaigns.get(customer.id, [])
    )


def campaign_name(session: Session, campaign_id: uuid.UUID) -> CampaignName:
    """The CampaignRef of one campaign (a single attempt's answer)."""
    name = session.scalar(select(Campaign.name).where(Campaign.id == campaign_id))
    if name is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return CampaignName(campaign_id, name)
