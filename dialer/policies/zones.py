"""Which time zones a contact lives in, and where that answer came from.

Order of trust: the customer's explicit IANA zone; then the customer's own location
(``dialer.policies.location``: a known state or province gives its zones; a country
given alone bounds the phone's answer); then the zone(s) the phone number's prefix maps
to; then the campaign's zone. A prefix can map to several zones (a mobile range covering
a whole country); the window policy then requires all of them to be open at once.

Numbers that carry no location (toll-free, shared-cost, VoIP and other non-geographic
ranges) keep phonenumbers' whole answer, often every zone of a numbering plan (42 for
+1 800): that set never opens, so such a contact is not called until the record says
where the customer is; ``ContactZones.needs_location`` tells the plan to say so. A
number whose prefix names zones of other countries (+1 876 Jamaica gets all 42 NANP
zones, +7 701 Kazakhstan the Russian ones) is bounded by its own country's zones.

An invalid explicit zone on a customer record must not stop the campaign: it is
ignored (and reported in ``ContactZones.rejected_explicit_timezone`` so the UI can
show it) and the phone, then the campaign, decide instead. An invalid campaign zone
is a campaign configuration error and raises ``ValidationFailed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

from dialer.errors import ValidationFailed
from dialer.policies.location import NO_LOCATION, CustomerLocation
from dialer.policies.region_zones import subdivision_zone_names
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
    LOCATION = "location"  # the customer's own state/province or country fields
    PHONE = "phone"
    CAMPAIGN = "campaign"


# phonenumbers' types of numbers that say nothing about where their owner is.
_NON_GEOGRAPHIC = frozenset(
    {
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.VOIP,
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
        phonenumbers.PhoneNumberType.PAGER,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.VOICEMAIL,
    }
)


@dataclass(frozen=True, slots=True)
class PhoneZones:
    """What a phone number says about its owner's zones."""

    zones: tuple[ZoneInfo, ...]
    region: str | None  # ISO country of the number, None when phonenumbers cannot tell
    # A number that carries no location (toll-free, VoIP, ...): its zones are a refusal.
    non_geographic: bool = False


@dataclass(frozen=True, slots=True)
class ContactZones:
    """The zones to respect when calling a contact, and their provenance."""

    zones: tuple[ZoneInfo, ...]
    source: ZoneSource
    # The customer's explicit zone when it was set but not a valid IANA name.
    rejected_explicit_timezone: str | None = None
    # The number carries no location and the record gives none: the zones are every
    # zone the number might be in, and a timezone or state field would unblock it.
    needs_location: bool = False


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
    explicit_timezone: str | None,
    phone_e164: str | None,
    campaign_timezone: str,
    location: CustomerLocation = NO_LOCATION,
) -> ContactZones:
    """The contact's zones: explicit, else location, else phone, else the campaign's."""
    rejected = None
    if explicit_timezone:
        explicit = _valid_zone(explicit_timezone)
        if explicit is not None:
            return ContactZones((explicit,), ZoneSource.EXPLICIT)
        rejected = explicit_timezone
    phone = phone_zones(phone_e164) if phone_e164 else _NO_PHONE
    location = location.resolved(phone.region)
    from_location = _location_zones(location, phone.region)
    if from_location:
        return ContactZones(from_location, ZoneSource.LOCATION, rejected)
    if location.country is not None and (phone.non_geographic or not _within(phone, location)):
        # The record names a country the number cannot place the customer in (toll-free,
        # a foreign mobile): the customer's country, all of its zones.
        country = _zones_of(country_zone_names(location.country))
        if country:
            return ContactZones(country, ZoneSource.LOCATION, rejected)
    if phone.zones:
        return ContactZones(phone.zones, ZoneSource.PHONE, rejected, phone.non_geographic)
    return ContactZones((parse_zone(campaign_timezone),), ZoneSource.CAMPAIGN, rejected)


def contact_zones(
    explicit_timezone: str | None,
    phone_e164: str | None,
    campaign_timezone: str,
    location: CustomerLocation = NO_LOCATION,
) -> tuple[ZoneInfo, ...]:
    """Just the zones of ``resolve_contact_zones``."""
    return resolve_contact_zones(explicit_timezone, phone_e164, campaign_timezone, location).zones


_NO_PHONE = PhoneZones((), None)


def _location_zones(location: CustomerLocation, phone_region: str | None) -> tuple[ZoneInfo, ...]:
    if location.subdivision is None and location.subdivision_name is None:
        return ()
    # "FL" with no country: the number's country says which table, else the US one.
    country = location.country or phone_region
    names = subdivision_zone_names(country, location.subdivision, location.subdivision_name)
    return _zones_of(names)


def _within(phone: PhoneZones, location: CustomerLocation) -> bool:
    """Whether the number's zones all lie in the country the record names."""
    if not phone.zones or location.country is None:
        return False
    country = set(country_zone_names(location.country))
    return phone.region == location.country or all(z.key in country for z in phone.zones)


@lru_cache(maxsize=65536)
def phone_zones(phone_e164: str) -> PhoneZones:
    """Zones for a number's prefix, its country, and whether it carries a location at all.

    Cached per number: parsing and the prefix lookup cost tens of microseconds, and the
    scheduler resolves the same contacts again on every tick.
    """
    try:
        number = phonenumbers.parse(phone_e164)
    except phonenumbers.NumberParseException:
        return _NO_PHONE
    region = phonenumbers.region_code_for_number(number)
    kind = phonenumbers.number_type(number)
    names = [n for n in phone_timezone.time_zones_for_number(number) if n != _UNKNOWN_ZONE]
    non_geographic = kind in _NON_GEOGRAPHIC
    digits = f"{number.country_code}{phonenumbers.national_significant_number(number)}"
    correction = _prefix_correction(digits)
    if correction is not None:
        names = list(correction.zones) if correction.replace else names + list(correction.zones)
    names = [name for name in names if _valid_zone(name) is not None]
    own = country_zone_names(region) if region else ()
    if not non_geographic and own:
        if not names:
            # A number of a known country whose prefix phonenumbers cannot place: every
            # zone of the country (strict), not the campaign's zone.
            names = list(own)
        elif len(names) > 1 and not set(names) <= set(own):
            # An answer spanning other countries (+1 876 gets all 42 NANP zones, +7 701
            # the Russian ones): the number's own country bounds it.
            names = list(own)
    nationwide = NATIONWIDE_MOBILE.get(region) if region else None
    if nationwide is not None and (
        digits.startswith(nationwide.prefixes) or kind == phonenumbers.PhoneNumberType.MOBILE
    ):
        # A mobile may be anywhere in its country: every zone of it must be open.
        names += country_zone_names(region)
    return PhoneZones(_zones_of(dict.fromkeys(names)), region or None, non_geographic)


def _phone_zones(phone_e164: str) -> tuple[ZoneInfo, ...]:
    """Just the zones of ``phone_zones`` (the audit tests read this)."""
    return phone_zones(phone_e164).zones


def _zones_of(names: Iterable[str]) -> tuple[ZoneInfo, ...]:
    # A name phonenumbers knows but this tzdata does not is skipped, not fatal.
    zones = (_valid_zone(name) for name in names)
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
