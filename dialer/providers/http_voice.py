"""The seed 004 voice-AI API over HTTP: place calls, read them back, parse their webhooks.

Requests: ``POST {base}/v1/calls`` with ``Authorization: Bearer sk_...`` and
``Idempotency-Key`` (the attempt's key, so a retried request never places a second
call), and ``GET {base}/v1/calls/{id}`` for reconciliation.

Call record (response body and the ``call`` object of a webhook), seed 004 fields::

    {"id": "call_...", "agent_id": "...", "to": "+1...", "from_number": "+1...",
     "status": "queued|initiated|ringing|in_progress|completed|no_answer|busy|canceled|failed",
     "direction": "outbound", "created_at": ISO-8601, "ringing_at": ..., "answered_at": ...,
     "ended_at": ..., "duration_seconds": 12.5, "billable_seconds": 10,
     "cost_millicents": 1200, "extraction": {...} | null, "extraction_status":
     "pending|completed|failed", "extraction_error": null, "provider_error_code": null,
     "error_message": null, "hangup_reason": "customer_hangup", "voicemail": false,
     "metadata": {"attempt_id": "..."}, "analysis": {...} | null}

Seed 004 names no post-call evaluation fields, so the project reads them from an
``analysis`` object whose keys are those of ``CallAnalysis`` (summary_title,
transcript_summary, call_successful, goal_result, goal_rationale, goal_score,
sentiment, sentiment_rationale, follow_up_required, follow_up_rationale,
escalation_required, escalation_rationale, messages_count). Webhook body::

    {"event_id": "call_x:completed", "type": "call.status",
     "occurred_at": ISO-8601, "call": <call record>}

The codec is dialer.providers.events (``call_record_from_payload``,
``parse_event_payload``), so the simulator, the sandbox server and this adapter
speak one format.

Errors: timeouts, connection errors, 5xx and 429 are transient (with Retry-After
when sent); a 4xx is permanent and its message names the field and the reason. A
request the provider would refuse anyway (a ``to`` that is not E.164, a caller ID
not attached to the agent) is refused here, before any request is made.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Final
from urllib.parse import quote

import httpx
import structlog

from dialer import metrics
from dialer.clock import real_utcnow
from dialer.dependencies import Clock
from dialer.providers.base import (
    CallRecord,
    Gate,
    NotSent,
    PermanentProviderError,
    PlaceCallRequest,
    Placement,
    ProviderError,
    ProviderEvent,
    TransientProviderError,
)
from dialer.providers.events import (
    CALL_STATUS_EVENT,
    call_record_from_payload,
    parse_event_payload,
)
from dialer.providers.ratelimit import CallRateLimiter, RateLimited
from dialer.providers.retry_after import parse_retry_after
from dialer.settings import Settings

PROVIDER_NAME: Final = "http"
CALLS_PATH: Final = "/v1/calls"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164_PATTERN: Final = re.compile(r"\+[1-9]\d{6,14}")
# Waiting this long for a token is cheaper than a task round trip; beyond it, retry later.
DEFAULT_MAX_LOCAL_WAIT_SECONDS: Final = 1.0
DEFAULT_PARALLEL_REQUESTS: Final = 8
_MAX_POOL_CONNECTIONS: Final = 20
_ERROR_TEXT_LIMIT: Final = 300

AgentNumbers = Mapping[str, Collection[str]] | Callable[[str], Collection[str]]
Sleep = Callable[[float], None]

log = structlog.get_logger(__name__)


class HttpVoiceProvider:
    """A VoiceProvider over httpx: one pooled client shared by every call of the process."""

    name = PROVIDER_NAME

    def __init__(
        self,
        base_url: str,
        api_key: str,
        agent_numbers: AgentNumbers,
        *,
        connect_timeout_seconds: float = 3.0,
        read_timeout_seconds: float = 10.0,
        limiter: CallRateLimiter | None = None,
        webhook_url: str | None = None,
        max_local_wait_seconds: float = DEFAULT_MAX_LOCAL_WAIT_SECONDS,
        parallel_requests: int = DEFAULT_PARALLEL_REQUESTS,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = real_utcnow,
    ) -> None:
        self._numbers_of = _numbers_lookup(agent_numbers)
        self._limiter = limiter
        self._webhook_url = webhook_url  # where events go unless a request names its own
        self._max_local_wait_seconds = max_local_wait_seconds
        self._sleep = sleep
        self._clock = clock
        self._parallel_requests = parallel_requests
        self._pool: ThreadPoolExecutor | None = None  # made on the first batch
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(read_timeout_seconds, connect=connect_timeout_seconds),
            limits=httpx.Limits(max_connections=_MAX_POOL_CONNECTIONS),
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        agent_numbers: AgentNumbers,
        limiter: CallRateLimiter | None = None,
        webhook_url: str | None = None,
    ) -> HttpVoiceProvider:
        return cls(
            settings.provider_base_url,
            settings.provider_api_key.get_secret_value(),
            agent_numbers,
            connect_timeout_seconds=settings.provider_connect_timeout_seconds,
            read_timeout_seconds=settings.provider_read_timeout_seconds,
            limiter=limiter,
            webhook_url=webhook_url,
            parallel_requests=settings.provider_parallel_requests,
        )

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        """Place a call; the same idempotency key never places a second call."""
        record = self._place(request, None)
        assert not isinstance(record, NotSent)  # no gate, nothing held back
        return record

    def place_calls(
        self, requests: Sequence[PlaceCallRequest], gate: Gate | None = None
    ) -> list[Placement]:
        """Place a batch with up to ``parallel_requests`` requests in flight at once.

        A dispatch chunk placed one request after another waits out every round
        trip in turn; overlapping them keeps a worker's chunk to a few round trips.
        The fleet's rate limit still applies to every request, and ``gate`` is asked
        for each request after its rate-limit wait, just before it is sent.
        """
        if len(requests) <= 1 or self._parallel_requests <= 1:
            return [self._place_one(request, gate) for request in requests]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._parallel_requests, "provider-call")
        return list(self._pool.map(partial(self._place_one, gate=gate), requests))

    def _place_one(self, request: PlaceCallRequest, gate: Gate | None) -> Placement:
        try:
            return self._place(request, gate)
        except (TransientProviderError, PermanentProviderError) as exc:
            return exc

    def _place(self, request: PlaceCallRequest, gate: Gate | None) -> CallRecord | NotSent:
        check_call_request(request, self._numbers_of)
        if request.webhook_url is None and self._webhook_url is not None:
            request = replace(request, webhook_url=self._webhook_url)
        self._take_token()
        # After the token: the rate-limit wait can take a while, the send does not.
        if gate is not None and not gate(request):
            return NotSent(request.idempotency_key)
        headers = {IDEMPOTENCY_HEADER: request.idempotency_key}
        response = self._send(
            "POST", CALLS_PATH, "place_call", json=call_request_body(request), headers=headers
        )
        return _record_from(response)

    def get_call(self, call_id: str) -> CallRecord:
        """The call record as the provider has it now (reconciliation)."""
        path = f"{CALLS_PATH}/{quote(call_id, safe='')}"
        return _record_from(self._send("GET", path, "get_call"))

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """Turn a webhook body into a ProviderEvent; raise ValueError naming the bad field."""
        return parse_call_event(payload)

    def close(self) -> None:
        """Close the pooled connections (and the threads of batch placement)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._client.close()

    def _take_token(self) -> None:
        """Wait briefly for the fleet's rate limit, or give the task back to retry later."""
        if self._limiter is None:
            return
        waited = 0.0
        while (wait := self._limiter.acquire()) > 0:
            if waited + wait > self._max_local_wait_seconds:
                log.info("provider_call_throttled", wait_seconds=round(wait, 3))
                raise RateLimited(
                    f"provider call budget spent; next token in {wait:.2f} s",
                    retry_after_seconds=wait,
                    kind="call_budget",
                )
            self._sleep(wait)
            waited += wait

    def _send(self, method: str, path: str, operation: str, **kwargs: Any) -> httpx.Response:
        try:
            with metrics.provider_request(PROVIDER_NAME, operation):
                response = self._client.request(method, path, **kwargs)
        except _NOT_SENT_ERRORS as exc:
            # Raised before the request could leave: the provider knows nothing of it.
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network"
            raise TransientProviderError(
                f"{method} {path}: {_kind(exc)}: {exc}", kind=kind, nothing_placed=True
            ) from exc
        except httpx.TimeoutException as exc:
            # The request may have reached the provider: retry with the same key.
            raise TransientProviderError(
                f"{method} {path}: timed out ({_kind(exc)})", kind="timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{method} {path}: {_kind(exc)}: {exc}", kind="network"
            ) from exc
        error = error_for_response(response, self._clock())
        if error is None:
            return response
        throttled = response.status_code == httpx.codes.TOO_MANY_REQUESTS
        if throttled and self._limiter is not None and isinstance(error, TransientProviderError):
            self._limiter.slow_down(error.retry_after_seconds)  # the whole fleet backs off
        log.info("provider_request_refused", method=method, status=response.status_code)
        raise error


