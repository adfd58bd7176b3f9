"""Reading a customer's own country and state from the free-form ``fields``."""

from __future__ import annotations

import pytest

from dialer.policies.location import NO_LOCATION, CustomerLocation, location_from_fields


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, NO_LOCATION),
        (None, NO_LOCATION),
        ({"country": "us"}, CustomerLocation("US")),
        ({"country": " US ", "state": "fl"}, CustomerLocation("US", "FL")),
        ({"state": "US-FL"}, CustomerLocation("US", "FL")),
        ({"region": "CA-BC"}, CustomerLocation("CA", "BC")),
        ({"province": "SK", "country": "CA"}, CustomerLocation("CA", "SK")),
        ({"state": "New  York"}, CustomerLocation(None, None, "new york")),
        ({"country": "USA"}, NO_LOCATION),  # alpha-3 is not read: no guessing
        ({"country": 1, "state": ["FL"]}, NO_LOCATION),  # not strings: ignored
        ({"country": "CA", "state": "US-FL"}, CustomerLocation("CA")),  # contradicts itself
        ({"state": "x" * 65}, NO_LOCATION),  # longer than any name: ignored
        ({"state": "", "region": "TX"}, CustomerLocation(None, "TX")),
    ],
)
def test_location_from_fields(fields: dict[str, object] | None, expected: CustomerLocation) -> None:
    assert location_from_fields(fields) == expected


def test_known() -> None:
    assert not NO_LOCATION.known
    assert CustomerLocation("US").known
    assert CustomerLocation(None, "FL").known
