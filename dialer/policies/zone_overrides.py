"""Curated corrections to phonenumbers' time zone answers (pure data, no logic).

phonenumbers places a number by its prefix. Two kinds of answer are unsafe for a dialer
that must never call outside legal hours:

* Non-geographic mobile ranges. A mobile is used anywhere in its country, but
  phonenumbers often names one zone (Indonesian +62 8 -> Asia/Jakarta only, while the
  country spans Jakarta, Pontianak, Makassar and Jayapura). ``NATIONWIDE_MOBILE`` lists
  the countries whose mobiles get every zone of the country (tzdata's zone.tab).
* Prefixes whose zone is plainly wrong or incomplete (Chihuahua given Mazatlan time).
  ``PREFIX_CORRECTIONS`` fixes those, by the E.164 digits of the prefix.

Principle: when in doubt, ADD zones. The window then has to be open in all of them at
once, which is strict and safe. REPLACE only where the data is plainly wrong, and only
with zones that exist in every tzdata the project accepts (>= 2024.1), so a replaced
answer can never shrink to nothing. Every entry carries an example number and is
tested (tests/unit/test_zone_overrides.py); tests/unit/test_zone_audit.py fails for a
multi-offset country whose mobiles are neither listed here nor reviewed as regional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple


class Nationwide(NamedTuple):
    """A country whose mobiles may be anywhere in it."""

    # E.164 digit prefixes (no "+") of the mobile ranges, for countries where
    # phonenumbers cannot tell mobile from fixed (FIXED_OR_MOBILE). Numbers that
    # phonenumbers types as MOBILE in the country count as well.
    prefixes: tuple[str, ...]
    example: str
    reason: str


class Correction(NamedTuple):
    """Zones for a prefix, added to phonenumbers' answer or replacing it."""

    zones: tuple[str, ...]
    replace: bool
    example: str
    source: str


NATIONWIDE_MOBILE: Final[Mapping[str, Nationwide]] = {
    "AU": Nationwide(
        (),
        "+61412345678",
        "04 mobiles are national; phonenumbers misses Darwin (UTC+9:30, no DST), "
        "which Adelaide's summer time does not match",
    ),
    "CL": Nationwide(
        ("569",),
        "+56961234567",
        "+56 9 mobiles are national; phonenumbers says Santiago, missing Easter Island, "
        "Magallanes (Punta Arenas) and Aysen (Coyhaique) time",
    ),
    "CN": Nationwide(
        (),
        "+8613123456789",
        "+86 1 mobiles are national; phonenumbers says Beijing time only, but Xinjiang "
        "keeps UTC+6 in daily use (tzdata Asia/Urumqi)",
    ),
    "FM": Nationwide(
        ("691",),
        "+6919201234",
        "one 7-digit plan for the four states, fixed and mobile indistinguishable; "
        "spans Chuuk (UTC+10) and Pohnpei/Kosrae (UTC+11)",
    ),
    "GL": Nationwide(
        (),
        "+299221234",
        "one national 6-digit plan; phonenumbers misses Danmarkshavn (UTC+0)",
    ),
    "ID": Nationwide(
        ("628",),
        "+6281212345678",
        "+62 8 mobiles are national; phonenumbers says Asia/Jakarta only (WIB) while "
        "WITA/WIT (Makassar, Pontianak, Jayapura) are 1-2 hours ahead",
    ),
    "PG": Nationwide(
        (),
        "+67570123456",
        "+675 7 mobiles are national; phonenumbers says Port Moresby, missing "
        "Bougainville (UTC+11)",
    ),
    "RU": Nationwide(
        (),
        "+79123456789",
        "+7 9 mobiles are national; phonenumbers lists most Russian zones but stands "
        "Europe/Bucharest (EU DST) in for Kaliningrad (UTC+2 all year)",
    ),
    "UA": Nationwide(
        (),
        "+380501234567",
        "mobiles are national; phonenumbers says Europe/Kyiv only, but Crimea keeps "
        "Moscow time (Europe/Simferopol)",
    ),
}

