"""Placements whose answer was lost: held `uncertain`, never re-sent, settled by evidence.

A hosted provider without an idempotency key may have placed a call whose answer
never reached us (``voice_adapter.PlacementUncertain``). Failing the attempt would
let the retry plan call the person again, maybe a second time. Instead:

- dispatch holds the attempt `uncertain` (:func:`hold`): open, counted in flight
  against the campaign's concurrency, its enrollment active, never re-sent;
- a provider webhook naming our attempt id applies to it like to any placed call
  (the inbox matches by the id in the call's metadata), moving it on;
- reconciliation (:func:`resolve`, from the reaper) looks the call up by our
  metadata on a back-off (``policies.uncertain``): found, the provider call id is
  recorded and the call's status applied;
- at ``DIALER_UNCERTAIN_PLACEMENT_DEADLINE_SECONDS`` with no trace it ends failed.
  A retry follows (the retry plan, as for any failed call) only when the provider
  answered a lookup with "no such call": then the call was not placed. A provider
  that cannot be searched (Twilio) or whose lookups kept failing proves nothing, so
  the enrollment closes `failed` (a resume of the failed segment may call again).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.dependencies import UnitOfWork
from dialer.logging import get_logger
from dialer.policies.uncertain import next_uncertain_check, uncertain_expired
from dialer.policies.vocabulary import AttemptStatus, Outcome
from dialer.providers.base import (
    CallRecord,
    PermanentProviderError,
    PlaceCallRequest,
    TransientProviderError,
    VoiceProvider,
    call_finder,
)
from dialer.providers.voice_adapter import (
    ATTEMPT_ID_KEY,
    CAMPAIGN_ID_KEY,
    LOOKUP_CLOCK_SKEW,
    PlacementUncertain,
)
from dialer.services.reconcile import audit_record
from dialer.services.results import ResultBatch, finish_call
from models import Agent, CallAttempt, Campaign

log = get_logger("dialer.uncertain")
UNCERTAIN_CODE = "placement_uncertain"


class Resolution(StrEnum):
    """What one reconciliation pass did with a held placement (the reaper's counts)."""

    FOUND = "uncertain_found"
    STILL_HELD = "uncertain_held"
    EXPIRED = "uncertain_expired"
    SETTLED = "uncertain_settled"  # a webhook got there first


def hold(session: Session, attempt: CallAttempt, now: datetime, exc: PlacementUncertain) -> None:
    """Mark the (locked, `dispatching`) attempt `uncertain`; its dispatch time is held since."""
    attempt.status = AttemptStatus.UNCERTAIN
    attempt.provider_error_code = UNCERTAIN_CODE
    attempt.last_error = f"{UNCERTAIN_CODE}: {exc}"
    held_since = attempt.dispatched_at or now
    attempt.dispatched_at = held_since
    # The first look comes soon: the provider may just have been slow to list the call.
    attempt.next_check_at = now
    log.warning(
        "call_placement_uncertain",
        attempt_id=str(attempt.id),
        campaign_id=str(attempt.campaign_id),
        error=str(exc),
    )


@dataclass(frozen=True)
class _Held:
    request: PlaceCallRequest
    held_since: datetime


def resolve(
    uow: UnitOfWork,
    provider: VoiceProvider,
    attempt_id: uuid.UUID,
    now: datetime,
    deadline: timedelta,
) -> Resolution:
    """Look a held placement up once: record it when found, end it at the deadline."""
    with uow() as session:
        held = _read_held(session, attempt_id, now)
    if held is None:
        return Resolution.SETTLED
    found, said_none = _look_up(provider, held)
    with uow() as session:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        if attempt.status != AttemptStatus.UNCERTAIN:
            return Resolution.SETTLED
        if found is not None:
            _record_found(session, provider.name, attempt, found, now)
            return Resolution.FOUND
        if uncertain_expired(held.held_since, now, deadline):
            _expire(session, attempt, now, deadline, not_placed=said_none)
            return Resolution.EXPIRED
        attempt.next_check_at = next_uncertain_check(held.held_since, now, deadline)
    return Resolution.STILL_HELD


def _read_held(session: Session, attempt_id: uuid.UUID, now: datetime) -> _Held | None:
    row = session.execute(
        select(CallAttempt, Agent.provider_agent_id)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .join(Agent, Agent.id == Campaign.agent_id)
        .where(CallAttempt.id == attempt_id)
    ).one_or_none()
    if row is None or row[0].status != AttemptStatus.UNCERTAIN:
        return None
    attempt, agent_id = row
    request = PlaceCallRequest(
        idempotency_key=attempt.idempotency_key,
        agent_id=agent_id,
        to=attempt.external_to or "",
        from_number=attempt.external_from,
        metadata={ATTEMPT_ID_KEY: str(attempt.id), CAMPAIGN_ID_KEY: str(attempt.campaign_id)},
    )
    return _Held(request, attempt.dispatched_at or now)


def _look_up(provider: VoiceProvider, held: _Held) -> tuple[CallRecord | None, bool]:
    """The call if the provider has it; second: True only when it answered "none"."""
    finder = call_finder(provider)
    if finder is None:
        return None, False
    try:
        found = finder.find_call(held.request, held.held_since - LOOKUP_CLOCK_SKEW)
    except (TransientProviderError, PermanentProviderError) as exc:
        log.warning("uncertain_lookup_failed", provider=provider.name, error=str(exc))
        return None, False
    return found, found is None


def _record_found(
    session: Session, provider: str, attempt: CallAttempt, record: CallRecord, now: datetime
) -> None:
    audit_record(session, provider, record)
    attempt.conv_id = record.id
    attempt.next_check_at = None
    batch = ResultBatch(session, now)
    batch.lock([attempt.id])
    batch.apply(attempt, record)  # `uncertain` ranks below every status of a placed call
    batch.flush()
    log.info("uncertain_placement_found", attempt_id=str(attempt.id), call_id=record.id)


def _expire(
    session: Session, attempt: CallAttempt, now: datetime, deadline: timedelta, *, not_placed: bool
) -> None:
    hours = deadline.total_seconds() / 3600
    if not_placed:
        why = "the provider has no such call: not placed, the retry plan applies"
    else:
        why = "the provider cannot confirm it was not placed: no retry, enrollment failed"
    attempt.status, attempt.outcome, attempt.finished_at = (
        AttemptStatus.FAILED,
        Outcome.FAILED,
        now,
    )
    attempt.next_check_at = None
    attempt.last_error = (
        f"{UNCERTAIN_CODE}: no webhook and no trace at the provider {hours:g} h after "
        f"sending; {why}"
    )
    finish_call(session, attempt, now, permanent_failure=not not_placed)
    log.warning("uncertain_placement_expired", attempt_id=str(attempt.id), retry=not_placed)
