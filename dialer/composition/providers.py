"""Wire a process's providers from the settings, through the provider registry.

``DIALER_PROVIDER`` names an entry of dialer.providers.catalog.PROVIDERS (or of a
registry passed in); its factory gets what only the composition root can give: the
entry's own settings, Redis, the caller-ID numbers from the database, the channels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from sqlalchemy import select

from dialer.dependencies import UnitOfWork
from dialer.providers.base import MessageProvider
from dialer.providers.catalog import PROVIDERS
from dialer.providers.registry import (
    Adapters,
    ProviderConfig,
    ProviderContext,
    Registry,
    VoiceProviderSpec,
    load_options,
)
from dialer.settings import Settings
from models import Agent, PhoneNumber

AGENT_NUMBERS_TTL_SECONDS = 60.0


def check_provider_settings(
    settings: Settings, registry: Registry = PROVIDERS
) -> tuple[VoiceProviderSpec, ProviderConfig]:
    """The entry DIALER_PROVIDER names and its own settings, validated.

    Raises SettingsError naming the setting: an unknown provider, a bad or missing
    ``DIALER_<PROVIDER>_*`` value of the entry's settings model, or a default, public
    or short value of a process-wide secret the entry (or a channel it sends through)
    uses; secrets it does not use are not asked for.
    """
    spec = registry.voice_provider(settings.provider)
    config = ProviderConfig(settings, load_options(spec))
    registry.check_secrets(spec, settings)
    return spec, config


def build_providers(
    settings: Settings, redis_url: str, uow: UnitOfWork, registry: Registry = PROVIDERS
) -> Adapters:
    spec, config = check_provider_settings(settings, registry)
    numbers = AgentNumbers(uow)

    def channels() -> dict[str, MessageProvider]:
        return {
            name: channel.build(_context(ProviderConfig(settings, load_options(channel))))
            for name, channel in registry.channels.items()
        }

    def _context(entry_config: ProviderConfig) -> ProviderContext:
        return ProviderContext(entry_config, redis_url, numbers, channels)

    return spec.build(_context(config))


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
