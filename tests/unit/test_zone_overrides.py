"""The curated zone corrections: every entry applied, never calling outside local hours.

Expected zone sets are written out by hand from tzdata's zone.tab and the numbering
plans, not derived from the tables under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from dialer.policies import zones as zones_module
from dialer.policies.window import LegalBound, WorkingHours, is_open, validate_window
from dialer.policies.zone_overrides import NATIONWIDE_MOBILE, PREFIX_CORRECTIONS
from dialer.policies.zones import contact_zones, country_zone_names


def names(found: tuple[ZoneInfo, ...]) -> set[str]:
    return {zone.key for zone in found}


@pytest.fixture(autouse=True)
def _fresh_phone_cache() -> Iterator[None]:
    zones_module.phone_zones.cache_clear()
    yield
    zones_module.phone_zones.cache_clear()


INDONESIA = {"Asia/Jakarta", "Asia/Pontianak", "Asia/Makassar", "Asia/Jayapura"}
CHILE = {"America/Santiago", "America/Punta_Arenas", "America/Coyhaique", "Pacific/Easter"}
BC = {
    "America/Vancouver",
    "America/Dawson_Creek",
    "America/Fort_Nelson",
    "America/Creston",
    "America/Edmonton",
}
NORTH = {
    "America/Fort_Nelson",  # phonenumbers' own answer, kept
    "America/Whitehorse",
    "America/Dawson",
    "America/Edmonton",
    "America/Inuvik",
    "America/Cambridge_Bay",
    "America/Rankin_Inlet",
    "America/Resolute",
    "America/Iqaluit",
    "America/Atikokan",
}
CRIMEA = {"Europe/Kyiv", "Europe/Simferopol"}


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        # Nationwide mobiles: every zone of the country.
        ("+6281212345678", INDONESIA),
        ("+56961234567", CHILE),
        ("+67570123456", {"Pacific/Port_Moresby", "Pacific/Bougainville"}),
        ("+380501234567", CRIMEA),
        # phonenumbers names the backward links Ponape and Truk; kept alongside.
        ("+6919201234", {"Pacific/Ponape", "Pacific/Pohnpei", "Pacific/Chuuk", "Pacific/Kosrae"}),
        # Prefix corrections, one row each.
        ("+526141234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526251234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526271234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526391234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526211234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526281234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526291234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526351234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526481234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526521234567", {"America/Chihuahua"}),  # was Mazatlan
        ("+526361234567", {"America/Chihuahua", "America/Ciudad_Juarez"}),  # was Mazatlan
        ("+526491234567", {"America/Mazatlan", "America/Mexico_City", "America/Chihuahua"}),
        ("+528681234567", {"America/Mexico_City", "America/Matamoros"}),
        ("+18075551234", {"America/Toronto", "America/Winnipeg", "America/Atikokan"}),
        ("+12505551234", BC),
        ("+12365551234", BC),
        ("+16725551234", BC),
        ("+17785551234", BC),
        ("+18675551234", NORTH),
        ("+13065551234", {"America/Regina", "America/Edmonton"}),
        ("+16395551234", {"America/Regina", "America/Edmonton"}),
        ("+14745551234", {"America/Winnipeg", "America/Regina", "America/Edmonton"}),
        ("+56612123456", {"America/Punta_Arenas"}),  # was Santiago
        ("+56672123456", {"America/Santiago", "America/Coyhaique"}),
        ("+74012123456", {"Europe/Kaliningrad"}),  # was Europe/Bucharest
        ("+380652123456", CRIMEA),
        ("+380692123456", CRIMEA),
        # phonenumbers already right: pinned so a data update cannot regress them.
        ("+62967123456", {"Asia/Jayapura"}),
        ("+526561234567", {"America/Ciudad_Juarez"}),
        ("+528991234567", {"America/Matamoros"}),
        ("+14035551234", {"America/Edmonton"}),
        # Not a mobile: a Jakarta landline keeps its single zone.
        ("+62215551234", {"Asia/Jakarta"}),
    ],
)
def test_corrected_zones(phone: str, expected: set[str]) -> None:
    assert names(contact_zones(None, phone, "UTC")) == expected


def test_russian_mobiles_include_kaliningrad() -> None:
    found = names(contact_zones(None, "+79123456789", "UTC"))
    assert {"Europe/Kaliningrad", "Europe/Moscow", "Asia/Kamchatka"} <= found


# 2026-07-15 is a Wednesday. 13:30Z is 20:30 in Jakarta but 22:30 in Jayapura.
def test_indonesian_mobile_is_not_called_at_night_in_jayapura() -> None:
    window = validate_window(WorkingHours(time(8), time(21)), LegalBound())
    at = datetime(2026, 7, 15, 13, 30, tzinfo=UTC)
    assert not is_open(window, contact_zones(None, "+6281212345678", "UTC"), at)


# 2026-07-15 12:30Z: 08:30 in Santiago, but 06:30 on Easter Island.
def test_chilean_mobile_is_not_called_at_dawn_on_easter_island() -> None:
    window = validate_window(WorkingHours(time(8), time(21)), LegalBound())
    at = datetime(2026, 7, 15, 12, 30, tzinfo=UTC)
    assert not is_open(window, contact_zones(None, "+56961234567", "UTC"), at)


def test_every_table_zone_exists_and_every_example_gets_its_zones() -> None:
    for prefix, correction in PREFIX_CORRECTIONS.items():
        assert correction.example.startswith(f"+{prefix}"), prefix
        found = names(contact_zones(None, correction.example, "UTC"))
        for name in correction.zones:
            ZoneInfo(name)  # raises for a name this tzdata lacks
        assert set(correction.zones) <= found, prefix
        assert correction.source, prefix
    for region, nationwide in NATIONWIDE_MOBILE.items():
        found = names(contact_zones(None, nationwide.example, "UTC"))
        assert set(country_zone_names(region)) <= found, region
        assert nationwide.reason, region
