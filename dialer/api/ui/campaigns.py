"""Dashboard: the campaigns list and a campaign's page, with its lifecycle buttons.

Everything is read and changed through the services the control API uses (listing,
counters, report, plan, lifecycle), inside the session key's account and with the
API's scopes; the API's answer shapes (dialer.api.views.campaigns) fill the pages, so a
page shows what ``GET /campaigns`` says.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from sqlalchemy.orm import Session

from dialer.api.context import context_of
from dialer.api.ui import charts
from dialer.api.ui.session import UI_PATH_PREFIX
from dialer.api.ui.web import UiRoute, log, need, parse_id, redirect, render, ui_principal
from dialer.api.views.campaigns import ListStatusFilter, list_item_out, summary_out
from dialer.errors import CampaignStateError
from dialer.policies.plan import REMEDIES
from dialer.policies.vocabulary import Segment
from dialer.services.api_keys import Principal
from dialer.services.campaign_listing import campaign_with_counters, list_campaigns
from dialer.services.campaigns import legal_bound
from dialer.services.lifecycle import (
    complete_campaign,
    lock_campaign,
    pause_campaign,
    resume_campaign,
    start_campaign,
)
from dialer.services.plan_timeline import Timeline, zone_timeline
from dialer.services.reports import CampaignReport, campaign_report
from models import Campaign

router = APIRouter(prefix=UI_PATH_PREFIX, route_class=UiRoute, include_in_schema=False)
SignedIn = Annotated[Principal, Depends(ui_principal)]
PAGE_SIZE: Final = 20
LIVE_SECONDS: Final = 5  # how often a page refreshes its live parts
# The timeline classifies every contact (as `dialer plan` does): past this many, the page
# leaves it to `dialer plan`, so opening a page never costs a million-row pass.
MAX_TIMELINE_CONTACTS: Final = 50_000
LifecycleAction = Callable[[Session, Campaign, datetime], Campaign]
ACTIONS: Final[dict[str, LifecycleAction]] = {
    "start": start_campaign,
    "pause": pause_campaign,
    "complete": complete_campaign,
}
STATUS_FILTERS: Final = ("draft", "scheduled", "active", "paused", "completed")


# ------------------------------------------------------------------------------ the list


@router.get("/campaigns")
def campaigns_page(
    request: Request,
    principal: SignedIn,
    status: Annotated[ListStatusFilter | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> Response:
    values = _campaign_list(request, principal, status, offset)
    return render(request, "campaigns.html", **values, status_filters=STATUS_FILTERS)


@router.get("/campaigns/rows")
def campaigns_rows(
    request: Request,
    principal: SignedIn,
    status: Annotated[ListStatusFilter | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> Response:
    """The list's table body alone: what the page's live refresh fetches."""
    return render(
        request, "_campaign_rows.html", **_campaign_list(request, principal, status, offset)
    )


def _campaign_list(
    request: Request, principal: Principal, status: str | None, offset: int
) -> dict[str, Any]:
    need(principal, "campaigns:read")
    ctx = context_of(request)
    now = ctx.now()
    with ctx.uow() as session:
        page = list_campaigns(
            session, principal.account_id, status=status, limit=PAGE_SIZE, offset=offset, now=now
        )
        items = [list_item_out(item.campaign, item.counters, now) for item in page.campaigns]
    query = f"status={status}&" if status else ""
    return {
        "campaigns": items,
        "total": page.total,
        "status": status,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "live_src": f"{UI_PATH_PREFIX}/campaigns/rows?{query}offset={offset}",
        "live_seconds": LIVE_SECONDS,
        "prev_href": _page_href(query, offset - PAGE_SIZE) if offset > 0 else None,
        "next_href": _page_href(query, offset + PAGE_SIZE)
        if offset + PAGE_SIZE < page.total
        else None,
    }


def _page_href(query: str, offset: int) -> str:
    return f"{UI_PATH_PREFIX}/campaigns?{query}offset={max(0, offset)}"


# ------------------------------------------------------------------------ one campaign


@router.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, campaign_id: str, principal: SignedIn) -> Response:
    values = campaign_values(request, principal, parse_id(campaign_id, "campaign"))
    return render(request, "campaign.html", **values)


@router.get("/campaigns/{campaign_id}/live")
def campaign_live(request: Request, campaign_id: str, principal: SignedIn) -> Response:
    """The page's progress panels alone: what its live refresh fetches."""
    values = campaign_values(request, principal, parse_id(campaign_id, "campaign"), plan=False)
    return render(request, "_campaign_live.html", **values)


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(
    request: Request,
    campaign_id: str,
    action: str,
    principal: SignedIn,
    segment: Annotated[Segment, Form()] = Segment.NOT_ANSWERED,
) -> Response:
    """start, pause, complete or resume, as the API's routes do (seed 002's rules).

    A refused transition (done cannot restart, a draft cannot resume) shows the page
    again with the API's message and status (400).
    """
    need(principal, "campaigns:write")
    target = parse_id(campaign_id, "campaign")
    if action not in {*ACTIONS, "resume"}:
        return render(request, "error.html", 404, title="Not Found", message="no such action")
    ctx = context_of(request)
    now = ctx.now()
    try:
        with ctx.uow() as session:
            campaign = lock_campaign(session, target, principal.account_id)
            message = _act(session, campaign, action, segment, now)
    except CampaignStateError as exc:
        values = campaign_values(request, principal, target)
        return render(request, "campaign.html", 400, **values, error=str(exc))
    log.info("ui_campaign_action", campaign_id=str(target), action=action)
    return redirect(request, f"{UI_PATH_PREFIX}/campaigns/{target}", flash=message)


