"""The US state of a ZIP code, from its first three digits (pure data).

USPS assigns each three-digit ZIP prefix (a sectional centre) to one state; the table
below is that assignment (USPS "L002: 3-digit ZIP Code prefix matrix", as published in
the Domestic Mail Manual's labeling lists). Prefixes that are unassigned, military
(APO/FPO: 090-099, 340, 962-966) or shared by several Pacific territories (969) give
``None``: the caller then falls back to the next witness (the phone number).

A handful of individual ZIP codes straddle a state line (a military base, a rural
route); the prefix's state is the one USPS files them under. A record's own ``state``
field always wins over its ZIP code.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Final

# (first prefix, last prefix, state), sorted, non-overlapping; gaps are unassigned.
_RANGES: Final[tuple[tuple[int, int, str], ...]] = (
    (5, 5, "NY"),
    (6, 7, "PR"),
    (8, 8, "VI"),
    (9, 9, "PR"),
    (10, 27, "MA"),
    (28, 29, "RI"),
    (30, 38, "NH"),
    (39, 49, "ME"),
    (50, 54, "VT"),
    (55, 55, "MA"),
    (56, 59, "VT"),
    (60, 69, "CT"),
    (70, 89, "NJ"),
    (100, 149, "NY"),
    (150, 196, "PA"),
    (197, 199, "DE"),
    (200, 200, "DC"),
    (201, 201, "VA"),
    (202, 205, "DC"),
    (206, 219, "MD"),
    (220, 246, "VA"),
    (247, 268, "WV"),
    (270, 289, "NC"),
    (290, 299, "SC"),
    (300, 319, "GA"),
    (320, 339, "FL"),
    (341, 349, "FL"),
    (350, 369, "AL"),
    (370, 385, "TN"),
    (386, 397, "MS"),
    (398, 399, "GA"),
    (400, 427, "KY"),
    (430, 459, "OH"),
    (460, 479, "IN"),
    (480, 499, "MI"),
    (500, 528, "IA"),
    (530, 549, "WI"),
    (550, 567, "MN"),
    (569, 569, "DC"),
    (570, 577, "SD"),
    (580, 588, "ND"),
    (590, 599, "MT"),
    (600, 629, "IL"),
    (630, 658, "MO"),
    (660, 679, "KS"),
    (680, 693, "NE"),
    (700, 714, "LA"),
    (716, 729, "AR"),
    (730, 731, "OK"),
    (733, 733, "TX"),
    (734, 749, "OK"),
    (750, 799, "TX"),
    (800, 816, "CO"),
    (820, 831, "WY"),
    (832, 838, "ID"),
    (840, 847, "UT"),
    (850, 865, "AZ"),
    (870, 884, "NM"),
    (885, 885, "TX"),
    (889, 898, "NV"),
    (900, 961, "CA"),
    (967, 968, "HI"),
    (970, 979, "OR"),
    (980, 994, "WA"),
    (995, 999, "AK"),
)
_STARTS: Final = tuple(start for start, _, _ in _RANGES)

# Whole ZIP codes whose prefix belongs to another jurisdiction: American Samoa's only
# ZIP code sits in Hawaii's 967.
_EXCEPTIONS: Final[dict[str, str | None]] = {"96799": "AS"}

# "12345" or ZIP+4 "12345-6789" / "123456789"; anything else is not a US ZIP code.
_ZIP = re.compile(r"(?P<zip>\d{5})(?:-?\d{4})?")


def state_of_zip(postal_code: str) -> str | None:
    """The two-letter state (or territory) of a US ZIP code, ``None`` when not one."""
    match = _ZIP.fullmatch(postal_code.strip())
    if match is None:
        return None
    zip5 = match.group("zip")
    if zip5 in _EXCEPTIONS:
        return _EXCEPTIONS[zip5]
    prefix = int(zip5[:3])
    index = bisect_right(_STARTS, prefix) - 1
    if index < 0:
        return None
    start, end, state = _RANGES[index]
    return state if start <= prefix <= end else None
