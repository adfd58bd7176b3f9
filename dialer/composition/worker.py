"""What a worker process needs, built once per process: runtime, providers, limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from dialer.composition.providers import build_fleet
from dialer.composition.runtime import Runtime, bootstrap
from dialer.providers.base import MessageProvider, VoiceProvider
from dialer.providers.registry import EventSource
from dialer.providers.sendgrid_events import sendgrid_aware
from dialer.providers.twilio_sms import sms_aware
from dialer.providers.voice_fleet import fleet_of
from dialer.providers.webhook_sender import HttpWebhookSender, WebhookSender
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
    # Account event webhooks (issue 17): built on first use, see webhook_sender().
    _webhook_sender: list[WebhookSender] = field(default_factory=list, repr=False)

    def webhook_sender(self) -> WebhookSender:
        """The process's HTTP client for account endpoints (one, kept)."""
        if not self._webhook_sender:
            cfg = self.runtime.settings
            self._webhook_sender.append(
                HttpWebhookSender(
                    cfg.webhook_timeout_seconds, allow_private=cfg.webhook_allow_private_urls
                )
            )
        return self._webhook_sender[0]

    @property
    def parse_event(self) -> Parser:
        """Any stored inbox row: WhatsApp Cloud, Twilio SMS and SendGrid e-mail bodies,
        else the voice provider's events."""
        return sendgrid_aware(sms_aware(whatsapp_aware(self.voice.parse_event)))

    def parser_for(self, source: str) -> Parser | None:
        """A stored row's parser by the provider it came from (several voice providers)."""
        parse = fleet_of(self.voice).parser_for(source)
        return None if parse is None else sendgrid_aware(sms_aware(whatsapp_aware(parse)))


@lru_cache(maxsize=1)
def worker() -> Worker:
    """This process's worker parts (Celery tasks and signals use them), built once."""
    runtime = bootstrap()
    cfg = runtime.settings
    # The other providers agents name are built on first use; a worker checks their
    # settings at start (check_providers_in_use, on worker_init), without a database
    # read here: building the parts must not need the schema.
    providers = build_fleet(cfg, runtime.redis_url, runtime.session, names=())
    limits = DispatchLimits(
        legal=legal_bound(cfg),
        max_tries=cfg.dispatch_max_tries,
        window_margin=timedelta(seconds=cfg.dispatch_window_margin_seconds),
    )
    return Worker(runtime, providers.voice, providers.messages, providers.event_source, limits)
