"""The one clock. Services call ``utcnow()`` once and pass ``now`` down.

For the demo the clock can run fast: with ``clock_speed`` and the two anchors set
in settings (shared by every process through the environment), simulated time is
``anchor_sim + (real_now - anchor_real) * speed``. freezegun patches the real clock,
so tests freeze this one too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialer.settings import Settings, get_settings


def real_utcnow() -> datetime:
    """The wall clock, timezone-aware UTC."""
    return datetime.now(UTC)


def utcnow(settings: Settings | None = None) -> datetime:
    """Now, in UTC: the real clock, or the simulated one when anchors are set."""
    cfg = settings or get_settings()
    real = real_utcnow()
    if cfg.clock_anchor_real is None or cfg.clock_anchor_sim is None:
        return real
    elapsed = (real - _aware(cfg.clock_anchor_real)).total_seconds()
    return _aware(cfg.clock_anchor_sim) + timedelta(seconds=elapsed * cfg.clock_speed)


def simulated_seconds(real: float, settings: Settings | None = None) -> float:
    """How much simulated time passes in `real` seconds: operational timeouts are real."""
    cfg = settings or get_settings()
    return real * cfg.clock_speed


def simulated_delta(real: float, settings: Settings | None = None) -> timedelta:
    return timedelta(seconds=simulated_seconds(real, settings))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
