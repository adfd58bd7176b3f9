"""Each hosted adapter against `dialer sandbox` in its provider's flavour, over loopback.

The sandbox (in a thread, fast time) and a webhook receiver (in a thread) on
127.0.0.1; the real adapter module of each provider. Per flavour: calls placed
through the adapter are answered in the provider's shape, read back with
``get_call``, found again by our metadata where the provider allows it, and every
webhook the sandbox sends passes the adapter's own signature check and parses into
events whose final status is the one ``get_call`` reports. A lost placement answer
(the sandbox's ``lost_response``) is found again, never placed twice; for Twilio,
which has no lookup, it is ``PlacementUncertain``, still one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers import elevenlabs, retell, twilio_voice, vapi
from dialer.providers.base import PlaceCallRequest, ProviderEvent
from dialer.providers.voice_adapter import HostedVoiceAdapter, PlacementUncertain
from dialer.sandbox.config import SandboxConfig
from dialer.sandbox.testing import running_sandbox, serve_in_thread
from tests.voice_fixtures import CALLER_ID, REQUEST

pytestmark = pytest.mark.integration

API_KEY = "flavour-api-key-0123456789"
SECRET = "flavour-webhook-secret-0123456789"
TWILIO_ACCOUNT = "AC" + "0123456789abcdef" * 2
CALLS = 8
TERMINAL = {
    ProviderCallStatus.COMPLETED,
    ProviderCallStatus.NO_ANSWER,
    ProviderCallStatus.BUSY,
    ProviderCallStatus.FAILED,
    ProviderCallStatus.CANCELED,
}


@dataclass
class Received:
    hooks: list[tuple[Mapping[str, str], bytes, str]]  # headers case-insensitive


def _receiver(received: Received) -> FastAPI:
    app = FastAPI()

    @app.post("/webhooks/calls/{name}")
    async def take(name: str, request: Request) -> JSONResponse:
        received.hooks.append((request.headers, await request.body(), str(request.url)))
        return JSONResponse({"status": "stored"})

    return app


@dataclass(frozen=True)
class Flavour:
    name: str
    credential: str  # what the sandbox accepts
    adapter: Callable[[str, str], HostedVoiceAdapter]  # (sandbox URL, webhook URL)
    verify: Callable[[Mapping[str, str], bytes, str], None]
    parse: Callable[[bytes, Mapping[str, str], str], list[ProviderEvent]]
    finds: bool


def _timing(**kw: Any) -> dict[str, Any]:
    return {"read_timeout_seconds": 0.5, "calls_per_second": 100.0, **kw}


FLAVOURS = [
    Flavour(
        "vapi",
        API_KEY,
        lambda base, hook: vapi.build(
            vapi.Settings(
                api_key=API_KEY,
                webhook_secret=SECRET,
                base_url=base,
                phone_number_ids={CALLER_ID: "pn_1"},
                **_timing(),
            ),
            webhook_url=hook,
            lookup_delays_seconds=(0.1, 0.3),
        ),
        lambda h, b, u: vapi.verify_webhook(h, b, u, SECRET, time.time()),
        vapi.parse_webhook,
        True,
    ),
    Flavour(
        "retell",
        API_KEY,
        lambda base, hook: retell.build(
            retell.Settings(api_key=API_KEY, base_url=base, **_timing()),
            webhook_url=hook,
            lookup_delays_seconds=(0.1, 0.3),
        ),
        lambda h, b, u: retell.verify_webhook(h, b, u, API_KEY, time.time()),
        retell.parse_webhook,
        True,
    ),
    Flavour(
        "twilio",
        f"{TWILIO_ACCOUNT}:{SECRET}",
        lambda base, hook: twilio_voice.build(
            twilio_voice.Settings(
                account_sid=TWILIO_ACCOUNT,
                auth_token=SECRET,
                base_url=base,
                # The sandbox dates callbacks on its own fast clock.
                webhook_tolerance_seconds=10 * 365 * 24 * 3600.0,
                **_timing(),
            ),
            webhook_url=hook,
        ),
        lambda h, b, u: twilio_voice.verify_webhook(
            h, b, u, SECRET, time.time(), tolerance_seconds=10 * 365 * 24 * 3600.0
        ),
        twilio_voice.parse_webhook,
        False,
    ),
    Flavour(
        "elevenlabs",
        API_KEY,
        lambda base, _hook: elevenlabs.build(
            elevenlabs.Settings(
                api_key=API_KEY,
                webhook_secret=SECRET,
                base_url=base,
                phone_number_ids={CALLER_ID: "phnum_1"},
                **_timing(),
            ),
            lookup_delays_seconds=(0.1, 0.3),
        ),
        lambda h, b, u: elevenlabs.verify_webhook(h, b, u, SECRET, time.time()),
        elevenlabs.parse_webhook,
        True,
    ),
]


@pytest.fixture(scope="module")
def received() -> Received:
    return Received(hooks=[])


@pytest.fixture(scope="module")
def hook_base(received: Received) -> Iterator[str]:
    with serve_in_thread(_receiver(received)) as url:
        yield url


def _sandbox(flavour: Flavour, hook_base: str, **faults: Any) -> Any:
    config = SandboxConfig(
        flavor=flavour.name,  # type: ignore[arg-type]
        api_key=flavour.credential,
        # Retell signs with the API key (the one with the webhook badge).
        webhook_secret=API_KEY if flavour.name == "retell" else SECRET,
        default_webhook_url=f"{hook_base}/webhooks/calls/{flavour.name}",
        time_scale=200_000,
        simulation={"seed": 5},
        faults={"hang_seconds": 1.0, **faults},
    )
    return running_sandbox(config)


def _request(flavour: Flavour, n: int, run: str = "") -> PlaceCallRequest:
    """The n-th request; ``run`` fixes its key, so the simulated outcome (drawn from the
    seed and the key) is the same every run. A key with the clock in it gave 8 calls of
    one outcome in ~5 % of runs (voicemail reads "completed" too)."""
    agent = "wss://agent.example/relay" if flavour.name == "twilio" else REQUEST.agent_id
    key = f"att:{flavour.name}:{n}:{run or time.monotonic_ns()}"
    metadata = {**REQUEST.metadata, "attempt_id": f"attempt-{n}"}
    return replace(REQUEST, idempotency_key=key, agent_id=agent, metadata=metadata)


def _wait(predicate: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)
def test_an_adapter_places_reads_finds_and_verifies_against_its_flavour(
    flavour: Flavour, hook_base: str, received: Received
) -> None:
    received.hooks.clear()
    with _sandbox(flavour, hook_base) as base:
        adapter = flavour.adapter(base, f"{hook_base}/webhooks/calls/{flavour.name}")
        requests = [_request(flavour, n, run="outcomes") for n in range(CALLS)]
        placed = [adapter.place_call(request) for request in requests]
        assert all(record.id for record in placed)
        # Every call plays out on the sandbox's fast clock; a loaded machine may need
        # longer than a fixed pause, so wait (bounded) until every call has ended.
        terminal = {s.value for s in TERMINAL}

        def all_ended() -> bool:
            return all(adapter.get_call(r.id).status in terminal for r in placed)

        _wait(all_ended)
        final = {record.id: adapter.get_call(record.id) for record in placed}
        assert {record.status for record in final.values()} <= terminal
        assert len({record.status for record in final.values()}) >= 2  # several outcomes
        if flavour.finds:
            since = datetime.now(UTC) - timedelta(minutes=2)
            for request, record in zip(requests, placed, strict=True):
                found = adapter.find_call(request, since)
                assert found is not None
                assert found.id == record.id
        # A call's last webhook may be scheduled a moment after it ended: wait until
        # every call's events arrived and nothing is left in flight.
        _wait(lambda: set(_events(flavour, received)) == set(final) and ledger_settled(base))
        ledger = httpx.get(f"{base}/sandbox/ledger", timeout=5).json()
    assert set(ledger["calls_by_key"].values()) == {1}
    assert set(ledger["calls_by_key"]) == {r.idempotency_key for r in requests}

    events = _events(flavour, received)
    assert set(events) == set(final)
    for call_id, record in final.items():
        statuses = {event.call.status for event in events[call_id] if event.call}
        if flavour.name == "elevenlabs" and record.status == ProviderCallStatus.FAILED:
            # A conversation that never connected reads "failed"; only the webhook's
            # failure_reason tells busy from no-answer.
            assert statuses <= {"failed", "busy", "no_answer"}, statuses
            continue
        assert record.status in statuses, (call_id, record.status, statuses)
    forged_headers, forged_body, forged_url = received.hooks[0]
    with pytest.raises(ValueError):
        flavour.verify(forged_headers, forged_body + b" ", forged_url)


def _events(flavour: Flavour, received: Received) -> dict[str, list[ProviderEvent]]:
    """The received webhooks, each verified by the adapter's own scheme, by call id."""
    events: dict[str, list[ProviderEvent]] = {}
    for headers, body, url in list(received.hooks):
        flavour.verify(headers, body, url)  # raises if forged
        for event in flavour.parse(body, headers, url):
            assert event.call is not None
            events.setdefault(event.call.id, []).append(event)
    return events


