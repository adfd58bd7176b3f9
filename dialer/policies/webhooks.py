"""Outbound event webhooks, the pure part (issue 17): signing, retry timing, URL safety.

Signature: ``Dialer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` of the bytes
``"<t>.<raw body>"`` under the endpoint's secret (docs/OPERATIONS.md, "Event
webhooks", shows a receiver). ``verify_signature`` is what a receiver runs; the
tests' receiver runs this one.

Retries: try n (1-based) failed -> the next one ``backoff_seconds(n, jitter)`` later,
exponential from ``base`` up to ``cap``, with the jitter fraction (0..1) the caller
drew, so this module draws nothing. After ``max_attempts`` tries the delivery is
dead; after ``disable_after`` consecutive failed tries the endpoint is disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

SIGNATURE_HEADER: Final = "Dialer-Signature"
EVENT_ID_HEADER: Final = "Dialer-Event-Id"
EVENT_TYPE_HEADER: Final = "Dialer-Event-Type"
SIGNATURE_VERSION: Final = "v1"
DEFAULT_TOLERANCE_SECONDS: Final = 300
ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
# Hosts that name this machine or the cloud's metadata service whatever the DNS says.
_LOCAL_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "metadata.google.internal"})


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Dialer-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},{SIGNATURE_VERSION}={_digest(secret, body, timestamp)}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    now_unix: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its time is within tolerance.

    Any ``v1`` value may match (several appear while a secret is being rotated); a
    timestamp further than ``tolerance_seconds`` from ``now_unix`` is a replay.
    """
    timestamp, candidates = _parse_header(header)
    if timestamp is None or not candidates:
        return False
    if abs(now_unix - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, body, timestamp)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _parse_header(header: str) -> tuple[int | None, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SIGNATURE_VERSION and value:
            candidates.append(value)
    return timestamp, candidates


# --------------------------------------------------------------------------- retry timing


@dataclass(frozen=True)
class RetryPolicy:
    """How deliveries are retried (settings DIALER_WEBHOOK_*)."""

    base_seconds: float = 30.0
    cap_seconds: float = 6 * 3600.0
    max_attempts: int = 8
    disable_after: int = 20  # consecutive failed tries of one endpoint, whatever the event


@dataclass(frozen=True)
class AfterFailure:
    """What a failed try leads to: the next try's time, or none (dead)."""

    dead: bool
    next_attempt_at: datetime | None


def backoff_seconds(attempt: int, jitter: float, policy: RetryPolicy = RetryPolicy()) -> float:
    """The wait after failed try ``attempt`` (1-based): base * 2^(n-1), capped, jittered.

    ``jitter`` in [0, 1) spreads the wait over its upper half ("equal jitter"): never
    shorter than half the exponential step, so a flapping receiver is not hammered,
    and endpoints that failed together do not come back together.
    """
    step = min(policy.cap_seconds, policy.base_seconds * 2.0 ** max(attempt - 1, 0))
    return step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)


def after_failure(
    attempts: int, now: datetime, jitter: float, policy: RetryPolicy = RetryPolicy()
) -> AfterFailure:
    """``attempts`` tries made, the last one failed: when to try again, or dead."""
    if attempts >= policy.max_attempts:
        return AfterFailure(dead=True, next_attempt_at=None)
    wait = timedelta(seconds=backoff_seconds(attempts, jitter, policy))
    return AfterFailure(dead=False, next_attempt_at=now + wait)


def should_disable(consecutive_failures: int, policy: RetryPolicy = RetryPolicy()) -> bool:
    return consecutive_failures >= policy.disable_after


# --------------------------------------------------------------------------- URL safety


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why the dialer must not POST to ``url`` (None: it may), before any DNS lookup.

    Only http(s), a host, no user:password; a literal private, loopback, link-local or
    reserved address, or a local name, only when ``allow_private`` (tests, sandbox).
    The sender checks the addresses the name resolves to again (``address_problem``).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ALLOWED_SCHEMES:
        return "only http and https URLs are allowed"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed; use the signature"
    if allow_private:
        return None
    host = parts.hostname.rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return "local host names are not allowed"
    return address_problem(host, allow_private=False) if _is_ip(host) else None


def address_problem(address: str, *, allow_private: bool) -> str | None:
    """Why an IP address must not be called (None: public, or private allowed)."""
    if allow_private:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        return f"{address} is a private, loopback or reserved address"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
