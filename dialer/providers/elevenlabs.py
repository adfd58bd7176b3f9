"""ElevenLabs Agents (Conversational AI): outbound calls, conversation lookups, webhooks.

Public API documentation this adapter is written from:

- outbound call: https://elevenlabs.io/docs/conversational-ai/api-reference/twilio/outbound-call
  (``POST /v1/convai/twilio/outbound-call``; ``agent_id``, ``agent_phone_number_id``,
  ``to_number``, ``conversation_initiation_client_data``: ``dynamic_variables``,
  ``user_id``, ``conversation_config_override.agent.first_message``) and its SIP trunk
  twin ``POST /v1/convai/sip-trunk/outbound-call``
- get / list conversations:
  https://elevenlabs.io/docs/conversational-ai/api-reference/conversations/get
  (``GET /v1/convai/conversations/{id}``: ``status``, ``metadata``, ``analysis``) and
  https://elevenlabs.io/docs/conversational-ai/api-reference/conversations/list
  (``GET /v1/convai/conversations?agent_id&user_id&call_start_after_unix``)
- post-call webhooks: https://elevenlabs.io/docs/conversational-ai/workflows/post-call-webhooks
  (``post_call_transcription``, ``call_initiation_failure`` with ``failure_reason``
  busy | no-answer | unknown; header ``ElevenLabs-Signature: t=<unix>,v0=<hex
  HMAC-SHA256 of "t.body">``, 30 minutes tolerance)

Idempotency: ElevenLabs honours no idempotency key. Our key is sent as the
conversation's ``user_id`` (and a dynamic variable), which the list endpoint filters
on, so a placement whose answer was lost is found again (``find_call``), or held as
``PlacementUncertain`` when it is not.

SDK: the official ``elevenlabs`` package is not used. Its ``construct_event`` reads
the wall clock (no injected clock to test staleness against), compares digests with
``!=`` and accepts timestamps from the future, and it would bring in requests and
websockets for one HMAC; the check below follows the documented scheme instead.

Rate limits: concurrent conversations are capped per plan and requests past the
plan's rate answer 429; ``calls_per_second`` feeds the fleet's limiter and every
429 slows the fleet down.

Status mapping: ``initiated`` -> initiated, ``in-progress``/``processing`` ->
in_progress (processing: the call is over, its analysis is not), ``done`` ->
completed (voicemail when the termination reason says voicemail), ``failed`` ->
failed; ``call_initiation_failure``: busy -> busy, no-answer -> no_answer, else failed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from dialer.clock import real_utcnow
from dialer.dependencies import Clock
from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers.base import (
    CallAnalysis,
    CallRecord,
    PermanentProviderError,
    PlaceCallRequest,
    ProviderEvent,
)
from dialer.providers.provider_http import ProviderHttp, default_refusal_code
from dialer.providers.provider_settings import HostedProviderSettings
from dialer.providers.ratelimit import CallRateLimiter
from dialer.providers.seen_once import SeenOnce
from dialer.providers.signing import SignatureError
from dialer.providers.voice_adapter import (
    ATTEMPT_ID_KEY,
    CAMPAIGN_ID_KEY,
    DEFAULT_LOOKUP_DELAYS_SECONDS,
    IDEMPOTENCY_METADATA_KEY,
    HostedVoiceAdapter,
    analysis_from,
    dollars_to_millicents,
    dynamic_variables,
    metadata_strings,
    opening_message,
    our_metadata,
    sentiment_label,
    success_text,
)
from dialer.providers.webhook_auth import (
    WebhookVerifier,
    bound_verifier,
    check_first_delivery,
    check_fresh,
    unix_seconds,
)

PROVIDER_NAME: Final = "elevenlabs"
WEBHOOK_PATH: Final = "/webhooks/calls/elevenlabs"
SIGNATURE_HEADER: Final = "ElevenLabs-Signature"
HONOURS_IDEMPOTENCY_KEY: Final = False
CALL_EVENT: Final = "call.status"
WEBHOOK_TOLERANCE_SECONDS: Final = 30 * 60.0  # the documented 30 minutes
_LIST_PAGE_SIZE: Final = 10
# Data collection items that carry seed 000 fields, when the agent defines them.
_SENTIMENT_ITEM: Final = "sentiment"

_STATUSES: Final[dict[str, ProviderCallStatus]] = {
    "initiated": ProviderCallStatus.INITIATED,
    "in-progress": ProviderCallStatus.IN_PROGRESS,
    "processing": ProviderCallStatus.IN_PROGRESS,
    "done": ProviderCallStatus.COMPLETED,
    "failed": ProviderCallStatus.FAILED,
}
_FAILURES: Final[dict[str, ProviderCallStatus]] = {
    "busy": ProviderCallStatus.BUSY,
    "no-answer": ProviderCallStatus.NO_ANSWER,
}


class Settings(HostedProviderSettings):
    """ElevenLabs account settings (environment: ``DIALER_ELEVENLABS_*``); no default secrets."""

    model_config = SettingsConfigDict(env_prefix="DIALER_ELEVENLABS_", extra="ignore")

    api_key: SecretStr = Field(description="ElevenLabs API key (xi-api-key header).")
    webhook_secret: SecretStr = Field(description="The post-call webhook's HMAC secret.")
    base_url: str = Field(default="https://api.elevenlabs.io", description="API base URL.")
    telephony: Literal["twilio", "sip-trunk"] = Field(
        default="twilio", description="How the agent's numbers are connected: twilio or sip-trunk."
    )
    phone_number_ids: dict[str, str] = Field(
        default_factory=dict,
        description="Caller IDs: E.164 number -> ElevenLabs agent_phone_number_id.",
    )
    default_phone_number_id: str | None = Field(
        default=None, description="agent_phone_number_id used when a call names no caller ID."
    )
    read_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Read timeout (outbound-call answers are slower)."
    )
    calls_per_second: float = Field(
        default=2.0, gt=0, description="Calls per second sent to ElevenLabs (the fleet's limiter)."
    )
    webhook_tolerance_seconds: float = Field(
        default=WEBHOOK_TOLERANCE_SECONDS,
        gt=0,
        description="Accepted age of a signed webhook (30 min).",
    )

    def phone_number_id(self, from_number: str | None) -> str:
        if from_number is None:
            if self.default_phone_number_id:
                return self.default_phone_number_id
            raise PermanentProviderError(
                "from_number: no caller ID and DIALER_ELEVENLABS_DEFAULT_PHONE_NUMBER_ID is"
                " not set",
                code="validation_error",
            )
        try:
            return self.phone_number_ids[from_number]
        except KeyError:
            raise PermanentProviderError(
                f"from_number: {from_number} has no agent_phone_number_id in"
                " DIALER_ELEVENLABS_PHONE_NUMBER_IDS",
                code="from_number_not_on_agent",
            ) from None


class ElevenLabsVoiceProvider(HostedVoiceAdapter):
    """ElevenLabs over httpx; a lost answer is found again by the conversation's user_id."""

    name = PROVIDER_NAME
    honours_idempotency_key = HONOURS_IDEMPOTENCY_KEY
    can_find_by_metadata = True

    def __init__(self, settings: Settings, http: ProviderHttp, **kwargs: Any) -> None:
        super().__init__(http, **kwargs)
        self._settings = settings

    def _send_placement(self, request: PlaceCallRequest) -> CallRecord:
        number_id = self._settings.phone_number_id(request.from_number)
        path = f"/v1/convai/{self._settings.telephony}/outbound-call"
        body = call_request_body(request, number_id)
        answer = self._http.json(self._http.send("POST", path, "place_call", json=body), path)
        return placed_record(answer, request)

    def get_call(self, call_id: str) -> CallRecord:
        path = f"/v1/convai/conversations/{quote(call_id, safe='')}"
        return conversation_record(self._http.json(self._http.send("GET", path, "get_call"), path))

    def find_call(self, request: PlaceCallRequest, sent_after: datetime) -> CallRecord | None:
        params: dict[str, str | int] = {
            "agent_id": request.agent_id,
            "user_id": request.idempotency_key,
            "call_start_after_unix": int(sent_after.timestamp()),
            "page_size": _LIST_PAGE_SIZE,
        }
        path = "/v1/convai/conversations"
        page = self._http.json(self._http.send("GET", path, "find_call", params=params), path)
        found = page.get("conversations") if isinstance(page, Mapping) else None
        if not isinstance(found, list) or not found:
            return None
        return self.get_call(str(found[0]["conversation_id"]))

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        events = events_from_payload(payload)
        if not events:
            raise ValueError(f"type: {payload.get('type')!r} carries no call status")
        return events[0]


