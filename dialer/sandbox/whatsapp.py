"""A WhatsApp Cloud API stand-in for tests and the demo (a FastAPI router).

It takes ``POST /{version}/{phone_number_id}/messages`` like the Cloud API, answers
``{"messages": [{"id": "wamid..."}]}``, then posts signed status webhooks
(sent -> delivered -> read) to the configured webhook URL. Admin endpoints under
``/sandbox/whatsapp`` make a customer reply, inject faults and show what was sent.

Sandbox rules: a recipient whose number ends in 0000 is refused with the Cloud's
131030 error ("not in allowed list", as in a Cloud test account); faults queued with
``POST /sandbox/whatsapp/faults`` answer the next sends in order; ``rate_429`` and
``rate_5xx`` refuse sends at random (seeded).

Webhook delivery follows Meta's rule: a webhook the receiver does not answer with 200
(refused, 5xx, or no answer at all: the ingress is down) is sent again "with decreasing
frequency until the request succeeds, for up to 7 days"
(https://developers.facebook.com/docs/whatsapp/cloud-api/guides/set-up-webhooks). The
sandbox compresses that: pauses double from ``DELIVERY_BACKOFF_SECONDS`` up to
``redelivery_max_pause_seconds`` until ``redelivery_horizon_seconds`` have passed
(default 120 s for Meta's 7 days), so a status or an inbound STOP whose first delivery
hit a dead ingress still lands once it is back. A reply posted through the admin
endpoint answers with its first try's status and keeps re-delivering in the background.

State lives in a WhatsAppSandbox on ``app.state.whatsapp_sandbox`` so two apps in one
process never share it; an app that includes ``router`` without calling ``install``
gets one built from the settings on first use.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dialer.logging import get_logger
from dialer.providers.signing import sign_headers
from dialer.providers.whatsapp import cloud_number, inbound_webhook, status_webhook
from dialer.settings import Settings, get_settings

ADMIN_PREFIX: Final = "/sandbox/whatsapp"
STATE_ATTRIBUTE: Final = "whatsapp_sandbox"
DELIVERY_BACKOFF_SECONDS: Final = 0.2  # the first pause; each next one doubles
# Graph API error codes the sandbox answers with, per HTTP status.
_FAULT_ERRORS: Final = {
    400: (100, "(#100) Invalid parameter"),
    401: (190, "Invalid OAuth access token"),
    429: (130429, "(#130429) Rate limit hit"),
    500: (131000, "(#131000) Something went wrong"),
    503: (131016, "(#131016) Service temporarily unavailable"),
}

log = get_logger("dialer.sandbox.whatsapp")
router = APIRouter()


@dataclass(frozen=True)
class WhatsAppSandboxConfig:
    webhook_url: str | None  # where status and reply webhooks go; None: nowhere
    webhook_secret: str
    token: str = "wa_sandbox"  # the Bearer token the send endpoint expects
    status_delay_seconds: float = 0.5  # between sent, delivered and read
    statuses: tuple[str, ...] = ("sent", "delivered", "read")
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    retry_after_seconds: int = 1
    seed: int = 0
    # Meta re-sends an unacknowledged webhook for up to 7 days; compressed here.
    redelivery_horizon_seconds: float = 120.0
    redelivery_max_pause_seconds: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsAppSandboxConfig:
        return cls(
            webhook_url=f"{settings.public_webhook_base_url.rstrip('/')}/webhooks/whatsapp",
            webhook_secret=settings.webhook_secret.get_secret_value(),
            token=settings.whatsapp_token.get_secret_value(),
        )


@dataclass
class WhatsAppSandbox:
    """What the sandbox remembers: messages sent, faults to inject, webhooks delivered."""

    config: WhatsAppSandboxConfig
    sent: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    forced_faults: deque[int] = field(default_factory=deque)
    redelivered: int = 0  # tries after a first one that was not answered 200
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)

    def next_fault(self) -> int | None:
        """The HTTP status to refuse the next send with, if any."""
        if self.forced_faults:
            return self.forced_faults.popleft()
        draw = self._rng.random()
        if draw < self.config.rate_429:
            return 429
        if draw < self.config.rate_429 + self.config.rate_5xx:
            return 503
        return None

    def last_sent_to(self, number: str) -> str | None:
        digits = cloud_number(number)
        matches = [message["id"] for message in self.sent if message["to"] == digits]
        return matches[-1] if matches else None

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a delivery in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def install(app: FastAPI, config: WhatsAppSandboxConfig) -> WhatsAppSandbox:
    """Give ``app`` a fresh sandbox state with this config."""
    sandbox = WhatsAppSandbox(config)
    setattr(app.state, STATE_ATTRIBUTE, sandbox)
    return sandbox


def create_whatsapp_app(config: WhatsAppSandboxConfig) -> FastAPI:
    """A standalone app with only the WhatsApp sandbox (tests, or a server of its own)."""
    app = FastAPI(title="WhatsApp Cloud sandbox")
    app.include_router(router)
    install(app, config)
    return app


def _sandbox(request: Request) -> WhatsAppSandbox:
    state = request.app.state
    sandbox = getattr(state, STATE_ATTRIBUTE, None)
    if not isinstance(sandbox, WhatsAppSandbox):
        sandbox = install(request.app, WhatsAppSandboxConfig.from_settings(get_settings()))
    return sandbox


# --------------------------------------------------------------------------- send


@router.post("/{version}/{phone_number_id}/messages")
async def send_message(version: str, phone_number_id: str, request: Request) -> JSONResponse:
    sandbox = _sandbox(request)
    if request.headers.get("Authorization") != f"Bearer {sandbox.config.token}":
        return _cloud_error(401)
    fault = sandbox.next_fault()
    if fault is not None:
        return _cloud_error(fault, retry_after=sandbox.config.retry_after_seconds)
    body = await _json_object(request)
    refusal = _refusal(body)
    if refusal is not None:
        return refusal
    wamid = f"wamid.{uuid.uuid4().hex}"
    to = cloud_number(str(body["to"]))
    sandbox.sent.append(_sent_record(wamid, phone_number_id, body))
    sandbox.start(_deliver_statuses(sandbox, wamid, to, phone_number_id))
    return JSONResponse(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": to}],
            "messages": [{"id": wamid}],
        }
    )


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(body: Mapping[str, Any]) -> JSONResponse | None:
    """The Cloud API's answer to a send it will not take, or None."""
    to = cloud_number(str(body.get("to") or ""))
    kind = body.get("type", "text")
    content = body.get(kind)
    if body.get("messaging_product") != "whatsapp" or len(to) < 7:
        return _cloud_error(400)
    if kind not in ("text", "template") or not isinstance(content, dict):
        return _cloud_error(400)
    if not content.get("body" if kind == "text" else "name"):
        return _cloud_error(400)
    if to.endswith("0000"):
        return _cloud_error(
            400, code=131030, message="(#131030) Recipient phone number not in allowed list"
        )
    return None


