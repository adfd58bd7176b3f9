"""The sandbox provider server: one FastAPI app, the flavour's voice API plus admin and WhatsApp.

``create_app`` builds it from a ``SandboxConfig`` (its ``flavor`` picks the voice
API, webhook shapes and signature scheme: ``dialer.sandbox.flavors``); ``serve``
runs it with uvicorn; ``run_sandbox`` is what ``dialer sandbox`` calls, configured
from the settings so the sandbox accepts the dialer's credential for that provider,
signs with its webhook secret, posts to its ingress and runs on its clock.
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
from dialer.sandbox import admin, whatsapp
from dialer.sandbox.config import SandboxConfig
from dialer.sandbox.flavor import Flavor
from dialer.sandbox.flavors import FLAVORS
from dialer.sandbox.state import ApiError, build_state, scaled_clock
from dialer.settings import Settings

# Beside the flavour's voice router; WhatsApp keeps its own state (whatsapp.install).
SHARED_ROUTERS: Final[tuple[APIRouter, ...]] = (admin.router, whatsapp.router)


def create_app(
    config: SandboxConfig,
    *,
    clock: Clock | None = None,
    routers: Sequence[APIRouter] | None = None,
) -> FastAPI:
    """The app; ``clock`` is the simulated time calls are planned in (default: real time
    from now on, sped up by ``config.time_scale``); ``routers`` default to the flavour's
    voice API and the shared ones."""
    flavor = FLAVORS[config.flavor]
    secret = config.webhook_secret
    state = build_state(
        config,
        clock or scaled_clock(real_utcnow(), config.time_scale),
        lambda url, raw, now: flavor.sign(secret, url, raw, now),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.webhooks.start()
        yield
        await state.webhooks.aclose()

    app = FastAPI(title=f"Dialer sandbox provider ({flavor.title})", lifespan=lifespan)
    app.state.sandbox = state
    _install_error_shapes(app, flavor)
    for router in routers if routers is not None else (flavor.router, *SHARED_ROUTERS):
        app.include_router(router)
    return app


def _install_error_shapes(app: FastAPI, flavor: Flavor) -> None:
    """Errors answer in the flavour's provider's shape."""

    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(flavor.error_body(exc), status_code=exc.status, headers=exc.headers)

    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422, each field with its reason."""
        fields = [
            (".".join(str(part) for part in err["loc"] if part != "body") or "body", err["msg"])
            for err in exc.errors()
        ]
        message = "the request is invalid: " + "; ".join(f"{f}: {r}" for f, r in fields)[:500]
        error = ApiError(422, "validation_error", message, fields=fields)
        return JSONResponse(flavor.error_body(error), status_code=error.status)

    app.exception_handler(ApiError)(api_error)
    app.exception_handler(RequestValidationError)(validation_error)


def serve(
    config: SandboxConfig, host: str = "127.0.0.1", port: int = 8700, *, clock: Clock | None = None
) -> None:
    """Run the sandbox in the foreground until interrupted."""
    uvicorn.run(create_app(config, clock=clock), host=host, port=port, log_level="info")


def config_from_settings(
    settings: Settings,
    overrides: Mapping[str, Any] | None = None,
    *,
    flavor: str = "seed004",
    webhook_path: str | None = None,
) -> SandboxConfig:
    """A sandbox that matches the dialer's settings, then ``overrides`` (SandboxConfig keys).

    The credential and signing secret are the ones the dialer has for ``flavor``'s
    provider (``DIALER_PROVIDER_API_KEY``/``DIALER_WEBHOOK_SECRET`` for seed 004,
    ``DIALER_VAPI_*`` for Vapi, ...); webhooks go to that provider's ingress path.
    """
    chosen = FLAVORS[flavor]
    credentials = chosen.credentials(settings)
    path = webhook_path or chosen.webhook_path
    values: dict[str, Any] = {
        "flavor": flavor,
        "api_key": credentials.api_key,
        "webhook_secret": credentials.webhook_secret,
        "default_webhook_url": settings.public_webhook_base_url.rstrip("/") + path,
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
    flavor: str = "seed004",
    webhook_path: str | None = None,
) -> None:
    """`dialer sandbox`: serve on ``settings.sandbox_port`` (or ``port``) until interrupted.

    With the demo's clock anchors set, calls are planned on the dialer's own simulated
    clock, so the timestamps in call records agree with the dialer's.
    """
    config = config_from_settings(settings, overrides, flavor=flavor, webhook_path=webhook_path)
    clock = (lambda: utcnow(settings)) if _anchored(settings) else None
    app = create_app(config, clock=clock)
    whatsapp.install(app, whatsapp.WhatsAppSandboxConfig.from_settings(settings))
    uvicorn.run(app, host=host, port=port or settings.sandbox_port, log_level="warning")


def _anchored(settings: Settings) -> bool:
    return settings.clock_anchor_real is not None and settings.clock_anchor_sim is not None
