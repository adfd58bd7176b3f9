"""Control API: campaigns (seed 002 CampaignOut and execution, seed 003 listing).

Every route works inside the key's account: another account's campaign answers 404,
never 403, and never shows in a list. Single campaigns are answered bare, as seed
002 answers them; lists in seed 003's envelope ``{data, meta, pagination}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.orm import Session

from dialer.api.auth import require
from dialer.api.context import context_of
from dialer.api.query_rules import no_query_parameters
from dialer.api.views.campaigns import (
    CampaignListItemOut,
    CampaignOut,
    CampaignPatch,
    CampaignResumeRequest,
    CampaignResumeResultOut,
    CampaignSummaryOut,
    ListStatusFilter,
    campaign_out,
    list_item_out,
    resume_out,
    summary_out,
)
from dialer.api.views.pages import Page, PageQuery, page_of
from dialer.logging import get_logger
from dialer.schemas import CampaignSpec
from dialer.services.api_keys import Principal
from dialer.services.campaign_edits import update_campaign
from dialer.services.campaign_listing import campaign_with_counters, list_campaigns
from dialer.services.campaigns import create_campaign, legal_bound
from dialer.services.lifecycle import (
    complete_campaign,
    lock_campaign,
    pause_campaign,
    resume_campaign,
    resume_counts,
    start_campaign,
)
from models import Account, Campaign

log = get_logger("dialer.api.campaigns")
router = APIRouter(tags=["campaigns"])

Reader = Annotated[Principal, Depends(require("campaigns:read"))]
Writer = Annotated[Principal, Depends(require("campaigns:write"))]
LifecycleAction = Callable[[Session, Campaign, datetime], Campaign]
# Seed 002's lifecycle routes take no query parameters: a misspelt option is refused,
# not silently ignored.
NO_QUERY = [Depends(no_query_parameters)]


@router.post("/campaigns", status_code=201, response_model=CampaignOut)
def create(request: Request, spec: CampaignSpec, principal: Writer) -> CampaignOut:
    """Create a draft campaign (seed 002 fields plus seed 003's batch settings).

    The agent and channels may be named inline (``agent``, ``whatsapp_channel``) or by
    id. A window that never opens inside the legal hours, a template placeholder no
    customer can fill, or a name already used in the account is refused.
    """
    ctx = context_of(request)
    with ctx.uow() as session:
        account = session.get_one(Account, principal.account_id)
        campaign = create_campaign(session, account, spec, legal_bound(ctx.settings))
        log.info("campaign_created", campaign_id=str(campaign.id))
        return campaign_out(campaign)


@router.get("/campaigns", response_model=Page[CampaignListItemOut])
def list_(
    request: Request,
    principal: Reader,
    window: PageQuery,
    status: Annotated[
        ListStatusFilter | None,
        Query(description="Only this status: a seed 003 word, or the project's own."),
    ] = None,
) -> Page[CampaignListItemOut]:
    """The account's campaigns, newest first, each with seed 003's counters (seed 003's list).

    ``status`` is seed 003's word (draft/scheduled/active/paused/completed; failed and
    cancelled never occur); ``lifecycle_status`` the project's (draft/running/paused/done).
    """
    ctx = context_of(request)
    now = ctx.now()
    with ctx.uow() as session:
        page = list_campaigns(
            session,
            principal.account_id,
            status=status,
            limit=window.limit,
            offset=window.offset,
            now=now,
        )
        items = [list_item_out(item.campaign, item.counters, now) for item in page.campaigns]
    return page_of(request, now, items, page.total, window)


@router.get("/campaigns/{campaign_id}", response_model=CampaignSummaryOut)
def get(request: Request, campaign_id: uuid.UUID, principal: Reader) -> CampaignSummaryOut:
    """One campaign with seed 003's counters."""
    with context_of(request).uow() as session:
        found = campaign_with_counters(session, principal.account_id, campaign_id)
        return summary_out(found.campaign, found.counters)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut)
def update(
    request: Request, campaign_id: uuid.UUID, patch: CampaignPatch, principal: Writer
) -> CampaignOut:
    """Change settings; fields left out keep their value. By status:

    - draft, paused: any field of the body; the result is validated like a new campaign.
    - running: only ``name``, ``concurrency`` and ``max_calls_per_day`` (400 otherwise:
      pause first, so no call goes out under half-applied settings).
    - done: nothing (400 invalid_state).

    The agent and channels never change (create another campaign). Changes apply to
    work planned after them; pending calls are checked against the new window.
    """
    ctx = context_of(request)
    with ctx.uow() as session:
        campaign = lock_campaign(session, campaign_id, principal.account_id)
        changes = patch.changes()
        update_campaign(session, campaign, changes, legal_bound(ctx.settings))
        log.info("campaign_updated", campaign_id=str(campaign_id), fields=sorted(changes))
        return campaign_out(campaign)


@router.post("/campaigns/{campaign_id}/start", response_model=CampaignOut, dependencies=NO_QUERY)
def start(request: Request, campaign_id: uuid.UUID, principal: Writer) -> CampaignOut:
    """Set the status to running if allowed (seed 002).

    draft/paused -> running; running stays running (a no-op); done -> 400 (cannot
    restart: use resume). The first calls are made by the workers, not by this request.
    """
    return _transition(request, campaign_id, principal, start_campaign)


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignOut, dependencies=NO_QUERY)
def pause(request: Request, campaign_id: uuid.UUID, principal: Writer) -> CampaignOut:
    """running -> paused: no new calls; calls in flight finish. paused: a no-op; else 400."""
    return _transition(request, campaign_id, principal, pause_campaign)


@router.post("/campaigns/{campaign_id}/complete", response_model=CampaignOut, dependencies=NO_QUERY)
def complete(request: Request, campaign_id: uuid.UUID, principal: Writer) -> CampaignOut:
    """-> done (seed 002): pending calls are canceled; calls in flight are still recorded."""
    return _transition(request, campaign_id, principal, complete_campaign)


@router.post(
    "/campaigns/{campaign_id}/resume", response_model=CampaignResumeResultOut, dependencies=NO_QUERY
)
def resume(
    request: Request,
    campaign_id: uuid.UUID,
    principal: Writer,
    body: Annotated[CampaignResumeRequest | None, Body()] = None,
) -> CampaignResumeResultOut:
    """Resume a done or paused campaign for a target segment (seed 002).

    A new round of contacts for the segment (default not_answered); a draft is 400
    (use start). The body may be left out.
    """
    segment = (body or CampaignResumeRequest()).segment
    ctx = context_of(request)
    now = ctx.now()
    with ctx.uow() as session:
        campaign = lock_campaign(session, campaign_id, principal.account_id)
        result = resume_campaign(session, campaign, segment, now)
        log.info("campaign_resumed", campaign_id=str(campaign_id), **resume_counts(result))
        session.flush()  # so updated_at is read back as the database sets it
        return resume_out(result)


def _transition(
    request: Request, campaign_id: uuid.UUID, principal: Principal, action: LifecycleAction
) -> CampaignOut:
    ctx = context_of(request)
    now = ctx.now()
    with ctx.uow() as session:
        campaign = lock_campaign(session, campaign_id, principal.account_id)
        action(session, campaign, now)
        log.info("campaign_transition", campaign_id=str(campaign_id), status=campaign.status)
        session.flush()  # so updated_at is read back as the database sets it
        return campaign_out(campaign)
