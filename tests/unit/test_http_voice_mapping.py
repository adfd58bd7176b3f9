"""The HTTP voice adapter without a network: request shape, record mapping, error split.

Requests go to an httpx.MockTransport, so each test sees exactly what would be sent.
The same adapter is run over real HTTP against the sandbox in
tests/integration/test_http_voice_sandbox.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from dialer.providers.base import (
    CallAnalysis,
    CallRecord,
    NotSent,
    PermanentProviderError,
    PlaceCallRequest,
    TransientProviderError,
)
from dialer.providers.http_voice import (
    HttpVoiceProvider,
    error_for_response,
)
from dialer.providers.ratelimit import RateLimited
from dialer.providers.retry_after import parse_retry_after
from dialer.settings import Settings

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
AGENT = "agent-1"
AGENT_NUMBERS = {AGENT: ["+15557654321", "+15557654322"]}
REQUEST = PlaceCallRequest(
    idempotency_key="attempt-1",
    agent_id=AGENT,
    to="+15551234567",
    from_number="+15557654322",
    instructions="Confirm the appointment.",
    context={"customer": {"name": "Maria"}},
    webhook_url="https://hooks.example/webhooks/voice",
    metadata={"attempt_id": "a-1"},
)

FULL_RECORD: dict[str, Any] = {
    "id": "call_1",
    "agent_id": AGENT,
    "to": "+15551234567",
    "from_number": "+15557654322",
    "status": "completed",
    "direction": "outbound",
    "created_at": "2025-03-03T15:00:00+00:00",
    "ringing_at": "2025-03-03T15:00:02+00:00",
    "answered_at": "2025-03-03T15:00:09+00:00",
    "ended_at": "2025-03-03T15:02:09.500000+00:00",
    "duration_seconds": 129.5,
    "billable_seconds": 121,
    "cost_millicents": 3600,
    "extraction": {"interested": True},
    "extraction_status": "completed",
    "extraction_error": None,
    "provider_error_code": None,
    "error_message": None,
    "hangup_reason": "customer_hangup",
    "voicemail": False,
    "metadata": {"attempt_id": "a-1"},
    "analysis": {
        "summary_title": "Customer agreed",
        "transcript_summary": "Agreed to the proposal.",
        "call_successful": "success",
        "goal_result": "achieved",
        "goal_rationale": "Clear yes.",
        "goal_score": 0.9,
        "sentiment": "positive",
        "sentiment_rationale": "Friendly.",
        "follow_up_required": True,
        "follow_up_rationale": "Wants a call back.",
        "escalation_required": False,
        "escalation_rationale": None,
        "messages_count": 14,
    },
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


EXPECTED_RECORD = CallRecord(
    id="call_1",
    status="completed",
    to="+15551234567",
    from_number="+15557654322",
    agent_id=AGENT,
    direction="outbound",
    created_at=at("2025-03-03T15:00:00+00:00"),
    ringing_at=at("2025-03-03T15:00:02+00:00"),
    answered_at=at("2025-03-03T15:00:09+00:00"),
    ended_at=at("2025-03-03T15:02:09.5+00:00"),
    duration_seconds=129.5,
    billable_seconds=121,
    cost_millicents=3600,
    extraction={"interested": True},
    extraction_status="completed",
    hangup_reason="customer_hangup",
    metadata={"attempt_id": "a-1"},
    analysis=CallAnalysis(
        summary_title="Customer agreed",
        transcript_summary="Agreed to the proposal.",
        call_successful="success",
        goal_result="achieved",
        goal_rationale="Clear yes.",
        goal_score=0.9,
        sentiment="positive",
        sentiment_rationale="Friendly.",
        follow_up_required=True,
        follow_up_rationale="Wants a call back.",
        escalation_required=False,
        messages_count=14,
    ),
)

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that keeps every request and answers with ``respond``."""

    def __init__(self, respond: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)


def provider(respond: Handler, **options: Any) -> tuple[HttpVoiceProvider, Recorder]:
    recorder = Recorder(respond)
    adapter = HttpVoiceProvider(
        "https://voice.example/",
        "sk_test",
        AGENT_NUMBERS,
        transport=httpx.MockTransport(recorder),
        clock=lambda: NOW,
        **options,
    )
    return adapter, recorder


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    return lambda _: httpx.Response(status, json=body, headers=headers)


# --------------------------------------------------------------------------- requests


