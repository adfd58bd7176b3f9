"""The WhatsApp Cloud adapter against the sandbox router, over real loopback HTTP.

The sandbox runs under uvicorn in a thread and posts its signed status webhooks to a
small receiver (also uvicorn) that verifies them. The send-once guard uses the test
Redis under a namespace of its own per test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI, Request, Response

from dialer.providers.base import (
    PermanentProviderError,
    SendMessageRequest,
    TransientProviderError,
)
from dialer.providers.send_guard import SendInFlight, SendOnceGuard
from dialer.providers.signing import SignatureError, verify
from dialer.providers.whatsapp import (
    TEMPLATE_KEY,
    WhatsAppCloudProvider,
    WhatsAppConfig,
    parse_webhook,
)
from dialer.sandbox.testing import serve_in_thread
from dialer.sandbox.whatsapp import (
    WhatsAppSandbox,
    WhatsAppSandboxConfig,
    create_whatsapp_app,
    install,
)
from tests.integration.loopback_support import free_port, wait_until

SECRET = "whsec_test"
TOKEN = "wa_test"
PHONE = "+390612345601"


class Receiver:
    """A webhook endpoint that keeps each verified body and counts forged ones."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refused = 0
        self.app = FastAPI()
        self.app.post("/hook")(self.hook)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify(SECRET, request.headers, body, now=time.time(), tolerance_seconds=5)
        except SignatureError:
            self.refused += 1
            return Response(status_code=401)
        self.bodies.append(json.loads(body))
        return Response(status_code=200)

    def statuses(self, wamid: str) -> list[str]:
        events = [event for body in self.bodies for event in parse_webhook(body)]
        return [
            event.message_status.status
            for event in events
            if event.message_status and event.message_status.provider_message_id == wamid
        ]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    with serve_in_thread(hooks.app) as url:
        yield hooks, f"{url}/hook"


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[tuple[FastAPI, str]]:
    app = create_whatsapp_app(WhatsAppSandboxConfig(webhook_url=None, webhook_secret=SECRET))
    with serve_in_thread(app) as url:
        yield app, url


@pytest.fixture
def sandbox(sandbox_server: tuple[FastAPI, str], receiver: tuple[Receiver, str]) -> WhatsAppSandbox:
    """A fresh sandbox state for each test, posting webhooks to the receiver."""
    app, _ = sandbox_server
    config = WhatsAppSandboxConfig(
        webhook_url=receiver[1], webhook_secret=SECRET, token=TOKEN, status_delay_seconds=0.01
    )
    return install(app, config)


@pytest.fixture
def guard(redis_client: redis.Redis, redis_namespace: str) -> SendOnceGuard:
    return SendOnceGuard(redis_client, redis_namespace)


MakeProvider = Callable[..., WhatsAppCloudProvider]


@pytest.fixture
def make_provider(
    sandbox_server: tuple[FastAPI, str], guard: SendOnceGuard
) -> Iterator[MakeProvider]:
    """Adapters on the sandbox (or ``base_url``), sharing the guard; closed at the end."""
    made: list[WhatsAppCloudProvider] = []

    def make(base_url: str | None = None, token: str = TOKEN) -> WhatsAppCloudProvider:
        config = WhatsAppConfig(
            base_url=base_url or sandbox_server[1],
            token=token,
            phone_number_id="pn_test",
            connect_timeout_seconds=1.0,
            read_timeout_seconds=2.0,
        )
        made.append(WhatsAppCloudProvider(config, guard))
        return made[-1]

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider: MakeProvider) -> WhatsAppCloudProvider:
    return make_provider()


def request(key: str = "msg:1", to: str = PHONE, **extra: Any) -> SendMessageRequest:
    return SendMessageRequest(
        idempotency_key=key, channel="whatsapp", to=to, body="Hi Ann, we tried to call", **extra
    )


def test_a_message_is_sent_and_its_statuses_arrive_signed_in_order(
    provider: WhatsAppCloudProvider, sandbox: WhatsAppSandbox, receiver: tuple[Receiver, str]
) -> None:
    result = provider.send(request())

    assert result.status == "sent"
    assert result.provider_message_id.startswith("wamid.")
    (sent,) = sandbox.sent
    assert (sent["id"], sent["to"], sent["type"], sent["text"], sent["phone_number_id"]) == (
        result.provider_message_id,
        "390612345601",
        "text",
        "Hi Ann, we tried to call",
        "pn_test",
    )
    hooks = receiver[0]
    wait_until(
        lambda: len(hooks.statuses(result.provider_message_id)) == 3, 5.0, "statuses missing"
    )
    assert hooks.statuses(result.provider_message_id) == ["sent", "delivered", "read"]
    assert hooks.refused == 0


def test_a_template_request_is_sent_as_a_template(
    provider: WhatsAppCloudProvider, sandbox: WhatsAppSandbox
) -> None:
    provider.send(request(metadata={TEMPLATE_KEY: "missed_call"}))
    (sent,) = sandbox.sent
    assert (sent["type"], sent["template"], sent["text"]) == ("template", "missed_call", None)


