"""What a worker process needs, built once per process: runtime, providers, limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from dialer.composition.providers import build_providers
from dialer.composition.runtime import Runtime, bootstrap
from dialer.providers.base import MessageProvider, VoiceProvider
from dialer.providers.registry import EventSource
from dialer.providers.sendgrid_events import sendgrid_aware
from dialer.providers.whatsapp import whatsapp_aware
from dialer.services.campaigns import legal_bound
from dialer.services.dispatch import DispatchLimits
from dialer.services.inbox import Parser


@dataclass(frozen=True)
class Worker:
    runtime: Runtime
    voice: VoiceProvider
    messages: MessageProvider
    event_source: EventSource | None  # the simulator's pump; None when events are webhooks
    limits: DispatchLimits

    @property
    def parse_event(self) -> Parser:
        """Any stored inbox row: WhatsApp Cloud bodies, SendGrid e-mail events, else the
        voice provider's events."""
        return sendgrid_aware(whatsapp_aware(self.voice.parse_event))


@lru_cache(maxsize=1)
def worker() -> Worker:
    """This process's worker parts (Celery tasks and signals use them), built once."""
    runtime = bootstrap()
    cfg = runtime.settings
    providers = build_providers(cfg, runtime.redis_url, runtime.session)
    limits = DispatchLimits(
        legal=legal_bound(cfg),
        max_tries=cfg.dispatch_max_tries,
        window_margin=timedelta(seconds=cfg.dispatch_window_margin_seconds),
    )
    return Worker(runtime, providers.voice, providers.messages, providers.event_source, limits)
