"""`dialer api` takes in each hosted provider's webhooks in its own scheme (real HTTP, real PG).

With its ``DIALER_<NAME>_*`` settings present, the registry entry of Vapi, Retell,
Twilio and ElevenLabs mounts its route on the app `dialer api` serves: a webhook
signed the provider's way is stored in the inbox and enqueued, a forged one is
refused (401) with nothing stored. Twilio posts a form and signs the public URL it
called (with our query), not the loopback address the proxy forwards to.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from dialer.api import create_app
from dialer.providers import elevenlabs, retell, twilio_voice, vapi
from dialer.providers.hosted import HOSTED
from dialer.sandbox.testing import serve_in_thread
from dialer.services.inbox import apply_stored
from dialer.settings import Settings
from models import ProviderEvent as InboxRow
from models.session import transaction
from tests.integration.pipeline_support import MONDAY_8_UTC, uow_for
from tests.voice_fixtures import (
    ELEVENLABS_TRANSCRIPTION_WEBHOOK,
    RETELL_ANALYZED,
    TWILIO_ACCOUNT,
    TWILIO_CALLBACK,
    TWILIO_TOKEN,
    VAPI_END_OF_CALL,
)

pytestmark = pytest.mark.integration

PUBLIC_BASE_URL = "https://hooks.example.com/dialer"  # a proxy in front of `dialer api`
SECRETS = {
    "vapi": "vapi-server-url-secret",
    "retell": "key_retell_webhook_badge",
    "twilio": TWILIO_TOKEN,
    "elevenlabs": "wsec_elevenlabs_post_call",
}
ENV = {
    "vapi": {"DIALER_VAPI_API_KEY": "vapi-private-key", "DIALER_VAPI_WEBHOOK_SECRET": "{secret}"},
    "retell": {"DIALER_RETELL_API_KEY": "{secret}"},
    "twilio": {"DIALER_TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT, "DIALER_TWILIO_AUTH_TOKEN": "{secret}"},
    "elevenlabs": {
        "DIALER_ELEVENLABS_API_KEY": "xi-account-key",
        "DIALER_ELEVENLABS_WEBHOOK_SECRET": "{secret}",
    },
}
PATHS = {hosted.name: hosted.webhook_path for hosted in HOSTED}
TWILIO_QUERY = "?dialer_idempotency_key=att%3A1%3A1&attempt_id=a-1"  # as callback_url adds it


@pytest.fixture(autouse=True)
def _hosted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, env in ENV.items():
        for variable, value in env.items():
            monkeypatch.setenv(variable, value.format(secret=SECRETS[name]))


@contextmanager
def serve(settings: Settings, database_url: str, enqueued: list[uuid.UUID]) -> Iterator[str]:
    public = settings.model_copy(update={"public_webhook_base_url": PUBLIC_BASE_URL + "/"})
    app = create_app(public, uow_for(database_url), enqueue_apply=enqueued.append)
    with serve_in_thread(app) as url:
        yield url


def signed(provider: str, secret: str) -> tuple[str, bytes, dict[str, str]]:
    """(path?query, body, headers) as the provider sends them, signed with ``secret``."""
    now = time.time()
    if provider == "twilio":
        stamp = format_datetime(datetime.fromtimestamp(now, tz=UTC), usegmt=True)
        body = urlencode({**TWILIO_CALLBACK, "Timestamp": stamp}).encode()
        target = PATHS["twilio"] + TWILIO_QUERY
        headers = twilio_voice.sign(PUBLIC_BASE_URL + target, body, secret)
        return target, body, {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    payloads: dict[str, Any] = {
        "vapi": VAPI_END_OF_CALL,
        "retell": {"event": "call_analyzed", "call": RETELL_ANALYZED},
        "elevenlabs": ELEVENLABS_TRANSCRIPTION_WEBHOOK,
    }
    body = json.dumps(payloads[provider]).encode()
    module: Any = {"vapi": vapi, "retell": retell, "elevenlabs": elevenlabs}[provider]
    headers = module.sign(body, secret, now)
    return PATHS[provider], body, {**headers, "Content-Type": "application/json"}


def inbox(database_url: str) -> list[InboxRow]:
    with transaction(database_url) as session:
        return list(session.scalars(select(InboxRow)))


@pytest.mark.parametrize("provider", sorted(SECRETS))
def test_a_signed_webhook_is_stored_and_a_forged_one_is_refused(
    provider: str, settings: Settings, clean_db: str
) -> None:
    enqueued: list[uuid.UUID] = []
    target, body, headers = signed(provider, SECRETS[provider])
    _, _, forged_headers = signed(provider, "a-guessed-secret-value")
    with serve(settings, clean_db, enqueued) as base_url, httpx.Client(timeout=5) as client:
        forged = client.post(base_url + target, content=body, headers=forged_headers)
        assert forged.status_code == 401, forged.text
        assert forged.json()["error"]["code"] == "invalid_signature"
        assert inbox(clean_db) == []

        stored = client.post(base_url + target, content=body, headers=headers)
        again = client.post(base_url + target, content=body, headers=headers)

    assert stored.status_code == 200, stored.text
    assert stored.json()["status"] == "stored"
    assert again.json()["status"] == "duplicate"  # the inbox keys events by their id
    [row] = inbox(clean_db)
    assert (row.provider, row.status) == (provider, "received")
    assert enqueued == [row.id]
    if provider == "twilio":  # the form, field by field, as Twilio posted it
        assert row.payload["CallSid"] == TWILIO_CALLBACK["CallSid"]
        assert row.payload["CallStatus"] == "completed"
    else:
        assert row.payload == json.loads(body)
    spec = next(hosted for hosted in HOSTED if hosted.name == provider)
    with transaction(clean_db) as session:  # applied like any event: no attempt has this call
        assert apply_stored(session, row.id, spec.first_event, MONDAY_8_UTC) == "ignored"


def test_twilio_signs_the_public_url_not_the_loopback_one(
    settings: Settings, clean_db: str
) -> None:
    _, body, _ = signed("twilio", TWILIO_TOKEN)
    target = PATHS["twilio"] + TWILIO_QUERY
    with serve(settings, clean_db, []) as base_url:
        headers = twilio_voice.sign(base_url + target, body, TWILIO_TOKEN)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        over_loopback = httpx.post(base_url + target, content=body, headers=headers)
        without_query = httpx.post(
            base_url + PATHS["twilio"],
            content=body,
            headers={
                **twilio_voice.sign(PUBLIC_BASE_URL + target, body, TWILIO_TOKEN),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )

    assert over_loopback.status_code == 401
    assert without_query.status_code == 401  # the query is signed too
    assert inbox(clean_db) == []


def test_a_provider_without_its_settings_serves_no_webhook(
    settings: Settings, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIALER_RETELL_API_KEY")
    target, body, headers = signed("retell", SECRETS["retell"])
    with serve(settings, clean_db, []) as base_url:
        response = httpx.post(base_url + target, content=body, headers=headers)
    # Not mounted: the catch-all for unknown call providers asks for our own signature.
    assert response.status_code == 401
    assert inbox(clean_db) == []
