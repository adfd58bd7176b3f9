"""The scan's per-campaign rule lookup answers exactly what ``contact_rules`` answers."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from dialer.policies.contact_rules import RulesOfCampaign, contact_rules
from dialer.policies.location import NO_LOCATION, CustomerLocation
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.window import LegalBound, WorkingHours, validate_window

WINDOW = validate_window(
    WorkingHours(time(8), time(21), frozenset(range(7))), LegalBound(time(8), time(21))
)
AT = datetime(2026, 7, 14, 15, tzinfo=UTC)

CONTACTS = [
    (NO_LOCATION, "+13055550100"),  # Miami: Florida's pack by area code
    (NO_LOCATION, "+12055550100"),  # Alabama
    (NO_LOCATION, "+18005550100"),  # toll-free: every US pack, strictest
    (CustomerLocation(country="US", subdivision="FL"), "+12125550100"),  # record wins
    (NO_LOCATION, "+442079460000"),  # no pack
    (NO_LOCATION, None),
]


@pytest.mark.parametrize(("location", "phone"), CONTACTS)
def test_the_same_rules_as_contact_rules(location: CustomerLocation, phone: str | None) -> None:
    rules_of = RulesOfCampaign(WINDOW, AT, PACKS)
    assert rules_of(location, phone) == contact_rules(WINDOW, location, phone, AT, PACKS)


def test_one_answer_per_jurisdiction_is_kept_and_reused() -> None:
    rules_of = RulesOfCampaign(WINDOW, AT, PACKS)
    first = rules_of(NO_LOCATION, "+13055550100")
    assert rules_of(NO_LOCATION, "+13055550199") is first  # same state, same object
    assert rules_of(NO_LOCATION, "+12055550100") is not first
