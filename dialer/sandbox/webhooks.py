"""Signed webhook delivery in the background, so a POST /v1/calls answer never waits on it.

Each delivery is an asyncio task on the server's loop: it sleeps until its event is
due, signs the body with the flavour's scheme (a ``Signer``: seed 004's
``dialer.providers.signing`` by default; timestamp from the wall clock so the
receiver's replay window holds even when the sandbox's own clock runs fast), and
retries a refused or failed delivery with doubling pauses, like a real provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from dialer.providers.signing import sign_headers
from dialer.sandbox.ledger import CallLedger

# (the URL posted to, the raw body, wall-clock Unix seconds) -> the signature headers
Signer = Callable[[str, bytes, float], dict[str, str]]
JSON: str = "application/json"


def shared_secret_signer(secret: str) -> Signer:
    """Seed 004's scheme: the project's HMAC headers (the URL is not signed)."""
    return lambda _url, raw, now: sign_headers(secret, int(now), raw)


class WebhookSender:
    """Delivers webhooks on the running loop; ``start`` and ``aclose`` follow the app's life."""

    def __init__(
        self,
        signer: Signer,
        ledger: CallLedger,
        *,
        max_tries: int,
        retry_seconds: float,
        timeout_seconds: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = signer
        self._ledger = ledger
        self._max_tries = max_tries
        self._retry_seconds = retry_seconds
        self._timeout_seconds = timeout_seconds
        self._wall_clock = wall_clock
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout_seconds)

    async def aclose(self) -> None:
        """Cancel what is still waiting (the server is going away) and close connections."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def schedule(
        self, url: str, body: str | bytes, delay_seconds: float, content_type: str = JSON
    ) -> None:
        """Deliver ``body`` to ``url`` after ``delay_seconds`` (real); must run on the loop."""
        raw = body.encode() if isinstance(body, str) else body
        task = asyncio.get_running_loop().create_task(
            self._deliver(url, raw, delay_seconds, content_type)
        )
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        self._ledger.count_webhook("scheduled")

    async def _deliver(
        self, url: str, body: bytes, delay_seconds: float, content_type: str
    ) -> None:
        await asyncio.sleep(max(0.0, delay_seconds))
        for try_no in range(self._max_tries):
            if try_no:
                self._ledger.count_webhook("retried")
                await asyncio.sleep(self._retry_seconds * 2 ** (try_no - 1))
            if await self._post(url, body, content_type):
                self._ledger.count_webhook("delivered")
                return
        self._ledger.count_webhook("failed")

    async def _post(self, url: str, raw: bytes, content_type: str) -> bool:
        if self._client is None:
            raise RuntimeError("WebhookSender.start() was not awaited (the app's lifespan does)")
        headers = {"Content-Type": content_type}
        headers.update(self._signer(url, raw, self._wall_clock()))
        try:
            response = await self._client.post(url, content=raw, headers=headers)
        except httpx.HTTPError:
            return False
        return response.is_success
