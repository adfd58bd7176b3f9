"""The state every sandbox router shares, how a router reaches it, and the error shape.

Routers are plain ``APIRouter`` objects; a handler asks for ``SandboxState`` with
``Depends(sandbox_state)``, so another router (WhatsApp) can be added to the app's
list without touching this package's wiring.

Errors answer ``{"error": {"code", "message", "fields": [{"field", "reason"}]}}``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request

from dialer.dependencies import Clock
from dialer.providers.simulation import SimulationProfile
from dialer.sandbox.config import FaultConfig, SandboxConfig
from dialer.sandbox.faults import FaultDice
from dialer.sandbox.ledger import CallLedger
from dialer.sandbox.webhooks import Signer, WebhookSender, shared_secret_signer


@dataclass
class SandboxState:
    """One sandbox's memory. ``faults`` is replaced whole, so readers never see half an update."""

    config: SandboxConfig
    profile: SimulationProfile
    clock: Clock  # the simulated time calls are planned in
    ledger: CallLedger
    webhooks: WebhookSender
    dice: FaultDice
    faults: FaultConfig = field(default_factory=FaultConfig)


def build_state(config: SandboxConfig, clock: Clock, signer: Signer | None = None) -> SandboxState:
    """The state; ``signer`` signs webhooks (default: seed 004's scheme with the secret)."""
    ledger = CallLedger()
    webhooks = WebhookSender(
        signer or shared_secret_signer(config.webhook_secret),
        ledger,
        max_tries=config.webhook_max_tries,
        retry_seconds=config.webhook_retry_seconds,
        timeout_seconds=config.webhook_timeout_seconds,
    )
    return SandboxState(
        config=config,
        profile=config.profile(),
        clock=clock,
        ledger=ledger,
        webhooks=webhooks,
        dice=FaultDice(config.seed),
        faults=config.faults,
    )


def scaled_clock(start: datetime, scale: float) -> Clock:
    """A clock at ``start`` now that runs ``scale`` times faster than real time."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=(time.monotonic() - origin) * scale)


def sandbox_state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


State = Annotated[SandboxState, Depends(sandbox_state)]


class ApiError(Exception):
    """An error answer: status, machine code, a message, and the fields at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        fields = [{"field": name, "reason": reason} for name, reason in self.fields]
        return {"error": {"code": self.code, "message": self.message, "fields": fields}}


def require_api_key(request: Request, state: State) -> None:
    """Seed 004 (and Vapi, Retell) authorise with ``Authorization: Bearer <key>``."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not same_secret(key, state.config.api_key):
        raise ApiError(401, "unauthorized", "missing or wrong API key (Authorization: Bearer)")


def same_secret(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode(), expected.encode())
