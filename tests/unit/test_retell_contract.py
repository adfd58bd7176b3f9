"""Retell adapter contract: request building, every status mapping, the signature scheme.

Fixtures are written from Retell's API reference (tests/voice_fixtures.py); requests
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
from dialer.providers import retell
from dialer.providers.base import PermanentProviderError
from dialer.providers.seen_once import InMemorySeenOnce
from dialer.providers.signing import SignatureError
from dialer.providers.webhook_auth import WebhookReplayed
from tests.voice_fixtures import (
    GREETING,
    KEY,
    OUR_METADATA,
    REQUEST,
    RETELL_ANALYZED,
    RETELL_REGISTERED,
)

API_KEY = "key_retell_webhook_badge"
NOW = 1703302430.0  # just after RETELL_ANALYZED ended


def adapter(handler: httpx.MockTransport) -> retell.RetellVoiceProvider:
    settings = retell.Settings(api_key=API_KEY)
    return retell.build(settings, transport=handler, sleep=lambda _: None)


def test_place_call_sends_agent_numbers_variables_greeting_metadata_and_key() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=RETELL_REGISTERED)

    record = adapter(httpx.MockTransport(handle)).place_call(REQUEST)

    (sent,) = seen
    body = json.loads(sent.content)
    assert sent.url.path == "/v2/create-phone-call"
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert body["override_agent_id"] == "agent_123"
    assert (body["from_number"], body["to_number"]) == (REQUEST.from_number, REQUEST.to)
    assert body["retell_llm_dynamic_variables"]["name"] == "Maria"
    assert body["agent_override"] == {"retell_llm": {"begin_message": GREETING}}
    assert body["metadata"] == OUR_METADATA
    assert body["idempotency_key"] == KEY
    assert (record.id, record.status) == (RETELL_REGISTERED["call_id"], "queued")


def test_no_caller_id_anywhere_is_refused_before_sending() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    with pytest.raises(PermanentProviderError, match="DEFAULT_FROM_NUMBER"):
        adapter(httpx.MockTransport(handle)).place_call(replace(REQUEST, from_number=None))


def test_analyzed_call_maps_analysis_cost_and_times() -> None:
    record = retell.call_record(RETELL_ANALYZED)
    assert record.status == "completed"
    assert not record.voicemail
    assert record.cost_millicents == 12_500  # 12.5 cents
    assert record.duration_seconds == pytest.approx(21.522)
    assert record.ended_at == datetime.fromtimestamp(1703302428.855, tz=UTC)
    assert record.extraction == {"appointment_day": "monday"}
    assert record.metadata["attempt_id"] == OUR_METADATA["attempt_id"]
    assert record.analysis is not None
    assert record.analysis.transcript_summary.startswith("The customer confirmed")  # type: ignore[union-attr]
    assert (record.analysis.call_successful, record.analysis.sentiment) == ("success", "positive")


@pytest.mark.parametrize(
    ("call_status", "reason", "in_voicemail", "expected"),
    [
        ("registered", None, False, (S.QUEUED, False)),
        ("ongoing", None, False, (S.IN_PROGRESS, False)),
        ("ended", "user_hangup", False, (S.COMPLETED, False)),
        ("ended", "agent_hangup", False, (S.COMPLETED, False)),
        ("ended", "max_duration_reached", False, (S.COMPLETED, False)),
        ("ended", "voicemail_reached", False, (S.COMPLETED, True)),
        ("ended", "ivr_reached", False, (S.COMPLETED, True)),
        ("ended", "agent_hangup", True, (S.COMPLETED, True)),  # analysis says voicemail
        ("ended", "dial_no_answer", False, (S.NO_ANSWER, False)),
        ("not_connected", "dial_no_answer", False, (S.NO_ANSWER, False)),
        ("not_connected", "dial_busy", False, (S.BUSY, False)),
        ("not_connected", "user_declined", False, (S.BUSY, False)),
        ("not_connected", "manual_stopped", False, (S.CANCELED, False)),
        ("not_connected", "dial_failed", False, (S.FAILED, False)),
        ("not_connected", "invalid_destination", False, (S.FAILED, False)),
        ("not_connected", "concurrency_limit_reached", False, (S.FAILED, False)),
        ("error", "error_retell", False, (S.FAILED, False)),
    ],
)
def test_every_status_maps(
    call_status: str, reason: str | None, in_voicemail: bool, expected: tuple[S, bool]
) -> None:
    assert retell.map_status(call_status, reason, in_voicemail) == expected


def test_unknown_status_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="call_status"):
        retell.map_status("teleported", None)


def test_invalid_destination_marks_the_number_invalid() -> None:
    record = retell.call_record(
        {
            **RETELL_REGISTERED,
            "call_status": "not_connected",
            "disconnection_reason": "invalid_destination",
        }
    )
    assert (record.status, record.provider_error_code) == ("failed", "invalid_number")


# --------------------------------------------------------------------------- webhooks


def _body(event: str, call: dict[str, object]) -> bytes:
    return json.dumps({"event": event, "call": call}).encode()


@pytest.mark.parametrize(
    ("event", "call", "status"),
    [
        ("call_started", {**RETELL_REGISTERED, "call_status": "ongoing"}, "in_progress"),
        ("call_started", RETELL_REGISTERED, "in_progress"),  # a started call is under way
        # An answered call's result is call_analyzed: call_ended must not close it first.
        ("call_ended", {**RETELL_ANALYZED, "call_analysis": None}, "in_progress"),
        (
            "call_ended",
            {**RETELL_ANALYZED, "disconnection_reason": "voicemail_reached"},
            "completed",
        ),
        (
            "call_ended",
            {
                **RETELL_REGISTERED,
                "call_status": "not_connected",
                "disconnection_reason": "dial_busy",
            },
            "busy",
        ),
        ("call_analyzed", RETELL_ANALYZED, "completed"),
    ],
)
def test_status_webhooks_parse_into_events(
    event: str, call: dict[str, object], status: str
) -> None:
    body = _body(event, call)
    (parsed,) = retell.parse_webhook(body, retell.sign(body, API_KEY, NOW))
    assert parsed.call is not None
    assert (parsed.kind, parsed.call.status) == ("call.status", status)
    assert parsed.event_id == f"{RETELL_REGISTERED['call_id']}:{event}"
    assert parsed.occurred_at == datetime.fromtimestamp(int(NOW * 1000) / 1000, tz=UTC)


def test_transcript_and_transfer_webhooks_carry_no_status() -> None:
    for event in ("transcript_updated", "transfer_started", "transfer_ended"):
        assert retell.parse_webhook(_body(event, RETELL_ANALYZED), {}) == []


def test_malformed_webhook_names_the_field() -> None:
    with pytest.raises(ValueError, match="'call'"):
        retell.parse_webhook(b'{"event": "call_ended"}', {})


def test_signature_valid() -> None:
    body = _body("call_ended", RETELL_ANALYZED)
    retell.verify_webhook(retell.sign(body, API_KEY, NOW), body, "", API_KEY, NOW)


def test_signature_forged_by_another_key_or_body() -> None:
    body = _body("call_ended", RETELL_ANALYZED)
    with pytest.raises(SignatureError, match="does not match"):
        retell.verify_webhook(retell.sign(body, "other-key", NOW), body, "", API_KEY, NOW)
    headers = retell.sign(body, API_KEY, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        retell.verify_webhook(
            headers, body.replace(b"user_hangup", b"agent_hangup"), "", API_KEY, NOW
        )


def test_signature_stale_and_missing() -> None:
    body = _body("call_ended", RETELL_ANALYZED)
    headers = retell.sign(body, API_KEY, NOW - 301)
    with pytest.raises(SignatureError, match="tolerance"):
        retell.verify_webhook(headers, body, "", API_KEY, NOW)
    with pytest.raises(SignatureError, match="missing"):
        retell.verify_webhook({}, body, "", API_KEY, NOW)


def test_signature_replayed_inside_the_window() -> None:
    body = _body("call_ended", RETELL_ANALYZED)
    headers = retell.sign(body, API_KEY, NOW)
    guard = InMemorySeenOnce()
    retell.verify_webhook(headers, body, "", API_KEY, NOW, replay_guard=guard)
    with pytest.raises(WebhookReplayed):
        retell.verify_webhook(headers, body, "", API_KEY, NOW + 5, replay_guard=guard)


def test_settings_have_no_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIALER_RETELL_API_KEY", raising=False)
    with pytest.raises(ValidationError, match="api_key"):
        retell.Settings()
    monkeypatch.setenv("DIALER_RETELL_API_KEY", "key_from_env")
    assert retell.Settings().signing_key() == "key_from_env"


def test_list_calls_filters_on_our_key() -> None:
    body = retell.list_calls_body(REQUEST, datetime(2025, 3, 3, 15, tzinfo=UTC))
    (meta,) = body["filter_criteria"]["metadata"]
    assert (meta["key"], meta["op"], meta["value"]) == ("dialer_idempotency_key", "eq", KEY)
    assert set(body["filter_criteria"]) == {"metadata"}  # unconnected calls have no start
