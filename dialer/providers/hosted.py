"""Registry entries for the hosted voice providers (Vapi, Retell, Twilio, ElevenLabs).

The four adapter modules share one surface (``PROVIDER_NAME``, ``WEBHOOK_PATH``,
``Settings``, ``build``, ``verifier``, an events-from-payload parser); ``hosted_spec``
turns one of them into a ``VoiceProviderSpec`` the same way for all:

- the factory gives the adapter the fleet's pieces: the Redis placement journal
  (``RedisSeenOnce``: a task re-delivered to another worker finds the claim and looks
  the call up instead of sending it twice) and the fleet-wide token bucket of this
  provider *account* (``fleet_limiter``);
- the webhook is verified with the provider's own scheme over the public URL the
  provider called (Twilio signs it), with its freshness check; decoded as JSON, or as
  a form for Twilio. No replay guard: the inbox stores an event once by its id (read
  from the signed body), so a replay is answered "duplicate" and changes nothing,
  whereas a guard claims the signature before the event is stored, and a provider's
  retry of a delivery we failed to store (Twilio re-sends the same signed request)
  would be refused as a replay and its result lost;
- a body that carries a call status is one inbox event, read by the same parser the
  worker applies it with (the adapter's ``parse_event``); one that carries none
  (transcripts, tool calls) is answered and not stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import redis

from dialer.providers import elevenlabs, retell, twilio_voice, vapi
from dialer.providers.base import ProviderEvent, VoiceProvider
from dialer.providers.channels import ChannelRouter
from dialer.providers.provider_settings import HostedProviderSettings, fleet_limiter
from dialer.providers.ratelimit import CallRateLimiter
from dialer.providers.registry import (
    Adapters,
    BodyDecoder,
    Job,
    ProviderConfig,
    ProviderContext,
    SignedRequest,
    Verifier,
    VoiceProviderSpec,
    WebhookSpec,
    decode_json_object,
)
from dialer.providers.seen_once import RedisSeenOnce, SeenOnce
from dialer.providers.webhook_auth import WebhookVerifier
from dialer.providers.webhook_body import decode_form

__all__ = ["HOSTED", "decode_form", "hosted_spec"]

# The adapter modules' own signatures differ in their Settings type; the entry checks
# the type once (``options_as``) and hands the adapter its own model.
AdapterFactory = Callable[..., VoiceProvider]
VerifierOf = Callable[[Any, SeenOnce | None], WebhookVerifier]
EventsOf = Callable[[Mapping[str, Any]], list[ProviderEvent]]


@dataclass(frozen=True)
class HostedProvider:
    """What an entry needs of one adapter module."""

    name: str
    webhook_path: str
    settings_model: type[HostedProviderSettings]
    build: AdapterFactory
    verifier: VerifierOf
    events: EventsOf  # a stored payload -> its events (none: not a call status)
    decode: BodyDecoder = decode_json_object
    callback_url: Callable[[Any], str | None] = lambda _options: None  # an override

    def first_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        events = self.events(payload)
        if not events:
            raise ValueError(f"{self.name}: the body carries no call status")
        return events[0]

    def split(self, payload: Mapping[str, Any]) -> list[Job]:
        return [(payload, self.first_event)] if self.events(payload) else []


def hosted_spec(provider: HostedProvider) -> VoiceProviderSpec:
    """The registry entry: factory, webhook (verifier, decoder, splitter) and settings."""

    def build(context: ProviderContext) -> Adapters:
        options = context.config.options_as(provider.settings_model)
        client = redis.Redis.from_url(context.redis_url)
        limiter: CallRateLimiter = fleet_limiter(options, provider.name, client)
        voice = provider.build(
            options,
            limiter=limiter,
            journal=RedisSeenOnce(client),
            webhook_url=provider.callback_url(options)
            or context.webhook_url(provider.webhook_path),
        )
        return Adapters(voice, ChannelRouter(context.channels()))

    def verifier(config: ProviderConfig) -> Verifier:
        options = config.options_as(provider.settings_model)
        check = provider.verifier(options, None)  # no replay guard: see the docstring

        def verify(request: SignedRequest) -> None:
            # The provider signed the URL it called, not the one behind our proxy.
            check(request.headers, request.body, request.public_url, request.received_at)

        return verify

    webhook = WebhookSpec(
        provider.webhook_path,
        source=provider.name,
        split=provider.split,
        decode=provider.decode,
        verifier=verifier,
    )
    return VoiceProviderSpec(
        provider.name, build, webhooks=(webhook,), settings_model=provider.settings_model
    )


def _twilio_events(payload: Mapping[str, Any]) -> list[ProviderEvent]:
    return [twilio_voice.event_from_stored(payload)]


def _retell_events(payload: Mapping[str, Any]) -> list[ProviderEvent]:
    return retell.events_from_payload(payload, None)


VAPI: Final = HostedProvider(
    vapi.PROVIDER_NAME,
    vapi.WEBHOOK_PATH,
    vapi.Settings,
    vapi.build,
    vapi.verifier,
    vapi.events_from_payload,
)
RETELL: Final = HostedProvider(
    retell.PROVIDER_NAME,
    retell.WEBHOOK_PATH,
    retell.Settings,
    retell.build,
    retell.verifier,
    _retell_events,
)
TWILIO: Final = HostedProvider(
    twilio_voice.PROVIDER_NAME,
    twilio_voice.WEBHOOK_PATH,
    twilio_voice.Settings,
    twilio_voice.build,
    twilio_voice.verifier,
    _twilio_events,
    decode=twilio_voice.decode_callback,  # keeps our attempt id from the callback URL
    callback_url=lambda options: options.status_callback_url,
)
ELEVENLABS: Final = HostedProvider(
    elevenlabs.PROVIDER_NAME,
    elevenlabs.WEBHOOK_PATH,
    elevenlabs.Settings,
    elevenlabs.build,
    elevenlabs.verifier,
    elevenlabs.events_from_payload,
)
HOSTED: Final = (VAPI, RETELL, TWILIO, ELEVENLABS)
