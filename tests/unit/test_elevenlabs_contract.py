"""ElevenLabs Agents contract: the outbound-call body, every conversation status and
initiation failure, and the timestamped HMAC of post-call webhooks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from dialer.policies.vocabulary import ProviderCallStatus as S
from dialer.providers import elevenlabs
from dialer.providers.base import PermanentProviderError
from dialer.providers.seen_once import InMemorySeenOnce
from dialer.providers.signing import SignatureError
from dialer.providers.webhook_auth import WebhookReplayed
from tests.voice_fixtures import (
    CALLER_ID,
    ELEVENLABS_DONE,
    ELEVENLABS_FAILURE_WEBHOOK,
    ELEVENLABS_PLACED,
    ELEVENLABS_TRANSCRIPTION_WEBHOOK,
    GREETING,
    KEY,
    OUR_METADATA,
    REQUEST,
)

SECRET = "wsec_elevenlabs_test"
NOW = 1741014141.0


def settings(**extra: object) -> elevenlabs.Settings:
    return elevenlabs.Settings(
        api_key="xi-test-key",
        webhook_secret=SECRET,
        phone_number_ids={CALLER_ID: "phnum_1"},
        **extra,  # type: ignore[arg-type]
    )


def place(answer: dict[str, object], **extra: object) -> tuple[httpx.Request, object]:
    seen: list[httpx.Request] = []

    def handle(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, json=answer)

    adapter = elevenlabs.build(settings(**extra), transport=httpx.MockTransport(handle))
    return seen, adapter.place_call(REQUEST)  # type: ignore[return-value]


def test_outbound_call_sends_agent_number_variables_greeting_and_our_key() -> None:
    seen, record = place(ELEVENLABS_PLACED)
    (sent,) = seen  # type: ignore[misc]
    body = json.loads(sent.content)
    assert sent.url.path == "/v1/convai/twilio/outbound-call"
    assert sent.headers["xi-api-key"] == "xi-test-key"
    assert (body["agent_id"], body["agent_phone_number_id"]) == ("agent_123", "phnum_1")
    assert body["to_number"] == REQUEST.to
    client = body["conversation_initiation_client_data"]
    assert client["user_id"] == KEY
    assert client["dynamic_variables"] == {
        "name": "Maria",
        "opening_message": GREETING,
        "plan": "gold",
        **OUR_METADATA,
    }
    assert client["conversation_config_override"] == {"agent": {"first_message": GREETING}}
    assert (record.id, record.status) == ("conv_01jnq5x8c6e2", "initiated")  # type: ignore[attr-defined]


def test_sip_trunk_numbers_use_the_sip_endpoint() -> None:
    seen, _ = place(ELEVENLABS_PLACED, telephony="sip-trunk")
    assert seen[0].url.path == "/v1/convai/sip-trunk/outbound-call"  # type: ignore[index]


def test_a_refusal_in_a_200_body_is_permanent() -> None:
    with pytest.raises(PermanentProviderError, match="Twilio could not") as refused:
        place({"success": False, "message": "Twilio could not dial the number"})
    assert refused.value.code == "provider_refused"


def test_unknown_caller_id_names_the_setting() -> None:
    adapter = elevenlabs.build(settings(), transport=httpx.MockTransport(lambda r: None))  # type: ignore[arg-type,return-value]
    with pytest.raises(PermanentProviderError, match="PHONE_NUMBER_IDS"):
        adapter.place_call(replace(REQUEST, from_number="+15550000000"))


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("initiated", None, (S.INITIATED, False)),
        ("in-progress", None, (S.IN_PROGRESS, False)),
        ("processing", None, (S.IN_PROGRESS, False)),
        ("done", "Call ended by remote party", (S.COMPLETED, False)),
        ("done", "end_call tool was called.", (S.COMPLETED, False)),
        ("done", "voicemail_detection tool was called.", (S.COMPLETED, True)),
        ("failed", "Twilio call failed", (S.FAILED, False)),
    ],
)
def test_every_conversation_status_maps(
    status: str, reason: str | None, expected: tuple[S, bool]
) -> None:
    assert elevenlabs.map_status(status, reason) == expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("busy", S.BUSY), ("no-answer", S.NO_ANSWER), ("unknown", S.FAILED), (None, S.FAILED)],
)
def test_every_initiation_failure_maps(reason: str | None, expected: S) -> None:
    assert elevenlabs.map_failure(reason) == expected


def test_done_conversation_maps_analysis_extraction_and_cost() -> None:
    record = elevenlabs.conversation_record(ELEVENLABS_DONE)
    assert (record.status, record.to, record.from_number) == ("completed", REQUEST.to, CALLER_ID)
    assert record.cost_millicents == 8_400  # $0.084
    assert record.duration_seconds == 125
    assert record.ended_at == datetime.fromtimestamp(1741014009 + 125, tz=UTC)
    assert record.extraction == {"sentiment": "positive", "appointment_day": "monday"}
    assert record.metadata == OUR_METADATA  # the contact's fields (name, plan) stay out
    analysis = record.analysis
    assert analysis is not None
    assert analysis.summary_title == "Appointment confirmed"
    assert (analysis.call_successful, analysis.goal_score, analysis.sentiment) == (
        "success",
        0.9,
        "positive",
    )


# --------------------------------------------------------------------------- webhooks


def _body(payload: dict[str, object]) -> bytes:
    return json.dumps(payload).encode()


def test_post_call_transcription_and_initiation_failure_parse() -> None:
    (done,) = elevenlabs.parse_webhook(_body(ELEVENLABS_TRANSCRIPTION_WEBHOOK), {})
    assert done.call is not None
    assert (done.call.status, done.event_id) == (
        "completed",
        "conv_01jnq5x8c6e2:post_call_transcription",
    )
    assert done.occurred_at == datetime.fromtimestamp(1741014140, tz=UTC)
    (busy,) = elevenlabs.parse_webhook(_body(ELEVENLABS_FAILURE_WEBHOOK), {})
    assert busy.call is not None
    assert (busy.call.status, busy.call.to) == ("busy", REQUEST.to)


def test_audio_webhook_carries_no_status_and_bad_ones_name_the_field() -> None:
    audio = {"type": "post_call_audio", "event_timestamp": 1, "data": {"full_audio": "..."}}
    assert elevenlabs.parse_webhook(_body(audio), {}) == []
    with pytest.raises(ValueError, match="event_timestamp"):
        elevenlabs.parse_webhook(_body({"type": "post_call_transcription", "data": {}}), {})


def test_signature_valid_forged_stale_replayed() -> None:
    body = _body(ELEVENLABS_TRANSCRIPTION_WEBHOOK)
    headers = elevenlabs.sign(body, SECRET, NOW)
    elevenlabs.verify_webhook(headers, body, "", SECRET, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        elevenlabs.verify_webhook(elevenlabs.sign(body, "guess", NOW), body, "", SECRET, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        elevenlabs.verify_webhook(headers, body.replace(b"done", b"fail"), "", SECRET, NOW)
    with pytest.raises(SignatureError, match="tolerance"):
        elevenlabs.verify_webhook(
            elevenlabs.sign(body, SECRET, NOW - 31 * 60), body, "", SECRET, NOW
        )
    with pytest.raises(SignatureError, match="t= or v0="):
        elevenlabs.verify_webhook({elevenlabs.SIGNATURE_HEADER: "v1=abc"}, body, "", SECRET, NOW)
    guard = InMemorySeenOnce()
    elevenlabs.verify_webhook(headers, body, "", SECRET, NOW, replay_guard=guard)
    with pytest.raises(WebhookReplayed):
        elevenlabs.verify_webhook(headers, body, "", SECRET, NOW + 2, replay_guard=guard)


def test_a_signature_from_the_future_beyond_the_tolerance_is_stale() -> None:
    body = _body(ELEVENLABS_TRANSCRIPTION_WEBHOOK)
    with pytest.raises(SignatureError, match="tolerance"):
        elevenlabs.verify_webhook(
            elevenlabs.sign(body, SECRET, NOW + 31 * 60), body, "", SECRET, NOW
        )


def test_settings_have_no_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DIALER_ELEVENLABS_API_KEY", "DIALER_ELEVENLABS_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as missing:
        elevenlabs.Settings()
    assert {error["loc"][0] for error in missing.value.errors()} == {"api_key", "webhook_secret"}
