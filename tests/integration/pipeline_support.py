"""Shared set-up for pipeline tests: a campaign with customers, providers, a driver."""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from dialer.customers_csv import parse_customers
from dialer.policies.window import LegalBound
from dialer.providers.base import CallRecord, Gate, NotSent, PlaceCallRequest, Placement
from dialer.providers.simulation import (
    SimulatedVoiceProvider,
    SimulationProfile,
    build_simulated_providers,
    in_memory_providers,
)
from dialer.schemas import CampaignSpec
from dialer.services import reports
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign
from dialer.services.imports import import_customers
from dialer.services.lifecycle import lock_campaign, start_campaign
from models import CallAttempt, Campaign, Customer, Enrollment, Message, RotationCursor
from models.session import transaction
from scheduler import ticks
from scheduler.driver import InProcessPipeline, ManualClock

# Monday 2026-11-23 06:00 UTC: before any window opens in Europe, night in the Americas.
MONDAY_6_UTC = datetime(2026, 11, 23, 6, tzinfo=UTC)
# Monday 08:00 UTC is 09:00 in Rome: the default window (09:00-19:00 local) just opened.
MONDAY_8_UTC = datetime(2026, 11, 23, 8, tzinfo=UTC)
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


def rome_csv(count: int, *extra: str | None) -> str:
    return customers_csv([rome_phone(n) for n in range(count)] + list(extra))


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


def pin_enrollment_ids(url: str, campaign_id: uuid.UUID, salt: str = "") -> None:
    """Give a campaign's enrollments ids derived from their customers' ids, before start.

    The simulator draws a call's outcome from its idempotency key, and the key holds
    the enrollment id, a random UUID: a test that needs some outcome to occur at least
    once would then pass only most of the time. Pinned ids make the draws the same on
    every run. Call before the campaign starts (nothing refers to the rows yet).
    """
    with transaction(url) as session:
        rows = session.execute(
            select(Enrollment.id, Customer.customer_id)
            .join(Customer, Customer.id == Enrollment.customer_id)
            .where(Enrollment.campaign_id == campaign_id)
        ).all()
        for enrollment_id, customer_id in rows:
            pinned = uuid.uuid5(uuid.NAMESPACE_URL, f"enrollment:{salt}:{customer_id}")
            session.execute(
                update(Enrollment).where(Enrollment.id == enrollment_id).values(id=pinned)
            )


def start(url: str, campaign_id: uuid.UUID, now: datetime) -> None:
    with transaction(url) as session:
        start_campaign(session, lock_campaign(session, campaign_id), now)


def make_driver(
    url: str,
    redis_url: str | None,
    profile: dict[str, Any] | None = None,
    now: datetime = MONDAY_6_UTC,
) -> InProcessPipeline:
    """The pipeline on a manual clock; the simulator's state in Redis, or in memory (None)."""
    clock = ManualClock(now)
    sim = SimulationProfile.from_mapping({"seed": 7, **(profile or {})})
    if redis_url is None:
        voice, messages = in_memory_providers(clock, sim)
    else:
        voice, messages = build_simulated_providers(
            redis_url, clock, sim, namespace=uuid.uuid4().hex
        )
    return InProcessPipeline(
        uow=uow_for(url), voice=voice, messages=messages, clock=clock, legal=LEGAL
    )


def campaign_status(url: str, campaign_id: uuid.UUID) -> str:
    with transaction(url) as session:
        return session.get_one(Campaign, campaign_id).status


def calls_outside_window(url: str, campaign_id: uuid.UUID) -> list[uuid.UUID]:
    """Attempts handed to the provider while the contact's window was closed (must be none)."""
    with transaction(url) as session:
        return reports.calls_outside_window(session, campaign_id, LEGAL)


def rome_phone(n: int) -> str:
    """A valid Rome number; n = 0..4399 (their national parts never end in 0000)."""
    return f"+39061234{5600 + n:04d}"