def test_place_call_posts_the_seed_004_request_with_key_and_bearer() -> None:
    adapter, recorder = provider(answer(201, {**FULL_RECORD, "status": "queued"}))
    record = adapter.place_call(REQUEST)
    (sent,) = recorder.requests
    assert (sent.method, str(sent.url)) == ("POST", "https://voice.example/v1/calls")
    assert sent.headers["Authorization"] == "Bearer sk_test"
    assert sent.headers["Idempotency-Key"] == "attempt-1"
    assert json.loads(sent.content) == {
        "agent_id": AGENT,
        "to": "+15551234567",
        "from_number": "+15557654322",
        "instructions": "Confirm the appointment.",
        "context": {"customer": {"name": "Maria"}},
        "webhook_url": "https://hooks.example/webhooks/voice",
        "metadata": {"attempt_id": "a-1"},
    }
    assert (record.id, record.status) == ("call_1", "queued")


def test_fields_left_unset_are_omitted_so_the_agent_defaults_apply() -> None:
    adapter, recorder = provider(answer(201, FULL_RECORD))
    adapter.place_call(PlaceCallRequest(idempotency_key="k", agent_id=AGENT, to="+15551234567"))
    body = json.loads(recorder.requests[0].content)
    assert set(body) == {"agent_id", "to", "context", "metadata"}


@pytest.mark.parametrize("to", ["5551234567", "+0123456789", "+1 555 123 4567", "+1" + "5" * 15])
def test_a_to_that_is_not_e164_is_refused_before_any_request(to: str) -> None:
    adapter, recorder = provider(answer(201, FULL_RECORD))
    with pytest.raises(PermanentProviderError, match=r"to: .* is not an E\.164 number") as err:
        adapter.place_call(PlaceCallRequest(idempotency_key="k", agent_id=AGENT, to=to))
    assert err.value.code == "invalid_number"
    assert recorder.requests == []


def test_a_caller_id_not_on_the_agent_is_refused_before_any_request() -> None:
    adapter, recorder = provider(answer(201, FULL_RECORD))
    foreign = PlaceCallRequest("k", AGENT, "+15551234567", from_number="+15559999999")
    with pytest.raises(PermanentProviderError, match="not attached to agent agent-1") as err:
        adapter.place_call(foreign)
    assert err.value.code == "from_number_not_on_agent"
    assert "+15557654321, +15557654322" in str(err.value), "the message lists the agent's numbers"
    assert recorder.requests == []


def test_agent_numbers_may_come_from_a_callable() -> None:
    asked: list[str] = []

    def numbers_of(agent_id: str) -> list[str]:
        asked.append(agent_id)
        return ["+15557654322"]

    recorder = Recorder(answer(201, FULL_RECORD))
    adapter = HttpVoiceProvider(
        "https://voice.example", "sk_test", numbers_of, transport=httpx.MockTransport(recorder)
    )
    adapter.place_call(REQUEST)
    assert asked == [AGENT]
    assert len(recorder.requests) == 1


def test_get_call_reads_the_record_by_id() -> None:
    adapter, recorder = provider(answer(200, FULL_RECORD))
    assert adapter.get_call("call_1") == EXPECTED_RECORD
    assert str(recorder.requests[0].url) == "https://voice.example/v1/calls/call_1"


def test_from_settings_uses_the_url_key_and_timeouts() -> None:
    settings = Settings(
        provider_base_url="http://provider.test:9000",
        provider_api_key="sk_live_1",
        provider_connect_timeout_seconds=1.5,
        provider_read_timeout_seconds=7.0,
        _env_file=None,
    )
    adapter = HttpVoiceProvider.from_settings(settings, AGENT_NUMBERS)
    client = adapter._client
    assert str(client.base_url) == "http://provider.test:9000"
    assert client.headers["Authorization"] == "Bearer sk_live_1"
    assert (client.timeout.connect, client.timeout.read) == (1.5, 7.0)
    adapter.close()
    assert client.is_closed


# --------------------------------------------------------------------------- records


def test_every_seed_004_field_maps_into_the_call_record() -> None:
    adapter, _ = provider(answer(201, FULL_RECORD))
    assert adapter.place_call(REQUEST) == EXPECTED_RECORD


