"""Control API: calls routes.

``GET /calls`` and ``POST /calls/{attempt_id}/start-scheduled`` (seed 000), and an
agent's call log ``GET /api/v1/console/agents/{agentId}/calls`` (seed 001). Each
route checks its parameters, calls one service inside one transaction scoped to the
key's account, and shapes the answer (dialer.api.schemas_calls).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from dialer.api.auth import require
from dialer.api.context import context_of
from dialer.api.schemas_calls import (
    CallAttemptOut,
    CallLogPageOut,
    CallsPageOut,
    attempt_out,
    call_log_page_out,
    calls_page_out,
)
from dialer.logging import get_logger
from dialer.services.api_keys import Principal
from dialer.services.call_logs import (
    DEFAULT_LOG_LIMIT,
    MAX_LOG_LIMIT,
    agent_call_log,
    build_log_query,
)
from dialer.services.calls_query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    build_query,
    campaign_name,
    list_calls,
)
from dialer.services.lifecycle import start_scheduled

router = APIRouter(tags=["calls"])
log = get_logger("dialer.api.calls")

CallsReader = Annotated[Principal, Depends(require("calls:read"))]
CallsWriter = Annotated[Principal, Depends(require("calls:write"))]


@router.get("/calls", summary="List Calls")
def list_calls_route(
    request: Request,
    principal: CallsReader,
    status: Annotated[str | None, Query(description="Attempt statuses, comma-separated.")] = None,
    outcome: Annotated[
        str | None, Query(description="Outcomes, comma-separated; `null` means no outcome yet.")
    ] = None,
    campaign_id: Annotated[
        uuid.UUID | None, Query(description="Only customers enrolled in this campaign.")
    ] = None,
    customer_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    q: Annotated[
        str | None, Query(description="Search name, surname, phone, customer_id, conv_id.")
    ] = None,
    sort_field: Annotated[str | None, Query(description="Default created_at.")] = None,
    sort_dir: Literal["asc", "desc"] = "desc",
    include_aggregations: bool = False,
    date_from: Annotated[
        str | None, Query(description="Recent activity at or after (ISO 8601 date/date-time).")
    ] = None,
    date_to: Annotated[
        str | None, Query(description="Recent activity at or before; a bare date: all that day.")
    ] = None,
) -> CallsPageOut:
    """List call attempts with their customer and enrolled campaigns.

    Enforces ownership via the customer's account. "Recent activity" is the
    attempt's latest timestamp: finished, else dispatched, else queued, else
    scheduled.
    """
    query = build_query(
        status=status,
        outcome=outcome,
        campaign_id=campaign_id,
        customer_id=customer_id,
        q=q,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
        sort_field=sort_field,
        sort_dir=sort_dir,
        include_aggregations=include_aggregations,
    )
    with context_of(request).uow() as session:
        return calls_page_out(list_calls(session, principal.account_id, query), query)


@router.post("/calls/{attempt_id}/start-scheduled", summary="Start Scheduled")
def start_scheduled_route(
    request: Request, attempt_id: uuid.UUID, principal: CallsWriter
) -> CallAttemptOut:
    """Set `scheduled_at` to now for a pending call attempt (409 in any other status)."""
    ctx = context_of(request)
    now = ctx.now()
    with ctx.uow() as session:
        attempt = start_scheduled(session, attempt_id, now, principal.account_id)
        session.flush()  # updated_at is the database's clock: read it after the write
        answer = attempt_out(attempt, campaign_name(session, attempt.campaign_id))
    log.info("call_start_scheduled", attempt_id=str(attempt_id))
    return answer


@router.get("/api/v1/console/agents/{agentId}/calls", summary="List agent calls")
def agent_calls_route(
    request: Request,
    principal: CallsReader,
    agent_id: Annotated[str, Path(alias="agentId")],
    page: Annotated[int, Query(ge=1, description="Page number (1-based).")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LIMIT)] = DEFAULT_LOG_LIMIT,
    search: Annotated[str | None, Query(description="Free-text search filter.")] = None,
    sort: Annotated[
        str | None, Query(description='Field, "-" first for descending (e.g. "-created_on").')
    ] = None,
    is_test_call: Annotated[
        bool | None, Query(description="No call is a test call here: true lists none.")
    ] = None,
    status: Annotated[str | None, Query(description="Filter by call status.")] = None,
) -> CallLogPageOut:
    """Paginated call log of one agent: the attempts of the campaigns that use it."""
    query = build_log_query(
        page=page, limit=limit, search=search, sort=sort, is_test_call=is_test_call, status=status
    )
    with context_of(request).uow() as session:
        return call_log_page_out(agent_call_log(session, principal.account_id, agent_id, query))
