"""Liveness and readiness: no API key, so load balancers and probes can ask."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dialer.api.context import ReadinessCheck, context_of
from dialer.logging import get_logger

log = get_logger("dialer.api.health")
health_router = APIRouter(tags=["health"])


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers (liveness)."""
    return {"status": "ok"}


@health_router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Every server the API needs answers (readiness): 200, else 503 naming the failures."""
    checks = context_of(request).readiness
    results = {name: await run_in_threadpool(_run, name, check) for name, check in checks.items()}
    ready = all(result == "ok" for result in results.values())
    body = {"status": "ready" if ready else "unavailable", "checks": results}
    return JSONResponse(body, status_code=200 if ready else 503)


def _run(name: str, check: ReadinessCheck) -> str:
    try:
        check()
    except Exception as exc:  # a probe reports, it does not raise
        log.warning("readiness_check_failed", check=name, error=type(exc).__name__)
        return f"failed: {type(exc).__name__}"
    return "ok"
