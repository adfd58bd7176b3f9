"""Vapi adapter contract: request building, every ended reason, both authentication modes.

Fixtures are written from Vapi's API reference (tests/voice_fixtures.py); requests
go to an httpx.MockTransport so each test sees exactly what would be sent.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from dialer.policies.vocabulary import ProviderCallStatus as S
from dialer.providers import vapi
from dialer.providers.base import PermanentProviderError
from dialer.providers.seen_once import InMemorySeenOnce
from dialer.providers.signing import SignatureError
from dialer.providers.webhook_auth import WebhookReplayed
from tests.voice_fixtures import (
    CALLER_ID,
    GREETING,
    OUR_METADATA,
    REQUEST,
    VAPI_END_OF_CALL,
    VAPI_QUEUED,
    VAPI_RINGING,
)

SECRET = "vapi-credential-secret"
NOW = 1741014130.0  # a second after VAPI_END_OF_CALL was sent


def settings(**extra: object) -> vapi.Settings:
    return vapi.Settings(
        api_key="vapi-private-key",
        webhook_secret=SECRET,
        phone_number_ids={CALLER_ID: "pn_1"},
        **extra,  # type: ignore[arg-type]
    )


def adapter(transport: httpx.MockTransport, **extra: object) -> vapi.VapiVoiceProvider:
    return vapi.build(settings(**extra), transport=transport, sleep=lambda _: None)


def test_place_call_sends_assistant_number_customer_variables_greeting_and_metadata() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=VAPI_QUEUED)

    record = adapter(httpx.MockTransport(handle)).place_call(REQUEST)

    (sent,) = seen
    body = json.loads(sent.content)
    assert (sent.method, sent.url.path) == ("POST", "/call")
    assert sent.headers["Authorization"] == "Bearer vapi-private-key"
    assert body["assistantId"] == "agent_123"
    assert body["phoneNumberId"] == "pn_1"
    assert body["customer"] == {"number": REQUEST.to}
    overrides = body["assistantOverrides"]
    assert overrides["variableValues"]["plan"] == "gold"
    assert overrides["firstMessage"] == GREETING
    assert overrides["metadata"] == OUR_METADATA
    assert (record.id, record.status) == (VAPI_QUEUED["id"], "queued")
    assert record.metadata == OUR_METADATA


def test_caller_id_without_a_phone_number_id_names_the_setting() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    other = replace(REQUEST, from_number="+15550000000")
    with pytest.raises(PermanentProviderError, match="DIALER_VAPI_PHONE_NUMBER_IDS"):
        adapter(httpx.MockTransport(handle)).place_call(other)
    with pytest.raises(PermanentProviderError, match="DEFAULT_PHONE_NUMBER_ID"):
        adapter(httpx.MockTransport(handle)).place_call(replace(REQUEST, from_number=None))


def test_bad_customer_number_refusal_is_an_invalid_number() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        message = ["customer.number must be a valid phone number in the E.164 format"]
        return httpx.Response(400, json={"message": message, "error": "Bad Request"})

    with pytest.raises(PermanentProviderError) as refused:
        adapter(httpx.MockTransport(handle)).place_call(REQUEST)
    assert refused.value.code == "invalid_number"


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("scheduled", None, (S.QUEUED, False)),
        ("queued", None, (S.QUEUED, False)),
        ("ringing", None, (S.RINGING, False)),
        ("in-progress", None, (S.IN_PROGRESS, False)),
        ("forwarding", None, (S.IN_PROGRESS, False)),
        ("ended", "customer-ended-call", (S.COMPLETED, False)),
        ("ended", "assistant-ended-call", (S.COMPLETED, False)),
        ("ended", "assistant-said-end-call-phrase", (S.COMPLETED, False)),
        ("ended", "exceeded-max-duration", (S.COMPLETED, False)),
        ("ended", "silence-timed-out", (S.COMPLETED, False)),
        ("ended", "voicemail", (S.COMPLETED, True)),
        ("ended", "customer-did-not-answer", (S.NO_ANSWER, False)),
        ("ended", "customer-busy", (S.BUSY, False)),
        ("ended", "manually-canceled", (S.CANCELED, False)),
        ("ended", "scheduled-call-deleted", (S.CANCELED, False)),
        ("ended", "twilio-failed-to-connect-call", (S.FAILED, False)),
        ("ended", "twilio-reported-customer-misdialed", (S.FAILED, False)),
        ("ended", "pipeline-error-openai-llm-failed", (S.FAILED, False)),
        ("ended", "call.start.error-subscription-concurrency-limit-reached", (S.FAILED, False)),
        ("ended", None, (S.FAILED, False)),
        ("not-found", None, (S.FAILED, False)),
    ],
)
def test_every_status_and_ended_reason_maps(
    status: str, reason: str | None, expected: tuple[S, bool]
) -> None:
    assert vapi.map_status(status, reason) == expected


def test_misdialed_customer_marks_the_number_invalid() -> None:
    call = {**VAPI_QUEUED, "status": "ended", "endedReason": "twilio-reported-customer-misdialed"}
    assert vapi.call_record(call).provider_error_code == "invalid_number"


# --------------------------------------------------------------------------- webhooks


def test_end_of_call_report_carries_outcome_analysis_and_cost() -> None:
    body = json.dumps(VAPI_END_OF_CALL).encode()
    (event,) = vapi.parse_webhook(body, {})
    record = event.call
    assert record is not None
    assert (record.status, record.voicemail) == ("completed", False)
    assert record.cost_millicents == 12_340  # $0.1234
    assert record.duration_seconds == 120.5
    assert record.answered_at == datetime(2025, 3, 3, 15, 0, 9, tzinfo=UTC)
    assert record.extraction == {"sentiment": "positive", "appointment_day": "monday"}
    assert record.analysis is not None
    assert record.analysis.call_successful == "success"
    assert record.analysis.sentiment == "positive"
    assert record.metadata["attempt_id"] == OUR_METADATA["attempt_id"]
    assert event.event_id == f"{VAPI_QUEUED['id']}:end-of-call-report:ended"
    assert event.occurred_at == datetime.fromtimestamp(1741014129, tz=UTC)


def test_status_update_takes_the_message_status() -> None:
    (event,) = vapi.parse_webhook(json.dumps(VAPI_RINGING).encode(), {})
    assert event.call is not None
    assert event.call.status == "ringing"
    assert event.event_id == f"{VAPI_QUEUED['id']}:status-update:ringing"


def test_ended_and_in_progress_updates_have_distinct_event_ids() -> None:
    ids = set()
    for status, reason in (("in-progress", None), ("ended", "customer-ended-call")):
        message = {**VAPI_RINGING["message"], "status": status, "endedReason": reason}
        (event,) = vapi.parse_webhook(json.dumps({"message": message}).encode(), {})
        assert event.call is not None
        assert event.call.status == "in_progress"  # both: the report is the result
        ids.add(event.event_id)
    assert len(ids) == 2


def test_voicemail_status_update_is_a_voicemail() -> None:
    message = {
        **VAPI_RINGING["message"],
        "status": "ended",
        "endedReason": "voicemail",
    }
    (event,) = vapi.parse_webhook(json.dumps({"message": message}).encode(), {})
    assert event.call is not None
    assert (event.call.status, event.call.voicemail) == ("completed", True)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("customer-ended-call", "in_progress"),  # the end-of-call report brings the result
        ("customer-did-not-answer", "no_answer"),
        ("customer-busy", "busy"),
        ("twilio-failed-to-connect-call", "failed"),
    ],
)
def test_ended_status_update_waits_for_the_report_only_when_answered(
    reason: str, status: str
) -> None:
    message = {**VAPI_RINGING["message"], "status": "ended", "endedReason": reason}
    (event,) = vapi.parse_webhook(json.dumps({"message": message}).encode(), {})
    assert event.call is not None
    assert event.call.status == status


def test_other_server_messages_carry_no_status() -> None:
    for kind in ("transcript", "conversation-update", "speech-update", "tool-calls", "hang"):
        payload = {"message": {"type": kind, "call": VAPI_QUEUED}}
        assert vapi.parse_webhook(json.dumps(payload).encode(), {}) == []


def test_malformed_message_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"message\.type"):
        vapi.parse_webhook(b'{"type": "status-update"}', {})


def test_hmac_valid_forged_stale_and_replayed() -> None:
    body = json.dumps(VAPI_END_OF_CALL).encode()
    headers = vapi.sign(body, SECRET, NOW)
    vapi.verify_webhook(headers, body, "", SECRET, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        vapi.verify_webhook(vapi.sign(body, "guess", NOW), body, "", SECRET, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        vapi.verify_webhook(headers, body.replace(b"0.1234", b"0.0001"), "", SECRET, NOW)
    with pytest.raises(SignatureError, match="tolerance"):
        vapi.verify_webhook(vapi.sign(body, SECRET, NOW - 600), body, "", SECRET, NOW)
    guard = InMemorySeenOnce()
    vapi.verify_webhook(headers, body, "", SECRET, NOW, replay_guard=guard)
    with pytest.raises(WebhookReplayed):
        vapi.verify_webhook(headers, body, "", SECRET, NOW + 1, replay_guard=guard)


def test_shared_secret_mode_checks_the_header_and_the_message_timestamp() -> None:
    body = json.dumps(VAPI_END_OF_CALL).encode()
    good = {vapi.SECRET_HEADER: SECRET}
    vapi.verify_webhook(good, body, "", SECRET, NOW, mode="secret")
    with pytest.raises(SignatureError, match="does not match"):
        vapi.verify_webhook({vapi.SECRET_HEADER: "nope"}, body, "", SECRET, NOW, mode="secret")
    with pytest.raises(SignatureError, match="missing"):
        vapi.verify_webhook({}, body, "", SECRET, NOW, mode="secret")
    with pytest.raises(SignatureError, match="tolerance"):
        vapi.verify_webhook(good, body, "", SECRET, NOW + 3600, mode="secret")
    guard = InMemorySeenOnce()
    vapi.verify_webhook(good, body, "", SECRET, NOW, mode="secret", replay_guard=guard)
    with pytest.raises(WebhookReplayed):
        vapi.verify_webhook(good, body, "", SECRET, NOW, mode="secret", replay_guard=guard)


def test_settings_have_no_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DIALER_VAPI_API_KEY", "DIALER_VAPI_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as missing:
        vapi.Settings()
    named = {error["loc"][0] for error in missing.value.errors()}
    assert named == {"api_key", "webhook_secret"}
