"""DIALER_PROVIDER=vapi|retell|twilio|elevenlabs builds the adapter through the composition root.

Each hosted provider is a registry entry (dialer.providers.hosted): its own settings
from ``DIALER_<NAME>_*`` are checked at start-up, naming what is missing, and the
adapter it builds paces by the fleet's bucket for the account and journals its
placements in Redis (no request is sent here: building connects to nothing).
"""

from __future__ import annotations

from typing import Any

import pytest

from dialer.composition import bootstrap, build_providers, check_provider_settings
from dialer.errors import SettingsError
from dialer.providers import elevenlabs, retell, twilio_voice, vapi
from dialer.providers.channels import ChannelRouter
from dialer.providers.hosted import decode_form
from dialer.providers.provider_settings import HostedProviderSettings
from dialer.providers.ratelimit import RedisRateLimiter
from dialer.providers.seen_once import RedisSeenOnce
from dialer.providers.voice_adapter import HostedVoiceAdapter
from dialer.settings import Settings, load_settings

REDIS_URL = "redis://127.0.0.1:1/0"  # never dialled: building an adapter connects nothing
OWN_SECRETS: dict[str, Any] = {
    "webhook_secret": "wiring-test-webhook-secret",
    "provider_api_key": "wiring-test-provider-key",
    "whatsapp_token": "wiring-test-whatsapp-token",
    "whatsapp_app_secret": "wiring-test-meta-app-secret",
    "whatsapp_verify_token": "wiring-test-verify-token",
}
TWILIO_SID = "AC" + "0123456789abcdef" * 2
# provider -> (its adapter class, the env it needs, the setting named when it is missing)
CASES: dict[str, tuple[type[HostedVoiceAdapter], dict[str, str], str]] = {
    "vapi": (
        vapi.VapiVoiceProvider,
        {"DIALER_VAPI_API_KEY": "vapi-private-key", "DIALER_VAPI_WEBHOOK_SECRET": "vapi-hook-key"},
        "DIALER_VAPI_WEBHOOK_SECRET",
    ),
    "retell": (
        retell.RetellVoiceProvider,
        {"DIALER_RETELL_API_KEY": "key_retell_account"},
        "DIALER_RETELL_API_KEY",
    ),
    "twilio": (
        twilio_voice.TwilioVoiceProvider,
        {"DIALER_TWILIO_ACCOUNT_SID": TWILIO_SID, "DIALER_TWILIO_AUTH_TOKEN": "twilio-auth-token"},
        "DIALER_TWILIO_AUTH_TOKEN",
    ),
    "elevenlabs": (
        elevenlabs.ElevenLabsVoiceProvider,
        {
            "DIALER_ELEVENLABS_API_KEY": "xi-account-key",
            "DIALER_ELEVENLABS_WEBHOOK_SECRET": "wsec-elevenlabs",
        },
        "DIALER_ELEVENLABS_WEBHOOK_SECRET",
    ),
}


def no_database() -> Any:
    raise AssertionError("building providers must not open a transaction")


def settings_for(name: str) -> Settings:
    return load_settings(provider=name, **OWN_SECRETS)


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hosted_provider_is_built_from_its_env_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter_type, env, _required = CASES[name]
    set_env(monkeypatch, env)
    monkeypatch.setenv(f"DIALER_{name.upper()}_CALLS_PER_SECOND", "7")
    settings = settings_for(name)

    spec, config = check_provider_settings(settings)
    providers = build_providers(settings, REDIS_URL, no_database)

    assert spec.name == name
    assert config.options_as(HostedProviderSettings).calls_per_second == 7.0
    voice = providers.voice
    assert isinstance(voice, adapter_type)
    assert voice.name == name
    assert isinstance(providers.messages, ChannelRouter)
    assert providers.event_source is None  # its events arrive as webhooks
    assert isinstance(voice._journal, RedisSeenOnce)  # fleet-wide, not this process's
    limiter = voice._http._limiter
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.limits.rate_per_second == 7.0
    assert limiter.key.startswith(f"ratelimit:provider_calls:{name}:")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hosted_provider_without_credentials_stops_start_up_naming_the_setting(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _adapter_type, env, required = CASES[name]
    set_env(monkeypatch, env)
    monkeypatch.delenv(required)
    settings = settings_for(name)

    with pytest.raises(SettingsError, match=f"{required}: Field required"):
        check_provider_settings(settings)
    with pytest.raises(SettingsError, match=required):
        bootstrap(settings)  # before any server is started


def test_a_placeholder_credential_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, CASES["vapi"][1])
    monkeypatch.setenv("DIALER_VAPI_API_KEY", "changeme")
    with pytest.raises(SettingsError, match="DIALER_VAPI_API_KEY"):
        check_provider_settings(settings_for("vapi"))


def test_a_hosted_provider_keeps_refusing_the_public_sandbox_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, CASES["retell"][1])
    # The WhatsApp channel it sends through signs its webhooks with this secret.
    with pytest.raises(SettingsError, match="DIALER_WEBHOOK_SECRET"):
        check_provider_settings(load_settings(provider="retell", webhook_secret="whsec_sandbox"))


def test_twilio_calls_back_at_the_public_webhook_url_or_its_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, CASES["twilio"][1])
    public = settings_for("twilio").model_copy(
        update={"public_webhook_base_url": "https://hooks.example.com/"}
    )
    voice: Any = build_providers(public, REDIS_URL, no_database).voice
    assert voice._webhook_url == "https://hooks.example.com/webhooks/calls/twilio"

    monkeypatch.setenv("DIALER_TWILIO_STATUS_CALLBACK_URL", "https://edge.example/twilio")
    voice = build_providers(public, REDIS_URL, no_database).voice
    assert voice._webhook_url == "https://edge.example/twilio"


def test_a_form_body_decodes_and_a_non_form_is_refused() -> None:
    assert decode_form(b"CallSid=CA1&CallStatus=busy&AnsweredBy=") == {
        "CallSid": "CA1",
        "CallStatus": "busy",
        "AnsweredBy": "",
    }
    with pytest.raises(ValueError, match="body: not a form"):
        decode_form(b'{"CallSid": "CA1"}')
    with pytest.raises(ValueError, match="body: not a form"):
        decode_form(b"\xff\xfe=1")
