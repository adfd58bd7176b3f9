"""The four hosted voice adapters over real HTTP on loopback, against fakes of their shapes.

What is proved here with real sockets, not mocks: a call is placed and read back;
an answer lost to a client timeout or to a reset connection never turns into a
second call (found again by our metadata, or held as PlacementUncertain); a 429
slows the fleet's limiter down; the placement journal in real Redis lets another
process resolve a crash after sending; and signed webhooks sent over HTTP pass each
provider's verifier while forged ones do not.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis
from fastapi import FastAPI, Request, Response

from dialer.providers import elevenlabs, retell, twilio_voice, vapi
from dialer.providers.base import PlaceCallRequest, TransientProviderError
from dialer.providers.ratelimit import BucketLimits, InMemoryRateLimiter
from dialer.providers.seen_once import RedisSeenOnce, SeenOnce
from dialer.providers.signing import SignatureError
from dialer.providers.voice_adapter import HostedVoiceAdapter, PlacementUncertain
from dialer.sandbox.testing import serve_in_thread
from tests.integration.fake_voice_providers import FakeProviders, LosingProxy, fake_app
from tests.voice_fixtures import (
    CALLER_ID,
    ELEVENLABS_TRANSCRIPTION_WEBHOOK,
    REQUEST,
    RETELL_ANALYZED,
    TWILIO_ACCOUNT,
    TWILIO_CALLBACK,
    TWILIO_TOKEN,
    VAPI_END_OF_CALL,
)

pytestmark = pytest.mark.integration

KEYS = {
    "vapi": "Bearer vapi-key",
    "retell": "Bearer retell-key",
    "twilio": "Basic " + base64.b64encode(f"{TWILIO_ACCOUNT}:{TWILIO_TOKEN}".encode()).decode(),
    "elevenlabs": "xi-test-key",
}
READ_TIMEOUT_SECONDS = 0.3
HOOK_PATH_QUERY = "?dialer_idempotency_key=k&attempt_id=a"


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[..., HostedVoiceAdapter]
    finds_lost_calls: bool  # False: a lost answer is PlacementUncertain

    def request(self, key: str) -> PlaceCallRequest:
        agent = "wss://agent.example/relay" if self.name == "twilio" else REQUEST.agent_id
        return replace(REQUEST, idempotency_key=key, agent_id=agent)


def _vapi(base: str, **kw: Any) -> HostedVoiceAdapter:
    settings = vapi.Settings(
        api_key="vapi-key",
        webhook_secret="whsec-test-value",
        base_url=base,
        phone_number_ids={CALLER_ID: "pn_1"},
        read_timeout_seconds=READ_TIMEOUT_SECONDS,
    )
    kw.setdefault("lookup_delays_seconds", (0.05, 0.2))
    return vapi.build(settings, **kw)


def _retell(base: str, **kw: Any) -> HostedVoiceAdapter:
    settings = retell.Settings(
        api_key="retell-key", base_url=base, read_timeout_seconds=READ_TIMEOUT_SECONDS
    )
    kw.setdefault("lookup_delays_seconds", (0.05, 0.2))
    return retell.build(settings, **kw)


def _twilio(base: str, **kw: Any) -> HostedVoiceAdapter:
    settings = twilio_voice.Settings(
        account_sid=TWILIO_ACCOUNT,
        auth_token=TWILIO_TOKEN,
        base_url=base,
        status_callback_url="https://hooks.example/webhooks/calls/twilio",
        read_timeout_seconds=READ_TIMEOUT_SECONDS,
    )
    return twilio_voice.build(settings, **kw)


def _elevenlabs(base: str, **kw: Any) -> HostedVoiceAdapter:
    settings = elevenlabs.Settings(
        api_key="xi-test-key",
        webhook_secret="whsec-test-value",
        base_url=base,
        phone_number_ids={CALLER_ID: "phnum_1"},
        read_timeout_seconds=READ_TIMEOUT_SECONDS,
    )
    kw.setdefault("lookup_delays_seconds", (0.05, 0.2))
    return elevenlabs.build(settings, **kw)


CASES = [
    Case("vapi", _vapi, finds_lost_calls=True),
    Case("retell", _retell, finds_lost_calls=True),
    Case("twilio", _twilio, finds_lost_calls=False),
    Case("elevenlabs", _elevenlabs, finds_lost_calls=True),
]


@pytest.fixture(scope="module")
def fake() -> FakeProviders:
    return FakeProviders(api_keys=KEYS)


@pytest.fixture(scope="module")
def base_url(fake: FakeProviders) -> Iterator[str]:
    with serve_in_thread(fake_app(fake)) as url:
        yield url


@pytest.fixture(autouse=True)
def _clear_faults(fake: FakeProviders) -> Iterator[None]:
    yield
    fake.slow_answers, fake.refusals[:], fake.answer_delay_seconds = 0, [], 0.0
    fake.settle()


def _key(case: Case, test: str) -> str:
    return f"att:{case.name}:{test}:{time.monotonic_ns()}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_place_and_get_over_http(case: Case, fake: FakeProviders, base_url: str) -> None:
    adapter = case.make(base_url)
    key = _key(case, "place")
    placed = adapter.place_call(case.request(key))
    again = adapter.get_call(placed.id)
    assert again.id == placed.id
    assert again.status in ("completed", "queued")
    assert fake.creates_by_key()[key] == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_answer_lost_to_a_timeout_never_places_a_second_call(
    case: Case, fake: FakeProviders, base_url: str
) -> None:
    adapter, key = case.make(base_url), _key(case, "timeout")
    fake.slow_answers, fake.slow_seconds = 1, READ_TIMEOUT_SECONDS * 3
    _place_through_a_lost_answer(case, adapter, key)
    assert fake.creates_by_key()[key] == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_answer_lost_to_a_reset_connection_never_places_a_second_call(
    case: Case, fake: FakeProviders, base_url: str
) -> None:
    key = _key(case, "reset")
    with LosingProxy(base_url, losses=1) as proxy:
        adapter = case.make(proxy.url)
        _place_through_a_lost_answer(case, adapter, key)
        assert proxy.losses == 0  # the answer was indeed lost once
    assert fake.creates_by_key()[key] == 1


def _place_through_a_lost_answer(case: Case, adapter: HostedVoiceAdapter, key: str) -> None:
    request = case.request(key)
    if case.finds_lost_calls:
        first = adapter.place_call(request)
        assert adapter.place_call(request).id == first.id  # a retry: the same call
        return
    for _ in range(2):  # the first try and the task's retry
        with pytest.raises(PlacementUncertain):
            adapter.place_call(request)


def test_vapi_lookup_pages_back_through_a_busy_assistant(
    fake: FakeProviders, base_url: str
) -> None:
    case, key = CASES[0], _key(CASES[0], "busy")
    adapter = case.make(base_url)
    fake.slow_answers, fake.slow_seconds = 1, READ_TIMEOUT_SECONDS * 3
    # The fake creates our call, then 250 more arrive before the answer is known lost.
    original_answer = fake.answer

    async def crowded_answer(content: dict[str, Any], status: int = 201) -> Any:
        body = {"assistantId": REQUEST.agent_id, "customer": {"number": REQUEST.to}}
        for n in range(250):
            other = {**body, "assistantOverrides": {"metadata": {"dialer_idempotency_key": n}}}
            fake.create("vapi", f"other-{key}-{n}", other)
        return await original_answer(content, status)

    fake.answer = crowded_answer  # type: ignore[method-assign]
    try:
        found = adapter.place_call(case.request(key))
    finally:
        fake.answer = original_answer  # type: ignore[method-assign]
    assert fake.find("vapi", key) is not None
    assert found.id == fake.find("vapi", key).id  # type: ignore[union-attr]
    assert fake.creates_by_key()[key] == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_429_slows_the_fleet_and_the_retry_places_one_call(
    case: Case, fake: FakeProviders, base_url: str
) -> None:
    clock = [1000.0]
    limiter = InMemoryRateLimiter(BucketLimits(rate_per_second=10, burst=5), lambda: clock[0])
    adapter, key = case.make(base_url, limiter=limiter, sleep=lambda _: None), _key(case, "429")
    fake.refusals.append((429, {"Retry-After": "2"}))
    with pytest.raises(TransientProviderError) as refused:
        adapter.place_call(case.request(key))
    assert (refused.value.kind, refused.value.retry_after_seconds) == ("rate_limited", 2.0)
    assert limiter.acquire() > 0  # the fleet pauses for the Retry-After
    clock[0] += 3
    adapter.place_call(case.request(key))
    assert fake.creates_by_key()[key] == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_chunk_overlaps_its_requests_and_gates_each_one(
    case: Case, fake: FakeProviders, base_url: str
) -> None:
    adapter = case.make(base_url)  # parallel_requests: 4 by default
    fake.answer_delay_seconds = 0.1
    requests = [case.request(_key(case, f"batch{n}")) for n in range(8)]
    held_back = requests[3].idempotency_key
    answers = adapter.place_calls(requests, lambda r: r.idempotency_key != held_back)
    assert [type(a).__name__ for a in answers].count("NotSent") == 1
    assert 1 < fake.max_in_flight <= 4
    creates = fake.creates_by_key()
    assert [creates[r.idempotency_key] for r in requests] == [1, 1, 1, 0, 1, 1, 1, 1]


@pytest.fixture
def redis_journal(redis_url: str) -> Iterator[SeenOnce]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield RedisSeenOnce(client, namespace="test_voice")
    client.flushdb()
    client.close()


@pytest.mark.parametrize("case", [c for c in CASES if c.finds_lost_calls], ids=lambda c: c.name)
def test_a_crash_after_sending_is_resolved_by_another_process_through_redis(
    case: Case, fake: FakeProviders, base_url: str, redis_journal: SeenOnce
) -> None:
    key = _key(case, "crash")
    first = case.make(base_url, journal=redis_journal).place_call(case.request(key))
    # The first worker died before recording the call; another one gets the re-sent task.
    other_worker = case.make(base_url, journal=redis_journal)
    assert other_worker.place_call(case.request(key)).id == first.id
    assert fake.creates_by_key()[key] == 1


def test_twilio_crash_after_sending_is_held_uncertain_through_redis(
    fake: FakeProviders, base_url: str, redis_journal: SeenOnce
) -> None:
    case, key = CASES[2], _key(CASES[2], "crash")
    case.make(base_url, journal=redis_journal).place_call(case.request(key))
    with pytest.raises(PlacementUncertain):
        case.make(base_url, journal=redis_journal).place_call(case.request(key))
    assert fake.creates_by_key()[key] == 1


def test_redis_claims_expire_and_can_be_given_back(redis_journal: SeenOnce) -> None:
    assert redis_journal.claim("k", 0.05)
    assert not redis_journal.claim("k", 10)
    time.sleep(0.1)  # a real Redis TTL: nothing else to wait on
    assert redis_journal.claim("k", 10)
    redis_journal.release("k")
    assert redis_journal.claim("k", 10)


# --------------------------------------------------------------------------- webhooks over HTTP

SECRETS = {
    "vapi": "vapi-hook-secret",
    "retell": "retell-key",
    "twilio": TWILIO_TOKEN,
    "elevenlabs": "el-hook-secret",
}


def _receiver() -> FastAPI:
    """An ingress stand-in: verify with the provider's scheme, then parse; 401 on failure."""
    app = FastAPI()

    @app.post("/webhooks/{provider}")
    async def receive(provider: str, request: Request) -> Response:
        body, url, now = await request.body(), str(request.url), time.time()
        module: Any = {"vapi": vapi, "retell": retell, "twilio": twilio_voice}.get(
            provider, elevenlabs
        )
        try:
            module.verify_webhook(request.headers, body, url, SECRETS[provider], now)
        except SignatureError as exc:
            return Response(str(exc), 401)
        events = module.parse_webhook(body, request.headers)
        statuses = [event.call.status for event in events]
        return Response(json.dumps(statuses), 200, media_type="application/json")

    return app


