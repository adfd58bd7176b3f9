"""The time zone database every process uses: the pinned ``tzdata`` package, never the host's.

zoneinfo looks for zone files on the host (``zoneinfo.TZPATH``) before it falls back to the
``tzdata`` package. A host with older zone data would then decide the working window with
other offsets than the version pinned in constraints.txt: host files of 2025b and tzdata
2026f disagree on 15 zones in 2026-27 (America/Vancouver among them), which puts calls at
21:30 local. The window is only as right as its zone data, so every process uses one known
database: the search path is emptied when the ``dialer`` package is first imported, before
any zone is loaded, and the version is logged when a process starts.
"""

from __future__ import annotations

import zoneinfo

import tzdata


def pin_tz_database() -> None:
    """Make zoneinfo read only the ``tzdata`` package, dropping any zone already loaded."""
    zoneinfo.reset_tzpath(to=())
    zoneinfo.ZoneInfo.clear_cache()


def tz_database_version() -> str:
    """The IANA release of the zone data in use, e.g. ``2026f``."""
    return str(tzdata.IANA_VERSION)
