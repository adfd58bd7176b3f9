"""Wire a process's providers from the settings: simulated, or the real HTTP channels.

`provider = "simulated"`: the in-process simulator (Redis-backed) for voice and messages.
`provider = "http"`: the seed 004 voice API over httpx (paced by the fleet-wide token
bucket), WhatsApp Cloud-style messages and SMTP email; their events arrive through the
webhook ingress (`dialer api`), not through the simulator's pump.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import select

from dialer.clock import utcnow
from dialer.dependencies import UnitOfWork
from dialer.providers.base import MessageProvider, SendMessageRequest, SendResult, VoiceProvider
from dialer.providers.email_smtp import SmtpEmailProvider
from dialer.providers.http_voice import HttpVoiceProvider
from dialer.providers.ratelimit import provider_rate_limiter
from dialer.providers.simulation import (
    SimulatedMessageProvider,
    SimulatedVoiceProvider,
    SimulationProfile,
    build_simulated_providers,
)
from dialer.providers.whatsapp import WhatsAppCloudProvider
from dialer.settings import Settings
from models import Agent, PhoneNumber

AGENT_NUMBERS_TTL_SECONDS = 60.0
WEBHOOK_PATH = "/webhooks/calls/http"


@dataclass(frozen=True)
class Providers:
    voice: VoiceProvider
    messages: MessageProvider
    simulator: SimulatedVoiceProvider | None = None  # set when events come from its pump
    message_simulator: SimulatedMessageProvider | None = None


def build_providers(settings: Settings, redis_url: str, uow: UnitOfWork) -> Providers:
    if settings.provider == "http":
        return _http_providers(settings, redis_url, uow)
    profile = SimulationProfile.from_mapping(settings.simulation)
    voice, messages = build_simulated_providers(
        redis_url, lambda: utcnow(settings), profile, settings.simulation_namespace
    )
    return Providers(voice, messages, voice, messages)


def _http_providers(settings: Settings, redis_url: str, uow: UnitOfWork) -> Providers:
    voice = HttpVoiceProvider.from_settings(
        settings,
        AgentNumbers(uow),
        limiter=provider_rate_limiter(settings, redis_url),
        webhook_url=settings.public_webhook_base_url.rstrip("/") + WEBHOOK_PATH,
    )
    whatsapp = WhatsAppCloudProvider.from_settings(
        settings,
        redis_url,
        phone_number_id=settings.whatsapp_phone_number_id,
        api_version=settings.whatsapp_api_version,
    )
    email = SmtpEmailProvider.from_settings(settings, redis_url)
    return Providers(voice, ChannelRouter({"whatsapp": whatsapp, "email": email}))


class ChannelRouter:
    """One MessageProvider for the pipeline, one adapter per channel behind it."""

    name = "channels"

    def __init__(self, by_channel: dict[str, MessageProvider]) -> None:
        self._by_channel = by_channel

    def send(self, request: SendMessageRequest) -> SendResult:
        adapter = self._by_channel.get(request.channel)
        if adapter is None:
            raise ValueError(f"no adapter for channel {request.channel!r}")
        return adapter.send(request)


class AgentNumbers:
    """Provider agent id -> its caller-ID numbers, read from the database, cached a minute.

    The HTTP adapter refuses a from_number that is not the agent's before any request.
    """

    def __init__(self, uow: UnitOfWork, clock: Callable[[], float] = time.monotonic) -> None:
        self._uow = uow
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def __call__(self, provider_agent_id: str) -> Collection[str]:
        cached = self._cache.get(provider_agent_id)
        if cached is not None and self._clock() - cached[0] < AGENT_NUMBERS_TTL_SECONDS:
            return cached[1]
        with self._uow() as session:
            numbers = frozenset(
                session.scalars(
                    select(PhoneNumber.e164)
                    .join(Agent, Agent.id == PhoneNumber.agent_id)
                    .where(Agent.provider_agent_id == provider_agent_id)
                )
            )
        self._cache[provider_agent_id] = (self._clock(), numbers)
        return numbers
