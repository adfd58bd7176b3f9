"""The beat tick: claim due attempts across campaigns, inside their windows and caps.

Cost follows due work, not running campaigns. `campaigns.next_due_at` (the earliest
pending attempt, kept current by triggers, migration 0011) is read through the partial
index `ix_campaigns_due`: a tick with nothing due reads no campaign. One chunk of due
campaigns is one transaction of a fixed number of statements, whatever its size:

1. lock the chunk's due campaign rows (FOR NO KEY UPDATE SKIP LOCKED: a second beat, or a
   scan of the same partition, skips them instead of double-claiming; a paused or done
   campaign is not in the index);
2. count each one's calls in flight and what is left of today's cap (one counter row per
   campaign and local day), and the accounts' calls in flight when accounts are capped;
3. lock each campaign's oldest due pending attempts (a LATERAL ... LIMIT per campaign,
   FOR UPDATE SKIP LOCKED);
4. sort them with the window policy; share the claims fairly (`dialer.policies.fair_share`)
   when a claim budget or an account cap binds; claim, move, cancel in one UPDATE each;
5. add to today's counters in one upsert and recompute `next_due_at` of the chunk's
   campaigns in one UPDATE (a campaign whose daily cap is used up waits for its next
   local midnight).

Partitions split the due campaigns by a hash of the campaign id so that several
Celery tasks scan in parallel; a lost partition task only delays its campaigns to the
next tick. The caller enqueues dispatch only after the transaction commits.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import zip_longest
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Text, bindparam, cast, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP, UUID
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from dialer.logging import get_logger
from dialer.policies.contact_rules import ContactRules, RulesOfCampaign
from dialer.policies.fair_share import Demand, fair_claims
from dialer.policies.location import CustomerLocation
from dialer.policies.plan import HELD_FREQUENCY_CAP, held_by
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.rule_packs import RulePack, cap_allows, longest_cap_period
from dialer.policies.vocabulary import AttemptStatus, CampaignStatus, EnrollmentState, Outcome
from dialer.policies.window import (
    CallWindow,
    LegalBound,
    WorkingHours,
    is_open,
    next_opening_within_a_year,
)
from dialer.policies.zones import contact_zones
from dialer.services.locations import location_from_values
from dialer.services.suppressions import SUPPRESSED
from models import CallAttempt, Campaign, DailyClaims, Enrollment
from models.sql import among
from models.vocabulary import IN_FLIGHT_ATTEMPT_STATUSES

log = get_logger(__name__)

_HASH_MASK = 0x7FFFFFFF  # hashtext() is signed: mask, then take the remainder


@dataclass(frozen=True)
class Partition:
    """Which share of the campaigns one scan task visits: hash(campaign id) % count."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index} of {self.count} does not exist")


@dataclass(frozen=True)
class ScanLimits:
    batch_size: int = 500  # most due attempts one campaign reads per tick
    campaigns_per_chunk: int = 500  # due campaigns locked and claimed in one transaction
    # Most claims this scan may make (None: only the campaigns' own caps). Shared fairly.
    claim_budget: int | None = None
    # Most calls in flight per account, across its campaigns (None: no account cap).
    account_concurrency: int | None = None


@dataclass
class ScanResult:
    claimed: list[uuid.UUID] = field(default_factory=list)
    moved: int = 0
    unreachable: int = 0
    campaigns: int = 0
    last_campaign: uuid.UUID | None = None  # where the next chunk of this partition starts
    by_campaign: dict[uuid.UUID, int] = field(default_factory=dict)
    suppressed: int = 0  # closed: the number is on the account's do-not-contact list
    # Campaigns whose hours lie outside the (since tightened) legal bound: none is claimed.
    outside_legal_bound: bool = False
    holds: Counter[str] = field(default_factory=Counter)  # moved by a rule, by reason


@dataclass
class _Sorted:
    claim: list[uuid.UUID] = field(default_factory=list)
    move_ids: list[uuid.UUID] = field(default_factory=list)
    move_to: list[datetime] = field(default_factory=list)
    never: list[uuid.UUID] = field(default_factory=list)
    suppressed: list[uuid.UUID] = field(default_factory=list)
    # Moved although the campaign's hours were open: by the rule that held them.
    holds: Counter[str] = field(default_factory=Counter)