def parse_call_event(payload: Mapping[str, Any]) -> ProviderEvent:
    """A webhook body as a ProviderEvent (no client needed: the ingress uses this)."""
    kind = payload.get("type")
    if kind != CALL_STATUS_EVENT:
        raise ValueError(f"event: field 'type' must be {CALL_STATUS_EVENT!r}, got {kind!r}")
    return parse_event_payload(payload, provider=PROVIDER_NAME)


def _numbers_lookup(agent_numbers: AgentNumbers) -> Callable[[str], Collection[str]]:
    if callable(agent_numbers):
        return agent_numbers
    return lambda agent_id: agent_numbers.get(agent_id, ())


# Raised before the request could leave: nothing reached the provider.
_NOT_SENT_ERRORS: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _kind(exc: Exception) -> str:
    return type(exc).__name__


# --------------------------------------------------------------------------- requests


def check_call_request(
    request: PlaceCallRequest, numbers_of: Callable[[str], Collection[str]]
) -> None:
    """Refuse what the provider would refuse, before spending a request (and a token)."""
    if not request.idempotency_key:
        raise PermanentProviderError("idempotency_key: required", code="validation_error")
    if not request.agent_id:
        raise PermanentProviderError("agent_id: required", code="validation_error")
    if not E164_PATTERN.fullmatch(request.to):
        raise PermanentProviderError(
            f"to: {request.to!r} is not an E.164 number (+, country code, up to 15 digits)",
            code="invalid_number",
        )
    if request.from_number is None:
        return  # the provider uses the agent's primary number
    allowed = numbers_of(request.agent_id)
    if request.from_number not in allowed:
        raise PermanentProviderError(
            f"from_number: {request.from_number} is not attached to agent {request.agent_id}"
            f" (its numbers: {', '.join(sorted(allowed)) or 'none known'})",
            code="from_number_not_on_agent",
        )


