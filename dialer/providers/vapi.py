"""Vapi assistants: outbound phone calls, call lookups and Vapi's server messages.

Public API documentation this adapter is written from:

- create a call: https://docs.vapi.ai/api-reference/calls/create (``POST /call`` with
  ``assistantId``, ``phoneNumberId``, ``customer.number`` and ``assistantOverrides``:
  ``variableValues``, ``firstMessage``, ``metadata``)
- get / list calls: https://docs.vapi.ai/api-reference/calls/get (``GET /call/{id}``),
  https://docs.vapi.ai/api-reference/calls/list (``GET /call?assistantId&createdAtGe&limit``)
- server messages: https://docs.vapi.ai/server-url (``status-update``) and
  https://docs.vapi.ai/server-url/end-of-call-report (``endedReason``, ``analysis``,
  ``cost``); ended reasons: https://docs.vapi.ai/calls/call-ended-reason
- authentication of server messages: https://docs.vapi.ai/server-url/server-authentication
  (a credential: the ``X-Vapi-Secret`` shared secret, or an HMAC plan: ``x-signature`` =
  hex HMAC-SHA256 of ``"{timestamp}.{body}"``, ``x-timestamp``)

Idempotency: Vapi honours no idempotency key. Our key rides in
``assistantOverrides.metadata``; a placement whose answer was lost is looked up by
listing the assistant's calls created since the request and matching that key
(``find_call``), and held as ``PlacementUncertain`` when none is found.

SDK: the official ``vapi-server-sdk`` has no webhook verifier and its client hides
the timeouts and errors this adapter must tell apart, so plain httpx is used.

Rate limits: Vapi caps concurrent calls per organisation (10 by default) and answers
429 past its request rate; ``calls_per_second`` feeds the fleet's limiter and every
429 slows the fleet down.

Status mapping: ``scheduled``/``queued`` -> queued, ``ringing`` -> ringing,
``in-progress``/``forwarding`` -> in_progress, ``ended`` by ``endedReason``:
``customer-did-not-answer`` -> no_answer, ``customer-busy`` -> busy, ``voicemail``
(voicemail detection) -> completed + voicemail, ``manually-canceled`` and deleted
scheduled calls -> canceled, hang-ups after a conversation (``customer-ended-call``,
``assistant-ended-call``..., ``exceeded-max-duration``, ``silence-timed-out``) ->
completed, every error reason -> failed. An answered call's ``ended`` status-update
is read as in_progress: its result is the end-of-call report, which has the analysis.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
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
    voicemail_message,
)
from dialer.providers.webhook_auth import (
    WebhookVerifier,
    bound_verifier,
    check_first_delivery,
    check_fresh,
    unix_seconds,
)

PROVIDER_NAME: Final = "vapi"
WEBHOOK_PATH: Final = "/webhooks/calls/vapi"
SECRET_HEADER: Final = "X-Vapi-Secret"
SIGNATURE_HEADER: Final = "x-signature"
TIMESTAMP_HEADER: Final = "x-timestamp"
HONOURS_IDEMPOTENCY_KEY: Final = False
CALL_EVENT: Final = "call.status"
STATUS_MESSAGES: Final = ("status-update", "end-of-call-report")
_LIST_LIMIT: Final = 100
_LIST_PAGES: Final = 5

_LIVE: Final[dict[str, ProviderCallStatus]] = {
    "scheduled": ProviderCallStatus.QUEUED,
    "queued": ProviderCallStatus.QUEUED,
    "ringing": ProviderCallStatus.RINGING,
    "in-progress": ProviderCallStatus.IN_PROGRESS,
    "forwarding": ProviderCallStatus.IN_PROGRESS,
}
_NO_ANSWER: Final = frozenset({"customer-did-not-answer", "call.forwarding.no-answer"})
_BUSY: Final = frozenset({"customer-busy", "call.forwarding.operator-busy", "vonage-rejected"})
_VOICEMAIL: Final = frozenset({"voicemail"})
_CANCELED: Final = frozenset({"manually-canceled", "scheduled-call-deleted", "call-deleted"})
_INVALID_NUMBER: Final = frozenset(
    {"twilio-reported-customer-misdialed", "sip-outbound-unallocated-number"}
)
# A conversation took place and then someone (or a limit) ended it.
_ANSWERED: Final = frozenset(
    {
        "assistant-ended-call",
        "assistant-said-end-call-phrase",
        "assistant-ended-call-with-hangup-task",
        "assistant-ended-call-after-message-spoken",
        "assistant-forwarded-call",
        "customer-ended-call",
        "customer-ended-call-before-warm-transfer",
        "customer-ended-call-after-warm-transfer-attempt",
        "customer-ended-call-during-transfer",
        "exceeded-max-duration",
        "silence-timed-out",
        "call.in-progress.twilio-completed-call",
        "call.in-progress.sip-completed-call",
        "vonage-completed",
        "call.ending.hook-executed-say",
        "call.ending.hook-executed-transfer",
    }
)


class Settings(HostedProviderSettings):
    """Vapi account settings (environment: ``DIALER_VAPI_*``); no secret has a default."""

    model_config = SettingsConfigDict(env_prefix="DIALER_VAPI_", extra="ignore")

    api_key: SecretStr = Field(description="Vapi private API key (Bearer).")
    webhook_secret: SecretStr = Field(
        description="The server URL credential's secret (X-Vapi-Secret or the HMAC key)."
    )
    webhook_auth: Literal["secret", "hmac"] = Field(
        default="hmac", description="How Vapi authenticates server messages: secret or hmac."
    )
    base_url: str = Field(default="https://api.vapi.ai", description="Vapi API base URL.")
    phone_number_ids: dict[str, str] = Field(
        default_factory=dict,
        description='Caller IDs: E.164 number -> Vapi phoneNumberId, e.g. {"+1555...": "pn_1"}.',
    )
    default_phone_number_id: str | None = Field(
        default=None, description="Vapi phoneNumberId used when a call names no caller ID."
    )
    calls_per_second: float = Field(
        default=2.0, gt=0, description="Calls per second sent to Vapi (the fleet's limiter)."
    )
    webhook_tolerance_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Accepted age of a server message (signed or its timestamp).",
    )

    def phone_number_id(self, from_number: str | None) -> str:
        if from_number is None:
            if self.default_phone_number_id:
                return self.default_phone_number_id
            raise PermanentProviderError(
                "from_number: no caller ID and DIALER_VAPI_DEFAULT_PHONE_NUMBER_ID is not set",
                code="validation_error",
            )
        try:
            return self.phone_number_ids[from_number]
        except KeyError:
            raise PermanentProviderError(
                f"from_number: {from_number} has no Vapi phoneNumberId in"
                " DIALER_VAPI_PHONE_NUMBER_IDS",
                code="from_number_not_on_agent",
            ) from None


class VapiVoiceProvider(HostedVoiceAdapter):
    """Vapi over httpx; no idempotency key, so a lost answer is looked up by metadata."""

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
        number_id = self._settings.phone_number_id(request.from_number)
        webhook = request.webhook_url or self._webhook_url
        body = call_request_body(request, number_id, webhook)
        response = self._http.send("POST", "/call", "place_call", json=body)
        return call_record(self._http.json(response, "POST /call"))

    def get_call(self, call_id: str) -> CallRecord:
        path = f"/call/{quote(call_id, safe='')}"
        return call_record(self._http.json(self._http.send("GET", path, "get_call"), path))

    def find_call(self, request: PlaceCallRequest, sent_after: datetime) -> CallRecord | None:
        """Page back through the assistant's calls created since ``sent_after``.

        Vapi filters on neither metadata nor name, so the key is matched here; a busy
        assistant can create more than a page in that window, so up to
        ``_LIST_PAGES`` pages are read, each ending before the oldest call seen.
        """
        params: dict[str, str | int] = {
            "assistantId": request.agent_id,
            "createdAtGe": _iso(sent_after),
            "limit": _LIST_LIMIT,
        }
        for _ in range(_LIST_PAGES):
            page = self._http.json(self._http.send("GET", "/call", "find_call", params=params), "")
            calls = (
                [call for call in page if isinstance(call, Mapping)]
                if isinstance(page, list)
                else []
            )
            for call in calls:
                if _key_of(call) == request.idempotency_key:
                    return call_record(call)
            oldest = min(
                (str(c.get("createdAt")) for c in calls if c.get("createdAt")), default=None
            )
            if len(calls) < _LIST_LIMIT or oldest is None:
                return None
            params["createdAtLt"] = oldest
        return None

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        events = events_from_payload(payload)
        if not events:
            raise ValueError("message: carries no call status")
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
) -> VapiVoiceProvider:
    """The adapter for one Vapi organisation (the registry's factory)."""
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
    return VapiVoiceProvider(
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
    request: PlaceCallRequest, phone_number_id: str, webhook_url: str | None = None
) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "variableValues": dynamic_variables(request),
        "metadata": our_metadata(request),
    }
    greeting = opening_message(request)
    if greeting:
        overrides["firstMessage"] = greeting
    left = voicemail_message(request)
    if left:
        overrides["voicemailMessage"] = left  # what the assistant says to a voicemail
    if webhook_url:
        overrides["server"] = {"url": webhook_url}  # else the assistant's or the org's
    return {
        "assistantId": request.agent_id,
        "phoneNumberId": phone_number_id,
        "customer": {"number": request.to},
        "assistantOverrides": overrides,
    }


