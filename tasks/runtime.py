"""What a worker process needs, built once per process: runtime, providers, limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from dialer.bootstrap import Runtime, bootstrap
from dialer.providers.base import MessageProvider, VoiceProvider
from dialer.providers.simulation import SimulatedMessageProvider, SimulatedVoiceProvider
from dialer.providers.whatsapp import whatsapp_aware
from dialer.services.campaigns import legal_bound
from dialer.services.dispatch import DispatchLimits
from dialer.services.inbox import Parser
from dialer.wiring import build_providers


@dataclass(frozen=True)
class Worker:
    runtime: Runtime
    voice: VoiceProvider
    messages: MessageProvider
    simulator: SimulatedVoiceProvider | None
    message_simulator: SimulatedMessageProvider | None
    limits: DispatchLimits

    @property
    def parse_event(self) -> Parser:
        """Any stored inbox row: WhatsApp Cloud bodies, else the voice provider's events."""
        return whatsapp_aware(self.voice.parse_event)


@lru_cache(maxsize=1)
def worker() -> Worker:
    runtime = bootstrap()
    cfg = runtime.settings
    providers = build_providers(cfg, runtime.redis_url, runtime.session)
    limits = DispatchLimits(
        legal=legal_bound(cfg),
        max_tries=cfg.dispatch_max_tries,
        window_margin=timedelta(seconds=cfg.dispatch_window_margin_seconds),
    )
    return Worker(
        runtime,
        providers.voice,
        providers.messages,
        providers.simulator,
        providers.message_simulator,
        limits,
    )
