"""Retell flavour: create, get and list phone calls, and Retell's signed webhooks.

Shapes as ``dialer.providers.retell`` sends and reads them (its docstring cites the
pages): ``POST /v2/create-phone-call`` (``from_number``, ``to_number``,
``override_agent_id``, ``retell_llm_dynamic_variables``, ``metadata``,
``idempotency_key``, ``agent_override``), ``GET /v2/get-call/{id}`` and
``POST /v3/list-calls`` filtered on ``filter_criteria.metadata``. Retell keeps the
``idempotency_key``: a repeat answers the first call and places none.

A call is ``registered``, ``ongoing`` once picked up, then ``ended`` (answered:
``user_hangup``/``agent_hangup``; a machine: ``voicemail_reached`` with
``call_analysis.in_voicemail``) or ``not_connected`` (``dial_no_answer``,
``dial_busy``, ``dial_failed``). Webhooks go to ``agent_override.agent.webhook_url``
(else the sandbox's default, the agent's webhook in the console): ``call_started``
at pick-up, ``call_ended`` at the end, ``call_analyzed`` with ``call_analysis``
(summary, ``user_sentiment``, ``call_successful``, ``custom_analysis_data`` under
seed 000's names) after it, signed ``X-Retell-Signature`` with the API key (wall
clock). Times (``start_timestamp``, ``end_timestamp``) are on the sandbox's clock.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers import retell
from dialer.providers.base import PlaceCallRequest
from dialer.providers.simulation import is_unreachable_number
from dialer.providers.voice_adapter import E164_PATTERN
from dialer.sandbox import calls
from dialer.sandbox.calls import Ending
from dialer.sandbox.engine import NewCall, place
from dialer.sandbox.flavor import Credentials, Flavor, Webhook, provider_options
from dialer.sandbox.ledger import StoredCall
from dialer.sandbox.state import ApiError, State, require_api_key
from dialer.settings import Settings

MAX_LIST_LIMIT: Final = 1000
_NOT_CONNECTED: Final = {
    Ending.NO_ANSWER: "dial_no_answer",
    Ending.BUSY: "dial_busy",
    Ending.FAILED: "dial_failed",
}

router = APIRouter(tags=["voice (Retell)"], dependencies=[Depends(require_api_key)])


class LlmOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")
    begin_message: str | None = None


class VoicemailAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["static_text", "prompt", "hangup", "bridge_transfer"]
    text: str | None = Field(default=None, max_length=5000)


class VoicemailOption(BaseModel):
    """Retell's ``voicemail_option``: what the agent does when detection hears one."""

    model_config = ConfigDict(extra="forbid")
    action: VoicemailAction


class AgentSettingsOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhook_url: str | None = Field(default=None, max_length=2000)
    voicemail_option: VoicemailOption | None = None


class AgentOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retell_llm: LlmOverride | None = None
    agent: AgentSettingsOverride | None = None


