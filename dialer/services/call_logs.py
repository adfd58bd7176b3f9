"""One agent's call log (seed 001 ``GET /api/v1/console/agents/{agentId}/calls``).

The log lists the call attempts of every campaign that uses the agent, shaped as
telephony records. Decisions where the seed is silent:

- ``agentId`` is our agent's id. A malformed id, an unknown one and another
  account's agent are all "Agent not found" (existence is never disclosed).
- ``id`` is the attempt's id (the provider's call id, ``conv_id``, does not exist
  before dispatch); ``source`` is the caller ID used (``external_from``, null
  before dispatch); ``destination`` is the number dialed, else the customer's phone.
- ``status`` is the call's telephony status (seed 004 words) once the provider has
  reported one that still describes the call; before that, and when our side ended
  the attempt, the attempt's own status (pending, queued, dispatching, ...).
- ``is_test_call`` is always false: every attempt is a campaign call to a real
  customer, and there is no test-call column. ``is_test_call=true`` therefore
  lists nothing, and ``false`` lists everything.
- ``error_reason`` is the attempt's last error; ``end_reason`` the provider's hangup
  reason.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    String,
    UnaryExpression,
    and_,
    case,
    cast,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from dialer.errors import NotFound, ValidationFailed
from dialer.policies.vocabulary import AttemptStatus, Direction, ProviderCallStatus
from dialer.services.calls_query import MAX_OFFSET, escape_like, search_term
from models import Agent, CallAttempt, Campaign, Customer

DEFAULT_LOG_LIMIT: Final = 10
MAX_LOG_LIMIT: Final = 100
DIRECTION: Final = Direction.OUTBOUND
AGENT_NOT_FOUND: Final = "Agent not found"

_FINAL_PROVIDER_STATUSES: Final = (
    ProviderCallStatus.COMPLETED,
    ProviderCallStatus.NO_ANSWER,
    ProviderCallStatus.BUSY,
    ProviderCallStatus.CANCELED,
    ProviderCallStatus.FAILED,
)
# A live provider status ("ringing") only describes a call still in progress on our
# side; a call we failed or canceled meanwhile shows our word for it.
LOG_STATUS: Final = case(
    (CallAttempt.provider_status.in_(_FINAL_PROVIDER_STATUSES), CallAttempt.provider_status),
    (
        and_(
            CallAttempt.status == AttemptStatus.IN_PROGRESS,
            CallAttempt.provider_status.is_not(None),
        ),
        CallAttempt.provider_status,
    ),
    else_=CallAttempt.status,
)
LOG_STATUSES: Final = tuple(
    dict.fromkeys([*(s.value for s in AttemptStatus), *(s.value for s in ProviderCallStatus)])
)
DESTINATION: Final = func.coalesce(CallAttempt.external_to, Customer.phone)

# The seed's example sorts by "-created_at"; its records call that field created_on.
LOG_SORT_COLUMNS: Final[dict[str, SQLColumnExpression[Any]]] = {
    "created_on": CallAttempt.created_at,
    "created_at": CallAttempt.created_at,
    "duration_seconds": CallAttempt.duration_seconds,
    "status": LOG_STATUS,
    "ringing_at": CallAttempt.ringing_at,
    "ended_at": CallAttempt.ended_at,
}
DEFAULT_LOG_SORT: Final = "-created_on"


@dataclass(frozen=True)
class LogSort:
    field: str
    descending: bool


@dataclass(frozen=True)
class CallLogQuery:
    page: int = 1  # 1-based
    limit: int = DEFAULT_LOG_LIMIT
    search: str | None = None
    sort: LogSort = LogSort("created_on", descending=True)
    is_test_call: bool | None = None
    status: str | None = None


@dataclass(frozen=True)
class CallLogEntry:
    """seed 001's call record."""

    id: str
    source: str | None
    destination: str | None
    status: str
    direction: str
    created_on: datetime
    duration_seconds: float | None
    is_test_call: bool
    error_reason: str | None
    end_reason: str | None
    ringing_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class CallLogPage:
    entries: list[CallLogEntry]
    total_count: int
    page: int
    limit: int

    @property
    def page_count(self) -> int:
        return math.ceil(self.total_count / self.limit)

    @property
    def has_next_page(self) -> bool:
        return self.page < self.page_count

    @property
    def has_previous_page(self) -> bool:
        return self.page > 1


# --- parameters ---------------------------------------------------------------------------


