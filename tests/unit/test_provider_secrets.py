"""A real provider never runs on the public sandbox secrets (issue 14, item 1).

The sandbox values are in the repository: anyone can sign a webhook with them. The
simulated provider talks to no one, so it may keep them; any other provider refuses
to start, and the message names the setting to change.
"""

from __future__ import annotations

import pytest

from dialer.errors import SettingsError
from dialer.settings import MIN_SECRET_CHARS, load_settings

STRONG = {
    "webhook_secret": "whsec_" + "k" * 32,
    "provider_api_key": "sk_live_" + "p" * 32,
    "whatsapp_token": "EAAG" + "t" * 40,
    "whatsapp_app_secret": "a" * 32,
    "whatsapp_verify_token": "verify-" + "v" * 20,
}


def _settings(**overrides: object) -> object:
    return load_settings(_env_file=None, **overrides)


def test_the_simulated_provider_may_keep_the_sandbox_defaults() -> None:
    settings = _settings(provider="simulated")
    assert settings.webhook_secret.get_secret_value() == "whsec_sandbox"  # type: ignore[attr-defined]


def test_a_real_provider_with_strong_secrets_starts() -> None:
    settings = _settings(provider="http", **STRONG)
    assert settings.provider == "http"  # type: ignore[attr-defined]


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
