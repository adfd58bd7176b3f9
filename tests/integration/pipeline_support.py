"""Shared set-up for pipeline tests: a campaign with customers, providers, a driver."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.customers_csv import parse_customers
from dialer.policies.window import LegalBound, is_open
from dialer.policies.zones import contact_zones
from dialer.providers.simulated import SimulationProfile, build_simulated_providers
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign, window_of
from dialer.services.imports import import_customers
from dialer.services.lifecycle import lock_campaign, start_campaign
from models import CallAttempt, Campaign, Customer
from models.session import transaction
from scheduler.driver import InProcessPipeline, ManualClock

# Monday 2026-11-23 06:00 UTC: before any window opens in Europe, night in the Americas.
MONDAY_6_UTC = datetime(2026, 11, 23, 6, tzinfo=UTC)
LEGAL = LegalBound()

CUSTOMERS_CSV = "customer_id,name,phone,plan\n" + "".join(
    f"c{i:03d},Name{i},{phone},gold\n"
    for i, phone in enumerate(
        [f"+1212555{100 + n:04d}" for n in range(10)]  # New York
        + [f"+39061234{5600 + n:04d}" for n in range(10)]  # Rome
        + [f"+81312345{600 + n:03d}" for n in range(10)]  # Tokyo
    )
)

BASE_SPEC: dict[str, Any] = {
    "name": "Pipeline test",
    "agent": {
        "name": "Agent",
        "provider_agent_id": "agt_test",
        "phone_numbers": ["+12125550199", "+12125550198"],
    },
    "timezone": "Europe/Rome",
    "call_attempt_delays": [60, 240],
    "whatsapp_after_attempts": 2,
    "call_opening_message": "Hello {{name}}",
    "whatsapp_first_message": "Hi {{name}}, we tried to call you.",
    "whatsapp_channel": {"name": "WA", "address": "+12125550197"},
    "concurrency": 5,
}


def uow_for(url: str) -> Callable[[], AbstractContextManager[Session]]:
    return lambda: transaction(url)


def setup_campaign(
    url: str, spec: dict[str, Any] | None = None, csv_text: str = CUSTOMERS_CSV
) -> uuid.UUID:
    with transaction(url) as session:
        account = get_or_create_account(session, f"acct-{uuid.uuid4().hex[:8]}")
        campaign = create_campaign(
            session, account, CampaignSpec.model_validate({**BASE_SPEC, **(spec or {})}), LEGAL
        )
        import_customers(session, campaign, parse_customers(io.StringIO(csv_text)), partial=True)
        return campaign.id


def start(url: str, campaign_id: uuid.UUID, now: datetime) -> None:
    with transaction(url) as session:
        start_campaign(session, lock_campaign(session, campaign_id), now)


def make_driver(
    url: str, redis_url: str, profile: dict[str, Any] | None = None, now: datetime = MONDAY_6_UTC
) -> InProcessPipeline:
    clock = ManualClock(now)
    sim = SimulationProfile.from_mapping({"seed": 7, **(profile or {})})
    voice, messages = build_simulated_providers(redis_url, clock, sim, namespace=uuid.uuid4().hex)
    return InProcessPipeline(
        uow=uow_for(url), voice=voice, messages=messages, clock=clock, legal=LEGAL
    )


def campaign_status(url: str, campaign_id: uuid.UUID) -> str:
    with transaction(url) as session:
        return session.get_one(Campaign, campaign_id).status


def calls_outside_window(url: str, campaign_id: uuid.UUID) -> list[uuid.UUID]:
    """Attempts handed to the provider at an instant the contact's window was closed."""
    with transaction(url) as session:
        campaign = session.get_one(Campaign, campaign_id)
        window = window_of(campaign, LEGAL)
        rows = session.execute(
            select(CallAttempt.id, CallAttempt.dispatched_at, Customer.timezone, Customer.phone)
            .join(Customer, Customer.id == CallAttempt.customer_id)
            .where(CallAttempt.campaign_id == campaign_id, CallAttempt.dispatched_at.is_not(None))
        ).all()
    return [
        attempt_id
        for attempt_id, at, tz, phone in rows
        if not is_open(window, contact_zones(tz, phone, campaign.timezone), at)
    ]


def flush_redis(url: str) -> None:
    redis.Redis.from_url(url).flushdb()
