"""The registry's built-in entries: every provider and channel this code base ships.

``PROVIDERS`` is the one table the composition root, settings checks and the ingress
read. ``simulated``: the in-process simulator (Redis-backed) for voice and messages,
whose events come from its pump. ``http``: the seed 004 voice API over httpx (paced
by the fleet-wide token bucket), with messages through the registered channels
(WhatsApp Cloud API, Twilio SMS, SMTP email); their events arrive as webhooks on
`dialer api` (WhatsApp's route also answers Meta's GET handshake; e-mail delivery events
come from SendGrid's Event Webhook, dialer.providers.sendgrid_events).
``vapi``, ``retell``, ``twilio``, ``elevenlabs``: the hosted voice-AI providers, each
with its own ``DIALER_<NAME>_*`` settings and webhook scheme (dialer.providers.hosted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from dialer.clock import utcnow
from dialer.policies.vocabulary import Channel
from dialer.providers import http_voice, sendgrid_events, twilio_sms, whatsapp
from dialer.providers.channels import ChannelRouter
from dialer.providers.email_smtp import SmtpEmailProvider
from dialer.providers.events import parse_event_payload
from dialer.providers.hosted import HOSTED, decode_form, hosted_spec
from dialer.providers.meta_webhooks import whatsapp_handshake, whatsapp_verifier
from dialer.providers.ratelimit import provider_rate_limiter
from dialer.providers.registry import (
    Adapters,
    ChannelSpec,
    Job,
    ProviderConfig,
    ProviderContext,
    Registry,
    SignedRequest,
    Verifier,
    VoiceProviderSpec,
    WebhookSpec,
    one_event,
)
from dialer.providers.simulation import PROVIDER_NAME as SIMULATED
from dialer.providers.simulation import SimulationProfile, build_simulated_providers
from dialer.providers.whatsapp import WhatsAppCloudProvider

CALL_WEBHOOK_PREFIX: Final = "/webhooks/calls/"


def _simulated(context: ProviderContext) -> Adapters:
    settings = context.settings
    profile = SimulationProfile.from_mapping(settings.simulation)
    voice, messages = build_simulated_providers(
        context.redis_url, lambda: utcnow(settings), profile, settings.simulation_namespace
    )
    return Adapters(voice, messages, event_source=voice)


def _http(context: ProviderContext) -> Adapters:
    voice = http_voice.HttpVoiceProvider.from_settings(
        context.settings,
        context.agent_numbers,
        limiter=provider_rate_limiter(context.settings, context.redis_url),
        webhook_url=context.webhook_url(HTTP_CALLS.path),
    )
    return Adapters(voice, ChannelRouter(context.channels()))


def _whatsapp(context: ProviderContext) -> WhatsAppCloudProvider:
    settings = context.settings
    return WhatsAppCloudProvider.from_settings(
        settings,
        context.redis_url,
        phone_number_id=settings.whatsapp_phone_number_id,
        api_version=settings.whatsapp_api_version,
    )


def _sms(context: ProviderContext) -> twilio_sms.TwilioSmsProvider:
    return twilio_sms.TwilioSmsProvider.from_settings(
        context.settings,
        context.redis_url,
        status_callback_url=context.webhook_url(twilio_sms.WEBHOOK_PATH),
    )


def _sms_verifier(config: ProviderConfig) -> Verifier:
    token = config.settings.sms_auth_token.get_secret_value()

    def check(request: SignedRequest) -> None:
        # Twilio signs the URL it called, not the one behind our proxy.
        twilio_sms.verify_signature(request.headers, request.body, request.public_url, token)

    return check


def _email(context: ProviderContext) -> SmtpEmailProvider:
    return SmtpEmailProvider.from_settings(context.settings, context.redis_url)


def _whatsapp_events(payload: Mapping[str, Any]) -> list[Job]:
    """One job per event of a Cloud body; ValueError when any part is bad."""
    return [(single, whatsapp.parse_single_event) for single in whatsapp.split_webhook(payload)]


def _sendgrid_events(payload: Mapping[str, Any]) -> list[Job]:
    """One job per SendGrid event of a body; ValueError when any event is bad."""
    return [(event, sendgrid_events.parse_event) for event in sendgrid_events.split_events(payload)]


def _sendgrid_verifier(config: ProviderConfig) -> Verifier:
    """SendGrid's ECDSA signature with the console's key (DIALER_EMAIL_SENDGRID_PUBLIC_KEY)."""
    options = config.options_as(sendgrid_events.EmailEventSettings)
    raw_key = options.sendgrid_public_key
    key = None if raw_key is None else sendgrid_events.load_public_key(raw_key)
    tolerance = config.settings.webhook_tolerance_seconds

    def check(request: SignedRequest) -> None:
        sendgrid_events.verify_webhook(
            key, request.headers, request.body, now=request.received_at, tolerance_seconds=tolerance
        )

    return check


SIMULATED_CALLS: Final = WebhookSpec(
    path=CALL_WEBHOOK_PREFIX + SIMULATED, source=SIMULATED, split=one_event(parse_event_payload)
)
HTTP_CALLS: Final = WebhookSpec(
    path=CALL_WEBHOOK_PREFIX + http_voice.PROVIDER_NAME,
    source=http_voice.PROVIDER_NAME,
    split=one_event(http_voice.parse_call_event),
)
WHATSAPP_EVENTS: Final = WebhookSpec(
    path="/webhooks/whatsapp",
    source=whatsapp.PROVIDER_NAME,
    split=_whatsapp_events,
    verifier=whatsapp_verifier,  # Meta's X-Hub-Signature-256, or the project's scheme
    handshake=whatsapp_handshake,  # Meta's GET hub.challenge
)
SMS_EVENTS: Final = WebhookSpec(
    path=twilio_sms.WEBHOOK_PATH,
    source=twilio_sms.PROVIDER_NAME,
    split=one_event(twilio_sms.parse_event),
    decode=lambda body, _query: decode_form(body),  # the form alone: no keys in the URL
    verifier=_sms_verifier,
)

SENDGRID_EMAIL_EVENTS: Final = WebhookSpec(
    path=sendgrid_events.WEBHOOK_PATH,
    source=sendgrid_events.PROVIDER_NAME,
    split=_sendgrid_events,
    decode=lambda body, _query: sendgrid_events.decode_body(body),
    verifier=_sendgrid_verifier,
)

PROVIDERS: Final = Registry()
# Secrets per entry: the simulator talks to no one and sends its own messages; seed 004's
# API takes DIALER_PROVIDER_API_KEY and signs its webhooks with DIALER_WEBHOOK_SECRET;
# a hosted provider's credentials are its DIALER_<NAME>_* settings (refused when missing
# or public). Every real provider sends messages through the channels, and WhatsApp
# sends with DIALER_WHATSAPP_TOKEN and signs with DIALER_WEBHOOK_SECRET.
PROVIDERS.register(
    VoiceProviderSpec(
        SIMULATED, _simulated, webhooks=(SIMULATED_CALLS,), sends_through_channels=False
    )
)
PROVIDERS.register(
    VoiceProviderSpec(
        http_voice.PROVIDER_NAME,
        _http,
        webhooks=(HTTP_CALLS,),
        secrets=("provider_api_key", "webhook_secret"),
    )
)
for hosted in HOSTED:
    PROVIDERS.register(hosted_spec(hosted))
PROVIDERS.register(
    ChannelSpec(
        Channel.WHATSAPP,
        _whatsapp,
        webhooks=(WHATSAPP_EVENTS,),
        # Meta's app secret signs its webhooks, its verify token answers the handshake.
        secrets=(
            "whatsapp_token",
            "webhook_secret",
            "whatsapp_app_secret",
            "whatsapp_verify_token",
        ),
    )
)
# SMS is opt-in (DIALER_SMS_ACCOUNT_SID): its token is checked by Settings.sms_problems.
PROVIDERS.register(ChannelSpec(Channel.SMS, _sms, webhooks=(SMS_EVENTS,)))
PROVIDERS.register(
    ChannelSpec(
        Channel.EMAIL,
        _email,
        webhooks=(SENDGRID_EMAIL_EVENTS,),
        settings_model=sendgrid_events.EmailEventSettings,
    )
)
