"""SendGrid's Event Webhook: e-mail delivery events for the email channel.

Docs (read 2026-12):
- events and their fields: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
- the signed webhook: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
- unique arguments over SMTP (``X-SMTPAPI``): https://www.twilio.com/docs/sendgrid/for-developers/sending-email/unique-arguments

**Matching events to our messages.** We keep sending over SMTP (dialer.providers.
email_smtp, pointed at ``smtp.sendgrid.net``): its send-once guard, Message-ID and
error mapping stay as they are, and an HTTP send API would be a second adapter for one
field. SMTP carries our message id in the ``X-SMTPAPI`` header's ``unique_args``
(``{"unique_args": {"dialer_message_id": "<uuid>"}}``); SendGrid strips that header and
copies each unique argument into every event of the message as a top-level field. The
id is a random UUID, no personal data (SendGrid keeps unique args as non-PII).

**Verification.** SendGrid signs ``timestamp + raw body`` with ECDSA P-256/SHA-256;
``X-Twilio-Email-Event-Webhook-Signature`` is the base64 DER signature,
``X-Twilio-Email-Event-Webhook-Timestamp`` the Unix seconds; the verification key from
the console is a base64 DER SubjectPublicKeyInfo (``DIALER_EMAIL_SENDGRID_PUBLIC_KEY``).
Checked with ``cryptography``: the official SDK's helper (sendgrid-python
``EventWebhook``) wraps starkbank-ecdsa, a pure-Python ECDSA, and brings the whole
mail client with it. SendGrid documents no timestamp tolerance; ours is
``DIALER_WEBHOOK_TOLERANCE_SECONDS``, as for every webhook. With no key configured
every request is refused (401): events are never taken unsigned.

**Body.** A JSON array of events; each becomes one inbox row keyed ``sg_event_id``
(a re-delivered batch is a duplicate), so one bad event refuses the whole body, which
is kept as ``rejected``.

**Mapping** (``event`` -> our message status; monotonic in dialer.services.messages):

| SendGrid event | status |
|---|---|
| processed | sent (accepted by SendGrid) |
| deferred | sent (accepted, a later try follows) |
| delivered | delivered |
| bounce, dropped | failed (``reason``/``type`` kept as the error) |
| open, click | read |
| spamreport, unsubscribe, group_unsubscribe, group_resubscribe | no status: stored, ignored |
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from dialer.policies.vocabulary import MessageStatus
from dialer.providers.base import MessageStatusUpdate, ProviderEvent
from dialer.providers.events import MESSAGE_STATUS_EVENT
from dialer.providers.signing import SignatureError
from dialer.providers.webhook_auth import check_fresh, unix_seconds
from dialer.providers.webhook_body import decode_object

PROVIDER_NAME: Final = "sendgrid"
WEBHOOK_PATH: Final = "/webhooks/email/sendgrid"
SIGNATURE_HEADER: Final = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER: Final = "X-Twilio-Email-Event-Webhook-Timestamp"
SMTPAPI_HEADER: Final = "X-SMTPAPI"
MESSAGE_ID_ARG: Final = "dialer_message_id"
MAX_EVENTS_PER_BODY: Final = 1000  # SendGrid batches by size (~768 KB); bounds our loop

STATUS_OF: Final[Mapping[str, MessageStatus]] = {
    "processed": MessageStatus.SENT,
    "deferred": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "bounce": MessageStatus.FAILED,
    "dropped": MessageStatus.FAILED,
    "open": MessageStatus.READ,
    "click": MessageStatus.READ,
}
NO_STATUS_EVENTS: Final = frozenset(
    {"spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"}
)


class EmailEventSettings(BaseSettings):
    """The email channel's own settings (``DIALER_EMAIL_*``): its delivery-event source."""

    sendgrid_public_key: str | None = Field(
        default=None,
        max_length=1024,
        description=(
            "SendGrid Event Webhook verification key (base64, from Mail Settings > Signed "
            "Event Webhook); unset: every event webhook is refused."
        ),
    )

    @field_validator("sendgrid_public_key")
    @classmethod
    def _a_p256_key(cls, value: str | None) -> str | None:
        if value is not None:
            load_public_key(value)  # ValueError names what is wrong; pydantic names the field
        return value


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The console's key (base64 DER, PEM armour tolerated) as a P-256 key, or ValueError."""
    stripped = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    try:
        key = load_der_public_key(base64.b64decode(stripped, validate=True))
    except (binascii.Error, ValueError):
        raise ValueError("not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify_webhook(
    key: ec.EllipticCurvePublicKey | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_seconds: float,
) -> None:
    """Raise SignatureError unless ``body`` is signed by ``key`` within the tolerance."""
    if key is None:
        raise SignatureError("DIALER_EMAIL_SENDGRID_PUBLIC_KEY is not set; events refused")
    signature, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    check_fresh(unix_seconds(timestamp), now, tolerance_seconds)
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, InvalidSignature):
        raise SignatureError("signature does not match") from None


