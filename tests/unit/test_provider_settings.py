"""Provider settings: no default or placeholder secret, one call bucket per account,
and the registry-facing verifier with the account's secret bound in.
"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from dialer.providers import elevenlabs, retell, twilio_voice, vapi
from dialer.providers.base import VoiceProvider
from dialer.providers.seen_once import InMemorySeenOnce
from dialer.providers.signing import SignatureError
from dialer.providers.webhook_auth import WebhookReplayed
from tests.voice_fixtures import (
    ELEVENLABS_DONE,
    RETELL_ANALYZED,
    TWILIO_ACCOUNT,
    TWILIO_TOKEN,
    VAPI_END_OF_CALL,
)

NOW = 1741014130.0


@pytest.mark.parametrize("value", ["", "short", "changeme", "CHANGEME", "password", "  secret  "])
def test_placeholder_or_short_secrets_are_refused_naming_the_field(value: str) -> None:
    with pytest.raises(ValidationError, match="webhook_secret: not a usable secret"):
        vapi.Settings(api_key="vapi-private-key", webhook_secret=value)


def test_twilio_auth_token_is_checked_too() -> None:
    with pytest.raises(ValidationError, match="auth_token"):
        twilio_voice.Settings(account_sid=TWILIO_ACCOUNT, auth_token="test")


def test_documented_rates_become_one_bucket_per_account() -> None:
    first = retell.Settings(api_key="retell-account-one", calls_per_second=2.5)
    second = retell.Settings(api_key="retell-account-two")
    limits = first.bucket_limits()
    assert (limits.rate_per_second, limits.burst) == (2.5, 3)
    assert first.limiter_key("retell") != second.limiter_key("retell")
    assert "retell-account-one" not in first.limiter_key("retell")  # a digest, not the key
    twilio = twilio_voice.Settings(account_sid=TWILIO_ACCOUNT, auth_token=TWILIO_TOKEN)
    assert twilio.limiter_key("twilio") == f"ratelimit:provider_calls:twilio:{TWILIO_ACCOUNT}"
    assert twilio.bucket_limits().rate_per_second == 1.0  # Twilio's default CPS


def test_the_verifier_binds_secret_mode_tolerance_and_replay_guard() -> None:
    settings = vapi.Settings(
        api_key="vapi-private-key", webhook_secret="vapi-hook-secret", webhook_auth="secret"
    )
    check = vapi.verifier(settings, InMemorySeenOnce())
    body = json.dumps(VAPI_END_OF_CALL).encode()
    check({vapi.SECRET_HEADER: "vapi-hook-secret"}, body, "https://hooks.example", NOW)
    with pytest.raises(WebhookReplayed):
        check({vapi.SECRET_HEADER: "vapi-hook-secret"}, body, "https://hooks.example", NOW)
    with pytest.raises(SignatureError):
        check({vapi.SECRET_HEADER: "other"}, body, "https://hooks.example", NOW)


def test_every_module_exposes_the_same_registry_surface() -> None:
    for module in (vapi, retell, twilio_voice, elevenlabs):
        assert f"/webhooks/calls/{module.PROVIDER_NAME}" == module.WEBHOOK_PATH
        assert module.HONOURS_IDEMPOTENCY_KEY is (module is retell)
        for name in ("Settings", "build", "verifier", "verify_webhook", "parse_webhook", "sign"):
            assert callable(getattr(module, name)), f"{module.__name__}.{name}"


def test_seed_named_extraction_items_fill_the_seed_000_fields() -> None:
    custom = {
        "agent_goal_result": "achieved",
        "agent_goal_rationale": "The customer booked.",
        "agent_goal_score": "0.8",
        "follow_up_required": "false",
        "escalation_required": True,
        "escalation_required_rationale": "Asked for a manager.",
        "call_summary_title": "Booked",
        "customer_sentiment": "Negative",  # Retell's own user_sentiment wins
    }
    call = {**RETELL_ANALYZED, "call_analysis": {**RETELL_ANALYZED["call_analysis"]}}
    call["call_analysis"]["custom_analysis_data"] = custom
    analysis = retell.call_record(call).analysis
    assert analysis is not None
    assert (analysis.goal_result, analysis.goal_score, analysis.summary_title) == (
        "achieved",
        0.8,
        "Booked",
    )
    assert (analysis.follow_up_required, analysis.escalation_required) == (False, True)
    assert analysis.escalation_rationale == "Asked for a manager."
    assert analysis.sentiment == "positive"
    items = {"agent_goal_result": {"data_collection_id": "x", "value": "not_achieved"}}
    conversation = {
        **ELEVENLABS_DONE,
        "analysis": {**ELEVENLABS_DONE["analysis"], "data_collection_results": items},
    }
    eleven = elevenlabs.conversation_record(conversation).analysis
    assert eleven is not None
    assert (eleven.goal_result, eleven.goal_score) == ("not_achieved", 0.9)


def test_every_adapter_is_a_voice_provider() -> None:
    """Typed: mypy checks that each adapter satisfies the pipeline's protocol."""
    adapters: list[VoiceProvider] = [
        vapi.build(vapi.Settings(api_key="vapi-private-key", webhook_secret="vapi-hook-secret")),
        retell.build(retell.Settings(api_key="retell-api-key")),
        twilio_voice.build(
            twilio_voice.Settings(account_sid=TWILIO_ACCOUNT, auth_token=TWILIO_TOKEN)
        ),
        elevenlabs.build(
            elevenlabs.Settings(api_key="xi-api-key-1", webhook_secret="el-hook-secret")
        ),
    ]
    assert [a.name for a in adapters] == ["vapi", "retell", "twilio", "elevenlabs"]