def _signed(provider: str, url: str, secret: str) -> tuple[bytes, dict[str, str]]:
    now = time.time()
    if provider == "twilio":
        stamp = format_datetime(datetime.fromtimestamp(now, tz=UTC), usegmt=True)
        body = urlencode({**TWILIO_CALLBACK, "Timestamp": stamp}).encode()
        return body, {
            **twilio_voice.sign(url, body, secret),
            "Content-Type": "application/x-www-form-urlencoded",
        }
    payloads = {
        "vapi": VAPI_END_OF_CALL,
        "retell": {"event": "call_analyzed", "call": RETELL_ANALYZED},
        "elevenlabs": ELEVENLABS_TRANSCRIPTION_WEBHOOK,
    }
    body = json.dumps(payloads[provider]).encode()
    module: Any = {"vapi": vapi, "retell": retell}.get(provider, elevenlabs)
    return body, {**module.sign(body, secret, now), "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[str]:
    with serve_in_thread(_receiver()) as url:
        yield url


@pytest.mark.parametrize("provider", list(SECRETS))
def test_signed_webhooks_pass_over_http_and_forged_ones_do_not(
    provider: str, receiver_url: str
) -> None:
    url = f"{receiver_url}/webhooks/{provider}{HOOK_PATH_QUERY}"
    body, headers = _signed(provider, url, SECRETS[provider])
    with httpx.Client(timeout=5) as client:
        accepted = client.post(url, content=body, headers=headers)
        assert (accepted.status_code, accepted.json()) == (200, ["completed"])
        _, forged_headers = _signed(provider, url, "a guessed secret")
        forged = client.post(url, content=body, headers=forged_headers)
        assert forged.status_code == 401
        tampered_body = body.replace(b"15551234567", b"15559999999")
        assert tampered_body != body
        tampered = client.post(url, content=tampered_body, headers=headers)
        assert tampered.status_code == 401
