"""A real provider never runs on the public sandbox secrets (issue 14 item 1, issue 13).

The sandbox values are in the repository: anyone can sign a webhook with them. The
simulated provider talks to no one, so it may keep them; any other provider refuses
to start (``check_provider_settings``, run by every process's bootstrap), and the
message names the setting to change. Which secrets are asked for is said by the
provider's registry entry: a hosted provider is not asked for seed 004's API key.
"""

from __future__ import annotations

import pytest

from dialer.composition import check_provider_settings
from dialer.errors import SettingsError
from dialer.settings import MIN_SECRET_CHARS, Settings, load_settings

STRONG = {
    "webhook_secret": "whsec_" + "k" * 32,
    "provider_api_key": "sk_live_" + "p" * 32,
    "whatsapp_token": "EAAG" + "t" * 40,
    "whatsapp_app_secret": "a" * 32,
    "whatsapp_verify_token": "verify-" + "v" * 20,
}


VAPI_ENV = {"DIALER_VAPI_API_KEY": "vapi-private-key-1", "DIALER_VAPI_WEBHOOK_SECRET": "v" * 24}


def _settings(**overrides: object) -> Settings:
    """Settings as a process's start-up checks them (the registry entry's rule)."""
    settings = load_settings(_env_file=None, **overrides)
    check_provider_settings(settings)
    return settings


def test_the_simulated_provider_may_keep_the_sandbox_defaults() -> None:
    settings = _settings(provider="simulated")
    assert settings.webhook_secret.get_secret_value() == "whsec_sandbox"


def test_a_real_provider_with_strong_secrets_starts() -> None:
    settings = _settings(provider="http", **STRONG)
    assert settings.provider == "http"


def test_a_hosted_provider_is_not_asked_for_the_seed_004_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in VAPI_ENV.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("DIALER_PROVIDER_API_KEY", raising=False)
    strong = {k: v for k, v in STRONG.items() if k != "provider_api_key"}
    settings = _settings(provider="vapi", **strong)
    assert settings.provider_api_key.get_secret_value() == "sk_sandbox"  # unused, allowed


@pytest.mark.parametrize("setting", ["webhook_secret", "whatsapp_token"])
def test_a_hosted_provider_still_needs_the_secrets_its_channels_use(
    setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in VAPI_ENV.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv(f"DIALER_{setting.upper()}", raising=False)
    strong = {k: v for k, v in STRONG.items() if k not in (setting, "provider_api_key")}
    with pytest.raises(SettingsError, match=f"DIALER_{setting.upper()}") as raised:
        _settings(provider="vapi", **strong)
    assert "DIALER_PROVIDER_API_KEY" not in str(raised.value)


@pytest.mark.parametrize("variable", sorted(VAPI_ENV))
def test_a_hosted_provider_without_its_own_credentials_stops(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in VAPI_ENV.items():
        if name != variable:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SettingsError, match=variable):
        _settings(provider="vapi", **STRONG)


def test_a_hosted_provider_refuses_a_placeholder_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIALER_VAPI_API_KEY", "changeme")
    monkeypatch.setenv("DIALER_VAPI_WEBHOOK_SECRET", VAPI_ENV["DIALER_VAPI_WEBHOOK_SECRET"])
    with pytest.raises(SettingsError, match="DIALER_VAPI_API_KEY"):
        _settings(provider="vapi", **STRONG)


def test_an_unknown_provider_stops_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="DIALER_PROVIDER: 'vapy' is not one of"):
        _settings(provider="vapy", **STRONG)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("webhook_secret", None),  # the default: whsec_sandbox
        ("provider_api_key", None),  # sk_sandbox
        ("whatsapp_token", None),  # wa_sandbox
        ("webhook_secret", "whsec_sandbox"),
        ("provider_api_key", "change-me"),  # the example k8s secret's placeholder
        ("webhook_secret", "short"),
        ("whatsapp_token", "x" * (MIN_SECRET_CHARS - 1)),
    ],
)
def test_a_real_provider_refuses_a_default_or_short_secret(
    setting: str, value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in STRONG:
        monkeypatch.delenv(f"DIALER_{name.upper()}", raising=False)
    overrides: dict[str, object] = {k: v for k, v in STRONG.items() if k != setting}
    if value is not None:
        overrides[setting] = value
    with pytest.raises(SettingsError, match=f"DIALER_{setting.upper()}"):
        _settings(provider="http", **overrides)


def test_every_weak_secret_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        _settings(provider="http")
    message = str(raised.value)
    for name in STRONG:
        assert f"DIALER_{name.upper()}" in message
    assert "whsec_sandbox" not in message, "a secret's value is never echoed"
