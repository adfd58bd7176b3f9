"""The subdivision table: every zone real, in its country, and every name mapped to a code."""

from __future__ import annotations

import zoneinfo

import pytest

from dialer.policies.region_zones import (
    SUBDIVISION_NAMES,
    SUBDIVISION_ZONES,
    subdivision_zone_names,
)
from dialer.policies.zones import country_zone_names

ENTRIES = [
    (country, code, zones)
    for country, table in SUBDIVISION_ZONES.items()
    for code, zones in table.items()
]


@pytest.mark.parametrize(("country", "code", "zones"), ENTRIES)
def test_every_listed_zone_exists_and_belongs_to_the_country(
    country: str, code: str, zones: tuple[str, ...]
) -> None:
    available = zoneinfo.available_timezones()
    assert zones, f"{country}-{code} has no zone"
    assert len(set(zones)) == len(zones), f"{country}-{code} lists a zone twice"
    for name in zones:
        assert name in available, f"{country}-{code}: {name} is not in tzdata"
    # US territories are their own ISO countries in zone.tab (PR, GU, ...).
    own = set(country_zone_names(country)) | set(country_zone_names(code))
    assert set(zones) <= own, f"{country}-{code}: {set(zones) - own} not in zone.tab"


def test_every_zone_of_the_three_countries_is_some_subdivision_s() -> None:
    # A zone no subdivision lists would mean a region the table forgot.
    for country, table in SUBDIVISION_ZONES.items():
        listed = {zone for zones in table.values() for zone in zones}
        missing = set(country_zone_names(country)) - listed
        assert not missing, f"{country}: {sorted(missing)} belong to no listed subdivision"


@pytest.mark.parametrize("country", sorted(SUBDIVISION_NAMES))
def test_every_name_maps_to_a_listed_code(country: str) -> None:
    for name, code in SUBDIVISION_NAMES[country].items():
        assert name == name.casefold()
        assert code in SUBDIVISION_ZONES[country], f"{name} -> {code}"


@pytest.mark.parametrize(
    ("country", "code", "name", "expected"),
    [
        ("US", "FL", None, ("America/New_York", "America/Chicago")),
        (None, "FL", None, ("America/New_York", "America/Chicago")),  # US by default
        ("US", None, "florida", ("America/New_York", "America/Chicago")),
        ("CA", "SK", None, ("America/Regina", "America/Swift_Current", "America/Edmonton")),
        ("AU", "WA", None, ("Australia/Perth", "Australia/Eucla")),
        ("US", "WA", None, ("America/Los_Angeles",)),
        ("US", "ZZ", None, ()),
        ("FR", "75", None, ()),  # a country the table does not cover
    ],
)
def test_lookup(
    country: str | None, code: str | None, name: str | None, expected: tuple[str, ...]
) -> None:
    assert subdivision_zone_names(country, code, name) == expected
