"""SMS through Twilio Programmable Messaging: the sender, status callbacks, inbound replies.

Public API documentation this adapter is written from:

- send: https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
  (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form fields ``To``, ``From``
  or ``MessagingServiceSid``, ``Body``, ``StatusCallback``; HTTP Basic auth with the
  Account SID and auth token; the answer is the Message resource, ``sid`` ``SM...``)
- status callbacks:
  https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
  (form fields ``MessageSid``, ``MessageStatus`` = queued | accepted | scheduled | sending |
  sent | delivered | undelivered | failed | read | canceled, ``ErrorCode``)
- inbound messages: https://www.twilio.com/docs/usage/webhooks/messaging-webhooks
  (form fields ``MessageSid``, ``From``, ``To``, ``Body``, ``SmsStatus=received``,
  ``OptOutType`` = STOP | START | HELP when Advanced Opt-Out recognised a keyword)
- opt-out keywords: https://help.twilio.com/articles/223134027 (STOP, STOPALL,
  UNSUBSCRIBE, CANCEL, END, QUIT, plus OPTOUT and REVOKE; HELP and INFO answer help)
- request signatures: https://www.twilio.com/docs/usage/webhooks/webhooks-security
  (``X-Twilio-Signature``, checked with the official SDK's ``RequestValidator`` over the
  public URL Twilio called and the form fields, keyed with the auth token)
- errors: https://www.twilio.com/docs/usage/twilios-response (``{"code", "message",
  "status"}``); 429 is Twilio's "too many requests" (error 20429).

SDK: the official ``twilio`` package only validates signatures; sending is plain httpx
(one pooled client, the project's timeouts, no retries of its own).

Idempotency: Twilio has none for messages, so every send goes through a SendOnceGuard
(Redis), as WhatsApp's: a re-sent task gets the first send's ``SM...`` sid back.

Status mapping (``MessageStatus`` -> ours): queued, accepted, scheduled, sending ->
``queued`` (below ``sent``: never moves a message back); sent -> ``sent``; delivered ->
``delivered``; read -> ``read``; undelivered and failed -> ``failed`` (the error says
which, with ``ErrorCode``); canceled -> ``canceled``. Event ids are ``{sid}:{status}``
and ``{sid}:inbound``: a re-delivered callback is one inbox row.

Freshness: Twilio signs no time, so a captured callback cannot be told stale from its
signature. A replay is harmless instead: its event id is already in the inbox (answered
``duplicate``) and message statuses only move forward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs

import httpx
import redis
from twilio.request_validator import RequestValidator

from dialer.clock import real_utcnow
from dialer.policies.vocabulary import Channel, MessageStatus
from dialer.providers.base import (
    InboundMessage,
    MessageStatusUpdate,
    PermanentProviderError,
    ProviderEvent,
    SendMessageRequest,
    SendResult,
    TransientProviderError,
)
from dialer.providers.events import MESSAGE_INBOUND_EVENT, MESSAGE_STATUS_EVENT
from dialer.providers.retry_after import parse_retry_after
from dialer.providers.send_guard import SendOnceGuard
from dialer.providers.signing import SignatureError
from dialer.settings import Settings

PROVIDER_NAME: Final = "twilio_sms"
WEBHOOK_PATH: Final = "/webhooks/sms/twilio"
SIGNATURE_HEADER: Final = "X-Twilio-Signature"
MAX_BODY_CHARS: Final = 1600  # Twilio refuses longer bodies (error 21617)
# Twilio's MessageStatus -> ours. Statuses before "sent" read as queued: they never
# move a sent message back (statuses only move forward, services.messages).
STATUS_MAP: Final[Mapping[str, MessageStatus]] = {
    "queued": MessageStatus.QUEUED,
    "accepted": MessageStatus.QUEUED,
    "scheduled": MessageStatus.QUEUED,
    "sending": MessageStatus.QUEUED,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.CANCELED,
}
INBOUND_STATUS: Final = "received"
OPT_OUT_TYPE_STOP: Final = "STOP"
# Twilio error codes that mean "not now": queue overflow and rate limits.
TRANSIENT_CODES: Final = frozenset({20429, 30001, 14107})

Parser = Callable[[Mapping[str, Any]], ProviderEvent]


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class TwilioSmsConfig:
    base_url: str
    account_sid: str
    auth_token: str
    from_number: str = ""
    messaging_service_sid: str = ""
    status_callback_url: str | None = None
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 10.0
    max_connections: int = 20


class TwilioSmsProvider:
    """A MessageProvider for the sms channel over one pooled HTTP client."""

    name = PROVIDER_NAME

    def __init__(self, config: TwilioSmsConfig, guard: SendOnceGuard) -> None:
        self._config = config
        self._guard = guard
        self._client = _http_client(config)
        self._path = f"/2010-04-01/Accounts/{config.account_sid}/Messages.json"

    @classmethod
    def from_settings(
        cls, settings: Settings, redis_url: str, *, status_callback_url: str | None
    ) -> TwilioSmsProvider:
        config = TwilioSmsConfig(
            base_url=settings.sms_base_url,
            account_sid=settings.sms_account_sid,
            auth_token=settings.sms_auth_token.get_secret_value(),
            from_number=settings.sms_from_number,
            messaging_service_sid=settings.sms_messaging_service_sid,
            status_callback_url=status_callback_url,
            connect_timeout_seconds=settings.provider_connect_timeout_seconds,
            read_timeout_seconds=settings.provider_read_timeout_seconds,
        )
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        return cls(config, SendOnceGuard(client, "sms"))

    def send(self, request: SendMessageRequest) -> SendResult:
        """Send once per idempotency key; a repeat returns the first send's sid."""
        if not self._config.account_sid:
            raise PermanentProviderError(
                "SMS is off: set DIALER_SMS_ACCOUNT_SID", code="sms_not_configured"
            )
        form = message_form(request, self._config)
        sid = self._guard.send_once(request.idempotency_key, lambda: self._post(form))
        return SendResult(provider_message_id=sid, status=MessageStatus.SENT)

    def close(self) -> None:
        self._client.close()

    def _post(self, form: Mapping[str, str]) -> str:
        try:
            response = self._client.post(self._path, data=dict(form))
        except httpx.TransportError as exc:  # connect errors and timeouts alike
            raise TransientProviderError(f"twilio sms unreachable: {exc!r}") from exc
        _raise_for_error(response)
        return _sent_message_sid(response)


