"""Retell AI voice agents: outbound phone calls, call lookups and Retell's webhooks.

Public API documentation this adapter is written from:

- create a call: https://docs.retellai.com/api-references/create-phone-call
  (``POST /v2/create-phone-call``; ``from_number``, ``to_number``,
  ``override_agent_id``, ``retell_llm_dynamic_variables``, ``metadata``,
  ``agent_override.retell_llm.begin_message``, ``agent_override.agent.voicemail_option``
  (``{"action": {"type": "static_text", "text": ...}}`` or ``{"type": "hangup"}``: the
  campaign's voicemail policy, Retell's own detection acting on it), ``idempotency_key``)
- voicemail: https://docs.retellai.com/build/handle-voicemail
- get a call: https://docs.retellai.com/api-references/get-call (``GET /v2/get-call/{id}``)
- list calls: https://docs.retellai.com/api-references/list-calls
  (``POST /v3/list-calls`` with ``filter_criteria.metadata``)
- webhooks: https://docs.retellai.com/features/webhook-overview (``call_started``,
  ``call_ended``, ``call_analyzed``) and https://docs.retellai.com/features/secure-webhook
  (``X-Retell-Signature: v=<unix ms>,d=<hex HMAC-SHA256 of body + timestamp>``, keyed
  with the API key that carries the webhook badge)
- disconnection reasons: https://docs.retellai.com/reliability/debug-call-disconnect

Idempotency: Retell keeps a create request's ``idempotency_key`` for one hour, so a
retry within the hour returns the same call. Beyond that the placement journal and
the metadata lookup (``find_call``) keep a re-send from calling twice.

SDK: signatures are checked with the official ``retell-sdk`` (its
``webhook_auth.symmetric`` verifier, given our clock); calls go through httpx so
timeouts, the rate limiter and lost-answer handling are ours.

Rate limits: Retell limits concurrent calls per plan (20 by default) and answers
429 when requests come too fast; ``calls_per_second`` feeds the fleet's limiter and
every 429 slows the fleet down (``provider_http``).

Status mapping (``call_status`` refined by ``disconnection_reason``):

==========================================  =====================================
Retell                                      ours (ProviderCallStatus, voicemail)
==========================================  =====================================
registered                                  queued
ongoing                                     in_progress
ended, voicemail_reached / ivr_reached      completed, voicemail
  or call_analysis.in_voicemail
ended (any other reason)                    completed (answered)
not_connected / ended, dial_no_answer       no_answer
not_connected / ended, dial_busy,           busy
  user_declined
not_connected, manual_stopped               canceled
not_connected (dial_failed, ...), error     failed
==========================================  =====================================

A ``call_ended`` webhook of an answered call is read as in_progress: the result is
``call_analyzed``, which carries the analysis (see ``_awaits_analysis``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from retell.lib.webhook_auth import symmetric as _retell_hmac

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
    DEFAULT_LOOKUP_DELAYS_SECONDS,
    IDEMPOTENCY_METADATA_KEY,
    VOICEMAIL_ACTION_KEY,
    HostedVoiceAdapter,
    analysis_from,
    dynamic_variables,
    metadata_strings,
    opening_message,
    our_metadata,
    sentiment_label,
    success_text,
    voicemail_message,
)
from dialer.providers.webhook_auth import (
    WebhookVerifier,
    bound_verifier,
    check_first_delivery,
    check_fresh,
    unix_seconds,
)

PROVIDER_NAME: Final = "retell"
WEBHOOK_PATH: Final = "/webhooks/calls/retell"
SIGNATURE_HEADER: Final = "X-Retell-Signature"
HONOURS_IDEMPOTENCY_KEY: Final = True  # for one hour (see the module docstring)
CALL_EVENT: Final = "call.status"
# The webhooks that carry a call's status; the rest (transcripts, transfers) are not ours.
STATUS_EVENTS: Final = ("call_started", "call_ended", "call_analyzed")
_LIST_PAGE_SIZE: Final = 50

_VOICEMAIL_REASONS: Final = frozenset({"voicemail_reached", "ivr_reached"})
_NO_ANSWER_REASONS: Final = frozenset({"dial_no_answer"})
_BUSY_REASONS: Final = frozenset({"dial_busy", "user_declined"})
_CANCEL_REASONS: Final = frozenset({"manual_stopped"})
_INVALID_NUMBER_REASONS: Final = frozenset({"invalid_destination"})


class Settings(HostedProviderSettings):
    """Retell account settings (environment: ``DIALER_RETELL_*``); no secret has a default."""

    model_config = SettingsConfigDict(env_prefix="DIALER_RETELL_", extra="ignore")

    api_key: SecretStr = Field(description="Retell API key (Bearer) used to place calls.")
    webhook_api_key: SecretStr | None = Field(
        default=None,
        description="The API key with the webhook badge that signs webhooks; default api_key.",
    )
    base_url: str = Field(default="https://api.retellai.com", description="Retell API base URL.")
    default_from_number: str | None = Field(
        default=None, description="Caller ID (E.164, a Retell number) when a call names none."
    )
    calls_per_second: float = Field(
        default=5.0, gt=0, description="Calls per second sent to Retell (the fleet's limiter)."
    )
    webhook_tolerance_seconds: float = Field(
        default=300.0, gt=0, description="Accepted age of a signed webhook (Retell SDK: 5 min)."
    )

    def signing_key(self) -> str:
        key = self.webhook_api_key or self.api_key
        return key.get_secret_value()


class RetellVoiceProvider(HostedVoiceAdapter):
    """Retell over httpx; Retell keeps our idempotency key for an hour."""

    name = PROVIDER_NAME
    honours_idempotency_key = HONOURS_IDEMPOTENCY_KEY
    can_find_by_metadata = True

    def __init__(
        self, settings: Settings, http: ProviderHttp, webhook_url: str | None, **kwargs: Any
    ) -> None:
        super().__init__(http, **kwargs)
        self._settings = settings
        self._webhook_url = webhook_url

    def _send_placement(self, request: PlaceCallRequest) -> CallRecord:
        webhook = request.webhook_url or self._webhook_url
        body = call_request_body(request, self._settings.default_from_number, webhook)
        response = self._http.send("POST", "/v2/create-phone-call", "place_call", json=body)
        return call_record(self._http.json(response, "create-phone-call"))

    def get_call(self, call_id: str) -> CallRecord:
        path = f"/v2/get-call/{quote(call_id, safe='')}"
        return call_record(self._http.json(self._http.send("GET", path, "get_call"), path))

    def find_call(self, request: PlaceCallRequest, sent_after: datetime) -> CallRecord | None:
        body = list_calls_body(request, sent_after)
        response = self._http.send("POST", "/v3/list-calls", "find_call", json=body)
        page = self._http.json(response, "list-calls")
        items = page.get("items", []) if isinstance(page, Mapping) else page
        for item in items if isinstance(items, list) else []:
            meta = item.get("metadata") if isinstance(item, Mapping) else None
            if isinstance(meta, Mapping) and meta.get(IDEMPOTENCY_METADATA_KEY) == (
                request.idempotency_key
            ):
                return call_record(item)
        return None

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        events = events_from_payload(payload, None)
        if not events:
            raise ValueError(f"event: {payload.get('event')!r} carries no call status")
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
) -> RetellVoiceProvider:
    """The adapter for one Retell account (the registry's factory)."""
    http = ProviderHttp(
        PROVIDER_NAME,
        settings.base_url,
        {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"},
        connect_timeout_seconds=settings.connect_timeout_seconds,
        read_timeout_seconds=settings.read_timeout_seconds,
        limiter=limiter,
        refusal_code=refusal_code,
        transport=transport,
        sleep=sleep,
        clock=clock,
    )
    return RetellVoiceProvider(
        settings,
        http,
        webhook_url,
        journal=journal,
        parallel_requests=settings.parallel_requests,
        lookup_delays_seconds=lookup_delays_seconds,
        sleep=sleep,
        clock=clock,
    )


# --------------------------------------------------------------------------- requests


def call_request_body(
    request: PlaceCallRequest, default_from: str | None, webhook_url: str | None = None
) -> dict[str, Any]:
    from_number = request.from_number or default_from
    if not from_number:
        raise PermanentProviderError(
            "from_number: Retell needs a caller ID; attach a number to the agent or set"
            " DIALER_RETELL_DEFAULT_FROM_NUMBER",
            code="validation_error",
        )
    body: dict[str, Any] = {
        "from_number": from_number,
        "to_number": request.to,
        "override_agent_id": request.agent_id,
        "retell_llm_dynamic_variables": dynamic_variables(request),
        "metadata": our_metadata(request),
        "idempotency_key": request.idempotency_key,
    }
    override: dict[str, Any] = {}
    greeting = opening_message(request)
    if greeting:
        override["retell_llm"] = {"begin_message": greeting}
    agent: dict[str, Any] = {}
    if webhook_url:
        agent["webhook_url"] = webhook_url  # else the agent's or account's
    voicemail = voicemail_option(request)
    if voicemail is not None:
        agent["voicemail_option"] = voicemail
    if agent:
        override["agent"] = agent
    if override:
        body["agent_override"] = override
    return body


def voicemail_option(request: PlaceCallRequest) -> dict[str, Any] | None:
    """The campaign's voicemail policy as Retell's own ``voicemail_option`` for this call:
    Retell detects the voicemail and hangs up or speaks the message itself, so the
    policy holds even for an agent whose prompt ignores the variables. None: the
    agent's own setting."""
    action = request.context.get(VOICEMAIL_ACTION_KEY)
    message = voicemail_message(request)
    if action == "leave_message" and message:
        return {"action": {"type": "static_text", "text": message}}
    if action in ("hang_up", "leave_message"):  # a message to leave but no text: hang up
        return {"action": {"type": "hangup"}}
    return None


def list_calls_body(request: PlaceCallRequest, sent_after: datetime) -> dict[str, Any]:
    """Calls whose metadata carries our key (the lookup).

    Only the key is filtered on: a call that never connected has no
    ``start_timestamp``, and a time filter would hide exactly the calls a re-send
    must not repeat. ``sent_after`` is accepted for the uniform lookup signature.
    """
    del sent_after
    return {
        "filter_criteria": {
            "metadata": [
                {
                    "key": IDEMPOTENCY_METADATA_KEY,
                    "type": "string",
                    "op": "eq",
                    "value": request.idempotency_key,
                }
            ],
        },
        "limit": _LIST_PAGE_SIZE,
    }


def refusal_code(status: int, body: Any, message: str) -> str:
    if "to_number" in message or "E.164" in message:
        return "invalid_number"
    return default_refusal_code(status, body, message)


# --------------------------------------------------------------------------- answers


def map_status(
    call_status: str, reason: str | None, in_voicemail: bool = False
) -> tuple[ProviderCallStatus, bool]:
    """Retell's status and disconnection reason as (our provider status, voicemail)."""
    if call_status == "registered":
        return ProviderCallStatus.QUEUED, False
    if call_status == "ongoing":
        return ProviderCallStatus.IN_PROGRESS, False
    if call_status == "error":
        return ProviderCallStatus.FAILED, False
    if reason in _NO_ANSWER_REASONS:
        return ProviderCallStatus.NO_ANSWER, False
    if reason in _BUSY_REASONS:
        return ProviderCallStatus.BUSY, False
    if call_status == "ended":
        if reason in _VOICEMAIL_REASONS or in_voicemail:
            return ProviderCallStatus.COMPLETED, True
        return ProviderCallStatus.COMPLETED, False
    if call_status == "not_connected":
        if reason in _CANCEL_REASONS:
            return ProviderCallStatus.CANCELED, False
        return ProviderCallStatus.FAILED, False
    raise ValueError(f"call: field 'call_status' has an unknown value {call_status!r}")


def call_record(payload: Any) -> CallRecord:
    """A Retell call object as our CallRecord; a malformed one raises ValueError naming it."""
    if not isinstance(payload, Mapping):
        raise PermanentProviderError("call: expected a JSON object", code="bad_response")
    try:
        return _call_record(payload)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"call: missing or malformed field {exc}") from exc


def _call_record(call: Mapping[str, Any]) -> CallRecord:
    analysis_raw = call.get("call_analysis")
    analysis = analysis_raw if isinstance(analysis_raw, Mapping) else {}
    reason = call.get("disconnection_reason")
    status, voicemail = map_status(
        str(call["call_status"]), reason, bool(analysis.get("in_voicemail"))
    )
    started, ended = _ms_time(call.get("start_timestamp")), _ms_time(call.get("end_timestamp"))
    duration_ms = call.get("duration_ms")
    cost = call.get("call_cost")
    cents = cost.get("combined_cost") if isinstance(cost, Mapping) else None
    custom = analysis.get("custom_analysis_data")
    return CallRecord(
        id=str(call["call_id"]),
        status=status.value,
        to=str(call.get("to_number") or ""),
        from_number=call.get("from_number"),
        agent_id=call.get("agent_id"),
        direction=str(call.get("direction") or "outbound"),
        created_at=started,
        answered_at=started if status == ProviderCallStatus.COMPLETED else None,
        ended_at=ended,
        duration_seconds=duration_ms / 1000 if isinstance(duration_ms, int | float) else None,
        cost_millicents=round(float(cents) * 1000) if isinstance(cents, int | float) else None,
        extraction=dict(custom) if isinstance(custom, Mapping) else None,
        extraction_status="completed" if isinstance(custom, Mapping) else None,
        provider_error_code="invalid_number" if reason in _INVALID_NUMBER_REASONS else None,
        hangup_reason=reason,
        voicemail=voicemail,
        metadata=metadata_strings(call.get("metadata")),
        analysis=_analysis(analysis) if analysis else None,
    )


def _analysis(analysis: Mapping[str, Any]) -> CallAnalysis:
    custom = analysis.get("custom_analysis_data")
    return analysis_from(
        custom if isinstance(custom, Mapping) else None,
        transcript_summary=analysis.get("call_summary"),
        call_successful=success_text(analysis.get("call_successful")),
        sentiment=sentiment_label(analysis.get("user_sentiment")),
    )


def _ms_time(raw: Any) -> datetime | None:
    if not isinstance(raw, int | float):
        return None
    return datetime.fromtimestamp(raw / 1000, tz=UTC)


# --------------------------------------------------------------------------- webhooks


def verifier(settings: Settings, replay_guard: SeenOnce | None = None) -> WebhookVerifier:
    """``verify_webhook`` with this account's secret and tolerance bound (the registry's)."""
    return bound_verifier(
        verify_webhook,
        settings.signing_key(),
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
    tolerance_seconds: float = 300.0,
    replay_guard: SeenOnce | None = None,
) -> None:
    """Check ``X-Retell-Signature`` with the SDK's verifier; raise SignatureError if not valid.

    ``secret`` is the Retell API key with the webhook badge; ``url`` is not signed by
    Retell (accepted for a uniform verifier signature). ``headers`` must be
    case-insensitive.
    """
    del url
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    signed_at = _signed_at(signature)
    check_fresh(signed_at, now, tolerance_seconds)
    options = {"timestamp": int(now * 1000), "timeout": int(tolerance_seconds * 1000)}
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8") from None
    if not _retell_hmac["verify"](text, secret, signature, options):
        raise SignatureError("signature does not match")
    check_first_delivery(replay_guard, PROVIDER_NAME, signature, tolerance_seconds)


def sign(body: bytes, secret: str, now: float) -> dict[str, str]:
    """Headers Retell would send (the fake server and tests sign with this)."""
    return {SIGNATURE_HEADER: _retell_hmac["sign"](body.decode(), secret, int(now * 1000))}


def _signed_at(signature: str) -> float:
    head = signature.split(",", 1)[0]
    if not head.startswith("v="):
        raise SignatureError("signature is not of the form v=<ms>,d=<hex>")
    return unix_seconds(head[2:])


def parse_webhook(
    body: bytes, headers: Mapping[str, str], url: str | None = None
) -> list[ProviderEvent]:
    """A Retell webhook as our events; an event that carries no call status gives none."""
    del url
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"body: not JSON ({exc})") from exc
    if not isinstance(payload, Mapping):
        raise ValueError("body: expected a JSON object")
    signature = headers.get(SIGNATURE_HEADER)
    return events_from_payload(payload, _signed_at(signature) if signature else None)