def build(
    settings: Settings,
    *,
    limiter: CallRateLimiter | None = None,
    journal: SeenOnce | None = None,
    webhook_url: str | None = None,
    transport: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = real_utcnow,
    lookup_delays_seconds: tuple[float, ...] = DEFAULT_LOOKUP_DELAYS_SECONDS,
) -> ElevenLabsVoiceProvider:
    """The adapter for one ElevenLabs workspace (the registry's factory).

    ``webhook_url`` is accepted for a uniform factory but not sent: ElevenLabs posts
    its post-call webhooks to the URL set in the workspace's settings.
    """
    del webhook_url
    http = ProviderHttp(
        PROVIDER_NAME,
        settings.base_url,
        {"xi-api-key": settings.api_key.get_secret_value()},
        connect_timeout_seconds=settings.connect_timeout_seconds,
        read_timeout_seconds=settings.read_timeout_seconds,
        limiter=limiter,
        refusal_code=refusal_code,
        transport=transport,
        sleep=sleep,
        clock=clock,
    )
    return ElevenLabsVoiceProvider(
        settings,
        http,
        journal=journal,
        parallel_requests=settings.parallel_requests,
        lookup_delays_seconds=lookup_delays_seconds,
        sleep=sleep,
        clock=clock,
    )


# --------------------------------------------------------------------------- requests


