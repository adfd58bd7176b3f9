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
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

from dialer.errors import ValidationFailed
from dialer.policies.zone_overrides import (
    NATIONWIDE_MOBILE,
    PREFIX_CORRECTIONS,
    PREFIX_LENGTHS,
    Correction,
)

# Longer than any IANA name (the longest is about 32): refused before any file lookup.
ZONE_NAME_MAX_LENGTH = 64

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
    if len(name) > ZONE_NAME_MAX_LENGTH:
        raise ValidationFailed("timezone", f"at most {ZONE_NAME_MAX_LENGTH} characters")
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
    names = [n for n in phone_timezone.time_zones_for_number(number) if n != _UNKNOWN_ZONE]
    digits = f"{number.country_code}{phonenumbers.national_significant_number(number)}"
    correction = _prefix_correction(digits)
    if correction is not None:
        names = list(correction.zones) if correction.replace else names + list(correction.zones)
    region = phonenumbers.region_code_for_number(number)
    nationwide = NATIONWIDE_MOBILE.get(region) if region else None
    if nationwide is not None and (
        digits.startswith(nationwide.prefixes)
        or phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    ):
        # A mobile may be anywhere in its country: every zone of it must be open.
        names += country_zone_names(region)
    zones = (_valid_zone(name) for name in dict.fromkeys(names))
    # A name phonenumbers knows but this tzdata does not is skipped, not fatal.
    return tuple(zone for zone in zones if zone is not None)


def _prefix_correction(digits: str) -> Correction | None:
    """The curated correction for the longest listed prefix of ``digits``, if any."""
    for length in PREFIX_LENGTHS:
        found = PREFIX_CORRECTIONS.get(digits[:length])
        if found is not None:
            return found
    return None


@lru_cache(maxsize=512)
def country_zone_names(region: str) -> tuple[str, ...]:
    """The zones tzdata's zone.tab gives a country (ISO 3166 code), in file order.

    zone.tab rather than zone1970.tab: it names each country's own zones (Atikokan,
    Creston) instead of an older zone with the same clock that another country owns.
    """
    return _zone_tab().get(region, ())


@lru_cache(maxsize=1)
def _zone_tab() -> dict[str, tuple[str, ...]]:
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    by_country: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            country, _coordinates, zone = line.split("\t")[:3]
            by_country.setdefault(country, []).append(zone)
    return {country: tuple(found) for country, found in by_country.items()}


def _valid_zone(name: str) -> ZoneInfo | None:
    try:
        return parse_zone(name)
    except ValidationFailed:
        return None