def ledger_settled(base: str) -> bool:
    hooks = httpx.get(f"{base}/sandbox/ledger", timeout=5).json()["webhooks"]
    return hooks.get("scheduled", 0) == hooks.get("delivered", 0) + hooks.get("failed", 0)


@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)
def test_a_lost_placement_answer_is_found_again_or_held_never_placed_twice(
    flavour: Flavour, hook_base: str
) -> None:
    with _sandbox(flavour, hook_base, scripted=["lost_response"]) as base:
        adapter = flavour.adapter(base, f"{hook_base}/webhooks/calls/{flavour.name}")
        request = _request(flavour, 0)
        if flavour.finds:
            record = adapter.place_call(request)
        else:
            with pytest.raises(PlacementUncertain):
                adapter.place_call(request)
            with pytest.raises(PlacementUncertain):  # a retry of the task sends nothing
                adapter.place_call(request)
        ledger = httpx.get(f"{base}/sandbox/ledger", timeout=5).json()
    assert ledger["faults"] == {"lost_response": 1}
    assert ledger["lost_response_keys"] == [request.idempotency_key]
    assert ledger["calls_by_key"] == {request.idempotency_key: 1}
    if flavour.finds:
        assert record.id == ledger["calls"][0]["call_id"]


@pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)
def test_each_flavour_takes_the_voicemail_policy_in_its_native_form(
    flavour: Flavour, hook_base: str
) -> None:
    """Retell's ``voicemail_option``, Twilio's ``MachineDetection=DetectMessageEnd``, Vapi's
    ``voicemailMessage``: a sandbox that refuses unknown fields accepts each one."""
    leave = {"voicemail_action": "leave_message", "voicemail_message": "Please call us back."}
    with _sandbox(flavour, hook_base) as base:
        adapter = flavour.adapter(base, f"{hook_base}/webhooks/calls/{flavour.name}")
        request = replace(_request(flavour, 0), context={**REQUEST.context, **leave})
        record = adapter.place_call(request)
        assert record.id
        ledger = httpx.get(f"{base}/sandbox/ledger", timeout=5).json()
    assert ledger["calls_by_key"] == {request.idempotency_key: 1}