def call_request_body(request: PlaceCallRequest) -> dict[str, Any]:
    """The POST /v1/calls body; optional fields are left out so the agent's defaults apply."""
    body: dict[str, Any] = {
        "agent_id": request.agent_id,
        "to": request.to,
        "context": dict(request.context),
        "metadata": dict(request.metadata),
    }
    optional = {
        "from_number": request.from_number,
        "instructions": request.instructions,
        "webhook_url": request.webhook_url,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


# --------------------------------------------------------------------------- responses


def _record_from(response: httpx.Response) -> CallRecord:
    """Read a 2xx body as a call record; an unreadable one says which field is wrong."""
    try:
        return call_record_from_payload(response.json(), where="call")
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise PermanentProviderError(
            f"provider answered {response.status_code} with an unreadable call record: {exc}",
            code="bad_response",
        ) from exc


def error_for_response(response: httpx.Response, now: datetime) -> ProviderError | None:
    """The error a non-2xx response stands for, or None for success."""
    status = response.status_code
    if response.is_success:
        return None
    detail = describe_error_body(response)
    if status == httpx.codes.TOO_MANY_REQUESTS or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        return TransientProviderError(
            f"provider answered {status}: {detail.message}",
            retry_after_seconds=retry_after,
            kind="rate_limited" if status == httpx.codes.TOO_MANY_REQUESTS else "server_error",
            # 502/504 are a gateway's: the request may have got in, the answer not out.
            nothing_placed=status not in (httpx.codes.BAD_GATEWAY, httpx.codes.GATEWAY_TIMEOUT),
        )
    return PermanentProviderError(
        f"provider refused the request ({status}): {detail.message}",
        code=_permanent_code(status, detail),
    )


@dataclass(frozen=True)
class ErrorDetail:
    """What an error body says: the provider's code, the fields at fault, a message."""

    code: str | None
    fields: list[tuple[str, str]]
    message: str


def describe_error_body(response: httpx.Response) -> ErrorDetail:
    """Read ``{"error": {code, message, fields: [{field, reason}]}}`` or FastAPI's ``detail``."""
    try:
        body = response.json()
    except ValueError:
        return ErrorDetail(None, [], response.text[:_ERROR_TEXT_LIMIT] or response.reason_phrase)
    if not isinstance(body, Mapping):
        return ErrorDetail(None, [], str(body)[:_ERROR_TEXT_LIMIT])
    error = body.get("error")
    if isinstance(error, Mapping):
        return _detail_from_error_object(error)
    return _detail_from_fastapi(body)


def _detail_from_error_object(error: Mapping[str, Any]) -> ErrorDetail:
    raw_fields = error.get("fields")
    fields = [
        (str(item.get("field", "?")), str(item.get("reason", "invalid")))
        for item in (raw_fields if isinstance(raw_fields, list) else [])
        if isinstance(item, Mapping)
    ]
    code = error.get("code")
    message = _fields_text(fields) or str(error.get("message") or code or "no reason given")
    return ErrorDetail(str(code) if code else None, fields, message)


def _detail_from_fastapi(body: Mapping[str, Any]) -> ErrorDetail:
    detail = body.get("detail")
    if not isinstance(detail, list):
        return ErrorDetail(None, [], str(detail or body)[:_ERROR_TEXT_LIMIT])
    fields = [
        (".".join(str(part) for part in item.get("loc", []) if part != "body"), str(item["msg"]))
        for item in detail
        if isinstance(item, Mapping) and "msg" in item
    ]
    return ErrorDetail("validation_error", fields, _fields_text(fields) or "invalid request")


def _fields_text(fields: list[tuple[str, str]]) -> str:
    return "; ".join(f"{name}: {reason}" for name, reason in fields)


def _permanent_code(status: int, detail: ErrorDetail) -> str:
    """A bad ``to`` ends the customer's calling (invalid_number); other codes do not."""
    if any(name == "to" for name, _ in detail.fields):
        return "invalid_number"
    if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        return "unauthorized"
    if status == httpx.codes.NOT_FOUND:
        return "not_found"
    return detail.code or "validation_error"