def refusal_code(status: int, body: Any, message: str) -> str:
    if "customer.number" in message or "E.164" in message:
        return "invalid_number"
    return default_refusal_code(status, body, message)


def _key_of(call: Any) -> str | None:
    if not isinstance(call, Mapping):
        return None
    overrides = call.get("assistantOverrides")
    meta = overrides.get("metadata") if isinstance(overrides, Mapping) else None
    if not isinstance(meta, Mapping):
        meta = call.get("metadata")
    value = meta.get(IDEMPOTENCY_METADATA_KEY) if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- answers


def map_status(status: str, ended_reason: str | None) -> tuple[ProviderCallStatus, bool]:
    """Vapi's status and ``endedReason`` as (our provider status, voicemail)."""
    if status in _LIVE:
        return _LIVE[status], False
    if status != "ended":
        return ProviderCallStatus.FAILED, False  # not-found, deletion-failed
    reason = ended_reason or ""
    if reason in _NO_ANSWER:
        return ProviderCallStatus.NO_ANSWER, False
    if reason in _BUSY:
        return ProviderCallStatus.BUSY, False
    if reason in _VOICEMAIL:
        return ProviderCallStatus.COMPLETED, True
    if reason in _CANCELED:
        return ProviderCallStatus.CANCELED, False
    if reason in _ANSWERED:
        return ProviderCallStatus.COMPLETED, False
    return ProviderCallStatus.FAILED, False  # every error reason: pipeline, start, carrier


