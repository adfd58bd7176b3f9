"""SMS over real HTTP: the adapter against a fake Twilio Messaging server, and Twilio's
signed callbacks and Meta's WhatsApp webhooks through the real ingress into PostgreSQL.

The ingress is configured with a public base URL (``https://hooks.example``) other than
the loopback one it listens on: Twilio signs the URL it called, so the check must use
the public one, as behind a proxy.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import select

from dialer.api import create_ingress_app
from dialer.providers import twilio_sms
from dialer.providers.base import (
    PermanentProviderError,
    SendMessageRequest,
    TransientProviderError,
)
from dialer.providers.events import parse_event_payload
from dialer.providers.meta_webhooks import SIGNATURE_HEADER, meta_signature
from dialer.providers.send_guard import SendOnceGuard
from dialer.providers.twilio_sms import TwilioSmsConfig, TwilioSmsProvider
from dialer.providers.whatsapp import status_webhook, whatsapp_aware
from dialer.sandbox.testing import serve_in_thread
from dialer.services.inbox import apply_stored
from dialer.services.messages import claim_due_messages, send_message
from dialer.settings import Settings
from models import ContactEvent, Customer, Message
from models import ProviderEvent as InboxRow
from models.session import transaction
from scheduler import ticks
from tests.integration.fake_twilio_sms import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioSms
from tests.integration.fake_twilio_sms import serve_fake_twilio as serve_fake
from tests.integration.pipeline_support import (
    MONDAY_8_UTC,
    customers_csv,
    enrollments_of,
    rome_phone,
    setup_campaign,
    start,
    uow_for,
)

PUBLIC = "https://hooks.example"
SMS_PATH = twilio_sms.WEBHOOK_PATH
APP_SECRET = "meta-app-secret-" + "s" * 16
VERIFY_TOKEN = "meta-verify-token-" + "v" * 8
INBOX_PARSER = twilio_sms.sms_aware(whatsapp_aware(parse_event_payload))
SMS_SPEC: dict[str, Any] = {
    "fallback_channel": "sms",
    "first_contact_channel": "sms",
    "whatsapp_channel": {"name": "SMS", "address": "+12125550197"},
    "goal_spec": {"objectives": [{"type": "contact", "channels": ["sms"]}]},
}


# --------------------------------------------------------------------------- the adapter


@pytest.fixture
def fake() -> Iterator[tuple[FakeTwilioSms, str]]:
    with serve_fake() as served:
        yield served


def _provider(base_url: str, guard: SendOnceGuard, token: str = AUTH_TOKEN) -> TwilioSmsProvider:
    config = TwilioSmsConfig(
        base_url=base_url,
        account_sid=ACCOUNT_SID,
        auth_token=token,
        from_number="+12125550100",
        status_callback_url=PUBLIC + SMS_PATH,
        read_timeout_seconds=2.0,
    )
    return TwilioSmsProvider(config, guard)


@pytest.fixture
def guard(redis_client: redis.Redis, redis_namespace: str) -> SendOnceGuard:
    return SendOnceGuard(redis_client, redis_namespace)


def _request(key: str = "msg:1") -> SendMessageRequest:
    return SendMessageRequest(key, "sms", rome_phone(1), "Hi Anna")


def test_a_send_posts_the_documented_form_with_basic_auth_once_per_key(
    fake: tuple[FakeTwilioSms, str], guard: SendOnceGuard
) -> None:
    server, url = fake
    provider = _provider(url, guard)
    first = provider.send(_request())
    again = provider.send(_request())  # a re-delivered task
    provider.close()
    assert first.provider_message_id == again.provider_message_id
    assert first.provider_message_id.startswith("SM")
    assert first.status == "sent"
    (form,) = server.sent
    assert {k: form[k] for k in ("To", "From", "Body", "StatusCallback")} == {
        "To": rome_phone(1),
        "From": "+12125550100",
        "Body": "Hi Anna",
        "StatusCallback": PUBLIC + SMS_PATH,
    }


def test_429_and_5xx_are_transient_and_the_retry_sends_once(
    fake: tuple[FakeTwilioSms, str], guard: SendOnceGuard
) -> None:
    server, url = fake
    server.fail_next(429, 20429, "Too Many Requests")
    server.fail_next(503, 20500, "Service unavailable")
    provider = _provider(url, guard)
    for _ in range(2):
        with pytest.raises(TransientProviderError):
            provider.send(_request())
    provider.send(_request())
    provider.close()
    assert len(server.sent) == 1


def test_a_refused_number_or_bad_credentials_are_permanent_with_twilios_code(
    fake: tuple[FakeTwilioSms, str], guard: SendOnceGuard
) -> None:
    server, url = fake
    server.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
    provider = _provider(url, guard)
    with pytest.raises(PermanentProviderError) as refused:
        provider.send(_request("msg:bad"))
    assert refused.value.code == "twilio_21211"
    wrong = _provider(url, guard, token="not-the-token-" + "n" * 10)
    with pytest.raises(PermanentProviderError) as unauthorised:
        wrong.send(_request("msg:auth"))
    assert unauthorised.value.code == "twilio_20003"
    provider.close()
    wrong.close()


def test_an_unreachable_api_is_transient(guard: SendOnceGuard) -> None:
    provider = _provider("http://127.0.0.1:9", guard)
    with pytest.raises(TransientProviderError):
        provider.send(_request())
    provider.close()


# --------------------------------------------------------------------------- the ingress


@dataclass
class Enqueued:
    ids: list[uuid.UUID] = field(default_factory=list)

    def __call__(self, inbox_id: uuid.UUID) -> None:
        self.ids.append(inbox_id)


@dataclass
class Ingress:
    url: str
    enqueued: Enqueued
    database_url: str

    def post_sms(self, fields: dict[str, str], *, token: str = AUTH_TOKEN) -> httpx.Response:
        """As Twilio posts: form-encoded, signed over the *public* URL it called."""
        body = urlencode(fields).encode()
        headers = twilio_sms.sign(PUBLIC + SMS_PATH, body, token) | {
            "Content-Type": "application/x-www-form-urlencoded"
        }
        return httpx.post(self.url + SMS_PATH, content=body, headers=headers, timeout=10)

    def post_meta(self, payload: dict[str, Any], secret: str = APP_SECRET) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {
            SIGNATURE_HEADER: meta_signature(body, secret),
            "Content-Type": "application/json",
        }
        return httpx.post(
            self.url + "/webhooks/whatsapp", content=body, headers=headers, timeout=10
        )

    def apply(self, now: datetime) -> list[str]:
        outcomes = []
        for inbox_id in self.enqueued.ids:
            with transaction(self.database_url) as session:
                outcomes.append(apply_stored(session, inbox_id, INBOX_PARSER, now))
        self.enqueued.ids.clear()
        return outcomes


@pytest.fixture(scope="module")
def ingress_server(base_settings: Settings, database_url: str) -> Iterator[Ingress]:
    settings = base_settings.model_copy(
        update={
            "database_url": database_url,
            "public_webhook_base_url": PUBLIC,
            "sms_auth_token": SecretStr(AUTH_TOKEN),
            "whatsapp_app_secret": SecretStr(APP_SECRET),
            "whatsapp_verify_token": SecretStr(VERIFY_TOKEN),
        }
    )
    enqueued = Enqueued()
    app = create_ingress_app(settings, uow_for(database_url), enqueued, clock=time.time)
    with serve_in_thread(app) as url:
        yield Ingress(url, enqueued, database_url)


@pytest.fixture
def ingress(ingress_server: Ingress, clean_db: str) -> Ingress:
    ingress_server.enqueued.ids.clear()
    return ingress_server


def _send_first_contacts(url: str, sender: TwilioSmsProvider, now: datetime, count: int) -> None:
    """What beat and the message task do: materialise the first contacts, then send them."""
    uow = uow_for(url)

    def materialize(topic: str, payload: dict[str, Any]) -> None:
        ticks.materialize(uow, topic, uuid.UUID(payload["campaign_id"]), now)

    ticks.relay_outbox(uow, materialize, now)
    with uow() as session:
        due = claim_due_messages(session, now, 10)
    assert len(due) == count
    assert {send_message(uow, sender, message_id, now) for message_id in due} == {"sent"}


def _outbound(url: str) -> list[Message]:
    with transaction(url) as session:
        return list(session.scalars(select(Message).where(Message.direction == "outbound")))


def test_sms_first_contact_statuses_and_replies_through_the_ingress(
    ingress: Ingress,
    clean_db: str,
    fake: tuple[FakeTwilioSms, str],
    guard: SendOnceGuard,
) -> None:
    server, fake_url = fake
    keen, done_with_us, helpless = rome_phone(1), rome_phone(2), rome_phone(3)
    campaign_id = setup_campaign(clean_db, SMS_SPEC, customers_csv([keen, done_with_us, helpless]))
    start(clean_db, campaign_id, MONDAY_8_UTC)
    sender = _provider(fake_url, guard)
    _send_first_contacts(clean_db, sender, MONDAY_8_UTC, 3)
    sender.close()
    assert {form["From"] for form in server.sent} == {"+12125550197"}  # the campaign's sender

    for message in _outbound(clean_db):
        assert message.channel == "sms"
        for status in ("sent", "delivered"):
            fields = twilio_sms.status_callback(message.provider_message_id or "", status, to="x")
            assert ingress.post_sms(fields).json()["status"] == "stored"
    replayed = twilio_sms.status_callback(message.provider_message_id or "", "delivered", to="x")
    assert ingress.post_sms(replayed).json()["status"] == "duplicate"  # Twilio's retry, or a replay
    ingress.apply(MONDAY_8_UTC)
    assert {message.status for message in _outbound(clean_db)} == {"delivered"}

    for phone, text in ((keen, "Yes, call me"), (done_with_us, "STOP"), (helpless, "HELP")):
        sid = f"SMin{uuid.uuid4().hex}"
        fields = twilio_sms.inbound_message(sid, phone, "+12125550197", text)
        assert ingress.post_sms(fields).status_code == 200
    ingress.apply(MONDAY_8_UTC + timedelta(minutes=5))

    with transaction(clean_db) as session:
        by_id = {c.id: c.phone for c in session.scalars(select(Customer))}
        opted_out = {c.phone: c.opted_out for c in session.scalars(select(Customer))}
        facts = list(session.scalars(select(ContactEvent.kind)))
    states = {by_id[e.customer_id]: e.state for e in enrollments_of(clean_db, campaign_id)}
    assert states == {keen: "goal_met", done_with_us: "opted_out", helpless: "active"}
    assert opted_out == {keen: False, done_with_us: True, helpless: False}
    assert facts == ["sms_reply"]  # HELP is not a contact, STOP opted out


def test_a_forged_or_unsigned_sms_callback_is_401_and_stores_nothing(ingress: Ingress) -> None:
    fields = twilio_sms.status_callback("SM1", "delivered", to="+39333")
    assert ingress.post_sms(fields, token="forged-token-" + "f" * 20).status_code == 401
    unsigned = httpx.post(ingress.url + SMS_PATH, content=urlencode(fields).encode(), timeout=10)
    assert unsigned.status_code == 401
    with transaction(ingress.database_url) as session:
        assert session.scalars(select(InboxRow)).first() is None


def test_an_advanced_opt_out_flag_opts_out_whatever_the_words(
    ingress: Ingress, clean_db: str, fake: tuple[FakeTwilioSms, str], guard: SendOnceGuard
) -> None:
    _server, fake_url = fake
    campaign_id = setup_campaign(clean_db, SMS_SPEC, customers_csv([rome_phone(4)]))
    start(clean_db, campaign_id, MONDAY_8_UTC)
    sender = _provider(fake_url, guard)
    _send_first_contacts(clean_db, sender, MONDAY_8_UTC, 1)
    sender.close()
    fields = twilio_sms.inbound_message(
        "SMin1", rome_phone(4), "+12125550197", "Non scrivetemi più", opt_out_type="STOP"
    )
    assert ingress.post_sms(fields).status_code == 200
    ingress.apply(MONDAY_8_UTC)
    (enrollment,) = enrollments_of(clean_db, campaign_id)
    assert enrollment.state == "opted_out"


# --------------------------------------------------------------------------- Meta


def test_metas_handshake_is_answered_as_text_only_with_our_token(ingress: Ingress) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "424242"}
    ok = httpx.get(ingress.url + "/webhooks/whatsapp", params=query, timeout=10)
    assert (ok.status_code, ok.text) == (200, "424242")
    assert ok.headers["content-type"].startswith("text/plain")
    wrong = query | {"hub.verify_token": "guessed"}
    assert (
        httpx.get(ingress.url + "/webhooks/whatsapp", params=wrong, timeout=10).status_code == 403
    )


def test_a_meta_signed_status_is_stored_and_applied_and_a_forged_one_is_401(
    ingress: Ingress, clean_db: str
) -> None:
    campaign_id = setup_campaign(clean_db, {}, customers_csv([rome_phone(5)]))
    with transaction(clean_db) as session:
        (enrollment,) = enrollments_of(clean_db, campaign_id)
        session.add(
            Message(
                customer_id=enrollment.customer_id,
                campaign_id=campaign_id,
                enrollment_id=enrollment.id,
                channel="whatsapp",
                direction="outbound",
                purpose="fallback",
                status="sent",
                to_address=rome_phone(5),
                provider_message_id="wamid.X1",
                idempotency_key="wa:1",
            )
        )
    payload = status_webhook(
        "wamid.X1", "delivered", MONDAY_8_UTC, rome_phone(5), phone_number_id="1"
    )
    assert ingress.post_meta(payload, secret="x" * 32).status_code == 401
    answer = ingress.post_meta(payload)
    assert answer.status_code == 200
    assert answer.json()["stored"] == 1
    assert ingress.apply(MONDAY_8_UTC) == ["applied"]
    assert {message.status for message in _outbound(clean_db)} == {"delivered"}
