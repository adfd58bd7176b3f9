"""Which zones a contact is in: explicit zone, then phone prefix, then campaign zone."""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from phonenumbers import timezone as phone_timezone

from dialer.errors import ValidationFailed
from dialer.policies import zones as zones_module
from dialer.policies.zones import (
    ContactZones,
    ZoneSource,
    contact_zones,
    country_zone_names,
    parse_zone,
    resolve_contact_zones,
)

NEW_YORK_NUMBER = "+12125550123"
NORTH_DAKOTA_NUMBER = "+17015550123"  # area code 701 spans Mountain and Central time
NEW_ZEALAND_MOBILE = "+6421123456"  # mainland and the Chatham Islands
UNIVERSAL_FREEPHONE = "+80012345678"  # phonenumbers answers Etc/Unknown


def names(found: tuple[ZoneInfo, ...]) -> list[str]:
    return [zone.key for zone in found]


@pytest.fixture(autouse=True)
def _fresh_phone_cache() -> Iterator[None]:
    # The per-number cache would hide a monkeypatched phonenumbers between tests.
    zones_module.phone_zones.cache_clear()
    yield
    zones_module.phone_zones.cache_clear()


@pytest.mark.parametrize(
    ("explicit", "phone", "campaign", "expected_zones", "expected_source"),
    [
        # The customer's own zone wins over the phone and the campaign.
        ("Europe/Rome", NEW_YORK_NUMBER, "UTC", ["Europe/Rome"], ZoneSource.EXPLICIT),
        ("Asia/Kolkata", None, "UTC", ["Asia/Kolkata"], ZoneSource.EXPLICIT),
        # Else the phone prefix.
        (None, NEW_YORK_NUMBER, "Europe/Rome", ["America/New_York"], ZoneSource.PHONE),
        ("", NEW_YORK_NUMBER, "Europe/Rome", ["America/New_York"], ZoneSource.PHONE),
        (
            None,
            NORTH_DAKOTA_NUMBER,
            "UTC",
            ["America/Denver", "America/North_Dakota/Center"],
            ZoneSource.PHONE,
        ),
        (
            None,
            NEW_ZEALAND_MOBILE,
            "UTC",
            ["Pacific/Auckland", "Pacific/Chatham"],
            ZoneSource.PHONE,
        ),
        # Else the campaign's zone: unknown prefix, unparsable or missing number.
        (None, UNIVERSAL_FREEPHONE, "Europe/Rome", ["Europe/Rome"], ZoneSource.CAMPAIGN),
        (None, "not a number", "Europe/Rome", ["Europe/Rome"], ZoneSource.CAMPAIGN),
        (None, "2125550123", "Europe/Rome", ["Europe/Rome"], ZoneSource.CAMPAIGN),  # no +
        (None, None, "Europe/Rome", ["Europe/Rome"], ZoneSource.CAMPAIGN),
        (None, "", "Europe/Rome", ["Europe/Rome"], ZoneSource.CAMPAIGN),
    ],
)
def test_resolve_contact_zones(
    explicit: str | None,
    phone: str | None,
    campaign: str,
    expected_zones: list[str],
    expected_source: ZoneSource,
) -> None:
    resolved = resolve_contact_zones(explicit, phone, campaign)
    assert names(resolved.zones) == expected_zones
    assert resolved.source is expected_source
    assert resolved.rejected_explicit_timezone is None
    assert contact_zones(explicit, phone, campaign) == resolved.zones


@pytest.mark.parametrize(
    ("explicit", "phone", "expected_zones", "expected_source"),
    [
        ("Mars/Olympus_Mons", NEW_YORK_NUMBER, ["America/New_York"], ZoneSource.PHONE),
        ("America", NEW_YORK_NUMBER, ["America/New_York"], ZoneSource.PHONE),
        ("../../etc/passwd", None, ["Europe/Rome"], ZoneSource.CAMPAIGN),
        ("EST5EDT ", UNIVERSAL_FREEPHONE, ["Europe/Rome"], ZoneSource.CAMPAIGN),
    ],
)
def test_invalid_explicit_zone_falls_through_and_is_reported(
    explicit: str, phone: str | None, expected_zones: list[str], expected_source: ZoneSource
) -> None:
    resolved = resolve_contact_zones(explicit, phone, "Europe/Rome")
    assert names(resolved.zones) == expected_zones
    assert resolved.source is expected_source
    assert resolved.rejected_explicit_timezone == explicit


def test_invalid_campaign_zone_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as caught:
        resolve_contact_zones(None, None, "Not/AZone")
    assert caught.value.field == "timezone"


def test_phone_zones_are_deduplicated_in_order_and_unknowns_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = ("America/Chicago", "Etc/Unknown", "America/Denver", "America/Chicago", "No/Such_Zone")
    monkeypatch.setattr(phone_timezone, "time_zones_for_number", lambda _number: answer)
    resolved = resolve_contact_zones(None, NEW_YORK_NUMBER, "UTC")
    assert resolved == ContactZones(
        (ZoneInfo("America/Chicago"), ZoneInfo("America/Denver")), ZoneSource.PHONE
    )


def test_an_unplaceable_number_of_a_known_country_gets_every_zone_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Strict: the campaign's zone would be a guess; the country's zones bound the truth.
    monkeypatch.setattr(phone_timezone, "time_zones_for_number", lambda _number: ("Etc/Unknown",))
    resolved = resolve_contact_zones(None, NEW_YORK_NUMBER, "UTC")
    assert resolved.source is ZoneSource.PHONE
    assert {z.key for z in resolved.zones} == set(country_zone_names("US"))


def test_a_number_of_no_known_country_means_the_campaign_zone() -> None:
    resolved = resolve_contact_zones(None, "+999123456789", "Europe/Rome")
    assert resolved == ContactZones((ZoneInfo("Europe/Rome"),), ZoneSource.CAMPAIGN)


@pytest.mark.parametrize("name", ["Europe/Rome", "America/Argentina/Buenos_Aires", "UTC"])
def test_parse_zone_accepts_iana_names(name: str) -> None:
    assert parse_zone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name", ["Mars/Olympus_Mons", "", "America", "/etc/localtime", "../etc", "Etc/Unknown"]
)
def test_parse_zone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_zone(name)
    assert caught.value.field == "timezone"
    assert caught.value.reason == f"unknown IANA time zone {name!r}"
    assert str(caught.value) == f"timezone: unknown IANA time zone {name!r}"


def test_zone_source_values_are_what_the_ui_shows() -> None:
    assert [source.value for source in ZoneSource] == ["explicit", "location", "phone", "campaign"]


def test_parse_zone_refuses_an_overlong_name_before_any_file_lookup() -> None:
    # 300 characters would raise OSError (file name too long) inside ZoneInfo.
    with pytest.raises(ValidationFailed) as caught:
        parse_zone("x" * 300)
    assert (caught.value.field, caught.value.reason) == ("timezone", "at most 64 characters")
