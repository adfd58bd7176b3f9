"""Audit: no multi-offset country's mobiles may silently get fewer zones than it has.

For every region phonenumbers knows, its example mobile is resolved. When the country
has zones whose UTC offsets differ at some point in 2026 and the mobile's zones miss
one with a clock of its own, the country must be reviewed: either listed in
``NATIONWIDE_MOBILE`` (mobiles get every zone) or below as regional, with a reason.
A new or unreviewed multi-zone country fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from dialer.policies.zone_overrides import NATIONWIDE_MOBILE
from dialer.policies.zones import _phone_zones, country_zone_names

# Reviewed: mobiles are regional (the number says where its holder lives), so the
# prefix data applies. One line of reason each; keep this short and honest.
REGIONAL_MOBILES: dict[str, str] = {
    "US": "NANP area codes are geographic; mobiles and landlines share them",
    "CA": "NANP area codes are geographic; multi-zone ones in PREFIX_CORRECTIONS",
    "BR": "mobiles carry the 2-digit DDD area code of the holder's region",
    "MX": "mobiles carry the geographic area code (one 10-digit plan since 2019)",
}

# Every 6 hours through 2026: catches DST starting on different dates, and the
# permanent offset differences, at a few thousand utcoffset calls per zone.
_INSTANTS = tuple(
    datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=6 * step) for step in range(365 * 4)
)


@cache
def _clock(name: str) -> tuple[timedelta | None, ...]:
    zone = ZoneInfo(name)
    return tuple(at.astimezone(zone).utcoffset() for at in _INSTANTS)


def _unreviewed_gap(region: str) -> list[str] | None:
    """The country zones with a clock none of the example mobile's zones keeps."""
    country = country_zone_names(region)
    if len({_clock(name) for name in country}) < 2:
        return None  # one clock for the whole country: nothing to miss
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return None
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    kept = {_clock(zone.key) for zone in _phone_zones(e164)}
    missing = [name for name in country if _clock(name) not in kept]
    return missing or None


def test_allow_list_and_nationwide_table_do_not_overlap() -> None:
    assert not set(REGIONAL_MOBILES) & set(NATIONWIDE_MOBILE)


@pytest.mark.parametrize("region", sorted(phonenumbers.SUPPORTED_REGIONS))
def test_multi_zone_country_mobiles_are_reviewed(region: str) -> None:
    if region in NATIONWIDE_MOBILE or region in REGIONAL_MOBILES:
        return
    missing = _unreviewed_gap(region)
    assert missing is None, (
        f"{region} mobiles miss zones with a clock of their own: {missing}; add the "
        "country to NATIONWIDE_MOBILE or, if its mobiles are regional, to REGIONAL_MOBILES"
    )
