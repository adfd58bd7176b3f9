"""WhatsApp Cloud API webhooks as Meta sends them: the GET handshake and X-Hub-Signature-256.

Public documentation this is written from:

- https://developers.facebook.com/docs/graph-api/webhooks/getting-started
  (verification requests: ``GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...``
  answered with the challenge; event notifications signed ``X-Hub-Signature-256:
  sha256=<hex>``, the HMAC-SHA256 of the raw body keyed with the app secret)
- https://developers.facebook.com/docs/whatsapp/cloud-api/guides/set-up-webhooks
  (the WhatsApp product's callback URL and verify token in the app dashboard)
- https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
  (``entry[].changes[].value.statuses[]`` and ``value.messages[]``, read by
  dialer.providers.whatsapp)

The WhatsApp route accepts two schemes: a request carrying ``X-Hub-Signature-256`` is
Meta's and is checked with DIALER_WHATSAPP_APP_SECRET; any other is checked with the
project's own timestamped scheme (DIALER_WEBHOOK_SECRET), which the sandbox signs with.
Meta signs no time: a replayed delivery is stored once (its event ids, ``{wamid}:{status}``,
are already in the inbox) and statuses only move forward.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

from dialer.providers.registry import (
    Handshake,
    ProviderConfig,
    SignedRequest,
    Verifier,
    shared_secret_verifier,
)
from dialer.providers.signing import SignatureError

SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
SIGNATURE_PREFIX: Final = "sha256="
SUBSCRIBE_MODE: Final = "subscribe"
MAX_CHALLENGE_CHARS: Final = 256  # Meta sends a short number; bounds what we echo


def meta_signature(body: bytes, app_secret: str) -> str:
    """The header value Meta sends for ``body`` (tests and fakes sign with this)."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_meta_signature(headers: Mapping[str, str], body: bytes, app_secret: str) -> None:
    """``X-Hub-Signature-256`` over the raw body, else SignatureError saying what is wrong."""
    if not app_secret:
        raise SignatureError("DIALER_WHATSAPP_APP_SECRET is not set")
    given = headers.get(SIGNATURE_HEADER) or ""
    if not given.startswith(SIGNATURE_PREFIX):
        raise SignatureError(f"{SIGNATURE_HEADER} must be 'sha256=<hex>'")
    if not hmac.compare_digest(given.encode(), meta_signature(body, app_secret).encode()):
        raise SignatureError("signature does not match")


def whatsapp_verifier(config: ProviderConfig) -> Verifier:
    """Meta's scheme when the request carries its header, else the project's."""
    app_secret = config.settings.whatsapp_app_secret.get_secret_value()
    ours = shared_secret_verifier(config)

    def check(request: SignedRequest) -> None:
        if SIGNATURE_HEADER in request.headers:
            verify_meta_signature(request.headers, request.body, app_secret)
        else:
            ours(request)

    return check


def answer_handshake(query: Mapping[str, str], verify_token: str) -> str:
    """The challenge to echo when Meta's subscription check names our token; else raise."""
    if not verify_token:
        raise SignatureError("DIALER_WHATSAPP_VERIFY_TOKEN is not set")
    if query.get("hub.mode") != SUBSCRIBE_MODE:
        raise SignatureError("hub.mode must be 'subscribe'")
    given = query.get("hub.verify_token") or ""
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        raise SignatureError("hub.verify_token does not match")
    challenge = query.get("hub.challenge") or ""
    if not challenge or len(challenge) > MAX_CHALLENGE_CHARS or not challenge.isprintable():
        raise SignatureError(f"hub.challenge must be 1-{MAX_CHALLENGE_CHARS} printable characters")
    return challenge


def whatsapp_handshake(config: ProviderConfig) -> Handshake:
    token = config.settings.whatsapp_verify_token.get_secret_value()

    def answer(query: Mapping[str, str]) -> str:
        return answer_handshake(query, token)

    return answer
