"""Dispatch one claimed attempt: re-check under lock, place the call, record the answer.

Three short transactions around the provider request, so no row lock is held
while the network is slow: (1) lock and re-check, mark `dispatching`; (2) call the
provider with the attempt's idempotency key; (3) record what it said. A crash
between (1) and (3) leaves `dispatching`, which the reaper re-sends with the same
key: the provider returns the same call, never a second one.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dialer.policies.rotation import pick_caller_id
from dialer.policies.templates import render
from dialer.policies.vocabulary import RotationStrategy
from dialer.policies.window import LegalBound, is_open, next_opening
from dialer.policies.zones import contact_zones
from dialer.providers.base import (
    PermanentProviderError,
    PlaceCallRequest,
    TransientProviderError,
    VoiceProvider,
)
from dialer.services.campaigns import window_of
from dialer.services.results import apply_call_record, finish_call
from models import Agent, CallAttempt, Campaign, Customer, Enrollment, PhoneNumber

UnitOfWork = Callable[[], AbstractContextManager[Session]]
NEVER_OPENS_RETRY = timedelta(days=1)


class Verdict(StrEnum):
    PLACED = "placed"
    NOT_QUEUED = "not_queued"  # already handled (a duplicate delivery)
    DEFERRED = "deferred"  # back to pending: paused, window closed, cap reached
    CANCELED = "canceled"  # opted out meanwhile
    RETRY = "retry"  # transient provider error: try again later
    FAILED = "failed"  # permanent provider error or out of tries


@dataclass(frozen=True)
class DispatchReport:
    attempt_id: uuid.UUID
    verdict: Verdict
    detail: str = ""
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class DispatchLimits:
    legal: LegalBound
    max_tries: int


def dispatch_attempt(
    uow: UnitOfWork,
    provider: VoiceProvider,
    attempt_id: uuid.UUID,
    now: datetime,
    limits: DispatchLimits,
) -> DispatchReport:
    with uow() as session:
        prepared = _prepare(session, attempt_id, now, limits)
    if isinstance(prepared, DispatchReport):
        return prepared
    try:
        record = provider.place_call(prepared)
    except TransientProviderError as exc:
        return _transient(uow, attempt_id, now, limits, exc)
    except PermanentProviderError as exc:
        return _permanent(uow, attempt_id, now, exc)
    with uow() as session:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        attempt.conv_id = record.id
        if attempt.status == "dispatching":
            attempt.status = "in_progress"  # the provider has it; its events move it on
        apply_call_record(session, attempt, record, now)
    return DispatchReport(attempt_id, Verdict.PLACED, record.id)


def _prepare(
    session: Session, attempt_id: uuid.UUID, now: datetime, limits: DispatchLimits
) -> PlaceCallRequest | DispatchReport:
    row = session.execute(
        select(CallAttempt, Enrollment, Customer, Campaign)
        .join(Enrollment, Enrollment.id == CallAttempt.enrollment_id)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(CallAttempt.id == attempt_id)
        .with_for_update(of=CallAttempt)
    ).first()
    if row is None or row[0].status not in ("queued", "dispatching"):
        return DispatchReport(attempt_id, Verdict.NOT_QUEUED)
    attempt, enrollment, customer, campaign = row
    refusal = _recheck(session, attempt, enrollment, customer, campaign, now, limits)
    if refusal is not None:
        return refusal
    attempt.status = "dispatching"
    attempt.delivery_attempts += 1
    attempt.dispatched_at = now
    attempt.external_to = customer.phone
    attempt.external_from = _caller_id(session, campaign, attempt)
    return _request(session, attempt, customer, campaign)


def _recheck(
    session: Session,
    attempt: CallAttempt,
    enrollment: Enrollment,
    customer: Customer,
    campaign: Campaign,
    now: datetime,
    limits: DispatchLimits,
) -> DispatchReport | None:
    """GUIDE rule 5: campaign running, window open, not opted out, caps not exceeded."""
    if customer.opted_out or enrollment.state != "active":
        _cancel(
            attempt,
            now,
            "customer opted out" if customer.opted_out else f"enrollment {enrollment.state}",
        )
        return DispatchReport(attempt.id, Verdict.CANCELED, attempt.last_error or "")
    if campaign.status != "running":
        return _defer(attempt, now, f"campaign {campaign.status}")
    window = window_of(campaign, limits.legal)
    zones = contact_zones(customer.timezone, customer.phone, campaign.timezone)
    if not is_open(window, zones, now):
        return _defer(
            attempt, next_opening(window, zones, now) or now + NEVER_OPENS_RETRY, "window closed"
        )
    if attempt.status == "queued" and _in_flight(session, campaign.id) >= campaign.concurrency:
        return _defer(attempt, now, "concurrency reached")
    return None


def _defer(attempt: CallAttempt, until: datetime, why: str) -> DispatchReport:
    attempt.status = "pending"
    attempt.queued_at = None
    attempt.scheduled_at = until
    return DispatchReport(attempt.id, Verdict.DEFERRED, why)


def _cancel(attempt: CallAttempt, now: datetime, why: str) -> None:
    attempt.status = "canceled"
    attempt.outcome = "canceled"
    attempt.finished_at = now
    attempt.last_error = why


def _in_flight(session: Session, campaign_id: uuid.UUID) -> int:
    q = select(func.count()).where(
        CallAttempt.campaign_id == campaign_id,
        CallAttempt.status.in_(("dispatching", "in_progress")),
    )
    return session.scalar(q) or 0


def _caller_id(session: Session, campaign: Campaign, attempt: CallAttempt) -> str | None:
    numbers = dict(
        session.execute(
            select(PhoneNumber.id, PhoneNumber.e164).where(
                PhoneNumber.id.in_(campaign.phone_number_ids)
            )
        ).all()
    )
    ordered = [numbers[i] for i in campaign.phone_number_ids if i in numbers]
    if not ordered:
        return None
    strategy = RotationStrategy(campaign.phone_rotation_strategy)
    cursor = (
        _advance_cursor(session, campaign.id) if strategy is RotationStrategy.ROUND_ROBIN else 0
    )
    rng = random.Random(attempt.idempotency_key)  # a re-dispatch picks the same number
    return pick_caller_id(
        strategy, ordered, campaign_cursor=cursor, attempt_no=attempt.attempt_no, rng=rng
    ).number


def _advance_cursor(session: Session, campaign_id: uuid.UUID) -> int:
    """Atomic, without locking the campaign row for the rest of the transaction's reads."""
    return session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(rotation_cursor=Campaign.rotation_cursor + 1)
        .returning(Campaign.rotation_cursor - 1)
    ).scalar_one()


