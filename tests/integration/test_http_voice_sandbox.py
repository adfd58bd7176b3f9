"""The HTTP voice adapter against the sandbox provider, over real HTTP on loopback.

One sandbox and one webhook receiver run in threads for the module; each test
sets the faults it needs (and they are cleared after it) and uses its own
idempotency keys, so tests never see each other's calls. Calls last a fraction of
a second (time_scale), and waits for webhooks poll, bounded at 5 s.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from starlette.datastructures import Headers

from dialer import metrics
from dialer.providers.base import (
    PermanentProviderError,
    PlaceCallRequest,
    ProviderEvent,
    TransientProviderError,
)
from dialer.providers.http_voice import HttpVoiceProvider
from dialer.providers.signing import SignatureError, verify
from dialer.sandbox.config import SandboxConfig
from dialer.sandbox.testing import running_sandbox, serve_in_thread

SECRET = "whsec_test"
API_KEY = "sk_test"
AGENT = "agent-1"
AGENT_NUMBERS = ["+15557654321", "+15557654322"]
CUSTOMER = "+15551234567"
WAIT_SECONDS = 5.0
HANG_SECONDS = 1.0
IMPATIENT_READ_TIMEOUT_SECONDS = 0.3

# Every call is answered, so every call has an analysis and two events (ringing, completed).
ANSWER_EVERY_CALL = {
    "answer_rate": 1,
    "busy_rate": 0,
    "voicemail_rate": 0,
    "no_answer_rate": 0,
    "failure_rate": 0,
}

T = TypeVar("T")


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: Headers
    body: bytes

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Receiver:
    """A webhook endpoint: keeps every delivery; ``/hooks/flaky`` refuses each body once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._refused: set[bytes] = set()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{mode}")
        async def hook(mode: str, request: Request) -> Response:
            body = await request.body()
            with self._lock:
                if mode == "flaky" and body not in self._refused:
                    self._refused.add(body)
                    return Response(status_code=500)
                self._deliveries.append(Delivery(request.url.path, request.headers, body))
            return Response(status_code=204)

        return app

    def for_call(self, call_id: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self._deliveries if d.payload()["call"]["id"] == call_id]


def wait_for(produce: Callable[[], T], done: Callable[[T], bool]) -> T:
    """Poll ``produce`` until ``done`` says so; fail after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = produce()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting after {WAIT_SECONDS} s; last value: {value!r}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    with serve_in_thread(hooks.app()) as url:
        yield hooks, url


@pytest.fixture(scope="module")
def sandbox_url(receiver: tuple[Receiver, str]) -> Iterator[str]:
    config = SandboxConfig(
        api_key=API_KEY,
        webhook_secret=SECRET,
        default_webhook_url=f"{receiver[1]}/hooks/default",
        agents={AGENT: AGENT_NUMBERS},
        time_scale=2000,  # the longest simulated call (~330 s) takes ~0.17 s
        simulation=ANSWER_EVERY_CALL,
        webhook_retry_seconds=0.05,
    )
    with running_sandbox(config) as url:
        yield url


@pytest.fixture
def admin(sandbox_url: str) -> Iterator[httpx.Client]:
    """The sandbox's admin API; every fault is cleared after the test."""
    with httpx.Client(base_url=sandbox_url, timeout=5) as client:
        yield client
        client.delete("/sandbox/faults").raise_for_status()


def make_adapter(
    url: str, read_timeout: float = 5.0, numbers: dict[str, list[str]] | None = None
) -> HttpVoiceProvider:
    return HttpVoiceProvider(
        url, API_KEY, numbers or {AGENT: AGENT_NUMBERS}, read_timeout_seconds=read_timeout
    )


@pytest.fixture
def adapter(sandbox_url: str) -> Iterator[HttpVoiceProvider]:
    voice = make_adapter(sandbox_url)
    yield voice
    voice.close()


@pytest.fixture
def impatient(sandbox_url: str) -> Iterator[HttpVoiceProvider]:
    """An adapter whose read timeout is shorter than the sandbox's hang."""
    voice = make_adapter(sandbox_url, read_timeout=IMPATIENT_READ_TIMEOUT_SECONDS)
    yield voice
    voice.close()


def latency_count(operation: str) -> float:
    labels = {"provider": "http", "operation": operation}
    return metrics.sample("dialer_provider_request_seconds_count", labels)


