"""What every dashboard route shares: templates, the session check, CSRF, error pages.

``UiRoute`` is the route class of the dashboard's router. Around each route it

1. refuses a POST whose CSRF token is missing or wrong (403), before the route runs;
2. turns "not signed in" into a redirect to /ui/login (a 401 for the page's own
   background fetches, which reload the page to get there);
3. renders the services' refusals (dialer.errors, and the API's ApiError for a missing
   scope) as an HTML page with the status and message the JSON API gives.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import quote, unquote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from dialer.api.context import context_of
from dialer.api.errors import ApiError
from dialer.api.ui.session import (
    CSRF_FIELD,
    FLASH_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    UI_PATH_PREFIX,
    Signer,
)
from dialer.errors import CampaignStateError, Conflict, DialerError, NotFound, ValidationFailed
from dialer.logging import get_logger
from dialer.services.api_keys import Principal, principal_of_key

log = get_logger("dialer.api.ui")

LOGIN_PATH: Final = f"{UI_PATH_PREFIX}/login"
FETCH_HEADER: Final = "x-dashboard-fetch"  # set by dashboard.js on its background fetches
MILLICENTS_PER_USD: Final = 100_000
# The pages hold no inline script or style: everything comes from /ui/static.
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No valid dashboard session: sign in first."""


class CsrfRefused(Exception):
    """The form's CSRF token is missing or does not match the session."""


@dataclass(frozen=True)
class Ui:
    """The dashboard's parts, kept on ``app.state.ui`` by dialer.api.ui.install_ui."""

    signer: Signer
    templates: Environment
    session_lifetime: timedelta


def ui_of(request: Request) -> Ui:
    ui = request.app.state.ui
    assert isinstance(ui, Ui)
    return ui


def build_templates() -> Environment:
    env = Environment(
        loader=PackageLoader("dialer.api.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_when
    env.filters["usd"] = format_usd
    env.filters["pct"] = format_percent
    return env


def format_when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_usd(millicents: int | None) -> str:
    return "—" if millicents is None else f"${millicents / MILLICENTS_PER_USD:,.2f}"


def format_percent(part: int | float | Decimal, whole: int | float | Decimal) -> str:
    return "—" if not whole else f"{100 * float(part) / float(whole):.0f}%"


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """The page ``template`` with the values every page uses (csrf token, flash, principal)."""
    ui = ui_of(request)
    session_value = request.cookies.get(SESSION_COOKIE, "")
    values.setdefault("principal", getattr(request.state, "ui_principal", None))
    values.setdefault("flash", _flash_of(request))
    values.setdefault("error", None)
    values.setdefault("csrf_token", ui.signer.csrf_token(session_value) if session_value else "")
    values["csrf_field"] = CSRF_FIELD
    values["request_path"] = request.url.path
    html = ui.templates.get_template(template).render(**values)
    response = HTMLResponse(html, status_code=status_code, headers=_SECURITY_HEADERS)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=UI_PATH_PREFIX)
    return response


def redirect(request: Request, path: str, flash: str | None = None) -> RedirectResponse:
    """303 to ``path`` (a POST's answer), carrying a one-time signed message."""
    response = RedirectResponse(path, status_code=303, headers=_SECURITY_HEADERS)
    if flash:
        value = ui_of(request).signer.signed("flash", quote(flash, safe=""))
        response.set_cookie(
            FLASH_COOKIE, value, max_age=60, path=UI_PATH_PREFIX, **cookie_flags(request)
        )
    return response


def cookie_flags(request: Request) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, and Secure when the page was served over https."""
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    return {"httponly": True, "samesite": "strict", "secure": secure}


def _flash_of(request: Request) -> str | None:
    text = ui_of(request).signer.unsigned("flash", request.cookies.get(FLASH_COOKIE))
    return unquote(text) if text else None


def ui_principal(request: Request) -> Principal:
    """The principal of the request's session: its key, looked up again (revocation holds)."""
    ctx = context_of(request)
    token = ui_of(request).signer.read_session(request.cookies.get(SESSION_COOKIE), ctx.now())
    if token is None:
        raise SignInRequired
    with ctx.uow() as session:
        principal = principal_of_key(session, token.key_id)
    if principal is None:
        raise SignInRequired
    request.state.ui_principal = principal
    return principal


def need(principal: Principal, scope: str) -> None:
    """The API's scope rule (dialer.api.auth.require), with its message."""
    if not principal.allows(scope):
        message = f"This API key is missing the required scope: {scope}."
        raise ApiError(403, "insufficient_scope", message)


def parse_id(raw: str, what: str) -> uuid.UUID:
    """A path id; a malformed one is as unknown as a missing one (404, like another account's)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"{what} {raw} not found") from None


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class UiRoute(APIRoute):
    """The checks and error pages of the module docstring, around every dashboard route."""

    def get_route_handler(self) -> Handler:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                if request.method == "POST":
                    await _check_csrf(request)
                return await inner(request)
            except SignInRequired:
                return _to_sign_in(request)
            except CsrfRefused:
                log.warning("ui_csrf_refused", path=request.url.path)
                return error_page(request, 403, "The form's CSRF token is missing or invalid.")
            except ApiError as exc:
                return error_page(request, exc.status, str(exc.message))
            except DialerError as exc:
                return error_page(request, status_of(exc), str(exc))
            except RequestValidationError as exc:
                return error_page(request, 422, _validation_message(exc.errors()))

        return handler


async def _check_csrf(request: Request) -> None:
    form = await request.form()
    token = form.get(CSRF_FIELD)
    cookie = LOGIN_COOKIE if request.url.path == LOGIN_PATH else SESSION_COOKIE
    bound_to = request.cookies.get(cookie)
    if not isinstance(token, str) or not ui_of(request).signer.csrf_ok(bound_to, token):
        raise CsrfRefused


def status_of(exc: DialerError) -> int:
    """The API's status for a service refusal (dialer.api.errors._dialer_error)."""
    if isinstance(exc, ValidationFailed):
        return 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, CampaignStateError):
        return 400
    if isinstance(exc, Conflict):
        return 409
    return 500


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    if status >= 500:
        log.error("ui_internal_error", path=request.url.path)
        message = "internal error"
    title = HTTPStatus(status).phrase
    return render(request, "error.html", status, title=title, message=message, status=status)


def _to_sign_in(request: Request) -> Response:
    if request.headers.get(FETCH_HEADER) or request.method != "GET":
        return Response("sign in required", status_code=401, headers=_SECURITY_HEADERS)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)


def _validation_message(errors: Any) -> str:
    parts = []
    for err in errors if isinstance(errors, list) else []:
        if isinstance(err, Mapping):
            where = ".".join(str(p) for p in err.get("loc", ())[1:])
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
