"""Twilio Messaging (SMS) and Meta's WhatsApp webhook scheme: contracts from the docs.

Fixtures are written from Twilio's Message resource and status-callback pages and
Meta's webhook pages (URLs in dialer.providers.twilio_sms / meta_webhooks): request
building, every documented status, inbound replies, signatures valid/forged, and the
GET handshake.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from dialer.composition.providers import check_provider_settings
from dialer.errors import SettingsError
from dialer.policies.goals import ContactObjective, GoalFacts, evaluate_objective
from dialer.policies.vocabulary import Channel
from dialer.providers import twilio_sms
from dialer.providers.base import PermanentProviderError, SendMessageRequest
from dialer.providers.events import MESSAGE_INBOUND_EVENT, MESSAGE_STATUS_EVENT
from dialer.providers.meta_webhooks import (
    SIGNATURE_HEADER,
    answer_handshake,
    meta_signature,
    verify_meta_signature,
    whatsapp_verifier,
)
from dialer.providers.registry import ProviderConfig, SignedRequest
from dialer.providers.signing import SignatureError, sign_headers
from dialer.providers.twilio_sms import TwilioSmsConfig, message_form, parse_event
from dialer.providers.whatsapp import parse_webhook
from dialer.schemas import CampaignSpec
from dialer.services.messages import is_help_request, is_stop_request
from dialer.settings import load_settings

CONFIG = TwilioSmsConfig(
    base_url="https://api.twilio.com",
    account_sid="AC" + "a" * 32,
    auth_token="t" * 32,
    from_number="+12125550100",
    status_callback_url="https://hooks.example/webhooks/sms/twilio",
)
URL = "https://hooks.example/webhooks/sms/twilio"
TOKEN = "twilio-auth-token-" + "x" * 14
APP_SECRET = "meta-app-secret-" + "s" * 16


def sms(**changes: object) -> SendMessageRequest:
    fields: dict[str, object] = {
        "idempotency_key": "msg:1",
        "channel": Channel.SMS,
        "to": "+393331234567",
        "body": "Hi Anna, we tried to call you.",
    }
    return SendMessageRequest(**(fields | changes))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- sending


def test_the_form_names_to_from_body_and_the_status_callback() -> None:
    assert message_form(sms(), CONFIG) == {
        "To": "+393331234567",
        "From": "+12125550100",
        "Body": "Hi Anna, we tried to call you.",
        "StatusCallback": URL,
    }


def test_a_messaging_service_replaces_from() -> None:
    service = "MG" + "b" * 32
    form = message_form(sms(sender=service), CONFIG)
    assert form["MessagingServiceSid"] == service
    assert "From" not in form
    assert message_form(sms(sender="+12125550111"), CONFIG)["From"] == "+12125550111"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"channel": Channel.WHATSAPP}, "unsupported_channel"),
        ({"to": "3331234567"}, "invalid_recipient"),
        ({"body": "   "}, "validation_error"),
        ({"body": "x" * 1601}, "validation_error"),
        ({"idempotency_key": ""}, "validation_error"),
    ],
)
def test_a_request_twilio_would_refuse_is_refused_before_sending(
    changes: dict[str, object], code: str
) -> None:
    with pytest.raises(PermanentProviderError) as refused:
        message_form(sms(**changes), CONFIG)
    assert refused.value.code == code


# --------------------------------------------------------------------------- status callbacks


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [
        ("queued", "queued"),
        ("accepted", "queued"),
        ("scheduled", "queued"),
        ("sending", "queued"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("undelivered", "failed"),
        ("failed", "failed"),
        ("canceled", "canceled"),
    ],
)
def test_every_documented_status_maps(twilio_status: str, ours: str) -> None:
    event = parse_event(twilio_sms.status_callback("SM1", twilio_status, to="+393331234567"))
    assert event.kind == MESSAGE_STATUS_EVENT
    assert event.event_id == f"SM1:{twilio_status}"
    assert event.message_status is not None
    assert event.message_status.status == ours
    assert event.message_status.provider_message_id == "SM1"


def test_an_undelivered_message_says_why() -> None:
    fields = twilio_sms.status_callback("SM1", "undelivered", to="+39333", error_code="30003")
    update = parse_event(fields).message_status
    assert update is not None
    assert update.error == "undelivered: 30003"


def test_an_unknown_status_or_missing_sid_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="MessageStatus"):
        parse_event({"MessageSid": "SM1", "MessageStatus": "teleported"})
    with pytest.raises(ValueError, match="MessageSid"):
        parse_event({"MessageStatus": "sent"})


def test_an_inbound_message_is_a_reply_on_the_sms_channel() -> None:
    fields = twilio_sms.inbound_message("SMin1", "+393331234567", "+12125550100", "Call me")
    event = parse_event(fields)
    assert event.kind == MESSAGE_INBOUND_EVENT
    assert event.event_id == "SMin1:inbound"
    assert event.inbound is not None
    assert (event.inbound.channel, event.inbound.from_address, event.inbound.text) == (
        "sms",
        "+393331234567",
        "Call me",
    )
    assert event.inbound.opt_out is False
    flagged = twilio_sms.inbound_message("SMin2", "+39333", "+1212", "Basta!", opt_out_type="STOP")
    assert parse_event(flagged).inbound.opt_out is True  # type: ignore[union-attr]


def test_the_inbox_parser_tells_sms_bodies_from_others() -> None:
    def other(_payload: object) -> object:
        raise AssertionError("not an SMS body")

    parse = twilio_sms.sms_aware(other)  # type: ignore[arg-type]
    assert parse(twilio_sms.status_callback("SM9", "sent", to="+1")).event_id == "SM9:sent"
    assert not twilio_sms.is_sms_webhook({"CallSid": "CA1", "MessageSid": "x", "SmsStatus": "x"})


@pytest.mark.parametrize(
    ("text", "stop", "help_"),
    [
        ("STOP", True, False),
        ("Stop all", True, False),
        ("unsubscribe", True, False),
        ("CANCEL", True, False),
        ("end", True, False),
        ("QUIT", True, False),
        ("optout", True, False),
        ("REVOKE", True, False),
        ("HELP", False, True),
        ("info", False, True),
        ("please stop calling me at work but sms is fine", False, False),
        ("Yes call me", False, False),
    ],
)
def test_twilio_standard_keywords(text: str, stop: bool, help_: bool) -> None:
    assert (is_stop_request(text), is_help_request(text)) == (stop, help_)


# --------------------------------------------------------------------------- signatures


def _form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def test_a_twilio_signature_over_url_and_form_is_accepted() -> None:
    body = _form(twilio_sms.status_callback("SM1", "delivered", to="+39333"))
    twilio_sms.verify_signature(twilio_sms.sign(URL, body, TOKEN), body, URL, TOKEN)


@pytest.mark.parametrize(
    "forge",
    [
        lambda body: ({}, body, URL, TOKEN),  # unsigned
        lambda body: (twilio_sms.sign(URL, body, "other-token-" + "o" * 20), body, URL, TOKEN),
        lambda body: (twilio_sms.sign(URL, body, TOKEN), body + b"&Body=x", URL, TOKEN),
        lambda body: (twilio_sms.sign(URL, body, TOKEN), body, URL + "?x=1", TOKEN),
        lambda body: (twilio_sms.sign(URL, body, TOKEN), body, URL, ""),  # SMS off
    ],
    ids=["unsigned", "other-key", "tampered-body", "other-url", "no-token"],
)
def test_a_forged_twilio_request_is_refused(forge) -> None:  # type: ignore[no-untyped-def]
    body = _form(twilio_sms.status_callback("SM1", "delivered", to="+39333"))
    with pytest.raises(SignatureError):
        twilio_sms.verify_signature(*forge(body))


def _meta_status_body() -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
        "statuses": [
            {
                "id": "wamid.HBgLMTU1NTAwMDExMTEVAgARGBI1",
                "status": "delivered",
                "timestamp": "1733220000",
                "recipient_id": "393331234567",
                "conversation": {"id": "c1", "origin": {"type": "utility"}},
                "pricing": {"billable": True, "pricing_model": "CBP", "category": "utility"},
            }
        ],
    }
    change = {"field": "messages", "value": value}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    return json.dumps(payload).encode()


def test_meta_signs_the_raw_body_with_the_app_secret() -> None:
    body = _meta_status_body()
    verify_meta_signature({SIGNATURE_HEADER: meta_signature(body, APP_SECRET)}, body, APP_SECRET)
    (event,) = parse_webhook(json.loads(body))
    assert event.message_status is not None
    assert event.message_status.status == "delivered"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "sha1=abc",
        "sha256=" + "0" * 64,
        "MUTATED",  # right secret, other body
    ],
)
def test_a_forged_meta_signature_is_refused(header: str | None) -> None:
    body = _meta_status_body()
    if header == "MUTATED":
        header = meta_signature(body + b" ", APP_SECRET)
    headers = {} if header is None else {SIGNATURE_HEADER: header}
    with pytest.raises(SignatureError):
        verify_meta_signature(headers, body, APP_SECRET)


def _config(**secrets: str) -> ProviderConfig:
    values = {"webhook_secret": SecretStr("whsec_" + "w" * 20)} | {
        name: SecretStr(value) for name, value in secrets.items()
    }
    return ProviderConfig(load_settings(_env_file=None).model_copy(update=values))


def _request(headers: dict[str, str], body: bytes, at: float) -> SignedRequest:
    return SignedRequest(headers, body, URL, URL, at)


def test_the_whatsapp_route_takes_meta_or_the_projects_scheme_with_its_clock() -> None:
    check = whatsapp_verifier(_config(whatsapp_app_secret=APP_SECRET))
    body, now = _meta_status_body(), 1_733_220_000.0
    check(_request({SIGNATURE_HEADER: meta_signature(body, APP_SECRET)}, body, now))
    check(_request(sign_headers("whsec_" + "w" * 20, int(now), body), body, now))
    with pytest.raises(SignatureError):  # the project's scheme keeps its freshness check
        check(_request(sign_headers("whsec_" + "w" * 20, int(now) - 3600, body), body, now))
    with pytest.raises(SignatureError):  # Meta's header with the wrong secret is not ours
        check(_request({SIGNATURE_HEADER: meta_signature(body, "x" * 32)}, body, now))


# --------------------------------------------------------------------------- handshake


def test_the_handshake_echoes_the_challenge_only_for_our_token() -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "tok-" + "v" * 20,
        "hub.challenge": "1158201444",
    }
    assert answer_handshake(query, "tok-" + "v" * 20) == "1158201444"
    for bad in (
        query | {"hub.verify_token": "guess"},
        query | {"hub.mode": "unsubscribe"},
        query | {"hub.challenge": ""},
        query | {"hub.challenge": "x" * 257},
    ):
        with pytest.raises(SignatureError):
            answer_handshake(bad, "tok-" + "v" * 20)
    with pytest.raises(SignatureError, match="DIALER_WHATSAPP_VERIFY_TOKEN"):
        answer_handshake(query, "")


# --------------------------------------------------------------------------- settings


STRONG = {
    "webhook_secret": "whsec_" + "k" * 32,
    "provider_api_key": "sk_live_" + "p" * 32,
    "whatsapp_token": "EAAG" + "t" * 40,
    "whatsapp_app_secret": "a" * 32,
    "whatsapp_verify_token": "v" * 24,
}


@pytest.mark.parametrize(
    ("sms", "named"),
    [
        ({"sms_account_sid": "AC" + "1" * 32}, "DIALER_SMS_AUTH_TOKEN"),
        ({"sms_account_sid": "AC" + "1" * 32, "sms_auth_token": "short"}, "DIALER_SMS_AUTH_TOKEN"),
        (
            {"sms_account_sid": "AC" + "1" * 32, "sms_auth_token": "t" * 32},
            "DIALER_SMS_FROM_NUMBER",
        ),
        ({"sms_account_sid": "not-a-sid"}, "DIALER_SMS_ACCOUNT_SID"),
        ({"whatsapp_app_secret": ""}, "DIALER_WHATSAPP_APP_SECRET"),
        ({"whatsapp_verify_token": "short"}, "DIALER_WHATSAPP_VERIFY_TOKEN"),
    ],
)
def test_a_real_provider_refuses_missing_sms_or_meta_secrets(
    sms: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*STRONG, "sms_account_sid", "sms_auth_token", "sms_from_number"):
        monkeypatch.delenv(f"DIALER_{name.upper()}", raising=False)
    with pytest.raises(SettingsError, match=named):
        # As a process's start-up checks them: the settings, then the registry entry's rule.
        check_provider_settings(load_settings(_env_file=None, provider="http", **(STRONG | sms)))


def test_sms_is_off_until_an_account_sid_is_set_and_on_with_its_secret() -> None:
    assert load_settings(_env_file=None, provider="http", **STRONG).sms_account_sid == ""
    on = {"sms_account_sid": "AC" + "1" * 32, "sms_auth_token": "t" * 32, "sms_from_number": "+1"}
    assert load_settings(_env_file=None, provider="http", **(STRONG | on)).sms_account_sid


# --------------------------------------------------------------------------- campaigns, goals

BASE = {"name": "c", "agent_id": "00000000-0000-0000-0000-000000000001"}
SENDER = {"whatsapp_channel": {"name": "SMS", "address": "+12125550197"}}


def test_a_campaign_may_choose_sms_as_fallback_and_first_contact() -> None:
    spec = CampaignSpec.model_validate(
        BASE
        | SENDER
        | {
            "fallback_channel": "sms",
            "first_contact_channel": "sms",
            "whatsapp_first_message": "Hi {{name}}",
        }
    )
    assert spec.fallback == Channel.SMS
    assert CampaignSpec.model_validate(BASE).fallback == Channel.WHATSAPP  # seed 002 as it was


def test_an_sms_first_contact_needs_the_sms_fallback() -> None:
    with pytest.raises(ValueError, match="needs fallback_channel 'sms'"):
        CampaignSpec.model_validate(
            BASE | SENDER | {"first_contact_channel": "sms", "whatsapp_first_message": "Hi"}
        )


def test_sms_replies_count_for_a_contact_goal_on_sms_only_when_listed() -> None:
    facts = GoalFacts(0, 0, 0, None, None, sms_replies=1)
    assert evaluate_objective(ContactObjective((Channel.SMS,)), facts).held
    assert evaluate_objective(ContactObjective(), facts).held
    assert not evaluate_objective(ContactObjective((Channel.WHATSAPP,)), facts).held
