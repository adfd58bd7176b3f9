"""What a campaign did: seed 003's counters, outcomes, states, and the window audit."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, case, func, select
from sqlalchemy.orm import Session

from dialer.metrics import CampaignLoad, InboxLoad
from dialer.policies.contact_rules import contact_rules
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.rule_packs import cap_allows, longest_cap_period
from dialer.policies.vocabulary import (
    AttemptStatus,
    CampaignStatus,
    EnrollmentState,
    Outcome,
    ProviderEventStatus,
)
from dialer.policies.window import CallWindow, LegalBound, is_open
from dialer.policies.zones import contact_zones
from dialer.services.campaigns import window_of
from dialer.services.locations import (
    country_column,
    location_from_values,
    postal_code_column,
    subdivision_column,
)
from models import CallAttempt, Campaign, Customer, Enrollment, Message, ProviderEvent
from models.sql import among
from models.vocabulary import IN_FLIGHT_ATTEMPT_STATUSES

MILLICENTS_PER_USD = 100_000


@dataclass
class CampaignReport:
    """seed 003 counters plus the breakdowns an operator asks for first."""

    counters: dict[str, Any]
    outcomes: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    attempts_per_contact: Counter[int] = field(default_factory=Counter)
    whatsapp: Counter[str] = field(default_factory=Counter)
    calls_outside_window: int = 0
    calls_over_frequency_cap: int = 0
    holds: dict[str, int] = field(default_factory=dict)  # campaigns.holds: moved by a rule


def campaign_counters(session: Session, campaign_id: uuid.UUID) -> dict[str, Any]:
    """seed 003: total, completed, successful, failed, voicemail, no_answer, cost, average duration.

    completed = contacts whose plan has ended; successful = goal met; voicemail = contacts
    whose calls reached voicemail at least once.
    """
    return counters_by_campaign(session, [campaign_id])[campaign_id]


def counters_by_campaign(
    session: Session, campaign_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """campaign_counters of many campaigns (a listing page) in two grouped queries."""
    if not campaign_ids:
        return {}
    e = Enrollment
    contacts = session.execute(
        select(
            e.campaign_id,
            func.count(),
            func.count().filter(e.state != EnrollmentState.ACTIVE),
            func.count().filter(e.state == EnrollmentState.GOAL_MET),
            func.count().filter(e.state == EnrollmentState.FAILED),
            func.count().filter(e.state == EnrollmentState.NOT_ANSWERED),
        )
        .where(among(e.campaign_id, campaign_ids))
        .group_by(e.campaign_id)
    ).all()
    a = CallAttempt
    calls = session.execute(
        select(
            a.campaign_id,
            func.count(func.distinct(case((a.outcome == Outcome.VOICEMAIL, a.enrollment_id)))),
            func.coalesce(func.sum(a.cost_millicents), 0),
            func.avg(a.duration_seconds).filter(a.outcome == Outcome.ANSWERED),
        )
        .where(among(a.campaign_id, campaign_ids))
        .group_by(a.campaign_id)
    ).all()
    by_contacts = {row[0]: row[1:] for row in contacts}
    by_calls = {row[0]: row[1:] for row in calls}
    return {
        campaign_id: _counters(
            by_contacts.get(campaign_id, (0, 0, 0, 0, 0)), by_calls.get(campaign_id, (0, 0, None))
        )
        for campaign_id in campaign_ids
    }


def _counters(contacts: Sequence[Any], calls: Sequence[Any]) -> dict[str, Any]:
    total, completed, successful, failed, no_answer = contacts
    voicemail, cost, avg = calls
    return {
        "total_contacts": total,
        "completed_contacts": completed,
        "successful_contacts": successful,
        "failed_contacts": failed,
        "voicemail_contacts": voicemail,
        "no_answer_contacts": no_answer,
        "total_cost_millicents": int(cost),
        "total_cost_usd": round(int(cost) / MILLICENTS_PER_USD, 2),
        "average_duration_seconds": int(avg or 0),
    }


def campaign_report(session: Session, campaign_id: uuid.UUID, legal: LegalBound) -> CampaignReport:
    report = CampaignReport(counters=campaign_counters(session, campaign_id))
    # Typed as plain text: the coalesce mixes outcome and status words (an unfinished
    # campaign has pending attempts), which neither enum column type could read back.
    outcome = func.coalesce(CallAttempt.outcome, CallAttempt.status, type_=String)
    report.outcomes.update(
        dict(
            session.execute(
                select(outcome, func.count())
                .where(CallAttempt.campaign_id == campaign_id)
                .group_by(outcome)
            ).all()
        )
    )
    report.states.update(
        dict(
            session.execute(
                select(Enrollment.state, func.count())
                .where(Enrollment.campaign_id == campaign_id)
                .group_by(Enrollment.state)
            ).all()
        )
    )
    report.whatsapp.update(
        dict(
            session.execute(
                select(Message.purpose, func.count())
                .where(Message.campaign_id == campaign_id)
                .group_by(Message.purpose)
            ).all()
        )
    )
    per_contact = (
        select(func.count())
        .where(CallAttempt.campaign_id == campaign_id, CallAttempt.dispatched_at.is_not(None))
        .group_by(CallAttempt.enrollment_id)
        .subquery()
    )
    report.attempts_per_contact.update(
        dict(
            session.execute(
                select(per_contact.c.count, func.count()).group_by(per_contact.c.count)
            ).all()
        )
    )
    report.calls_outside_window = len(calls_outside_window(session, campaign_id, legal))
    report.calls_over_frequency_cap = len(calls_over_frequency_cap(session, campaign_id, legal))
    holds = session.scalar(select(Campaign.holds).where(Campaign.id == campaign_id))
    report.holds = {str(k): int(v) for k, v in sorted((holds or {}).items())}
    return report


def calls_over_frequency_cap(
    session: Session, campaign_id: uuid.UUID, legal: LegalBound
) -> list[uuid.UUID]:
    """The campaign's calls placed when the person's rule pack caps were already full,
    counting their calls in every campaign of the account (must be none)."""
    campaign = session.get_one(Campaign, campaign_id)
    window = window_of(campaign, legal)
    period = longest_cap_period(PACKS)
    if not period:
        return []
    ours = (
        select(CallAttempt.customer_id)
        .where(CallAttempt.campaign_id == campaign_id, CallAttempt.dispatched_at.is_not(None))
        .distinct()
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            CallAttempt.id,
            CallAttempt.campaign_id,
            CallAttempt.customer_id,
            CallAttempt.dispatched_at,
            Customer.phone,
            country_column().label("country"),
            subdivision_column().label("subdivision"),
            postal_code_column().label("postal_code"),
        )
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(CallAttempt.customer_id.in_(ours), CallAttempt.dispatched_at.is_not(None))
        .order_by(CallAttempt.customer_id, CallAttempt.dispatched_at)
    ).all()
    calls_of: dict[uuid.UUID, list[datetime]] = {}
    for row in rows:
        calls_of.setdefault(row.customer_id, []).append(row.dispatched_at)
    over = []
    for row in rows:
        if row.campaign_id != campaign_id:
            continue
        location = location_from_values(row.country, row.subdivision, row.postal_code)
        caps = contact_rules(window, location, row.phone, row.dispatched_at, PACKS).applied.caps
        before = [t for t in calls_of[row.customer_id] if t < row.dispatched_at]
        if caps and cap_allows(caps, before, row.dispatched_at) is not None:
            over.append(row.id)
    return over


def calls_outside_window(
    session: Session, campaign_id: uuid.UUID, legal: LegalBound
) -> list[uuid.UUID]:
    """Attempts handed to the provider while the contact's window was closed (must be none)."""
    campaign = session.get_one(Campaign, campaign_id)
    window = window_of(campaign, legal)
    rows = session.execute(
        select(
            CallAttempt.id,
            CallAttempt.dispatched_at,
            Customer.timezone,
            Customer.phone,
            country_column(),
            subdivision_column(),
            postal_code_column(),
        )
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(CallAttempt.campaign_id == campaign_id, CallAttempt.dispatched_at.is_not(None))
    ).all()
    return [
        attempt_id
        for attempt_id, at, tz, phone, country, subdivision, postal in rows
        if at is not None
        and not _allowed(window, campaign.timezone, tz, phone, (country, subdivision, postal), at)
    ]


