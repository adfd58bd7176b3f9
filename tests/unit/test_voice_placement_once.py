"""One call per key without an idempotency key: lost answers, retries, crashes, the gate.

The providers' HTTP side is an httpx.MockTransport that records every create
request, so each test can count how many calls the provider would have placed.
The same flows run over real HTTP on loopback in
tests/integration/test_voice_providers_loopback.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from dialer.providers import retell, twilio_voice, vapi
from dialer.providers.base import (
    NotSent,
    PermanentProviderError,
    TransientProviderError,
    place_calls,
)
from dialer.providers.ratelimit import RateLimited
from dialer.providers.seen_once import InMemorySeenOnce
from dialer.providers.voice_adapter import PlacementUncertain
from tests.voice_fixtures import (
    CALLER_ID,
    REQUEST,
    RETELL_REGISTERED,
    TWILIO_ACCOUNT,
    TWILIO_QUEUED,
    TWILIO_TOKEN,
    VAPI_QUEUED,
)

DELAYS = (0.5, 1.0)


@dataclass
class FakeApi:
    """A provider that creates a call per create request and may then lose the answer."""

    create_path: str
    created_answer: dict[str, Any]
    lose_answers: int = 0  # the next N create requests get no answer (after creating)
    refuse_with: list[httpx.Response] = field(default_factory=list)  # before creating
    unreachable: int = 0  # the next N requests never get in
    listed: list[dict[str, Any]] = field(default_factory=list)
    creates: int = 0
    bodies: list[bytes] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.unreachable:
            self.unreachable -= 1
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST" and request.url.path == self.create_path:
            if self.refuse_with:
                return self.refuse_with.pop(0)
            self.creates += 1
            self.bodies.append(request.content)
            self.listed.append(self.created_answer)
            if self.lose_answers:
                self.lose_answers -= 1
                raise httpx.ReadTimeout("no answer", request=request)
            return httpx.Response(201, json=self.created_answer)
        return self.lookup(request)

    def lookup(self, request: httpx.Request) -> httpx.Response:
        if "list-calls" in request.url.path:
            return httpx.Response(200, json={"items": self.listed, "has_more": False})
        return httpx.Response(200, json=self.listed)


@dataclass
class RecordingLimiter:
    waits: list[float] = field(default_factory=list)
    slowed: list[float | None] = field(default_factory=list)

    def acquire(self, n: int = 1) -> float:
        return self.waits.pop(0) if self.waits else 0.0

    def slow_down(self, retry_after_seconds: float | None) -> None:
        self.slowed.append(retry_after_seconds)


Build = Callable[..., Any]


def vapi_adapter(api: FakeApi, journal: InMemorySeenOnce, **kw: Any) -> vapi.VapiVoiceProvider:
    settings = vapi.Settings(
        api_key="test-api-key",
        webhook_secret="whsec-test-value",
        phone_number_ids={CALLER_ID: "pn_1"},
    )
    return vapi.build(
        settings,
        transport=httpx.MockTransport(api),
        journal=journal,
        lookup_delays_seconds=DELAYS,
        **kw,
    )


def vapi_api(**kw: Any) -> FakeApi:
    return FakeApi("/call", VAPI_QUEUED, **kw)


def test_a_lost_answer_is_found_by_our_metadata_and_not_sent_again() -> None:
    api, slept = vapi_api(lose_answers=1), []
    adapter = vapi_adapter(api, InMemorySeenOnce(), sleep=slept.append)
    record = adapter.place_call(REQUEST)
    assert record.id == VAPI_QUEUED["id"]
    assert api.creates == 1
    assert slept == [DELAYS[0]]  # found on the first look


def test_a_lost_answer_not_found_is_uncertain_and_a_retry_sends_nothing() -> None:
    api, slept = vapi_api(lose_answers=1), []
    api.created_answer = {**VAPI_QUEUED, "assistantOverrides": {}}  # lookups cannot match it
    adapter = vapi_adapter(api, InMemorySeenOnce(), sleep=slept.append)
    with pytest.raises(PlacementUncertain) as held:
        adapter.place_call(REQUEST)
    assert held.value.code == "placement_uncertain"
    assert isinstance(held.value, PermanentProviderError)  # dispatch fails it, never re-sends
    assert slept == list(DELAYS)
    with pytest.raises(PlacementUncertain):
        adapter.place_call(REQUEST)  # the task's retry
    assert api.creates == 1


def test_a_crash_after_sending_is_resolved_by_the_next_process_sharing_the_journal() -> None:
    api, journal = vapi_api(), InMemorySeenOnce()
    first = vapi_adapter(api, journal, sleep=lambda _: None).place_call(REQUEST)
    # The worker died before recording the call; the reaper re-sends with the same key.
    again = vapi_adapter(api, journal, sleep=lambda _: None).place_call(REQUEST)
    assert again.id == first.id
    assert api.creates == 1


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.Response(429, headers={"Retry-After": "3"}, json={"message": "Too many"}),
        httpx.Response(503, json={"message": "maintenance"}),
    ],
)
def test_refused_before_creating_gives_the_claim_back_so_a_retry_sends(
    refusal: httpx.Response,
) -> None:
    api, limiter = vapi_api(refuse_with=[refusal]), RecordingLimiter()
    adapter = vapi_adapter(api, InMemorySeenOnce(), sleep=lambda _: None, limiter=limiter)
    with pytest.raises(TransientProviderError) as refused:
        adapter.place_call(REQUEST)
    assert not isinstance(refused.value, PlacementUncertain)
    if refusal.status_code == 429:
        assert (refused.value.kind, limiter.slowed) == ("rate_limited", [3.0])
    assert adapter.place_call(REQUEST).id == VAPI_QUEUED["id"]
    assert api.creates == 1


def test_unreachable_provider_is_transient_and_the_retry_sends() -> None:
    api = vapi_api(unreachable=1)
    adapter = vapi_adapter(api, InMemorySeenOnce(), sleep=lambda _: None)
    with pytest.raises(TransientProviderError) as refused:
        adapter.place_call(REQUEST)
    assert refused.value.kind == "network"
    adapter.place_call(REQUEST)
    assert api.creates == 1


def test_a_gateway_502_is_treated_as_a_lost_answer() -> None:
    api = vapi_api(refuse_with=[httpx.Response(502, text="Bad Gateway")])
    api.listed.append(VAPI_QUEUED)  # the call was created behind the gateway
    record = vapi_adapter(api, InMemorySeenOnce(), sleep=lambda _: None).place_call(REQUEST)
    assert record.id == VAPI_QUEUED["id"]
    assert api.creates == 0  # nothing more was sent


def test_a_4xx_gives_the_claim_back() -> None:
    api = vapi_api(refuse_with=[httpx.Response(400, json={"message": "assistantId invalid"})])
    adapter = vapi_adapter(api, InMemorySeenOnce(), sleep=lambda _: None)
    with pytest.raises(PermanentProviderError) as refused:
        adapter.place_call(REQUEST)
    assert refused.value.code == "validation_error"
    adapter.place_call(REQUEST)
    assert api.creates == 1


def test_the_gate_is_asked_after_the_rate_limit_wait_and_holds_without_a_claim() -> None:
    api, journal, asked = vapi_api(), InMemorySeenOnce(), []
    limiter = RecordingLimiter(waits=[0.2])
    adapter = vapi_adapter(api, journal, sleep=asked.append, limiter=limiter)
    answers = place_calls(adapter, [REQUEST], gate=lambda r: asked.append("gate") or False)
    assert answers == [NotSent(REQUEST.idempotency_key)]
    assert asked == [0.2, "gate"]
    assert api.creates == 0
    assert place_calls(adapter, [REQUEST], gate=lambda r: True)[0].id == VAPI_QUEUED["id"]  # type: ignore[union-attr]


def test_an_empty_call_budget_sends_nothing() -> None:
    api = vapi_api()
    adapter = vapi_adapter(
        api, InMemorySeenOnce(), sleep=lambda _: None, limiter=RecordingLimiter(waits=[5.0])
    )
    with pytest.raises(RateLimited):
        adapter.place_call(REQUEST)
    assert api.creates == 0


def test_twilio_has_no_lookup_so_a_lost_answer_is_uncertain_at_once() -> None:
    api, slept = FakeApi(f"/2010-04-01/Accounts/{TWILIO_ACCOUNT}/Calls.json", TWILIO_QUEUED), []
    api.lose_answers = 1
    settings = twilio_voice.Settings(account_sid=TWILIO_ACCOUNT, auth_token=TWILIO_TOKEN)
    adapter = twilio_voice.build(settings, transport=httpx.MockTransport(api), sleep=slept.append)
    request = REQUEST.__class__(**{**REQUEST.__dict__, "agent_id": "wss://agent.example/ws"})
    for _ in range(2):
        with pytest.raises(PlacementUncertain):
            adapter.place_call(request)
    assert (api.creates, slept) == (1, [])


def test_retell_keeps_our_key_so_a_lost_answer_may_be_sent_again_with_it() -> None:
    api = FakeApi("/v2/create-phone-call", {**RETELL_REGISTERED, "metadata": {}}, lose_answers=1)
    adapter = retell.build(
        retell.Settings(api_key="test-api-key"),
        transport=httpx.MockTransport(api),
        sleep=lambda _: None,
        lookup_delays_seconds=DELAYS,
    )
    with pytest.raises(TransientProviderError) as lost:
        adapter.place_call(REQUEST)
    assert not isinstance(lost.value, PermanentProviderError)
    adapter.place_call(REQUEST)  # Retell answers the same call for the same key
    assert api.creates == 2
    keys = {json.loads(body)["idempotency_key"] for body in api.bodies}
    assert keys == {REQUEST.idempotency_key}


def test_a_failed_lookup_after_an_earlier_try_sends_nothing_and_comes_back_later() -> None:
    api = FakeApi("/v2/create-phone-call", RETELL_REGISTERED)
    journal = InMemorySeenOnce()
    settings = retell.Settings(api_key="test-api-key")
    first = retell.build(settings, transport=httpx.MockTransport(api), journal=journal)
    first.place_call(REQUEST)

    def lookups_fail(request: httpx.Request) -> httpx.Response:
        if "list-calls" in request.url.path:
            return httpx.Response(503, json={"message": "busy"})
        return api(request)

    again = retell.build(settings, transport=httpx.MockTransport(lookups_fail), journal=journal)
    with pytest.raises(TransientProviderError) as later:
        again.place_call(REQUEST)
    assert not isinstance(later.value, PermanentProviderError)
    assert api.creates == 1