class _Due(NamedTuple):
    attempt_id: uuid.UUID
    timezone: str | None
    phone: str | None
    location: CustomerLocation
    suppressed: bool = False  # on the account's do-not-contact list
    recent_calls: tuple[datetime, ...] = ()  # the person's calls within the caps' period


@dataclass(frozen=True)
class _DueCampaign:
    """What the scan needs of a campaign: read as columns, not as a whole ORM object."""

    id: uuid.UUID
    account_id: uuid.UUID
    timezone: str
    concurrency: int
    max_calls_per_day: int | None
    window_start: time
    window_end: time
    window_weekdays: list[int]

    def window(self, legal: LegalBound) -> CallWindow:
        hours = WorkingHours(self.window_start, self.window_end, frozenset(self.window_weekdays))
        return CallWindow(hours=hours, legal=legal)


_CAMPAIGN_COLUMNS = (
    Campaign.id,
    Campaign.account_id,
    Campaign.timezone,
    Campaign.concurrency,
    Campaign.max_calls_per_day,
    Campaign.window_start,
    Campaign.window_end,
    Campaign.window_weekdays,
)


def running_campaign_ids(session: Session) -> list[uuid.UUID]:
    return list(
        session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.RUNNING))
    )


def partition_of(partition: Partition) -> ColumnElement[bool]:
    bucket = func.hashtext(cast(Campaign.id, Text)).op("&")(_HASH_MASK) % partition.count
    return cast(bucket, Integer) == partition.index


def due_campaign_count(session: Session, now: datetime, partition: Partition) -> int:
    """Running campaigns with due work in a partition (an index-only count of ix_campaigns_due)."""
    query = select(func.count()).where(
        Campaign.status == CampaignStatus.RUNNING, Campaign.next_due_at <= now
    )
    if partition.count > 1:
        query = query.where(partition_of(partition))
    return session.scalar(query) or 0


def scan_campaign(
    session: Session,
    campaign_id: uuid.UUID,
    now: datetime,
    legal: LegalBound,
    batch_size: int,
    packs: Sequence[RulePack] = PACKS,
) -> ScanResult:
    """Claim what is due for one campaign; empty when another scan holds it."""
    return scan_chunk(
        session, now, legal, ScanLimits(batch_size=batch_size), only=[campaign_id], packs=packs
    )


def scan_chunk(
    session: Session,
    now: datetime,
    legal: LegalBound,
    limits: ScanLimits,
    partition: Partition = Partition(),
    after: uuid.UUID | None = None,
    only: Sequence[uuid.UUID] | None = None,
    upto: uuid.UUID | None = None,
    packs: Sequence[RulePack] = PACKS,
) -> ScanResult:
    """One transaction's worth: up to `campaigns_per_chunk` due campaigns in (after, upto].

    `only`: these campaigns whether or not their next-due time says so (a caller that
    knows which campaign it means, e.g. a test or an operator's nudge).
    """
    campaigns = _lock_due_campaigns(session, now, limits, partition, (after, upto), only)
    result = ScanResult(campaigns=len(campaigns))
    if not campaigns:
        return result
    result.last_campaign = campaigns[-1].id
    cap_left = _cap_left(session, campaigns, now)
    slots = _free_slots(session, campaigns, cap_left)
    open_slots = [c for c in campaigns if slots[c.id] > 0 and _hours_left(c, legal, result)]
    since = now - longest_cap_period(packs)
    due = _lock_due(session, [c.id for c in open_slots], now, limits.batch_size, since)
    decide = _ChunkDecisions(now, packs)
    sorted_by_campaign = {
        c.id: _sort(due.get(c.id, []), c.window(legal), c.timezone, slots[c.id], decide)
        for c in open_slots
    }
    _share_fairly(session, sorted_by_campaign, open_slots, limits)
    merged = _merge(sorted_by_campaign.values())
    _apply(session, merged, now)
    _count_holds(session, {cid: s.holds for cid, s in sorted_by_campaign.items() if s.holds})
    result.by_campaign = {k: len(v.claim) for k, v in sorted_by_campaign.items() if v.claim}
    _count_claims(session, campaigns, now, result.by_campaign)
    _recompute_next_due(session, campaigns, now, cap_left, result.by_campaign)
    result.claimed, result.moved, result.unreachable = (
        merged.claim,
        len(merged.move_ids),
        len(merged.never),
    )
    result.suppressed = len(merged.suppressed)
    result.holds = merged.holds
    return result


