"""Whose rules govern a contact: the jurisdiction from the record, else the number.

Order of trust, as for zones: the customer's own location fields (country and state,
else a US ZIP code), then the phone number (its country; for NANP numbers the state of
the area code, from phonenumbers' geocoder). A contact whose state cannot be told (a
toll-free number, a mobile without location) is governed by every pack of its country at
once, the strictest reading, and the choice is recorded (``AppliedRules.strictest``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers
from phonenumbers import geocoder

from dialer.policies.location import CustomerLocation
from dialer.policies.region_zones import SUBDIVISION_NAMES
from dialer.policies.rule_packs import AppliedRules, RulePack


class JurisdictionSource(StrEnum):
    LOCATION = "location"
    PHONE = "phone"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    country: str | None
    subdivision: str | None
    source: JurisdictionSource


def jurisdiction_of(location: CustomerLocation, phone_e164: str | None) -> Jurisdiction:
    """The contact's country and state, and where they came from."""
    from_phone = _phone_jurisdiction(phone_e164) if phone_e164 else (None, None)
    location = location.resolved(from_phone[0])
    country = location.country or from_phone[0]
    subdivision = location.subdivision
    if subdivision is None and location.subdivision_name and country:
        subdivision = SUBDIVISION_NAMES.get(country, {}).get(location.subdivision_name)
    if subdivision is not None:
        return Jurisdiction(country or "US", subdivision, JurisdictionSource.LOCATION)
    if location.country is not None and location.country != from_phone[0]:
        return Jurisdiction(location.country, None, JurisdictionSource.LOCATION)
    if from_phone[0] is not None:
        return Jurisdiction(from_phone[0], from_phone[1], JurisdictionSource.PHONE)
    return Jurisdiction(None, None, JurisdictionSource.UNKNOWN)


def rules_for(jurisdiction: Jurisdiction, packs: Sequence[RulePack]) -> AppliedRules:
    """The packs of the jurisdiction: its country's, and its state's or, unknown, all."""
    if jurisdiction.country is None:
        return AppliedRules(())
    national = [p for p in packs if p.country == jurisdiction.country]
    if jurisdiction.subdivision is not None:
        chosen = [p for p in national if p.subdivision in (None, jurisdiction.subdivision)]
        return AppliedRules(tuple(chosen))
    strictest = any(p.subdivision is not None for p in national)
    return AppliedRules(tuple(national), strictest=strictest)


@lru_cache(maxsize=65536)
def _phone_jurisdiction(phone_e164: str) -> tuple[str | None, str | None]:
    try:
        number = phonenumbers.parse(phone_e164)
    except phonenumbers.NumberParseException:
        return None, None
    country = phonenumbers.region_code_for_number(number) or None
    if country is None or country not in SUBDIVISION_NAMES:
        return country, None
    # "Florida", or "New York, NY": the geocoder's English description of the area code.
    place = geocoder.description_for_number(number, "en")
    if ", " in place:
        code = place.rsplit(", ", 1)[1].strip()
        return country, code if code.isalpha() and len(code) <= 3 else None
    return country, SUBDIVISION_NAMES[country].get(place.casefold())