def test_a_failed_call_keeps_the_provider_error_and_has_no_analysis() -> None:
    failed = {
        **FULL_RECORD,
        "status": "failed",
        "provider_error_code": "carrier_unavailable",
        "error_message": "The carrier could not route the call",
        "extraction_status": "failed",
        "extraction_error": "no conversation",
        "analysis": None,
    }
    record = provider(answer(200, failed))[0].get_call("call_1")
    assert record.provider_error_code == "carrier_unavailable"
    assert record.error_message == "The carrier could not route the call"
    assert (record.extraction_status, record.extraction_error) == ("failed", "no conversation")
    assert record.analysis is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("status", "exploded", "field 'status' must be one of"),
        ("billable_seconds", "ten", "field 'billable_seconds' must be a number"),
        ("created_at", "yesterday", "field 'created_at' must be an ISO 8601 timestamp"),
        ("id", None, "missing field 'id'"),
    ],
)
def test_an_unreadable_record_is_a_permanent_error_naming_the_field(
    field: str, value: Any, message: str
) -> None:
    adapter, _ = provider(answer(201, {**FULL_RECORD, field: value}))
    with pytest.raises(PermanentProviderError, match=message) as err:
        adapter.place_call(REQUEST)
    assert err.value.code == "bad_response"


def test_parse_event_reads_a_call_status_webhook() -> None:
    adapter, _ = provider(answer(200, None))
    body = {
        "event_id": "call_1:completed",
        "type": "call.status",
        "occurred_at": "2025-03-03T15:02:09.500000+00:00",
        "call": FULL_RECORD,
    }
    event = adapter.parse_event(body)
    assert (event.provider, event.event_id, event.kind) == (
        "http",
        "call_1:completed",
        "call.status",
    )
    assert event.occurred_at == at("2025-03-03T15:02:09.5+00:00")
    assert event.call == EXPECTED_RECORD


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "message.inbound"}, "field 'type' must be 'call.status'"),
        ({"type": "call.status", "occurred_at": "2025-03-03T15:00:00"}, "missing field 'event_id'"),
        (
            {"type": "call.status", "event_id": "e", "occurred_at": "2025-03-03T15:00:00"},
            "missing field 'call'",
        ),
        (
            {
                "type": "call.status",
                "event_id": "e",
                "occurred_at": "2025-03-03T15:00:00",
                "call": {**FULL_RECORD, "analysis": {"goal_score": "high"}},
            },
            "field 'analysis.goal_score' must be a number",
        ),
    ],
)
def test_a_malformed_webhook_raises_value_error_naming_the_field(
    body: dict[str, Any], message: str
) -> None:
    adapter, _ = provider(answer(200, None))
    with pytest.raises(ValueError, match=message):
        adapter.parse_event(body)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0.5", 0.5),
        (" 12 ", 12.0),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("soon", None),
        ("inf", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(value: str | None, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


def error_of(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Exception:
    error = error_for_response(httpx.Response(status, json=body, headers=headers), NOW)
    assert error is not None
    return error


def test_success_is_no_error() -> None:
    assert error_for_response(httpx.Response(201, json=FULL_RECORD), NOW) is None


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"Retry-After": "7"}, 7.0),
        (429, {}, None),
        (500, {}, None),
        (503, {"Retry-After": "2"}, 2.0),
        (504, {}, None),
    ],
)
def test_429_and_5xx_are_transient(
    status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    error = error_of(status, {"error": {"code": "busy", "message": "slow down"}}, headers)
    assert isinstance(error, TransientProviderError)
    assert error.retry_after_seconds == retry_after
    assert f"answered {status}: slow down" in str(error)


def test_a_validation_error_names_each_field_and_why() -> None:
    body = {
        "error": {
            "code": "validation_error",
            "message": "the call request is invalid",
            "fields": [
                {"field": "from_number", "reason": "must be attached to the agent"},
                {"field": "agent_id", "reason": "no outbound agent with this id"},
            ],
        }
    }
    error = error_of(422, body)
    assert isinstance(error, PermanentProviderError)
    assert error.code == "validation_error"
    assert str(error) == (
        "provider refused the request (422): from_number: must be attached to the agent;"
        " agent_id: no outbound agent with this id"
    )


def test_a_refused_to_number_ends_calling_that_number() -> None:
    body = {"error": {"code": "validation_error", "fields": [{"field": "to", "reason": "bad"}]}}
    error = error_of(422, body)
    assert isinstance(error, PermanentProviderError)
    assert error.code == "invalid_number"


def test_fastapi_style_detail_is_read_too() -> None:
    body = {"detail": [{"loc": ["body", "to"], "msg": "Field required", "type": "missing"}]}
    error = error_of(422, body)
    assert isinstance(error, PermanentProviderError)
    assert "to: Field required" in str(error)
    assert error.code == "invalid_number"


@pytest.mark.parametrize(
    ("status", "code"), [(401, "unauthorized"), (403, "unauthorized"), (404, "not_found")]
)
def test_auth_and_missing_calls_are_permanent_with_their_code(status: int, code: str) -> None:
    error = error_of(status, {"error": {"message": "no"}})
    assert isinstance(error, PermanentProviderError)
    assert error.code == code


def test_a_non_json_error_body_is_quoted() -> None:
    error = error_for_response(httpx.Response(400, text="<html>Bad Request</html>"), NOW)
    assert isinstance(error, PermanentProviderError)
    assert "<html>Bad Request</html>" in str(error)


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
)
def test_network_failures_are_transient(failure: httpx.HTTPError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    adapter, _ = provider(fail)
    with pytest.raises(TransientProviderError, match=type(failure).__name__):
        adapter.place_call(REQUEST)


# --------------------------------------------------------------------------- rate limit


class ScriptedLimiter:
    """Answers acquire() from a list; records slow_down() calls."""

    def __init__(self, waits: list[float]) -> None:
        self.waits = waits
        self.slowed: list[float | None] = []

    def acquire(self, n: int = 1) -> float:
        return self.waits.pop(0)

    def slow_down(self, retry_after_seconds: float | None) -> None:
        self.slowed.append(retry_after_seconds)


def test_a_short_wait_for_a_token_is_slept_through() -> None:
    slept: list[float] = []
    limiter = ScriptedLimiter([0.2, 0.3, 0.0])
    adapter, recorder = provider(answer(201, FULL_RECORD), limiter=limiter, sleep=slept.append)
    adapter.place_call(REQUEST)
    assert slept == [0.2, 0.3]
    assert len(recorder.requests) == 1


def test_a_long_wait_gives_the_call_back_without_sending() -> None:
    limiter = ScriptedLimiter([0.4, 5.0])
    adapter, recorder = provider(
        answer(201, FULL_RECORD), limiter=limiter, sleep=lambda _: None, max_local_wait_seconds=1
    )
    with pytest.raises(RateLimited) as err:
        adapter.place_call(REQUEST)
    assert err.value.retry_after_seconds == 5.0
    assert recorder.requests == []


def test_a_429_slows_the_whole_fleet_down() -> None:
    limiter = ScriptedLimiter([0.0])
    adapter, _ = provider(answer(429, {}, {"Retry-After": "3"}), limiter=limiter)
    with pytest.raises(TransientProviderError):
        adapter.place_call(REQUEST)
    assert limiter.slowed == [3.0]


def test_a_5xx_does_not_slow_the_fleet_down() -> None:
    limiter = ScriptedLimiter([0.0])
    adapter, _ = provider(answer(503, {}), limiter=limiter)
    with pytest.raises(TransientProviderError):
        adapter.place_call(REQUEST)
    assert limiter.slowed == []


# --------------------------------------------------------------------------- gate


@pytest.mark.parametrize("parallel", [1, 3])
def test_a_batch_sends_only_what_the_gate_lets_through(parallel: int) -> None:
    adapter, recorder = provider(answer(201, FULL_RECORD), parallel_requests=parallel)
    requests = [replace(REQUEST, idempotency_key=f"k{n}") for n in range(6)]
    allowed = {"k0", "k2", "k3"}

    answers = adapter.place_calls(requests, lambda request: request.idempotency_key in allowed)
    adapter.close()

    sent = sorted(request.headers["Idempotency-Key"] for request in recorder.requests)
    assert sent == sorted(allowed)
    held = [a.idempotency_key for a in answers if isinstance(a, NotSent)]
    assert held == ["k1", "k4", "k5"]  # in request order, nothing sent for them
    assert [isinstance(a, CallRecord) for a in answers] == [n in (0, 2, 3) for n in range(6)]


def test_the_gate_is_asked_after_the_rate_limit_wait() -> None:
    events: list[str] = []
    limiter = ScriptedLimiter([0.5, 0.0])
    adapter, recorder = provider(
        answer(201, FULL_RECORD), limiter=limiter, sleep=lambda _: events.append("slept")
    )

    def gate(request: PlaceCallRequest) -> bool:
        events.append("gate")
        return False

    (answer_,) = adapter.place_calls([REQUEST], gate)
    assert isinstance(answer_, NotSent)
    assert events == ["slept", "gate"]  # the wait may be long; the check comes after it
    assert recorder.requests == []
