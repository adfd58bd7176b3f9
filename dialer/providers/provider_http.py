"""One provider HTTP API over httpx: the rate-limit token, the request, what its failure means.

Shared by the voice adapters (Vapi, Retell, Twilio, ElevenLabs). What matters most
here is telling apart the failures after which the provider *may* have acted from
those after which it certainly did not, because most of these providers honour no
idempotency key and a call sent twice rings the customer twice:

=====================================================  ==================  ============
what happened                                          raised              reached it?
=====================================================  ==================  ============
connect refused/timed out, no pooled connection        TransientProvider…  no
429, 500, 503                                          TransientProvider…  no (assumed)
read/write timeout, connection reset mid-answer,       AnswerLost          maybe
  502/504 from a gateway
other 4xx                                              PermanentProvider…  no
=====================================================  ==================  ============

A 429 also slows the whole fleet down through the shared limiter (``slow_down``
with the Retry-After), exactly as the seed 004 adapter does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx
import structlog

from dialer import metrics
from dialer.clock import real_utcnow
from dialer.dependencies import Clock
from dialer.providers.base import PermanentProviderError, TransientProviderError
from dialer.providers.ratelimit import CallRateLimiter, RateLimited
from dialer.providers.retry_after import parse_retry_after

DEFAULT_MAX_LOCAL_WAIT_SECONDS: Final = 1.0
_MAX_POOL_CONNECTIONS: Final = 20
_ERROR_TEXT_LIMIT: Final = 300
# Gateways answer these when the request got in but the answer did not come out.
_AMBIGUOUS_STATUSES: Final = frozenset({502, 504})
# Raised before the request could leave: nothing reached the provider.
_NOT_SENT_ERRORS: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)

Sleep = Callable[[float], None]
# What an adapter says a refusal stands for: (status, parsed body, message) -> our code.
RefusalCode = Callable[[int, Any, str], str]

log = structlog.get_logger(__name__)


class AnswerLost(TransientProviderError):
    """The request may have reached the provider, but its answer never came back."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="answer_lost")


class ProviderHttp:
    """A pooled httpx client for one provider account, with the fleet's rate limit."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout_seconds: float,
        read_timeout_seconds: float,
        limiter: CallRateLimiter | None = None,
        refusal_code: RefusalCode | None = None,
        auth: httpx.Auth | None = None,
        max_local_wait_seconds: float = DEFAULT_MAX_LOCAL_WAIT_SECONDS,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = real_utcnow,
    ) -> None:
        self.provider = provider
        self._limiter = limiter
        self._refusal_code = refusal_code or default_refusal_code
        self._max_local_wait_seconds = max_local_wait_seconds
        self._sleep = sleep
        self._clock = clock
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Accept": "application/json", **headers},
            auth=auth,
            timeout=httpx.Timeout(read_timeout_seconds, connect=connect_timeout_seconds),
            limits=httpx.Limits(max_connections=_MAX_POOL_CONNECTIONS),
            transport=transport,
        )

    def take_token(self) -> None:
        """Wait briefly for the fleet's rate limit, or give the task back to retry later."""
        if self._limiter is None:
            return
        waited = 0.0
        while (wait := self._limiter.acquire()) > 0:
            if waited + wait > self._max_local_wait_seconds:
                log.info("provider_call_throttled", provider=self.provider, wait_seconds=wait)
                raise RateLimited(
                    f"{self.provider} call budget spent; next token in {wait:.2f} s",
                    retry_after_seconds=wait,
                    kind="call_budget",
                )
            self._sleep(wait)
            waited += wait

    def send(self, method: str, path: str, operation: str, **kwargs: Any) -> httpx.Response:
        """Send one request; a failure is raised as the error its table row above names."""
        where = f"{self.provider} {method} {path}"
        try:
            with metrics.provider_request(self.provider, operation):
                response = self._client.request(method, path, **kwargs)
        except _NOT_SENT_ERRORS as exc:
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network"
            raise TransientProviderError(
                f"{where}: {type(exc).__name__}", kind=kind, nothing_placed=True
            ) from exc
        except httpx.TransportError as exc:
            raise AnswerLost(f"{where}: answer lost ({type(exc).__name__})") from exc
        if response.is_success:
            return response
        raise self._error_for(response, where)

    def json(self, response: httpx.Response, where: str) -> Any:
        """The body of a 2xx answer; an unreadable one is the provider's fault, said so."""
        try:
            return response.json()
        except ValueError as exc:
            raise PermanentProviderError(
                f"{self.provider} answered {response.status_code} to {where} with no JSON",
                code="bad_response",
            ) from exc

    def close(self) -> None:
        self._client.close()

    def _error_for(self, response: httpx.Response, where: str) -> Exception:
        status = response.status_code
        body, message = _describe(response)
        if status in _AMBIGUOUS_STATUSES:
            return AnswerLost(f"{where}: gateway answered {status}: {message}")
        if status == httpx.codes.TOO_MANY_REQUESTS or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            throttled = status == httpx.codes.TOO_MANY_REQUESTS
            if throttled and self._limiter is not None:
                self._limiter.slow_down(retry_after)  # the whole fleet backs off
            log.info("provider_request_refused", provider=self.provider, status=status)
            return TransientProviderError(
                f"{where}: {status}: {message}",
                retry_after_seconds=retry_after,
                kind="rate_limited" if throttled else "server_error",
                nothing_placed=True,
            )
        code = self._refusal_code(status, body, message)
        return PermanentProviderError(f"{where}: refused ({status}): {message}", code=code)


def default_refusal_code(status: int, body: Any, message: str) -> str:
    """Our code for a 4xx: authorisation and missing objects are told apart, the rest is 4xx."""
    if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        return "unauthorized"
    if status == httpx.codes.NOT_FOUND:
        return "not_found"
    return "validation_error"


def _describe(response: httpx.Response) -> tuple[Any, str]:
    """The parsed body (or None) and a short message read from the usual error fields."""
    try:
        body = response.json()
    except ValueError:
        return None, (response.text[:_ERROR_TEXT_LIMIT] or response.reason_phrase)
    return body, _message_of(body)[:_ERROR_TEXT_LIMIT]


def _message_of(body: Any) -> str:
    if isinstance(body, Mapping):
        for name in ("message", "detail", "error", "error_message"):
            if body.get(name):
                return _message_of(body[name])
        return str(body)
    if isinstance(body, list):
        return "; ".join(_message_of(item) for item in body)
    return str(body)
