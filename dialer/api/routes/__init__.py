"""Control-API routers, one module per resource, all mounted by dialer.api.app."""

from fastapi import APIRouter

from dialer.api.routes import calls, campaigns, customers, suppressions, webhooks

CONTROL_ROUTERS: list[APIRouter] = [
    campaigns.router,
    customers.router,
    calls.router,
    suppressions.router,
    webhooks.router,
]
