"""Campaigns for the bench: created through the real services, customers loaded set-based.

The window must be open at the real current time for the Celery runs. Every customer
gets an explicit ``Etc/GMT±N`` zone in which it is around noon now, the campaign calls
all seven days 00:00-23:59:59 and the legal bound is 00:00-23:59:59, so the window is
open for hours whatever the machine's clock says.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from dialer.policies.window import LegalBound
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign
from dialer.services.lifecycle import lock_campaign, pause_campaign, start_campaign
from models.session import transaction

ALL_DAY = LegalBound(start=time(0, 0), end=time(23, 59, 59))
LEGAL_ENV = {"DIALER_LEGAL_WINDOW_START": "00:00:00", "DIALER_LEGAL_WINDOW_END": "23:59:59"}


def noon_zone(now: datetime | None = None) -> str:
    """An IANA ``Etc/GMT±N`` zone in which the local time is 12:xx at ``now``."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    offset = 12 - at.hour  # hours east of UTC
    if offset > 14:
        offset -= 24
    if offset < -12:
        offset += 24
    if offset == 0:
        return "Etc/GMT"
    # POSIX sign convention: Etc/GMT-5 is five hours EAST of Greenwich.
    return f"Etc/GMT-{offset}" if offset > 0 else f"Etc/GMT+{-offset}"


def spec(name: str, zone: str, concurrency: int, max_calls_per_day: int | None) -> dict[str, Any]:
    return {
        "name": name,
        "agent": {
            "name": "Bench agent",
            "provider_agent_id": "agt_bench",
            "phone_numbers": ["+12125550199", "+12125550198"],
        },
        "timezone": zone,
        "call_attempt_delays": [],  # one call per enrollment: no retries
        "call_opening_message": "Hello {{name}}",
        "call_working_hours": {"start": "00:00", "end": "23:59:59", "weekdays": list(range(7))},
        "concurrency": concurrency,
        "max_calls_per_day": max_calls_per_day,
    }


def create(
    url: str,
    name: str,
    zone: str,
    customers: int,
    *,
    concurrency: int = 100,
    max_calls_per_day: int | None = None,
) -> uuid.UUID:
    """A draft campaign with ``customers`` enrolled, all callable now."""
    with transaction(url) as session:
        account = get_or_create_account(session, "bench")
        campaign = create_campaign(
            session,
            account,
            CampaignSpec.model_validate(spec(name, zone, concurrency, max_calls_per_day)),
            ALL_DAY,
        )
        if customers:
            enrol(session, account.id, campaign.id, 1, customers, zone, prefix=name)
        return campaign.id


def enrol(
    session: Session,
    account_id: uuid.UUID,
    campaign_id: uuid.UUID,
    first: int,
    last: int,
    zone: str,
    *,
    prefix: str,
) -> None:
    """Customers first..last and their active enrollments: two set-based statements."""
    session.execute(
        text(
            """
            WITH c AS (
              INSERT INTO customers (id, account_id, customer_id, name, phone, timezone)
              SELECT gen_random_uuid(), :account, :prefix || '-' || g, 'Name' || g,
                     '+3906' || lpad((g * 10 + 1)::text, 9, '0'), :zone
              FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS g
              RETURNING id
            )
            INSERT INTO enrollments (id, campaign_id, customer_id)
            SELECT gen_random_uuid(), :campaign, id FROM c
            """
        ),
        {
            "account": account_id,
            "campaign": campaign_id,
            "prefix": prefix,
            "zone": zone,
            "first": first,
            "last": last,
        },
    )


def start(url: str, campaign_id: uuid.UUID, now: datetime) -> None:
    """draft -> running, with its campaign.started outbox event (relayed by beat)."""
    with transaction(url) as session:
        start_campaign(session, lock_campaign(session, campaign_id), now)


def pause(url: str, campaign_id: uuid.UUID, now: datetime | None = None) -> None:
    """running -> paused: scans stop claiming, calls in flight still finish."""
    with transaction(url) as session:
        pause_campaign(session, lock_campaign(session, campaign_id), now or datetime.now(UTC))


def simulation_profile(call_seconds: float, seed: int = 1) -> dict[str, Any]:
    """Calls that ring for ``call_seconds`` and end; no faults, no transient errors.

    Every call but a failed one (which never rings) yields two provider events,
    ringing then final, as real calls do: with a ring of 0 s the simulator would fold
    the ringing event into the final one (same instant, same event id) and the bench
    would do half the result work. ``busy_rate`` is 0 because the busy tone is fixed
    at 1-4 s (``_BUSY_TONE_SECONDS``) and would hold concurrency slots regardless.
    """
    return {
        "seed": seed,
        "busy_rate": 0.0,
        "ringing_after_seconds": [0, 0],
        "ring_seconds": [call_seconds, call_seconds],
        "answered_seconds": [0, 0],
        "voicemail_seconds": [0, 0],
        "transient_error_rate": 0.0,
        "duplicate_event_rate": 0.0,
        "reorder_rate": 0.0,
    }