def _hours_left(campaign: _DueCampaign, legal: LegalBound, result: ScanResult) -> bool:
    """False when the legal bound, tightened after the campaign was made, leaves none of
    its hours: no contact is at fault, so nothing is cancelled; the attempts wait and the
    operator is told (the plan says so too)."""
    window = campaign.window(legal)
    if window.effective_end > window.effective_start:
        return True
    log.warning(
        "campaign_window_outside_legal_bound",
        campaign_id=str(campaign.id),
        window=f"{campaign.window_start:%H:%M}-{campaign.window_end:%H:%M}",
        legal=f"{legal.start:%H:%M}-{legal.end:%H:%M}",
    )
    result.outside_legal_bound = True
    return False


def _lock_due_campaigns(
    session: Session,
    now: datetime,
    limits: ScanLimits,
    partition: Partition,
    id_range: tuple[uuid.UUID | None, uuid.UUID | None],
    only: Sequence[uuid.UUID] | None,
) -> list[_DueCampaign]:
    query = select(*_CAMPAIGN_COLUMNS).where(Campaign.status == CampaignStatus.RUNNING)
    if only is not None:
        query = query.where(among(Campaign.id, only))
    else:
        query = query.where(Campaign.next_due_at <= now)
    if partition.count > 1:
        query = query.where(partition_of(partition))
    after, upto = id_range
    if after is not None:
        query = query.where(Campaign.id > after)
    if upto is not None:
        query = query.where(Campaign.id <= upto)
    rows = session.execute(
        query.order_by(Campaign.id)
        .limit(limits.campaigns_per_chunk)
        # KEY SHARE-compatible (FOR NO KEY UPDATE): foreign-key checks of rows inserted
        # for these campaigns do not make the scan skip them; a second scan still does.
        .with_for_update(of=Campaign, skip_locked=True, key_share=True)
    )
    return [_DueCampaign(*row) for row in rows]


def _free_slots(
    session: Session, campaigns: list[_DueCampaign], cap_left: dict[uuid.UUID, int]
) -> dict[uuid.UUID, int]:
    """Concurrency left, and for capped campaigns no more than what is left of today's cap."""
    rows = session.execute(
        select(CallAttempt.campaign_id, func.count())
        .where(among(CallAttempt.campaign_id, [c.id for c in campaigns]))
        .where(CallAttempt.status.in_(IN_FLIGHT_ATTEMPT_STATUSES))
        .group_by(CallAttempt.campaign_id)
    )
    in_flight: dict[uuid.UUID, int] = dict(rows.all())
    slots: dict[uuid.UUID, int] = {}
    for c in campaigns:
        free = c.concurrency - in_flight.get(c.id, 0)
        slots[c.id] = min(free, cap_left[c.id]) if c.id in cap_left else free
    return slots


def _cap_left(
    session: Session, campaigns: list[_DueCampaign], now: datetime
) -> dict[uuid.UUID, int]:
    """For campaigns with a daily cap: what today's cap still allows."""
    capped = [c for c in campaigns if c.max_calls_per_day is not None]
    today = _claimed_today(session, capped, now)
    return {c.id: (c.max_calls_per_day or 0) - today.get(c.id, 0) for c in capped}


def _claimed_today(
    session: Session, capped: list[_DueCampaign], now: datetime
) -> dict[uuid.UUID, int]:
    """Calls claimed since midnight in each campaign's time zone (seed 003 max_calls_per_day)."""
    if not capped:
        return {}
    wanted = {(c.id, _local_day(c, now)) for c in capped}
    rows = session.execute(
        select(DailyClaims.campaign_id, DailyClaims.day, DailyClaims.claimed)
        .where(among(DailyClaims.campaign_id, [c.id for c in capped]))
        .where(DailyClaims.day.in_({day for _, day in wanted}))
    )
    return {cid: n for cid, day, n in rows if (cid, day) in wanted}