def build_log_query(
    *,
    page: int = 1,
    limit: int = DEFAULT_LOG_LIMIT,
    search: str | None = None,
    sort: str | None = None,
    is_test_call: bool | None = None,
    status: str | None = None,
) -> CallLogQuery:
    """Check raw parameters; ValidationFailed names the first bad one."""
    if page < 1:
        raise ValidationFailed("page", "must be 1 or more (pages are 1-based)")
    if not 1 <= limit <= MAX_LOG_LIMIT:
        raise ValidationFailed("limit", f"must be between 1 and {MAX_LOG_LIMIT}")
    if (page - 1) * limit > MAX_OFFSET:
        raise ValidationFailed("page", "is past the last page there can be")
    return CallLogQuery(
        page=page,
        limit=limit,
        search=search_term(search, "search"),
        sort=parse_log_sort(sort),
        is_test_call=is_test_call,
        status=parse_log_status(status),
    )


def parse_log_sort(raw: str | None) -> LogSort:
    """``"duration_seconds"`` ascending, ``"-duration_seconds"`` descending."""
    text = (raw or "").strip() or DEFAULT_LOG_SORT
    name = text.removeprefix("-")
    if name not in LOG_SORT_COLUMNS:
        raise ValidationFailed(
            "sort", f"unknown field {name!r}; sortable: {list(LOG_SORT_COLUMNS)}"
        )
    return LogSort(name, descending=text.startswith("-"))


def parse_log_status(raw: str | None) -> str | None:
    word = (raw or "").strip().lower()
    if word and word not in LOG_STATUSES:
        raise ValidationFailed("status", f"unknown status {word!r}; known: {list(LOG_STATUSES)}")
    return word or None


# --- the query ----------------------------------------------------------------------------


def agent_call_log(
    session: Session, account_id: uuid.UUID, agent_ref: str, query: CallLogQuery
) -> CallLogPage:
    """One page of the log of the account's agent ``agent_ref`` (NotFound otherwise)."""
    agent_id = _own_agent(session, account_id, agent_ref)
    conditions = _conditions(account_id, agent_id, query)
    statement = (
        select(CallAttempt, LOG_STATUS, DESTINATION)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(*conditions)
        .order_by(*_order_by(query.sort))
        .limit(query.limit)
        .offset((query.page - 1) * query.limit)
    )
    entries = [_entry(attempt, status, to) for attempt, status, to in session.execute(statement)]
    return CallLogPage(
        entries=entries,
        total_count=_count(session, conditions),
        page=query.page,
        limit=query.limit,
    )


def _own_agent(session: Session, account_id: uuid.UUID, agent_ref: str) -> uuid.UUID:
    try:
        agent_id = uuid.UUID(agent_ref)
    except ValueError:
        raise NotFound(AGENT_NOT_FOUND) from None
    found = session.scalar(
        select(Agent.id).where(Agent.id == agent_id, Agent.account_id == account_id)
    )
    if found is None:
        raise NotFound(AGENT_NOT_FOUND)
    return found


def _conditions(
    account_id: uuid.UUID, agent_id: uuid.UUID, query: CallLogQuery
) -> list[ColumnElement[bool]]:
    """Over ``call_attempts JOIN campaigns JOIN customers``; scoped to the account."""
    conditions: list[ColumnElement[bool]] = [
        Campaign.agent_id == agent_id,
        Customer.account_id == account_id,
    ]
    if query.is_test_call:  # no attempt is a test call (see the module's docstring)
        conditions.append(false())
    if query.status is not None:
        log_status = LOG_STATUS
        conditions.append(log_status == query.status)
    if query.search:
        conditions.append(_matches(query.search))
    return conditions


def _matches(term: str) -> ColumnElement[bool]:
    """Case-insensitive substring over the id, both numbers and the provider's call id."""
    pattern = "%" + escape_like(term) + "%"
    searched = (
        cast(CallAttempt.id, String),
        CallAttempt.external_from,
        DESTINATION,
        CallAttempt.conv_id,
    )
    return or_(*(column.ilike(pattern, escape="\\") for column in searched))


def _order_by(sort: LogSort) -> list[UnaryExpression[Any]]:
    """The chosen column, then the id, so equal values never shuffle between pages."""
    columns = (LOG_SORT_COLUMNS[sort.field], CallAttempt.id)
    if sort.descending:
        return [column.desc().nulls_last() for column in columns]
    return [column.asc().nulls_last() for column in columns]


def _count(session: Session, conditions: list[ColumnElement[bool]]) -> int:
    statement = (
        select(func.count())
        .select_from(CallAttempt)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(*conditions)
    )
    return int(session.scalar(statement) or 0)


def _entry(attempt: CallAttempt, status: str, destination: str | None) -> CallLogEntry:
    duration = attempt.duration_seconds
    return CallLogEntry(
        id=str(attempt.id),
        source=attempt.external_from,
        destination=destination,
        status=status,
        direction=attempt.direction or DIRECTION,
        created_on=attempt.created_at,
        duration_seconds=float(duration) if duration is not None else None,
        is_test_call=False,
        error_reason=attempt.last_error,
        end_reason=attempt.hangup_reason,
        ringing_at=attempt.ringing_at,
        ended_at=attempt.ended_at,
    )
