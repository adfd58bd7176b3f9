"""The evidence of one dialed call: why it was allowed, in words an auditor can check.

Dispatch decides under lock whether a claimed attempt may be dialed (GUIDE rule 5);
this module turns the facts that decision used into a small JSON record, stored on
the attempt in the same statement that marks it ``dispatching``:

* the zones respected and where they came from (explicit, location, phone, campaign),
  and the local wall-clock time in each at the check;
* the jurisdiction (country, state, and whether it came from the record or the number),
  the rule packs applied with their versions, and whether the strictest reading was
  taken because the state was unknown;
* the window as narrowed by those packs (hours, weekdays, the legal bound) and when
  it closes next, which is after the check plus the placement margin;
* the frequency caps and how many calls the person had within the longest of them;
* when the account's suppression list was read (the same locked transaction).

Plain data in, plain data out: the record is built from what dispatch already knows,
so writing it costs no query. ``EVIDENCE_VERSION`` changes when a key changes meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dialer.policies.contact_rules import ContactRules
from dialer.policies.window import CallWindow, current_closing
from dialer.policies.zones import ContactZones

EVIDENCE_VERSION = 1


def call_evidence(
    *,
    zones: ContactZones,
    rules: ContactRules,
    checked_at: datetime,
    margin: timedelta,
    calls_in_cap_period: int,
    suppression_checked_at: datetime,
) -> dict[str, Any]:
    """The record of why a call to this contact was allowed at ``checked_at``."""
    window = rules.window
    applied = rules.applied
    jurisdiction = rules.jurisdiction
    closes = current_closing(window, zones.zones, checked_at)
    return {
        "version": EVIDENCE_VERSION,
        "checked_at": _iso(checked_at),
        "zones": [zone.key for zone in zones.zones],
        "zone_source": str(zones.source),
        "local_times": {
            zone.key: checked_at.astimezone(zone).isoformat(timespec="seconds")
            for zone in zones.zones
        },
        "jurisdiction": {
            "country": jurisdiction.country,
            "subdivision": jurisdiction.subdivision,
            "source": str(jurisdiction.source),
        },
        "rule_packs": list(applied.labels),
        "strictest_reading": applied.strictest,
        "window": _window(window),
        "window_closes_at": _iso(closes) if closes is not None else None,
        "margin_seconds": int(margin.total_seconds()),
        "frequency_caps": [f"{cap.calls}/{cap.hours}h" for cap in applied.caps],
        "calls_in_cap_period": calls_in_cap_period,
        "suppression_checked_at": _iso(suppression_checked_at),
    }


def _window(window: CallWindow) -> dict[str, Any]:
    hours = window.hours
    return {
        "start": window.effective_start.isoformat(timespec="minutes"),
        "end": window.effective_end.isoformat(timespec="minutes"),
        "weekdays": sorted(hours.weekdays),
        "campaign_hours": f"{_hm(hours.start)}-{_hm(hours.end)}",
        "legal_bound": f"{_hm(window.legal.start)}-{_hm(window.legal.end)}",
    }


def _hm(value: Any) -> str:
    return str(value.isoformat(timespec="minutes"))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def evidence_columns() -> Sequence[str]:
    """The flat names an export gives the record's parts (``evidence_<name>``)."""
    return (
        "checked_at",
        "zones",
        "zone_source",
        "local_times",
        "jurisdiction",
        "rule_packs",
        "strictest_reading",
        "window",
        "window_closes_at",
        "frequency_caps",
        "calls_in_cap_period",
        "suppression_checked_at",
    )


def flat_evidence(evidence: dict[str, Any] | None) -> dict[str, str]:
    """One text cell per part, for a CSV row: lists joined with spaces, maps as k=v."""
    if not evidence:
        return dict.fromkeys(evidence_columns(), "")
    return {name: _cell(evidence.get(name)) for name in evidence_columns()}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):  # sorted: the database keeps JSON keys in its own order
        return " ".join(f"{k}={v}" for k, v in sorted(value.items()) if v is not None)
    return str(value)