def call_record(payload: Any, overrides: Mapping[str, Any] | None = None) -> CallRecord:
    """A Vapi call object (plus a server message's newer fields) as our CallRecord."""
    if not isinstance(payload, Mapping):
        raise PermanentProviderError("call: expected a JSON object", code="bad_response")
    call = {**payload, **(overrides or {})}
    if not isinstance(call.get("id"), str):
        raise ValueError("call: field 'id' is required")
    reason = call.get("endedReason")
    status, voicemail = map_status(str(call.get("status") or "queued"), reason)
    customer = call.get("customer")
    analysis = call.get("analysis")
    structured = analysis.get("structuredData") if isinstance(analysis, Mapping) else None
    started = _time(call.get("startedAt"))
    return CallRecord(
        id=call["id"],
        status=status.value,
        to=str(customer.get("number") or "") if isinstance(customer, Mapping) else "",
        agent_id=call.get("assistantId"),
        direction="outbound",
        created_at=_time(call.get("createdAt")),
        answered_at=started if status == ProviderCallStatus.COMPLETED else None,
        ended_at=_time(call.get("endedAt")),
        duration_seconds=_duration(call),
        cost_millicents=dollars_to_millicents(call["cost"]) if "cost" in call else None,
        extraction=dict(structured) if isinstance(structured, Mapping) else None,
        extraction_status="completed" if isinstance(structured, Mapping) else None,
        provider_error_code="invalid_number" if reason in _INVALID_NUMBER else None,
        hangup_reason=reason,
        voicemail=voicemail,
        metadata=_metadata(call),
        analysis=_analysis(analysis) if isinstance(analysis, Mapping) else None,
    )


def _analysis(analysis: Mapping[str, Any]) -> CallAnalysis:
    structured = analysis.get("structuredData")
    data = structured if isinstance(structured, Mapping) else {}
    return analysis_from(
        data,
        transcript_summary=analysis.get("summary"),
        call_successful=success_text(analysis.get("successEvaluation")),
        sentiment=sentiment_label(data.get("sentiment")),
    )


def _metadata(call: Mapping[str, Any]) -> dict[str, str]:
    overrides = call.get("assistantOverrides")
    if isinstance(overrides, Mapping) and isinstance(overrides.get("metadata"), Mapping):
        return metadata_strings(dict(overrides["metadata"]))
    return metadata_strings(call.get("metadata"))


def _duration(call: Mapping[str, Any]) -> float | None:
    value = call.get("durationSeconds")
    if isinstance(value, int | float):
        return float(value)
    started, ended = _time(call.get("startedAt")), _time(call.get("endedAt"))
    return (ended - started).total_seconds() if started and ended else None


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- webhooks


def verifier(settings: Settings, replay_guard: SeenOnce | None = None) -> WebhookVerifier:
    """``verify_webhook`` with this account's secret and tolerance bound (the registry's)."""
    return bound_verifier(
        verify_webhook,
        settings.webhook_secret.get_secret_value(),
        mode=settings.webhook_auth,
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
    mode: Literal["secret", "hmac"] = "hmac",
    tolerance_seconds: float = 300.0,
    replay_guard: SeenOnce | None = None,
) -> None:
    """Check a server message: the HMAC plan's signature or the shared secret header.

    In ``secret`` mode nothing is signed, so freshness is read from the message's own
    ``timestamp`` and a replay is told by the body's digest. ``headers`` must be
    case-insensitive; ``url`` is not part of Vapi's scheme.
    """
    del url
    if mode == "hmac":
        signature = _check_hmac(headers, body, secret, now, tolerance_seconds)
    else:
        signature = _check_secret(headers, body, secret, now, tolerance_seconds)
    check_first_delivery(replay_guard, PROVIDER_NAME, signature, tolerance_seconds)