def call_request_body(request: PlaceCallRequest, phone_number_id: str) -> dict[str, Any]:
    variables = {**dynamic_variables(request), **our_metadata(request)}
    client_data: dict[str, Any] = {
        "dynamic_variables": variables,
        "user_id": request.idempotency_key,  # what the conversation list filters on
    }
    greeting = opening_message(request)
    if greeting:
        client_data["conversation_config_override"] = {"agent": {"first_message": greeting}}
    return {
        "agent_id": request.agent_id,
        "agent_phone_number_id": phone_number_id,
        "to_number": request.to,
        "conversation_initiation_client_data": client_data,
    }


def refusal_code(status: int, body: Any, message: str) -> str:
    if "to_number" in message:
        return "invalid_number"
    return default_refusal_code(status, body, message)


def placed_record(answer: Any, request: PlaceCallRequest) -> CallRecord:
    """The outbound-call answer: a conversation id, or a refusal said in the body."""
    if not isinstance(answer, Mapping):
        raise PermanentProviderError("outbound-call: expected a JSON object", code="bad_response")
    conversation_id = answer.get("conversation_id")
    if not answer.get("success") or not isinstance(conversation_id, str):
        reason = str(answer.get("message") or "no reason given")[:300]
        raise PermanentProviderError(f"outbound-call refused: {reason}", code="provider_refused")
    return CallRecord(
        id=conversation_id,
        status=ProviderCallStatus.INITIATED.value,
        to=request.to,
        from_number=request.from_number,
        agent_id=request.agent_id,
        metadata=our_metadata(request),
    )


# --------------------------------------------------------------------------- answers


def map_status(status: str, termination_reason: str | None) -> tuple[ProviderCallStatus, bool]:
    """A conversation's status (and termination reason) as (our provider status, voicemail)."""
    try:
        ours = _STATUSES[status]
    except KeyError:
        raise ValueError(f"conversation: unknown status {status!r}") from None
    voicemail = (
        ours == ProviderCallStatus.COMPLETED and "voicemail" in (termination_reason or "").lower()
    )
    return ours, voicemail


def map_failure(failure_reason: str | None) -> ProviderCallStatus:
    """``call_initiation_failure``'s reason as our provider status."""
    return _FAILURES.get(failure_reason or "", ProviderCallStatus.FAILED)


