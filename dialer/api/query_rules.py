"""Query-string rules shared by routes: a parameter a route does not know is refused.

FastAPI ignores query parameters a route does not declare, so ``?forse=1`` (for
``force``) would silently do the default. Routes that take none refuse any (422).
"""

from __future__ import annotations

from fastapi import Request

from dialer.api.errors import ApiError

UNKNOWN_PARAMETER = "unknown query parameter: this route takes none"


def no_query_parameters(request: Request) -> None:
    """A dependency: 422 naming every query parameter sent."""
    unknown = sorted(set(request.query_params))
    if not unknown:
        return
    details = [{"field": name, "reason": UNKNOWN_PARAMETER} for name in unknown]
    detail = [
        {"loc": ["query", name], "msg": UNKNOWN_PARAMETER, "type": "extra_forbidden"}
        for name in unknown
    ]
    message = "; ".join(f"{name}: {UNKNOWN_PARAMETER}" for name in unknown)
    raise ApiError(422, "validation_error", message, details=details, detail=detail)
