"""Dashboard: the calls list (seed 000's filters, search, sort, paging) and a call's page.

The list goes through ``build_query`` and ``list_calls``, as ``GET /calls`` does, and
shows the answer ``GET /calls`` would give (dialer.api.schemas_calls): the same
filters, the same refusals naming their parameter, the same account boundary.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from dialer.api.context import context_of
from dialer.api.schemas_calls import attempt_out, calls_page_out
from dialer.api.ui.session import UI_PATH_PREFIX
from dialer.api.ui.web import UiRoute, need, parse_id, render, ui_principal
from dialer.api.views.customers import customer_out
from dialer.errors import ValidationFailed
from dialer.services.api_keys import Principal
from dialer.services.call_history import call_history
from dialer.services.calls_query import (
    MAX_LIMIT,
    SORT_COLUMNS,
    build_query,
    find_call,
    list_calls,
)
from dialer.services.campaign_listing import list_campaigns
from models.vocabulary import ATTEMPT_STATUSES, OUTCOMES

router = APIRouter(prefix=UI_PATH_PREFIX, route_class=UiRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(ui_principal)]
PAGE_SIZE: Final = 25
CAMPAIGN_CHOICES: Final = 100  # the filter's drop-down: the newest campaigns
_FILTERS: Final = ("status", "outcome", "campaign_id", "q", "date_from", "date_to")


@router.get("/calls")
def calls_page(
    request: Request,
    principal: SignedIn,
    status: Annotated[list[str] | None, Query()] = None,
    outcome: Annotated[list[str] | None, Query()] = None,
    campaign_id: str = "",
    q: Annotated[str, Query(max_length=255)] = "",
    sort_field: str = "created_at",
    sort_dir: Literal["asc", "desc"] = "desc",
    date_from: str = "",
    date_to: str = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> Response:
    need(principal, "calls:read")
    given = {
        "status": ",".join(status or []),
        "outcome": ",".join(outcome or []),
        "campaign_id": campaign_id,
        "q": q,
        "date_from": date_from,
        "date_to": date_to,
    }
    query = build_query(
        status=given["status"] or None,
        outcome=given["outcome"] or None,
        campaign_id=_campaign_filter(campaign_id),
        customer_id=None,
        q=q or None,
        date_from=date_from or None,
        date_to=date_to or None,
        limit=limit,
        offset=offset,
        sort_field=sort_field,
        sort_dir=sort_dir,
        include_aggregations=True,
    )
    ctx = context_of(request)
    with ctx.uow() as session:
        answer = calls_page_out(list_calls(session, principal.account_id, query), query)
        campaigns = _campaign_choices(session, principal)
    return render(
        request,
        "calls.html",
        page=answer,
        given=given,
        selected_status=set(status or []),
        selected_outcome=set(outcome or []),
        statuses=ATTEMPT_STATUSES,
        outcomes=(*OUTCOMES, "null"),
        sort_fields=sorted(SORT_COLUMNS),
        sort_field=sort_field,
        sort_dir=sort_dir,
        campaigns=campaigns,
        prev_href=_href(request, offset - limit) if offset > 0 else None,
        next_href=_href(request, offset + limit) if offset + limit < answer.meta.total else None,
    )


def _campaign_filter(raw: str) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed("campaign_id", "must be a campaign id (a UUID)") from None


def _campaign_choices(session: Session, principal: Principal) -> list[tuple[str, str]]:
    if not principal.allows("campaigns:read"):
        return []
    page = list_campaigns(
        session, principal.account_id, status=None, limit=CAMPAIGN_CHOICES, offset=0
    )
    return [(str(item.campaign.id), item.campaign.name) for item in page.campaigns]


def _href(request: Request, offset: int) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
    return f"{UI_PATH_PREFIX}/calls?{urlencode([*kept, ('offset', str(max(0, offset)))])}"


@router.get("/calls/{attempt_id}")
def call_page(request: Request, attempt_id: str, principal: SignedIn) -> Response:
    """One attempt: the API's fields, its history, the analysis, the provider's facts, cost."""
    need(principal, "calls:read")
    target = parse_id(attempt_id, "call attempt")
    ctx = context_of(request)
    with ctx.uow() as session:
        row = find_call(session, principal.account_id, target)
        attempt = row.attempt
        values: dict[str, Any] = {
            "call": attempt_out(attempt, row.campaign),
            "customer": customer_out(row.customer),
            "history": call_history(attempt),
            "cost_millicents": attempt.cost_millicents,
            "provider_facts": [
                ("Provider", attempt.provider),
                ("Provider status", attempt.provider_status),
                ("Billable seconds", attempt.billable_seconds),
                ("Hang-up reason", attempt.hangup_reason),
                ("Provider error code", attempt.provider_error_code),
                ("Extraction status", attempt.extraction_status),
                ("Extraction error", attempt.extraction_error),
                ("Goal score", attempt.agent_goal_score),
            ],
            "extraction": json.dumps(attempt.extraction, indent=2, ensure_ascii=False)
            if attempt.extraction
            else None,
        }
    return render(request, "call.html", **values)
