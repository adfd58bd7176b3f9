"""The flow every flavour's create endpoint shares: faults, one ledger entry, webhooks.

``place`` is called by a flavour's handler once the request is valid:

1. the request is counted under its idempotency key (the ledger's ``requests_by_key``);
2. one fault draw: 429 (with Retry-After), 503 and a held-then-504 request create
   nothing; a *lost response* creates the call and then holds the answer past the
   client's read timeout, so the client never learns the call exists;
3. the call is created: once per key where the provider honours one (seed 004,
   Retell), else anew on every request (a re-send is a second call, on the ledger);
4. its webhooks (the flavour's ``webhooks_of``) are scheduled, each dropped with
   ``drop_webhook_rate``, the last one doubled with ``duplicate_webhook_rate`` and
   the first moved after the last with ``reorder_webhook_rate``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Final

from dialer.clock import real_utcnow
from dialer.providers.base import PlaceCallRequest
from dialer.providers.simulation import draw_call_plan
from dialer.sandbox.config import FaultConfig
from dialer.sandbox.faults import RequestFault
from dialer.sandbox.flavor import Webhook
from dialer.sandbox.ledger import StoredCall
from dialer.sandbox.state import ApiError, SandboxState

# A duplicate or reordered delivery lands this much simulated time after the last one.
DUPLICATE_DELAY_SECONDS: Final = 1.0

WebhooksOf = Callable[[StoredCall], list[Webhook]]


@dataclass(frozen=True)
class NewCall:
    """A valid create request, read into our terms by the flavour."""

    call_id: str
    request: PlaceCallRequest
    webhook_url: str | None  # None: the sandbox's default (the console's setting)
    fingerprint: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


async def place(
    state: SandboxState, new: NewCall, webhooks_of: WebhooksOf, *, once_per_key: bool
) -> StoredCall:
    """Create the call (or fail as the faults say); the caller renders the answer."""
    key = new.request.idempotency_key
    state.ledger.note_request(key)
    faults = state.faults
    fault = state.dice.request_fault(faults)
    if fault is not None:
        state.ledger.note_fault(key, fault.value)
    await fail_before_creating(fault, faults)
    if once_per_key:
        stored, created = state.ledger.create_once(key, lambda: _stored(state, new))
    else:
        stored, created = state.ledger.create(lambda: _stored(state, new)), True
    if stored.fingerprint != new.fingerprint:
        raise ApiError(409, "idempotency_key_reused", f"{key!r} was used for another request")
    if created:
        schedule_webhooks(state, stored, webhooks_of(stored))
    if fault is RequestFault.LOST_RESPONSE:
        await asyncio.sleep(faults.hang_seconds)  # the client gave up before this answer
    return stored


def _stored(state: SandboxState, new: NewCall) -> StoredCall:
    plan = draw_call_plan(state.profile, new.request, new.call_id, state.clock())
    return StoredCall(
        idempotency_key=new.request.idempotency_key,
        plan=plan,
        fingerprint=new.fingerprint,
        webhook_url=new.webhook_url or state.config.default_webhook_url,
        request=new.request,
        placed_at_wall=real_utcnow(),
        extra=new.extra,
    )


async def fail_before_creating(fault: RequestFault | None, faults: FaultConfig) -> None:
    """429, 503 and a held-then-504 request all leave nothing behind."""
    if fault is RequestFault.TOO_MANY_REQUESTS:
        retry_after = retry_after_header(faults.retry_after_seconds, faults.retry_after_format)
        raise ApiError(429, "rate_limited", "too many calls", headers={"Retry-After": retry_after})
    if fault is RequestFault.UNAVAILABLE:
        raise ApiError(503, "unavailable", "the provider is temporarily unavailable")
    if fault is RequestFault.TIMEOUT:
        await asyncio.sleep(faults.hang_seconds)
        raise ApiError(504, "timeout", "the call could not be placed in time")


def retry_after_header(seconds: int, form: str) -> str:
    if form == "seconds":
        return str(seconds)
    # An HTTP date has whole-second precision: round up so the client never comes early.
    when = datetime.now(UTC).timestamp() + seconds + 1
    return format_datetime(datetime.fromtimestamp(int(when), UTC), usegmt=True)


def schedule_webhooks(state: SandboxState, stored: StoredCall, hooks: list[Webhook]) -> None:
    """Hand every webhook to the sender at its due time, with the faults drawn now."""
    faults, dice = state.faults, state.dice
    hooks = sorted(hooks, key=lambda hook: hook.due)
    if hooks and dice.chance(faults.duplicate_webhook_rate):
        last = hooks[-1]
        hooks.append(last._replace(due=last.due + timedelta(seconds=DUPLICATE_DELAY_SECONDS)))
    if len(hooks) > 1 and dice.chance(faults.reorder_webhook_rate):
        first, latest = hooks[0], max(hook.due for hook in hooks)
        hooks = [*hooks[1:], first._replace(due=latest + timedelta(seconds=1.0))]
    for hook in hooks:
        url = hook.url or stored.webhook_url
        if url is None:
            continue
        if dice.chance(faults.drop_webhook_rate):
            state.ledger.count_webhook("dropped")
            continue
        plan_delay = (hook.due - state.clock()).total_seconds() / state.config.time_scale
        delay = max(0.0, plan_delay) + dice.uniform(*faults.webhook_delay_seconds)
        state.webhooks.schedule(url, hook.body, delay, hook.content_type)
