"""Twilio Programmable Voice: outbound calls to a voice-AI agent, lookups, status callbacks.

Public API documentation this adapter is written from:

- create a call: https://www.twilio.com/docs/voice/api/call-resource#create-a-call-resource
  (``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``, form fields ``To``, ``From``,
  ``Twiml`` | ``Url`` | ``ApplicationSid``, ``StatusCallback``, ``StatusCallbackEvent``,
  ``MachineDetection``)
- fetch a call: https://www.twilio.com/docs/voice/api/call-resource#fetch-a-call-resource
  (``status``, ``answered_by``, ``price``, ``duration``)
- status callbacks: https://www.twilio.com/docs/voice/api/call-resource#statuscallback
  (``CallSid``, ``CallStatus``, ``AnsweredBy``, ``Timestamp``, ``SequenceNumber``)
- answering machine detection: https://www.twilio.com/docs/voice/answering-machine-detection
- the agent: ConversationRelay, https://www.twilio.com/docs/voice/twiml/connect/conversationrelay
  (``<Connect><ConversationRelay url welcomeGreeting><Parameter/>``)
- request signatures: https://www.twilio.com/docs/usage/security#validating-requests
  (``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL and the sorted POST parameters,
  keyed with the auth token)
- rate limits: https://www.twilio.com/docs/voice/api/calls-per-second (CPS, 1 by
  default per account; calls beyond it are queued) and error 20429 (HTTP 429).

The agent id names what answers the call: a ``wss://`` URL is a ConversationRelay
agent, given the opening message as ``welcomeGreeting`` and the per-contact
variables as ``<Parameter>``\\s; an ``https://`` URL is a TwiML app fetched by Twilio;
an ``AP...`` sid is a TwiML application. Twilio keeps no metadata on a call, so our
attempt id and key ride in the ``StatusCallback`` URL's query and come back with
every callback.

Idempotency: none, and Twilio offers no way to find a call by our metadata, so a
placement whose answer was lost is raised as ``PlacementUncertain`` (never re-sent).

SDK: the official ``twilio`` package validates signatures (``RequestValidator``)
and writes the TwiML (``VoiceResponse``); calls go through httpx so timeouts, the
rate limiter and lost answers are handled here.

Status mapping: queued, initiated, ringing, in-progress as they are; completed ->
completed (voicemail when ``AnsweredBy`` is ``machine_*`` or ``fax``); busy, no-answer,
canceled, failed as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from dialer.clock import real_utcnow
from dialer.dependencies import Clock
from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers.base import (
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
    IDEMPOTENCY_METADATA_KEY,
    VOICEMAIL_ACTION_KEY,
    HostedVoiceAdapter,
    dollars_to_millicents,
    dynamic_variables,
    opening_message,
)
from dialer.providers.webhook_auth import (
    WebhookVerifier,
    bound_verifier,
    check_first_delivery,
    check_fresh,
)
from dialer.providers.webhook_body import decode_form

PROVIDER_NAME: Final = "twilio"
WEBHOOK_PATH: Final = "/webhooks/calls/twilio"
SIGNATURE_HEADER: Final = "X-Twilio-Signature"
HONOURS_IDEMPOTENCY_KEY: Final = False
CALL_EVENT: Final = "call.status"
STATUS_CALLBACK_EVENTS: Final = ("initiated", "ringing", "answered", "completed")

_STATUSES: Final[dict[str, ProviderCallStatus]] = {
    "queued": ProviderCallStatus.QUEUED,
    "initiated": ProviderCallStatus.INITIATED,
    "ringing": ProviderCallStatus.RINGING,
    "in-progress": ProviderCallStatus.IN_PROGRESS,
    "completed": ProviderCallStatus.COMPLETED,
    "busy": ProviderCallStatus.BUSY,
    "no-answer": ProviderCallStatus.NO_ANSWER,
    "canceled": ProviderCallStatus.CANCELED,
    "failed": ProviderCallStatus.FAILED,
}
_LIVE: Final = frozenset(
    {
        ProviderCallStatus.QUEUED,
        ProviderCallStatus.INITIATED,
        ProviderCallStatus.RINGING,
        ProviderCallStatus.IN_PROGRESS,
    }
)
_MACHINE_ANSWERS: Final = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)
# Twilio error codes for a number that can never be called as it is.
_INVALID_NUMBER_CODES: Final = frozenset({13223, 13224, 21211, 21214, 21217, 21401, 21407})
_FROM_NOT_ALLOWED_CODES: Final = frozenset({21210, 21212, 21606})


class Settings(HostedProviderSettings):
    """Twilio account settings (environment: ``DIALER_TWILIO_*``); no secret has a default."""

    model_config = SettingsConfigDict(env_prefix="DIALER_TWILIO_", extra="ignore")

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$", description="Account SID (AC...).")
    auth_token: SecretStr = Field(
        description="Auth token: signs status callbacks, and authenticates the API"
        " unless an API key is set."
    )
    api_key_sid: str | None = Field(default=None, description="Optional API key SID (SK...).")
    api_key_secret: SecretStr | None = Field(default=None, description="That API key's secret.")
    base_url: str = Field(default="https://api.twilio.com", description="Twilio API base URL.")
    status_callback_url: str | None = Field(
        default=None,
        description="Public URL of our webhook, e.g. https://hooks.example/webhooks/calls/twilio.",
    )
    default_from_number: str | None = Field(
        default=None, description="Caller ID (E.164, a Twilio number) when a call names none."
    )
    machine_detection: Literal["off", "Enable", "DetectMessageEnd"] = Field(
        default="Enable", description="Answering machine detection (AnsweredBy in callbacks)."
    )
    calls_per_second: float = Field(
        default=1.0, gt=0, description="The account's CPS (Twilio's default is 1)."
    )
    webhook_tolerance_seconds: float = Field(
        default=900.0, gt=0, description="Accepted age of a status callback (its signed Timestamp)."
    )

    def account_id(self) -> str:
        return self.account_sid  # one CPS bucket per Twilio account


class TwilioVoiceProvider(HostedVoiceAdapter):
    """Twilio over httpx; no key and no lookup, so a lost answer is PlacementUncertain."""

    name = PROVIDER_NAME
    honours_idempotency_key = HONOURS_IDEMPOTENCY_KEY
    can_find_by_metadata = False

    def __init__(
        self, settings: Settings, http: ProviderHttp, webhook_url: str | None, **kwargs: Any
    ) -> None:
        super().__init__(http, **kwargs)
        self._settings = settings
        self._webhook_url = webhook_url or settings.status_callback_url
        self._calls_path = f"/2010-04-01/Accounts/{settings.account_sid}/Calls"

    def _send_placement(self, request: PlaceCallRequest) -> CallRecord:
        form = call_request_form(request, self._settings, self._webhook_url)
        response = self._http.send(
            "POST",
            f"{self._calls_path}.json",
            "place_call",
            content=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return call_record(self._http.json(response, "Calls.json"))

    def get_call(self, call_id: str) -> CallRecord:
        path = f"{self._calls_path}/{quote(call_id, safe='')}.json"
        return call_record(self._http.json(self._http.send("GET", path, "get_call"), path))

    def find_call(self, request: PlaceCallRequest, sent_after: datetime) -> CallRecord | None:
        return None  # Twilio keeps none of our metadata on a call

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        return event_from_stored(payload)


def build(
    settings: Settings,
    *,
    limiter: CallRateLimiter | None = None,
    journal: SeenOnce | None = None,
    webhook_url: str | None = None,
    transport: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = real_utcnow,
    lookup_delays_seconds: tuple[float, ...] = (),
) -> TwilioVoiceProvider:
    """The adapter for one Twilio account (the registry's factory)."""
    if settings.api_key_sid and settings.api_key_secret:
        auth = httpx.BasicAuth(settings.api_key_sid, settings.api_key_secret.get_secret_value())
    else:
        auth = httpx.BasicAuth(settings.account_sid, settings.auth_token.get_secret_value())
    http = ProviderHttp(
        PROVIDER_NAME,
        settings.base_url,
        {},
        auth=auth,
        connect_timeout_seconds=settings.connect_timeout_seconds,
        read_timeout_seconds=settings.read_timeout_seconds,
        limiter=limiter,
        refusal_code=refusal_code,
        transport=transport,
        sleep=sleep,
        clock=clock,
    )
    return TwilioVoiceProvider(
        settings,
        http,
        webhook_url,
        journal=journal,
        parallel_requests=settings.parallel_requests,
        lookup_delays_seconds=lookup_delays_seconds,  # no lookup: nothing to wait for
        sleep=sleep,
        clock=clock,
    )


# --------------------------------------------------------------------------- requests


def call_request_form(
    request: PlaceCallRequest, settings: Settings, webhook_url: str | None
) -> list[tuple[str, str]]:
    """The form body of a create-call request (a list: StatusCallbackEvent repeats)."""
    from_number = request.from_number or settings.default_from_number
    if not from_number:
        raise PermanentProviderError(
            "from_number: Twilio needs a caller ID; attach a number to the agent or set"
            " DIALER_TWILIO_DEFAULT_FROM_NUMBER",
            code="validation_error",
        )
    form: list[tuple[str, str]] = [("To", request.to), ("From", from_number)]
    form.append(_answering_party(request))
    callback = request.webhook_url or webhook_url
    if callback:
        form += [
            ("StatusCallback", callback_url(callback, request)),
            ("StatusCallbackMethod", "POST"),
        ]
        form += [("StatusCallbackEvent", event) for event in STATUS_CALLBACK_EVENTS]
    detection = machine_detection(request, settings.machine_detection)
    if detection != "off":
        form.append(("MachineDetection", detection))
    return form


def machine_detection(request: PlaceCallRequest, configured: str) -> str:
    """Twilio's answering machine detection for this call, from the campaign's voicemail
    policy: to leave a message, ``DetectMessageEnd`` (Twilio waits for the greeting's
    end, so the agent speaks after the beep); to hang up, ``Enable`` (the fastest
    answer, so the agent can end the call at once). A policy needs detection, so it
    wins over ``off``; without one, the deployment's setting applies."""
    action = request.context.get(VOICEMAIL_ACTION_KEY)
    if action == "leave_message":
        return "DetectMessageEnd"
    if action == "hang_up":
        return "Enable"
    return configured


def _answering_party(request: PlaceCallRequest) -> tuple[str, str]:
    agent = request.agent_id
    if agent.startswith("wss://"):
        return "Twiml", conversation_relay_twiml(request)
    if agent.startswith("https://"):
        return "Url", agent
    if agent.startswith("AP"):
        return "ApplicationSid", agent
    raise PermanentProviderError(
        f"agent_id: {agent!r} is neither a ConversationRelay wss:// URL, a TwiML https://"
        " URL nor a TwiML application sid (AP...)",
        code="validation_error",
    )


def conversation_relay_twiml(request: PlaceCallRequest) -> str:
    """TwiML that connects the call to the agent's websocket, greeting and variables included."""
    response = VoiceResponse()
    options = {"url": request.agent_id}
    greeting = opening_message(request)
    if greeting:
        options["welcome_greeting"] = greeting
    relay = response.connect().conversation_relay(**options)
    variables = {**dynamic_variables(request), **request.metadata}
    variables.pop("opening_message", None)
    for name, value in variables.items():
        relay.parameter(name=name, value=value)
    return str(response)


def callback_url(base: str, request: PlaceCallRequest) -> str:
    """Our webhook URL with the attempt id and key in its query (Twilio signs it as is)."""
    parts = urlsplit(base)
    query = parse_qsl(parts.query)
    ours = {IDEMPOTENCY_METADATA_KEY: request.idempotency_key}
    if ATTEMPT_ID_KEY in request.metadata:
        ours[ATTEMPT_ID_KEY] = request.metadata[ATTEMPT_ID_KEY]
    return urlunsplit(parts._replace(query=urlencode([*query, *ours.items()])))


def refusal_code(status: int, body: Any, message: str) -> str:
    code = body.get("code") if isinstance(body, Mapping) else None
    if code in _INVALID_NUMBER_CODES:
        return "invalid_number"
    if code in _FROM_NOT_ALLOWED_CODES:
        return "from_number_not_on_agent"
    return default_refusal_code(status, body, message)


# --------------------------------------------------------------------------- answers


def map_status(status: str, answered_by: str | None) -> tuple[ProviderCallStatus, bool]:
    """Twilio's call status and AMD's ``AnsweredBy`` as (our provider status, voicemail)."""
    try:
        ours = _STATUSES[status]
    except KeyError:
        raise ValueError(f"call: unknown Twilio status {status!r}") from None
    machine = ours == ProviderCallStatus.COMPLETED and answered_by in _MACHINE_ANSWERS
    return ours, machine


def call_record(payload: Any) -> CallRecord:
    """A Twilio call resource (JSON) as our CallRecord."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("sid"), str):
        raise PermanentProviderError("call: expected an object with a 'sid'", code="bad_response")
    status, voicemail = map_status(str(payload.get("status")), payload.get("answered_by"))
    started = _rfc2822(payload.get("start_time"))
    return CallRecord(
        id=payload["sid"],
        status=status.value,
        to=str(payload.get("to") or ""),
        from_number=payload.get("from"),
        direction="outbound",
        created_at=_rfc2822(payload.get("date_created")),
        answered_at=started if status == ProviderCallStatus.COMPLETED else None,
        ended_at=_rfc2822(payload.get("end_time")),
        duration_seconds=_number(payload.get("duration")),
        billable_seconds=_int(payload.get("duration")),
        cost_millicents=dollars_to_millicents(payload["price"]) if payload.get("price") else None,
        hangup_reason=payload.get("answered_by"),
        voicemail=voicemail,
    )


def _rfc2822(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _number(raw: Any) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _int(raw: Any) -> int | None:
    value = _number(raw)
    return int(value) if value is not None else None


# --------------------------------------------------------------------------- webhooks


def verifier(settings: Settings, replay_guard: SeenOnce | None = None) -> WebhookVerifier:
    """``verify_webhook`` with this account's secret and tolerance bound (the registry's)."""
    return bound_verifier(
        verify_webhook,
        settings.auth_token.get_secret_value(),
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
    tolerance_seconds: float = 900.0,
    replay_guard: SeenOnce | None = None,
) -> None:
    """Check ``X-Twilio-Signature`` over ``url`` and the form body with Twilio's validator.

    ``url`` must be the full URL Twilio requested (scheme, host, path, query) as the
    public sees it, not the one behind a proxy; ``secret`` is the auth token. Twilio
    signs no timestamp header, so freshness is read from the callback's signed
    ``Timestamp`` parameter when it has one.
    """
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    params = _form_params(body)
    if not RequestValidator(secret).validate(url, params, signature):
        raise SignatureError("signature does not match")
    stamp = _rfc2822(next(iter(params.get("Timestamp", [])), None))
    if stamp is not None:
        check_fresh(stamp.timestamp(), now, tolerance_seconds)
    check_first_delivery(replay_guard, PROVIDER_NAME, signature, tolerance_seconds)


def sign(url: str, body: bytes, secret: str) -> dict[str, str]:
    """The header Twilio would send (the fake server and tests sign with this)."""
    signature = RequestValidator(secret).compute_signature(url, _form_params(body))
    return {SIGNATURE_HEADER: signature}


class _FormParams(dict[str, list[str]]):
    """Form fields as the validator reads repeated ones (Django's ``getlist``)."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def _form_params(body: bytes) -> _FormParams:
    return _FormParams(parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def parse_webhook(
    body: bytes, headers: Mapping[str, str], url: str | None = None
) -> list[ProviderEvent]:
    """A status callback (form-encoded) as our event; ``url`` gives back our metadata."""
    del headers
    params = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    query = dict(parse_qsl(urlsplit(url).query)) if url else {}
    return [event_from_params(params, query)]


def event_from_params(params: Mapping[str, str], query: Mapping[str, str]) -> ProviderEvent:
    """A status callback's form fields, and the query of the callback URL it was posted to.

    Twilio keeps none of our metadata on a call, so ``callback_url`` puts our attempt id
    and key in the status callback's query; they come back as the record's metadata,
    which is how the inbox matches the event to its attempt (a held placement too).
    """
    missing = [name for name in ("CallSid", "CallStatus") if not params.get(name)]
    if missing:
        raise ValueError(f"callback: missing field {missing[0]!r}")
    status, voicemail = map_status(params["CallStatus"], params.get("AnsweredBy"))
    occurred = _rfc2822(params.get("Timestamp"))
    if occurred is None:
        raise ValueError("callback: field 'Timestamp' is required (RFC 2822 date)")
    record = CallRecord(
        id=params["CallSid"],
        status=status.value,
        to=params.get("To", ""),
        from_number=params.get("From"),
        direction="outbound",
        duration_seconds=_number(params.get("CallDuration")),
        billable_seconds=_int(params.get("CallDuration")),
        answered_at=occurred if status == ProviderCallStatus.IN_PROGRESS else None,
        ended_at=None if status in _LIVE else occurred,
        provider_error_code=params.get("SipResponseCode") if status.value == "failed" else None,
        hangup_reason=params.get("AnsweredBy"),
        voicemail=voicemail,
        metadata=metadata_from_query(query),
    )
    sequence = params.get("SequenceNumber", "")
    event_id = f"{record.id}:{params['CallStatus']}:{sequence}"
    return ProviderEvent(PROVIDER_NAME, event_id, CALL_EVENT, occurred, call=record)


def metadata_from_query(query: Mapping[str, str]) -> dict[str, str]:
    """Our keys among a callback URL's query parameters (nothing else of it is kept)."""
    names = (ATTEMPT_ID_KEY, IDEMPOTENCY_METADATA_KEY)
    return {name: query[name] for name in names if name in query}


# Where the ingress keeps our keys from the callback URL's query in the stored payload
# (Twilio's own form fields are CamelCase, so the name cannot clash).
CALLBACK_QUERY_FIELD: Final = "dialer_callback_query"


def decode_callback(body: bytes, query: Mapping[str, str]) -> dict[str, Any]:
    """A status callback's form fields plus our keys from the URL it was posted to."""
    payload: dict[str, Any] = decode_form(body)
    ours = metadata_from_query(query)
    if ours:
        payload[CALLBACK_QUERY_FIELD] = ours
    return payload


def event_from_stored(payload: Mapping[str, Any]) -> ProviderEvent:
    """The event of a payload ``decode_callback`` made (as stored in the inbox)."""
    kept = payload.get(CALLBACK_QUERY_FIELD)
    query = {str(k): str(v) for k, v in kept.items()} if isinstance(kept, Mapping) else {}
    params = {str(k): str(v) for k, v in payload.items() if k != CALLBACK_QUERY_FIELD}
    return event_from_params(params, query)
