"""Flower's /metrics behind its own basic auth (and /healthcheck, when asked).

Flower 2.x serves /metrics and /healthcheck without checking credentials, even with
``--basic_auth``: anyone who reaches the port reads every task name, worker and
queue from the metrics. ``guard_flower_probes`` wraps those handlers with tornado's
``authenticated``, which asks Flower's basic auth like every other page. /healthcheck
(it answers only "OK") stays open by default so liveness probes need no secret.
"""

from __future__ import annotations

from typing import Any

_GUARDED = "_dialer_guarded"


def guard_flower_probes(*, public_healthcheck: bool) -> list[str]:
    """Patch Flower's handlers in this process (before it starts); the paths now guarded."""
    from flower.views import monitor
    from tornado.web import authenticated

    handlers: list[tuple[str, Any]] = [("/metrics", monitor.Metrics)]
    if not public_healthcheck:
        handlers.append(("/healthcheck", monitor.Healthcheck))
    for _path, handler in handlers:
        if not getattr(handler.get, _GUARDED, False):
            guarded = authenticated(handler.get)
            setattr(guarded, _GUARDED, True)
            handler.get = guarded
    return [path for path, _handler in handlers]