# Longest prefix wins. Sources: tzdata zone.tab comments (the area each zone covers)
# and the numbering plans (CNAC for Canadian area codes, IFT for Mexico, SUBTEL for
# Chile, Rossvyaz for Russia, NKRZI for Ukraine).
PREFIX_CORRECTIONS: Final[Mapping[str, Correction]] = {
    # Mexico: Chihuahua state left Mountain time in 2022 (tzdata 2022f: America/Chihuahua
    # is CST all year); phonenumbers still says Mazatlan (UTC-7) for these, while its
    # own geocoder places them in Chihuahua (IFT plan).
    **{
        f"52{area}": Correction(
            ("America/Chihuahua",),
            True,
            f"+52{area}1234567",
            "phonenumbers geocoder: Chihuahua; zone.tab: 'Chihuahua (most areas)'",
        )
        for area in ("614", "621", "625", "627", "628", "629", "635", "639", "648", "652")
    },
    # 636 (Nuevo Casas Grandes) includes the border municipalities Janos and Ascension,
    # which follow US DST (zone.tab: Ciudad_Juarez 'Chihuahua (US border - west)').
    "52636": Correction(
        ("America/Chihuahua", "America/Ciudad_Juarez"),
        True,
        "+526361234567",
        "phonenumbers geocoder: Chihuahua; zone.tab Chihuahua and Ciudad_Juarez",
    ),
    # 649 is Chihuahua/Durango (geocoder): Chihuahua time added to phonenumbers' answer.
    "52649": Correction(
        ("America/Chihuahua",), False, "+526491234567", "phonenumbers geocoder: Chihuahua/Durango"
    ),
    # Matamoros follows US DST (zone.tab: "Tamaulipas (US border)"); phonenumbers says
    # Mexico City (no DST). Added, not replaced: 868 may reach inland towns too.
    "52868": Correction(
        ("America/Matamoros",), False, "+528681234567", "Matamoros, Tamps.; zone.tab"
    ),
    # Canada (area code coverage per CNAC; zone areas per zone.tab comments).
    # 807 is northwestern Ontario: Thunder Bay (Eastern), Kenora/Dryden (Central),
    # Atikokan (EST all year). phonenumbers says Toronto only.
    "1807": Correction(
        ("America/Toronto", "America/Winnipeg", "America/Atikokan"),
        False,
        "+18075551234",
        "zone.tab: Winnipeg 'ON (northwest)', Atikokan 'ON (Atikokan)'",
    ),
    # 250 and the province-wide overlays 236/672/778 cover all of British Columbia:
    # Dawson Creek, Fort Nelson and Creston keep UTC-7 all year; the Kootenays (BC east)
    # keep Mountain time. phonenumbers says Vancouver only.
    **{
        f"1{area}": Correction(
            (
                "America/Vancouver",
                "America/Dawson_Creek",
                "America/Fort_Nelson",
                "America/Creston",
                "America/Edmonton",
            ),
            False,
            f"+1{area}5551234",
            "zone.tab: Dawson_Creek, Fort_Nelson, Creston (BC), Edmonton 'BC (E)'",
        )
        for area in ("250", "236", "672", "778")
    },
    # 867 is Yukon, the Northwest Territories and Nunavut; phonenumbers says Fort Nelson
    # (a BC zone; kept, since we only add).
    "1867": Correction(
        (
            "America/Whitehorse",
            "America/Dawson",
            "America/Edmonton",  # NT (E), Yellowknife; zone.tab
            "America/Inuvik",
            "America/Cambridge_Bay",
            "America/Rankin_Inlet",
            "America/Resolute",
            "America/Iqaluit",
            "America/Atikokan",  # NU (Coral Harbour)
        ),
        False,
        "+18675551234",
        "zone.tab: the CA zones whose comments name Yukon, NT or NU",
    ),
    # Saskatchewan (306, 639, 474): Lloydminster and SK (W) keep Alberta time
    # (zone.tab: Edmonton 'SK (W)'). phonenumbers says Regina, and Winnipeg for 474.
    **{
        f"1{area}": Correction(
            ("America/Regina", "America/Edmonton"),
            False,
            f"+1{area}5551234",
            "zone.tab: Regina 'SK (most areas)', Edmonton 'SK (W)'",
        )
        for area in ("306", "639", "474")
    },
    # Chile: area code 61 is the Magallanes region, UTC-3 all year since 2017 (tzdata
    # 2017a America/Punta_Arenas); phonenumbers says Santiago.
    "5661": Correction(
        ("America/Punta_Arenas",), True, "+56612123456", "zone.tab: 'Magallanes Region'"
    ),
    # Area code 67 is Aysen, UTC-3 all year since 2025 (tzdata 2025b America/Coyhaique).
    # Added, not replaced: older tzdata (the project accepts >= 2024.1) lacks the zone.
    "5667": Correction(("America/Coyhaique",), False, "+56672123456", "zone.tab: 'Aysen Region'"),
    # Russia: 401 is Kaliningrad oblast, UTC+2 all year; phonenumbers says
    # Europe/Bucharest, which is UTC+3 in summer (one hour early in Kaliningrad).
    "7401": Correction(
        ("Europe/Kaliningrad",), True, "+74012123456", "zone.tab: 'MSK-01 - Kaliningrad'"
    ),
    # Ukraine: 65 (Crimea) and 69 (Sevastopol) keep Moscow time; phonenumbers says Kyiv.
    "38065": Correction(
        ("Europe/Kyiv", "Europe/Simferopol"), False, "+380652123456", "zone.tab: 'Crimea'"
    ),
    "38069": Correction(
        ("Europe/Kyiv", "Europe/Simferopol"), False, "+380692123456", "zone.tab: 'Crimea'"
    ),
}

# The prefix lengths in PREFIX_CORRECTIONS, longest first: the lookup tries only these.
PREFIX_LENGTHS: Final[tuple[int, ...]] = tuple(
    sorted({len(prefix) for prefix in PREFIX_CORRECTIONS}, reverse=True)
)