def _act(session: Session, campaign: Campaign, action: str, segment: Segment, now: datetime) -> str:
    if action == "resume":
        result = resume_campaign(session, campaign, segment, now)
        return (
            f"Resumed ({segment.value}): {result.selected_targets} selected, "
            f"{result.scheduled_calls} calls scheduled, {result.queued_messages} messages "
            f"queued, {result.skipped_existing_pending} already pending, "
            f"{result.skipped_missing_contact} missing contact."
        )
    before = campaign.status
    ACTIONS[action](session, campaign, now)
    if campaign.status == before:
        return f"The campaign is already {campaign.status}."
    return f"Campaign {action}: now {campaign.status}."


def campaign_values(
    request: Request, principal: Principal, campaign_id: uuid.UUID, *, plan: bool = True
) -> dict[str, Any]:
    """Everything the campaign page shows, read in one transaction."""
    need(principal, "campaigns:read")
    ctx = context_of(request)
    now = ctx.now()
    legal = legal_bound(ctx.settings)
    with ctx.uow() as session:
        found = campaign_with_counters(session, principal.account_id, campaign_id)
        summary = summary_out(found.campaign, found.counters)
        report = campaign_report(session, campaign_id, legal)
        small = summary.total_contacts <= MAX_TIMELINE_CONTACTS
        timeline = zone_timeline(session, found.campaign, now, legal) if plan and small else None
    values: dict[str, Any] = {
        "campaign": summary,
        "report": report,
        "live_src": f"{UI_PATH_PREFIX}/campaigns/{campaign_id}/live",
        "live_seconds": LIVE_SECONDS,
        "segments": [s.value for s in Segment],
        "timeline_skipped": plan and timeline is None,
        "max_timeline_contacts": MAX_TIMELINE_CONTACTS,
        **_progress(
            summary.total_contacts, summary.completed_contacts, summary.successful_contacts, report
        ),
    }
    if timeline is not None:
        values.update(_timeline_values(timeline, ZoneInfo(summary.timezone)))
    return values


def _progress(total: int, closed: int, goal_met: int, report: CampaignReport) -> dict[str, Any]:
    placed = sum(count * n for n, count in report.attempts_per_contact.items())
    answered = report.outcomes.get("answered", 0)
    bars = charts.progress_bars(
        [
            ("Contacts closed", closed, total),
            ("Goal met", goal_met, total),
            ("Calls placed", placed, max(placed, sum(report.outcomes.values()))),
            ("Answered", answered, placed),
        ]
    )
    return {
        "bars": bars,
        "outcome_segments": charts.stacked(dict(report.outcomes), charts.OUTCOME_CLASSES),
        "state_segments": charts.stacked(dict(report.states), charts.STATE_CLASSES),
        "chart": charts,
    }


def _timeline_values(timeline: Timeline, zone: ZoneInfo) -> dict[str, Any]:
    rows = [
        (
            " + ".join(row.zones),
            f"{row.waiting} waiting, {row.callable_now} callable now",
            row.intervals,
            ZoneInfo(row.zones[0]),
        )
        for row in timeline.rows
    ]
    lanes = charts.timeline_lanes(rows, timeline.at, timeline.until)
    return {
        "timeline": timeline,
        "lanes": lanes,
        "ticks": charts.timeline_ticks(timeline.at, timeline.until, zone),
        "timeline_height": len(lanes) * charts.TIMELINE_ROW + 30,
        "skips": [
            (bucket.value, count, REMEDIES.get(bucket, ""))
            for bucket, count in timeline.skipped.most_common()
        ],
        "axis_zone": zone.key,
    }
