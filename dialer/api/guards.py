"""What the control API checks before a route reads a request body.

FastAPI reads and parses a JSON body before it resolves a route's dependencies, so
without this guard a client with no key could make the API hold a body of any size
(a chunked one carries no Content-Length): 256 MiB took the process from 89 to
859 MiB. The guard, an ASGI middleware in front of the control routes, so:

1. refuses a query parameter holding NUL (PostgreSQL text cannot), naming it (422);
2. checks the API key of every request that may carry a body (not GET/HEAD/OPTIONS)
   before a byte of it is read (401), and leaves the principal for the route;
3. refuses a declared Content-Length over the limit unread, and counts a body without
   one while it arrives, answering 413 as soon as it passes the limit.

Webhooks (own signature and limit, dialer.api.ingress) and CSV uploads (own limit,
counted while they stream into the import) are left to their routes. The dashboard's
forms (under /ui) carry no key: they are signed in by a session cookie and a CSRF
token (dialer.api.ui.web), so step 2 leaves them to it; steps 1 and 3 apply.
"""

from __future__ import annotations

from typing import Final

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.api.auth import PRINCIPAL_STATE, invalid_key_answer, presented_key, principal_for
from dialer.api.context import context_of
from dialer.api.errors import envelope
from dialer.api.ingress import WEBHOOK_PATH_PREFIX
from dialer.api.ui.session import UI_PATH_PREFIX
from dialer.logging import get_logger

PUBLIC_PATHS: Final = frozenset(
    {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
_READ_ONLY_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

log = get_logger("dialer.api")


class BodyGuard:
    """The checks above, for every HTTP request outside the webhooks."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(WEBHOOK_PATH_PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = _nul_in_query(request) or await self._unauthenticated(request)
        if refusal is None and not request.url.path.endswith("/csv"):
            refusal, receive = await self._bounded(request, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _unauthenticated(self, request: Request) -> Response | None:
        if request.method in _READ_ONLY_METHODS or request.url.path in PUBLIC_PATHS:
            return None
        if _is_dashboard(request.url.path):
            return None
        secret = presented_key(request.headers)
        if secret is None:
            return invalid_key_answer(request, "Missing API key.")
        try:
            principal = await run_in_threadpool(principal_for, context_of(request), secret)
        except Exception as exc:  # the database is down: the route would fail the same way
            log.error("api_internal_error", error=type(exc).__name__, path=request.url.path)
            return envelope(request, 500, "internal_error", "internal error")
        if principal is None:
            return invalid_key_answer(request, "Invalid API key.")
        setattr(request.state, PRINCIPAL_STATE, principal)
        return None

    async def _bounded(self, request: Request, receive: Receive) -> tuple[Response | None, Receive]:
        """413 past the limit; else a receive that replays the body read while counting."""
        declared = request.headers.get("content-length")
        if declared is not None:
            too_large = declared.isdigit() and int(declared) > self.max_body_bytes
            return (self._too_large(request) if too_large else None), receive
        if request.method in _READ_ONLY_METHODS:
            return None, receive
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                return self._too_large(request), receive
            if message["type"] != "http.request" or not message.get("more_body", False):
                return None, _replay(messages, receive)

    def _too_large(self, request: Request) -> Response:
        log.warning("api_body_too_large", path=request.url.path, limit=self.max_body_bytes)
        message = f"body larger than {self.max_body_bytes} bytes"
        return envelope(request, 413, "payload_too_large", message)


def _is_dashboard(path: str) -> bool:
    return path == UI_PATH_PREFIX or path.startswith(f"{UI_PATH_PREFIX}/")


def _nul_in_query(request: Request) -> Response | None:
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            field = name.replace("\x00", "\\x00")
            details = [{"field": field, "reason": "must not contain NUL characters"}]
            message = f"{field}: must not contain NUL characters"
            detail = [{"loc": ["query", field], "msg": details[0]["reason"], "type": "value_error"}]
            return envelope(
                request, 422, "validation_error", message, details=details, detail=detail
            )
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out the buffered messages, then the real ones (a disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
