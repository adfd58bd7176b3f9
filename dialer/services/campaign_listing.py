"""Reading a tenant's campaigns with their seed 003 counters (GET /campaigns).

A page costs four queries whatever its size: the total, the page, and one grouped
query each over the page's enrollments and call attempts (reports.counters_by_campaign).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, select
from sqlalchemy.orm import Session

from dialer.errors import NotFound
from dialer.policies.batch_status import NEVER_USED, PLAIN_STATUSES, BatchStatus
from dialer.policies.vocabulary import CampaignStatus, ScheduleType
from dialer.services.reports import campaign_counters, counters_by_campaign
from models import Campaign


@dataclass(frozen=True)
class CampaignWithCounters:
    campaign: Campaign
    counters: dict[str, Any]


@dataclass(frozen=True)
class CampaignPage:
    campaigns: list[CampaignWithCounters]
    total: int  # of every campaign the filter matches, not only this page


def _status_clause(status: str, now: datetime | None) -> ColumnElement[bool]:
    if status in CampaignStatus.__members__.values():
        return Campaign.status == status
    batch = BatchStatus(status)
    if batch in NEVER_USED:
        return false()
    if batch in PLAIN_STATUSES:
        return Campaign.status == PLAIN_STATUSES[batch].value
    waiting = and_(
        Campaign.schedule_type == ScheduleType.SCHEDULED,
        Campaign.scheduled_at.is_not(None),
        Campaign.scheduled_at > (now or func.now()),
    )
    running = Campaign.status == CampaignStatus.RUNNING.value
    return and_(running, waiting if batch is BatchStatus.SCHEDULED else not_(waiting))


def get_campaign(session: Session, account_id: uuid.UUID, campaign_id: uuid.UUID) -> Campaign:
    """A campaign of this account; another account's is not found (never 'forbidden')."""
    query = select(Campaign).where(Campaign.id == campaign_id, Campaign.account_id == account_id)
    campaign = session.scalars(query).first()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def campaign_with_counters(
    session: Session, account_id: uuid.UUID, campaign_id: uuid.UUID
) -> CampaignWithCounters:
    campaign = get_campaign(session, account_id, campaign_id)
    return CampaignWithCounters(campaign, campaign_counters(session, campaign.id))


def list_campaigns(
    session: Session,
    account_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    offset: int,
    now: datetime | None = None,
) -> CampaignPage:
    """Newest first, optionally only those in ``status``: a project (seed 002) word, or a
    seed 003 word read at ``now`` (dialer.policies.batch_status)."""
    where = [Campaign.account_id == account_id]
    if status is not None:
        where.append(_status_clause(status, now))
    total = session.scalar(select(func.count()).select_from(Campaign).where(*where)) or 0
    query = (
        select(Campaign)
        .where(*where)
        .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        .limit(limit)
        .offset(offset)
    )
    campaigns = list(session.scalars(query))
    counters = counters_by_campaign(session, [c.id for c in campaigns])
    return CampaignPage(
        campaigns=[CampaignWithCounters(c, counters[c.id]) for c in campaigns], total=total
    )