# One upsert for the chunk, its arrays one parameter each (a VALUES list per row would
# be a new statement text, compiled anew, for every chunk size).
_COUNT_CLAIMS = text(
    """
    INSERT INTO campaign_daily_claims (campaign_id, day, claimed)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:days AS date[]), CAST(:counts AS int[]))
    ON CONFLICT (campaign_id, day)
    DO UPDATE SET claimed = campaign_daily_claims.claimed + excluded.claimed
    """
)


def _count_claims(
    session: Session, campaigns: list[_DueCampaign], now: datetime, claimed: dict[uuid.UUID, int]
) -> None:
    """Add to today's counters, in the claiming transaction (the campaign rows are locked)."""
    counted = [c for c in campaigns if claimed.get(c.id)]
    if not counted:
        return
    session.execute(
        _COUNT_CLAIMS,
        {
            "ids": [str(c.id) for c in counted],
            "days": [_local_day(c, now) for c in counted],
            "counts": [claimed[c.id] for c in counted],
        },
    )


def _local_day(campaign: _DueCampaign, now: datetime) -> date:
    return now.astimezone(ZoneInfo(campaign.timezone)).date()


def _next_local_midnight(campaign: _DueCampaign, now: datetime) -> datetime:
    zone = ZoneInfo(campaign.timezone)
    tomorrow = _local_day(campaign, now) + timedelta(days=1)
    return datetime.combine(tomorrow, time(), tzinfo=zone)


# One LATERAL per campaign: its oldest due pending rows through ix_call_attempts_due.
_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")
_LOCK_DUE = text(
    """
    SELECT a.id, a.campaign_id, cu.timezone, cu.phone,
           cu.fields->>'country',
           coalesce(cu.fields->>'state', cu.fields->>'region', cu.fields->>'province',
                    cu.fields->>'subdivision'),
           coalesce(cu.fields->>'postal_code', cu.fields->>'zip', cu.fields->>'zip_code',
                    cu.fields->>'postcode'),
           EXISTS (SELECT 1 FROM suppressions s
                   WHERE s.account_id = cu.account_id AND s.phone = cu.phone),
           (SELECT array_agg(e.dispatched_at) FROM call_attempts e
            WHERE e.customer_id = cu.id AND e.dispatched_at > :since)
    FROM unnest(CAST(:ids AS uuid[])) AS c(id)
    CROSS JOIN LATERAL (
        SELECT id, campaign_id, customer_id FROM call_attempts
        WHERE campaign_id = c.id AND status = :pending AND scheduled_at <= :now
        ORDER BY scheduled_at
        LIMIT :per_campaign
        FOR UPDATE SKIP LOCKED
    ) AS a
    JOIN customers cu ON cu.id = a.customer_id
    """
)


def _lock_due(
    session: Session,
    campaign_ids: list[uuid.UUID],
    now: datetime,
    per_campaign: int,
    since: datetime,
) -> dict[uuid.UUID, list[_Due]]:
    out: dict[uuid.UUID, list[_Due]] = defaultdict(list)
    if not campaign_ids:
        return out
    # psycopg prepares a statement from its 6th run and PostgreSQL then switches to a
    # generic plan, which knows neither the campaigns nor `now`: the bench measured 4 s
    # per 500-campaign chunk with it against 40 ms planned for the values at hand.
    session.execute(_CUSTOM_PLANS)
    rows = session.execute(
        _LOCK_DUE,
        {
            "ids": [str(i) for i in campaign_ids],
            "pending": AttemptStatus.PENDING.value,
            "now": now,
            "per_campaign": per_campaign,
            "since": since,
        },
    )
    # The location keys, the do-not-contact check and the person's recent calls (for
    # the rule packs' caps) come with each row: an index lookup each, no extra statement.
    for (
        attempt_id,
        campaign_id,
        tz,
        phone,
        country,
        subdivision,
        postal,
        listed,
        recent,
    ) in rows.all():
        location = location_from_values(country, subdivision, postal)
        out[campaign_id].append(
            _Due(attempt_id, tz, phone, location, bool(listed), tuple(recent or ()))
        )
    return out


