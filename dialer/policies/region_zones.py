"""The zones of subdivisions (pure data): US states, Canadian provinces, Australian states.

A customer's own state decides their zones before the phone number does (see
``dialer.policies.zones``). Each entry lists EVERY zone used somewhere in the subdivision,
from tzdata's zone.tab comments (the area each zone covers) and the zone commentary of the
tz database's ``northamerica`` and ``australasia`` files: when a state spans two clocks
(Florida's panhandle keeps Central time), the window must be open in both. Principle as in
``zone_overrides``: when in doubt, add a zone. ``tests/unit/test_region_zones.py`` checks
every name against tzdata and against the country's zone.tab.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

_E = "America/New_York"
_C = "America/Chicago"
_M = "America/Denver"
_P = "America/Los_Angeles"
_INDIANA = (
    "America/Indiana/Indianapolis",
    "America/Indiana/Marengo",
    "America/Indiana/Vevay",
    "America/Indiana/Vincennes",
    "America/Indiana/Petersburg",
    "America/Indiana/Tell_City",
    "America/Indiana/Knox",
    "America/Indiana/Winamac",
    _C,  # the northwest and southwest counties (Gary, Evansville) keep Central time
)

US_STATES: Final[Mapping[str, tuple[str, ...]]] = {
    "AL": (_C,),
    "AK": (
        "America/Anchorage",
        "America/Juneau",
        "America/Sitka",
        "America/Metlakatla",
        "America/Yakutat",
        "America/Nome",
        "America/Adak",  # the Aleutians west of 169.5W
    ),
    "AZ": ("America/Phoenix", _M),  # the Navajo Nation observes DST
    "AR": (_C,),
    "CA": (_P,),
    "CO": (_M,),
    "CT": (_E,),
    "DE": (_E,),
    "DC": (_E,),
    "FL": (_E, _C),  # the panhandle west of the Apalachicola River
    "GA": (_E,),
    "HI": ("Pacific/Honolulu",),
    "ID": ("America/Boise", _P),  # the panhandle keeps Pacific time
    "IL": (_C,),
    "IN": _INDIANA,
    "IA": (_C,),
    "KS": (_C, _M),  # four western counties
    "KY": ("America/Kentucky/Louisville", "America/Kentucky/Monticello", _E, _C),
    "LA": (_C,),
    "ME": (_E,),
    "MD": (_E,),
    "MA": (_E,),
    "MI": ("America/Detroit", "America/Menominee"),  # four UP counties keep Central
    "MN": (_C,),
    "MS": (_C,),
    "MO": (_C,),
    "MT": (_M,),
    "NE": (_C, _M),
    "NV": (_P, _M),  # West Wendover and Jackpot keep Mountain time
    "NH": (_E,),
    "NJ": (_E,),
    "NM": (_M,),
    "NY": (_E,),
    "NC": (_E,),
    "ND": (
        _C,
        "America/North_Dakota/Center",
        "America/North_Dakota/New_Salem",
        "America/North_Dakota/Beulah",
        _M,  # the southwest keeps Mountain time
    ),
    "OH": (_E,),
    "OK": (_C, _M),  # Kenton (Cimarron County) keeps Mountain time in practice
    "OR": (_P, "America/Boise"),  # Malheur County keeps Mountain time
    "PA": (_E,),
    "RI": (_E,),
    "SC": (_E,),
    "SD": (_C, _M),
    "TN": (_C, _E),
    "TX": (_C, _M),  # El Paso and Hudspeth counties keep Mountain time
    "UT": (_M,),
    "VT": (_E,),
    "VA": (_E,),
    "WA": (_P,),
    "WV": (_E,),
    "WI": (_C,),
    "WY": (_M,),
    # Territories that ISO also codes as US subdivisions (US-PR, ...).
    "PR": ("America/Puerto_Rico",),
    "GU": ("Pacific/Guam",),
    "VI": ("America/St_Thomas",),
    "AS": ("Pacific/Pago_Pago",),
    "MP": ("Pacific/Saipan",),
}

CA_PROVINCES: Final[Mapping[str, tuple[str, ...]]] = {
    "AB": ("America/Edmonton",),
    "BC": (
        "America/Vancouver",
        "America/Dawson_Creek",
        "America/Fort_Nelson",
        "America/Creston",
        "America/Edmonton",  # the East Kootenays keep Mountain time
    ),
    "MB": ("America/Winnipeg",),
    "NB": ("America/Moncton",),
    "NL": ("America/St_Johns", "America/Goose_Bay"),  # Labrador keeps Atlantic time
    "NS": ("America/Halifax", "America/Glace_Bay"),  # Cape Breton
    "NT": ("America/Edmonton", "America/Inuvik"),
    "NU": (
        "America/Iqaluit",
        "America/Rankin_Inlet",
        "America/Cambridge_Bay",
        "America/Resolute",
        "America/Atikokan",  # Coral Harbour keeps EST all year
    ),
    "ON": ("America/Toronto", "America/Winnipeg", "America/Atikokan"),  # the northwest
    "PE": ("America/Halifax",),
    "QC": ("America/Toronto", "America/Blanc-Sablon", "America/Halifax"),  # Magdalen Is.
    "SK": ("America/Regina", "America/Swift_Current", "America/Edmonton"),  # Lloydminster
    "YT": ("America/Whitehorse", "America/Dawson"),
}

AU_STATES: Final[Mapping[str, tuple[str, ...]]] = {
    "ACT": ("Australia/Sydney",),
    "NSW": ("Australia/Sydney", "Australia/Broken_Hill", "Australia/Lord_Howe"),
    "NT": ("Australia/Darwin",),
    "QLD": ("Australia/Brisbane", "Australia/Lindeman"),
    "SA": ("Australia/Adelaide",),
    "TAS": ("Australia/Hobart", "Antarctica/Macquarie"),
    "VIC": ("Australia/Melbourne",),
    "WA": ("Australia/Perth", "Australia/Eucla"),
}

SUBDIVISION_ZONES: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "US": US_STATES,
    "CA": CA_PROVINCES,
    "AU": AU_STATES,
}

# English names, casefolded, for records that store "Florida" rather than "FL".
SUBDIVISION_NAMES: Final[Mapping[str, Mapping[str, str]]] = {
    "US": {
        "alabama": "AL",
        "alaska": "AK",
        "arizona": "AZ",
        "arkansas": "AR",
        "california": "CA",
        "colorado": "CO",
        "connecticut": "CT",
        "delaware": "DE",
        "district of columbia": "DC",
        "florida": "FL",
        "georgia": "GA",
        "hawaii": "HI",
        "idaho": "ID",
        "illinois": "IL",
        "indiana": "IN",
        "iowa": "IA",
        "kansas": "KS",
        "kentucky": "KY",
        "louisiana": "LA",
        "maine": "ME",
        "maryland": "MD",
        "massachusetts": "MA",
        "michigan": "MI",
        "minnesota": "MN",
        "mississippi": "MS",
        "missouri": "MO",
        "montana": "MT",
        "nebraska": "NE",
        "nevada": "NV",
        "new hampshire": "NH",
        "new jersey": "NJ",
        "new mexico": "NM",
        "new york": "NY",
        "north carolina": "NC",
        "north dakota": "ND",
        "ohio": "OH",
        "oklahoma": "OK",
        "oregon": "OR",
        "pennsylvania": "PA",
        "rhode island": "RI",
        "south carolina": "SC",
        "south dakota": "SD",
        "tennessee": "TN",
        "texas": "TX",
        "utah": "UT",
        "vermont": "VT",
        "virginia": "VA",
        "washington": "WA",
        "west virginia": "WV",
        "wisconsin": "WI",
        "wyoming": "WY",
        "puerto rico": "PR",
        "guam": "GU",
    },
    "CA": {
        "alberta": "AB",
        "british columbia": "BC",
        "manitoba": "MB",
        "new brunswick": "NB",
        "newfoundland and labrador": "NL",
        "nova scotia": "NS",
        "northwest territories": "NT",
        "nunavut": "NU",
        "ontario": "ON",
        "prince edward island": "PE",
        "quebec": "QC",
        "québec": "QC",
        "saskatchewan": "SK",
        "yukon": "YT",
    },
    "AU": {
        "australian capital territory": "ACT",
        "new south wales": "NSW",
        "northern territory": "NT",
        "queensland": "QLD",
        "south australia": "SA",
        "tasmania": "TAS",
        "victoria": "VIC",
        "western australia": "WA",
    },
}


def subdivision_zone_names(
    country: str | None, code: str | None, name: str | None = None
) -> tuple[str, ...]:
    """The zones of a subdivision, () when the table does not know it.

    Without a country the code is looked up in the United States only: "FL" in a US
    customer list is the common case, and a code of another listed country that is also
    a US code (WA, NT) would need its country to be meant.
    """
    countries = (country,) if country else ("US",)
    for candidate in countries:
        table = SUBDIVISION_ZONES.get(candidate)
        if table is None:
            continue
        key = code if code is not None else SUBDIVISION_NAMES.get(candidate, {}).get(name or "")
        if key is not None and key in table:
            return table[key]
    return ()
