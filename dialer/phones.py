"""Phone numbers: E.164 normalisation with phonenumbers, reasons a person can act on."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    """The text is not a valid phone number."""


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    """'+1 (212) 555-0123' -> '+12125550123'; raises InvalidPhone with the reason."""
    text = raw.strip()
    if not text.startswith("+") and not default_region:
        raise InvalidPhone(
            "no country code: write it as +<country><number> or set a default region"
        )
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"cannot parse {text!r}: {exc._msg}") from None
    if not phonenumbers.is_valid_number(parsed):
        region = phonenumbers.region_code_for_number(parsed) or "its country"
        raise InvalidPhone(f"{text!r} is not a valid number for {region}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country_of(e164: str) -> str | None:
    """The ISO region of an E.164 number, or None when unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