def _cloud_error(
    status: int, *, code: int | None = None, message: str | None = None, retry_after: int = 0
) -> JSONResponse:
    default_code, default_message = _FAULT_ERRORS.get(status, (131000, "Something went wrong"))
    error = {
        "message": message or default_message,
        "type": "OAuthException",
        "code": code or default_code,
        "fbtrace_id": uuid.uuid4().hex[:12],
    }
    headers = {"Retry-After": str(retry_after)} if status == 429 and retry_after else None
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _sent_record(wamid: str, phone_number_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    template = body.get("template") or {}
    return {
        "id": wamid,
        "phone_number_id": phone_number_id,
        "to": cloud_number(str(body["to"])),
        "type": body.get("type", "text"),
        "text": (body.get("text") or {}).get("body"),
        "template": template.get("name"),
        "sent_at": datetime.now(UTC).isoformat(),
    }


# --------------------------------------------------------------------------- webhooks


async def _deliver_statuses(
    sandbox: WhatsAppSandbox, wamid: str, to: str, phone_number_id: str
) -> None:
    for status in sandbox.config.statuses:
        await asyncio.sleep(sandbox.config.status_delay_seconds)
        payload = status_webhook(
            wamid, status, datetime.now(UTC), to, phone_number_id=phone_number_id
        )
        await _post_webhook(sandbox, payload, f"{wamid}:{status}")


async def _post_webhook(sandbox: WhatsAppSandbox, payload: Mapping[str, Any], label: str) -> int:
    """POST a signed webhook until it is answered 200 or the horizon passes (Meta's rule)."""
    body = json.dumps(payload).encode()
    status = await _post_signed(sandbox, body)
    if status != 200:
        status = await _redeliver(sandbox, body, label)
    _record_delivery(sandbox, label, status)
    return status


async def _redeliver(sandbox: WhatsAppSandbox, body: bytes, label: str) -> int:
    """Send again with doubling pauses; the last status (200 once it is taken)."""
    started, pause, status = time.monotonic(), DELIVERY_BACKOFF_SECONDS, 0
    while time.monotonic() - started < sandbox.config.redelivery_horizon_seconds:
        await asyncio.sleep(pause)
        status = await _post_signed(sandbox, body)
        sandbox.redelivered += 1
        if status == 200:
            log.info("sandbox_webhook_redelivered", webhook=label)
            return status
        pause = min(pause * 2, sandbox.config.redelivery_max_pause_seconds)
    return status


async def _post_signed(sandbox: WhatsAppSandbox, body: bytes) -> int:
    """One try to the webhook URL configured now (0: no answer, or no URL)."""
    url = sandbox.config.webhook_url
    if url is None:
        return 0
    async with httpx.AsyncClient(timeout=5.0) as client:
        return await _post_once(client, url, body, sandbox.config.webhook_secret)


def _record_delivery(sandbox: WhatsAppSandbox, label: str, status: int) -> None:
    sandbox.deliveries.append({"event": label, "status_code": status})
    if status != 200:
        log.warning("sandbox_webhook_not_accepted", webhook=label, status_code=status)


async def _post_once(client: httpx.AsyncClient, url: str, body: bytes, secret: str) -> int:
    headers = sign_headers(secret, int(time.time()), body) | {"Content-Type": "application/json"}
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TransportError:
        return 0
    return response.status_code


# --------------------------------------------------------------------------- admin


class InboundRequest(BaseModel):
    """A customer writes to the business number."""

    from_number: str = Field(alias="from", min_length=7)
    text: str
    in_reply_to: str | None = None  # default: the last message sent to that number


class FaultsRequest(BaseModel):
    next: list[int] = Field(default_factory=list)  # HTTP statuses for the next sends


class ConfigRequest(BaseModel):
    webhook_url: str | None = None
    status_delay_seconds: float | None = Field(default=None, ge=0)
    rate_429: float | None = Field(default=None, ge=0, le=1)
    rate_5xx: float | None = Field(default=None, ge=0, le=1)
    redelivery_horizon_seconds: float | None = Field(default=None, ge=0, le=7 * 24 * 3600)


@router.post(f"{ADMIN_PREFIX}/inbound")
async def simulate_inbound(inbound: InboundRequest, request: Request) -> JSONResponse:
    """Post a reply webhook now and answer with the ingress's status code."""
    sandbox = _sandbox(request)
    if sandbox.config.webhook_url is None:
        return JSONResponse({"error": "no webhook_url configured"}, status_code=409)
    wamid = f"wamid.{uuid.uuid4().hex}"
    reply_to = inbound.in_reply_to or sandbox.last_sent_to(inbound.from_number)
    payload = inbound_webhook(
        wamid,
        inbound.from_number,
        inbound.text,
        datetime.now(UTC),
        phone_number_id=_phone_number_id(sandbox, reply_to),
        in_reply_to=reply_to,
    )
    label = f"{wamid}:inbound"
    body = json.dumps(payload).encode()
    status = await _post_signed(sandbox, body)
    if status == 200:
        _record_delivery(sandbox, label, status)
    else:  # the provider keeps the reply and sends it again, as Meta does
        sandbox.start(_redeliver_and_record(sandbox, body, label))
    return JSONResponse(
        {
            "id": wamid,
            "in_reply_to": reply_to,
            "webhook_status": status,
            "redelivering": status != 200,
        }
    )


async def _redeliver_and_record(sandbox: WhatsAppSandbox, body: bytes, label: str) -> None:
    _record_delivery(sandbox, label, await _redeliver(sandbox, body, label))


def _phone_number_id(sandbox: WhatsAppSandbox, wamid: str | None) -> str:
    for message in sandbox.sent:
        if message["id"] == wamid:
            return str(message["phone_number_id"])
    return "sandbox"


@router.post(f"{ADMIN_PREFIX}/faults")
async def queue_faults(faults: FaultsRequest, request: Request) -> dict[str, int]:
    sandbox = _sandbox(request)
    sandbox.forced_faults.extend(faults.next)
    return {"queued": len(sandbox.forced_faults)}


@router.post(f"{ADMIN_PREFIX}/config")
async def update_config(changes: ConfigRequest, request: Request) -> dict[str, Any]:
    sandbox = _sandbox(request)
    updates = changes.model_dump(exclude_unset=True)
    sandbox.config = replace(sandbox.config, **updates)
    return {key: getattr(sandbox.config, key) for key in ConfigRequest.model_fields}


@router.get(f"{ADMIN_PREFIX}/messages")
async def sent_messages(request: Request) -> dict[str, Any]:
    sandbox = _sandbox(request)
    return {
        "messages": sandbox.sent,
        "deliveries": sandbox.deliveries,
        "redelivered": sandbox.redelivered,
    }
