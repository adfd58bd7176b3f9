"""E-mail goals over real servers: SMTP (aiosmtpd), `dialer api` (HTTP loopback), PostgreSQL.

A campaign e-mail goes out over SMTP with its templated subject and our message id in
``X-SMTPAPI``; SendGrid's signed Event Webhook events, posted to the app `dialer api`
serves, are stored in the inbox (a forged, stale or unsigned body: 401, nothing stored;
a malformed one: 422, kept as rejected) and applied to the message. An email objective
counting delivered mail is met only once the delivered event is applied; one counting
accepted mail is met when the SMTP server accepts it.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import redis
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from dialer.api import create_app
from dialer.policies.vocabulary import (
    Channel,
    Direction,
    EnrollmentState,
    MessagePurpose,
    MessageStatus,
    ProviderEventStatus,
)
from dialer.providers import sendgrid_events
from dialer.providers.email_smtp import SmtpConfig, SmtpEmailProvider
from dialer.providers.send_guard import SendOnceGuard
from dialer.sandbox.testing import serve_in_thread
from dialer.services.inbox import apply_stored
from dialer.services.messages import send_message
from dialer.settings import Settings
from models import Campaign, Enrollment, Message
from models import ProviderEvent as InboxRow
from models.session import transaction
from tests.integration.loopback_support import free_port
from tests.integration.pipeline_support import MONDAY_8_UTC, setup_campaign, uow_for

pytestmark = pytest.mark.integration

SENDER = "campaigns@dialer.example"
CSV = "customer_id,name,phone,email\nc1,Ann,+390612345600,ann@example.org\n"
EMAIL_SPEC: dict[str, Any] = {
    "email_channel": {"name": "Mail", "address": SENDER},
    "goal_spec": {"objectives": [{"type": "email"}]},
    "email_subject": "{{name}}, your appointment",
}
PRIVATE_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY_B64 = base64.b64encode(
    PRIVATE_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
).decode()
PARSE = sendgrid_events.sendgrid_aware(lambda _payload: pytest.fail("not a SendGrid row"))


class Mailbox:
    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 OK"


@pytest.fixture
def smtp(redis_client: redis.Redis, redis_namespace: str) -> Iterator[tuple[Mailbox, Any]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    config = SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, timeout_seconds=5.0)
    yield box, SmtpEmailProvider(config, SendOnceGuard(redis_client, redis_namespace))
    controller.stop()


@pytest.fixture
def api_url(
    settings: Settings, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, list[uuid.UUID]]]:
    monkeypatch.setenv("DIALER_EMAIL_SENDGRID_PUBLIC_KEY", PUBLIC_KEY_B64)
    enqueued: list[uuid.UUID] = []
    app = create_app(settings, uow_for(clean_db), enqueue_apply=enqueued.append)
    with serve_in_thread(app) as url:
        yield url, enqueued


def queue_email(url: str, counts: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A campaign with an email objective and one queued e-mail: (message id, enrollment id)."""
    campaign_id = setup_campaign(url, {**EMAIL_SPEC, "email_goal_counts": counts}, CSV)
    with transaction(url) as session:
        campaign = session.get_one(Campaign, campaign_id)
        enrollment = session.scalars(
            select(Enrollment).where(Enrollment.campaign_id == campaign_id)
        ).one()
        message = Message(
            customer_id=enrollment.customer_id,
            enrollment_id=enrollment.id,
            campaign_id=campaign_id,
            channel_id=campaign.email_channel_id,
            channel=Channel.EMAIL,
            direction=Direction.OUTBOUND,
            purpose=MessagePurpose.NOTICE,
            status=MessageStatus.QUEUED,
            to_address="ann@example.org",
            body="Hello {{name}},\nsee you soon.",
            idempotency_key=f"msg:{enrollment.id}:notice",
        )
        session.add(message)
        session.flush()
        return message.id, enrollment.id


def event(message_id: uuid.UUID, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": "ann@example.org",
        "timestamp": int(MONDAY_8_UTC.timestamp()),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": kind,
        "sg_event_id": f"evt-{kind}-{message_id.hex[:8]}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        sendgrid_events.MESSAGE_ID_ARG: str(message_id),
        **extra,
    }


def post(base_url: str, events: list[dict[str, Any]], *, at: float | None = None) -> httpx.Response:
    body = json.dumps(events).encode()
    headers = sendgrid_events.sign(PRIVATE_KEY, int(at or time.time()), body)
    return httpx.post(
        base_url + sendgrid_events.WEBHOOK_PATH,
        content=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=5,
    )


def apply_all(url: str, inbox_ids: list[uuid.UUID]) -> None:
    for inbox_id in inbox_ids:
        with transaction(url) as session:
            apply_stored(session, inbox_id, PARSE, MONDAY_8_UTC)
    inbox_ids.clear()


def state_of(url: str, enrollment_id: uuid.UUID) -> tuple[str, str]:
    with transaction(url) as session:
        enrollment = session.get_one(Enrollment, enrollment_id)
        result = enrollment.goal_result or {"objectives": [{"reason": "not evaluated"}]}
        return enrollment.state, result["objectives"][0]["reason"]


