"""The webhook ingress over real HTTP (uvicorn on loopback) against real PostgreSQL.

One ingress server serves the module; each test gets an empty database and a fresh
record of what was enqueued. The recorder opens its own transaction when called, so
it also proves that an event is committed before it is enqueued. Applying is done by
the test with apply_stored, as the Celery task would.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from dialer import metrics
from dialer.api import create_ingress_app
from dialer.api.ingress import MAX_BODY_BYTES
from dialer.providers.base import CallRecord
from dialer.providers.events import call_status_event, event_payload, parse_event_payload
from dialer.providers.send_guard import SendOnceGuard
from dialer.providers.signing import sign_headers
from dialer.providers.whatsapp import (
    WhatsAppCloudProvider,
    WhatsAppConfig,
    inbound_webhook,
    status_webhook,
    whatsapp_aware,
)
from dialer.sandbox.testing import serve_in_thread
from dialer.sandbox.whatsapp import WhatsAppSandboxConfig, create_whatsapp_app, install
from dialer.services.inbox import apply_stored
from dialer.services.messages import claim_due_messages, send_message
from dialer.settings import Settings
from models import Customer, Message
from models import ProviderEvent as InboxRow
from models.session import transaction
from scheduler import ticks
from tests.integration.loopback_support import free_port, wait_until
from tests.integration.pipeline_support import (
    MONDAY_8_UTC,
    attempts_of,
    customers_csv,
    enrollments_of,
    make_driver,
    rome_phone,
    setup_campaign,
    start,
    uow_for,
)

SECRET = "whsec_ingress_test"
TOLERANCE_SECONDS = 300
PHONE = rome_phone(7)
PHONE_DIGITS = PHONE.lstrip("+")
AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
INBOX_PARSER = whatsapp_aware(parse_event_payload)
EVERYONE_ANSWERS: dict[str, Any] = {
    "answer_rate": 1.0,
    "voicemail_rate": 0.0,
    "failure_rate": 0.0,
    "busy_rate": 0.0,
    "no_answer_rate": 0.0,
    "whatsapp_reply_rate": 0.0,
}


@dataclass
class Enqueued:
    """The recording enqueue_apply: which ids, and whether each was committed by then."""

    database_url: str
    ids: list[uuid.UUID] = field(default_factory=list)
    committed: list[bool] = field(default_factory=list)
    fail: bool = False

    def __call__(self, inbox_id: uuid.UUID) -> None:
        with transaction(self.database_url) as session:
            self.committed.append(session.get(InboxRow, inbox_id) is not None)
        self.ids.append(inbox_id)
        if self.fail:
            raise ConnectionError("broker down")


@dataclass
class OffsetClock:
    """The ingress's clock: real time, plus an offset a test may move forward."""

    offset_seconds: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_seconds


