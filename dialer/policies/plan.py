"""Where a contact stands in the plan at a given instant: callable now, later, or skipped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dialer.policies.window import CallWindow, is_open, next_opening_within_a_year

WEEK = timedelta(days=7)


class PlanBucket(StrEnum):
    NOW = "callable_now"
    LATER_TODAY = "later_today"
    THIS_WEEK = "later_this_week"
    LATER = "later"
    NO_COMMON_WINDOW = "no_common_window"
    # No common window because the number carries no location (toll-free, VoIP) and the
    # record gives none: a timezone or state field would unblock the contact.
    NEEDS_LOCATION = "needs_location"
    # The campaign's hours lie outside the (since tightened) legal bound: nobody is called.
    OUTSIDE_LEGAL_BOUND = "window_outside_legal_bound"
    MISSING_CONTACT = "missing_contact"
    OPTED_OUT = "opted_out"
    SUPPRESSED = "suppressed"  # the number is on the account's do-not-contact list
    # Open by the campaign's hours now, held by the jurisdiction's rule pack:
    HOLIDAY = "held_holiday"  # a public holiday where the pack forbids calls on them
    CLOSED_DAY = "held_closed_day"  # a weekday the pack forbids (Sunday in Alabama)
    PACK_HOURS = "held_pack_hours"  # outside the pack's hours (after 20:00 in Florida)
    INVALID_NUMBER = "invalid_number"
    CLOSED = "closed"


SKIPPED = frozenset(
    {
        PlanBucket.MISSING_CONTACT,
        PlanBucket.OPTED_OUT,
        PlanBucket.SUPPRESSED,
        PlanBucket.INVALID_NUMBER,
        PlanBucket.NO_COMMON_WINDOW,
        PlanBucket.NEEDS_LOCATION,
        PlanBucket.OUTSIDE_LEGAL_BOUND,
    }
)

# What an operator can do about each skip that the data can fix.
REMEDIES = {
    PlanBucket.NEEDS_LOCATION: (
        "the number carries no location (toll-free, VoIP, ...): set the customer's "
        "timezone, or fields.state / fields.country"
    ),
    PlanBucket.NO_COMMON_WINDOW: (
        "the contact's zones share no hour of the window: set the customer's timezone "
        "or fields.state, or widen the campaign's hours"
    ),
    PlanBucket.OUTSIDE_LEGAL_BOUND: (
        "the campaign's hours lie outside the deployment's legal calling hours: edit "
        "call_working_hours"
    ),
}


@dataclass(frozen=True)
class ContactStanding:
    bucket: PlanBucket
    next_opening: datetime | None


@dataclass(frozen=True)
class ContactFacts:
    state: str
    has_phone: bool
    opted_out: bool
    invalid_number: bool
    suppressed: bool = False


def classify_contact(
    window: CallWindow,
    zones: Sequence[ZoneInfo],
    facts: ContactFacts,
    at: datetime,
    *,
    needs_location: bool = False,
    campaign_window: CallWindow | None = None,
) -> ContactStanding:
    """Pure: the contact's bucket and next opening (None when it will not be called)."""
    skipped = _skip_reason(facts)
    if skipped is not None:
        return ContactStanding(skipped, None)
    if window.effective_end <= window.effective_start:
        return ContactStanding(PlanBucket.OUTSIDE_LEGAL_BOUND, None)
    if is_open(window, zones, at):
        return ContactStanding(PlanBucket.NOW, at)
    opening = next_opening_within_a_year(window, zones, at)
    if campaign_window is not None and is_open(campaign_window, zones, at):
        # The campaign would call now; the rule pack holds the contact back. Say which rule.
        return ContactStanding(held_by(window, zones, at), opening)
    if opening is None:
        bucket = PlanBucket.NEEDS_LOCATION if needs_location else PlanBucket.NO_COMMON_WINDOW
        return ContactStanding(bucket, None)
    return ContactStanding(_later_bucket(zones[0], at, opening), opening)


# The scan's count of attempts a full frequency cap held back (``campaigns.holds``).
HELD_FREQUENCY_CAP = "held_frequency_cap"


def held_by(window: CallWindow, zones: Sequence[ZoneInfo], at: datetime) -> PlanBucket:
    """Which rule of the packs' ``window`` holds a contact the campaign's hours allow."""
    for zone in zones:
        local = at.astimezone(zone)
        if local.date() in window.closed_dates:
            return PlanBucket.HOLIDAY
        if local.weekday() not in window.hours.weekdays:
            return PlanBucket.CLOSED_DAY
    return PlanBucket.PACK_HOURS


def _skip_reason(facts: ContactFacts) -> PlanBucket | None:
    if facts.suppressed:
        return PlanBucket.SUPPRESSED
    if facts.opted_out or facts.state == "opted_out":
        return PlanBucket.OPTED_OUT
    if facts.invalid_number:
        return PlanBucket.INVALID_NUMBER
    if not facts.has_phone or facts.state == "missing_contact":
        return PlanBucket.MISSING_CONTACT
    if facts.state != "active":
        return PlanBucket.CLOSED
    return None


def _later_bucket(zone: ZoneInfo, at: datetime, opening: datetime) -> PlanBucket:
    # "Today" is the contact's own local day, not the operator's.
    if opening.astimezone(zone).date() == at.astimezone(zone).date():
        return PlanBucket.LATER_TODAY
    if opening - at <= WEEK:
        return PlanBucket.THIS_WEEK
    return PlanBucket.LATER
