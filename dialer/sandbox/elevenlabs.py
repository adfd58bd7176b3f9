"""ElevenLabs Agents flavour: outbound calls, conversations, and post-call webhooks.

Shapes as ``dialer.providers.elevenlabs`` sends and reads them (its docstring cites
the pages): ``POST /v1/convai/twilio/outbound-call`` (and the ``sip-trunk`` twin)
with ``agent_id``, ``agent_phone_number_id``, ``to_number`` and
``conversation_initiation_client_data`` (``dynamic_variables``, ``user_id``,
``conversation_config_override``), answered ``{success, message, conversation_id,
callSid}``; ``GET /v1/convai/conversations/{id}`` (``status`` initiated,
in-progress, processing, done, failed) and ``GET /v1/convai/conversations``
filtered by ``agent_id``, ``user_id`` and ``call_start_after_unix``. No idempotency
key: every create is a new conversation; our key is its ``user_id``.

Webhooks go to the workspace's post-call URL (the sandbox's default):
``post_call_transcription`` for a call that was picked up (``analysis``:
``call_successful``, ``transcript_summary``, ``call_summary_title``,
``call_success_score``, ``data_collection_results`` under seed 000's names; a
machine: ``termination_reason`` "Voicemail detected") and
``call_initiation_failure`` (``failure_reason`` busy, no-answer, unknown) for one
that was not. Signed ``ElevenLabs-Signature: t=<unix>,v0=<HMAC>`` (wall clock).
``event_timestamp`` and the conversation's times are on the sandbox's clock; the
list's ``call_start_after_unix`` compares with the real time of creation (the
adapter's own clock).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers import elevenlabs
from dialer.providers.base import PlaceCallRequest
from dialer.providers.simulation import is_unreachable_number
from dialer.providers.voice_adapter import E164_PATTERN
from dialer.sandbox import calls
from dialer.sandbox.calls import Ending
from dialer.sandbox.engine import NewCall, place
from dialer.sandbox.flavor import Credentials, Flavor, Webhook, provider_options
from dialer.sandbox.ledger import StoredCall
from dialer.sandbox.state import ApiError, State, same_secret
from dialer.settings import Settings

MAX_PAGE_SIZE: Final = 100
_FAILURE: Final = {Ending.BUSY: "busy", Ending.NO_ANSWER: "no-answer", Ending.FAILED: "unknown"}
_TWILIO_STATUS: Final = {
    Ending.BUSY: "busy",
    Ending.NO_ANSWER: "no-answer",
    Ending.FAILED: "failed",
}


def require_xi_api_key(
    state: State, xi_api_key: Annotated[str | None, Header(alias="xi-api-key")] = None
) -> None:
    if not xi_api_key or not same_secret(xi_api_key, state.config.api_key):
        raise ApiError(401, "invalid_api_key", "Invalid API key (xi-api-key)")


router = APIRouter(tags=["voice (ElevenLabs)"], dependencies=[Depends(require_xi_api_key)])


class AgentOverride(BaseModel):
    first_message: str | None = None


class ConfigOverride(BaseModel):
    agent: AgentOverride | None = None


class ClientData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dynamic_variables: dict[str, str | int | float | bool] = Field(default_factory=dict)
    user_id: str | None = Field(default=None, max_length=200)
    conversation_config_override: ConfigOverride | None = None


class OutboundCall(BaseModel):
    """``POST /v1/convai/{twilio|sip-trunk}/outbound-call``; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(min_length=1)
    agent_phone_number_id: str = Field(min_length=1)
    to_number: str
    conversation_initiation_client_data: ClientData = Field(default_factory=ClientData)


@router.post("/v1/convai/{telephony}/outbound-call")
async def outbound_call(
    telephony: Literal["twilio", "sip-trunk"], body: OutboundCall, state: State
) -> dict[str, Any]:
    if not E164_PATTERN.fullmatch(body.to_number) or is_unreachable_number(body.to_number):
        raise ApiError(422, "invalid_to_number", "to_number must be a valid E.164 number")
    client = body.conversation_initiation_client_data
    variables = {name: str(value) for name, value in client.dynamic_variables.items()}
    request = PlaceCallRequest(
        idempotency_key=client.user_id or f"none:{uuid.uuid4()}",
        agent_id=body.agent_id,
        to=body.to_number,
        context=variables,
    )
    extra = {
        "telephony": telephony,
        "phone_number_id": body.agent_phone_number_id,
        "client_data": client.model_dump(exclude_none=True),
        "call_sid": "CA" + secrets.token_hex(16),
    }
    conversation_id = "conv_" + uuid.uuid4().hex[:24]
    stored = await place(
        state, NewCall(conversation_id, request, None, extra=extra), webhooks_of, once_per_key=False
    )
    return {
        "success": True,
        "message": "Success",
        "conversation_id": stored.plan.final.id,
        "callSid": stored.extra["call_sid"],
    }


@router.get("/v1/convai/conversations/{conversation_id}")
async def read_conversation(conversation_id: str, state: State) -> dict[str, Any]:
    stored = state.ledger.get(conversation_id)
    if stored is None:
        raise ApiError(404, "conversation_not_found", f"conversation {conversation_id} not found")
    return conversation(stored, state.clock())