def test_a_resent_key_returns_the_first_wamid_without_sending_again(
    make_provider: MakeProvider, sandbox: WhatsAppSandbox
) -> None:
    # Two adapter instances stand for two workers running the same task.
    first_worker, second_worker = make_provider(), make_provider()
    first = first_worker.send(request("msg:again"))
    again = second_worker.send(request("msg:again"))
    other = first_worker.send(request("msg:other"))

    assert again == first
    assert other.provider_message_id != first.provider_message_id
    assert [message["id"] for message in sandbox.sent] == [
        first.provider_message_id,
        other.provider_message_id,
    ]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_transient_and_the_retry_sends_once(
    provider: WhatsAppCloudProvider, sandbox: WhatsAppSandbox, status: int
) -> None:
    sandbox.forced_faults.append(status)
    with pytest.raises(TransientProviderError) as raised:
        provider.send(request())
    assert str(status) in str(raised.value)
    assert raised.value.retry_after_seconds == (1.0 if status == 429 else None)
    assert sandbox.sent == []

    retried = provider.send(request())  # the failed try released the key
    assert [message["id"] for message in sandbox.sent] == [retried.provider_message_id]


def test_a_random_fault_rate_refuses_some_sends_transiently(
    sandbox_server: tuple[FastAPI, str], make_provider: MakeProvider
) -> None:
    install(
        sandbox_server[0],
        WhatsAppSandboxConfig(
            webhook_url=None, webhook_secret=SECRET, token=TOKEN, rate_429=0.3, rate_5xx=0.3
        ),
    )
    provider = make_provider()
    outcomes = {"sent": 0, "transient": 0}
    for n in range(20):
        try:
            provider.send(request(f"msg:{n}"))
            outcomes["sent"] += 1
        except TransientProviderError:
            outcomes["transient"] += 1
    assert outcomes["sent"] > 0
    assert outcomes["transient"] > 0


@pytest.mark.parametrize(
    ("to", "token", "code"),
    [
        ("+390612340000", TOKEN, "whatsapp_131030"),  # not in the test account's allowed list
        (PHONE, "wrong-token", "whatsapp_190"),
    ],
    ids=["recipient_not_allowed", "bad_token"],
)
def test_client_errors_are_permanent_with_the_cloud_code_and_message(
    make_provider: MakeProvider, sandbox: WhatsAppSandbox, to: str, token: str, code: str
) -> None:
    provider = make_provider(token=token)
    with pytest.raises(PermanentProviderError) as raised:
        provider.send(request(to=to))
    assert raised.value.code == code
    assert str(raised.value).startswith(("whatsapp 400: (#131030)", "whatsapp 401: Invalid OAuth"))
    assert sandbox.sent == []


def test_a_forced_400_is_permanent(
    provider: WhatsAppCloudProvider, sandbox: WhatsAppSandbox
) -> None:
    sandbox.forced_faults.append(400)
    with pytest.raises(PermanentProviderError) as raised:
        provider.send(request())
    assert raised.value.code == "whatsapp_100"


def test_an_unreachable_api_is_transient(make_provider: MakeProvider) -> None:
    provider = make_provider(base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientProviderError, match="unreachable"):
        provider.send(request())


def test_a_key_being_sent_by_another_worker_is_refused_transiently(guard: SendOnceGuard) -> None:
    def send_while_another_holds_the_key() -> str:
        with pytest.raises(SendInFlight) as raised:
            guard.send_once("msg:busy", lambda: "wamid.second")
        assert raised.value.retry_after_seconds is not None
        assert raised.value.retry_after_seconds >= 1
        return "wamid.first"

    assert guard.send_once("msg:busy", send_while_another_holds_the_key) == "wamid.first"
    assert guard.send_once("msg:busy", lambda: "wamid.never") == "wamid.first"


def test_the_sandbox_admin_endpoints_queue_faults_and_reply(
    sandbox_server: tuple[FastAPI, str],
    sandbox: WhatsAppSandbox,
    provider: WhatsAppCloudProvider,
    receiver: tuple[Receiver, str],
) -> None:
    base = sandbox_server[1]
    sent = provider.send(request())
    with httpx.Client(base_url=base) as admin:
        assert admin.post("/sandbox/whatsapp/faults", json={"next": [503]}).json() == {"queued": 1}
        reply = admin.post("/sandbox/whatsapp/inbound", json={"from": PHONE, "text": "STOP"})
        listed = admin.get("/sandbox/whatsapp/messages").json()
    assert reply.status_code == 200
    assert reply.json()["in_reply_to"] == sent.provider_message_id  # the last message to them
    assert reply.json()["webhook_status"] == 200
    inbound = [
        event.inbound
        for body in receiver[0].bodies
        for event in parse_webhook(body)
        if event.inbound and event.inbound.provider_message_id == reply.json()["id"]
    ]
    assert [(m.from_address, m.text, m.in_reply_to) for m in inbound if m] == [
        (PHONE, "STOP", sent.provider_message_id)
    ]
    assert [message["id"] for message in listed["messages"]] == [sent.provider_message_id]
    with pytest.raises(TransientProviderError):
        provider.send(request("msg:2"))
