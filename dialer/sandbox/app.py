"""The sandbox provider server: one FastAPI app with the routers of ``ROUTERS``.

``create_app`` builds it from a ``SandboxConfig``; ``serve`` runs it with uvicorn;
``run_sandbox`` is what ``dialer sandbox`` calls, configured from the settings so the
sandbox accepts the dialer's key, signs with its webhook secret, posts to its
ingress and runs on its clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dialer.clock import real_utcnow, utcnow
from dialer.dependencies import Clock
from dialer.providers.catalog import HTTP_CALLS
from dialer.sandbox import admin, voice, whatsapp
from dialer.sandbox.config import SandboxConfig
from dialer.sandbox.state import ApiError, build_state, scaled_clock
from dialer.settings import Settings

# A channel is an APIRouter here; WhatsApp keeps its own state (whatsapp.install).
ROUTERS: Final[tuple[APIRouter, ...]] = (voice.router, admin.router, whatsapp.router)
# Where the ingress (dialer.api.ingress) takes the seed 004 provider's call events.
DEFAULT_VOICE_WEBHOOK_PATH: Final = HTTP_CALLS.path


def create_app(
    config: SandboxConfig,
    *,
    clock: Clock | None = None,
    routers: Sequence[APIRouter] = ROUTERS,
) -> FastAPI:
    """The app; ``clock`` is the simulated time calls are planned in (default: real time
    from now on, sped up by ``config.time_scale``)."""
    state = build_state(config, clock or scaled_clock(real_utcnow(), config.time_scale))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.webhooks.start()
        yield
        await state.webhooks.aclose()

    app = FastAPI(title="Dialer sandbox provider (seed 004)", lifespan=lifespan)
    app.state.sandbox = state
    app.exception_handler(ApiError)(_api_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    for router in routers:
        app.include_router(router)
    return app


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, in the sandbox's error shape: each field with its reason."""
    fields = [
        (".".join(str(part) for part in err["loc"] if part != "body") or "body", err["msg"])
        for err in exc.errors()
    ]
    error = ApiError(422, "validation_error", "the request is invalid", fields=fields)
    return JSONResponse(error.body(), status_code=error.status)


def serve(
    config: SandboxConfig, host: str = "127.0.0.1", port: int = 8700, *, clock: Clock | None = None
) -> None:
    """Run the sandbox in the foreground until interrupted."""
    uvicorn.run(create_app(config, clock=clock), host=host, port=port, log_level="info")


def config_from_settings(
    settings: Settings,
    overrides: Mapping[str, Any] | None = None,
    *,
    webhook_path: str = DEFAULT_VOICE_WEBHOOK_PATH,
) -> SandboxConfig:
    """A sandbox that matches the dialer's settings, then ``overrides`` (SandboxConfig keys)."""
    values: dict[str, Any] = {
        "api_key": settings.provider_api_key.get_secret_value(),
        "webhook_secret": settings.webhook_secret.get_secret_value(),
        "default_webhook_url": settings.public_webhook_base_url.rstrip("/") + webhook_path,
        "time_scale": settings.clock_speed if _anchored(settings) else 1.0,
        "simulation": settings.simulation,
    }
    return SandboxConfig.model_validate({**values, **(overrides or {})})


def run_sandbox(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    webhook_path: str = DEFAULT_VOICE_WEBHOOK_PATH,
) -> None:
    """`dialer sandbox`: serve on ``settings.sandbox_port`` (or ``port``) until interrupted.

    With the demo's clock anchors set, calls are planned on the dialer's own simulated
    clock, so the timestamps in call records agree with the dialer's.
    """
    config = config_from_settings(settings, overrides, webhook_path=webhook_path)
    clock = (lambda: utcnow(settings)) if _anchored(settings) else None
    app = create_app(config, clock=clock)
    whatsapp.install(app, whatsapp.WhatsAppSandboxConfig.from_settings(settings))
    uvicorn.run(app, host=host, port=port or settings.sandbox_port, log_level="warning")


def _anchored(settings: Settings) -> bool:
    return settings.clock_anchor_real is not None and settings.clock_anchor_sim is not None