def conversation_record(payload: Any) -> CallRecord:
    """A conversation (GET answer or post_call_transcription data) as our CallRecord."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("conversation_id"), str):
        raise ValueError("conversation: field 'conversation_id' is required")
    meta = _object(payload.get("metadata"))
    status, voicemail = map_status(str(payload.get("status")), meta.get("termination_reason"))
    started = _unix(meta.get("start_time_unix_secs"))
    duration = meta.get("call_duration_secs")
    phone = _object(meta.get("phone_call"))
    analysis = _object(payload.get("analysis"))
    extraction = _data_collection(analysis)
    client = _object(payload.get("conversation_initiation_client_data"))
    return CallRecord(
        id=payload["conversation_id"],
        status=status.value,
        to=str(phone.get("external_number") or ""),
        from_number=phone.get("agent_number"),
        agent_id=payload.get("agent_id"),
        created_at=started,
        answered_at=started if status == ProviderCallStatus.COMPLETED else None,
        ended_at=_ended(started, duration),
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        cost_millicents=dollars_to_millicents(meta["cost_fiat"])
        if meta.get("cost_fiat") is not None
        else None,
        extraction=extraction or None,
        extraction_status="completed" if extraction else None,
        hangup_reason=meta.get("termination_reason"),
        voicemail=voicemail,
        metadata=_our_keys(_object(client.get("dynamic_variables"))),
        analysis=_analysis(analysis, extraction) if analysis else None,
    )


def _analysis(analysis: Mapping[str, Any], extraction: Mapping[str, Any]) -> CallAnalysis:
    score = analysis.get("call_success_score")
    return analysis_from(
        extraction,
        summary_title=analysis.get("call_summary_title"),
        transcript_summary=analysis.get("transcript_summary"),
        call_successful=success_text(analysis.get("call_successful")),
        goal_score=float(score) if isinstance(score, int | float) else None,
        sentiment=sentiment_label(extraction.get(_SENTIMENT_ITEM)),
    )


def _data_collection(analysis: Mapping[str, Any]) -> dict[str, Any]:
    """Data collection results as the custom extraction: {item: value}."""
    results = _object(analysis.get("data_collection_results"))
    return {name: _object(item).get("value") for name, item in results.items()}


def _our_keys(variables: Mapping[str, Any]) -> dict[str, str]:
    """Our metadata back from the dynamic variables (the contact's fields stay out)."""
    names = (ATTEMPT_ID_KEY, CAMPAIGN_ID_KEY, IDEMPOTENCY_METADATA_KEY)
    return metadata_strings({name: variables[name] for name in names if name in variables})


def _object(raw: Any) -> Mapping[str, Any]:
    return raw if isinstance(raw, Mapping) else {}


def _unix(raw: Any) -> datetime | None:
    return datetime.fromtimestamp(raw, tz=UTC) if isinstance(raw, int | float) else None


def _ended(started: datetime | None, duration: Any) -> datetime | None:
    if started is None or not isinstance(duration, int | float):
        return None
    return started + timedelta(seconds=duration)


# --------------------------------------------------------------------------- webhooks


def verifier(settings: Settings, replay_guard: SeenOnce | None = None) -> WebhookVerifier:
    """``verify_webhook`` with this account's secret and tolerance bound (the registry's)."""
    return bound_verifier(
        verify_webhook,
        settings.webhook_secret.get_secret_value(),
        tolerance_seconds=settings.webhook_tolerance_seconds,
        replay_guard=replay_guard,
    )


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    url: str,
    secret: str,
    now: float,
    *,
    tolerance_seconds: float = WEBHOOK_TOLERANCE_SECONDS,
    replay_guard: SeenOnce | None = None,
) -> None:
    """Check ``ElevenLabs-Signature`` (``t=<unix>,v0=<hex>``); raise SignatureError if not valid."""
    del url
    raw = headers.get(SIGNATURE_HEADER)
    if not raw:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    parts = dict(part.strip().split("=", 1) for part in raw.split(",") if "=" in part)
    stamp, offered = parts.get("t"), parts.get("v0")
    if not stamp or not offered:
        raise SignatureError("signature header lacks t= or v0=")
    check_fresh(unix_seconds(stamp), now, tolerance_seconds)
    if not hmac.compare_digest(signature_digest(secret, stamp, body), offered):
        raise SignatureError("signature does not match")
    check_first_delivery(replay_guard, PROVIDER_NAME, raw, tolerance_seconds)


def signature_digest(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, now: float) -> dict[str, str]:
    """The header ElevenLabs would send (the fake server and tests sign with this)."""
    stamp = str(int(now))
    return {SIGNATURE_HEADER: f"t={stamp},v0={signature_digest(secret, stamp, body)}"}


def parse_webhook(
    body: bytes, headers: Mapping[str, str], url: str | None = None
) -> list[ProviderEvent]:
    """A post-call webhook as our events; audio webhooks carry no status and give none."""
    del headers, url
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"body: not JSON ({exc})") from exc
    if not isinstance(payload, Mapping):
        raise ValueError("body: expected a JSON object")
    return events_from_payload(payload)


def events_from_payload(payload: Mapping[str, Any]) -> list[ProviderEvent]:
    kind = payload.get("type")
    data = payload.get("data")
    if not isinstance(kind, str) or not isinstance(data, Mapping):
        raise ValueError("webhook: fields 'type' and 'data' are required")
    stamp = payload.get("event_timestamp")
    if not isinstance(stamp, int | float):
        raise ValueError("webhook: field 'event_timestamp' is required")
    occurred = datetime.fromtimestamp(stamp, tz=UTC)
    if kind == "post_call_transcription":
        record = conversation_record(data)
    elif kind == "call_initiation_failure":
        record = _failure_record(data)
    else:
        return []  # post_call_audio and anything newer: not a call result
    event_id = f"{record.id}:{kind}"
    return [ProviderEvent(PROVIDER_NAME, event_id, CALL_EVENT, occurred, call=record)]


def _failure_record(data: Mapping[str, Any]) -> CallRecord:
    conversation_id = data.get("conversation_id")
    if not isinstance(conversation_id, str):
        raise ValueError("call_initiation_failure: field 'data.conversation_id' is required")
    reason = data.get("failure_reason")
    detail = _object(_object(data.get("metadata")).get("body"))
    return CallRecord(
        id=conversation_id,
        status=map_failure(reason).value,
        to=str(detail.get("To") or ""),
        from_number=detail.get("From"),
        agent_id=data.get("agent_id"),
        hangup_reason=reason if isinstance(reason, str) else None,
    )
