"""A contact's window under its jurisdiction's rule packs, and the record of that choice.

One place decides, for the scan, dispatch, the plan and the audit alike: the campaign's
window (already inside the deployment's legal bound) narrowed by the packs that govern
the contact (``jurisdiction.rules_for``), with the holidays of the years around ``at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from dialer.policies.jurisdiction import Jurisdiction, jurisdiction_of, rules_for
from dialer.policies.location import CustomerLocation
from dialer.policies.rule_packs import AppliedRules, RulePack, apply_rules
from dialer.policies.window import CallWindow


@dataclass(frozen=True, slots=True)
class ContactRules:
    window: CallWindow  # the campaign's window narrowed by the packs
    applied: AppliedRules
    jurisdiction: Jurisdiction


def contact_rules(
    window: CallWindow,
    location: CustomerLocation,
    phone_e164: str | None,
    at: datetime,
    packs: Sequence[RulePack],
) -> ContactRules:
    """The rules for one contact at ``at`` (holidays of this year and the next)."""
    jurisdiction = jurisdiction_of(location, phone_e164)
    return _rules(window, jurisdiction, at.year, tuple(packs))


@lru_cache(maxsize=4096)
def _rules(
    window: CallWindow, jurisdiction: Jurisdiction, year: int, packs: tuple[RulePack, ...]
) -> ContactRules:
    # Cached: a tick resolves thousands of contacts of a handful of jurisdictions.
    applied = rules_for(jurisdiction, packs)
    narrowed = apply_rules(window, applied, (year, year + 1))
    return ContactRules(narrowed, applied, jurisdiction)


class RulesOfCampaign:
    """``contact_rules`` for the many contacts of one campaign at one instant.

    The scan resolves tens of thousands of contacts a tick against a handful of
    jurisdictions; hashing the window and the pack table for every contact (the cache
    key of ``_rules``) cost more than the decision. One instance per campaign and tick
    keeps the answers by jurisdiction; the same contact gets the same ``ContactRules``
    object as ``contact_rules`` would give it.
    """

    __slots__ = ("_by_jurisdiction", "_packs", "_window", "_year")

    def __init__(self, window: CallWindow, at: datetime, packs: Sequence[RulePack]) -> None:
        self._window = window
        self._year = at.year
        self._packs = tuple(packs)
        self._by_jurisdiction: dict[Jurisdiction, ContactRules] = {}

    def __call__(self, location: CustomerLocation, phone_e164: str | None) -> ContactRules:
        jurisdiction = jurisdiction_of(location, phone_e164)
        rules = self._by_jurisdiction.get(jurisdiction)
        if rules is None:
            rules = _rules(self._window, jurisdiction, self._year, self._packs)
            self._by_jurisdiction[jurisdiction] = rules
        return rules
