"""Personal data is masked in logs; bound context reaches every event; bad settings are named."""

from __future__ import annotations

import json

import pytest
import structlog

from dialer.errors import SettingsError
from dialer.logging import (
    configure_logging,
    get_logger,
    mask_email,
    mask_name,
    mask_phone,
    mask_phone_numbers,
)
from dialer.settings import load_settings


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+14155550123", "+1********23"),
        ("call to +44 20 7946 0000 failed", "call to +4*********00 failed"),
        ("attempt 12345 of campaign 7", "attempt 12345 of campaign 7"),
    ],
)
def test_mask_phone(text: str, masked: str) -> None:
    assert mask_phone(text) == masked


def test_processor_masks_nested_values_but_not_timestamps() -> None:
    event = {
        "event": "dialing",
        "to": "+14155550123",
        "ctx": {"from": ["+12125550100"]},
        "timestamp": "2026-11-22T10:00:00",
    }
    out = mask_phone_numbers(None, "info", event)
    assert out["to"] == "+1********23"
    assert out["ctx"] == {"from": ["+1********00"]}
    assert out["timestamp"] == "2026-11-22T10:00:00"


def test_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_CLOCK_SPEED", "-3")
    with pytest.raises(SettingsError, match="DIALER_CLOCK_SPEED"):
        load_settings()


def test_legal_window_must_be_a_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_LEGAL_WINDOW_START", "22:00")
    with pytest.raises(SettingsError, match="legal_window_start must be before legal_window_end"):
        load_settings()


def test_names_and_emails_are_masked_where_they_appear() -> None:
    event = {
        "event": "customer_rejected",
        "customer_name": "Maria",
        "surname": "Rossi",
        "customer": {"name": "Maria Rossi", "email": "maria.rossi@example.com"},
        "campaign": {"name": "Spring renewals"},  # not a person: kept
        "reason": "duplicate of maria.rossi@example.com",
    }
    out = mask_phone_numbers(None, "info", event)
    assert (out["customer_name"], out["surname"]) == ("M***", "R***")
    assert out["customer"] == {"name": "M***", "email": "m***@example.com"}
    assert out["campaign"] == {"name": "Spring renewals"}
    assert out["reason"] == "duplicate of m***@example.com"
    assert mask_email("no address here") == "no address here"
    assert mask_name("") == ""


def test_a_bound_context_reaches_every_event_and_is_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(load_settings(log_format="json"), force=True)
    log = get_logger("test")
    with structlog.contextvars.bound_contextvars(request_id="req-1", task_id="t-1"):
        log.info("call_dispatch_failed", attempt_id="a-1", to="+14155550123", first_name="Ann")
    log.info("after_the_block")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines()[-2:])
    assert first["event"] == "call_dispatch_failed"
    assert (first["request_id"], first["task_id"], first["attempt_id"]) == ("req-1", "t-1", "a-1")
    assert (first["to"], first["first_name"]) == ("+1********23", "A***")
    assert "request_id" not in second
