"""WhatsApp Cloud webhooks -> ProviderEvents, and the request bodies the adapter sends."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from dialer.providers.base import MessageStatusUpdate, PermanentProviderError, SendMessageRequest
from dialer.providers.events import event_payload, message_status_event, parse_event_payload
from dialer.providers.whatsapp import (
    TEMPLATE_KEY,
    TEMPLATE_LANGUAGE_KEY,
    TEMPLATE_PARAMS_KEY,
    inbound_webhook,
    message_body,
    parse_single_event,
    parse_webhook,
    split_webhook,
    status_webhook,
    whatsapp_aware,
)

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
PHONE = "+390612345600"
PNID = "pn_1"
_VALUE = ("entry", 0, "changes", 0, "value")  # the path to a change's value


def statuses_and_reply() -> dict[str, Any]:
    """Two entries: statuses of two messages in one change, and a reply in the other."""
    body = status_webhook("wamid.A", "delivered", AT, PHONE, phone_number_id=PNID)
    read = status_webhook("wamid.B", "read", AT, PHONE, phone_number_id=PNID)
    _at(body, *_VALUE, "statuses").append(_at(read, *_VALUE, "statuses", 0))
    reply = inbound_webhook(
        "wamid.R", PHONE, "Yes", AT, phone_number_id=PNID, in_reply_to="wamid.A"
    )
    body["entry"].append(reply["entry"][0])
    return body


def _at(body: dict[str, Any], *path: Any) -> Any:
    for part in path:
        body = body[part]
    return body


def test_status_webhooks_become_message_status_events() -> None:
    for status in ("sent", "delivered", "read"):
        (event,) = parse_webhook(status_webhook("wamid.X", status, AT, PHONE, phone_number_id=PNID))
        assert (event.provider, event.event_id, event.kind) == (
            "whatsapp",
            f"wamid.X:{status}",
            "message.status",
        )
        assert event.occurred_at == AT
        assert event.message_status is not None
        assert (event.message_status.provider_message_id, event.message_status.status) == (
            "wamid.X",
            status,
        )
        assert event.message_status.error is None


def test_a_failed_status_carries_the_cloud_error() -> None:
    errors = [{"code": 131026, "title": "Message undeliverable"}]
    body = status_webhook("wamid.X", "failed", AT, PHONE, phone_number_id=PNID, errors=errors)
    (event,) = parse_webhook(body)
    assert event.message_status is not None
    assert event.message_status.error == "131026: Message undeliverable"


def test_an_inbound_reply_reads_sender_text_and_the_message_it_answers() -> None:
    body = inbound_webhook(
        "wamid.R", PHONE, "Call me", AT, phone_number_id=PNID, in_reply_to="wamid.A"
    )
    (event,) = parse_webhook(body)
    assert (event.event_id, event.kind, event.occurred_at) == (
        "wamid.R:inbound",
        "message.inbound",
        AT,
    )
    assert event.inbound is not None
    assert event.inbound.from_address == PHONE  # Cloud "390612345600" back to E.164
    assert (event.inbound.text, event.inbound.in_reply_to) == ("Call me", "wamid.A")
    assert event.inbound.channel == "whatsapp"


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"type": "button", "button": {"text": "STOP", "payload": "stop"}}, "STOP"),
        (
            {"type": "interactive", "interactive": {"button_reply": {"id": "y", "title": "Yes"}}},
            "Yes",
        ),
        ({"type": "interactive", "interactive": {"list_reply": {"title": "Later"}}}, "Later"),
        ({"type": "image", "image": {"id": "media1"}}, ""),  # still a reply, without words
    ],
    ids=["button", "interactive_button", "interactive_list", "image"],
)
def test_non_text_replies_are_read_as_replies(message: dict[str, Any], text: str) -> None:
    body = inbound_webhook("wamid.R", PHONE, "ignored", AT, phone_number_id=PNID)
    item = body["entry"][0]["changes"][0]["value"]["messages"][0]
    del item["text"]
    item.update(message)
    (event,) = parse_webhook(body)
    assert event.inbound is not None
    assert event.inbound.text == text
    assert event.inbound.in_reply_to is None


def test_one_body_with_several_events_gives_each_with_a_unique_stable_id() -> None:
    body = statuses_and_reply()
    events = parse_webhook(body)
    assert [event.event_id for event in events] == [
        "wamid.A:delivered",
        "wamid.B:read",
        "wamid.R:inbound",
    ]
    assert [event.event_id for event in parse_webhook(copy.deepcopy(body))] == [
        event.event_id for event in events
    ]


def test_split_gives_one_body_per_event_that_parses_back_to_the_same_event() -> None:
    body = statuses_and_reply()
    singles = split_webhook(body)
    assert [parse_single_event(json.loads(json.dumps(single))) for single in singles] == (
        parse_webhook(body)
    )
    reply = singles[2]["entry"][0]["changes"][0]["value"]
    assert reply["contacts"][0]["wa_id"] == "390612345600"  # context kept with the event
    assert "statuses" not in reply


def test_parse_single_event_refuses_a_body_with_several_events() -> None:
    with pytest.raises(ValueError, match="exactly one event, got 3"):
        parse_single_event(statuses_and_reply())


def test_changes_other_than_messages_carry_no_events() -> None:
    body = status_webhook("wamid.X", "sent", AT, PHONE, phone_number_id=PNID)
    body["entry"][0]["changes"][0] = {"field": "account_update", "value": {"event": "x"}}
    assert parse_webhook(body) == []


Mutation = Callable[[dict[str, Any]], None]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(object="page"), "object"),
        (lambda b: b.pop("entry"), "entry"),
        (lambda b: b.update(entry={"id": 1}), "entry"),
        (lambda b: b["entry"].append("x"), "entry[1]"),
        (lambda b: _at(b, "entry", 0, "changes", 0).pop("value"), "entry[0].changes[0].value"),
        (
            lambda b: _at(b, *_VALUE, "statuses", 0).pop("id"),
            "entry[0].changes[0].value.statuses[0].id",
        ),
        (
            lambda b: _at(b, *_VALUE, "statuses", 0).update(status="bounced"),
            "entry[0].changes[0].value.statuses[0].status",
        ),
        (
            lambda b: _at(b, *_VALUE, "statuses", 0).update(timestamp="yesterday"),
            "entry[0].changes[0].value.statuses[0].timestamp",
        ),
        (
            lambda b: _at(b, *_VALUE).update(statuses={"id": "x"}),
            "entry[0].changes[0].value.statuses",
        ),
    ],
    ids=[
        "object",
        "no_entry",
        "entry_not_list",
        "entry_not_object",
        "no_value",
        "no_id",
        "unknown_status",
        "bad_timestamp",
        "statuses_not_list",
    ],
)
def test_a_malformed_body_raises_naming_the_field(mutate: Mutation, field: str) -> None:
    body = status_webhook("wamid.X", "sent", AT, PHONE, phone_number_id=PNID)
    mutate(body)
    with pytest.raises(ValueError, match=f"field '{_escape(field)}'"):
        parse_webhook(body)
    with pytest.raises(ValueError, match=f"field '{_escape(field)}'"):
        split_webhook(body)


def test_an_inbound_message_without_sender_is_malformed() -> None:
    body = inbound_webhook("wamid.R", PHONE, "hi", AT, phone_number_id=PNID)
    del _at(body, *_VALUE, "messages", 0)["from"]
    with pytest.raises(ValueError, match=r"entry\[0\]\.changes\[0\]\.value\.messages\[0\]\.from"):
        parse_webhook(body)


def test_errors_do_not_echo_long_values_such_as_phone_numbers() -> None:
    body = status_webhook("wamid.X", "sent", AT, PHONE, phone_number_id=PNID)
    _at(body, *_VALUE, "statuses", 0)["timestamp"] = PHONE + " at noon, Rome time"
    with pytest.raises(ValueError) as raised:
        parse_webhook(body)
    assert "390612345600" not in str(raised.value)


def test_the_inbox_parser_routes_cloud_bodies_and_passes_others_on() -> None:
    parse = whatsapp_aware(parse_event_payload)
    cloud = status_webhook("wamid.X", "read", AT, PHONE, phone_number_id=PNID)
    assert parse(cloud).provider == "whatsapp"
    simulated = event_payload(message_status_event(MessageStatusUpdate("msg_1", "delivered"), AT))
    assert parse(simulated).event_id == "msg_1:delivered"


# --------------------------------------------------------------------------- send bodies


def request(**overrides: Any) -> SendMessageRequest:
    values: dict[str, Any] = {
        "idempotency_key": "msg:1",
        "channel": "whatsapp",
        "to": PHONE,
        "body": "Hi Ann",
    }
    return SendMessageRequest(**(values | overrides))


def test_a_plain_request_is_a_text_message_to_the_cloud_number_form() -> None:
    assert message_body(request()) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "390612345600",
        "type": "text",
        "text": {"preview_url": False, "body": "Hi Ann"},
    }


def test_template_metadata_makes_a_template_message_with_body_parameters() -> None:
    metadata = {
        TEMPLATE_KEY: "missed_call",
        TEMPLATE_LANGUAGE_KEY: "it",
        TEMPLATE_PARAMS_KEY: json.dumps(["Ann", "Dialer"]),
    }
    body = message_body(request(body="", metadata=metadata))
    assert body["type"] == "template"
    assert "text" not in body
    assert body["template"] == {
        "name": "missed_call",
        "language": {"code": "it"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "Dialer"}],
            }
        ],
    }
    plain = message_body(request(metadata={TEMPLATE_KEY: "hello_world"}))["template"]
    assert plain == {"name": "hello_world", "language": {"code": "en_US"}}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"idempotency_key": ""}, "validation_error"),
        ({"channel": "email"}, "unsupported_channel"),
        ({"to": "12"}, "invalid_recipient"),
        ({"body": "  "}, "validation_error"),
        ({"metadata": {TEMPLATE_KEY: "t", TEMPLATE_PARAMS_KEY: "[1]"}}, "validation_error"),
        ({"metadata": {TEMPLATE_KEY: "t", TEMPLATE_PARAMS_KEY: "not json"}}, "validation_error"),
    ],
)
def test_requests_that_can_never_be_sent_are_permanent_errors(
    overrides: dict[str, Any], code: str
) -> None:
    with pytest.raises(PermanentProviderError) as raised:
        message_body(request(**overrides))
    assert raised.value.code == code


def _escape(field: str) -> str:
    return field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
