"""Every voice adapter's placement request carries the campaign's voicemail policy.

Dispatch puts the policy in the request's context (``voicemail_action``, and the
rendered ``voicemail_message`` to leave); each adapter must hand both to the agent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from dialer.policies.vocabulary import VoicemailAction
from dialer.providers import elevenlabs, http_voice, retell, twilio_voice, vapi
from dialer.providers.base import PlaceCallRequest
from dialer.services.dispatch import voicemail_context
from models import Campaign

MESSAGE = "Hello Ann, this is Acme: please call us back."
LEAVE = {"voicemail_action": "leave_message", "voicemail_message": MESSAGE}


def request(context: dict[str, Any], agent_id: str = "agt_1") -> PlaceCallRequest:
    return PlaceCallRequest(
        idempotency_key="att:1:1",
        agent_id=agent_id,
        to="+390612345600",
        from_number="+12125550199",
        context=context,
        metadata={"attempt_id": "a1"},
    )


def _vapi(r: PlaceCallRequest) -> Any:
    return vapi.call_request_body(r, "pn_1")


def _retell(r: PlaceCallRequest) -> Any:
    return retell.call_request_body(r, None)


def _elevenlabs(r: PlaceCallRequest) -> Any:
    return elevenlabs.call_request_body(r, "pn_1")


def _twilio(r: PlaceCallRequest) -> Any:
    relay = request(dict(r.context), agent_id="wss://agent.example/relay")
    return twilio_voice.conversation_relay_twiml(relay)


def _seed_004(r: PlaceCallRequest) -> Any:
    return http_voice.call_request_body(r)


# Where each adapter puts the agent's per-call variables.
VARIABLES: list[tuple[str, Callable[[PlaceCallRequest], Any], Callable[[Any], Any]]] = [
    ("vapi", _vapi, lambda body: body["assistantOverrides"]["variableValues"]),
    ("retell", _retell, lambda body: body["retell_llm_dynamic_variables"]),
    (
        "elevenlabs",
        _elevenlabs,
        lambda body: body["conversation_initiation_client_data"]["dynamic_variables"],
    ),
    ("seed_004", _seed_004, lambda body: body["context"]),
]


@pytest.mark.parametrize(("name", "build", "variables"), VARIABLES)
def test_the_voicemail_policy_reaches_the_agents_variables(
    name: str, build: Callable[[PlaceCallRequest], Any], variables: Callable[[Any], Any]
) -> None:
    carried = variables(build(request(LEAVE)))
    assert (carried["voicemail_action"], carried["voicemail_message"]) == (
        "leave_message",
        MESSAGE,
    ), name


def test_twilio_passes_the_policy_as_relay_parameters() -> None:
    twiml = _twilio(request(LEAVE))
    assert '<Parameter name="voicemail_action" value="leave_message"' in twiml
    assert f'<Parameter name="voicemail_message" value="{MESSAGE}"' in twiml


def test_retell_sets_its_own_voicemail_option_for_the_call() -> None:
    body = retell.call_request_body(request(LEAVE), None, webhook_url="https://us.example/h")
    agent = body["agent_override"]["agent"]
    assert agent["voicemail_option"] == {"action": {"type": "static_text", "text": MESSAGE}}
    assert agent["webhook_url"] == "https://us.example/h"  # kept beside it
    hang_up = _retell(request({"voicemail_action": "hang_up"}))
    assert hang_up["agent_override"]["agent"]["voicemail_option"] == {"action": {"type": "hangup"}}
    no_text = _retell(request({"voicemail_action": "leave_message"}))
    assert no_text["agent_override"]["agent"]["voicemail_option"] == {"action": {"type": "hangup"}}


@pytest.mark.parametrize(
    ("context", "configured", "expected"),
    [
        (LEAVE, "Enable", "DetectMessageEnd"),  # speak after the beep
        ({"voicemail_action": "hang_up"}, "DetectMessageEnd", "Enable"),  # know at once
        ({"voicemail_action": "hang_up"}, "off", "Enable"),  # a policy needs detection
        ({}, "off", None),
        ({}, "DetectMessageEnd", "DetectMessageEnd"),
    ],
)
def test_twilio_chooses_its_machine_detection_from_the_policy(
    context: dict[str, str], configured: str, expected: str | None
) -> None:
    settings = twilio_voice.Settings(
        account_sid="AC" + "0" * 32,
        auth_token=SecretStr("t" * 32),
        machine_detection=configured,
    )
    form = dict(twilio_voice.call_request_form(request(context, "AP123"), settings, None))
    assert form.get("MachineDetection") == expected


def test_vapi_also_sets_the_assistants_voicemail_message() -> None:
    assert _vapi(request(LEAVE))["assistantOverrides"]["voicemailMessage"] == MESSAGE
    hang_up = _vapi(request({"voicemail_action": "hang_up"}))["assistantOverrides"]
    assert "voicemailMessage" not in hang_up


@pytest.mark.parametrize(("name", "build", "variables"), VARIABLES)
def test_no_policy_sends_nothing_about_voicemail(
    name: str, build: Callable[[PlaceCallRequest], Any], variables: Callable[[Any], Any]
) -> None:
    body = build(request({"opening_message": "Hi"}))
    assert "voicemail" not in json.dumps(body), name


@pytest.mark.parametrize(
    ("action", "message", "expected"),
    [
        (None, None, {}),
        (None, "ignored without an action", {}),
        (VoicemailAction.HANG_UP, "not left", {"voicemail_action": "hang_up"}),
        (
            VoicemailAction.LEAVE_MESSAGE,
            "Hi {{name}}, call us",
            {"voicemail_action": "leave_message", "voicemail_message": "Hi Ann, call us"},
        ),
    ],
)
def test_dispatch_renders_the_campaigns_policy_into_the_context(
    action: VoicemailAction | None, message: str | None, expected: dict[str, str]
) -> None:
    campaign = Campaign(voicemail_action=action, voicemail_message=message)
    assert voicemail_context(campaign, {"name": "Ann"}) == expected


def test_a_long_field_cannot_make_the_message_run_on() -> None:
    campaign = Campaign(
        voicemail_action=VoicemailAction.LEAVE_MESSAGE, voicemail_message="Hi {{name}}"
    )
    rendered = voicemail_context(campaign, {"name": "x" * 5000})["voicemail_message"]
    assert len(rendered) == 1000
