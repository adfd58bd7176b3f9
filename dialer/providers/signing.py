"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<raw body>"`` with a shared secret.

The sender (a provider, the sandbox server) signs; the ingress verifies. The timestamp
is part of the signed text, so an old request replayed later fails the tolerance
check, and a captured signature cannot be moved to another body.

Headers: ``X-Dialer-Timestamp`` (integer Unix seconds) and ``X-Dialer-Signature``
(``v1=<hex digest>``; several comma-separated values are accepted during a secret
rotation).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Dialer-Timestamp"
SIGNATURE_HEADER = "X-Dialer-Signature"
SCHEME = "v1"


class SignatureError(ValueError):
    """The request is not signed, forged, or too old. The message is safe to log."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def sign_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers to send with `body` at Unix time `timestamp`."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance_seconds: int
) -> int:
    """Return the signed timestamp, or raise SignatureError saying what is wrong.

    `headers` must be case-insensitive (Starlette's and httpx's are).
    """
    raw_ts = headers.get(TIMESTAMP_HEADER)
    raw_sig = headers.get(SIGNATURE_HEADER)
    if not raw_ts or not raw_sig:
        raise SignatureError("missing signature headers")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise SignatureError("timestamp is not an integer") from None
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(f"timestamp outside the {tolerance_seconds} s tolerance")
    expected = signature(secret, timestamp, body)
    offered = [part.strip() for part in raw_sig.split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise SignatureError("signature does not match")
    return timestamp