def call_request(key: str | None = None, **changes: Any) -> PlaceCallRequest:
    values: dict[str, Any] = {
        "idempotency_key": key or f"attempt-{uuid.uuid4().hex}",
        "agent_id": AGENT,
        "to": CUSTOMER,
        "from_number": AGENT_NUMBERS[1],
        "metadata": {"attempt_id": "a-1"},
        **changes,
    }
    return PlaceCallRequest(**values)


def set_faults(admin: httpx.Client, **faults: Any) -> None:
    admin.post("/sandbox/faults", json={"hang_seconds": HANG_SECONDS, **faults}).raise_for_status()


def ledger(admin: httpx.Client) -> dict[str, Any]:
    data: dict[str, Any] = admin.get("/sandbox/ledger").json()
    return data


def events_for(
    receiver: Receiver, adapter: HttpVoiceProvider, call_id: str, count: int
) -> list[ProviderEvent]:
    deliveries = wait_for(lambda: receiver.for_call(call_id), lambda found: len(found) >= count)
    return [adapter.parse_event(delivery.payload()) for delivery in deliveries]


# --------------------------------------------------------------------------- calls


def test_a_call_is_placed_once_and_plays_out(
    adapter: HttpVoiceProvider, admin: httpx.Client
) -> None:
    request = call_request()
    timed = latency_count("place_call")
    placed = adapter.place_call(request)
    assert latency_count("place_call") == timed + 1
    assert (placed.status, placed.to, placed.from_number) == ("queued", CUSTOMER, AGENT_NUMBERS[1])
    assert placed.metadata == {"attempt_id": "a-1"}
    entries = [e for e in ledger(admin)["calls"] if e["idempotency_key"] == request.idempotency_key]
    assert [(e["call_id"], e["to"]) for e in entries] == [(placed.id, CUSTOMER)]

    final = wait_for(lambda: adapter.get_call(placed.id), lambda r: r.status == "completed")
    assert final.answered_at is not None
    assert final.ended_at is not None
    assert final.billable_seconds is not None
    assert final.billable_seconds > 0
    assert final.cost_millicents is not None
    assert final.cost_millicents > 0
    assert final.analysis is not None
    assert final.analysis.sentiment in {
        "positive",
        "neutral",
        "negative",
    }


def test_the_same_key_returns_the_same_call(
    adapter: HttpVoiceProvider, admin: httpx.Client
) -> None:
    request = call_request()
    first = adapter.place_call(request)
    again = adapter.place_call(request)
    assert again.id == first.id
    book = ledger(admin)
    assert book["calls_by_key"][request.idempotency_key] == 1
    assert book["requests_by_key"][request.idempotency_key] == 2