def _allowed(
    window: CallWindow,
    campaign_tz: str,
    tz: str | None,
    phone: str | None,
    location_fields: tuple[str | None, str | None, str | None],
    at: datetime,
) -> bool:
    """Whether a call at ``at`` kept the window and the jurisdiction's rule packs."""
    location = location_from_values(*location_fields)
    zones = contact_zones(tz, phone, campaign_tz, location)
    rules = contact_rules(window, location, phone, at, PACKS)
    return is_open(rules.window, zones, at)


def campaign_loads(session: Session, now: datetime) -> list[CampaignLoad]:
    """Backlog, calls in flight and concurrency of every running campaign (the gauges).

    Three grouped reads, each on a partial index (running campaigns, due pending
    attempts, in-flight attempts): the cost follows what is due and live, not history.
    """
    running = {
        row[0]: row[1]
        for row in session.execute(
            select(Campaign.id, Campaign.concurrency).where(
                Campaign.status == CampaignStatus.RUNNING
            )
        )
    }
    if not running:
        return []
    a = CallAttempt
    due = _count_by_campaign(
        session,
        a.status == AttemptStatus.PENDING,
        a.scheduled_at <= now,
        among(a.campaign_id, running),
    )
    live = _count_by_campaign(
        session, a.status.in_(IN_FLIGHT_ATTEMPT_STATUSES), among(a.campaign_id, running)
    )
    return [
        CampaignLoad(str(campaign_id), due.get(campaign_id, 0), live.get(campaign_id, 0), limit)
        for campaign_id, limit in running.items()
    ]


def inbox_load(session: Session) -> InboxLoad:
    """The inbox gauges: one read on the partial index of unapplied events.

    The age is taken on the database's clock, which stamped ``received_at`` (a simulated
    clock, as in the demo, would not match it).
    """
    pending, lag = session.execute(
        select(
            func.count(),
            func.extract("epoch", func.now() - func.min(ProviderEvent.received_at)),
        ).where(ProviderEvent.status == ProviderEventStatus.RECEIVED)
    ).one()
    return InboxLoad(pending, max(0.0, float(lag)) if lag is not None else 0.0)


def _count_by_campaign(session: Session, *where: ColumnElement[bool]) -> dict[uuid.UUID, int]:
    query = select(CallAttempt.campaign_id, func.count()).where(*where)
    rows = session.execute(query.group_by(CallAttempt.campaign_id))
    return {row[0]: row[1] for row in rows}
