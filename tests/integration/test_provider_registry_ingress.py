"""The ingress routes a webhook of a provider registered in the tests only (real HTTP, real PG).

The echo provider (tests/echo_provider.py) posts form-encoded bodies at its own path,
signed its own way; registering it is all the ingress needs to verify, store and
enqueue them like any other provider's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from dialer.api import create_ingress_app
from dialer.providers.catalog import PROVIDERS
from dialer.sandbox.testing import serve_in_thread
from dialer.services.inbox import apply_stored
from dialer.settings import Settings
from models import ProviderEvent as InboxRow
from models.session import transaction
from tests.echo_provider import ECHO, SIGNATURE_HEADER, WEBHOOK_PATH, parse_status, signature
from tests.integration.pipeline_support import MONDAY_8_UTC, uow_for

API_KEY = "echo-key"
PUBLIC_BASE_URL = "https://hooks.example.com/dialer"  # a proxy in front of the ingress
FORM = {"CallId": "echo_9", "CallStatus": "no-pickup", "To": "+15551234567"}


@contextmanager
def serve(settings: Settings, database_url: str, enqueued: list[uuid.UUID]) -> Iterator[str]:
    public = settings.model_copy(update={"public_webhook_base_url": PUBLIC_BASE_URL + "/"})
    app = create_ingress_app(public, uow_for(database_url), enqueued.append)
    with serve_in_thread(app) as url:
        yield url


def post(base_url: str, body: bytes, key: str = API_KEY) -> httpx.Response:
    """Signed over the public URL, as the provider calls it, while sent to the loopback."""
    headers = {
        SIGNATURE_HEADER: signature(key, PUBLIC_BASE_URL + WEBHOOK_PATH, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return httpx.post(base_url + WEBHOOK_PATH, content=body, headers=headers)


def inbox(database_url: str) -> list[InboxRow]:
    with transaction(database_url) as session:
        return list(session.scalars(select(InboxRow)))


def test_a_registered_providers_webhook_is_verified_stored_and_enqueued(
    settings: Settings, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALER_ECHO_API_KEY", API_KEY)
    enqueued: list[uuid.UUID] = []
    body = urlencode(FORM).encode()
    with PROVIDERS.registered(ECHO), serve(settings, clean_db, enqueued) as base_url:
        forged = post(base_url, body, key="not-the-key")
        stored = post(base_url, body)
        again = post(base_url, body)
        malformed = post(base_url, b"CallId=echo_9")

    assert forged.status_code == 401
    assert stored.status_code == 200, stored.text
    assert stored.json()["status"] == "stored"
    assert again.json()["status"] == "duplicate"
    assert malformed.status_code == 422
    assert "CallStatus" in malformed.json()["error"]["message"]
    rows = sorted(inbox(clean_db), key=lambda row: row.status)
    assert [(row.provider, row.status) for row in rows] == [
        ("echo", "received"),
        ("echo", "rejected"),
    ]
    assert rows[0].payload == FORM
    assert enqueued == [rows[0].id]
    with transaction(clean_db) as session:  # applied like any provider's event: no such call
        assert apply_stored(session, enqueued[0], parse_status, MONDAY_8_UTC) == "ignored"


def test_a_registered_providers_subscription_handshake_is_answered(
    settings: Settings, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALER_ECHO_API_KEY", API_KEY)
    query = {"hub.mode": "subscribe", "hub.verify_token": API_KEY, "hub.challenge": "1158201444"}
    with PROVIDERS.registered(ECHO), serve(settings, clean_db, []) as base_url:
        answered = httpx.get(base_url + WEBHOOK_PATH, params=query)
        refused = httpx.get(base_url + WEBHOOK_PATH, params=query | {"hub.verify_token": "x"})
        plain = httpx.get(base_url + "/webhooks/sms/twilio", params=query)

    assert (answered.status_code, answered.text) == (200, "1158201444")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "handshake_refused"
    assert plain.status_code == 405  # an entry without a handshake answers POST only (SMS)


def test_without_its_entry_the_path_is_not_served(settings: Settings, clean_db: str) -> None:
    enqueued: list[uuid.UUID] = []
    with serve(settings, clean_db, enqueued) as base_url:
        response = post(base_url, urlencode(FORM).encode())
    assert response.status_code == 404
    assert inbox(clean_db) == []


def test_an_entry_whose_settings_are_missing_serves_no_webhook(
    settings: Settings, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIALER_ECHO_API_KEY", raising=False)
    enqueued: list[uuid.UUID] = []
    with PROVIDERS.registered(ECHO), serve(settings, clean_db, enqueued) as base_url:
        response = post(base_url, urlencode(FORM).encode())
    assert response.status_code == 404
    assert inbox(clean_db) == []