def test_concurrent_requests_with_one_key_place_one_call(
    sandbox_url: str, admin: httpx.Client
) -> None:
    request = call_request()
    placed: list[str] = []

    def place() -> None:
        voice = make_adapter(sandbox_url)  # separate clients, like separate workers
        placed.append(voice.place_call(request).id)
        voice.close()

    threads = [threading.Thread(target=place) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(placed) == 6
    assert len(set(placed)) == 1
    assert ledger(admin)["calls_by_key"][request.idempotency_key] == 1


def test_the_same_key_for_another_call_is_refused(adapter: HttpVoiceProvider) -> None:
    request = call_request()
    adapter.place_call(request)
    with pytest.raises(PermanentProviderError) as err:
        adapter.place_call(call_request(request.idempotency_key, to="+15551234568"))
    assert err.value.code == "idempotency_key_reused"


def test_get_call_of_an_unknown_id_is_not_found(adapter: HttpVoiceProvider) -> None:
    with pytest.raises(PermanentProviderError, match="call_nope not found") as err:
        adapter.get_call("call_nope")
    assert err.value.code == "not_found"


def test_a_wrong_api_key_is_refused(sandbox_url: str) -> None:
    voice = HttpVoiceProvider(sandbox_url, "sk_wrong", {AGENT: AGENT_NUMBERS})
    with pytest.raises(PermanentProviderError) as err:
        voice.place_call(call_request())
    voice.close()
    assert err.value.code == "unauthorized"


# --------------------------------------------------------------------------- refusals


def test_a_caller_id_not_on_the_agent_never_reaches_the_provider(
    adapter: HttpVoiceProvider, admin: httpx.Client
) -> None:
    request = call_request(from_number="+15550000001")
    with pytest.raises(PermanentProviderError) as err:
        adapter.place_call(request)
    assert err.value.code == "from_number_not_on_agent"
    assert request.idempotency_key not in ledger(admin)["requests_by_key"]


def test_the_provider_refusing_a_caller_id_names_the_field(
    sandbox_url: str, admin: httpx.Client
) -> None:
    lax = make_adapter(sandbox_url, numbers={AGENT: [*AGENT_NUMBERS, "+15550000001"]})
    with pytest.raises(PermanentProviderError) as err:
        lax.place_call(call_request(from_number="+15550000001"))
    lax.close()
    assert "(422): from_number: must be another number attached to the same agent" in str(err.value)
    assert err.value.code == "validation_error"


def test_an_unreachable_number_is_a_permanent_invalid_number(adapter: HttpVoiceProvider) -> None:
    with pytest.raises(PermanentProviderError, match="to: is not a reachable phone") as err:
        adapter.place_call(call_request(to="+15551230000"))
    assert err.value.code == "invalid_number"


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(("form", "low", "high"), [("seconds", 2.0, 2.0), ("http_date", 1.0, 3.0)])
def test_429_is_transient_with_its_retry_after(
    adapter: HttpVoiceProvider, admin: httpx.Client, form: str, low: float, high: float
) -> None:
    set_faults(admin, rate_429=1, retry_after_seconds=2, retry_after_format=form)
    request = call_request()
    with pytest.raises(TransientProviderError, match="answered 429") as err:
        adapter.place_call(request)
    assert err.value.kind == "rate_limited"
    assert err.value.retry_after_seconds is not None
    assert low <= err.value.retry_after_seconds <= high
    assert request.idempotency_key not in ledger(admin)["calls_by_key"]


def test_5xx_is_transient_and_places_nothing(
    adapter: HttpVoiceProvider, admin: httpx.Client
) -> None:
    set_faults(admin, rate_5xx=1)
    request = call_request()
    with pytest.raises(TransientProviderError, match="answered 503") as err:
        adapter.place_call(request)
    assert err.value.kind == "server_error"
    assert request.idempotency_key not in ledger(admin)["calls_by_key"]


def test_a_timeout_is_transient(impatient: HttpVoiceProvider, admin: httpx.Client) -> None:
    set_faults(admin, rate_timeout=1)
    request = call_request()
    timed = latency_count("place_call")
    with pytest.raises(TransientProviderError, match="timed out") as err:
        impatient.place_call(request)
    assert err.value.kind == "timeout"
    assert latency_count("place_call") == timed + 1  # a request that timed out is timed too
    book = ledger(admin)
    assert book["requests_by_key"][request.idempotency_key] == 1
    assert request.idempotency_key not in book["calls_by_key"]


def test_a_retry_after_a_lost_response_gets_the_call_already_placed(
    impatient: HttpVoiceProvider, admin: httpx.Client
) -> None:
    set_faults(admin, rate_lost_response=1)
    request = call_request()
    with pytest.raises(TransientProviderError, match="timed out"):
        impatient.place_call(request)
    book = ledger(admin)
    assert book["calls_by_key"][request.idempotency_key] == 1, "the server did place it"

    admin.delete("/sandbox/faults").raise_for_status()
    retried = impatient.place_call(request)
    book = ledger(admin)
    assert book["calls_by_key"][request.idempotency_key] == 1, "and never a second one"
    assert book["requests_by_key"][request.idempotency_key] == 2
    (entry,) = [e for e in book["calls"] if e["idempotency_key"] == request.idempotency_key]
    assert retried.id == entry["call_id"]


def test_bad_fault_settings_are_refused_naming_the_field(admin: httpx.Client) -> None:
    response = admin.post("/sandbox/faults", json={"rate_429": 0.7, "rate_5xx": 0.7})
    assert response.status_code == 422
    assert "must be at most 1" in response.json()["error"]["fields"][0]["reason"]
    response = admin.post("/sandbox/faults", json={"rate_teapot": 1})
    assert response.json()["error"]["fields"][0]["field"] == "rate_teapot"


# --------------------------------------------------------------------------- webhooks


def test_webhooks_are_signed_and_carry_the_call(
    adapter: HttpVoiceProvider, receiver: tuple[Receiver, str]
) -> None:
    hooks, _ = receiver
    placed = adapter.place_call(call_request())
    deliveries = wait_for(lambda: hooks.for_call(placed.id), lambda found: len(found) >= 2)
    for delivery in deliveries:
        assert delivery.path == "/hooks/default", "the agent's default webhook_url"
        verify(SECRET, delivery.headers, delivery.body, now=time.time(), tolerance_seconds=60)
        with pytest.raises(SignatureError, match="does not match"):
            verify(
                "whsec_other",
                delivery.headers,
                delivery.body,
                now=time.time(),
                tolerance_seconds=60,
            )
    events = [adapter.parse_event(delivery.payload()) for delivery in deliveries]
    assert [event.event_id for event in events] == [
        f"{placed.id}:ringing",
        f"{placed.id}:completed",
    ]
    final = events[-1].call
    assert final is not None
    assert final.status == "completed"
    assert final.metadata == {"attempt_id": "a-1"}
    assert final.analysis is not None


def test_a_per_call_webhook_url_wins_and_refused_deliveries_are_retried(
    adapter: HttpVoiceProvider, receiver: tuple[Receiver, str], admin: httpx.Client
) -> None:
    hooks, hooks_url = receiver
    placed = adapter.place_call(call_request(webhook_url=f"{hooks_url}/hooks/flaky"))
    events = events_for(hooks, adapter, placed.id, 2)
    assert {event.event_id for event in events} == {
        f"{placed.id}:ringing",
        f"{placed.id}:completed",
    }
    assert ledger(admin)["webhooks"].get("retried", 0) >= 2


def test_duplicate_deliveries_carry_the_same_event_id(
    adapter: HttpVoiceProvider, receiver: tuple[Receiver, str], admin: httpx.Client
) -> None:
    set_faults(admin, duplicate_webhook_rate=1)
    placed = adapter.place_call(call_request())
    events = events_for(receiver[0], adapter, placed.id, 3)
    ids = [event.event_id for event in events]
    assert ids.count(f"{placed.id}:completed") == 2


def test_reordered_deliveries_bring_ringing_after_the_final_event(
    adapter: HttpVoiceProvider, receiver: tuple[Receiver, str], admin: httpx.Client
) -> None:
    set_faults(admin, reorder_webhook_rate=1)
    placed = adapter.place_call(call_request())
    events = events_for(receiver[0], adapter, placed.id, 2)
    assert [event.event_id for event in events] == [
        f"{placed.id}:completed",
        f"{placed.id}:ringing",
    ]


def test_dropped_webhooks_leave_get_call_as_the_way_to_learn_the_result(
    adapter: HttpVoiceProvider, receiver: tuple[Receiver, str], admin: httpx.Client
) -> None:
    before = ledger(admin)["webhooks"]
    set_faults(admin, drop_webhook_rate=1)
    placed = adapter.place_call(call_request())
    after = ledger(admin)["webhooks"]
    assert after.get("dropped", 0) - before.get("dropped", 0) == 2
    assert after.get("scheduled", 0) == before.get("scheduled", 0)
    final = wait_for(lambda: adapter.get_call(placed.id), lambda r: r.status == "completed")
    assert final.analysis is not None
    assert receiver[0].for_call(placed.id) == []


def test_a_batch_is_placed_once_per_key_with_requests_overlapping(
    adapter: HttpVoiceProvider, admin: httpx.Client
) -> None:
    requests = [call_request() for _ in range(6)]
    requests[3] = call_request(to="12345")  # refused before any HTTP, in its place

    answers = adapter.place_calls(requests)

    assert [type(answer).__name__ for answer in answers] == [
        "CallRecord",
        "CallRecord",
        "CallRecord",
        "PermanentProviderError",
        "CallRecord",
        "CallRecord",
    ]
    calls = ledger(admin)["calls_by_key"]
    for request, answer in zip(requests, answers, strict=True):
        if request.to == CUSTOMER:
            assert calls[request.idempotency_key] == 1
            assert getattr(answer, "to", None) == CUSTOMER
    assert requests[3].idempotency_key not in calls


class Gate:
    """A provider stand-in whose answers wait until ``parties`` requests are in at once."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=WAIT_SECONDS)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/calls")
        def create(body: dict[str, Any]) -> dict[str, Any]:
            self.barrier.wait()  # raises (500) unless the others arrive meanwhile
            return {
                "id": f"call_{uuid.uuid4().hex}",
                "status": "queued",
                "to": body["to"],
                "from_number": body.get("from_number"),
                "agent_id": body["agent_id"],
                "created_at": "2026-11-23T12:00:00Z",
            }

        return app


def test_batch_requests_are_in_flight_together() -> None:
    gate = Gate(parties=4)
    with serve_in_thread(gate.app()) as url:
        voice = make_adapter(url)
        try:
            answers = voice.place_calls([call_request() for _ in range(4)])
        finally:
            voice.close()
    assert all(getattr(answer, "status", None) == "queued" for answer in answers), answers
