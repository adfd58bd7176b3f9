"""Seed 004 flavour: ``POST /v1/calls`` and ``GET /v1/calls/{id}``, played out over time.

A call's whole life is drawn at placement by the simulated provider's plans (same
seed, same key: same outcome), in the sandbox's simulated time; its ringing and
final events are then posted as webhooks signed with the project's shared-secret
scheme (``dialer.providers.signing``) when they fall due, scaled to real time by
``time_scale``. ``GET`` answers the record as of the sandbox's now. The key is an
``Idempotency-Key`` header, honoured: a repeat answers the first call, places none.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from dialer.providers.base import PlaceCallRequest
from dialer.providers.catalog import HTTP_CALLS
from dialer.providers.events import call_record_to_payload
from dialer.providers.http_voice import E164_PATTERN, IDEMPOTENCY_HEADER
from dialer.providers.signing import sign_headers
from dialer.providers.simulation import EventFaults, call_deliveries, is_unreachable_number
from dialer.sandbox.config import SandboxConfig
from dialer.sandbox.engine import NewCall, place
from dialer.sandbox.flavor import Credentials, Flavor, Webhook
from dialer.sandbox.ledger import StoredCall
from dialer.sandbox.state import ApiError, State, require_api_key
from dialer.settings import Settings

router = APIRouter(tags=["voice (seed 004)"], dependencies=[Depends(require_api_key)])
_NO_FAULTS = EventFaults(duplicate=False, duplicate_delay_seconds=0.0, reorder=False)


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
    from_number = _validated_from_number(body, state.config)
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
    new = NewCall(f"call_{uuid.uuid4().hex}", request, body.webhook_url, _fingerprint(body))
    stored = await place(state, new, webhooks_of, once_per_key=True)
    return call_record_to_payload(stored.plan.placement_record())


@router.get("/v1/calls/{call_id}")
async def read_call(call_id: str, state: State) -> dict[str, Any]:
    stored = state.ledger.get(call_id)
    if stored is None:
        raise ApiError(404, "not_found", f"call {call_id} not found")
    return call_record_to_payload(stored.plan.record_at(state.clock()))


def webhooks_of(stored: StoredCall) -> list[Webhook]:
    """The ringing event at ringing time and the final one at the end (seed 004's pair)."""
    return [
        Webhook(delivery.due, delivery.body.encode())
        for delivery in call_deliveries(stored.plan, _NO_FAULTS)
    ]


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


def _fingerprint(body: CallCreate) -> str:
    canonical = json.dumps(body.model_dump(), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _credentials(settings: Settings) -> Credentials:
    return Credentials(
        settings.provider_api_key.get_secret_value(), settings.webhook_secret.get_secret_value()
    )


FLAVOR = Flavor(
    name="seed004",
    title="seed 004",
    router=router,
    sign=lambda secret, _url, raw, now: sign_headers(secret, int(now), raw),
    credentials=_credentials,
    webhook_path=HTTP_CALLS.path,
)
