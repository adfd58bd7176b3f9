"""Reading a tenant's campaigns with their seed 003 counters (GET /campaigns).

A page costs four queries whatever its size: the total, the page, and one grouped
query each over the page's enrollments and call attempts (reports.counters_by_campaign).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dialer.errors import NotFound
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
    session: Session, account_id: uuid.UUID, *, status: str | None, limit: int, offset: int
) -> CampaignPage:
    """Newest first, optionally only those in ``status``."""
    where = [Campaign.account_id == account_id]
    if status is not None:
        where.append(Campaign.status == status)
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
