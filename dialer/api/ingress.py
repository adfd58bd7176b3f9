"""The webhook ingress: verify, store in the inbox, answer, then enqueue the apply.

The routes are the provider registry's (dialer.providers.registry): one per webhook
of every registered provider and channel, at its path, decoded, split and parsed
its way. Every webhook is checked by its entry's verifier (the shared HMAC secret,
dialer.providers.signing, unless the entry brings its own) before anything else; a
forged, stale or unsigned one gets 401 and touches nothing.
A verified body is stored in the inbox (dialer.services.inbox.take_in) in one
transaction before the answer, so a 200 means the event cannot be lost. Only after
the commit is ``enqueue_apply(inbox_id)`` called; if the broker is down the event
waits in the inbox for the reaper, and the provider is still told 200 (resending
would not help). Applying is never done here, to answer fast.

Answers: 200 ``{"status": "stored" | "duplicate" | "ignored", "stored": n,
"duplicates": n}``; 401/404/413/422/500 ``{"error": {"code", "message"[, "details"]}}``.
A signed body that is not a storable JSON object (dialer.providers.webhook_body: NUL, lone
surrogates, NaN, deep nesting) is a 422 and kept as `rejected` with its exact bytes.
A webhook whose entry has a handshake also answers GET: the challenge as text, or 403.
Logs never carry the body or phone numbers: providers, counts, field names only.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NoReturn

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from dialer import metrics
from dialer.dependencies import UnitOfWork, UnixClock
from dialer.logging import get_logger
from dialer.providers.catalog import CALL_WEBHOOK_PREFIX, PROVIDERS
from dialer.providers.registry import (
    BodyDecoder,
    EventSplitter,
    Handshake,
    Job,
    ProviderConfig,
    Registry,
    SignedRequest,
    Verifier,
    WebhookRoute,
    shared_secret_verifier,
)
from dialer.providers.signing import SignatureError
from dialer.providers.webhook_body import raw_payload
from dialer.services.inbox import Intake, IntakeResult, take_in
from dialer.settings import Settings

MAX_BODY_BYTES: Final = 1024 * 1024
WEBHOOK_PATH_PREFIX: Final = "/webhooks/"
_FIELD_IN_ERROR: Final = re.compile(r"field '([^']+)'")

EnqueueApply = Callable[[uuid.UUID], None]

log = get_logger("dialer.api.ingress")


def create_ingress_app(
    settings: Settings,
    uow: UnitOfWork,
    enqueue_apply: EnqueueApply,
    registry: Registry = PROVIDERS,
    *,
    clock: UnixClock = time.time,
) -> FastAPI:
    """The ingress alone (no control API), answering errors in its own short shape."""
    app = FastAPI(title="Dialer webhook ingress", docs_url=None, redoc_url=None)
    app.add_exception_handler(Exception, internal_error)
    app.include_router(ingress_router(settings, uow, enqueue_apply, registry, clock=clock))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def ingress_router(
    settings: Settings,
    uow: UnitOfWork,
    enqueue_apply: EnqueueApply,
    registry: Registry = PROVIDERS,
    *,
    clock: UnixClock = time.time,
) -> APIRouter:
    """One route per webhook of ``registry``, then a 404 for unknown call providers."""
    intake = _Intake(uow, enqueue_apply)
    router = APIRouter(include_in_schema=False)
    public_base = settings.public_webhook_base_url
    for route in registry.webhook_routes(settings):
        guard = _SignatureGuard(route.verifier(), clock, public_base)
        _add_webhook_route(router, route, guard, intake)
    shared = shared_secret_verifier(ProviderConfig(settings))
    unknown_guard = _SignatureGuard(shared, clock, public_base)

    @router.post(CALL_WEBHOOK_PREFIX + "{provider}")
    async def unknown_call_provider(provider: str, request: Request) -> JSONResponse:
        """A signed call event for a provider nobody registered: 404, nothing stored."""
        _body, refusal = await unknown_guard.read_verified(request, provider)
        if refusal is not None:
            return refusal
        return error_response(404, "unknown_provider", f"no call provider {provider!r}")

    return router


def _add_webhook_route(
    router: APIRouter, route: WebhookRoute, guard: _SignatureGuard, intake: _Intake
) -> None:
    webhook = route.webhook
    handshake = route.handshake()
    if handshake is not None:
        _add_handshake_route(router, webhook.path, webhook.source, handshake)

    @router.post(webhook.path)
    async def receive(request: Request) -> JSONResponse:
        body, refusal = await guard.read_verified(request, webhook.source)
        if refusal is not None:
            return refusal
        query = dict(request.query_params)
        jobs = webhook_jobs(webhook.decode, webhook.split, body, query)
        return await run_in_threadpool(intake.store, webhook.source, jobs)


def _add_handshake_route(router: APIRouter, path: str, source: str, answer: Handshake) -> None:
    @router.get(path)
    async def subscribe(request: Request) -> Response:
        """The provider's subscription check: its challenge echoed, or 403."""
        try:
            challenge = answer(request.query_params)
        except SignatureError as exc:
            log.warning("webhook_handshake_refused", provider=source, reason=str(exc))
            return error_response(403, "handshake_refused", str(exc))
        return PlainTextResponse(challenge)


