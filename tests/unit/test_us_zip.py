"""A customer's US ZIP code as a witness of their state: the prefix table and its use."""

from __future__ import annotations

import pytest

from dialer.policies.jurisdiction import JurisdictionSource, jurisdiction_of
from dialer.policies.location import CustomerLocation, location_from_fields
from dialer.policies.region_zones import US_STATES
from dialer.policies.us_zip import state_of_zip
from dialer.policies.zones import ZoneSource, resolve_contact_zones

TOLL_FREE = "+18005550100"  # carries no state: the record's ZIP code must decide


@pytest.mark.parametrize(
    ("postal_code", "state"),
    [
        ("00501", "NY"),  # Holtsville's IRS prefix
        ("00901", "PR"),
        ("00802", "VI"),
        ("02108", "MA"),
        ("02903", "RI"),
        ("05501", "MA"),  # Andover: a Massachusetts prefix inside Vermont's run
        ("05401", "VT"),
        ("10001", "NY"),
        ("20001", "DC"),
        ("20110", "VA"),
        ("32501", "FL"),  # Pensacola: Florida's Central-time panhandle
        ("33101", "FL"),
        ("34102", "FL"),
        ("39501", "MS"),
        ("39901", "GA"),
        ("56901", "DC"),
        ("73301", "TX"),  # Austin's IRS prefix inside Oklahoma's run
        ("73101", "OK"),
        ("74101", "OK"),
        ("75201", "TX"),
        ("79901", "TX"),
        ("88510", "TX"),  # El Paso's second prefix, after New Mexico's
        ("87101", "NM"),
        ("89101", "NV"),
        ("90210", "CA"),
        ("96801", "HI"),
        ("96799", "AS"),  # American Samoa's one ZIP code, in Hawaii's prefix
        ("97201", "OR"),
        ("98101", "WA"),
        ("99501", "AK"),
        ("33101-1234", "FL"),  # ZIP+4, with and without its hyphen
        ("331011234", "FL"),
        (" 33101 ", "FL"),
    ],
)
def test_state_of_zip(postal_code: str, state: str) -> None:
    assert state_of_zip(postal_code) == state


@pytest.mark.parametrize(
    "postal_code",
    [
        "00100",  # unassigned
        "09001",  # military (AE)
        "34001",  # military (AA)
        "96201",  # military (AP)
        "96910",  # Guam and its neighbours share 969: not one state
        "26901",  # unassigned
        "1234",
        "123456",
        "SW1A 1AA",
        "3310A",
        "",
    ],
)
def test_not_a_state(postal_code: str) -> None:
    assert state_of_zip(postal_code) is None


def test_every_prefix_names_a_known_state_or_none() -> None:
    states = {state_of_zip(f"{prefix:03d}00") for prefix in range(1000)}
    assert states - {None} <= set(US_STATES)
    assert len(states - {None}) >= 51  # the 50 states and DC, plus territories


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"country": "US", "zip": "33101"}, CustomerLocation("US", "FL")),
        ({"country": "us", "postal_code": "90210-1234"}, CustomerLocation("US", "CA")),
        ({"country": "US", "state": "NY", "zip": "33101"}, CustomerLocation("US", "NY")),
        (
            {"country": "US", "state": "Florida", "zip": "10001"},
            CustomerLocation("US", None, "florida"),
        ),
        ({"country": "US", "zip": "09001"}, CustomerLocation("US")),  # military: no state
        ({"country": "DE", "postcode": "10115"}, CustomerLocation("DE")),  # not a US code
        ({"zip": "33101"}, CustomerLocation(postal_code="33101")),  # which country? later
        ({"zip": "x" * 17}, CustomerLocation()),
    ],
)
def test_location_reads_zip_for_us_records(
    fields: dict[str, object], expected: CustomerLocation
) -> None:
    assert location_from_fields(fields) == expected


def test_a_pending_zip_is_read_only_for_a_us_number() -> None:
    pending = location_from_fields({"zip": "33101"})
    assert pending.resolved("US") == CustomerLocation("US", "FL")
    assert pending.resolved("DE") == pending  # a German 10115 is not New York
    assert pending.resolved(None) == pending
    assert location_from_fields({"zip": "09001"}).resolved("US") == CustomerLocation()


def test_zip_gives_a_toll_free_number_its_state_and_pack() -> None:
    location = location_from_fields({"zip": "33101"})
    jurisdiction = jurisdiction_of(location, TOLL_FREE)
    assert (jurisdiction.country, jurisdiction.subdivision) == ("US", "FL")
    assert jurisdiction.source is JurisdictionSource.LOCATION
    # Without the ZIP code the same number's state is unknown.
    assert jurisdiction_of(CustomerLocation(), TOLL_FREE).subdivision is None


def test_zip_gives_a_toll_free_number_its_zones() -> None:
    zones = resolve_contact_zones(None, TOLL_FREE, "UTC", location_from_fields({"zip": "90210"}))
    assert zones.source is ZoneSource.LOCATION
    assert [z.key for z in zones.zones] == list(US_STATES["CA"])
    # A geographic number keeps yielding to the record's own ZIP code the same way.
    pensacola = resolve_contact_zones(
        None, "+12125550100", "UTC", location_from_fields({"country": "US", "zip": "32501"})
    )
    assert {z.key for z in pensacola.zones} == set(US_STATES["FL"])
