"""The provider registry: a provider registered in the tests only is accepted and built.

tests/echo_provider.py is one module; ``PROVIDERS.registered(ECHO)`` is its one registry
entry. No production module names it. (Its webhooks: tests/integration/
test_provider_registry_ingress.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dialer.composition import bootstrap, build_providers, check_provider_settings
from dialer.errors import SettingsError
from dialer.providers.base import PlaceCallRequest
from dialer.providers.catalog import PROVIDERS
from dialer.providers.channels import ChannelRouter
from dialer.providers.registry import ChannelSpec, WebhookSpec, one_event
from dialer.providers.simulation import SimulatedVoiceProvider
from dialer.settings import Settings, load_settings
from tests.echo_provider import ECHO, WEBHOOK_PATH, EchoSettings, EchoVoiceProvider, parse_status

REDIS_URL = "redis://127.0.0.1:1/0"  # never dialled: building an adapter connects nothing
# A provider other than the simulator refuses the public sandbox secrets (issue 14.1).
OWN_SECRETS: dict[str, Any] = {
    "webhook_secret": "registry-test-webhook-secret",
    "provider_api_key": "registry-test-provider-key",
    "whatsapp_token": "registry-test-whatsapp-token",
    "whatsapp_app_secret": "registry-test-meta-app-secret",
    "whatsapp_verify_token": "registry-test-verify-token",
}


def no_database() -> Any:
    raise AssertionError("building providers must not open a transaction")


@pytest.fixture
def echo_registered() -> Iterator[None]:
    with PROVIDERS.registered(ECHO):
        yield


@pytest.fixture
def echo_settings() -> Settings:
    return load_settings(provider="echo", **OWN_SECRETS)


def test_an_unregistered_provider_stops_start_up_naming_the_setting(
    echo_settings: Settings,
) -> None:
    with pytest.raises(
        SettingsError,
        match=r"DIALER_PROVIDER: 'echo' is not one of elevenlabs, http, retell, simul",
    ):
        check_provider_settings(echo_settings)
    with pytest.raises(SettingsError, match="DIALER_PROVIDER"):
        bootstrap(echo_settings)  # before any server is started or any log configured


@pytest.mark.usefixtures("echo_registered")
def test_a_registered_provider_needs_its_own_settings(
    echo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIALER_ECHO_API_KEY", raising=False)
    with pytest.raises(SettingsError, match="DIALER_ECHO_API_KEY: Field required"):
        check_provider_settings(echo_settings)


@pytest.mark.usefixtures("echo_registered")
def test_a_registered_provider_is_accepted_and_built(
    echo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALER_ECHO_API_KEY", "echo-key")
    monkeypatch.setenv("DIALER_ECHO_BASE_URL", "https://echo.example/v2")

    spec, config = check_provider_settings(echo_settings)
    providers = build_providers(echo_settings, REDIS_URL, no_database)

    assert spec is ECHO
    assert config.options_as(EchoSettings).base_url == "https://echo.example/v2"
    voice = providers.voice
    assert isinstance(voice, EchoVoiceProvider)
    assert voice.options.api_key.get_secret_value() == "echo-key"
    assert voice.webhook_url == "http://127.0.0.1:8600" + WEBHOOK_PATH
    assert isinstance(providers.messages, ChannelRouter)  # the registered channels
    assert providers.event_source is None  # its events come as webhooks
    request = PlaceCallRequest(idempotency_key="att:1", agent_id="a", to="+15551234567")
    assert voice.place_call(request).id == voice.place_call(request).id


def test_the_built_in_providers_come_from_the_same_table() -> None:
    simulated = build_providers(load_settings(provider="simulated"), REDIS_URL, no_database)
    http = build_providers(load_settings(provider="http", **OWN_SECRETS), REDIS_URL, no_database)

    assert isinstance(simulated.voice, SimulatedVoiceProvider)
    assert simulated.event_source is simulated.voice
    assert http.voice.name == "http"
    assert http.event_source is None
    paths = {webhook.path for webhook in PROVIDERS.webhooks()}
    hosted = {f"/webhooks/calls/{name}" for name in ("vapi", "retell", "twilio", "elevenlabs")}
    assert (
        paths
        == {
            "/webhooks/calls/simulated",
            "/webhooks/calls/http",
            "/webhooks/whatsapp",
            "/webhooks/sms/twilio",
            "/webhooks/email/sendgrid",
        }
        | hosted
    )


def test_registering_twice_or_on_a_taken_path_is_refused() -> None:
    clash = WebhookSpec("/webhooks/whatsapp", source="other", split=one_event(parse_status))
    with (
        PROVIDERS.registered(ECHO),
        pytest.raises(ValueError, match="'echo' is registered already"),
    ):
        PROVIDERS.register(ECHO)
    with pytest.raises(ValueError, match="webhook path /webhooks/whatsapp is taken"):
        PROVIDERS.register(
            ChannelSpec("fax", lambda _context: ChannelRouter({}), webhooks=(clash,))
        )
    assert "echo" not in PROVIDERS.voice
    assert "fax" not in PROVIDERS.channels
