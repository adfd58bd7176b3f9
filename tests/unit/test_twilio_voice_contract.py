"""Twilio Programmable Voice contract: the create-call form, every status and AMD answer,
and the request signature over URL + parameters (Twilio's own RequestValidator).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from pydantic import ValidationError

from dialer.policies.vocabulary import ProviderCallStatus as S
from dialer.providers import twilio_voice as twilio
from dialer.providers.base import PermanentProviderError
from dialer.providers.seen_once import InMemorySeenOnce
from dialer.providers.signing import SignatureError
from dialer.providers.webhook_auth import WebhookReplayed
from tests.voice_fixtures import (
    ATTEMPT_ID,
    GREETING,
    KEY,
    REQUEST,
    TWILIO_ACCOUNT,
    TWILIO_CALL_SID,
    TWILIO_CALLBACK,
    TWILIO_COMPLETED,
    TWILIO_QUEUED,
    TWILIO_TOKEN,
)

HOOK = "https://hooks.example/webhooks/calls/twilio"
RELAY = "wss://agent.example/relay"
NOW = datetime(2025, 3, 3, 15, 2, 15, tzinfo=UTC).timestamp()


def settings(**extra: object) -> twilio.Settings:
    return twilio.Settings(
        account_sid=TWILIO_ACCOUNT,
        auth_token=TWILIO_TOKEN,
        status_callback_url=HOOK,
        **extra,  # type: ignore[arg-type]
    )


def place(request: object, **extra: object) -> tuple[httpx.Request, object]:
    seen: list[httpx.Request] = []

    def handle(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(201, json=TWILIO_QUEUED)

    adapter = twilio.build(settings(**extra), transport=httpx.MockTransport(handle))
    record = adapter.place_call(request)  # type: ignore[arg-type]
    return seen[0], record


def test_conversation_relay_call_carries_greeting_variables_callback_and_amd() -> None:
    sent, record = place(replace(REQUEST, agent_id=RELAY))
    form = parse_qs(sent.content.decode())
    assert sent.url.path == f"/2010-04-01/Accounts/{TWILIO_ACCOUNT}/Calls.json"
    assert sent.headers["Authorization"].startswith("Basic ")
    assert (form["To"], form["From"]) == ([REQUEST.to], [REQUEST.from_number])
    twiml = form["Twiml"][0]
    assert f'url="{RELAY}"' in twiml
    assert "welcomeGreeting=" in twiml
    assert "Maria" in twiml
    assert '<Parameter name="plan" value="gold" />' in twiml
    assert f'<Parameter name="attempt_id" value="{ATTEMPT_ID}" />' in twiml
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    callback = parse_qs(urlsplit(form["StatusCallback"][0]).query)
    assert callback == {"dialer_idempotency_key": [KEY], "attempt_id": [ATTEMPT_ID]}
    assert form["MachineDetection"] == ["Enable"]
    assert record.id == TWILIO_CALL_SID  # type: ignore[attr-defined]


def test_greeting_is_escaped_in_the_twiml() -> None:
    request = replace(REQUEST, agent_id=RELAY, context={"opening_message": 'Hi "Bo" & <co>'})
    twiml = twilio.conversation_relay_twiml(request)
    assert 'welcomeGreeting="Hi &quot;Bo&quot; &amp; &lt;co&gt;"' in twiml


def test_twiml_app_url_and_application_sid_agents() -> None:
    sent, _ = place(replace(REQUEST, agent_id="https://agent.example/twiml"))
    assert parse_qs(sent.content.decode())["Url"] == ["https://agent.example/twiml"]
    sent, _ = place(replace(REQUEST, agent_id="AP" + "1" * 32), machine_detection="off")
    form = parse_qs(sent.content.decode())
    assert form["ApplicationSid"] == ["AP" + "1" * 32]
    assert "MachineDetection" not in form


def test_unknown_agent_kind_is_refused_before_sending() -> None:
    with pytest.raises(PermanentProviderError, match="agent_id"):
        place(replace(REQUEST, agent_id="agent_123"))
    assert GREETING  # the fixture's greeting is used by the relay test above


@pytest.mark.parametrize(
    ("code", "ours"),
    [(21211, "invalid_number"), (21217, "invalid_number"), (21210, "from_number_not_on_agent")],
)
def test_twilio_error_codes(code: int, ours: str) -> None:
    def handle(sent: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": code, "message": "no", "status": 400})

    adapter = twilio.build(settings(), transport=httpx.MockTransport(handle))
    with pytest.raises(PermanentProviderError) as refused:
        adapter.place_call(replace(REQUEST, agent_id=RELAY))
    assert refused.value.code == ours


@pytest.mark.parametrize(
    ("status", "answered_by", "expected"),
    [
        ("queued", None, (S.QUEUED, False)),
        ("initiated", None, (S.INITIATED, False)),
        ("ringing", None, (S.RINGING, False)),
        ("in-progress", "human", (S.IN_PROGRESS, False)),
        ("completed", "human", (S.COMPLETED, False)),
        ("completed", "unknown", (S.COMPLETED, False)),
        ("completed", None, (S.COMPLETED, False)),
        ("completed", "machine_start", (S.COMPLETED, True)),
        ("completed", "machine_end_beep", (S.COMPLETED, True)),
        ("completed", "machine_end_silence", (S.COMPLETED, True)),
        ("completed", "machine_end_other", (S.COMPLETED, True)),
        ("completed", "fax", (S.COMPLETED, True)),
        ("busy", None, (S.BUSY, False)),
        ("no-answer", None, (S.NO_ANSWER, False)),
        ("canceled", None, (S.CANCELED, False)),
        ("failed", None, (S.FAILED, False)),
    ],
)
def test_every_status_and_amd_answer_maps(
    status: str, answered_by: str | None, expected: tuple[S, bool]
) -> None:
    assert twilio.map_status(status, answered_by) == expected


def test_fetched_call_maps_price_duration_and_times() -> None:
    record = twilio.call_record(TWILIO_COMPLETED)
    assert record.status == "completed"
    assert record.cost_millicents == 1_300  # "-0.01300" USD
    assert (record.duration_seconds, record.billable_seconds) == (125.0, 125)
    assert record.answered_at == datetime(2025, 3, 3, 15, 0, 9, tzinfo=UTC)


# --------------------------------------------------------------------------- webhooks


def _callback_url() -> str:
    return f"{HOOK}?{urlencode({'dialer_idempotency_key': KEY, 'attempt_id': ATTEMPT_ID})}"


def _form(**changes: str) -> bytes:
    return urlencode({**TWILIO_CALLBACK, **changes}).encode()


def test_status_callback_parses_with_our_metadata_from_the_url() -> None:
    (event,) = twilio.parse_webhook(_form(), {}, _callback_url())
    assert event.call is not None
    assert event.call.status == "completed"
    assert event.call.metadata == {"attempt_id": ATTEMPT_ID, "dialer_idempotency_key": KEY}
    assert event.event_id == f"{TWILIO_CALL_SID}:completed:3"
    assert event.occurred_at == datetime(2025, 3, 3, 15, 2, 14, tzinfo=UTC)


def test_machine_answer_callback_is_a_voicemail() -> None:
    (event,) = twilio.parse_webhook(_form(AnsweredBy="machine_end_beep"), {}, None)
    assert event.call is not None
    assert event.call.voicemail


def test_callback_without_a_call_sid_names_it() -> None:
    with pytest.raises(ValueError, match="CallSid"):
        twilio.parse_webhook(b"CallStatus=completed", {}, None)


def test_signature_valid_with_twilios_own_validator() -> None:
    body, url = _form(), _callback_url()
    twilio.verify_webhook(twilio.sign(url, body, TWILIO_TOKEN), body, url, TWILIO_TOKEN, NOW)


def test_signature_forged_wrong_token_body_or_url() -> None:
    body, url = _form(), _callback_url()
    headers = twilio.sign(url, body, TWILIO_TOKEN)
    with pytest.raises(SignatureError):
        twilio.verify_webhook(twilio.sign(url, body, "guess"), body, url, TWILIO_TOKEN, NOW)
    with pytest.raises(SignatureError):
        twilio.verify_webhook(headers, _form(CallStatus="busy"), url, TWILIO_TOKEN, NOW)
    with pytest.raises(SignatureError):
        twilio.verify_webhook(headers, body, HOOK + "?attempt_id=x", TWILIO_TOKEN, NOW)
    with pytest.raises(SignatureError, match="missing"):
        twilio.verify_webhook({}, body, url, TWILIO_TOKEN, NOW)


def test_signature_stale_by_the_signed_timestamp() -> None:
    old = format_datetime(datetime(2025, 3, 3, 14, 0, tzinfo=UTC), usegmt=True)
    body, url = _form(Timestamp=old), _callback_url()
    with pytest.raises(SignatureError, match="tolerance"):
        twilio.verify_webhook(twilio.sign(url, body, TWILIO_TOKEN), body, url, TWILIO_TOKEN, NOW)


def test_signature_replayed() -> None:
    body, url = _form(), _callback_url()
    headers, guard = twilio.sign(url, body, TWILIO_TOKEN), InMemorySeenOnce()
    twilio.verify_webhook(headers, body, url, TWILIO_TOKEN, NOW, replay_guard=guard)
    with pytest.raises(WebhookReplayed):
        twilio.verify_webhook(headers, body, url, TWILIO_TOKEN, NOW, replay_guard=guard)


def test_settings_validate_the_sid_and_have_no_default_token() -> None:
    with pytest.raises(ValidationError, match="auth_token"):
        twilio.Settings(account_sid=TWILIO_ACCOUNT)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="account_sid"):
        twilio.Settings(account_sid="not-a-sid", auth_token="x")