@dataclass
class Ingress:
    url: str
    enqueued: Enqueued
    clock: OffsetClock
    database_url: str

    def post(
        self,
        path: str,
        body: bytes,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        signed = sign_headers(secret, int(time.time()) if timestamp is None else timestamp, body)
        sent_headers = (signed if headers is None else headers) | {
            "Content-Type": "application/json"
        }
        return httpx.post(f"{self.url}{path}", content=body, headers=sent_headers, timeout=10)

    def inbox(self) -> list[InboxRow]:
        with transaction(self.database_url) as session:
            return list(session.scalars(select(InboxRow).order_by(InboxRow.received_at)))

    def apply_enqueued(self, now: datetime) -> list[str]:
        """Apply every enqueued event in arrival order, each in its own transaction."""
        outcomes = []
        for inbox_id in self.enqueued.ids:
            with transaction(self.database_url) as session:
                outcomes.append(apply_stored(session, inbox_id, INBOX_PARSER, now))
        return outcomes


@pytest.fixture(scope="module")
def ingress_server(base_settings: Settings, database_url: str) -> Iterator[Ingress]:
    settings = base_settings.model_copy(
        update={
            "database_url": database_url,
            "webhook_secret": SecretStr(SECRET),
            "webhook_tolerance_seconds": TOLERANCE_SECONDS,
        }
    )
    enqueued, clock = Enqueued(database_url), OffsetClock()
    app = create_ingress_app(settings, uow_for(database_url), enqueued, clock=clock)
    with serve_in_thread(app) as url:
        yield Ingress(url, enqueued, clock, database_url)


@pytest.fixture
def ingress(ingress_server: Ingress, clean_db: str) -> Ingress:
    ingress_server.enqueued.ids.clear()
    ingress_server.enqueued.committed.clear()
    ingress_server.enqueued.fail = False
    ingress_server.clock.offset_seconds = 0.0
    return ingress_server


def webhook_count(result: str) -> float:
    """dialer_webhook_events_total{result}: the ingress runs in this process."""
    return metrics.sample("dialer_webhook_events_total", {"result": result})


def call_body(status: str = "ringing", call_id: str = "call_1") -> bytes:
    record = CallRecord(id=call_id, status=status, to=PHONE, created_at=AT, ringing_at=AT)
    return json.dumps(event_payload(call_status_event(record))).encode()


def whatsapp_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


# --------------------------------------------------------------------------- intake


def test_healthz_answers_without_a_signature(ingress: Ingress) -> None:
    response = httpx.get(f"{ingress.url}/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_a_signed_call_event_is_stored_committed_then_enqueued(ingress: Ingress) -> None:
    response = ingress.post("/webhooks/calls/simulated", call_body())

    assert response.status_code == 200
    assert response.json() == {"status": "stored", "stored": 1, "duplicates": 0}
    (row,) = ingress.inbox()
    assert (row.provider, row.event_id, row.kind, row.status) == (
        "simulated",
        "call_1:ringing",
        "call.status",
        "received",
    )
    assert row.payload == json.loads(call_body())
    assert ingress.enqueued.ids == [row.id]
    assert ingress.enqueued.committed == [True]


def _forged(body: bytes) -> dict[str, str]:
    return sign_headers("not-the-secret", int(time.time()), body)


def _tampered(body: bytes) -> dict[str, str]:
    return sign_headers(SECRET, int(time.time()), body.replace(b"ringing", b"complete"))


def _stale(body: bytes) -> dict[str, str]:
    return sign_headers(SECRET, int(time.time()) - TOLERANCE_SECONDS - 5, body)


def _future(body: bytes) -> dict[str, str]:
    return sign_headers(SECRET, int(time.time()) + TOLERANCE_SECONDS + 5, body)


def _unsigned(_body: bytes) -> dict[str, str]:
    return {}


def _bad_timestamp(body: bytes) -> dict[str, str]:
    return sign_headers(SECRET, int(time.time()), body) | {"X-Dialer-Timestamp": "soon"}


@pytest.mark.parametrize(
    ("headers_for", "reason"),
    [
        (_forged, "signature does not match"),
        (_tampered, "signature does not match"),
        (_stale, "tolerance"),
        (_future, "tolerance"),
        (_unsigned, "missing signature headers"),
        (_bad_timestamp, "not an integer"),
    ],
    ids=["forged", "tampered_body", "stale", "future", "unsigned", "bad_timestamp"],
)
@pytest.mark.parametrize("path", ["/webhooks/calls/simulated", "/webhooks/whatsapp"])
def test_an_unverified_webhook_is_refused_and_touches_nothing(
    ingress: Ingress,
    capfd: pytest.CaptureFixture[str],
    headers_for: Any,
    reason: str,
    path: str,
) -> None:
    body = call_body().replace(b'"call_1"', b'"call_1","note":"BODY-MARKER"')
    forged = webhook_count("forged")
    response = ingress.post(path, body, headers=headers_for(body))

    assert response.status_code == 401
    assert webhook_count("forged") == forged + 1
    error = response.json()["error"]
    assert error["code"] == "invalid_signature"
    assert reason in error["message"]
    assert ingress.inbox() == []
    assert ingress.enqueued.ids == []
    logged = "".join(capfd.readouterr())
    assert "webhook_signature_rejected" in logged
    assert "BODY-MARKER" not in logged
    assert PHONE_DIGITS[-8:] not in logged


def test_a_request_replayed_after_the_tolerance_is_refused(ingress: Ingress) -> None:
    body = call_body()
    headers = sign_headers(SECRET, int(time.time()), body)
    first = ingress.post("/webhooks/calls/simulated", body, headers=headers)
    ingress.clock.offset_seconds = TOLERANCE_SECONDS + 1  # the same bytes, later
    replay = ingress.post("/webhooks/calls/simulated", body, headers=headers)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_signature"
    assert len(ingress.inbox()) == 1
    assert len(ingress.enqueued.ids) == 1


def test_a_duplicate_event_is_stored_once_and_enqueued_once(ingress: Ingress) -> None:
    stored, duplicate = webhook_count("stored"), webhook_count("duplicate")
    first = ingress.post("/webhooks/calls/simulated", call_body())
    again = ingress.post("/webhooks/calls/simulated", call_body())  # freshly signed resend

    assert (webhook_count("stored"), webhook_count("duplicate")) == (stored + 1, duplicate + 1)
    assert first.json()["status"] == "stored"
    assert (again.status_code, again.json()) == (
        200,
        {"status": "duplicate", "stored": 0, "duplicates": 1},
    )
    assert len(ingress.inbox()) == 1
    assert len(ingress.enqueued.ids) == 1


def test_a_malformed_call_event_is_422_naming_the_field_and_kept_as_rejected(
    ingress: Ingress,
) -> None:
    payload = json.loads(call_body())
    del payload["call"]["status"]
    rejected = webhook_count("rejected")
    response = ingress.post("/webhooks/calls/simulated", json.dumps(payload).encode())

    assert response.status_code == 422
    assert webhook_count("rejected") == rejected + 1
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [{"field": "status", "reason": "missing field 'status'"}]
    (row,) = ingress.inbox()
    assert (row.status, row.kind, row.payload) == ("rejected", "rejected", payload)
    assert row.error == "call.status: missing field 'status'"
    assert ingress.enqueued.ids == []


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "body is not valid JSON"), (b"[1, 2]", "body is not a JSON object")],
    ids=["not_json", "not_an_object"],
)
@pytest.mark.parametrize("path", ["/webhooks/calls/simulated", "/webhooks/whatsapp"])
def test_a_body_that_is_not_a_json_object_is_422_and_kept_raw(
    ingress: Ingress, body: bytes, message: str, path: str
) -> None:
    response = ingress.post(path, body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"].startswith(message)
    assert error["details"][0]["field"] == "body"
    (row,) = ingress.inbox()
    assert row.status == "rejected"
    assert row.payload["raw"] == body.decode()
    assert base64.b64decode(row.payload["raw_base64"]) == body
    assert ingress.enqueued.ids == []


def _nested(levels: int) -> bytes:
    return b'{"event_id": "e1", "x": ' + b"[" * levels + b"]" * levels + b"}"


def _call_body_with(**changes: Any) -> bytes:
    payload = json.loads(call_body())
    payload.update(changes)
    return json.dumps(payload).encode()


# Each signed, each answered 500 (and so sent again forever) before issue 14.
MALFORMED_BODIES = {
    "escaped_nul": _call_body_with(event_id="call_1:\u0000"),  # json.dumps writes \u0000
    "raw_nul_byte": call_body().replace(b"call_1:ringing", b"call_1:\x00ringing"),
    "nan": call_body()[:-1] + b', "score": NaN}',
    "infinity": call_body()[:-1] + b', "big": Infinity}',
    "overflowing_number": call_body()[:-1] + b', "big": 1e999}',
    "lone_surrogate": call_body()[:-1] + b', "name": "\\ud800"}',
    "nested_1000_levels": _nested(1000),
    "nested_100_levels": _nested(100),
    "event_id_100000_chars": _call_body_with(event_id="e" * 100_000),
}


@pytest.mark.parametrize("path", ["/webhooks/calls/simulated", "/webhooks/whatsapp"])
@pytest.mark.parametrize("name", list(MALFORMED_BODIES))
def test_a_signed_malformed_body_is_422_and_kept_as_rejected_with_its_raw_bytes(
    ingress: Ingress, name: str, path: str
) -> None:
    body = MALFORMED_BODIES[name]
    if path.endswith("whatsapp") and name == "event_id_100000_chars":
        body = body.replace(b'"event_id"', b'"object": "whatsapp_business_account", "event_id"')
    response = ingress.post(path, body)

    assert response.status_code == 422, response.text
    assert set(response.json()) == {"error"}, "the ingress's own error shape"
    assert response.json()["error"]["code"] == "validation_error"
    (row,) = ingress.inbox()
    assert (row.status, row.kind) == ("rejected", "rejected")
    assert row.error
    kept = row.payload
    if "raw_base64" in kept:  # not storable as JSON: the bytes, exactly
        assert base64.b64decode(kept["raw_base64"]) == body
        assert kept["raw_bytes"] == len(body)
    else:  # storable as JSON, rejected by the parser
        assert kept == json.loads(body)
    assert ingress.enqueued.ids == []


def test_an_unknown_call_provider_is_404_and_nothing_is_stored(ingress: Ingress) -> None:
    response = ingress.post("/webhooks/calls/elsewhere", call_body())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_provider"
    assert ingress.inbox() == []


def test_a_body_over_the_size_limit_is_413(ingress: Ingress) -> None:
    response = ingress.post("/webhooks/whatsapp", b"{" + b" " * MAX_BODY_BYTES + b"}")
    assert response.status_code == 413
    assert ingress.inbox() == []


def test_an_event_stored_while_the_broker_is_down_is_still_acknowledged(
    ingress: Ingress,
) -> None:
    ingress.enqueued.fail = True
    response = ingress.post("/webhooks/calls/simulated", call_body())
    assert response.json()["status"] == "stored"  # the reaper applies it later
    assert [row.status for row in ingress.inbox()] == ["received"]


def test_when_the_database_is_down_the_answer_is_500_so_the_provider_resends(
    base_settings: Settings,
) -> None:
    def unit_of_work_without_database() -> Any:
        raise ConnectionRefusedError("database down")

    settings = base_settings.model_copy(update={"webhook_secret": SecretStr(SECRET)})
    enqueued: list[uuid.UUID] = []
    app = create_ingress_app(settings, unit_of_work_without_database, enqueued.append)
    with serve_in_thread(app) as url:
        body = call_body()
        response = httpx.post(
            f"{url}/webhooks/calls/simulated",
            content=body,
            headers=sign_headers(SECRET, int(time.time()), body),
        )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert enqueued == []


def test_each_event_of_a_whatsapp_body_is_stored_and_enqueued_on_its_own(
    ingress: Ingress,
) -> None:
    payload = status_webhook("wamid.A", "delivered", AT, PHONE, phone_number_id="pn")
    read = status_webhook("wamid.A", "read", AT, PHONE, phone_number_id="pn")
    reply = inbound_webhook("wamid.R", PHONE, "hi", AT, phone_number_id="pn")
    value = payload["entry"][0]["changes"][0]["value"]
    value["statuses"] += read["entry"][0]["changes"][0]["value"]["statuses"]
    payload["entry"] += reply["entry"]

    response = ingress.post("/webhooks/whatsapp", whatsapp_body(payload))
    again = ingress.post("/webhooks/whatsapp", whatsapp_body(payload))

    assert response.json() == {"status": "stored", "stored": 3, "duplicates": 0}
    assert again.json() == {"status": "duplicate", "stored": 0, "duplicates": 3}
    rows = ingress.inbox()
    assert sorted(row.event_id for row in rows) == [
        "wamid.A:delivered",
        "wamid.A:read",
        "wamid.R:inbound",
    ]
    assert {row.provider for row in rows} == {"whatsapp"}
    assert sorted(ingress.enqueued.ids) == sorted(row.id for row in rows)
    assert all(ingress.enqueued.committed)


def test_a_whatsapp_body_without_message_events_is_acknowledged_and_not_stored(
    ingress: Ingress,
) -> None:
    payload = status_webhook("wamid.A", "sent", AT, PHONE, phone_number_id="pn")
    payload["entry"][0]["changes"][0] = {"field": "account_update", "value": {"event": "x"}}
    response = ingress.post("/webhooks/whatsapp", whatsapp_body(payload))
    assert response.json() == {"status": "ignored", "stored": 0, "duplicates": 0}
    assert ingress.inbox() == []


def test_a_malformed_whatsapp_body_is_422_naming_the_path_and_kept(ingress: Ingress) -> None:
    payload = status_webhook("wamid.A", "bounced", AT, PHONE, phone_number_id="pn")
    response = ingress.post("/webhooks/whatsapp", whatsapp_body(payload))

    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert detail["field"] == "entry[0].changes[0].value.statuses[0].status"
    assert "sent, delivered, read, failed" in detail["reason"]
    (row,) = ingress.inbox()
    assert (row.provider, row.status, row.payload) == ("whatsapp", "rejected", payload)
    assert ingress.enqueued.ids == []


# --------------------------------------------------------------------------- applied


def test_call_events_applied_out_of_order_end_completed(
    ingress: Ingress, clean_db: str, redis_url: str
) -> None:
    spec = {"whatsapp_channel": None, "whatsapp_first_message": None}
    campaign_id = setup_campaign(clean_db, spec, customers_csv([rome_phone(1)]))
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver.tick()  # the call is placed with the simulated provider
    (placed,) = attempts_of(clean_db, campaign_id)
    assert placed.conv_id is not None
    driver.clock.advance(timedelta(hours=1))
    completed = driver.voice.get_call(placed.conv_id)
    driver.clock.now = completed.ringing_at or MONDAY_8_UTC
    ringing = driver.voice.get_call(placed.conv_id)
    assert (completed.status, ringing.status) == ("completed", "ringing")

    for record in (completed, ringing):  # the final event overtakes the first
        body = json.dumps(event_payload(call_status_event(record))).encode()
        assert ingress.post("/webhooks/calls/simulated", body).json()["stored"] == 1
    outcomes = ingress.apply_enqueued(MONDAY_8_UTC + timedelta(hours=1))
    assert outcomes == ["applied", "unchanged"]  # the late "ringing" moves nothing back

    (attempt,) = attempts_of(clean_db, campaign_id)
    assert (attempt.status, attempt.outcome) == ("completed", "answered")


@pytest.fixture(scope="module")
def whatsapp_sandbox() -> Iterator[tuple[FastAPI, str]]:
    app = create_whatsapp_app(WhatsAppSandboxConfig(webhook_url=None, webhook_secret=SECRET))
    with serve_in_thread(app) as url:
        yield app, url


@pytest.fixture
def whatsapp_sender(
    whatsapp_sandbox: tuple[FastAPI, str], redis_client: redis.Redis, redis_namespace: str
) -> Iterator[WhatsAppCloudProvider]:
    config = WhatsAppConfig(base_url=whatsapp_sandbox[1], token="wa_test", phone_number_id="pn")
    provider = WhatsAppCloudProvider(config, SendOnceGuard(redis_client, redis_namespace))
    yield provider
    provider.close()


def test_whatsapp_replies_through_the_ingress_meet_the_goal_or_opt_out(
    ingress: Ingress,
    clean_db: str,
    whatsapp_sandbox: tuple[FastAPI, str],
    whatsapp_sender: WhatsAppCloudProvider,
) -> None:
    """Sent through the sandbox; its status and reply webhooks come back signed."""
    sandbox_app, sandbox_url = whatsapp_sandbox
    install(
        sandbox_app,
        WhatsAppSandboxConfig(
            webhook_url=f"{ingress.url}/webhooks/whatsapp",
            webhook_secret=SECRET,
            token="wa_test",
            status_delay_seconds=0.01,
        ),
    )
    spec = {
        "first_contact_channel": "whatsapp",
        "goal_spec": {"objectives": [{"type": "contact", "channels": ["whatsapp"]}]},
    }
    keen, done_with_us = rome_phone(1), rome_phone(2)
    campaign_id = setup_campaign(clean_db, spec, customers_csv([keen, done_with_us]))
    start(clean_db, campaign_id, MONDAY_8_UTC)
    send_first_contacts(clean_db, whatsapp_sender, MONDAY_8_UTC)

    wait_until(lambda: len(ingress.enqueued.ids) == 6, 5.0, "3 statuses x 2 messages expected")
    ingress.apply_enqueued(MONDAY_8_UTC)
    assert {message.status for message in outbound(clean_db)} == {"read"}

    ingress.enqueued.ids.clear()
    with httpx.Client(base_url=sandbox_url) as admin:
        for phone, text in ((keen, "Yes, call me tomorrow"), (done_with_us, "STOP")):
            reply = admin.post("/sandbox/whatsapp/inbound", json={"from": phone, "text": text})
            assert reply.json()["webhook_status"] == 200
    assert ingress.apply_enqueued(MONDAY_8_UTC + timedelta(minutes=5)) != []

    states = {
        phone_of(clean_db, enrollment.customer_id): enrollment.state
        for enrollment in enrollments_of(clean_db, campaign_id)
    }
    assert states == {keen: "goal_met", done_with_us: "opted_out"}
    with transaction(clean_db) as session:
        opted_out = {c.phone: c.opted_out for c in session.scalars(select(Customer))}
    assert opted_out == {keen: False, done_with_us: True}


def send_first_contacts(url: str, sender: WhatsAppCloudProvider, now: datetime) -> None:
    """What beat and the message task do: materialise the first contacts, then send them."""
    uow = uow_for(url)

    def materialize(topic: str, payload: dict[str, Any]) -> None:
        ticks.materialize(uow, topic, uuid.UUID(payload["campaign_id"]), now)

    ticks.relay_outbox(uow, materialize, now)
    with uow() as session:
        due = claim_due_messages(session, now, 10)
    assert len(due) == 2
    assert [send_message(uow, sender, message_id, now) for message_id in due] == ["sent", "sent"]


def outbound(url: str) -> list[Message]:
    with transaction(url) as session:
        return list(session.scalars(select(Message).where(Message.direction == "outbound")))


def phone_of(url: str, customer_id: uuid.UUID) -> str | None:
    with transaction(url) as session:
        return session.get_one(Customer, customer_id).phone


def test_a_stop_whose_first_delivery_hit_a_dead_ingress_is_applied_when_resent(
    clean_db: str,
    base_settings: Settings,
    whatsapp_sandbox: tuple[FastAPI, str],
    whatsapp_sender: WhatsAppCloudProvider,
) -> None:
    """Meta re-sends a webhook that was not answered 200; the ingress, once back, takes it."""
    sandbox_app, sandbox_url = whatsapp_sandbox
    port = free_port()
    sandbox = install(
        sandbox_app,
        WhatsAppSandboxConfig(
            webhook_url=f"http://127.0.0.1:{port}/webhooks/whatsapp",
            webhook_secret=SECRET,
            token="wa_test",
            status_delay_seconds=0.01,
            redelivery_max_pause_seconds=0.5,
        ),
    )
    campaign_id = setup_campaign(
        clean_db, {"first_contact_channel": "whatsapp"}, customers_csv([PHONE, rome_phone(8)])
    )
    start(clean_db, campaign_id, MONDAY_8_UTC)
    send_first_contacts(clean_db, whatsapp_sender, MONDAY_8_UTC)
    with httpx.Client(base_url=sandbox_url) as admin:
        reply = admin.post("/sandbox/whatsapp/inbound", json={"from": PHONE, "text": "STOP"})
    assert (reply.json()["webhook_status"], reply.json()["redelivering"]) == (0, True)
    time.sleep(1.0)  # the ingress stays down through a few re-deliveries

    settings = base_settings.model_copy(
        update={"database_url": clean_db, "webhook_secret": SecretStr(SECRET)}
    )
    enqueued = Enqueued(clean_db)
    app = create_ingress_app(settings, uow_for(clean_db), enqueued)
    with serve_in_thread(app, port=port):  # the ingress is back at the same address
        inbound_id = f"{reply.json()['id']}:inbound"
        wait_until(
            lambda: any(d["event"] == inbound_id for d in sandbox.deliveries),
            10.0,
            "the STOP re-delivered",
        )
    assert [d["status_code"] for d in sandbox.deliveries if d["event"] == inbound_id] == [200]
    for inbox_id in enqueued.ids:
        with transaction(clean_db) as session:
            apply_stored(session, inbox_id, INBOX_PARSER, MONDAY_8_UTC + timedelta(minutes=5))
    states = {
        phone_of(clean_db, enrollment.customer_id): enrollment.state
        for enrollment in enrollments_of(clean_db, campaign_id)
    }
    assert states[PHONE] == "opted_out"
    with transaction(clean_db) as session:
        opted_out = {c.phone: c.opted_out for c in session.scalars(select(Customer))}
    assert opted_out == {PHONE: True, rome_phone(8): False}
