"""What every provider's webhook check shares: freshness, and one delivery per signature.

Each provider signs in its own way (see the adapter modules); what is done with a
valid signature is the same everywhere:

- **stale**: the signed timestamp is further from our clock than the tolerance, so
  a request captured long ago and sent again is refused (``SignatureError``);
- **replayed**: the same signed request inside the tolerance window is refused the
  second time (``WebhookReplayed``) when a replay guard is given. The ingress keeps
  the inbox keyed by event id as well, so a guard is a second line, not the only one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from dialer.providers.seen_once import SeenOnce
from dialer.providers.signing import SignatureError

# (headers, raw body, the URL as the provider called it, now in Unix seconds) -> None or raise
WebhookVerifier = Callable[[Mapping[str, str], bytes, str, float], None]
# Unix timestamps past this are in milliseconds (this one is in the year 2286 in seconds).
_MILLISECONDS_FROM: Final = 10_000_000_000


# A provider module's ``verify_webhook(headers, body, url, secret, now, **options)``;
# its keyword options differ per scheme (mode, tolerance_seconds, replay_guard).
SchemeVerifier = Callable[..., None]


def bound_verifier(verify: SchemeVerifier, secret: str, **options: Any) -> WebhookVerifier:
    """``verify`` with one account's secret and options bound: what the registry calls."""

    def check(headers: Mapping[str, str], body: bytes, url: str, now: float) -> None:
        verify(headers, body, url, secret, now, **options)

    return check


class WebhookReplayed(SignatureError):
    """A validly signed request that was already received once. Safe to log."""


def unix_seconds(raw: str | int | float) -> float:
    """A header's timestamp in seconds, whether the provider counts seconds or milliseconds."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SignatureError("timestamp is not a number") from None
    return value / 1000 if value >= _MILLISECONDS_FROM else value


def check_fresh(signed_at: float, now: float, tolerance_seconds: float) -> None:
    if abs(now - signed_at) > tolerance_seconds:
        raise SignatureError(f"timestamp outside the {tolerance_seconds:g} s tolerance")


def check_first_delivery(
    guard: SeenOnce | None, provider: str, signature: str, ttl_seconds: float
) -> None:
    """Refuse a second delivery of one signature while it would still pass the clock check."""
    if guard is None:
        return
    fingerprint = hashlib.sha256(signature.encode()).hexdigest()
    # Twice the tolerance: a signature is fresh from tolerance before until tolerance after.
    if not guard.claim(f"webhook:{provider}:{fingerprint}", 2 * ttl_seconds):
        raise WebhookReplayed("this signed request was already received")
