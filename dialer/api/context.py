"""What every control-API route needs, kept on ``app.state`` by ``create_app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from dialer.dependencies import UnitOfWork
from dialer.settings import Settings

ReadinessCheck = Callable[[], None]  # raises when its server does not answer


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    uow: UnitOfWork
    now: Callable[[], datetime]  # the one clock (dialer.clock.utcnow in production)
    readiness: dict[str, ReadinessCheck]


def context_of(request: Request) -> ApiContext:
    ctx = request.app.state.context
    assert isinstance(ctx, ApiContext)
    return ctx
