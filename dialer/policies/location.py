"""Where a customer says they live: country and subdivision from the record's own fields.

A phone number is a weak witness of location: toll-free and other non-geographic numbers
carry none, mobiles travel with their owners, and prefix data has errors. A customer record
often knows better (a CRM's state or province column). The dialer reads two plain keys
from ``Customer.fields``:

* ``country``: an ISO 3166-1 alpha-2 code (``US``);
* ``state`` (or ``region``, ``province``, ``subdivision``): an ISO 3166-2 subdivision code,
  with or without its country (``FL``, ``US-FL``), or, for the countries in
  ``dialer.policies.region_zones``, the subdivision's English name (``Florida``);
* ``postal_code`` (or ``zip``, ``zip_code``, ``postcode``): for a US record (its
  ``country``, else its number's country) the state of the ZIP code
  (``dialer.policies.us_zip``), when no state field is given.

Pure parsing: anything that is not recognisably one of those is ignored (reported as
``None``), never an error, since ``fields`` is free-form customer data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

from dialer.policies.us_zip import state_of_zip

COUNTRY_KEYS = ("country",)
SUBDIVISION_KEYS = ("state", "region", "province", "subdivision")
POSTAL_KEYS = ("postal_code", "zip", "zip_code", "postcode")

# ISO 3166-2 subdivision codes are 1-3 alphanumerics after the country; names are short.
_MAX_VALUE_LENGTH = 64
_MAX_POSTAL_LENGTH = 16
_COUNTRY = re.compile(r"[A-Z]{2}")
_SUBDIVISION = re.compile(r"(?:(?P<country>[A-Z]{2})-)?(?P<code>[A-Z0-9]{1,3})")


@dataclass(frozen=True, slots=True)
class CustomerLocation:
    """A customer's own country and subdivision (ISO codes), each ``None`` when unknown."""

    country: str | None = None
    subdivision: str | None = None  # the part after "US-": "FL"
    # The subdivision as written when it was a name rather than a code ("Florida").
    subdivision_name: str | None = None
    # A postal code whose country the record does not state: read once the number's
    # country is known (``resolved``); a US record's ZIP code is read at once.
    postal_code: str | None = None

    @property
    def known(self) -> bool:
        return self.country is not None or self.subdivision is not None

    def resolved(self, phone_country: str | None) -> CustomerLocation:
        """The location with a pending ZIP code read, when the number is a US one."""
        if self.postal_code is None or phone_country != "US":
            return self
        state = state_of_zip(self.postal_code)
        if state is None:
            return replace(self, postal_code=None)
        return CustomerLocation("US", state)


NO_LOCATION = CustomerLocation()


def location_from_fields(fields: Mapping[str, object] | None) -> CustomerLocation:
    """The location a customer record's ``fields`` state, keys as documented above."""
    if not fields:
        return NO_LOCATION
    return location_from_values(
        _first(fields, COUNTRY_KEYS), _first(fields, SUBDIVISION_KEYS), _first(fields, POSTAL_KEYS)
    )


# The scan reads these for every due contact; a fleet's records repeat a few thousand
# distinct values (countries, states, ZIP codes), so each is parsed once.
@lru_cache(maxsize=16_384)
def location_from_values(
    country: str | None, subdivision: str | None, postal_code: str | None = None
) -> CustomerLocation:
    """The location from raw country, subdivision and postal strings (as the scan selects them)."""
    country_code = _country(country)
    if not subdivision or len(subdivision) > _MAX_VALUE_LENGTH:
        return _from_postal(country_code, postal_code)
    text = subdivision.strip()
    match = _SUBDIVISION.fullmatch(text.upper())
    if match is None:
        # Not a code: keep the name for the tables that know names ("Florida").
        return CustomerLocation(country_code, None, " ".join(text.split()).casefold() or None)
    prefixed = match.group("country")
    if prefixed is not None and country_code is not None and prefixed != country_code:
        return CustomerLocation(country_code)  # contradicts itself: trust neither part
    return CustomerLocation(prefixed or country_code, match.group("code"))


def _from_postal(country: str | None, postal_code: str | None) -> CustomerLocation:
    postal = postal_code.strip() if postal_code else ""
    if not postal or len(postal) > _MAX_POSTAL_LENGTH:
        return CustomerLocation(country) if country else NO_LOCATION
    if country is None:
        return CustomerLocation(postal_code=postal)  # read once the number says US
    state = state_of_zip(postal) if country == "US" else None
    return CustomerLocation(country, state)


def _first(fields: Mapping[str, object], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _country(value: str | None) -> str | None:
    if not value or len(value) > _MAX_VALUE_LENGTH:
        return None
    code = value.strip().upper()
    return code if _COUNTRY.fullmatch(code) else None
