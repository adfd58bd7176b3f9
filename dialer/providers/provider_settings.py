"""What every hosted provider's settings model shares: timeouts, the call budget, secrets.

Each adapter module (vapi, retell, twilio_voice, elevenlabs) has its own ``Settings``
built on ``HostedProviderSettings``, read from ``DIALER_<PROVIDER>_*``. Here:

- no secret has a default, and a placeholder or a value shorter than
  ``MIN_SECRET_LENGTH`` is refused with a message naming the field (the same
  rule as the project's settings: no default or public secret with a real provider);
- ``bucket_limits`` and ``limiter_key`` turn the documented call rate into the
  fleet's token bucket, one per provider *account* (two Twilio accounts get two
  buckets; the key names the account by a digest, never by its secret);
- ``fleet_limiter`` makes that bucket in Redis (``dialer.providers.ratelimit``).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Final

import redis
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings

from dialer.providers.ratelimit import BucketLimits, RedisRateLimiter

MIN_SECRET_LENGTH: Final = 8
# Values copied from examples and docs; a deployment that keeps one is not secured.
PUBLIC_PLACEHOLDERS: Final = frozenset(
    {"changeme", "change-me", "secret", "password", "test", "example", "your-api-key"}
)


class HostedProviderSettings(BaseSettings):
    """The fields and checks every hosted voice provider's settings have."""

    connect_timeout_seconds: float = Field(default=3.0, gt=0, description="Connect timeout.")
    read_timeout_seconds: float = Field(default=10.0, gt=0, description="Read timeout.")
    calls_per_second: float = Field(
        default=1.0, gt=0, description="Calls per second sent to the provider (the fleet's bucket)."
    )
    parallel_requests: int = Field(
        default=4,
        ge=1,
        le=20,
        description="Placement requests of one dispatch chunk in flight at once.",
    )
    burst: int | None = Field(
        default=None, ge=1, description="Calls allowed at once on top of the rate; default 1 s."
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_placeholder_secrets(cls, value: Any, info: ValidationInfo) -> Any:
        # Per field, so the start-up error names the variable (DIALER_VAPI_API_KEY).
        if isinstance(value, SecretStr):
            check_secret(str(info.field_name), value)
        return value

    def account_id(self) -> str:
        """Names the account in the limiter's key; a digest of the API key by default."""
        key: Any = getattr(self, "api_key", None)
        raw = key.get_secret_value() if isinstance(key, SecretStr) else "default"
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    def bucket_limits(self) -> BucketLimits:
        burst = self.burst or max(1, math.ceil(self.calls_per_second))
        return BucketLimits(rate_per_second=self.calls_per_second, burst=burst)

    def limiter_key(self, provider: str) -> str:
        return f"ratelimit:provider_calls:{provider}:{self.account_id()}"


def check_secret(name: str, value: SecretStr) -> None:
    text = value.get_secret_value().strip()
    if len(text) < MIN_SECRET_LENGTH or text.lower() in PUBLIC_PLACEHOLDERS:
        raise ValueError(
            f"{name}: not a usable secret (empty, a placeholder, or shorter than"
            f" {MIN_SECRET_LENGTH} characters); set the provider's real value"
        )


def fleet_limiter(
    settings: HostedProviderSettings, provider: str, client: redis.Redis
) -> RedisRateLimiter:
    """The Redis bucket every worker shares for this provider account."""
    return RedisRateLimiter(client, settings.bucket_limits(), settings.limiter_key(provider))
