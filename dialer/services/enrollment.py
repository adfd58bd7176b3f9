"""Enrolling customers in a campaign through the control API (JSON lists and CSV streams).

Both go through imports.import_customers, the CLI's import: matching, upserts and the
per-row rules are the same everywhere. A campaign that is already running made its
first contacts when it started, so enrolling in one records campaign.started again:
the relay then makes the newcomers' first contacts (materialising is idempotent and
touches only enrollments that have none).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.customers_csv import ParsedRow, RowProblem
from dialer.errors import ValidationFailed
from dialer.policies.vocabulary import CampaignStatus
from dialer.schemas import CustomerIn
from dialer.services import outbox
from dialer.services.campaign_listing import get_campaign
from dialer.services.imports import ImportReport, import_customers
from models import Campaign


def enroll(
    session: Session,
    account_id: uuid.UUID,
    campaign_id: uuid.UUID,
    items: Iterable[ParsedRow | RowProblem],
    *,
    partial: bool,
    now: datetime,
) -> ImportReport:
    """Import ``items`` into the account's campaign; ImportRejected when not partial and bad."""
    campaign = get_campaign(session, account_id, campaign_id)
    report = import_customers(session, campaign, items, partial=partial)
    if report.enrolled:
        _announce_newcomers(session, campaign.id, now)
    return report


def rows_of(customers: Sequence[CustomerIn]) -> list[ParsedRow]:
    """JSON items as import rows; a repeated customer is refused by its index.

    Same rule as a CSV file: a customer_id, or else a phone, that an earlier item has.
    """
    first_seen: dict[tuple[str, str], int] = {}
    for index, customer in enumerate(customers):
        keys = _identity_keys(customer)
        for key in keys:
            if key in first_seen:
                raise ValidationFailed(f"{index}.{key[0]}", f"repeats item {first_seen[key]}")
        first_seen.update(dict.fromkeys(keys, index))
    return [ParsedRow(line=index, customer=customer) for index, customer in enumerate(customers)]


def _identity_keys(customer: CustomerIn) -> list[tuple[str, str]]:
    given = (("customer_id", customer.customer_id), ("phone", customer.phone))
    return [(name, value) for name, value in given if value is not None]


def _announce_newcomers(session: Session, campaign_id: uuid.UUID, now: datetime) -> None:
    # The status is read under lock at the end: a long upload may have seen a start.
    status = session.scalar(
        select(Campaign.status).where(Campaign.id == campaign_id).with_for_update()
    )
    if status == CampaignStatus.RUNNING:
        outbox.record_event(
            session, outbox.CAMPAIGN_STARTED, campaign_id, now, cause="customers_enrolled"
        )
