"""What a worker process needs, built once per process: runtime, providers, limits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dialer.bootstrap import Runtime, bootstrap
from dialer.clock import utcnow
from dialer.providers.base import MessageProvider, VoiceProvider
from dialer.providers.simulated import (
    SimulatedMessageProvider,
    SimulatedVoiceProvider,
    SimulationProfile,
    build_simulated_providers,
)
from dialer.services.campaigns import legal_bound
from dialer.services.dispatch import DispatchLimits


@dataclass(frozen=True)
class Worker:
    runtime: Runtime
    voice: VoiceProvider
    messages: MessageProvider
    simulator: SimulatedVoiceProvider | None
    message_simulator: SimulatedMessageProvider | None
    limits: DispatchLimits


@lru_cache(maxsize=1)
def worker() -> Worker:
    runtime = bootstrap()
    cfg = runtime.settings
    profile = SimulationProfile.from_mapping(cfg.simulation)
    voice, messages = build_simulated_providers(
        runtime.redis_url, lambda: utcnow(cfg), profile, cfg.simulation_namespace
    )
    limits = DispatchLimits(legal=legal_bound(cfg), max_tries=cfg.dispatch_max_tries)
    return Worker(runtime, voice, messages, voice, messages, limits)
