"""Every process decides windows with the pinned tzdata, never the host's zone files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, time
from importlib import resources
from pathlib import Path

import tzdata

from dialer.policies.window import LegalBound, WorkingHours, is_open, validate_window
from dialer.policies.zones import parse_zone
from dialer.tzdb import tz_database_version

# A zone file that says "UTC, always": planted on a fake host under a real zone's name.
_UTC_FILE = resources.files("tzdata.zoneinfo").joinpath("UTC")

_PROBE = """
import dialer
from datetime import datetime, UTC
from zoneinfo import ZoneInfo
print(datetime(2026, 7, 1, 12, tzinfo=UTC).astimezone(ZoneInfo("America/Vancouver")).utcoffset())
"""


def _offset_with_host_zone_files(host: Path) -> str:
    zone_dir = host / "America"
    zone_dir.mkdir(parents=True)
    with _UTC_FILE.open("rb") as src, (zone_dir / "Vancouver").open("wb") as dst:
        shutil.copyfileobj(src, dst)
    env = {**os.environ, "PYTHONTZPATH": str(host)}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_host_zone_files_are_ignored_once_the_dialer_is_imported(tmp_path: Path) -> None:
    # Without the pin, zoneinfo would read the planted file and answer 0:00:00.
    assert _offset_with_host_zone_files(tmp_path) == "-1 day, 17:00:00"


def test_the_version_in_use_is_the_pinned_package() -> None:
    assert tz_database_version() == tzdata.IANA_VERSION
    assert tz_database_version()[:4].isdigit()


def test_vancouver_after_november_2026_uses_the_pinned_rules() -> None:
    # Host data of 2025b reads 20:30 PST here (open); the pinned 2026f reads 21:30 (closed).
    window = validate_window(WorkingHours.create(time(8), time(22)), LegalBound())
    zones = [parse_zone("America/Vancouver")]
    assert not is_open(window, zones, datetime(2026, 11, 10, 4, 30, tzinfo=UTC))
