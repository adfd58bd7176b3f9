"""Control API: the account's outbound event webhooks (issue 17).

An endpoint is a URL and the events it hears; its signing secret is answered once,
when it is created (``whsec_...``), and signs every delivery (docs/OPERATIONS.md,
"Event webhooks"). An endpoint that keeps failing is disabled by the sender with a
``disabled_reason``; ``PATCH {"enabled": true}`` turns it on again. The delivery log
lists each event sent to it, newest first, keyset-paged by ``before``. Reading needs
``webhooks:read``, changing ``webhooks:write``; every query is scoped to the key's
account (another account's endpoint is a 404).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from dialer.api.auth import require
from dialer.api.context import context_of
from dialer.api.errors import request_id_of
from dialer.api.views.pages import MetaOut
from dialer.logging import get_logger
from dialer.policies.vocabulary import WebhookDeliveryStatus
from dialer.schemas import WebhookEndpointIn, WebhookEndpointPatch
from dialer.services import webhooks
from dialer.services.api_keys import Principal
from models import WebhookDelivery, WebhookEndpoint

log = get_logger("dialer.api.webhooks")
router = APIRouter(tags=["webhooks"])

Reader = Annotated[Principal, Depends(require("webhooks:read"))]
Writer = Annotated[Principal, Depends(require("webhooks:write"))]


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="Why it is off (null while enabled).")
    disabled_at: datetime | None
    consecutive_failures: int
    created_at: datetime


class WebhookEndpointCreatedOut(WebhookEndpointOut):
    secret: str = Field(description="Signs every delivery; shown only in this answer.")


class WebhookEndpointListOut(BaseModel):
    data: list[WebhookEndpointOut]
    meta: MetaOut


class WebhookDeliveryOut(BaseModel):
    id: int
    event_id: uuid.UUID
    event_type: str
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    history: list[dict[str, Any]] = Field(description="The last tries: at, status_code, error.")
    payload: dict[str, Any] = Field(description="The body sent (the same on every try).")
    created_at: datetime


class WebhookDeliveryPageOut(BaseModel):
    data: list[WebhookDeliveryOut]
    meta: MetaOut
    next_before: int | None = Field(description="Pass as `before` for the next page.")


def endpoint_out(row: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": list(row.events),
        "description": row.description,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "disabled_at": row.disabled_at,
        "consecutive_failures": row.consecutive_failures,
        "created_at": row.created_at,
    }


def _delivery_out(row: WebhookDelivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut.model_validate(row, from_attributes=True)


@router.post("/webhook-endpoints", status_code=201, response_model=WebhookEndpointCreatedOut)
def create(request: Request, body: WebhookEndpointIn, principal: Writer) -> Any:
    """Register an endpoint; the answer holds its signing secret, shown only here."""
    ctx = context_of(request)
    with ctx.uow() as session:
        made = webhooks.create_endpoint(
            session,
            principal.account_id,
            body.url,
            [str(event) for event in body.events],
            allow_private=ctx.settings.webhook_allow_private_urls,
            description=body.description,
        )
        answer = {**endpoint_out(made.endpoint), "secret": made.secret}
    log.info("webhook_endpoint_created", endpoint_id=str(answer["id"]))
    return answer


@router.get("/webhook-endpoints", response_model=WebhookEndpointListOut)
def list_(request: Request, principal: Reader) -> Any:
    ctx = context_of(request)
    with ctx.uow() as session:
        data = [endpoint_out(row) for row in webhooks.list_endpoints(session, principal.account_id)]
    return {"data": data, "meta": MetaOut(request_id=request_id_of(request), ts=ctx.now())}


@router.get("/webhook-endpoints/{endpoint_id}", response_model=WebhookEndpointOut)
def get(request: Request, endpoint_id: uuid.UUID, principal: Reader) -> Any:
    with context_of(request).uow() as session:
        return endpoint_out(webhooks.get_endpoint(session, principal.account_id, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=WebhookEndpointOut)
def patch(
    request: Request, endpoint_id: uuid.UUID, body: WebhookEndpointPatch, principal: Writer
) -> Any:
    """Enable (failures start again from 0, owed deliveries resume) or disable it."""
    ctx = context_of(request)
    with ctx.uow() as session:
        row = webhooks.set_enabled(
            session, principal.account_id, endpoint_id, body.enabled, ctx.now()
        )
        answer = endpoint_out(row)
    log.info("webhook_endpoint_switched", endpoint_id=str(endpoint_id), enabled=body.enabled)
    return answer


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def remove(request: Request, endpoint_id: uuid.UUID, principal: Writer) -> Response:
    with context_of(request).uow() as session:
        webhooks.remove_endpoint(session, principal.account_id, endpoint_id)
    log.info("webhook_endpoint_removed", endpoint_id=str(endpoint_id))
    return Response(status_code=204)


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", response_model=WebhookDeliveryPageOut)
def deliveries(
    request: Request,
    endpoint_id: uuid.UUID,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: WebhookDeliveryStatus | None = None,
) -> Any:
    """The endpoint's delivery log, newest first."""
    ctx = context_of(request)
    with ctx.uow() as session:
        rows = webhooks.list_deliveries(
            session,
            principal.account_id,
            endpoint_id,
            limit=limit,
            before=before,
            status=None if status is None else str(status),
        )
        data = [_delivery_out(row) for row in rows]
    return WebhookDeliveryPageOut(
        data=data,
        meta=MetaOut(request_id=request_id_of(request), ts=ctx.now()),
        next_before=data[-1].id if len(data) == limit else None,
    )