class _ChunkDecisions:
    """The window decisions of one chunk, each distinct one made once.

    A chunk resolves tens of thousands of contacts that share a few campaign windows,
    jurisdictions and zone sets; deciding each (rules, zones) pair once keeps the tick's
    Python time in the number of distinct pairs, not of contacts.
    """

    def __init__(self, now: datetime, packs: Sequence[RulePack]) -> None:
        self.now = now
        self._packs = packs
        self._rules: dict[CallWindow, RulesOfCampaign] = {}
        # Keyed by id(rules): every rules object stays alive in self._rules for the chunk.
        self._open: dict[tuple[int, tuple[ZoneInfo, ...]], bool] = {}
        self._opening: dict[tuple[int, tuple[ZoneInfo, ...]], datetime | None] = {}
        self._campaign_open: dict[tuple[CallWindow, tuple[ZoneInfo, ...]], bool] = {}

    def rules(
        self, window: CallWindow, location: CustomerLocation, phone: str | None
    ) -> ContactRules:
        of = self._rules.get(window)
        if of is None:
            of = self._rules[window] = RulesOfCampaign(window, self.now, self._packs)
        return of(location, phone)

    def is_open(self, rules: ContactRules, zones: tuple[ZoneInfo, ...]) -> bool:
        key = (id(rules), zones)
        answer = self._open.get(key)
        if answer is None:
            answer = self._open[key] = is_open(rules.window, zones, self.now)
        return answer

    def campaign_open(self, window: CallWindow, zones: tuple[ZoneInfo, ...]) -> bool:
        """Whether the campaign's own hours (no rule pack) are open in ``zones`` now."""
        key = (window, zones)  # by value: a campaign's window object lives one _sort call
        answer = self._campaign_open.get(key)
        if answer is None:
            answer = self._campaign_open[key] = is_open(window, zones, self.now)
        return answer

    def next_opening(self, rules: ContactRules, zones: tuple[ZoneInfo, ...]) -> datetime | None:
        key = (id(rules), zones)
        if key not in self._opening:
            self._opening[key] = next_opening_within_a_year(rules.window, zones, self.now)
        return self._opening[key]


def _sort(
    due: list[_Due],
    window: CallWindow,
    campaign_tz: str,
    slots: int,
    decide: _ChunkDecisions,
) -> _Sorted:
    out = _Sorted()
    now = decide.now
    for attempt_id, tz, phone, location, suppressed, recent in due:
        if suppressed:
            out.suppressed.append(attempt_id)
            continue
        zones = contact_zones(tz, phone, campaign_tz, location)
        rules = decide.rules(window, location, phone)
        if decide.is_open(rules, zones):
            capped_until = cap_allows(rules.applied.caps, recent, now)
            if capped_until is None:
                if len(out.claim) < slots:
                    out.claim.append(attempt_id)
                continue
            # A frequency cap is full: wait until a call ages out, then for the window.
            later = next_opening_within_a_year(rules.window, zones, capped_until)
            out.move_ids.append(attempt_id)
            out.move_to.append(later or capped_until)
            out.holds[HELD_FREQUENCY_CAP] += 1
            continue
        opening = decide.next_opening(rules, zones)
        if rules.window != window and decide.campaign_open(window, zones):
            out.holds[held_by(rules.window, zones, now)] += 1  # a pack, not the hours
        if opening is None:
            out.never.append(attempt_id)
        else:
            out.move_ids.append(attempt_id)
            out.move_to.append(opening)
    return out


def _share_fairly(
    session: Session,
    sorted_by_campaign: dict[uuid.UUID, _Sorted],
    campaigns: list[_DueCampaign],
    limits: ScanLimits,
) -> None:
    """Trim each campaign's claims to its fair share; the rest stay due for the next tick."""
    if limits.claim_budget is None and limits.account_concurrency is None:
        return
    account_of = {c.id: c.account_id for c in campaigns}
    demands = {cid: Demand(account_of[cid], len(s.claim)) for cid, s in sorted_by_campaign.items()}
    room = None
    if limits.account_concurrency is not None:
        busy = _account_in_flight(session, list({c.account_id for c in campaigns}))
        room = {a: limits.account_concurrency - busy.get(a, 0) for a in set(account_of.values())}
    shares = fair_claims(demands, limits.claim_budget, room)
    for cid, s in sorted_by_campaign.items():
        del s.claim[shares.get(cid, 0) :]


