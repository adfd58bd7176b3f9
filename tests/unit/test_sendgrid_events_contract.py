"""SendGrid's Event Webhook, from fixtures written after its docs.

Events: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
Signature: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from dialer.policies.vocabulary import MessageStatus
from dialer.providers import sendgrid_events as sg
from dialer.providers.base import SendMessageRequest
from dialer.providers.email_smtp import build_email
from dialer.providers.signing import SignatureError

pytestmark = pytest.mark.unit

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_B64 = base64.b64encode(
    KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
).decode()
NOW = 1_764_700_000.0
OURS = "7b0c5a58-4c0e-4c57-9b43-0a4a1f7c2d11"


def doc_event(kind: str, **extra: Any) -> dict[str, Any]:
    """The docs' example event shape, with our unique argument as SendGrid echoes it."""
    return {
        "email": "example@test.com",
        "timestamp": 1513299569,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": kind,
        "category": "cat facts",
        "sg_event_id": f"sg_event_id_{kind}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "dialer_message_id": OURS,
        **extra,
    }


# --------------------------------------------------------------------------- signature


def test_a_body_signed_with_the_key_passes() -> None:
    body = json.dumps([doc_event("delivered")]).encode()
    headers = sg.sign(KEY, int(NOW), body)
    sg.verify_webhook(
        sg.load_public_key(PUBLIC_B64), headers, body, now=NOW + 5, tolerance_seconds=300
    )


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda h, b: (h, b + b" "), "does not match"),  # body changed after signing
        (lambda h, b: ({**h, sg.TIMESTAMP_HEADER: str(int(NOW) + 1)}, b), "does not match"),
        (lambda h, b: (sg.sign(ec.generate_private_key(ec.SECP256R1()), int(NOW), b), b), "match"),
        (lambda h, b: ({**h, sg.SIGNATURE_HEADER: "not base64!"}, b), "does not match"),
        (lambda h, b: ({sg.TIMESTAMP_HEADER: str(int(NOW))}, b), "missing"),
        (lambda h, b: ({sg.SIGNATURE_HEADER: h[sg.SIGNATURE_HEADER]}, b), "missing"),
        (lambda h, b: ({**h, sg.TIMESTAMP_HEADER: "soon"}, b), "not a number"),
    ],
)
def test_forged_or_incomplete_signatures_are_refused(tamper: Any, message: str) -> None:
    body = json.dumps([doc_event("delivered")]).encode()
    headers, sent = tamper(sg.sign(KEY, int(NOW), body), body)
    with pytest.raises(SignatureError, match=message):
        sg.verify_webhook(
            sg.load_public_key(PUBLIC_B64), headers, sent, now=NOW, tolerance_seconds=300
        )


@pytest.mark.parametrize("age", [-301, 301, 3600])
def test_a_stale_or_future_timestamp_is_refused(age: int) -> None:
    body = b"[]"
    headers = sg.sign(KEY, int(NOW) - age, body)
    with pytest.raises(SignatureError, match="tolerance"):
        sg.verify_webhook(
            sg.load_public_key(PUBLIC_B64), headers, body, now=NOW, tolerance_seconds=300
        )


def test_without_a_key_every_request_is_refused() -> None:
    body = b"[]"
    with pytest.raises(SignatureError, match="DIALER_EMAIL_SENDGRID_PUBLIC_KEY"):
        sg.verify_webhook(None, sg.sign(KEY, int(NOW), body), body, now=NOW, tolerance_seconds=300)


