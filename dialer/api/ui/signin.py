"""Sign-in with an API key, and sign-out.

The key is checked as the API checks it (dialer.api.auth.principal_for); the cookie
then names the key's id, signed, never the key. The key is never logged.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from dialer.api.auth import principal_for
from dialer.api.context import context_of
from dialer.api.ui.session import LOGIN_COOKIE, SESSION_COOKIE, UI_PATH_PREFIX, new_nonce
from dialer.api.ui.web import (
    LOGIN_PATH,
    SignInRequired,
    UiRoute,
    cookie_flags,
    log,
    redirect,
    render,
    ui_of,
    ui_principal,
)

router = APIRouter(prefix=UI_PATH_PREFIX, route_class=UiRoute, include_in_schema=False)
HOME: Final = f"{UI_PATH_PREFIX}/campaigns"
MAX_KEY_CHARS: Final = 200


@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    return redirect(request, HOME)


@router.get("/login")
def login_page(request: Request, next: str = HOME) -> Response:
    try:
        ui_principal(request)
        return redirect(request, safe_next(next))
    except SignInRequired:
        pass
    return _login_form(request, next, None, 200)


@router.post("/login")
async def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=MAX_KEY_CHARS)] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    ctx = context_of(request)
    principal = await run_in_threadpool(principal_for, ctx, api_key) if api_key.strip() else None
    if principal is None:
        log.info("ui_sign_in_refused")
        return _login_form(request, next, "Invalid API key.", 401)
    ui = ui_of(request)
    value = ui.signer.session_value(principal.key_id, ctx.now(), ui.session_lifetime)
    response = redirect(request, safe_next(next))
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(ui.session_lifetime.total_seconds()),
        path=UI_PATH_PREFIX,
        **cookie_flags(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=UI_PATH_PREFIX)
    log.info("ui_signed_in", key_id=str(principal.key_id))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = redirect(request, LOGIN_PATH)
    response.delete_cookie(SESSION_COOKIE, path=UI_PATH_PREFIX)
    return response


def safe_next(target: str) -> str:
    """Only a dashboard path of this site: never an open redirect."""
    local = target.startswith(f"{UI_PATH_PREFIX}/") and not target.startswith("//")
    return target if local and not any(c in target for c in "\\\r\n") else HOME


def _login_form(request: Request, next: str, error: str | None, status: int) -> Response:
    nonce = new_nonce()
    token = ui_of(request).signer.csrf_token(nonce)
    response = render(
        request,
        "login.html",
        status,
        next=safe_next(next),
        error=error,
        csrf_token=token,
        principal=None,
    )
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=3600, path=UI_PATH_PREFIX, **cookie_flags(request)
    )
    return response
