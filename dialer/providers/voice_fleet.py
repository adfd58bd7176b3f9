"""Every voice provider of a deployment, by registry name, and which one an attempt uses.

An agent names its provider (``agents.provider``; none: the deployment's
``DIALER_PROVIDER``) and may name a fallback. ``VoiceFleet`` holds the adapters the
composition root built (one per provider, each with its own settings, limiter bucket
and placement journal) and routes a new placement: to the agent's provider, or to its
fallback while the primary's circuit is open (dialer.policies.failover, the record in
dialer.providers.provider_health).

The fleet is itself a ``VoiceProvider`` (the deployment's default adapter), so code
that knows one provider keeps working; code that routes asks ``fleet_of``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dialer.errors import SettingsError
from dialer.logging import get_logger
from dialer.policies.vocabulary import ProviderRoute
from dialer.providers.base import (
    CallRecord,
    PermanentProviderError,
    PlaceCallRequest,
    ProviderEvent,
    VoiceProvider,
)
from dialer.providers.provider_health import HealthStore, NoFailover

Build = Callable[[str], VoiceProvider]  # a registry name -> its adapter; SettingsError if not

log = get_logger("dialer.providers.voice_fleet")


class ProviderNotConfigured(PermanentProviderError):
    """An agent names a provider this process could not build (its settings are missing)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="provider_not_configured")


@dataclass(frozen=True)
class AgentProviders:
    """The providers one agent may be placed through, and its id at each."""

    primary: str
    agent_id: str
    fallback: str | None = None
    fallback_agent_id: str | None = None

    def agent_id_at(self, provider: str) -> str:
        if provider == self.fallback and provider != self.primary:
            return self.fallback_agent_id or self.agent_id
        return self.agent_id


class VoiceFleet:
    """The deployment's voice adapters by name; the default one answers as a VoiceProvider."""

    def __init__(
        self,
        default: str,
        adapters: Mapping[str, VoiceProvider],
        health: HealthStore | None = None,
        build: Build | None = None,
    ) -> None:
        if default not in adapters:
            raise ValueError(f"default provider {default!r} is not among the adapters")
        self.default = default
        self.name = default  # the VoiceProvider protocol: the default adapter's name
        self._adapters = dict(adapters)
        self.health: HealthStore = health or NoFailover()
        self._build = build

    @property
    def names(self) -> list[str]:
        return sorted(self._adapters)

    def adapter(self, name: str | None) -> VoiceProvider:
        """The adapter of ``name`` (None: the default), built now if it was not at start.

        Raises ProviderNotConfigured when its settings do not load: the attempts that
        need it fail with that reason, the others go on.
        """
        key = name or self.default
        adapter = self._adapters.get(key)
        if adapter is not None:
            return adapter
        if self._build is None:
            raise ProviderNotConfigured(f"voice provider {key!r} is not configured here")
        try:
            adapter = self._build(key)
        except SettingsError as exc:
            raise ProviderNotConfigured(f"voice provider {key!r}: {exc}") from exc
        self._adapters[key] = adapter
        return adapter

    def parser_for(self, source: str) -> Callable[[Mapping[str, Any]], ProviderEvent] | None:
        """The event parser of the provider an inbox row is stored under; None: not a voice
        provider of this deployment (a channel's row: the caller's own parser reads it)."""
        try:
            return self.adapter(source).parse_event
        except ProviderNotConfigured:
            return None

    def planner(self) -> RoutePlanner:
        """Routes for one dispatch batch: the health record is read once per provider."""
        return RoutePlanner(self)

    # ------------------------------------------------------------ VoiceProvider (default)

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        return self.adapter(None).place_call(request)

    def get_call(self, call_id: str) -> CallRecord:
        return self.adapter(None).get_call(call_id)

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        return self.adapter(None).parse_event(payload)


@dataclass
class RoutePlanner:
    """Which provider each new placement of a batch goes to; at most one probe per batch."""

    fleet: VoiceFleet
    _routes: dict[str, ProviderRoute] = field(default_factory=dict)

    def provider_for(self, agent: AgentProviders) -> str:
        if agent.fallback is None or agent.fallback == agent.primary:
            return agent.primary
        decision = self._routes.get(agent.primary)
        if decision is None:
            decision = self.fleet.health.route(agent.primary, has_fallback=True)
            if decision is not ProviderRoute.PRIMARY:
                log.info("provider_failover_route", provider=agent.primary, route=decision)
        # The probe is one placement: the rest of the batch keeps to the fallback.
        self._routes[agent.primary] = (
            ProviderRoute.FALLBACK if decision is ProviderRoute.PROBE else decision
        )
        return agent.fallback if decision is ProviderRoute.FALLBACK else agent.primary


def fleet_of(provider: VoiceProvider) -> VoiceFleet:
    """A fleet as given, or one adapter as a fleet of one (tests, the in-process driver)."""
    if isinstance(provider, VoiceFleet):
        return provider
    return VoiceFleet(provider.name, {provider.name: provider})
