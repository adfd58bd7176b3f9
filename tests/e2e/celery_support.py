"""Real worker and beat processes for integration tests, on a fast shared clock."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from dialer.clock import utcnow
from dialer.processes import fast_clock_env
from dialer.providers.simulation import (
    RedisSimulatorStore,
    SimulatedVoiceProvider,
    SimulationProfile,
)
from dialer.settings import Settings, load_settings

SPEED = 7200.0  # two simulated hours per real second


@dataclass(frozen=True)
class FastRun:
    env: dict[str, str]
    settings: Settings
    log_dir: Path

    def now(self) -> datetime:
        return utcnow(self.settings)

    def voice(self) -> SimulatedVoiceProvider:
        client = redis.Redis.from_url(self.env["DIALER_REDIS_URL"], decode_responses=True)
        profile = SimulationProfile.from_mapping(json.loads(self.env["DIALER_SIMULATION"]))
        store = RedisSimulatorStore(client, self.env["DIALER_SIMULATION_NAMESPACE"])
        return SimulatedVoiceProvider(store, self.now, profile)


def fast_run(
    database_url: str, redis_url: str, tmp: Path, sim_start: datetime, **extra: str
) -> FastRun:
    redis.Redis.from_url(redis_url).flushdb()  # no task of an earlier test may reach this worker
    env = {
        "DIALER_DATABASE_URL": database_url,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_HOME": str(tmp),
        "DIALER_SCAN_INTERVAL_SECONDS": "0.25",
        "DIALER_SIMULATION": json.dumps({"seed": 3}),
        "DIALER_SIMULATION_NAMESPACE": uuid.uuid4().hex,
        "DIALER_LOG_FORMAT": "json",
        # `dialer api` beside a real provider refuses to start without its own.
        "DIALER_UI_SESSION_SECRET": secrets.token_urlsafe(24),
        **fast_clock_env(sim_start, SPEED, datetime.now(UTC)),
        **extra,
    }
    fields: dict[str, object] = {k.removeprefix("DIALER_").lower(): v for k, v in env.items()}
    fields["simulation"] = json.loads(env["DIALER_SIMULATION"])  # the environment carries JSON
    settings = load_settings(**fields)
    return FastRun(env=env, settings=settings, log_dir=tmp / "logs")


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, logs: Path | None = None
) -> None:
    """Poll until true (a bounded wait for real processes, not a sleep into the right hour)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = ""
    if logs is not None:
        for log in sorted(logs.glob("*.log")):
            tail += f"\n--- {log.name} ---\n" + "\n".join(
                log.read_text(errors="replace").splitlines()[-15:]
            )
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")
