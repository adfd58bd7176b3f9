"""The provider and channel registry: what a provider name or a channel name stands for.

An entry names, for one provider (``DIALER_PROVIDER``) or one message channel:

- ``build``: its adapter factory, given a ``ProviderContext`` (the settings, the
  entry's own validated settings, Redis, caller-ID lookups, the channels);
- ``webhooks``: each webhook it receives, with its path on ``dialer api``, how a body
  is decoded (JSON; a form-encoded provider brings its own), split into events and
  parsed, and how it is verified (the shared HMAC scheme unless it brings its own);
- ``settings_model``: its own settings (a pydantic-settings model read from
  ``DIALER_<NAME>_*``), validated at start-up; errors name the variable.

The composition root (dialer.composition) builds the named provider from it and checks
the setting against it; the ingress (dialer.api.ingress) mounts every entry's webhooks.
A new provider is one module and one ``register`` call; the built-in entries are in
dialer.providers.catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from dialer.errors import SettingsError
from dialer.logging import get_logger
from dialer.providers.base import MessageProvider, ProviderEvent, VoiceProvider
from dialer.providers.signing import verify
from dialer.providers.webhook_body import decode_object
from dialer.settings import Settings, secret_problems

EventParser = Callable[[Mapping[str, Any]], ProviderEvent]
Job = tuple[Mapping[str, Any], EventParser]  # one payload for the inbox, and how to read it
# The raw body and the query of the URL it was posted to (Twilio puts our attempt id in
# the callback URL, so a decoder must see it): the payload to store.
BodyDecoder = Callable[[bytes, Mapping[str, str]], Mapping[str, Any]]
EventSplitter = Callable[[Mapping[str, Any]], Sequence[Job]]
OptionsT = TypeVar("OptionsT", bound=BaseSettings)

log = get_logger("dialer.providers.registry")


# --------------------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class SignedRequest:
    """A webhook as it arrived, for a verifier: raw body, headers, URLs, arrival time."""

    headers: Mapping[str, str]  # case-insensitive (Starlette's are)
    body: bytes
    url: str  # as this process received it
    public_url: str  # as the provider called it: DIALER_PUBLIC_WEBHOOK_BASE_URL + path?query
    received_at: float  # Unix seconds, from the ingress's clock


# Raises dialer.providers.signing.SignatureError (a ValueError) saying what is wrong.
Verifier = Callable[[SignedRequest], None]


@dataclass(frozen=True)
class ProviderConfig:
    """The process settings and an entry's own settings (None when it has no model)."""

    settings: Settings
    options: BaseSettings | None = None

    def options_as(self, model: type[OptionsT]) -> OptionsT:
        if not isinstance(self.options, model):
            raise TypeError(f"expected {model.__name__} settings, got {type(self.options)}")
        return self.options


VerifierFactory = Callable[[ProviderConfig], Verifier]
# A subscription check some providers make with GET before they post (Meta's
# hub.mode/hub.verify_token/hub.challenge): the query -> the text to answer; raises
# SignatureError to refuse.
Handshake = Callable[[Mapping[str, str]], str]
HandshakeFactory = Callable[[ProviderConfig], Handshake]


def shared_secret_verifier(config: ProviderConfig) -> Verifier:
    """The project's scheme (dialer.providers.signing) with DIALER_WEBHOOK_SECRET."""
    secret = config.settings.webhook_secret.get_secret_value()
    tolerance = config.settings.webhook_tolerance_seconds

    def check(request: SignedRequest) -> None:
        verify(
            secret,
            request.headers,
            request.body,
            now=request.received_at,
            tolerance_seconds=tolerance,
        )

    return check


