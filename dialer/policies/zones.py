"""Which time zones a contact lives in, and where that answer came from.

Order of trust: the customer's explicit IANA zone, then the zone(s) the phone number's
prefix maps to, then the campaign's zone. A prefix can map to several zones (a mobile
range covering a whole country); the window policy then requires all of them to be
open at once.

An invalid explicit zone on a customer record must not stop the campaign: it is
ignored (and reported in ``ContactZones.rejected_explicit_timezone`` so the UI can
show it) and the phone, then the campaign, decide instead. An invalid campaign zone
is a campaign configuration error and raises ``ValidationFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

from dialer.errors import ValidationFailed

# What phonenumbers answers when it cannot place a number.
_UNKNOWN_ZONE = "Etc/Unknown"


class ZoneSource(StrEnum):
    """Where a contact's zones came from."""

    EXPLICIT = "explicit"
    PHONE = "phone"
    CAMPAIGN = "campaign"


@dataclass(frozen=True, slots=True)
class ContactZones:
    """The zones to respect when calling a contact, and their provenance."""

    zones: tuple[ZoneInfo, ...]
    source: ZoneSource
    # The customer's explicit zone when it was set but not a valid IANA name.
    rejected_explicit_timezone: str | None = None


def parse_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or ValidationFailed on the ``timezone`` field."""
    try:
        return ZoneInfo(name)
    # Unknown keys raise ZoneInfoNotFoundError; malformed ones ("", "/abs", "../x")
    # ValueError; a directory name such as "America" IsADirectoryError (an OSError).
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed("timezone", f"unknown IANA time zone {name!r}") from None


def resolve_contact_zones(
    explicit_timezone: str | None, phone_e164: str | None, campaign_timezone: str
) -> ContactZones:
    """The contact's zones: explicit, else from the phone number, else the campaign's."""
    rejected = None
    if explicit_timezone:
        explicit = _valid_zone(explicit_timezone)
        if explicit is not None:
            return ContactZones((explicit,), ZoneSource.EXPLICIT)
        rejected = explicit_timezone
    from_phone = _phone_zones(phone_e164) if phone_e164 else ()
    if from_phone:
        return ContactZones(from_phone, ZoneSource.PHONE, rejected)
    return ContactZones((parse_zone(campaign_timezone),), ZoneSource.CAMPAIGN, rejected)


def contact_zones(
    explicit_timezone: str | None, phone_e164: str | None, campaign_timezone: str
) -> tuple[ZoneInfo, ...]:
    """Just the zones of ``resolve_contact_zones``."""
    return resolve_contact_zones(explicit_timezone, phone_e164, campaign_timezone).zones


@lru_cache(maxsize=65536)
def _phone_zones(phone_e164: str) -> tuple[ZoneInfo, ...]:
    """Zones for a number's prefix; () when phonenumbers cannot place it.

    Cached per number: parsing and the prefix lookup cost tens of microseconds, and the
    scheduler resolves the same contacts again on every tick.
    """
    try:
        number = phonenumbers.parse(phone_e164)
    except phonenumbers.NumberParseException:
        return ()
    names = phone_timezone.time_zones_for_number(number)
    zones = (_valid_zone(name) for name in dict.fromkeys(names) if name != _UNKNOWN_ZONE)
    # A name phonenumbers knows but this tzdata does not is skipped, not fatal.
    return tuple(zone for zone in zones if zone is not None)


def _valid_zone(name: str) -> ZoneInfo | None:
    try:
        return parse_zone(name)
    except ValidationFailed:
        return None
