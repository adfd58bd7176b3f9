"""Sentry error reports: off unless ``DIALER_SENTRY_DSN`` is set, personal data masked.

Each process type turns it on at its entry point: ``dialer api`` with Sentry's default
integrations (FastAPI/Starlette among them), the Celery worker and beat through
``tasks.app`` with the Celery integration and beat monitoring (a Sentry cron monitor per
beat schedule entry). Reports never carry personal data: Sentry's default PII
collection stays off, local variables are not sent, and every event and breadcrumb
goes through the log masker (``dialer.logging.mask_data``: phone numbers, e-mail
addresses, people's names, SQL parameters in tracebacks) before it leaves the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sentry_sdk
from sentry_sdk.integrations import Integration

from dialer.logging import mask_data
from dialer.settings import Settings


def init_sentry(
    settings: Settings,
    process: str,
    integrations: Sequence[Integration] = (),
    transport: Any = None,
) -> bool:
    """Start Sentry for this process when a DSN is configured; False when it stays off.

    ``transport`` is for tests (a sentry_sdk Transport that keeps envelopes in memory).
    """
    if settings.sentry_dsn is None:
        return False
    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        server_name=process,  # not the host name: the process kind is what operators sort by
        include_local_variables=False,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        integrations=list(integrations),
        before_send=_masked_event,
        before_breadcrumb=_masked_breadcrumb,
        **options,
    )
    return True


def _masked_event(event: Any, _hint: Any) -> Any:
    masked: Any = mask_data(dict(event))
    return masked


def _masked_breadcrumb(crumb: Any, _hint: Any) -> Any:
    masked: Any = mask_data(dict(crumb))
    return masked