def test_the_key_setting_accepts_the_console_value_and_pem_and_names_a_bad_one() -> None:
    pem = f"-----BEGIN PUBLIC KEY-----\n{PUBLIC_B64}\n-----END PUBLIC KEY-----\n"
    assert sg.EmailEventSettings(sendgrid_public_key=PUBLIC_B64).sendgrid_public_key
    assert sg.EmailEventSettings(sendgrid_public_key=pem).sendgrid_public_key
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    other_curve = base64.b64encode(
        p384.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    for bad, reason in (("changeme", "base64 DER"), (other_curve, "P-256")):
        with pytest.raises(ValidationError, match=reason) as raised:
            sg.EmailEventSettings(sendgrid_public_key=bad)
        assert raised.value.errors()[0]["loc"] == ("sendgrid_public_key",)


# --------------------------------------------------------------------------- mapping


@pytest.mark.parametrize(
    ("kind", "extra", "status", "error"),
    [
        ("processed", {}, MessageStatus.SENT, None),
        ("deferred", {"response": "400 try again later", "attempt": "5"}, MessageStatus.SENT, None),
        ("delivered", {"response": "250 OK"}, MessageStatus.DELIVERED, None),
        (
            "bounce",
            {"reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
            MessageStatus.FAILED,
            "sendgrid bounce (bounce): 500 unknown recipient",
        ),
        (
            "bounce",
            {"reason": "550 blocked", "type": "blocked"},
            MessageStatus.FAILED,
            "sendgrid bounce (blocked): 550 blocked",
        ),
        (
            "dropped",
            {"reason": "Bounced Address", "status": "5.0.0"},
            MessageStatus.FAILED,
            "sendgrid dropped: Bounced Address",
        ),
        ("open", {"useragent": "Mozilla/4.0", "ip": "255.255.255.255"}, MessageStatus.READ, None),
        ("click", {"url": "http://www.sendgrid.com/"}, MessageStatus.READ, None),
    ],
)
def test_every_delivery_and_engagement_event_maps_to_a_message_status(
    kind: str, extra: dict[str, Any], status: MessageStatus, error: str | None
) -> None:
    event = sg.parse_event(doc_event(kind, **extra))
    assert event.provider == "sendgrid"
    assert event.event_id == f"sendgrid:sg_event_id_{kind}"
    assert event.occurred_at == datetime.fromtimestamp(1513299569, UTC)
    update = event.message_status
    assert update is not None
    assert (update.status, update.error, update.message_id) == (status, error, OURS)
    assert update.provider_message_id == "<14c5d75ce93.dfd.64b469@ismtpd-555>"


@pytest.mark.parametrize(
    "kind", ["spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"]
)
def test_account_events_are_stored_without_a_status(kind: str) -> None:
    event = sg.parse_event(doc_event(kind))
    assert event.message_status is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event": "teleported"}, "[0].event"),
        ({"sg_event_id": None}, "[0].sg_event_id"),
        ({"timestamp": "yesterday"}, "[0].timestamp"),
        ({"dialer_message_id": None}, "[0].dialer_message_id"),  # not one of our mails
    ],
)
def test_a_bad_event_refuses_the_body_naming_the_field(change: dict[str, Any], field: str) -> None:
    payload = sg.decode_body(json.dumps([{**doc_event("delivered"), **change}]).encode())
    with pytest.raises(ValueError, match=re.escape(f"field '{field}'")):
        sg.split_events(payload)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"event": "delivered"}', "array of events"),
        (b"[1, 2", "not valid JSON"),
        (b'[{"x": "\\u0000"}]', "NUL"),
        (json.dumps([{}] * (sg.MAX_EVENTS_PER_BODY + 1)).encode(), "more than"),
    ],
)
def test_bodies_that_are_not_an_array_of_events_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        sg.split_events(sg.decode_body(body))


def test_a_batch_splits_into_one_event_each_and_stored_rows_are_recognised() -> None:
    events = [doc_event(kind) for kind in ("processed", "delivered", "open")]
    split = sg.split_events(sg.decode_body(json.dumps(events).encode()))
    assert [e["event"] for e in split] == ["processed", "delivered", "open"]
    assert all(sg.is_sendgrid_event(e) for e in split)
    assert not sg.is_sendgrid_event({"event_id": "x", "type": "call.status"})


# --------------------------------------------------------------------------- sending


def test_an_smtp_message_carries_our_id_in_x_smtpapi_unique_args() -> None:
    request = SendMessageRequest(
        idempotency_key="msg:1",
        channel="email",
        to="ann@example.org",
        body="Hi",
        subject="Hello Ann",
        metadata={"message_id": OURS},
    )
    message = build_email(request, "campaigns@dialer.example")
    assert json.loads(message[sg.SMTPAPI_HEADER]) == {"unique_args": {"dialer_message_id": OURS}}
    assert message["Subject"] == "Hello Ann"