def _check_hmac(
    headers: Mapping[str, str], body: bytes, secret: str, now: float, tolerance: float
) -> str:
    signature, raw_ts = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
    if not signature or not raw_ts:
        raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    check_fresh(unix_seconds(raw_ts), now, tolerance)
    expected = hmac_signature(secret, raw_ts, body)
    if not hmac.compare_digest(expected, signature.strip().removeprefix("sha256=")):
        raise SignatureError("signature does not match")
    return signature


def _check_secret(
    headers: Mapping[str, str], body: bytes, secret: str, now: float, tolerance: float
) -> str:
    offered = headers.get(SECRET_HEADER)
    if not offered:
        raise SignatureError(f"missing {SECRET_HEADER} header")
    if not hmac.compare_digest(offered.encode(), secret.encode()):
        raise SignatureError("secret does not match")
    sent_at = _message_timestamp(body)
    if sent_at is not None:
        check_fresh(sent_at, now, tolerance)
    return hashlib.sha256(body).hexdigest()


def hmac_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"``: the HMAC plan's defaults."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, now: float) -> dict[str, str]:
    """Headers Vapi's HMAC plan would send (the fake server and tests sign with this)."""
    stamp = str(int(now * 1000))
    return {SIGNATURE_HEADER: hmac_signature(secret, stamp, body), TIMESTAMP_HEADER: stamp}


def _message_timestamp(body: bytes) -> float | None:
    try:
        message = json.loads(body).get("message", {})
        raw = message.get("timestamp")
    except (ValueError, AttributeError):
        return None
    return unix_seconds(raw) if isinstance(raw, int | float) else None


def parse_webhook(
    body: bytes, headers: Mapping[str, str], url: str | None = None
) -> list[ProviderEvent]:
    """A server message as our events; messages that carry no call status give none."""
    del headers, url
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"body: not JSON ({exc})") from exc
    if not isinstance(payload, Mapping):
        raise ValueError("body: expected a JSON object")
    return events_from_payload(payload)


def events_from_payload(payload: Mapping[str, Any]) -> list[ProviderEvent]:
    message = payload.get("message")
    if not isinstance(message, Mapping) or not isinstance(message.get("type"), str):
        raise ValueError("message: field 'message.type' is required")
    kind = message["type"]
    if kind not in STATUS_MESSAGES:
        return []  # transcripts, tool calls, assistant requests: not call results
    call = message.get("call")
    if not isinstance(call, Mapping):
        raise ValueError(f"{kind}: field 'message.call' must be an object")
    record = call_record(call, _message_fields(message, kind))
    if kind == "status-update" and _awaits_report(record):
        record = replace(record, status=ProviderCallStatus.IN_PROGRESS.value)
    occurred = _occurred_at(message, record)
    # Vapi's own status names the event: an answered call's "ended" is read as
    # in_progress (above), and must not share an id with its "in-progress" update.
    raw_status = "ended" if kind == "end-of-call-report" else str(message.get("status"))
    event_id = f"{record.id}:{kind}:{raw_status}"
    return [ProviderEvent(PROVIDER_NAME, event_id, CALL_EVENT, occurred, call=record)]


def _awaits_report(record: CallRecord) -> bool:
    """An answered call's ``ended`` status-update is not its result: the report is.

    The first terminal event wins (``policies.status``), so a terminal status-update
    would close the attempt before the end-of-call report brings the analysis.
    Unanswered ends have nothing to wait for; a lost report is reconciled.
    """
    return record.status == ProviderCallStatus.COMPLETED.value and not record.voicemail


def _message_fields(message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """What a message says that is newer than its ``call`` snapshot."""
    names = ("endedReason", "analysis", "cost", "startedAt", "endedAt", "durationSeconds")
    fields = {name: message[name] for name in names if name in message}
    if kind == "status-update" and isinstance(message.get("status"), str):
        fields["status"] = message["status"]
    if kind == "end-of-call-report":
        fields["status"] = "ended"
    return fields


def _occurred_at(message: Mapping[str, Any], record: CallRecord) -> datetime:
    raw = message.get("timestamp")
    if isinstance(raw, int | float):
        return datetime.fromtimestamp(unix_seconds(raw), tz=UTC)
    when = record.ended_at or record.created_at
    if when is None:
        raise ValueError("message: field 'timestamp' is required")
    return when