class CallCreate(BaseModel):
    """``POST /v2/create-phone-call``; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    from_number: str
    to_number: str
    override_agent_id: str | None = None
    retell_llm_dynamic_variables: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=200)
    agent_override: AgentOverride | None = None


class MetadataFilter(BaseModel):
    key: str
    type: Literal["string"] = "string"
    op: Literal["eq"] = "eq"
    value: str


class FilterCriteria(BaseModel):
    metadata: list[MetadataFilter] = Field(default_factory=list, max_length=20)
    agent_id: list[str] = Field(default_factory=list, max_length=100)


class ListCalls(BaseModel):
    filter_criteria: FilterCriteria = Field(default_factory=FilterCriteria)
    limit: int = Field(default=50, ge=1, le=MAX_LIST_LIMIT)


@router.post("/v2/create-phone-call", status_code=201)
async def create_call(body: CallCreate, state: State) -> dict[str, Any]:
    for field, number in (("to_number", body.to_number), ("from_number", body.from_number)):
        if not E164_PATTERN.fullmatch(number):
            raise ApiError(400, "bad_request", f"{field} must be an E.164 number")
    if is_unreachable_number(body.to_number):
        raise ApiError(400, "bad_request", "to_number is not a reachable E.164 number")
    webhook = body.agent_override.agent if body.agent_override else None
    request = PlaceCallRequest(
        idempotency_key=body.idempotency_key or f"none:{uuid.uuid4()}",
        agent_id=body.override_agent_id or "agent_sandbox",
        to=body.to_number,
        from_number=body.from_number,
        context=dict(body.retell_llm_dynamic_variables),
        metadata={str(k): str(v) for k, v in body.metadata.items()},
    )
    extra = {"metadata": body.metadata, "variables": body.retell_llm_dynamic_variables}
    url = webhook.webhook_url if webhook else None
    new = NewCall(f"call_{uuid.uuid4().hex}", request, url, extra=extra)
    stored = await place(state, new, webhooks_of, once_per_key=True)
    return call_object(stored, calls.created_at(stored.plan))


@router.get("/v2/get-call/{call_id}")
async def read_call(call_id: str, state: State) -> dict[str, Any]:
    stored = state.ledger.get(call_id)
    if stored is None:
        raise ApiError(404, "not_found", f"call {call_id} not found")
    return call_object(stored, state.clock())


@router.post("/v3/list-calls")
async def list_calls(body: ListCalls, state: State) -> dict[str, Any]:
    """Newest first, every metadata filter matched exactly."""
    wanted, agents = body.filter_criteria.metadata, set(body.filter_criteria.agent_id)
    now, items = state.clock(), []
    for stored in state.ledger.calls():
        meta = stored.extra.get("metadata", {})
        if agents and stored.plan.final.agent_id not in agents:
            continue
        if all(str(meta.get(item.key)) == item.value for item in wanted):
            items.append(call_object(stored, now))
        if len(items) >= body.limit:
            break
    return {"items": items, "has_more": False}


def call_object(stored: StoredCall, now: datetime) -> dict[str, Any]:
    """The call as ``GET /v2/get-call`` shows it at ``now`` (sandbox time)."""
    plan, record = stored.plan, stored.plan.record_at(now)
    call: dict[str, Any] = {
        "call_type": "phone_call",
        "call_id": plan.final.id,
        "agent_id": plan.final.agent_id,
        "call_status": "registered",
        "from_number": plan.final.from_number,
        "to_number": plan.final.to,
        "direction": "outbound",
        "metadata": stored.extra.get("metadata", {}),
        "retell_llm_dynamic_variables": stored.extra.get("variables", {}),
    }
    if record.status == ProviderCallStatus.IN_PROGRESS and plan.connected_at is not None:
        call.update(call_status="ongoing", start_timestamp=calls.unix_ms(plan.connected_at))
    if calls.is_over(record):
        call.update(_ended_fields(stored, now))
    return call


def _ended_fields(stored: StoredCall, now: datetime) -> dict[str, Any]:
    plan, final = stored.plan, stored.plan.final
    ended, end = calls.ended_at(plan), calls.ending(plan)
    started = plan.connected_at or calls.created_at(plan)
    fields: dict[str, Any] = {
        "call_status": "ended" if plan.connected_at is not None else "not_connected",
        "disconnection_reason": _reason(stored),
        "start_timestamp": calls.unix_ms(started),
        "end_timestamp": calls.unix_ms(ended),
        "duration_ms": int((ended - started).total_seconds() * 1000),
        "call_cost": {
            "product_costs": [],
            "combined_cost": (final.cost_millicents or 0) / 1000,  # cents
            "total_duration_seconds": final.billable_seconds or 0,
        },
    }
    if end in (Ending.ANSWERED, Ending.VOICEMAIL) and now >= ended + calls.ANALYSIS_DELAY:
        fields["call_analysis"] = _analysis(stored)
    return fields


def _reason(stored: StoredCall) -> str:
    end = calls.ending(stored.plan)
    if end is Ending.ANSWERED:
        return (
            "agent_hangup" if stored.plan.final.hangup_reason == "agent_hangup" else "user_hangup"
        )
    if end is Ending.VOICEMAIL:
        return "voicemail_reached"
    return _NOT_CONNECTED[end]


def _analysis(stored: StoredCall) -> dict[str, Any]:
    analysis = stored.plan.final.analysis
    if analysis is None:  # a machine picked up: nothing was said to evaluate
        return {"call_summary": "Reached voicemail.", "in_voicemail": True}
    return {
        "call_summary": analysis.transcript_summary,
        "in_voicemail": False,
        "user_sentiment": (analysis.sentiment or "unknown").capitalize(),
        "call_successful": analysis.call_successful == "success",
        "custom_analysis_data": calls.seed_extraction(analysis),
    }


def webhooks_of(stored: StoredCall) -> list[Webhook]:
    """call_started at pick-up, call_ended at the end, call_analyzed after it."""
    plan, ended = stored.plan, calls.ended_at(stored.plan)
    moments: list[tuple[datetime, str]] = [(ended, "call_ended")]
    if plan.connected_at is not None:
        moments += [
            (plan.connected_at, "call_started"),
            (ended + calls.ANALYSIS_DELAY, "call_analyzed"),
        ]
    return [
        Webhook(when, calls.json_bytes({"event": event, "call": call_object(stored, when)}))
        for when, event in moments
    ]


def _credentials(settings: Settings) -> Credentials:
    del settings
    options = provider_options(retell.PROVIDER_NAME, retell.Settings)
    return Credentials(options.api_key.get_secret_value(), options.signing_key())


FLAVOR = Flavor(
    name="retell",
    title="Retell",
    router=router,
    sign=lambda secret, _url, raw, now: retell.sign(raw, secret, now),
    credentials=_credentials,
    webhook_path=retell.WEBHOOK_PATH,
    error_body=lambda error: {"status": "error", "message": error.message},
)
