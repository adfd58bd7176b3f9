"""Vapi flavour: ``POST /call``, ``GET /call/{id}``, ``GET /call`` and Vapi's server messages.

Shapes as ``dialer.providers.vapi`` sends and reads them (its docstring cites the
pages): a create body with ``assistantId``, ``phoneNumberId``, ``customer.number``
and ``assistantOverrides`` (``variableValues``, ``metadata``, ``firstMessage``,
``voicemailMessage``, ``server.url``); call objects with ``status`` (queued, ringing,
in-progress, ended) and ``endedReason``; the list filtered by ``assistantId`` and ``createdAtGe``/
``createdAtLt``, newest first, ``limit`` at most. Vapi keeps no idempotency key:
every create request is a new call (a re-send shows on the ledger as a second one).

Server messages go to ``assistantOverrides.server.url`` (else the sandbox's default,
the console's server URL): ``status-update`` at ringing, pick-up and end, then the
``end-of-call-report`` with ``endedReason``, ``analysis`` (summary,
``successEvaluation``, ``structuredData`` under seed 000's names), ``cost`` and times.
Signed with Vapi's HMAC plan (``x-signature``/``x-timestamp``, wall clock).

Ended reasons: answered -> ``customer-ended-call``/``assistant-ended-call``,
voicemail (voicemail detection) -> ``voicemail``, no answer ->
``customer-did-not-answer``, busy -> ``customer-busy``, failed ->
``twilio-failed-to-connect-call``.

Times: ``createdAt`` is the real time of creation (the adapter filters the list on
its own real clock); ``startedAt``, ``endedAt`` and message timestamps are on the
sandbox's clock (the dialer's, when it runs fast), so results line up with it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers import vapi
from dialer.providers.base import PlaceCallRequest
from dialer.providers.simulation import is_unreachable_number
from dialer.providers.voice_adapter import E164_PATTERN, IDEMPOTENCY_METADATA_KEY
from dialer.sandbox import calls
from dialer.sandbox.calls import Ending
from dialer.sandbox.engine import NewCall, place
from dialer.sandbox.flavor import Credentials, Flavor, Webhook, provider_options
from dialer.sandbox.ledger import StoredCall
from dialer.sandbox.state import ApiError, State, require_api_key
from dialer.settings import Settings

MAX_LIST_LIMIT: Final = 1000
_STATUS: Final = {
    ProviderCallStatus.QUEUED: "queued",
    ProviderCallStatus.RINGING: "ringing",
    ProviderCallStatus.IN_PROGRESS: "in-progress",
}
_ENDED_REASON: Final = {
    Ending.VOICEMAIL: "voicemail",
    Ending.NO_ANSWER: "customer-did-not-answer",
    Ending.BUSY: "customer-busy",
    Ending.FAILED: "twilio-failed-to-connect-call",
}

router = APIRouter(tags=["voice (Vapi)"], dependencies=[Depends(require_api_key)])


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str


class Server(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000)


class Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variableValues: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    firstMessage: str | None = None
    voicemailMessage: str | None = Field(default=None, max_length=5000)  # left on voicemail
    server: Server | None = None


class CallCreate(BaseModel):
    """``POST /call``; unknown fields are refused, as Vapi does."""

    model_config = ConfigDict(extra="forbid")
    assistantId: str = Field(min_length=1)
    phoneNumberId: str = Field(min_length=1)
    customer: Customer
    assistantOverrides: Overrides = Field(default_factory=Overrides)


@router.post("/call", status_code=201)
async def create_call(body: CallCreate, state: State) -> dict[str, Any]:
    number = body.customer.number
    if not E164_PATTERN.fullmatch(number) or is_unreachable_number(number):
        raise ApiError(400, "bad_request", "customer.number must be a valid E.164 phone number")
    overrides = body.assistantOverrides
    key = overrides.metadata.get(IDEMPOTENCY_METADATA_KEY) or f"none:{uuid.uuid4()}"
    request = PlaceCallRequest(
        idempotency_key=key,
        agent_id=body.assistantId,
        to=number,
        context=dict(overrides.variableValues),
        metadata=dict(overrides.metadata),
    )
    extra = {
        "phoneNumberId": body.phoneNumberId,
        "assistantOverrides": overrides.model_dump(exclude_none=True),
    }
    webhook_url = overrides.server.url if overrides.server else None
    new = NewCall(str(uuid.uuid4()), request, webhook_url, extra=extra)
    stored = await place(state, new, webhooks_of, once_per_key=False)
    return call_object(stored, calls.created_at(stored.plan))


@router.get("/call/{call_id}")
async def read_call(call_id: str, state: State) -> dict[str, Any]:
    stored = state.ledger.get(call_id)
    if stored is None:
        raise ApiError(404, "not_found", f"Couldn't Get Call. Call {call_id} Not Found")
    return call_object(stored, state.clock())


@router.get("/call")
async def list_calls(
    state: State,
    assistantId: str | None = None,
    createdAtGe: datetime | None = None,
    createdAtLt: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=MAX_LIST_LIMIT),
) -> list[dict[str, Any]]:
    """Newest first; the created-at bounds compare with the real time of creation."""
    now, found = state.clock(), []
    for stored in state.ledger.calls():
        placed = stored.placed_at_wall
        if assistantId is not None and stored.plan.final.agent_id != assistantId:
            continue
        if placed is None or (createdAtGe is not None and placed < createdAtGe):
            continue
        if createdAtLt is not None and placed >= createdAtLt:
            continue
        found.append(call_object(stored, now))
        if len(found) >= limit:
            break
    return found


def call_object(stored: StoredCall, now: datetime) -> dict[str, Any]:
    """The call as ``GET /call/{id}`` shows it at ``now`` (sandbox time)."""
    plan, record = stored.plan, stored.plan.record_at(now)
    wall = calls.iso_z(stored.placed_at_wall or calls.created_at(plan))
    call: dict[str, Any] = {
        "id": plan.final.id,
        "orgId": "org-sandbox",
        "type": "outboundPhoneCall",
        "status": _STATUS.get(ProviderCallStatus(record.status), "ended"),
        "assistantId": plan.final.agent_id,
        "phoneNumberId": stored.extra.get("phoneNumberId"),
        "customer": {"number": plan.final.to},
        "assistantOverrides": stored.extra.get("assistantOverrides", {}),
        "createdAt": wall,
        "updatedAt": wall,
    }
    if plan.connected_at is not None and now >= plan.connected_at:
        call["startedAt"] = calls.iso_z(plan.connected_at)
    if calls.is_over(record):
        call.update(_ended_fields(stored))
    return call


def _ended_fields(stored: StoredCall) -> dict[str, Any]:
    final, ended = stored.plan.final, calls.ended_at(stored.plan)
    fields: dict[str, Any] = {
        "endedReason": _ended_reason(stored),
        "endedAt": calls.iso_z(ended),
        "durationSeconds": final.duration_seconds,
        "cost": calls.dollars(final.cost_millicents) or 0.0,
    }
    if final.analysis is not None:
        fields["analysis"] = {
            "summary": final.analysis.transcript_summary,
            "successEvaluation": "true" if final.analysis.call_successful == "success" else "false",
            "structuredData": {
                **calls.seed_extraction(final.analysis),
                "sentiment": final.analysis.sentiment,
            },
        }
    return fields


def _ended_reason(stored: StoredCall) -> str:
    end = calls.ending(stored.plan)
    if end is Ending.ANSWERED:
        hung_up = stored.plan.final.hangup_reason
        return "assistant-ended-call" if hung_up == "agent_hangup" else "customer-ended-call"
    return _ENDED_REASON[end]


def webhooks_of(stored: StoredCall) -> list[Webhook]:
    """status-update at ringing, pick-up and end; the end-of-call-report after the end."""
    plan = stored.plan
    ended = calls.ended_at(plan)
    moments = [(plan.final.ringing_at, "ringing"), (plan.connected_at, "in-progress")]
    hooks = [
        _message(stored, when, {"type": "status-update", "status": status})
        for when, status in moments
        if when is not None
    ]
    hooks.append(_message(stored, ended, {"type": "status-update", "status": "ended"}))
    report_at = ended + (calls.ANALYSIS_DELAY if plan.final.analysis else timedelta(0))
    report = {"type": "end-of-call-report", **_ended_fields(stored)}
    hooks.append(_message(stored, report_at, report))
    return hooks


def _message(stored: StoredCall, when: datetime, fields: dict[str, Any]) -> Webhook:
    call = call_object(stored, when)
    if fields.get("status") == "ended":
        fields = {**fields, "endedReason": _ended_reason(stored)}
    message = {**fields, "timestamp": calls.unix_ms(when), "call": call}
    return Webhook(when, calls.json_bytes({"message": message}))


def _credentials(settings: Settings) -> Credentials:
    del settings
    options = provider_options(vapi.PROVIDER_NAME, vapi.Settings)
    return Credentials(
        options.api_key.get_secret_value(), options.webhook_secret.get_secret_value()
    )


FLAVOR = Flavor(
    name="vapi",
    title="Vapi",
    router=router,
    sign=lambda secret, _url, raw, now: vapi.sign(raw, secret, now),
    credentials=_credentials,
    webhook_path=vapi.WEBHOOK_PATH,
    error_body=lambda error: {
        "message": error.message,
        "error": error.code,
        "statusCode": error.status,
    },
)
