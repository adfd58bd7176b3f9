"""Small fakes of the hosted voice providers' HTTP shapes, served over loopback in tests.

One FastAPI app answers the four shapes (their paths do not overlap): Vapi
(``/call``), Retell (``/v2/create-phone-call``, ``/v3/list-calls``), Twilio
(``/2010-04-01/Accounts/.../Calls.json``) and ElevenLabs (``/v1/convai/...``). Each
keeps a ledger of calls created per idempotency key (read from where the adapter
puts it in that provider's request), so a test can say "exactly one call".

Faults, set by the test on the shared object: ``slow_answers`` (the next N create
requests create the call, then answer only after ``slow_seconds``: longer than the
client waits, so the answer is lost; ``settle`` waits them out between tests) and
``refusals`` (the next create requests are answered with that status and headers,
before anything is created).
``LosingProxy`` loses answers the other way: it forwards a request, reads the
answer and closes the client's connection without passing it on.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.voice_fixtures import (
    ELEVENLABS_DONE,
    RETELL_ANALYZED,
    TWILIO_COMPLETED,
    VAPI_QUEUED,
)

KEY_FIELD = "dialer_idempotency_key"


@dataclass
class FakeCall:
    id: str
    key: str
    provider: str
    body: dict[str, Any]
    created_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="microseconds")
    )


@dataclass
class FakeProviders:
    api_keys: dict[str, str]  # provider -> expected credential header value
    slow_answers: int = 0
    slow_seconds: float = 1.0
    answer_delay_seconds: float = 0.0  # every create answer waits this long (a slow provider)
    in_flight: int = 0
    max_in_flight: int = 0
    refusals: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    calls: list[FakeCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def settle(self, timeout_seconds: float = 10.0) -> None:
        """Wait out the answers still being held back, then zero the in-flight high mark.

        A lost answer is lost only to the client: the server still holds it for
        ``slow_seconds`` after the client gave up, counted in ``in_flight``. A test that
        ends right then left that answer to count in the next test's ``max_in_flight``
        (a chunk of 4 measured as 5). Each test starts on a quiet server instead.
        """
        deadline = time.monotonic() + timeout_seconds
        while True:
            with self._lock:
                if self.in_flight == 0:
                    self.max_in_flight = 0
                    return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.in_flight} answers still held after {timeout_seconds} s"
                )
            time.sleep(0.01)

    def creates_by_key(self) -> Counter[str]:
        with self._lock:
            return Counter(call.key for call in self.calls)

    def create(self, provider: str, key: str, body: dict[str, Any]) -> FakeCall:
        with self._lock:
            call = FakeCall(f"{provider}-{next(self._ids)}", key, provider, body)
            self.calls.append(call)
            return call

    def find(self, provider: str, key: str) -> FakeCall | None:
        with self._lock:
            return next((c for c in self.calls if c.provider == provider and c.key == key), None)

    def by_id(self, call_id: str) -> FakeCall | None:
        with self._lock:
            return next((c for c in self.calls if c.id == call_id), None)

    def take_refusal(self) -> Response | None:
        with self._lock:
            if not self.refusals:
                return None
            status, headers = self.refusals.pop(0)
        return JSONResponse({"message": "refused by the test"}, status, headers=headers)

    async def answer(self, content: dict[str, Any], status: int = 201) -> Response:
        with self._lock:
            slow, self.slow_answers = self.slow_answers > 0, max(0, self.slow_answers - 1)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.slow_seconds if slow else self.answer_delay_seconds)
        finally:
            with self._lock:
                self.in_flight -= 1
        return JSONResponse(content, status)


def fake_app(fake: FakeProviders) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        offered = {request.headers.get("authorization"), request.headers.get("xi-api-key")}
        if not offered & set(fake.api_keys.values()):
            return JSONResponse({"message": "unauthorized"}, 401)
        response: Response = await call_next(request)
        return response

    _vapi_routes(app, fake)
    _retell_routes(app, fake)
    _twilio_routes(app, fake)
    _elevenlabs_routes(app, fake)
    return app


def _vapi_call(call: FakeCall) -> dict[str, Any]:
    return {
        **VAPI_QUEUED,
        "id": call.id,
        "assistantId": call.body["assistantId"],
        "customer": call.body["customer"],
        "assistantOverrides": call.body["assistantOverrides"],
        "createdAt": call.created_at,
    }


def _vapi_routes(app: FastAPI, fake: FakeProviders) -> None:
    @app.post("/call")
    async def create(request: Request) -> Response:
        body = await request.json()
        refused = fake.take_refusal()
        if refused is not None:
            return refused
        call = fake.create("vapi", body["assistantOverrides"]["metadata"][KEY_FIELD], body)
        return await fake.answer(_vapi_call(call))

    @app.get("/call")
    async def listing(
        assistantId: str, createdAtGe: str, limit: int = 100, createdAtLt: str | None = None
    ) -> Response:
        # Like Vapi: newest first, one page of ``limit``, bounded by the created-at filters.
        since, until = _instant(createdAtGe), _instant(createdAtLt) if createdAtLt else None
        calls = [
            c
            for c in reversed(fake.calls)
            if c.provider == "vapi"
            and _instant(c.created_at) >= since
            and (until is None or _instant(c.created_at) < until)
        ]
        return JSONResponse([_vapi_call(c) for c in calls][:limit])

    @app.get("/call/{call_id}")
    async def get(call_id: str) -> Response:
        call = fake.by_id(call_id)
        if call is None:
            return JSONResponse({"message": "not found"}, 404)
        return JSONResponse({**_vapi_call(call), "status": "ended", "endedReason": "voicemail"})


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _retell_call(call: FakeCall) -> dict[str, Any]:
    return {
        **RETELL_ANALYZED,
        "call_id": call.id,
        "to_number": call.body["to_number"],
        "metadata": call.body["metadata"],
    }


def _retell_routes(app: FastAPI, fake: FakeProviders) -> None:
    @app.post("/v2/create-phone-call")
    async def create(request: Request) -> Response:
        body = await request.json()
        refused = fake.take_refusal()
        if refused is not None:
            return refused
        # Retell keeps the idempotency key: the same key answers the same call.
        call = fake.find("retell", body["idempotency_key"]) or fake.create(
            "retell", body["idempotency_key"], body
        )
        return await fake.answer({**_retell_call(call), "call_status": "registered"})

    @app.post("/v3/list-calls")
    async def listing(request: Request) -> Response:
        wanted = (await request.json())["filter_criteria"]["metadata"][0]
        retell_calls = [c for c in fake.calls if c.provider == "retell"]
        calls = [
            _retell_call(c)
            for c in retell_calls
            if c.body["metadata"].get(wanted["key"]) == wanted["value"]
        ]
        return JSONResponse({"items": calls, "has_more": False})

    @app.get("/v2/get-call/{call_id}")
    async def get(call_id: str) -> Response:
        call = fake.by_id(call_id)
        if call is None:
            return JSONResponse({"status": "error", "message": "not found"}, 404)
        return JSONResponse(_retell_call(call))


def _twilio_call(call: FakeCall, status: str = "queued") -> dict[str, Any]:
    return {**TWILIO_COMPLETED, "sid": call.id, "status": status, "to": call.body["To"][0]}


def _twilio_routes(app: FastAPI, fake: FakeProviders) -> None:
    @app.post("/2010-04-01/Accounts/{account}/Calls.json")
    async def create(account: str, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        refused = fake.take_refusal()
        if refused is not None:
            return refused
        callback = dict(parse_qsl(urlsplit(form["StatusCallback"][0]).query))
        call = fake.create("twilio", callback[KEY_FIELD], form)
        return await fake.answer(_twilio_call(call))

    @app.get("/2010-04-01/Accounts/{account}/Calls/{sid}.json")
    async def get(account: str, sid: str) -> Response:
        call = fake.by_id(sid)
        if call is None:
            return JSONResponse({"code": 20404, "message": "not found", "status": 404}, 404)
        return JSONResponse(_twilio_call(call, "completed"))


def _conversation(call: FakeCall) -> dict[str, Any]:
    client = call.body["conversation_initiation_client_data"]
    return {
        **ELEVENLABS_DONE,
        "conversation_id": call.id,
        "conversation_initiation_client_data": client,
    }


def _elevenlabs_routes(app: FastAPI, fake: FakeProviders) -> None:
    @app.post("/v1/convai/twilio/outbound-call")
    async def create(request: Request) -> Response:
        body = await request.json()
        refused = fake.take_refusal()
        if refused is not None:
            return refused
        key = body["conversation_initiation_client_data"]["user_id"]
        call = fake.create("elevenlabs", key, body)
        answer = {"success": True, "message": "ok", "conversation_id": call.id, "callSid": "CA1"}
        return await fake.answer(answer, 200)

    @app.get("/v1/convai/conversations")
    async def listing(agent_id: str, user_id: str, call_start_after_unix: int) -> Response:
        found = [
            {"conversation_id": c.id, "agent_id": agent_id, "status": "initiated"}
            for c in fake.calls
            if c.provider == "elevenlabs" and c.key == user_id
        ]
        return JSONResponse({"conversations": found, "has_more": False})

    @app.get("/v1/convai/conversations/{conversation_id}")
    async def get(conversation_id: str) -> Response:
        call = fake.by_id(conversation_id)
        if call is None:
            return JSONResponse({"detail": {"message": "not found"}}, 404)
        return JSONResponse(_conversation(call))


# --------------------------------------------------------------------------- a lossy hop


class LosingProxy:
    """Forwards each request to ``upstream`` and drops the answer: the connection just closes.

    Counts what it lost; with ``losses`` at 0 it passes answers on unchanged.
    """

    def __init__(self, upstream: str, losses: int = 0) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.losses = losses
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True, name="losing-proxy")
        self._stop = threading.Event()

    def __enter__(self) -> LosingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                continue
            with client:
                self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        client.settimeout(5)
        request = _read_http_message(client)
        with socket.create_connection(self._upstream, timeout=5) as upstream:
            upstream.sendall(request)
            answer = _read_http_message(upstream)
        if self.losses > 0:
            self.losses -= 1
            # Linger 0: closing sends a reset, and the answer never reaches the client.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        # One request per connection here: say so, or the client would reuse a closed one.
        status_line, _, rest = answer.partition(b"\r\n")
        client.sendall(status_line + b"\r\nconnection: close\r\n" + rest)


def _read_http_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (what httpx and uvicorn send here)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
