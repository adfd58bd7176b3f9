"""``dialer plan --forecast``: load a campaign's contacts and run the pure forecast.

Reads only: the campaign, its enrollments and customers, the do-not-contact list and
the people's recent calls (for the rule packs' frequency caps). Writes nothing; the
caller's session is rolled back, never committed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dialer.errors import ValidationFailed
from dialer.policies.contact_rules import RulesOfCampaign
from dialer.policies.forecast import (
    MAX_FORECAST_CONTACTS,
    CallDistribution,
    CallTiming,
    CampaignLimits,
    ForecastContact,
    ForecastResult,
    check_horizon,
    forecast,
)
from dialer.policies.plan import ContactFacts
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.rule_packs import longest_cap_period
from dialer.policies.vocabulary import Channel, Outcome
from dialer.policies.window import CallWindow
from dialer.policies.zones import resolve_contact_zones
from dialer.providers.simulation.profile import Bounds, SimulationProfile
from dialer.services.campaigns import legal_bound, retry_plan_of, window_of
from dialer.services.locations import location_of
from dialer.services.plan import enrolled_customers
from dialer.services.suppressions import SUPPRESSED, suppressed_phones_of_campaign
from dialer.settings import Settings
from models import CallAttempt, Campaign, Customer, Enrollment

# The simulator's busy tone (dialer.providers.simulation.outcomes): a few seconds.
BUSY_TONE_SECONDS: Final[Bounds] = (1.0, 4.0)


def distribution_of(profile: SimulationProfile) -> CallDistribution:
    """The simulator's profile as the plain numbers of the pure forecast."""
    ringing, ring = profile.ringing_after_seconds, profile.ring_seconds
    to_pick_up = (ringing[0] + ring[0], ringing[1] + ring[1])
    timing = {
        Outcome.ANSWERED: CallTiming(to_pick_up, profile.answered_seconds),
        Outcome.VOICEMAIL: CallTiming(to_pick_up, profile.voicemail_seconds),
        Outcome.NO_ANSWER: CallTiming(to_pick_up),
        Outcome.BUSY: CallTiming(
            (ringing[0] + BUSY_TONE_SECONDS[0], ringing[1] + BUSY_TONE_SECONDS[1])
        ),
        Outcome.FAILED: CallTiming(ringing),
    }
    return CallDistribution(
        weights=profile.outcome_weights(),
        timing=timing,
        cost_per_minute_millicents=profile.cost_per_minute_millicents,
    )


def build_forecast(
    session: Session,
    campaign: Campaign,
    settings: Settings,
    *,
    at: datetime,
    seed: int,
    horizon_days: int,
) -> ForecastResult:
    """The campaign's forecast from ``at`` with the deployment's simulation profile."""
    check_horizon(horizon_days)  # before reading a single contact
    profile = SimulationProfile.from_mapping(settings.simulation)
    window = window_of(campaign, legal_bound(settings))
    contacts = list(_contacts(session, campaign, window, at))
    limits = CampaignLimits(
        campaign_window=window,
        timezone=ZoneInfo(campaign.timezone),
        concurrency=campaign.concurrency,
        max_calls_per_day=campaign.max_calls_per_day,
        message_first=(
            campaign.first_contact_channel != Channel.CALL
            and campaign.fallback_channel_id is not None
        ),
        window_margin=_margin(settings),
    )
    return forecast(
        contacts,
        retry_plan_of(campaign),
        limits,
        distribution_of(profile),
        start=at,
        horizon_days=horizon_days,
        seed=seed,
    )


def _margin(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.dispatch_window_margin_seconds)


def _contacts(
    session: Session, campaign: Campaign, window: CallWindow, at: datetime
) -> Iterator[ForecastContact]:
    _refuse_too_many(session, campaign.id)
    listed = suppressed_phones_of_campaign(session, campaign.id)
    recent = _recent_calls(session, campaign.id, at - longest_cap_period(PACKS))
    rules_of = RulesOfCampaign(window, at, PACKS)
    for enrollment, customer in enrolled_customers(session, campaign.id):
        location = location_of(customer)
        contact = resolve_contact_zones(
            customer.timezone, customer.phone, campaign.timezone, location
        )
        rules = rules_of(location, customer.phone)
        yield ForecastContact(
            ref=customer.customer_id or customer.name or str(customer.id),
            zones=tuple(contact.zones),
            window=rules.window,
            facts=_facts(enrollment, customer, listed),
            needs_location=contact.needs_location,
            caps=rules.applied.caps,
            recent_calls=tuple(recent.get(customer.id, ())),
            calls_made=enrollment.calls_made - enrollment.round_base,
            unanswered_calls=enrollment.unanswered_calls,
            outcome_calls={Outcome(k): int(v) for k, v in (enrollment.outcome_calls or {}).items()},
        )


def _facts(enrollment: Enrollment, customer: Customer, listed: set[str]) -> ContactFacts:
    # The same facts as the contact plan (dialer.services.plan) reads.
    return ContactFacts(
        state=enrollment.state,
        has_phone=bool(customer.phone),
        opted_out=customer.opted_out,
        invalid_number=(enrollment.close_reason or "").startswith("invalid_number"),
        suppressed=customer.phone in listed or enrollment.close_reason == SUPPRESSED,
    )


def _refuse_too_many(session: Session, campaign_id: uuid.UUID) -> None:
    enrolled = session.scalar(
        select(func.count()).select_from(Enrollment).where(Enrollment.campaign_id == campaign_id)
    )
    if (enrolled or 0) > MAX_FORECAST_CONTACTS:
        raise ValidationFailed(
            "contacts",
            f"the campaign has {enrolled} contacts; a forecast runs at most "
            f"{MAX_FORECAST_CONTACTS}",
        )


def _recent_calls(
    session: Session, campaign_id: uuid.UUID, since: datetime
) -> dict[uuid.UUID, list[datetime]]:
    """The call starts of the campaign's people since ``since``, in any campaign (caps)."""
    rows = session.execute(
        select(CallAttempt.customer_id, CallAttempt.dispatched_at)
        .join(Enrollment, Enrollment.customer_id == CallAttempt.customer_id)
        .where(Enrollment.campaign_id == campaign_id)
        .where(CallAttempt.dispatched_at > since)
    )
    out: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for customer_id, dispatched_at in rows:
        if dispatched_at is not None:
            out[customer_id].append(dispatched_at)
    return out