# --------------------------------------------------------------------------- verification


class _SignatureGuard:
    """Reads a bounded body and checks its signature; answers the refusal when it fails."""

    def __init__(self, verifier: Verifier, clock: UnixClock, public_base_url: str) -> None:
        self._verify = verifier
        self._clock = clock
        # A provider signs the URL it called (Twilio does), not the one a proxy forwards to.
        self._public_base_url = public_base_url.rstrip("/")

    async def read_verified(
        self, request: Request, provider: str
    ) -> tuple[bytes, JSONResponse | None]:
        body = await _read_bounded(request)
        if body is None:
            log.warning("webhook_too_large", provider=provider)
            metrics.webhook_events("too_large")
            message = f"body larger than {MAX_BODY_BYTES} bytes"
            return b"", error_response(413, "payload_too_large", message)
        try:
            self._verify(self._signed(request, body))
        except SignatureError as exc:
            log.warning("webhook_signature_rejected", provider=provider, reason=str(exc))
            metrics.webhook_events("forged")
            return body, error_response(401, "invalid_signature", str(exc))
        return body, None

    def _signed(self, request: Request, body: bytes) -> SignedRequest:
        query = f"?{request.url.query}" if request.url.query else ""
        public_url = f"{self._public_base_url}{request.url.path}{query}"
        return SignedRequest(request.headers, body, str(request.url), public_url, self._clock())


async def _read_bounded(request: Request) -> bytes | None:
    """The body, or None once it grows past MAX_BODY_BYTES (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- intake


def webhook_jobs(
    decode: BodyDecoder,
    split: EventSplitter,
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> Sequence[Job]:
    """One job per event of a body; the whole body is rejected if any part is bad.

    A body that does not decode is kept as its raw text, one that decodes but does not
    split as the decoded payload, so nothing a provider sent is lost.
    """
    try:
        payload = decode(body, query or {})
    except ValueError as exc:
        return [_rejection(raw_payload(body), exc)]
    try:
        return split(payload)
    except ValueError as exc:
        return [_rejection(payload, exc)]


def _rejection(payload: Mapping[str, Any], error: ValueError) -> Job:
    """A job whose parser raises ``error``: take_in keeps the payload as rejected."""

    def refuse(_payload: Mapping[str, Any]) -> NoReturn:
        raise error

    return payload, refuse


class _Intake:
    """Stores jobs in one transaction, then enqueues what was new."""

    def __init__(self, uow: UnitOfWork, enqueue_apply: EnqueueApply) -> None:
        self._uow = uow
        self._enqueue_apply = enqueue_apply

    def store(self, provider: str, jobs: Sequence[Job]) -> JSONResponse:
        with self._uow() as session:
            results = [take_in(session, provider, parse, payload) for payload, parse in jobs]
        for result in results:
            if result.inbox_id is not None:
                self._enqueue(provider, result.inbox_id)
        return _answer(provider, results)

    def _enqueue(self, provider: str, inbox_id: uuid.UUID) -> None:
        try:
            self._enqueue_apply(inbox_id)
        except Exception:  # stored is safe: the reaper applies what was never enqueued
            log.exception("webhook_enqueue_failed", provider=provider, inbox_id=str(inbox_id))


def _answer(provider: str, results: Sequence[IntakeResult]) -> JSONResponse:
    rejected = [result for result in results if result.intake is Intake.REJECTED]
    if rejected:
        return _validation_error(provider, rejected[0].error or "invalid payload")
    stored = sum(result.intake is Intake.STORED for result in results)
    duplicates = len(results) - stored
    status = "stored" if stored else "duplicate" if duplicates else "ignored"
    log.info("webhook_stored", provider=provider, stored=stored, duplicates=duplicates)
    return JSONResponse({"status": status, "stored": stored, "duplicates": duplicates})


def _validation_error(provider: str, error: str) -> JSONResponse:
    field = error_field(error)
    log.warning("webhook_invalid", provider=provider, field=field)
    reason = error.split(": ", 1)[1] if ": " in error else error
    details = [{"field": field, "reason": reason}]
    return error_response(422, "validation_error", error, details=details)


def error_field(error: str) -> str:
    """The field a parser's error names ("... field 'call.id' ..."), else "body"."""
    match = _FIELD_IN_ERROR.search(error)
    return match.group(1) if match else "body"


def error_response(
    status: int, code: str, message: str, *, details: list[dict[str, str]] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)


async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
    """Storing failed (database down): 500 so the provider delivers the webhook again."""
    log.error("webhook_store_failed", error=type(exc).__name__)
    return error_response(500, "internal_error", "the event was not stored; send it again")