def _http_client(config: TwilioSmsConfig) -> httpx.Client:
    timeout = httpx.Timeout(config.read_timeout_seconds, connect=config.connect_timeout_seconds)
    limits = httpx.Limits(
        max_connections=config.max_connections, max_keepalive_connections=config.max_connections
    )
    return httpx.Client(
        base_url=config.base_url,
        auth=(config.account_sid, config.auth_token),
        timeout=timeout,
        limits=limits,
    )


def message_form(request: SendMessageRequest, config: TwilioSmsConfig) -> dict[str, str]:
    """The create-message form: To, the sender (service or number), Body, StatusCallback.

    The sender is the campaign's SMS channel address when it has one, else the
    Messaging Service, else DIALER_SMS_FROM_NUMBER. An ``MG...`` address is a service.
    """
    _validate(request)
    form = {"To": request.to, "Body": request.body}
    sender = request.sender or config.messaging_service_sid or config.from_number
    if not sender:
        raise PermanentProviderError("no SMS sender configured", code="sms_no_sender")
    form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
    if config.status_callback_url:
        form["StatusCallback"] = config.status_callback_url
    return form


def _validate(request: SendMessageRequest) -> None:
    if not request.idempotency_key:
        raise PermanentProviderError("idempotency_key is required", code="validation_error")
    if request.channel != Channel.SMS:
        raise PermanentProviderError(
            f"unsupported channel {request.channel!r}", code="unsupported_channel"
        )
    digits = "".join(ch for ch in request.to if ch.isdigit())
    if not request.to.startswith("+") or len(digits) < 7:
        raise PermanentProviderError("recipient is not an E.164 number", code="invalid_recipient")
    if not request.body.strip():
        raise PermanentProviderError("an SMS needs a body", code="validation_error")
    if len(request.body) > MAX_BODY_CHARS:
        raise PermanentProviderError(
            f"body is longer than {MAX_BODY_CHARS} characters", code="validation_error"
        )


def _raise_for_error(response: httpx.Response) -> None:
    """429, 5xx and queue/rate codes are transient; every other non-2xx is permanent."""
    if response.is_success:
        return
    code, message = _twilio_error(response)
    status = response.status_code
    text = f"twilio sms {status}: {message}"
    if status == 429 or status >= 500 or code in TRANSIENT_CODES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), real_utcnow())
        raise TransientProviderError(text, retry_after_seconds=retry_after)
    raise PermanentProviderError(text, code=f"twilio_{code}" if code else f"http_{status}")


