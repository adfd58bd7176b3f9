"""The HTTP app of ``dialer api``: the control API of the seeds plus the webhook ingress.

One FastAPI app serves both, so one process, one port and one deployment unit
answer providers and users. Control routes need an API key (dialer.api.auth) and
answer errors in seed 001's envelope (dialer.api.errors); webhook routes are
verified by their HMAC signature instead and are left out of the OpenAPI document.
The dashboard (dialer.api.ui, under /ui) signs people in with the same API keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final
from wsgiref.simple_server import WSGIServer

import uvicorn
from fastapi import FastAPI

from dialer import metrics
from dialer.api.context import ApiContext, ReadinessCheck
from dialer.api.errors import ERROR_RESPONSES, install_error_handling
from dialer.api.guards import BodyGuard
from dialer.api.ingress import EnqueueApply, ingress_router
from dialer.api.routes import CONTROL_ROUTERS
from dialer.api.routes.health import health_router
from dialer.api.ui import install_ui
from dialer.clock import utcnow
from dialer.composition.queues import queue_depths
from dialer.dependencies import UnitOfWork, UnixClock
from dialer.logging import get_logger
from dialer.providers.catalog import PROVIDERS
from dialer.providers.registry import Registry
from dialer.services.reports import campaign_loads, inbox_load
from dialer.services.webhooks import disabled_endpoint_count
from dialer.settings import Settings

log = get_logger("dialer.api")

API_TITLE = "Campaign dialer API"
MAX_JSON_BODY_BYTES: Final = 1024 * 1024


def create_app(
    settings: Settings,
    uow: UnitOfWork,
    *,
    enqueue_apply: EnqueueApply,
    registry: Registry = PROVIDERS,
    readiness: Mapping[str, ReadinessCheck] | None = None,
    clock: UnixClock = time.time,
) -> FastAPI:
    """The whole app. ``readiness`` names the checks /readyz runs (database, redis).

    The webhook routes are those of ``registry`` (every registered provider's).
    """
    app = FastAPI(title=API_TITLE, version=_version())
    app.state.context = ApiContext(
        settings=settings,
        uow=uow,
        now=lambda: utcnow(settings),
        readiness=dict(readiness or {}),
    )
    # Key, query and size checks before any route reads a body (dialer.api.guards).
    app.add_middleware(BodyGuard, max_body_bytes=MAX_JSON_BODY_BYTES)
    install_error_handling(app)  # added last, so it runs first: a 413 has a request id too
    app.include_router(health_router)
    for router in CONTROL_ROUTERS:
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(ingress_router(settings, uow, enqueue_apply, registry, clock=clock))
    install_ui(app, settings)
    return app


def serve_app(app: FastAPI, settings: Settings) -> None:
    """Run ``app`` with uvicorn on settings.api_host:api_port until stopped."""
    log.info("api_listening", host=settings.api_host, port=settings.api_port)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None)


def serve_metrics(
    settings: Settings, uow: UnitOfWork, clock: Callable[[], datetime], redis_url: str
) -> WSGIServer | None:
    """The API process's Prometheus endpoint: its samples and the campaign gauges.

    On its own port (api_metrics_port), not on the API's: the API faces providers'
    webhooks, the metrics are for the cluster. Returns None when turned off (port 0).
    """
    if settings.api_metrics_port == 0:
        return None

    def read_loads() -> list[metrics.CampaignLoad]:
        with uow() as session:
            return campaign_loads(session, clock())

    def read_inbox() -> metrics.InboxLoad:
        with uow() as session:
            return inbox_load(session)

    def read_queues() -> metrics.QueueLoad:
        depths = queue_depths(redis_url)
        return metrics.QueueLoad(depths.waiting, depths.unacked)

    def read_disabled_endpoints() -> int:
        with uow() as session:
            return disabled_endpoint_count(session)

    registry = metrics.exposition_registry(
        metrics.CampaignGauges(read_loads),
        metrics.InboxGauges(read_inbox),
        metrics.QueueGauges(read_queues),
        metrics.WebhookGauges(read_disabled_endpoints),
    )
    auth = metrics.MetricsAuth.from_settings(settings)
    return metrics.serve(settings.metrics_host, settings.api_metrics_port, registry, auth)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("campaign-dialer")
    except PackageNotFoundError:
        return "0.0.0"
