"""Numbers that were never called although callable (issue 16), and the location fields.

+7 was one list of 16 zones for Russia and Kazakhstan alike, Caribbean NANP numbers got
all 42 zones of +1, and toll-free numbers too: no window ever opens in all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from dialer.policies import zones as zones_module
from dialer.policies.location import CustomerLocation
from dialer.policies.window import (
    LegalBound,
    WorkingHours,
    is_open,
    next_opening_within_a_year,
    validate_window,
)
from dialer.policies.zones import (
    ZoneSource,
    country_zone_names,
    resolve_contact_zones,
)

WINDOW = validate_window(
    WorkingHours(time(8), time(21), frozenset(range(7))), LegalBound(time(8), time(21))
)
# Office hours: the 42 zones of +1 (Guam to Pago Pago) share no hour of them.
OFFICE = validate_window(
    WorkingHours(time(9), time(17), frozenset(range(7))), LegalBound(time(8), time(21))
)
AT = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    zones_module.phone_zones.cache_clear()


def _keys(resolved: zones_module.ContactZones) -> set[str]:
    return {zone.key for zone in resolved.zones}


def test_a_kazakh_mobile_gets_kazakhstan_s_zones_and_is_callable() -> None:
    resolved = resolve_contact_zones(None, "+77012345678", "UTC")
    assert _keys(resolved) == set(country_zone_names("KZ"))
    assert next_opening_within_a_year(WINDOW, resolved.zones, AT) is not None


def test_a_russian_mobile_gets_only_russian_zones() -> None:
    resolved = resolve_contact_zones(None, "+79123456789", "UTC")
    assert _keys(resolved) == set(country_zone_names("RU"))
    assert "Asia/Almaty" not in _keys(resolved)
    assert next_opening_within_a_year(WINDOW, resolved.zones, AT) is not None


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+18765551234", "America/Jamaica"),
        ("+12425021234", "America/Nassau"),
        ("+12465551234", "America/Barbados"),
        ("+18685551234", "America/Port_of_Spain"),
    ],
)
def test_caribbean_nanp_numbers_get_their_own_country_s_zone(number: str, zone: str) -> None:
    resolved = resolve_contact_zones(None, number, "UTC")
    assert [z.key for z in resolved.zones] == [zone]
    assert not resolved.needs_location


@pytest.mark.parametrize("number", ["+18005551234", "+18335551234", "+16005551234"])
def test_toll_free_and_600_numbers_without_location_are_refused_and_say_why(number: str) -> None:
    resolved = resolve_contact_zones(None, number, "America/New_York")
    assert resolved.needs_location
    assert len(resolved.zones) > 20  # every zone of the plan: strict
    assert next_opening_within_a_year(OFFICE, resolved.zones, AT) is None


def test_a_toll_free_number_with_a_state_takes_the_state_s_zones() -> None:
    resolved = resolve_contact_zones(None, "+18005551234", "UTC", CustomerLocation("US", "FL"))
    assert resolved.source is ZoneSource.LOCATION
    assert _keys(resolved) == {"America/New_York", "America/Chicago"}
    assert not resolved.needs_location


def test_a_toll_free_number_with_only_a_country_takes_every_zone_of_it() -> None:
    resolved = resolve_contact_zones(None, "+18005551234", "UTC", CustomerLocation("US"))
    assert resolved.source is ZoneSource.LOCATION
    assert _keys(resolved) == set(country_zone_names("US"))
    # New York to Honolulu: still a common window (18:00-01:00 UTC in July).
    assert is_open(WINDOW, resolved.zones, datetime(2026, 7, 15, 19, 0, tzinfo=UTC))
    assert next_opening_within_a_year(OFFICE, resolved.zones, AT) is not None


def test_a_state_wins_over_the_phone_s_area_code() -> None:
    # A Manhattan number, a customer who says Texas: both Texas clocks must be open.
    resolved = resolve_contact_zones(None, "+12125550123", "UTC", CustomerLocation("US", "TX"))
    assert _keys(resolved) == {"America/Chicago", "America/Denver"}


def test_a_state_name_without_country_uses_the_number_s_country() -> None:
    # "WA" on an Australian number is Western Australia, not Washington.
    resolved = resolve_contact_zones(None, "+61412345678", "UTC", CustomerLocation(None, "WA"))
    assert _keys(resolved) == {"Australia/Perth", "Australia/Eucla"}


def test_a_country_alone_keeps_the_more_precise_phone_answer() -> None:
    resolved = resolve_contact_zones(None, "+12125550123", "UTC", CustomerLocation("US"))
    assert resolved.source is ZoneSource.PHONE
    assert [z.key for z in resolved.zones] == ["America/New_York"]


def test_a_foreign_mobile_of_a_customer_living_elsewhere_uses_the_country_given() -> None:
    # A UK mobile whose owner lives in Canada: Canada's clocks, not London's.
    resolved = resolve_contact_zones(None, "+447400123456", "UTC", CustomerLocation("CA"))
    assert resolved.source is ZoneSource.LOCATION
    assert _keys(resolved) == set(country_zone_names("CA"))


def test_an_explicit_timezone_still_wins_over_everything() -> None:
    resolved = resolve_contact_zones(
        "Europe/Rome", "+18005551234", "UTC", CustomerLocation("US", "FL")
    )
    assert resolved.zones == (ZoneInfo("Europe/Rome"),)
    assert resolved.source is ZoneSource.EXPLICIT
