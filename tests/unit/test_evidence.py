"""The evidence record of a dialed call (dialer.policies.evidence), pure."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dialer.policies.contact_rules import contact_rules
from dialer.policies.evidence import EVIDENCE_VERSION, call_evidence, flat_evidence
from dialer.policies.location import NO_LOCATION
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.window import CallWindow, LegalBound, WorkingHours
from dialer.policies.zones import ContactZones, ZoneSource

WINDOW = CallWindow(WorkingHours.create(time(9), time(21), range(7)), LegalBound())
AT = datetime(2026, 7, 15, 14, 0, 30, tzinfo=UTC)  # 10:00:30 in New York


def _evidence(phone: str, zones: tuple[str, ...], source: ZoneSource) -> dict[str, object]:
    rules = contact_rules(WINDOW, NO_LOCATION, phone, AT, PACKS)
    return call_evidence(
        zones=ContactZones(tuple(ZoneInfo(z) for z in zones), source),
        rules=rules,
        checked_at=AT,
        margin=timedelta(seconds=5),
        calls_in_cap_period=2,
        suppression_checked_at=AT - timedelta(seconds=1),
    )


def test_a_florida_number_records_its_pack_its_hours_and_its_cap() -> None:
    evidence = _evidence("+13055550123", ("America/New_York",), ZoneSource.PHONE)
    assert evidence["version"] == EVIDENCE_VERSION
    assert evidence["local_times"] == {"America/New_York": "2026-07-15T10:00:30-04:00"}
    assert evidence["jurisdiction"] == {"country": "US", "subdivision": "FL", "source": "phone"}
    assert [label.split("@")[0] for label in evidence["rule_packs"]] == ["us", "us-fl"]  # type: ignore[attr-defined]
    assert evidence["window"] == {
        "start": "09:00",
        "end": "20:00",
        "weekdays": [0, 1, 2, 3, 4, 5, 6],
        "campaign_hours": "09:00-21:00",
        "legal_bound": "08:00-20:00",
    }
    assert evidence["window_closes_at"] == "2026-07-16T00:00:00Z"
    assert evidence["suppression_checked_at"] == "2026-07-15T14:00:29Z"
    assert evidence["strictest_reading"] is False


def test_several_zones_record_the_local_time_in_each() -> None:
    zones = ("America/New_York", "America/Los_Angeles")
    evidence = _evidence("+18005550123", zones, ZoneSource.LOCATION)
    assert evidence["zone_source"] == "location"
    assert evidence["local_times"] == {
        "America/New_York": "2026-07-15T10:00:30-04:00",
        "America/Los_Angeles": "2026-07-15T07:00:30-07:00",
    }
    assert evidence["window_closes_at"] is None  # closed in Los Angeles at 07:00


def test_flat_cells_join_lists_and_maps_for_a_csv_row() -> None:
    cells = flat_evidence(_evidence("+13055550123", ("America/New_York",), ZoneSource.PHONE))
    assert cells["zones"] == "America/New_York"
    assert cells["jurisdiction"] == "country=US source=phone subdivision=FL"
    assert cells["strictest_reading"] == "false"
    assert cells["calls_in_cap_period"] == "2"
    assert set(flat_evidence(None).values()) == {""}
