"""The beat tick: claim due attempts inside their windows, within the campaign's caps.

Per running campaign, in one transaction: lock the campaign row (SKIP LOCKED, so
a second beat skips it instead of double-claiming), count free concurrency slots
and what is left of today's cap (one counter row per campaign and local day), lock
due pending attempts (FOR UPDATE SKIP LOCKED) and claim the ones whose contact's
window is open with one UPDATE.
Attempts due but outside their window move to their next opening in one UPDATE,
so the next tick does not read them again. The caller enqueues dispatch only
after this transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP, UUID, insert
from sqlalchemy.orm import Session, aliased

from dialer.logging import get_logger
from dialer.policies.contact_rules import contact_rules
from dialer.policies.location import CustomerLocation
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.rule_packs import RulePack, cap_allows, longest_cap_period
from dialer.policies.vocabulary import AttemptStatus, CampaignStatus, EnrollmentState, Outcome
from dialer.policies.window import CallWindow, LegalBound, is_open, next_opening_within_a_year
from dialer.policies.zones import contact_zones
from dialer.services.campaigns import window_of
from dialer.services.locations import country_column, location_from_values, subdivision_column
from dialer.services.suppressions import SUPPRESSED, customer_is_suppressed
from models import CallAttempt, Campaign, Customer, DailyClaims, Enrollment
from models.sql import among
from models.vocabulary import IN_FLIGHT_ATTEMPT_STATUSES

log = get_logger(__name__)


@dataclass
class ScanResult:
    claimed: list[uuid.UUID] = field(default_factory=list)
    moved: int = 0
    unreachable: int = 0
    campaigns: int = 0
    suppressed: int = 0  # closed: the number is on the account's do-not-contact list
    outside_legal_bound: bool = False  # the campaign's hours lie outside the legal bound


@dataclass
class _Sorted:
    claim: list[uuid.UUID] = field(default_factory=list)
    move_ids: list[uuid.UUID] = field(default_factory=list)
    move_to: list[datetime] = field(default_factory=list)
    never: list[uuid.UUID] = field(default_factory=list)
    suppressed: list[uuid.UUID] = field(default_factory=list)


def running_campaign_ids(session: Session) -> list[uuid.UUID]:
    return list(
        session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.RUNNING))
    )


def scan_campaign(
    session: Session,
    campaign_id: uuid.UUID,
    now: datetime,
    legal: LegalBound,
    batch_size: int,
    packs: Sequence[RulePack] = PACKS,
) -> ScanResult:
    """Claim what is due for one campaign; empty when another scan holds it."""
    campaign = session.scalars(
        select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.RUNNING)
        # KEY SHARE-compatible (FOR NO KEY UPDATE): foreign-key checks of rows inserted
        # for this campaign do not make the scan skip it; a second scan still does.
        .with_for_update(skip_locked=True, key_share=True)
    ).first()
    result = ScanResult()
    if campaign is None:
        return result
    result.campaigns = 1
    slots = _free_slots(session, campaign, now)
    if slots <= 0:
        return result
    window = window_of(campaign, legal)
    if window.effective_end <= window.effective_start:
        # The legal bound was tightened after the campaign was made and now leaves none
        # of its hours: no contact is at fault, so nothing is cancelled. The attempts
        # wait, and the operator is told (the plan says so too).
        log.warning(
            "campaign_window_outside_legal_bound",
            campaign_id=str(campaign.id),
            window=f"{campaign.window_start:%H:%M}-{campaign.window_end:%H:%M}",
            legal=f"{legal.start:%H:%M}-{legal.end:%H:%M}",
        )
        result.outside_legal_bound = True
        return result
    since = now - longest_cap_period(packs)
    due = _lock_due(session, campaign.id, now, batch_size, since)
    sorted_ = _sort(due, window, campaign.timezone, now, slots, packs)
    _apply(session, sorted_, now)
    if sorted_.claim:
        _count_claims(session, campaign, now, len(sorted_.claim))
    result.claimed, result.moved, result.unreachable = (
        sorted_.claim,
        len(sorted_.move_ids),
        len(sorted_.never),
    )
    result.suppressed = len(sorted_.suppressed)
    return result


def _free_slots(session: Session, campaign: Campaign, now: datetime) -> int:
    in_flight = (
        session.scalar(
            select(func.count()).where(
                CallAttempt.campaign_id == campaign.id,
                CallAttempt.status.in_(IN_FLIGHT_ATTEMPT_STATUSES),
            )
        )
        or 0
    )
    free = campaign.concurrency - in_flight
    if campaign.max_calls_per_day is None:
        return free
    return min(free, campaign.max_calls_per_day - _claimed_today(session, campaign, now))


def _claimed_today(session: Session, campaign: Campaign, now: datetime) -> int:
    """Calls claimed since midnight in the campaign's time zone (seed 003 max_calls_per_day)."""
    q = select(DailyClaims.claimed).where(
        DailyClaims.campaign_id == campaign.id, DailyClaims.day == _local_day(campaign, now)
    )
    return session.scalar(q) or 0