def message_status(url: str, message_id: uuid.UUID) -> str:
    with transaction(url) as session:
        return session.get_one(Message, message_id).status


def inbox(url: str) -> list[InboxRow]:
    with transaction(url) as session:
        return list(session.scalars(select(InboxRow).order_by(InboxRow.received_at)))


def test_an_objective_counting_delivered_mail_is_met_only_after_the_delivered_event(
    clean_db: str, smtp: tuple[Mailbox, Any], api_url: tuple[str, list[uuid.UUID]]
) -> None:
    box, provider = smtp
    base_url, enqueued = api_url
    message_id, enrollment_id = queue_email(clean_db, "delivered")

    assert send_message(uow_for(clean_db), provider, message_id, MONDAY_8_UTC) == "sent"
    (mail,) = box.received
    assert mail["Subject"] == "Ann, your appointment"
    smtpapi = json.loads(mail[sendgrid_events.SMTPAPI_HEADER])
    assert smtpapi == {"unique_args": {"dialer_message_id": str(message_id)}}
    assert state_of(clean_db, enrollment_id) == ("active", "0 of 1 emails delivered")

    processed = post(base_url, [event(message_id, "processed")])
    assert processed.status_code == 200, processed.text
    apply_all(clean_db, enqueued)
    assert state_of(clean_db, enrollment_id) == ("active", "0 of 1 emails delivered")

    delivered = post(base_url, [event(message_id, "delivered", response="250 OK")])
    assert delivered.json() == {"status": "stored", "stored": 1, "duplicates": 0}
    apply_all(clean_db, enqueued)
    assert message_status(clean_db, message_id) == MessageStatus.DELIVERED
    assert state_of(clean_db, enrollment_id) == ("goal_met", "1 of 1 emails delivered")

    # A late, re-delivered or older event changes nothing (monotonic; the inbox dedupes).
    again = post(base_url, [event(message_id, "delivered", response="250 OK")])
    assert again.json()["status"] == "duplicate"
    post(base_url, [event(message_id, "deferred", sg_event_id="evt-late")])
    apply_all(clean_db, enqueued)
    assert message_status(clean_db, message_id) == MessageStatus.DELIVERED


def test_an_objective_counting_accepted_mail_is_met_when_smtp_accepts_it(
    clean_db: str, smtp: tuple[Mailbox, Any]
) -> None:
    _box, provider = smtp
    message_id, enrollment_id = queue_email(clean_db, "accepted")
    send_message(uow_for(clean_db), provider, message_id, MONDAY_8_UTC)
    assert state_of(clean_db, enrollment_id) == (
        EnrollmentState.GOAL_MET,
        "1 of 1 emails accepted",
    )


def test_a_bounce_fails_the_message_and_keeps_the_reason(
    clean_db: str, smtp: tuple[Mailbox, Any], api_url: tuple[str, list[uuid.UUID]]
) -> None:
    _box, provider = smtp
    base_url, enqueued = api_url
    message_id, enrollment_id = queue_email(clean_db, "delivered")
    send_message(uow_for(clean_db), provider, message_id, MONDAY_8_UTC)
    bounce = event(message_id, "bounce", reason="550 5.1.1 user unknown", type="bounce")
    assert post(base_url, [bounce]).status_code == 200
    apply_all(clean_db, enqueued)
    with transaction(clean_db) as session:
        message = session.get_one(Message, message_id)
        assert (message.status, message.error) == (
            MessageStatus.FAILED,
            "sendgrid bounce (bounce): 550 5.1.1 user unknown",
        )
    assert state_of(clean_db, enrollment_id)[0] == EnrollmentState.ACTIVE


def test_forged_stale_and_unsigned_bodies_are_refused_and_a_malformed_one_is_kept(
    clean_db: str, api_url: tuple[str, list[uuid.UUID]]
) -> None:
    base_url, enqueued = api_url
    one = [event(uuid.uuid4(), "delivered")]
    body = json.dumps(one).encode()
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = httpx.post(
        base_url + sendgrid_events.WEBHOOK_PATH,
        content=body,
        headers=sendgrid_events.sign(other_key, int(time.time()), body),
    )
    unsigned = httpx.post(base_url + sendgrid_events.WEBHOOK_PATH, content=body)
    stale = post(base_url, one, at=time.time() - 3600)
    for answer in (forged, unsigned, stale):
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "invalid_signature"
    assert inbox(clean_db) == []

    bad = post(base_url, [{**one[0], "event": "teleported"}])
    assert bad.status_code == 422
    assert bad.json()["error"]["details"] == [
        {"field": "[0].event", "reason": "field '[0].event' names no known event ('teleported')"}
    ]
    (kept,) = inbox(clean_db)
    assert kept.status == ProviderEventStatus.REJECTED
    assert kept.payload["events"][0]["event"] == "teleported"
    assert enqueued == []
