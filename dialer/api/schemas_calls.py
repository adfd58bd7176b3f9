"""The JSON shapes of the calls routes: seed 000 (``GET /calls``, start-scheduled) and
seed 001 (an agent's call log), with the functions that fill them from the services.

``dialer calls list --json`` prints the same shapes, so the CLI and the API never
drift apart. A row's customer is the customers routes' CustomerOut (seed 000's
fields plus the project's), so the OpenAPI document holds one CustomerOut.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from dialer.api.views.customers import CustomerOut, customer_out
from dialer.services.call_logs import CallLogPage
from dialer.services.calls_query import NULL_OUTCOME, CallCounts, CallsPage, CallsQuery
from dialer.services.calls_query import CampaignName as CampaignNameValue
from models import CallAttempt

ItemT = TypeVar("ItemT", bound=BaseModel)

# --- seed 000 -----------------------------------------------------------------------------


class CampaignRef(BaseModel):
    id: uuid.UUID
    name: str


class EvidenceJurisdictionOut(BaseModel):
    country: str | None = None
    subdivision: str | None = None
    source: str


class EvidenceWindowOut(BaseModel):
    start: str = Field(description="Local opening time the call was held to (HH:MM).")
    end: str = Field(description="Local closing time the call was held to (HH:MM).")
    weekdays: list[int] = Field(description="Allowed weekdays, 0 = Monday.")
    campaign_hours: str
    legal_bound: str = Field(description="The legal bound after the rule packs (HH:MM-HH:MM).")


class CallEvidenceOut(BaseModel):
    """Why a dialed call was allowed, recorded under lock at dispatch (issue 16)."""

    version: int
    checked_at: str
    zones: list[str]
    zone_source: str = Field(description="explicit, location, phone or campaign.")
    local_times: dict[str, str] = Field(description="The local time in each zone at the check.")
    jurisdiction: EvidenceJurisdictionOut
    rule_packs: list[str] = Field(description="The rule packs applied, as id@version.")
    strictest_reading: bool = Field(
        description="True when the state was unknown and every pack of the country applied."
    )
    window: EvidenceWindowOut
    window_closes_at: str | None = None
    margin_seconds: int
    frequency_caps: list[str] = Field(description="Caps as calls/hours, e.g. 3/24h.")
    calls_in_cap_period: int
    suppression_checked_at: str


class CallAttemptOut(BaseModel):
    id: uuid.UUID
    attempt_no: int
    status: str
    outcome: str | None = None
    conv_id: str | None = None
    n8n_exec_id: str | None = None
    direction: str | None = None
    external_from: str | None = None
    external_to: str | None = None
    duration_seconds: float | None = None
    messages_count: int = 0
    call_successful: str | None = None
    call_summary_title: str | None = None
    transcript_summary: str | None = None
    agent_goal_result: str | None = None
    agent_goal_rationale: str | None = None
    customer_sentiment: str | None = None
    customer_sentiment_rationale: str | None = None
    follow_up_required: bool | None = None
    follow_up_required_rationale: str | None = None
    escalation_required: bool | None = None
    escalation_required_rationale: str | None = None
    voicemail_action: Literal["hang_up", "leave_message"] | None = Field(
        default=None,
        description="Extension to seed 000 (issue 16): the campaign's voicemail policy "
        "sent with the call; null: the agent's own setting applied.",
    )
    evidence: CallEvidenceOut | None = Field(
        default=None,
        description="Extension to seed 000 (issue 16): why the call was allowed when it "
        "was dialed; null for attempts not dialed.",
    )
    campaign: CampaignRef | None = None
    scheduled_at: datetime
    dispatched_at: datetime | None = None
    finished_at: datetime | None = None
    delivery_attempts: int
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime


class CallWithContextOut(BaseModel):
    attempt: CallAttemptOut
    customer: CustomerOut
    campaigns: list[CampaignRef]


class SortOut(BaseModel):
    field: str
    direction: Literal["asc", "desc"]


class CallsMetaOut(BaseModel):
    """seed 000 MetaOut (named apart from seed 003's MetaOut of the other lists)."""

    total: int
    limit: int
    offset: int
    sort: SortOut | None = None


class QueryOut(BaseModel):
    q: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    date_from: datetime | None = None
    date_to: datetime | None = None
    sort: SortOut | None = None


class AggregationsOut(BaseModel):
    """``quick_filters``: attempts per ``status=<word>`` and ``outcome=<word>`` (``null``
    for no outcome yet), each key the filter a client sends to narrow to it; ``extra``:
    the same counts grouped, plus the total."""

    quick_filters: dict[str, int] | None = None
    extra: dict[str, Any] | None = None


class PaginatedResponse(BaseModel, Generic[ItemT]):
    """seed 000's list envelope; ``aggregations`` is null unless asked for."""

    data: list[ItemT]
    meta: CallsMetaOut
    query: QueryOut
    aggregations: AggregationsOut | None = None


# Documented under the seed's own name, PaginatedResponse_CallWithContextOut_.
CallsPageOut = PaginatedResponse[CallWithContextOut]


_ATTEMPT_COLUMNS = tuple(name for name in CallAttemptOut.model_fields if name != "campaign")


def attempt_out(attempt: CallAttempt, campaign: CampaignNameValue) -> CallAttemptOut:
    columns = {name: getattr(attempt, name) for name in _ATTEMPT_COLUMNS}
    return CallAttemptOut.model_validate({**columns, "campaign": campaign_ref(campaign)})


def campaign_ref(campaign: CampaignNameValue) -> CampaignRef:
    return CampaignRef(id=campaign.id, name=campaign.name)


def calls_page_out(page: CallsPage, query: CallsQuery) -> CallsPageOut:
    sort = SortOut(field=query.sort.field, direction=query.sort.direction)
    data = [
        CallWithContextOut(
            attempt=attempt_out(row.attempt, row.campaign),
            customer=customer_out(row.customer),
            campaigns=[campaign_ref(c) for c in row.campaigns],
        )
        for row in page.rows
    ]
    return CallsPageOut(
        data=data,
        meta=CallsMetaOut(total=page.total, limit=query.limit, offset=query.offset, sort=sort),
        query=QueryOut(
            q=query.q,
            filters=_filters_of(query),
            date_from=query.date_from,
            date_to=query.date_to,
            sort=sort,
        ),
        aggregations=_aggregations_out(page.counts, page.total) if page.counts else None,
    )


def _filters_of(query: CallsQuery) -> dict[str, Any]:
    """The filters as understood (parsed, deduplicated); only the ones given."""
    given: dict[str, Any] = {
        "status": list(query.statuses),
        "outcome": [NULL_OUTCOME if o is None else o for o in query.outcomes],
        "campaign_id": str(query.campaign_id) if query.campaign_id else None,
        "customer_id": str(query.customer_id) if query.customer_id else None,
    }
    return {name: value for name, value in given.items() if value}


def _aggregations_out(counts: CallCounts, total: int) -> AggregationsOut:
    by_status = counts.by_status
    by_outcome = {NULL_OUTCOME if o is None else o: n for o, n in counts.by_outcome.items()}
    quick = {f"status={s}": n for s, n in by_status.items()}
    quick |= {f"outcome={o}": n for o, n in by_outcome.items()}
    extra = {"total": total, "status": by_status, "outcome": by_outcome}
    return AggregationsOut(quick_filters=quick, extra=extra)


# --- seed 001 -----------------------------------------------------------------------------


class CallLogOut(BaseModel):
    id: str
    source: str | None = None
    destination: str | None = None
    status: str
    direction: str
    created_on: datetime
    duration_seconds: float | None = None
    is_test_call: bool
    error_reason: str | None = None
    end_reason: str | None = None
    ringing_at: datetime | None = None
    ended_at: datetime | None = None


class CallLogMetaOut(BaseModel):
    total_count: int
    page_count: int
    current_page: int
    limit: int
    has_next_page: bool
    has_previous_page: bool


class CallLogPageOut(BaseModel):
    message: str = "Success"
    meta: CallLogMetaOut
    data: list[CallLogOut]


def call_log_page_out(page: CallLogPage) -> CallLogPageOut:
    meta = CallLogMetaOut(
        total_count=page.total_count,
        page_count=page.page_count,
        current_page=page.page,
        limit=page.limit,
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
    )
    data = [CallLogOut.model_validate(entry, from_attributes=True) for entry in page.entries]
    return CallLogPageOut(meta=meta, data=data)