def _count_claims(session: Session, campaign: Campaign, now: datetime, claimed: int) -> None:
    """Add to today's counter, in the claiming transaction (the campaign row is locked)."""
    stmt = insert(DailyClaims).values(
        campaign_id=campaign.id, day=_local_day(campaign, now), claimed=claimed
    )
    excluded = stmt.excluded.claimed
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[DailyClaims.campaign_id, DailyClaims.day],
            set_={"claimed": DailyClaims.claimed + excluded},
        )
    )


def _local_day(campaign: Campaign, now: datetime) -> date:
    return now.astimezone(ZoneInfo(campaign.timezone)).date()


class _Due(NamedTuple):
    attempt_id: uuid.UUID
    timezone: str | None
    phone: str | None
    location: CustomerLocation
    suppressed: bool = False  # on the account's do-not-contact list
    recent_calls: tuple[datetime, ...] = ()  # the person's calls within the caps' period


def _lock_due(
    session: Session, campaign_id: uuid.UUID, now: datetime, limit: int, since: datetime
) -> list[_Due]:
    earlier = aliased(CallAttempt)
    # The person's calls in any campaign of the account within the longest cap period
    # (an index lookup by customer per due row), for the packs' frequency caps.
    recent = (
        select(func.array_agg(earlier.dispatched_at))
        .where(earlier.customer_id == Customer.id, earlier.dispatched_at > since)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            CallAttempt.id,
            Customer.timezone,
            Customer.phone,
            country_column(),
            subdivision_column(),
            customer_is_suppressed(),
            recent,
        )
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(
            CallAttempt.campaign_id == campaign_id,
            CallAttempt.status == AttemptStatus.PENDING,
            CallAttempt.scheduled_at <= now,
        )
        .order_by(CallAttempt.scheduled_at)
        .limit(limit)
        .with_for_update(of=CallAttempt, skip_locked=True)
    ).all()
    return [
        _Due(r[0], r[1], r[2], location_from_values(r[3], r[4]), r[5], tuple(r[6] or ()))
        for r in rows
    ]


def _sort(
    due: list[_Due],
    window: CallWindow,
    campaign_tz: str,
    now: datetime,
    slots: int,
    packs: Sequence[RulePack] = PACKS,
) -> _Sorted:
    out = _Sorted()
    for attempt_id, tz, phone, location, suppressed, recent in due:
        if suppressed:
            out.suppressed.append(attempt_id)
            continue
        zones = contact_zones(tz, phone, campaign_tz, location)
        rules = contact_rules(window, location, phone, now, packs)
        if is_open(rules.window, zones, now):
            capped_until = cap_allows(rules.applied.caps, recent, now)
            if capped_until is None:
                if len(out.claim) < slots:
                    out.claim.append(attempt_id)
                continue
            # A frequency cap is full: wait until a call ages out, then the window.
            later = next_opening_within_a_year(rules.window, zones, capped_until)
            out.move_ids.append(attempt_id)
            out.move_to.append(later or capped_until)
            continue
        opening = next_opening_within_a_year(rules.window, zones, now)
        if opening is None:
            out.never.append(attempt_id)
        else:
            out.move_ids.append(attempt_id)
            out.move_to.append(opening)
    return out


def _apply(session: Session, s: _Sorted, now: datetime) -> None:
    if s.claim:
        session.execute(
            update(CallAttempt)
            .where(among(CallAttempt.id, s.claim))
            .values(status=AttemptStatus.QUEUED, queued_at=now)
        )
    if s.move_ids:
        _move_to_openings(session, s.move_ids, s.move_to)
    if s.suppressed:
        _close(session, s.suppressed, now, SUPPRESSED, EnrollmentState.OPTED_OUT)
    if s.never:
        # No instant within a year opens the window in all of the contact's zones (e.g. a
        # number mapped to zones half a day apart): never call, and say why.
        _close(session, s.never, now, "no_common_window", EnrollmentState.FAILED)


def _close(
    session: Session, ids: list[uuid.UUID], now: datetime, reason: str, state: EnrollmentState
) -> None:
    """Cancel the attempts and close their enrollments, giving the reason on both."""
    session.execute(
        update(CallAttempt)
        .where(among(CallAttempt.id, ids))
        .values(
            status=AttemptStatus.CANCELED,
            outcome=Outcome.CANCELED,
            finished_at=now,
            last_error=reason,
        )
    )
    enrollments = select(CallAttempt.enrollment_id).where(among(CallAttempt.id, ids))
    session.execute(
        update(Enrollment)
        .where(Enrollment.id.in_(enrollments))
        .values(state=state, closed_at=now, close_reason=reason)
    )


def _move_to_openings(session: Session, ids: list[uuid.UUID], openings: list[datetime]) -> None:
    """One UPDATE ... FROM unnest(ids, openings): bulk, not a statement per row."""
    pairs = select(
        func.unnest(bindparam("ids", ids, type_=ARRAY(UUID(as_uuid=True)))).label("id"),
        func.unnest(bindparam("at", openings, type_=ARRAY(TIMESTAMP(timezone=True)))).label("at"),
    ).subquery()
    session.execute(
        update(CallAttempt).where(CallAttempt.id == pairs.c.id).values(scheduled_at=pairs.c.at)
    )