def customers_csv(phones: Sequence[str | None]) -> str:
    """One customer per phone (None: a customer without a phone number)."""
    rows = "".join(f"c{i:03d},Name{i},{phone or ''},gold\n" for i, phone in enumerate(phones))
    return "customer_id,name,phone,plan\n" + rows


def run_to_done(
    driver: InProcessPipeline,
    url: str,
    campaign_id: uuid.UUID,
    step: timedelta,
    max_ticks: int = 500,
) -> int:
    return driver.run_until(lambda: campaign_status(url, campaign_id) == "done", step, max_ticks)


def relay(driver: InProcessPipeline, republish_after: timedelta | None = None) -> int:
    """Only the outbox duty of a tick: create the first contacts of started campaigns."""

    def materialize(topic: str, payload: dict[str, Any]) -> None:
        ticks.materialize(
            driver.uow, topic, uuid.UUID(payload["campaign_id"]), driver.clock(), payload
        )

    return ticks.relay_outbox(driver.uow, materialize, driver.clock(), republish_after)


def attempts_of(url: str, campaign_id: uuid.UUID) -> list[CallAttempt]:
    """The campaign's attempts, detached, ordered by enrollment and attempt number."""
    with transaction(url) as session:
        return list(
            session.scalars(
                select(CallAttempt)
                .where(CallAttempt.campaign_id == campaign_id)
                .order_by(CallAttempt.enrollment_id, CallAttempt.attempt_no)
            )
        )


def enrollments_of(url: str, campaign_id: uuid.UUID) -> list[Enrollment]:
    with transaction(url) as session:
        return list(
            session.scalars(
                select(Enrollment)
                .where(Enrollment.campaign_id == campaign_id)
                .order_by(Enrollment.id)
            )
        )


def messages_of(url: str, campaign_id: uuid.UUID) -> list[Message]:
    with transaction(url) as session:
        return list(
            session.scalars(
                select(Message)
                .where(Message.campaign_id == campaign_id)
                .order_by(Message.enrollment_id, Message.created_at)
            )
        )


def by_enrollment(attempts: Sequence[CallAttempt]) -> dict[uuid.UUID, list[CallAttempt]]:
    out: dict[uuid.UUID, list[CallAttempt]] = {}
    for attempt in attempts:
        out.setdefault(attempt.enrollment_id, []).append(attempt)
    return out


def count_place_calls(voice: SimulatedVoiceProvider) -> Counter[str]:
    """Count every place_call request per idempotency key, transient refusals included."""
    requests: Counter[str] = Counter()
    place, place_many = voice.place_call, voice.place_calls

    def counting(request: PlaceCallRequest) -> CallRecord:
        requests[request.idempotency_key] += 1
        return place(request)

    def counting_many(
        batch: Sequence[PlaceCallRequest], gate: Gate | None = None
    ) -> list[Placement]:
        answers = place_many(batch, gate)
        requests.update(
            request.idempotency_key
            for request, answer in zip(batch, answers, strict=True)
            if not isinstance(answer, NotSent)  # held back by the gate: never sent
        )
        return answers

    voice.place_call = counting  # type: ignore[method-assign]
    voice.place_calls = counting_many  # type: ignore[method-assign]
    return requests


def reset_campaign(url: str, campaign_id: uuid.UUID) -> None:
    """Forget the run of the only campaign in a test database, keeping its enrollments' ids
    (so its idempotency keys): a second run on a fresh simulator namespace draws exactly
    the same call outcomes."""
    with transaction(url) as session:
        for table in ("call_attempts", "messages", "contact_events", "provider_events", "outbox"):
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(
            update(Enrollment)
            .where(Enrollment.campaign_id == campaign_id, Enrollment.state != "missing_contact")
            .values(
                state="active",
                calls_made=0,
                unanswered_calls=0,
                round_base=0,
                last_contact_at=None,
                closed_at=None,
                close_reason=None,
                goal_result=None,
            )
        )
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(status="draft", started_at=None, completed_at=None)
        )
        session.execute(delete(RotationCursor).where(RotationCursor.campaign_id == campaign_id))
