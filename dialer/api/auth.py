"""API-key authentication and scopes, as FastAPI dependencies.

A key is accepted as ``Authorization: Bearer sk_...`` or ``X-API-Key: sk_...``
(seed 001). A missing, unknown or revoked key is 401 ``api_key_invalid``; a key
without the route's scope is 403 ``insufficient_scope`` naming the scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from dialer.api.context import ApiContext, context_of
from dialer.api.errors import ApiError, envelope
from dialer.services.api_keys import Principal, authenticate

_UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": "Bearer"}
PRINCIPAL_STATE: Final = "principal"  # request.state attribute the body guard fills

# auto_error=False: a missing key must be our 401 envelope, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="Team API key (prefix sk_).")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    checked = getattr(request.state, PRINCIPAL_STATE, None)
    if isinstance(checked, Principal):  # the guard checked it before the body was read
        return checked
    secret = bearer.credentials if bearer is not None else header_key
    if not secret:
        raise _invalid_key("Missing API key.")
    principal = principal_for(context_of(request), secret)
    if principal is None:
        raise _invalid_key("Invalid API key.")
    return principal


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries (Bearer first, as the dependencies read it), if any."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key", "").strip() or None


def principal_for(ctx: ApiContext, secret: str) -> Principal | None:
    with ctx.uow() as session:
        return authenticate(session, secret.strip())


def invalid_key_answer(request: Request, message: str) -> JSONResponse:
    """The 401 the dependencies raise, as an answer (for code outside FastAPI's routing)."""
    return envelope(request, 401, "api_key_invalid", message, headers=_UNAUTHORIZED_HEADERS)


def require(scope: str) -> Callable[..., Principal]:
    """A dependency that yields the caller's principal when its key holds ``scope``."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.allows(scope):
            message = f"This API key is missing the required scope: {scope}."
            raise ApiError(403, "insufficient_scope", message)
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


def _invalid_key(message: str) -> ApiError:
    return ApiError(401, "api_key_invalid", message, headers=_UNAUTHORIZED_HEADERS)