@router.get("/v1/convai/conversations")
async def list_conversations(
    state: State,
    agent_id: str | None = None,
    user_id: str | None = Query(default=None, max_length=200),
    call_start_after_unix: int | None = None,
    page_size: int = Query(default=30, ge=1, le=MAX_PAGE_SIZE),
) -> dict[str, Any]:
    """Newest first; ``call_start_after_unix`` compares with the real time of creation."""
    now, found = state.clock(), []
    for stored in state.ledger.calls():
        placed = stored.placed_at_wall
        if agent_id is not None and stored.plan.final.agent_id != agent_id:
            continue
        if user_id is not None and stored.idempotency_key != user_id:
            continue
        if call_start_after_unix is not None and (
            placed is None or placed.timestamp() < call_start_after_unix
        ):
            continue
        found.append(_summary(stored, now))
        if len(found) >= page_size:
            break
    return {"conversations": found, "has_more": False, "next_cursor": None}


def _summary(stored: StoredCall, now: datetime) -> dict[str, Any]:
    full = conversation(stored, now)
    placed = stored.placed_at_wall or calls.created_at(stored.plan)
    return {
        "agent_id": full["agent_id"],
        "conversation_id": full["conversation_id"],
        "start_time_unix_secs": int(placed.timestamp()),
        "call_duration_secs": full["metadata"].get("call_duration_secs", 0),
        "status": full["status"],
        "call_successful": full.get("analysis", {}).get("call_successful", "unknown"),
    }


def conversation(stored: StoredCall, now: datetime) -> dict[str, Any]:
    """The conversation as ``GET /v1/convai/conversations/{id}`` shows it at ``now``."""
    plan, record = stored.plan, stored.plan.record_at(now)
    ended, end = calls.ended_at(plan), calls.ending(plan)
    connected = plan.connected_at
    if not calls.is_over(record):
        status = "in-progress" if record.status == ProviderCallStatus.IN_PROGRESS else "initiated"
    elif connected is None:
        status = "failed"
    else:
        status = "done" if now >= ended + calls.ANALYSIS_DELAY else "processing"
    started = connected or calls.created_at(plan)
    meta: dict[str, Any] = {
        "start_time_unix_secs": int(started.timestamp()),
        "phone_call": {
            "direction": "outbound",
            "type": stored.extra.get("telephony", "twilio"),
            "agent_number": plan.final.from_number,
            "external_number": plan.final.to,
            "call_sid": stored.extra.get("call_sid"),
        },
    }
    body: dict[str, Any] = {
        "agent_id": plan.final.agent_id,
        "conversation_id": plan.final.id,
        "status": status,
        "user_id": stored.idempotency_key,
        "transcript": [],
        "metadata": meta,
        "conversation_initiation_client_data": stored.extra.get("client_data", {}),
    }
    if status in ("processing", "done", "failed"):
        seconds = int((ended - started).total_seconds())
        meta.update(
            call_duration_secs=seconds,
            cost=seconds * 10,  # credits
            cost_fiat=calls.dollars(plan.final.cost_millicents) or 0.0,
            termination_reason=_termination(end),
        )
    if status == "done":
        body["analysis"] = _analysis(stored)
    return body


def _termination(end: Ending) -> str:
    if end is Ending.VOICEMAIL:
        return "Voicemail detected"
    if end is Ending.ANSWERED:
        return "Call ended by remote party"
    return f"Call initiation failed: {_FAILURE[end]}"


def _analysis(stored: StoredCall) -> dict[str, Any]:
    analysis = stored.plan.final.analysis
    if analysis is None:
        return {
            "call_successful": "unknown",
            "transcript_summary": "The call reached a voicemail box.",
            "data_collection_results": {},
            "evaluation_criteria_results": {},
        }
    items = {**calls.seed_extraction(analysis), "sentiment": analysis.sentiment}
    return {
        "call_successful": analysis.call_successful or "unknown",
        "call_success_score": analysis.goal_score,
        "transcript_summary": analysis.transcript_summary,
        "call_summary_title": analysis.summary_title,
        "evaluation_criteria_results": {},
        "data_collection_results": {
            name: {"data_collection_id": name, "value": value, "rationale": ""}
            for name, value in items.items()
        },
    }


def webhooks_of(stored: StoredCall) -> list[Webhook]:
    """One post-call webhook: the transcription after the analysis, or the failure."""
    plan, ended = stored.plan, calls.ended_at(stored.plan)
    if plan.connected_at is not None:
        when = ended + calls.ANALYSIS_DELAY
        payload: dict[str, Any] = {
            "type": "post_call_transcription",
            "data": conversation(stored, when),
        }
    else:
        when = ended
        payload = {"type": "call_initiation_failure", "data": _failure(stored)}
    payload["event_timestamp"] = int(when.timestamp())
    return [Webhook(when, calls.json_bytes(payload))]


def _failure(stored: StoredCall) -> dict[str, Any]:
    final, end = stored.plan.final, calls.ending(stored.plan)
    return {
        "agent_id": final.agent_id,
        "conversation_id": final.id,
        "failure_reason": _FAILURE[end],
        "metadata": {
            "type": stored.extra.get("telephony", "twilio"),
            "body": {
                "CallSid": stored.extra.get("call_sid"),
                "CallStatus": _TWILIO_STATUS[end],
                "To": final.to,
                "From": final.from_number,
            },
        },
    }


def _credentials(settings: Settings) -> Credentials:
    del settings
    options = provider_options(elevenlabs.PROVIDER_NAME, elevenlabs.Settings)
    return Credentials(
        options.api_key.get_secret_value(), options.webhook_secret.get_secret_value()
    )


FLAVOR = Flavor(
    name="elevenlabs",
    title="ElevenLabs Agents",
    router=router,
    sign=lambda secret, _url, raw, now: elevenlabs.sign(raw, secret, now),
    credentials=_credentials,
    webhook_path=elevenlabs.WEBHOOK_PATH,
    error_body=lambda error: {"detail": {"status": error.code, "message": error.message}},
)
