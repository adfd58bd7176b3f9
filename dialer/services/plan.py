"""The contact plan of a campaign: per contact, its zone, whether it is callable, when next."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.policies.contact_rules import contact_rules
from dialer.policies.plan import ContactFacts, PlanBucket, classify_contact
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.window import CallWindow, LegalBound
from dialer.policies.zones import resolve_contact_zones
from dialer.services.campaigns import window_of
from dialer.services.locations import location_of
from dialer.services.suppressions import SUPPRESSED, suppressed_phones_of_campaign
from models import Campaign, Customer, Enrollment


@dataclass(frozen=True)
class PlanRow:
    enrollment_id: uuid.UUID
    customer_ref: str
    phone: str | None
    zones: tuple[str, ...]
    zone_source: str
    bucket: PlanBucket
    next_opening: datetime | None


@dataclass
class ContactPlan:
    campaign_name: str
    at: datetime
    rows: list[PlanRow] = field(default_factory=list)
    counts: Counter[PlanBucket] = field(default_factory=Counter)


def build_contact_plan(
    session: Session,
    campaign: Campaign,
    at: datetime,
    legal: LegalBound,
    *,
    keep_rows: int | None = None,
) -> ContactPlan:
    """Classify every enrolled contact at `at`; keep the first `keep_rows` rows (all if None)."""
    plan = ContactPlan(campaign_name=campaign.name, at=at)
    window = window_of(campaign, legal)
    listed = suppressed_phones_of_campaign(session, campaign.id)
    for enrollment, customer in enrolled_customers(session, campaign.id):
        row = _plan_row(window, campaign, enrollment, customer, at, listed)
        plan.counts[row.bucket] += 1
        if keep_rows is None or len(plan.rows) < keep_rows:
            plan.rows.append(row)
    return plan


def enrolled_customers(
    session: Session, campaign_id: uuid.UUID
) -> Iterator[tuple[Enrollment, Customer]]:
    """The campaign's enrollments with their customers, streamed in customer order."""
    query = (
        select(Enrollment, Customer)
        .join(Customer, Customer.id == Enrollment.customer_id)
        .where(Enrollment.campaign_id == campaign_id)
        .order_by(Customer.customer_id, Customer.id)
        .execution_options(yield_per=1000)
    )
    yield from session.execute(query)


def _plan_row(
    window: CallWindow,
    campaign: Campaign,
    enrollment: Enrollment,
    customer: Customer,
    at: datetime,
    listed: set[str],
) -> PlanRow:
    contact = resolve_contact_zones(
        customer.timezone, customer.phone, campaign.timezone, location_of(customer)
    )
    facts = ContactFacts(
        state=enrollment.state,
        has_phone=bool(customer.phone),
        opted_out=customer.opted_out,
        invalid_number=(enrollment.close_reason or "").startswith("invalid_number"),
        # Listed numbers, and contacts the scan or dispatch already closed for it.
        suppressed=customer.phone in listed or enrollment.close_reason == SUPPRESSED,
    )
    rules = contact_rules(window, location_of(customer), customer.phone, at, PACKS)
    standing = classify_contact(
        rules.window,
        contact.zones,
        facts,
        at,
        needs_location=contact.needs_location,
        campaign_window=window,
    )
    return PlanRow(
        enrollment_id=enrollment.id,
        customer_ref=customer.customer_id or customer.name or str(customer.id),
        phone=customer.phone,
        zones=tuple(z.key for z in contact.zones),
        zone_source=str(contact.source),
        bucket=standing.bucket,
        next_opening=standing.next_opening,
    )
