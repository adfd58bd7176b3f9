"""Send at most once per idempotency key, for providers that have no idempotency of their own.

The WhatsApp Cloud API and SMTP accept the same message twice. A Celery task runs at
least once, so before sending, a message adapter claims its idempotency key in Redis
(``SET NX`` with a short TTL); after the provider accepts, it records the provider's
message id under the key for days. A re-sent task then finds the id and returns it
without sending.

What this cannot close: if the process dies (or the response is lost) after the
provider accepted the message but before the id is recorded, the claim expires and a
retry sends again. Without provider-side idempotency that window can only be narrowed,
never removed; the caller's database row (status ``sent`` with the provider id) is the
second guard once it commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Final

import redis

from dialer.providers.base import TransientProviderError

SENT_PREFIX: Final = "sent:"
CLAIM_PREFIX: Final = "claim:"
DEFAULT_CLAIM_TTL_SECONDS: Final = 60
DEFAULT_REMEMBER_TTL_SECONDS: Final = 7 * 24 * 3600

# Claim the key, or return what holds it (a claim or a sent id) and its TTL, atomically.
# KEYS: the key. ARGV: claim value, claim TTL. Returns {"", 0} when claimed.
_CLAIM_LUA: Final = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return {'', 0} end
return {redis.call('GET', KEYS[1]) or '', redis.call('TTL', KEYS[1])}
"""

# Release a claim only if it is still ours (it may have expired and been taken since).
_RELEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SendInFlight(TransientProviderError):
    """Another worker is sending this message right now; try again after its claim expires."""


class SendOnceGuard:
    """Per-key claim and memory of the provider message id, under ``{namespace}:idem:``."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        *,
        claim_ttl_seconds: int = DEFAULT_CLAIM_TTL_SECONDS,
        remember_ttl_seconds: int = DEFAULT_REMEMBER_TTL_SECONDS,
    ) -> None:
        self._redis = client
        self._prefix = f"{namespace}:idem:"
        self._claim_ttl_seconds = claim_ttl_seconds
        self._remember_ttl_seconds = remember_ttl_seconds
        self._claim = client.register_script(_CLAIM_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    def send_once(self, idempotency_key: str, send: Callable[[], str]) -> str:
        """Return the provider message id for the key, calling ``send`` only if none exists.

        Raises SendInFlight while another worker holds the key; whatever ``send`` raises
        releases the claim, so a retry may send.
        """
        key = f"{self._prefix}{idempotency_key}"
        token = f"{CLAIM_PREFIX}{uuid.uuid4().hex}"
        holder, ttl = self._claim(keys=[key], args=[token, self._claim_ttl_seconds])
        held_by = _text(holder)
        if held_by.startswith(SENT_PREFIX):
            return held_by.removeprefix(SENT_PREFIX)
        if held_by:
            raise SendInFlight(
                f"message {idempotency_key!r} is being sent by another worker",
                retry_after_seconds=float(max(int(ttl), 1)),
            )
        try:
            provider_message_id = send()
        except BaseException:
            self._release(keys=[key], args=[token])
            raise
        self._redis.set(key, f"{SENT_PREFIX}{provider_message_id}", ex=self._remember_ttl_seconds)
        return provider_message_id


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return value or ""
