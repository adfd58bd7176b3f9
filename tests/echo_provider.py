"""A voice provider that exists only in the tests: one module and one registry entry.

It is shaped like the real providers to come (issue 13), not like seed 004: its
own settings (``DIALER_ECHO_API_KEY``, required), form-encoded status webhooks at
its own path, signed over the public URL it called and the body with the API key
(Twilio's idea), a GET subscription handshake (Meta's), and its own status words.
Registering ``ECHO`` in ``dialer.providers.catalog.PROVIDERS`` is all it takes for
the settings check to accept ``DIALER_PROVIDER=echo``, the composition root to build
it and the ingress to route its webhooks; no production module names it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers.base import CallRecord, PlaceCallRequest, ProviderEvent
from dialer.providers.channels import ChannelRouter
from dialer.providers.events import CALL_STATUS_EVENT
from dialer.providers.registry import (
    Adapters,
    Handshake,
    ProviderConfig,
    ProviderContext,
    SignedRequest,
    Verifier,
    VoiceProviderSpec,
    WebhookSpec,
    one_event,
)
from dialer.providers.signing import SignatureError

NAME: Final = "echo"
WEBHOOK_PATH: Final = "/hooks/echo/status"
SIGNATURE_HEADER: Final = "X-Echo-Signature"
_STATUSES: Final = {
    "dialing": ProviderCallStatus.RINGING,
    "talking": ProviderCallStatus.IN_PROGRESS,
    "hung-up": ProviderCallStatus.COMPLETED,
    "no-pickup": ProviderCallStatus.NO_ANSWER,
}


class EchoSettings(BaseSettings):
    """Read from DIALER_ECHO_* by the registry."""

    api_key: SecretStr
    base_url: str = "https://echo.invalid/v1"


class EchoVoiceProvider:
    """Answers every placement at once and remembers it; places no real call."""

    name = NAME

    def __init__(self, options: EchoSettings, webhook_url: str) -> None:
        self.options = options
        self.webhook_url = webhook_url
        self.calls: dict[str, CallRecord] = {}

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        for record in self.calls.values():
            if record.metadata.get("key") == request.idempotency_key:
                return record
        record = CallRecord(
            id=f"echo_{len(self.calls) + 1}",
            status=ProviderCallStatus.QUEUED,
            to=request.to,
            metadata={"key": request.idempotency_key},
        )
        self.calls[record.id] = record
        return record

    def get_call(self, call_id: str) -> CallRecord:
        return self.calls[call_id]

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        return parse_status(payload)


def signature(api_key: str, url: str, body: bytes) -> str:
    return hmac.new(api_key.encode(), url.encode() + body, hashlib.sha256).hexdigest()


def verifier(config: ProviderConfig) -> Verifier:
    api_key = config.options_as(EchoSettings).api_key.get_secret_value()

    def check(request: SignedRequest) -> None:
        offered = request.headers.get(SIGNATURE_HEADER, "")
        expected = signature(api_key, request.public_url, request.body)
        if not hmac.compare_digest(offered, expected):
            raise SignatureError("echo signature does not match")

    return check


def handshake(config: ProviderConfig) -> Handshake:
    """Meta's GET check: subscribe with our token, and the challenge is answered."""
    api_key = config.options_as(EchoSettings).api_key.get_secret_value()

    def answer(query: Mapping[str, str]) -> str:
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(token, api_key):
            raise SignatureError("echo: verify token does not match")
        return query.get("hub.challenge", "")

    return answer


def decode_form(body: bytes, query: Mapping[str, str] | None = None) -> dict[str, Any]:
    try:
        return dict(parse_qsl(body.decode(), strict_parsing=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"body is not a form ({exc})") from None


def parse_status(payload: Mapping[str, Any]) -> ProviderEvent:
    for name in ("CallId", "CallStatus", "To"):
        if not payload.get(name):
            raise ValueError(f"echo: missing field '{name}'")
    status = _STATUSES.get(payload["CallStatus"])
    if status is None:
        raise ValueError(f"echo: field 'CallStatus' is unknown: {payload['CallStatus']!r}")
    at = datetime.now(UTC)
    call = CallRecord(id=payload["CallId"], status=status, to=payload["To"], created_at=at)
    event_id = f"{call.id}:{payload['CallStatus']}"
    return ProviderEvent(NAME, event_id, CALL_STATUS_EVENT, at, call=call)


def build(context: ProviderContext) -> Adapters:
    options = context.config.options_as(EchoSettings)
    voice = EchoVoiceProvider(options, context.webhook_url(WEBHOOK_PATH))
    return Adapters(voice, ChannelRouter(context.channels()))


ECHO: Final = VoiceProviderSpec(
    NAME,
    build,
    webhooks=(
        WebhookSpec(
            WEBHOOK_PATH,
            source=NAME,
            split=one_event(parse_status),
            decode=decode_form,
            verifier=verifier,
            handshake=handshake,
        ),
    ),
    settings_model=EchoSettings,
)