def events_from_payload(payload: Mapping[str, Any], signed_at: float | None) -> list[ProviderEvent]:
    event = payload.get("event")
    if not isinstance(event, str):
        raise ValueError("event: field 'event' is required")
    if event not in STATUS_EVENTS:
        return []
    call = payload.get("call")
    if not isinstance(call, Mapping):
        raise ValueError(f"{event}: field 'call' must be an object")
    record = call_record(call)
    if event == "call_started" and record.status == ProviderCallStatus.QUEUED:
        record = _with_status(record, ProviderCallStatus.IN_PROGRESS)
    if event == "call_ended" and _awaits_analysis(record):
        record = _with_status(record, ProviderCallStatus.IN_PROGRESS)
    occurred = _occurred_at(record, signed_at)
    return [ProviderEvent(PROVIDER_NAME, f"{record.id}:{event}", CALL_EVENT, occurred, call=record)]


def _awaits_analysis(record: CallRecord) -> bool:
    """An answered call's ``call_ended`` is not its result: ``call_analyzed`` is.

    The first terminal event wins (``policies.status``), so a terminal ``call_ended``
    would close the attempt before its evaluation arrives and the AI objective would
    never see it. Unanswered ends (no answer, busy, voicemail, failed) have nothing to
    wait for. If ``call_analyzed`` never comes, reconciliation reads the call.
    """
    return record.status == ProviderCallStatus.COMPLETED.value and not record.voicemail


def _with_status(record: CallRecord, status: ProviderCallStatus) -> CallRecord:
    return replace(record, status=status.value)


def _occurred_at(record: CallRecord, signed_at: float | None) -> datetime:
    if signed_at is not None:
        return datetime.fromtimestamp(signed_at, tz=UTC)
    when = record.ended_at or record.created_at
    if when is None:
        raise ValueError("call: no timestamp to date the event (start_timestamp)")
    return when
