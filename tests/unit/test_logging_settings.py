"""Phone numbers are masked in logs; a bad setting names itself."""

from __future__ import annotations

import pytest

from dialer.errors import SettingsError
from dialer.logging import mask_phone, mask_phone_numbers
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
