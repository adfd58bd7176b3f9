"""Wire a process's providers from the settings, through the provider registry.

``DIALER_PROVIDER`` names an entry of dialer.providers.catalog.PROVIDERS (or of a
registry passed in); its factory gets what only the composition root can give: the
entry's own settings, Redis, the caller-ID numbers from the database, the channels.

``build_fleet`` builds, besides it, every voice provider an agent names (its
``provider`` or ``fallback_provider``) or an unfinished attempt was sent to, each from
its own ``DIALER_<NAME>_*`` settings (its own limiter bucket and placement journal),
into one ``VoiceFleet`` with the fleet's health record for failover. A provider whose
settings do not load stops the worker with the SettingsError naming the variable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable

import redis
from sqlalchemy import or_, select

from dialer.dependencies import UnitOfWork
from dialer.errors import SettingsError
from dialer.policies.failover import FailoverRule
from dialer.policies.vocabulary import IN_FLIGHT_ATTEMPT_STATUSES
from dialer.providers.base import MessageProvider
from dialer.providers.catalog import PROVIDERS
from dialer.providers.provider_health import RedisProviderHealth
from dialer.providers.registry import (
    Adapters,
    ProviderConfig,
    ProviderContext,
    Registry,
    VoiceProviderSpec,
    load_options,
)
from dialer.providers.voice_fleet import VoiceFleet
from dialer.settings import Settings, ui_secret_problem
from models import Agent, CallAttempt, PhoneNumber

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


def check_ui_settings(settings: Settings, registry: Registry = PROVIDERS) -> None:
    """SettingsError when the dashboard's session secret is weak beside a real provider.

    With the in-process simulated provider (no secrets: the sandbox) an unset secret is
    allowed, and the API signs with a random key of its own process.
    """
    spec = registry.voice_provider(settings.provider)
    if not registry.required_secrets(spec):
        return
    if problem := ui_secret_problem(settings):
        raise SettingsError(f"invalid settings: the dashboard signs sessions: {problem}")


def build_providers(
    settings: Settings, redis_url: str, uow: UnitOfWork, registry: Registry = PROVIDERS
) -> Adapters:
    """The adapters of the provider DIALER_PROVIDER names."""
    return _Builder(settings, redis_url, AgentNumbers(uow), registry).build(settings.provider)


def build_fleet(
    settings: Settings,
    redis_url: str,
    uow: UnitOfWork,
    registry: Registry = PROVIDERS,
    names: Iterable[str] | None = None,
) -> Adapters:
    """The default provider's adapters, with ``voice`` the fleet of every provider in use.

    ``names``: the providers to build besides the default; read from the database
    (``providers_in_use``) when not given. Each is built now, so missing credentials
    stop the process here, naming the setting; one an agent names later is built on
    its first placement.
    """
    builder = _Builder(settings, redis_url, AgentNumbers(uow), registry)
    wanted = set(providers_in_use(uow) if names is None else names) - {settings.provider}
    default = builder.build(settings.provider)
    built = {settings.provider: default}
    for name in sorted(wanted):
        built[name] = builder.build(name, named_by_agent=True)
    health = RedisProviderHealth(redis.Redis.from_url(redis_url), failover_rule(settings))
    fleet = VoiceFleet(
        settings.provider,
        {name: adapters.voice for name, adapters in built.items()},
        health,
        build=lambda name: builder.build(name, named_by_agent=True).voice,
    )
    sources = [a.event_source for a in built.values() if a.event_source is not None]
    return Adapters(fleet, default.messages, event_source=next(iter(sources), None))


def check_providers_in_use(
    settings: Settings, uow: UnitOfWork, registry: Registry = PROVIDERS
) -> set[str]:
    """Every provider the database names is registered and its settings load.

    A worker runs this before it takes work: an agent naming a provider whose
    credentials are missing stops it with the SettingsError naming the variable,
    instead of failing that agent's calls one by one.
    """
    names = providers_in_use(uow) - {settings.provider}
    for name in sorted(names):
        if name not in registry.voice:
            raise SettingsError(_unknown(name, registry))
        try:
            load_options(registry.voice[name])
        except SettingsError as exc:
            raise SettingsError(f"{exc} (voice provider {name!r}, named by an agent)") from None
    return names


def failover_rule(settings: Settings) -> FailoverRule:
    return FailoverRule(
        refusals=settings.failover_refusals,
        window_seconds=settings.failover_window_seconds,
        cooldown_seconds=settings.failover_cooldown_seconds,
        probe_seconds=settings.failover_probe_seconds,
    )


def providers_in_use(uow: UnitOfWork) -> set[str]:
    """Every provider an agent names, or an unfinished attempt was sent to."""
    with uow() as session:
        named = session.execute(
            select(Agent.provider, Agent.fallback_provider).where(
                or_(Agent.provider.is_not(None), Agent.fallback_provider.is_not(None))
            )
        ).all()
        sent_to = session.scalars(
            select(CallAttempt.provider)
            .where(
                CallAttempt.status.in_(IN_FLIGHT_ATTEMPT_STATUSES),
                CallAttempt.provider.is_not(None),
            )
            .distinct()
        ).all()
    return {name for row in [*named, sent_to] for name in row if name}


class _Builder:
    """Builds registry entries for this process: their settings, Redis, numbers, channels."""

    def __init__(
        self,
        settings: Settings,
        redis_url: str,
        numbers: Callable[[str], Collection[str]],
        registry: Registry,
    ) -> None:
        self._settings = settings
        self._redis_url = redis_url
        self._numbers = numbers
        self._registry = registry

    def build(self, name: str, *, named_by_agent: bool = False) -> Adapters:
        """SettingsError naming the setting: an unknown name or a bad ``DIALER_<NAME>_*``."""
        if named_by_agent and name not in self._registry.voice:
            raise SettingsError(_unknown(name, self._registry))
        spec = self._registry.voice_provider(name)
        return spec.build(self._context(ProviderConfig(self._settings, load_options(spec))))

    def _channels(self) -> dict[str, MessageProvider]:
        return {
            name: channel.build(
                self._context(ProviderConfig(self._settings, load_options(channel)))
            )
            for name, channel in self._registry.channels.items()
        }

    def _context(self, entry_config: ProviderConfig) -> ProviderContext:
        return ProviderContext(entry_config, self._redis_url, self._numbers, self._channels)


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
                    .where(
                        # The fallback provider's id of the agent has the same caller IDs.
                        or_(
                            Agent.provider_agent_id == provider_agent_id,
                            Agent.fallback_provider_agent_id == provider_agent_id,
                        )
                    )
                )
            )
        self._cache[provider_agent_id] = (self._clock(), numbers)
        return numbers


def _unknown(name: str, registry: Registry) -> str:
    known = ", ".join(sorted(registry.voice))
    return f"invalid settings: an agent names voice provider {name!r}, not one of {known}"