def decode_json_object(body: bytes, query: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A JSON object PostgreSQL can store (dialer.providers.webhook_body), else ValueError.

    The query is not kept: JSON providers carry our metadata in the body.
    """
    del query
    return decode_object(body)


def one_event(parse: EventParser) -> EventSplitter:
    """A body that is one event, read by ``parse``."""

    def split(payload: Mapping[str, Any]) -> list[Job]:
        return [(payload, parse)]

    return split


@dataclass(frozen=True)
class WebhookSpec:
    """One webhook route: where it is served and how its bodies become inbox events."""

    path: str  # on `dialer api`, e.g. "/webhooks/calls/http"
    source: str  # the provider name its events are stored under in the inbox
    split: EventSplitter  # ValueError: the whole body is kept as rejected
    decode: BodyDecoder = decode_json_object  # ValueError: the raw text is kept as rejected
    verifier: VerifierFactory = shared_secret_verifier
    handshake: HandshakeFactory | None = None  # set: the path also answers GET with it


# --------------------------------------------------------------------------- adapters


class EventSource(Protocol):
    """A provider whose events are pulled (the simulator's queue), not posted as webhooks."""

    name: str

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent: ...

    def pop_due_events(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Adapters:
    """What a voice provider entry builds for a process."""

    voice: VoiceProvider
    messages: MessageProvider
    event_source: EventSource | None = None  # set when events come from its pump


@dataclass(frozen=True)
class ProviderContext:
    """Everything a factory may use; built by the composition root."""

    config: ProviderConfig
    redis_url: str
    agent_numbers: Callable[[str], Collection[str]]  # provider agent id -> its caller IDs
    channels: Callable[[], dict[str, MessageProvider]]  # the registered channels, built now

    @property
    def settings(self) -> Settings:
        return self.config.settings

    def webhook_url(self, path: str) -> str:
        """Where providers reach ``path`` of the ingress (DIALER_PUBLIC_WEBHOOK_BASE_URL)."""
        return self.settings.public_webhook_base_url.rstrip("/") + path


@dataclass(frozen=True)
class VoiceProviderSpec:
    """A value of DIALER_PROVIDER: the voice adapter (and its message sending) of a process."""

    name: str
    build: Callable[[ProviderContext], Adapters]
    webhooks: tuple[WebhookSpec, ...] = ()
    settings_model: type[BaseSettings] | None = None
    # The process-wide secrets (Settings fields) this entry itself uses; its own
    # credentials live in ``settings_model``, which refuses a missing or public one.
    secrets: tuple[str, ...] = ()
    # False when the entry brings its own message sending (the simulator): the
    # registered channels are not built, so their secrets are not needed.
    sends_through_channels: bool = True


@dataclass(frozen=True)
class ChannelSpec:
    """A message channel (``whatsapp``, ``email``): the adapter real providers send through."""

    name: str
    build: Callable[[ProviderContext], MessageProvider]
    webhooks: tuple[WebhookSpec, ...] = ()
    settings_model: type[BaseSettings] | None = None
    secrets: tuple[str, ...] = ()  # the process-wide secrets its sender and webhook use


Spec = VoiceProviderSpec | ChannelSpec


# --------------------------------------------------------------------------- the table


@dataclass
class Registry:
    """Voice providers and channels by name; webhook paths unique across both."""

    voice: dict[str, VoiceProviderSpec] = field(default_factory=dict)
    channels: dict[str, ChannelSpec] = field(default_factory=dict)

    def register(self, spec: Spec) -> Spec:
        table: dict[str, Any] = self.voice if isinstance(spec, VoiceProviderSpec) else self.channels
        if spec.name in table:
            raise ValueError(f"{spec.name!r} is registered already")
        taken = {webhook.path for webhook in self.webhooks()}
        clashes = sorted(taken & {webhook.path for webhook in spec.webhooks})
        if clashes:
            raise ValueError(f"{spec.name!r}: webhook path {clashes[0]} is taken")
        table[spec.name] = spec
        return spec

    def unregister(self, spec: Spec) -> None:
        table: dict[str, Any] = self.voice if isinstance(spec, VoiceProviderSpec) else self.channels
        table.pop(spec.name, None)

    @contextmanager
    def registered(self, spec: Spec) -> Iterator[Spec]:
        """``spec`` registered for the block only (tests)."""
        self.register(spec)
        try:
            yield spec
        finally:
            self.unregister(spec)

    def voice_provider(self, name: str) -> VoiceProviderSpec:
        """The entry DIALER_PROVIDER names; SettingsError naming the setting otherwise."""
        spec = self.voice.get(name)
        if spec is None:
            known = ", ".join(sorted(self.voice))
            raise SettingsError(
                f"invalid settings: DIALER_PROVIDER: {name!r} is not one of {known}"
            )
        return spec

    def required_secrets(self, spec: VoiceProviderSpec) -> tuple[str, ...]:
        """The process-wide secrets a process on ``spec`` really uses, each named once."""
        names = list(spec.secrets)
        if spec.sends_through_channels:
            names += [name for channel in self.channels.values() for name in channel.secrets]
        return tuple(dict.fromkeys(names))

    def check_secrets(self, spec: VoiceProviderSpec, settings: Settings) -> None:
        """SettingsError naming every secret ``spec`` uses that is missing, public or short."""
        problems = secret_problems(settings, self.required_secrets(spec))
        problems += settings.sms_problems()
        if problems:
            raise SettingsError(
                f"invalid settings: provider {spec.name!r} talks to a real service: "
                + "; ".join(problems)
            )

    def webhooks(self) -> list[WebhookSpec]:
        return [webhook for spec in self._specs() for webhook in spec.webhooks]

    def webhook_routes(self, settings: Settings) -> list[WebhookRoute]:
        """Every entry's webhooks, with its config, for the ingress to mount.

        An entry whose own settings do not load is not configured in this deployment:
        its webhooks are left out (the provider DIALER_PROVIDER names is checked at
        start-up, by the composition root, and stops the process instead).
        """
        routes = []
        for spec in self._specs():
            if not spec.webhooks:
                continue
            try:
                config = ProviderConfig(settings, load_options(spec))
            except SettingsError as exc:
                log.info("webhooks_not_mounted", provider=spec.name, reason=str(exc))
                continue
            routes += [WebhookRoute(webhook, config) for webhook in spec.webhooks]
        return routes

    def _specs(self) -> list[Spec]:
        return [*self.voice.values(), *self.channels.values()]


@dataclass(frozen=True)
class WebhookRoute:
    """A webhook to serve, with the settings its verifier is built from."""

    webhook: WebhookSpec
    config: ProviderConfig

    def verifier(self) -> Verifier:
        return self.webhook.verifier(self.config)

    def handshake(self) -> Handshake | None:
        factory = self.webhook.handshake
        return None if factory is None else factory(self.config)


def options_prefix(spec: Spec) -> str:
    """Where an entry's own settings are read from: ``DIALER_<NAME>_``."""
    return f"DIALER_{spec.name.upper()}_"


def load_options(spec: Spec) -> BaseSettings | None:
    """The entry's own settings from ``DIALER_<NAME>_*``; SettingsError naming each bad one."""
    if spec.settings_model is None:
        return None
    prefix = options_prefix(spec)
    try:
        return spec.settings_model(_env_prefix=prefix)
    except ValidationError as exc:
        raise SettingsError.from_validation(exc, prefix=prefix) from None