def _request(
    session: Session, attempt: CallAttempt, customer: Customer, campaign: Campaign
) -> PlaceCallRequest:
    agent = session.get_one(Agent, campaign.agent_id)
    values = template_values(customer, campaign, agent.name)
    context: dict[str, Any] = {
        "customer": values,
        "campaign": {"name": campaign.name, **campaign.variables},
    }
    if campaign.call_opening_message:
        context["opening_message"] = render(campaign.call_opening_message, values)
    return PlaceCallRequest(
        idempotency_key=attempt.idempotency_key,
        agent_id=agent.provider_agent_id,
        to=customer.phone or "",
        from_number=attempt.external_from,
        context=context,
        metadata={"attempt_id": str(attempt.id), "campaign_id": str(campaign.id)},
    )


def template_values(
    customer: Customer, campaign: Campaign, agent_name: str
) -> dict[str, str | None]:
    base = {
        "name": customer.name,
        "surname": customer.surname,
        "customer_id": customer.customer_id,
        "email": customer.email,
        "phone": customer.phone,
        "campaign_name": campaign.name,
        "agent_name": agent_name,
    }
    return {**campaign.variables, **(customer.fields or {}), **base}


def _transient(
    uow: UnitOfWork,
    attempt_id: uuid.UUID,
    now: datetime,
    limits: DispatchLimits,
    exc: TransientProviderError,
) -> DispatchReport:
    with uow() as session:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        attempt.last_error = f"transient: {exc}"
        if attempt.status != "dispatching":
            return DispatchReport(attempt_id, Verdict.NOT_QUEUED)
        if attempt.delivery_attempts >= limits.max_tries:
            _fail(
                session,
                attempt,
                now,
                f"gave up after {attempt.delivery_attempts} tries: {exc}",
                permanent=False,
            )
            return DispatchReport(attempt_id, Verdict.FAILED, str(exc))
        attempt.status = "queued"  # the task retries it; the reaper would too
        attempt.queued_at = now
    return DispatchReport(attempt_id, Verdict.RETRY, str(exc), exc.retry_after_seconds)


def _permanent(
    uow: UnitOfWork, attempt_id: uuid.UUID, now: datetime, exc: PermanentProviderError
) -> DispatchReport:
    with uow() as session:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        if attempt.status != "dispatching":
            return DispatchReport(attempt_id, Verdict.NOT_QUEUED)
        attempt.provider_error_code = exc.code
        _fail(session, attempt, now, f"{exc.code}: {exc}", permanent=exc.code == "invalid_number")
    return DispatchReport(attempt_id, Verdict.FAILED, str(exc))


def _fail(
    session: Session, attempt: CallAttempt, now: datetime, reason: str, *, permanent: bool
) -> None:
    attempt.status = "failed"
    attempt.outcome = "failed"
    attempt.finished_at = now
    attempt.last_error = reason
    finish_call(session, attempt, now, permanent_failure=permanent)