def _account_in_flight(session: Session, accounts: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(Campaign.account_id, func.count())
        .join(CallAttempt, CallAttempt.campaign_id == Campaign.id)
        .where(among(Campaign.account_id, accounts))
        .where(CallAttempt.status.in_(IN_FLIGHT_ATTEMPT_STATUSES))
        .group_by(Campaign.account_id)
    )
    return dict(rows.all())


def _merge(parts: Iterable[_Sorted]) -> _Sorted:
    """One list of each kind; claims interleaved across campaigns, so that the dispatch
    queue (first in, first out) serves the campaigns of a chunk side by side."""
    out = _Sorted()
    claims = []
    for s in parts:
        claims.append(s.claim)
        out.move_ids += s.move_ids
        out.move_to += s.move_to
        out.never += s.never
        out.suppressed += s.suppressed
        out.holds += s.holds
    out.claim = [i for rank in zip_longest(*claims) for i in rank if i is not None]
    return out


def _apply(session: Session, s: _Sorted, now: datetime) -> None:
    if s.claim:
        session.execute(
            update(CallAttempt)
            .where(among(CallAttempt.id, s.claim))
            .values(status=AttemptStatus.QUEUED, queued_at=now)
            .execution_options(synchronize_session=False)  # no attempt is loaded here
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
        .execution_options(synchronize_session=False)
    )
    enrollments = select(CallAttempt.enrollment_id).where(among(CallAttempt.id, ids))
    session.execute(
        update(Enrollment)
        .where(Enrollment.id.in_(enrollments))
        .values(state=state, closed_at=now, close_reason=reason)
        .execution_options(synchronize_session=False)
    )


def _move_to_openings(session: Session, ids: list[uuid.UUID], openings: list[datetime]) -> None:
    """One UPDATE ... FROM unnest(ids, openings): bulk, not a statement per row."""
    pairs = select(
        func.unnest(bindparam("ids", ids, type_=ARRAY(UUID(as_uuid=True)))).label("id"),
        func.unnest(bindparam("at", openings, type_=ARRAY(TIMESTAMP(timezone=True)))).label("at"),
    ).subquery()
    session.execute(
        update(CallAttempt)
        .where(CallAttempt.id == pairs.c.id)
        .values(scheduled_at=pairs.c.at)
        .execution_options(synchronize_session=False)
    )


# Adds this tick's holds to each campaign's counts, key by key.
_ADD_HOLDS = text(
    """
    UPDATE campaigns c SET holds = (
        SELECT jsonb_object_agg(k, COALESCE((c.holds ->> k)::bigint, 0)
                                   + COALESCE((v.add ->> k)::bigint, 0))
        FROM jsonb_object_keys(c.holds || v.add) AS k)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:adds AS jsonb[])) AS v(id, add)
    WHERE c.id = v.id
    """
)


def _count_holds(session: Session, holds: dict[uuid.UUID, Counter[str]]) -> None:
    """Keep the campaigns' holds by rule (``campaigns.holds``): their skips by reason."""
    if not holds:
        return
    session.execute(
        _ADD_HOLDS,
        {
            "ids": [str(cid) for cid in holds],
            "adds": [json.dumps(dict(counts)) for counts in holds.values()],
        },
    )


# The earliest pending attempt, or the next local midnight for a campaign whose daily
# cap is used up (GREATEST ignores NULL: no pending attempt and no cap gives NULL).
_RECOMPUTE_NEXT_DUE = text(
    """
    UPDATE campaigns c SET next_due_at = GREATEST(
        (SELECT min(a.scheduled_at) FROM call_attempts a
         WHERE a.campaign_id = c.id AND a.status = :pending),
        v.not_before)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:not_before AS timestamptz[])) AS v(id, not_before)
    WHERE c.id = v.id
    """
)


def _recompute_next_due(
    session: Session,
    campaigns: list[_DueCampaign],
    now: datetime,
    cap_left: dict[uuid.UUID, int],
    claimed: dict[uuid.UUID, int],
) -> None:
    not_before = [
        _next_local_midnight(c, now)
        if c.id in cap_left and cap_left[c.id] - claimed.get(c.id, 0) <= 0
        else None
        for c in campaigns
    ]
    session.execute(
        _RECOMPUTE_NEXT_DUE,
        {
            "ids": [str(c.id) for c in campaigns],
            "not_before": not_before,
            "pending": AttemptStatus.PENDING.value,
        },
    )