def sign(private_key: ec.EllipticCurvePrivateKey, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers SendGrid would send with ``body`` (fakes and tests)."""
    raw = private_key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(raw).decode(), TIMESTAMP_HEADER: str(timestamp)}


def smtpapi_header(message_id: str) -> str:
    """The ``X-SMTPAPI`` value that makes SendGrid echo our id in every event."""
    return json.dumps({"unique_args": {MESSAGE_ID_ARG: message_id}}, separators=(",", ":"))


# --------------------------------------------------------------------------- body and events


def decode_body(body: bytes) -> dict[str, Any]:
    """The array SendGrid posts, as ``{"events": [...]}`` (storable JSON), or ValueError."""
    wrapped = b'{"events":' + body + b"}"
    try:
        payload = decode_object(wrapped)
    except ValueError as exc:
        raise ValueError(str(exc).replace("object", "array of events")) from None
    events = payload["events"]
    if not isinstance(events, list):
        raise ValueError("body is not a JSON array of events")
    if len(events) > MAX_EVENTS_PER_BODY:
        raise ValueError(f"body holds more than {MAX_EVENTS_PER_BODY} events")
    return payload


def split_events(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Each event of a decoded body, checked; ValueError naming the first bad one."""
    events = payload.get("events")
    if not isinstance(events, list):
        raise ValueError("field 'events' is not a list")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise ValueError(f"field '[{index}]' is not an object")
        parse_event(event, where=f"[{index}].")
    return events


def is_sendgrid_event(payload: Mapping[str, Any]) -> bool:
    """An inbox row stored from this webhook (the worker re-parses rows by their shape)."""
    return "sg_event_id" in payload and "event" in payload


def sendgrid_aware(
    parse: Callable[[Mapping[str, Any]], ProviderEvent],
) -> Callable[[Mapping[str, Any]], ProviderEvent]:
    """A parser for the whole inbox: SendGrid events here, every other row to ``parse``."""

    def parse_any(payload: Mapping[str, Any]) -> ProviderEvent:
        return parse_event(payload) if is_sendgrid_event(payload) else parse(payload)

    return parse_any


def parse_event(payload: Mapping[str, Any], *, where: str = "") -> ProviderEvent:
    """One SendGrid event -> a message.status event; ValueError naming the bad field."""
    event_id = _text(payload, "sg_event_id", where)
    kind = _text(payload, "event", where)
    if kind not in STATUS_OF and kind not in NO_STATUS_EVENTS:
        raise ValueError(f"field '{where}event' names no known event ({kind[:40]!r})")
    occurred_at = _timestamp(payload, where)
    update = None
    if kind in STATUS_OF:
        update = MessageStatusUpdate(
            provider_message_id=str(payload.get("smtp-id") or payload.get("sg_message_id") or ""),
            status=STATUS_OF[kind],
            error=_error(payload, kind),
            message_id=_text(payload, MESSAGE_ID_ARG, where),
        )
    return ProviderEvent(
        provider=PROVIDER_NAME,
        event_id=f"{PROVIDER_NAME}:{event_id}",
        kind=MESSAGE_STATUS_EVENT,
        occurred_at=occurred_at,
        message_status=update,
    )


def _text(payload: Mapping[str, Any], name: str, where: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field '{where}{name}' is missing or not a string")
    return value


def _timestamp(payload: Mapping[str, Any], where: str) -> datetime:
    value = payload.get("timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"field '{where}timestamp' is not Unix seconds")
    try:
        return datetime.fromtimestamp(unix_seconds(value), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"field '{where}timestamp' is out of range") from None


def _error(payload: Mapping[str, Any], kind: str) -> str | None:
    if STATUS_OF[kind] is not MessageStatus.FAILED:
        return None
    reason = payload.get("reason") or payload.get("response") or ""
    detail = f"{kind} ({payload['type']})" if isinstance(payload.get("type"), str) else kind
    return f"sendgrid {detail}: {str(reason)[:500]}".rstrip(": ")
