"""Operator endpoints: read the ledger, read and change the faults while the server runs.

``POST /sandbox/faults`` merges the given knobs into the current ones (so
``{"rate_429": 0.2}`` changes only that); ``DELETE /sandbox/faults`` turns every
fault off. Meant for loopback use by tests and the demo: there is no auth.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError

from dialer.errors import describe_validation_error
from dialer.sandbox.config import FaultConfig
from dialer.sandbox.state import ApiError, State

router = APIRouter(prefix="/sandbox", tags=["sandbox admin"])


@router.get("/health")
async def health() -> dict[str, str]:
    """For scripts waiting on `dialer sandbox` to listen."""
    return {"status": "ok"}


@router.get("/ledger")
async def ledger(state: State) -> dict[str, Any]:
    """Every call created, calls and requests per idempotency key, webhook tallies."""
    return state.ledger.snapshot()


@router.get("/faults")
async def read_faults(state: State) -> FaultConfig:
    return state.faults


@router.post("/faults")
async def change_faults(changes: dict[str, Any], state: State) -> FaultConfig:
    try:
        state.faults = FaultConfig.model_validate({**state.faults.model_dump(), **changes})
    except ValidationError as exc:
        raise ApiError(
            422,
            "validation_error",
            "invalid fault settings",
            fields=describe_validation_error(exc),
        ) from None
    return state.faults


@router.delete("/faults")
async def clear_faults(state: State) -> FaultConfig:
    state.faults = FaultConfig()
    return state.faults