def _twilio_error(response: httpx.Response) -> tuple[int | None, str]:
    """Twilio's error body: ``{"code": 21211, "message": "...", "status": 400}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return None, response.reason_phrase or "error"
    code = body.get("code")
    return (code if isinstance(code, int) else None), str(
        body.get("message") or response.reason_phrase
    )


def _sent_message_sid(response: httpx.Response) -> str:
    """The Message resource's ``sid``; anything else is treated as not sent."""
    try:
        sid = response.json().get("sid")
    except (ValueError, AttributeError):
        sid = None
    if not isinstance(sid, str) or not sid:
        raise PermanentProviderError("twilio answered without a message sid", code="bad_response")
    return sid


# --------------------------------------------------------------------------- webhooks


def verify_signature(headers: Mapping[str, str], body: bytes, url: str, auth_token: str) -> None:
    """``X-Twilio-Signature`` over the public ``url`` and the form fields, else SignatureError."""
    if not auth_token:
        raise SignatureError("SMS is off: DIALER_SMS_AUTH_TOKEN is not set")
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not RequestValidator(auth_token).validate(url, _form_params(body), signature):
        raise SignatureError("signature does not match")


def sign(url: str, body: bytes, auth_token: str) -> dict[str, str]:
    """The header Twilio would send (the fake server and tests sign with this)."""
    return {
        SIGNATURE_HEADER: RequestValidator(auth_token).compute_signature(url, _form_params(body))
    }


class _FormParams(dict[str, list[str]]):
    """Form fields as the validator reads repeated ones (Django's ``getlist``)."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def _form_params(body: bytes) -> _FormParams:
    return _FormParams(parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def is_sms_webhook(payload: Mapping[str, Any]) -> bool:
    """A Messaging callback (status or inbound): it names a MessageSid and no CallSid."""
    has_status = "MessageStatus" in payload or "SmsStatus" in payload
    return "MessageSid" in payload and has_status and "CallSid" not in payload


def sms_aware(parse: Parser) -> Parser:
    """A parser for the whole inbox: Twilio SMS bodies here, every other body to ``parse``."""

    def parse_any(payload: Mapping[str, Any]) -> ProviderEvent:
        return parse_event(payload) if is_sms_webhook(payload) else parse(payload)

    return parse_any


def parse_event(payload: Mapping[str, Any]) -> ProviderEvent:
    """A status callback or an inbound message as our event; ValueError naming the field."""
    sid = _field(payload, "MessageSid")
    status = str(payload.get("MessageStatus") or payload.get("SmsStatus") or "")
    if status == INBOUND_STATUS:
        return _inbound_event(payload, sid)
    ours = STATUS_MAP.get(status)
    if ours is None:
        known = ", ".join([*STATUS_MAP, INBOUND_STATUS])
        raise ValueError(f"twilio sms: field 'MessageStatus' must be one of {known}")
    error = None
    if ours == MessageStatus.FAILED:
        code = payload.get("ErrorCode")
        error = f"{status}: {code}" if code else status
    update = MessageStatusUpdate(provider_message_id=sid, status=ours, error=error)
    return ProviderEvent(
        provider=PROVIDER_NAME,
        event_id=f"{sid}:{status}",
        kind=MESSAGE_STATUS_EVENT,
        occurred_at=datetime.now(UTC),  # Twilio's callbacks carry no time of their own
        message_status=update,
    )


def _inbound_event(payload: Mapping[str, Any], sid: str) -> ProviderEvent:
    inbound = InboundMessage(
        channel=Channel.SMS,
        from_address=_field(payload, "From"),
        text=str(payload.get("Body") or ""),
        provider_message_id=sid,
        opt_out=str(payload.get("OptOutType") or "").upper() == OPT_OUT_TYPE_STOP,
    )
    return ProviderEvent(
        provider=PROVIDER_NAME,
        event_id=f"{sid}:inbound",
        kind=MESSAGE_INBOUND_EVENT,
        occurred_at=datetime.now(UTC),
        inbound=inbound,
    )


def _field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"twilio sms: missing field {name!r}")
    return value


# --------------------------------------------------------------------------- builders


def status_callback(sid: str, status: str, *, to: str, error_code: str = "") -> dict[str, str]:
    """A status callback's form fields as Twilio posts them (fakes and tests send these)."""
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "To": to,
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        form["ErrorCode"] = error_code
    return form


def inbound_message(
    sid: str, sender: str, to: str, text: str, *, opt_out_type: str = ""
) -> dict[str, str]:
    """An inbound message's form fields as Twilio posts them."""
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": INBOUND_STATUS,
        "From": sender,
        "To": to,
        "Body": text,
        "NumMedia": "0",
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
    }
    if opt_out_type:
        form["OptOutType"] = opt_out_type
    return form
