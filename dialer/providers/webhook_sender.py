"""POST one signed event to an account's endpoint (issue 17): the network part.

No redirects (a 3xx is a failed try: a redirect could point anywhere), a total
timeout, at most ``MAX_RESPONSE_BYTES`` of the answer read (and thrown away), no
proxy from the environment. Unless private addresses are allowed (tests, sandbox),
the host's addresses are resolved and refused when any is private, loopback or
reserved, so a URL cannot make the dialer call into its own network.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx

from dialer.policies.webhooks import address_problem, url_problem

MAX_RESPONSE_BYTES: Final = 64 * 1024
USER_AGENT: Final = "campaign-dialer-webhooks/1"
Resolve = Callable[..., list[tuple[Any, ...]]]


@dataclass(frozen=True)
class SendResult:
    """How one try went: the HTTP status if any answer came, our words for what failed."""

    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class WebhookSender(Protocol):
    def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult: ...


class HttpWebhookSender:
    """The real sender, over httpx (one client, kept for the process)."""

    def __init__(
        self,
        timeout_seconds: float,
        *,
        allow_private: bool,
        client: httpx.Client | None = None,
        resolve: Resolve = socket.getaddrinfo,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult:
        refused = self._refusal(url)
        if refused is not None:
            return SendResult(None, f"refused: {refused}")
        try:
            with self._client.stream("POST", url, content=body, headers=dict(headers)) as answer:
                _drain(answer)
                code = answer.status_code
        except httpx.TimeoutException:
            return SendResult(None, "timeout")
        except httpx.HTTPError as exc:
            return SendResult(None, f"network error ({type(exc).__name__})")
        if 200 <= code < 300:
            return SendResult(code, None)
        if 300 <= code < 400:
            return SendResult(code, f"HTTP {code}: redirects are not followed")
        return SendResult(code, f"HTTP {code}")

    def _refusal(self, url: str) -> str | None:
        problem = url_problem(url, allow_private=self._allow_private)
        if problem is not None or self._allow_private:
            return problem
        host = urlsplit(url).hostname or ""
        try:
            found = self._resolve(host, None, proto=socket.IPPROTO_TCP)
        except OSError:
            return "the host name does not resolve"
        for *_, address in found:
            problem = address_problem(str(address[0]), allow_private=False)
            if problem is not None:
                return problem
        return None

    def close(self) -> None:
        self._client.close()


def _drain(answer: httpx.Response) -> None:
    """Read at most MAX_RESPONSE_BYTES: an endpoint's answer body is never used."""
    read = 0
    for chunk in answer.iter_raw():
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            break
