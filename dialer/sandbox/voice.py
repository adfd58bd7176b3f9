"""Seed 004 voice API: ``POST /v1/calls`` and ``GET /v1/calls/{id}``, played out over time.

A call's whole life is drawn at placement by the simulated provider's plans (same
seed, same key: same outcome), in the sandbox's simulated time; its ringing and
final events are then posted as signed webhooks when they fall due, scaled to real
time by ``time_scale``. ``GET`` answers the record as of the sandbox's now.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from dialer.providers.base import PlaceCallRequest
from dialer.providers.events import call_record_to_payload
from dialer.providers.http_voice import E164_PATTERN, IDEMPOTENCY_HEADER
from dialer.providers.simulation import (
    EventFaults,
    call_deliveries,
    draw_call_plan,
    is_unreachable_number,
)
from dialer.sandbox.config import FaultConfig, SandboxConfig
from dialer.sandbox.faults import RequestFault
from dialer.sandbox.ledger import StoredCall
from dialer.sandbox.state import ApiError, SandboxState, State, require_api_key

# A duplicate delivery follows the original by this much simulated time.
DUPLICATE_DELAY_SECONDS: Final = 1.0

router = APIRouter(tags=["voice (seed 004)"], dependencies=[Depends(require_api_key)])


class CallCreate(BaseModel):
    """POST /v1/calls body (seed 004). Unknown fields are refused, to catch a client's typo."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1)
    to: str
    from_number: str | None = None
    instructions: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    webhook_url: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


@router.post("/v1/calls", status_code=201)
async def create_call(
    body: CallCreate,
    state: State,
    idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER)] = None,
) -> dict[str, Any]:
    """Place a call once per Idempotency-Key; a repeat answers the first call, places none."""
    key = _require_idempotency_key(idempotency_key)
    state.ledger.note_request(key)
    from_number = _validated_from_number(body, state.config)
    faults = state.faults
    fault = state.dice.request_fault(faults)
    await _fail_before_creating(fault, faults)
    fingerprint = _fingerprint(body)
    stored, created = state.ledger.create_once(
        key, lambda: _new_call(state, key, body, from_number, fingerprint)
    )
    if stored.fingerprint != fingerprint:
        raise ApiError(409, "idempotency_key_reused", f"{key!r} was used for another request")
    if created:
        _schedule_webhooks(state, stored)
    if fault is RequestFault.LOST_RESPONSE:
        await asyncio.sleep(faults.hang_seconds)  # the client gave up; it must retry
    return call_record_to_payload(stored.plan.placement_record())


@router.get("/v1/calls/{call_id}")
async def read_call(call_id: str, state: State) -> dict[str, Any]:
    stored = state.ledger.get(call_id)
    if stored is None:
        raise ApiError(404, "not_found", f"call {call_id} not found")
    return call_record_to_payload(stored.plan.record_at(state.clock()))


def _require_idempotency_key(value: str | None) -> str:
    """Seed 004 makes the key optional; the sandbox insists, because the dialer always sends it."""
    if not value:
        raise ApiError(
            400,
            "validation_error",
            "Idempotency-Key header is required",
            fields=[(IDEMPOTENCY_HEADER, "required: the dialer sends the attempt's key")],
        )
    return value


def _validated_from_number(body: CallCreate, config: SandboxConfig) -> str | None:
    """The caller ID to use; refuses what seed 004 refuses, naming the field."""
    problems = []
    if not E164_PATTERN.fullmatch(body.to):
        problems.append(("to", "must be an E.164 number (+, country code, up to 15 digits)"))
    elif is_unreachable_number(body.to):
        problems.append(("to", "is not a reachable phone number"))
    numbers = config.agents.get(body.agent_id)
    if config.agents and numbers is None:
        problems.append(("agent_id", "no outbound agent with this id"))
    elif numbers is not None and body.from_number not in (None, *numbers):
        problems.append(("from_number", "must be another number attached to the same agent"))
    if problems:
        raise ApiError(422, "validation_error", "the call request is invalid", fields=problems)
    return body.from_number or (numbers[0] if numbers else None)


async def _fail_before_creating(fault: RequestFault | None, faults: FaultConfig) -> None:
    """429, 503 and a held-then-504 request all leave nothing behind."""
    if fault is RequestFault.TOO_MANY_REQUESTS:
        retry_after = _retry_after_header(faults.retry_after_seconds, faults.retry_after_format)
        raise ApiError(429, "rate_limited", "too many calls", headers={"Retry-After": retry_after})
    if fault is RequestFault.UNAVAILABLE:
        raise ApiError(503, "unavailable", "the provider is temporarily unavailable")
    if fault is RequestFault.TIMEOUT:
        await asyncio.sleep(faults.hang_seconds)
        raise ApiError(504, "timeout", "the call could not be placed in time")


def _retry_after_header(seconds: int, form: str) -> str:
    if form == "seconds":
        return str(seconds)
    # An HTTP date has whole-second precision: round up so the client never comes early.
    when = datetime.now(UTC).timestamp() + seconds + 1
    return format_datetime(datetime.fromtimestamp(int(when), UTC), usegmt=True)


def _fingerprint(body: CallCreate) -> str:
    canonical = json.dumps(body.model_dump(), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _new_call(
    state: SandboxState, key: str, body: CallCreate, from_number: str | None, fingerprint: str
) -> StoredCall:
    request = PlaceCallRequest(
        idempotency_key=key,
        agent_id=body.agent_id,
        to=body.to,
        from_number=from_number,
        instructions=body.instructions,
        context=body.context,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
    )
    plan = draw_call_plan(state.profile, request, f"call_{uuid.uuid4().hex}", state.clock())
    webhook_url = body.webhook_url or state.config.default_webhook_url
    return StoredCall(key, plan, fingerprint, webhook_url)


def _schedule_webhooks(state: SandboxState, stored: StoredCall) -> None:
    """Hand every due event to the sender, with the faults drawn now."""
    if stored.webhook_url is None:
        return
    faults, dice = state.faults, state.dice
    for delivery in call_deliveries(stored.plan, _draw_event_faults(state)):
        if dice.chance(faults.drop_webhook_rate):
            state.ledger.count_webhook("dropped")
            continue
        plan_delay = (delivery.due - state.clock()).total_seconds() / state.config.time_scale
        delay = max(0.0, plan_delay) + dice.uniform(*faults.webhook_delay_seconds)
        state.webhooks.schedule(stored.webhook_url, delivery.body, delay)


def _draw_event_faults(state: SandboxState) -> EventFaults:
    faults, dice = state.faults, state.dice
    return EventFaults(
        duplicate=dice.chance(faults.duplicate_webhook_rate),
        duplicate_delay_seconds=DUPLICATE_DELAY_SECONDS,
        reorder=dice.chance(faults.reorder_webhook_rate),
    )
