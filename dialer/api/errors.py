"""Seed 001's error envelope for every control-API answer that is not a success.

``{"message", "error", "code", "statusCode", "request_id"}``, plus ``details``
(``[{"field", "reason"}]``) on a 422, and beside them seed 000/002's ``detail``
(FastAPI's HTTPValidationError, ``[{"loc", "msg", "type"}]``). Every request gets a
request id (the caller's ``X-Request-ID`` when it sends a sane one, else a new UUID),
echoed in the ``X-Request-ID`` header and bound to the request's logs. Webhook paths are not the
control API's: whatever fails there answers in the ingress's own shape
(dialer.api.ingress), ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Final

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from dialer.api.ingress import WEBHOOK_PATH_PREFIX
from dialer.api.ingress import error_response as webhook_error
from dialer.api.ingress import internal_error as webhook_internal_error
from dialer.errors import CampaignStateError, Conflict, DialerError, NotFound, ValidationFailed
from dialer.logging import get_logger

REQUEST_ID_HEADER: Final = "X-Request-ID"
_SANE_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = get_logger("dialer.api")


class FieldProblemOut(BaseModel):
    field: str
    reason: str
    line: str | None = None  # a rejected CSV row's line


class ErrorEnvelopeOut(BaseModel):
    """Seed 001's error envelope, as every control-API error is answered."""

    message: str
    error: str
    code: str
    statusCode: int  # seed 001 spells it so
    request_id: str
    details: list[FieldProblemOut] | None = None


_ERROR_DESCRIPTIONS: Final = {
    400: "The campaign cannot make this transition (invalid_state).",
    401: "Missing, unknown or revoked API key (api_key_invalid).",
    403: "The key lacks the route's scope (insufficient_scope).",
    404: "Not found, or another account's (not_found).",
    409: "Conflicts with an existing object (conflict).",
    413: "The body is larger than the route accepts (payload_too_large).",
}
# Declared on every control route, so its OpenAPI document says what it may answer.
ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorEnvelopeOut, "description": description}
    for status, description in _ERROR_DESCRIPTIONS.items()
}


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        detail: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.detail = detail  # seed 000/002's [{loc, msg, type}], when details cannot say


def not_found(what: str) -> ApiError:
    """Another account's object is 'not found' too: existence is never disclosed."""
    return ApiError(404, "not_found", f"{what} not found")


def validation_error(field: str, reason: str) -> ApiError:
    details = [{"field": field, "reason": reason}]
    return ApiError(422, "validation_error", f"{field}: {reason}", details=details)


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "")) or str(uuid.uuid4())


def envelope(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    detail: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """Seed 001's envelope; a 422 also carries seed 000/002's ``detail`` (FastAPI's
    HTTPValidationError: ``[{loc, msg, type}]``), read from ``details`` unless given."""
    body: dict[str, Any] = {
        "message": message,
        "error": HTTPStatus(status).phrase,
        "code": code,
        "statusCode": status,
        "request_id": request_id_of(request),
    }
    if details is not None:
        body["details"] = details
    if status == 422:
        body["detail"] = detail if detail is not None else _seed_detail(request, details or [])
    return JSONResponse(body, status_code=status, headers=headers)


def _seed_detail(request: Request, details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``details`` as FastAPI's ``[{loc, msg, type}]``: a field of a GET is in the query."""
    where = "query" if request.method in {"GET", "HEAD"} else "body"
    detail = []
    for item in details or [{"field": "body", "reason": "invalid request"}]:
        field = str(item.get("field", "body"))
        path: list[str | int] = [int(p) if p.isdigit() else p for p in field.split(".")]
        if field == "body":
            path = []
        if "line" in item:  # a rejected CSV row: its line, then its field
            path = [int(item["line"]), *path]
        detail.append({"loc": [where, *path], "msg": str(item["reason"]), "type": "value_error"})
    return detail


def install_error_handling(app: FastAPI) -> None:
    """Request ids, and one envelope for every way a request can fail."""
    app.middleware("http")(_request_id_middleware)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(DialerError, _dialer_error)
    app.add_exception_handler(Exception, _internal_error)


async def _request_id_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _SANE_REQUEST_ID.match(given) else str(uuid.uuid4())
    request.state.request_id = request_id
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        response = await call_next(request)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return envelope(
        request,
        exc.status,
        exc.code,
        exc.message,
        details=exc.details,
        headers=exc.headers,
        detail=exc.detail,
    )


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    details = [_detail(err) for err in errors]
    message = "; ".join(f"{d['field']}: {d['reason']}" for d in details) or "invalid request"
    detail = [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "value_error")),
        }
        for err in errors
    ]
    return envelope(request, 422, "validation_error", message, details=details, detail=detail)


def _detail(err: Any) -> dict[str, str]:
    loc = [str(part) for part in err.get("loc", ())]
    if loc and loc[0] in {"body", "query", "path", "header"} and len(loc) > 1:
        loc = loc[1:]
    reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return {"field": ".".join(loc) or "body", "reason": reason}


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error"
    )
    if _is_webhook(request):
        return webhook_error(exc.status_code, code, str(exc.detail))
    return envelope(request, exc.status_code, code, str(exc.detail))


async def _dialer_error(request: Request, exc: Exception) -> JSONResponse:
    """A service refusal: the domain's exception decides the answer."""
    assert isinstance(exc, DialerError)
    if isinstance(exc, ValidationFailed):
        details = [{"field": exc.field, "reason": exc.reason}]
        return envelope(request, 422, "validation_error", str(exc), details=details)
    if isinstance(exc, NotFound):
        return envelope(request, 404, "not_found", str(exc))
    if isinstance(exc, CampaignStateError):
        return envelope(request, 400, "invalid_state", str(exc))
    if isinstance(exc, Conflict):
        return envelope(request, 409, "conflict", str(exc))
    return await _internal_error(request, exc)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    if _is_webhook(request):
        return await webhook_internal_error(request, exc)
    log.error("api_internal_error", error=type(exc).__name__, path=request.url.path)
    return envelope(request, 500, "internal_error", "internal error")


def _is_webhook(request: Request) -> bool:
    """Providers are not control-API clients: webhook paths answer in the ingress's shape."""
    return request.url.path.startswith(WEBHOOK_PATH_PREFIX)
