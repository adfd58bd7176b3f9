"""Dispatch one claimed attempt: re-check under lock, place the call, record the answer.

A batch of attempts goes through two short transactions around the provider
requests, so no row lock is held while the network is slow: (1) lock all, re-check
each, mark the accepted ones `dispatching`; then each call is placed with the
attempt's idempotency key; (2) record what the provider said, for all at once. A
crash between (1) and (2) leaves `dispatching`, which the reaper re-sends with the
same key: the provider returns the same call, never a second one. A provider that
keeps no key may have placed a call whose answer was lost and that no lookup found:
that attempt is held `uncertain` (dialer.services.uncertain), never failed into a retry.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, load_only

from dialer.dependencies import UnitOfWork
from dialer.logging import get_logger
from dialer.policies.contact_rules import ContactRules, contact_rules
from dialer.policies.evidence import call_evidence
from dialer.policies.rotation import pick_caller_id
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.rule_packs import RulePack, cap_allows, longest_cap_period
from dialer.policies.templates import render, render_voicemail
from dialer.policies.vocabulary import (
    IN_FLIGHT_ATTEMPT_STATUSES,
    AttemptStatus,
    CampaignStatus,
    EnrollmentState,
    Outcome,
    RotationStrategy,
    VoicemailAction,
)
from dialer.policies.window import CallWindow, LegalBound, may_start_call
from dialer.policies.zones import ContactZones, resolve_contact_zones
from dialer.providers.base import (
    CallRecord,
    NotSent,
    PermanentProviderError,
    PlaceCallRequest,
    Placement,
    TransientProviderError,
    VoiceProvider,
    place_calls,
)
from dialer.providers.ratelimit import RateLimited
from dialer.providers.voice_adapter import (
    VOICEMAIL_ACTION_KEY,
    VOICEMAIL_MESSAGE_KEY,
    PlacementUncertain,
)
from dialer.providers.voice_fleet import (
    AgentProviders,
    ProviderNotConfigured,
    RoutePlanner,
    VoiceFleet,
    fleet_of,
)
from dialer.services import uncertain
from dialer.services.campaigns import window_of
from dialer.services.locations import location_of
from dialer.services.results import ResultBatch, finish_call
from dialer.services.suppressions import (
    SUPPRESSED,
    close_suppressed_enrollments,
    suppressed_pairs,
)
from models import (
    Agent,
    CallAttempt,
    Campaign,
    Customer,
    Enrollment,
    PhoneNumber,
    RotationCursor,
)
from models.sql import among, write_changes

log = get_logger("dialer.dispatch")
NEVER_OPENS_RETRY = timedelta(days=1)
# dispatching: a re-send after a crash
DISPATCHABLE = (AttemptStatus.QUEUED, AttemptStatus.DISPATCHING)
# What dispatch reads of an attempt; the rest is not loaded (see batch_reads.RESULT_COLUMNS).
DISPATCH_COLUMNS = (
    CallAttempt.campaign_id,
    CallAttempt.attempt_no,
    CallAttempt.status,
    CallAttempt.idempotency_key,
    CallAttempt.external_from,
    CallAttempt.delivery_attempts,
    CallAttempt.dispatched_at,  # restored when the gate holds a request back
    CallAttempt.provider,  # set: the attempt keeps to the provider it was sent to
    CallAttempt.evidence,  # restored, like dispatched_at, when the request is not sent
)


class Verdict(StrEnum):
    PLACED = "placed"
    NOT_QUEUED = "not_queued"  # already handled (a duplicate delivery)
    DEFERRED = "deferred"  # back to pending: paused, window closed, cap reached
    CANCELED = "canceled"  # opted out meanwhile
    RETRY = "retry"  # transient provider error: try again later
    THROTTLED = "throttled"  # our own rate limit refused it: not sent, no try, later
    FAILED = "failed"  # permanent provider error or out of tries
    UNCERTAIN = "uncertain"  # the answer was lost, the call not found: held, never re-sent


@dataclass(frozen=True)
class DispatchReport:
    attempt_id: uuid.UUID
    verdict: Verdict
    detail: str = ""
    retry_after_seconds: float | None = None
    # Set when the provider was asked: the campaign (placed) or the error's reason.
    campaign_id: str | None = None
    error: str | None = None


# A call must be able to ring before the window closes: the provider's placement latency.
DEFAULT_WINDOW_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True)
class DispatchLimits:
    legal: LegalBound
    max_tries: int
    window_margin: timedelta = DEFAULT_WINDOW_MARGIN
    packs: tuple[RulePack, ...] = PACKS  # the jurisdictions' rule packs


def dispatch_attempt(
    uow: UnitOfWork,
    provider: VoiceProvider,
    attempt_id: uuid.UUID,
    now: datetime,
    limits: DispatchLimits,
) -> DispatchReport:
    return dispatch_batch(uow, provider, [attempt_id], lambda: now, limits)[0]


def dispatch_batch(
    uow: UnitOfWork,
    provider: VoiceProvider,
    attempt_ids: Sequence[uuid.UUID],
    clock: Callable[[], datetime],
    limits: DispatchLimits,
) -> list[DispatchReport]:
    """Dispatch many claimed attempts: one locking transaction, the calls, one recording one.

    The window is checked again just before each request leaves (the gate), on the
    clock as it is then: a chunk takes seconds to send, and the window may close
    while it does. What the gate holds back goes back to pending, untried.
    """
    fleet = fleet_of(provider)
    with uow() as session:
        prepared, reports = _prepare_batch(
            session, attempt_ids, clock(), limits, fleet.planner(), fleet.default
        )
    gate = _WindowGate({p.request.idempotency_key: p for p in prepared}, clock, limits)
    placed: list[tuple[uuid.UUID, CallRecord]] = []
    held: list[tuple[_Prepared, datetime]] = []
    throttled: list[tuple[_Prepared, RateLimited]] = []
    answers = _place_routed(fleet, prepared, gate)
    for prep, answer in zip(prepared, answers, strict=True):
        attempt_id = prep.attempt_id
        if isinstance(answer, NotSent):
            held.append((prep, gate.reopens[answer.idempotency_key]))
        elif isinstance(answer, RateLimited):  # before TransientProviderError: a subclass
            throttled.append((prep, answer))
        elif isinstance(answer, TransientProviderError):
            # Free to go elsewhere only if no earlier try may have placed it (unpinned
            # when this try began) and this refusal placed nothing.
            free = answer.nothing_placed and prep.provider_before is None
            report = _transient(uow, attempt_id, clock(), limits, answer, reroutable=free)
            reports.append(replace(report, error=answer.kind))
        elif isinstance(answer, PlacementUncertain):  # before PermanentProviderError: a subclass
            reports.append(_uncertain(uow, attempt_id, clock(), answer))
        elif isinstance(answer, PermanentProviderError):
            report = _permanent(uow, attempt_id, clock(), answer)
            reports.append(replace(report, error=answer.code))
        else:
            placed.append((attempt_id, answer))
    if held:
        with uow() as session:
            reports += _hold_back(session, held)
    if throttled:
        with uow() as session:
            reports += _give_back(session, throttled, clock())
    if placed:
        with uow() as session:
            _record_placed(session, placed, clock())
        campaign_of = {p.attempt_id: p.request.metadata.get("campaign_id") for p in prepared}
        reports += [
            DispatchReport(a, Verdict.PLACED, record.id, campaign_id=campaign_of[a])
            for a, record in placed
        ]
    return reports


@dataclass
class _CampaignContext:
    """What dispatch needs of one campaign, read once per batch."""

    campaign: Campaign
    window: CallWindow
    agent: Agent
    providers: AgentProviders  # the agent's provider, its fallback, its id at each
    numbers: list[str]
    in_flight: int
    cursor: int = 0


@dataclass(frozen=True)
class _Prepared:
    """An attempt marked `dispatching`: its request, its window, what undoing the mark needs."""

    attempt_id: uuid.UUID
    request: PlaceCallRequest
    window: CallWindow
    zones: tuple[ZoneInfo, ...]
    delivery_attempts_before: int
    dispatched_at_before: datetime | None
    provider: str  # the registry name of the adapter the request goes to
    provider_before: str | None  # restored when the request is not sent after all
    evidence_before: dict[str, Any] | None  # likewise: the record of an earlier dial


@dataclass
class _WindowGate:
    """The last window check, asked by the provider adapter just before each request leaves."""

    prepared: dict[str, _Prepared]  # by idempotency key
    clock: Callable[[], datetime]
    limits: DispatchLimits
    reopens: dict[str, datetime] = field(default_factory=dict)  # the ones held back

    def __call__(self, request: PlaceCallRequest) -> bool:
        prep = self.prepared[request.idempotency_key]
        now = self.clock()
        check = may_start_call(prep.window, prep.zones, now, self.limits.window_margin)
        if not check.allowed:
            # Adapters may ask from several threads at once; each writes its own key.
            self.reopens[request.idempotency_key] = check.reopens or now + NEVER_OPENS_RETRY
        return check.allowed


def _prepare_batch(
    session: Session,
    attempt_ids: Sequence[uuid.UUID],
    now: datetime,
    limits: DispatchLimits,
    planner: RoutePlanner,
    default_provider: str,
) -> tuple[list[_Prepared], list[DispatchReport]]:
    """Lock, re-check and mark `dispatching`; returns the requests to send and the refusals."""
    rows = session.execute(
        select(CallAttempt, Enrollment.state, Customer)
        .options(load_only(*DISPATCH_COLUMNS))
        .join(Enrollment, Enrollment.id == CallAttempt.enrollment_id)
        .join(Customer, Customer.id == CallAttempt.customer_id)
        .where(among(CallAttempt.id, attempt_ids), CallAttempt.status.in_(DISPATCHABLE))
        .order_by(CallAttempt.id)
        .with_for_update(of=CallAttempt, skip_locked=True)  # locked: another delivery has it
    ).all()
    found = {attempt.id for attempt, _, _ in rows}
    reports = [DispatchReport(i, Verdict.NOT_QUEUED) for i in attempt_ids if i not in found]
    contexts = _campaign_contexts(
        session, {attempt.campaign_id for attempt, _, _ in rows}, limits, default_provider
    )
    accepted: list[tuple[CallAttempt, Customer]] = []
    zones_of: dict[uuid.UUID, tuple[ZoneInfo, ...]] = {}
    windows_of: dict[uuid.UUID, CallWindow] = {}
    evidence_of: dict[uuid.UUID, dict[str, Any]] = {}
    recent = _recent_calls(session, rows, now - longest_cap_period(limits.packs))
    listed_at = now  # the suppression read below, recorded in each call's evidence
    # Read while the attempts are locked: a number listed since the claim is not dialed.
    listed = suppressed_pairs(session, ((c.account_id, c.phone) for _, _, c in rows))
    suppressed: list[uuid.UUID] = []
    for attempt, enrollment_state, customer in rows:
        context = contexts[attempt.campaign_id]
        if (customer.account_id, customer.phone) in listed:
            _cancel(attempt, now, SUPPRESSED)
            suppressed.append(attempt.id)
            reports.append(DispatchReport(attempt.id, Verdict.CANCELED, SUPPRESSED))
            continue
        resolved = resolve_contact_zones(
            customer.timezone, customer.phone, context.campaign.timezone, location_of(customer)
        )
        zones = resolved.zones
        rules = contact_rules(
            context.window, location_of(customer), customer.phone, now, limits.packs
        )
        refusal = _recheck(
            attempt, enrollment_state, customer, context, rules.window, zones, now, limits
        )
        if refusal is None:
            capped_until = cap_allows(rules.applied.caps, recent.get(customer.id, []), now)
            if capped_until is not None:
                refusal = _defer(attempt, capped_until, "frequency cap reached")
        if refusal is not None:
            reports.append(refusal)
            continue
        evidence_of[attempt.id] = _evidence(
            resolved, rules, now, limits, recent.get(customer.id), listed_at
        )
        recent.setdefault(customer.id, []).append(now)  # a second attempt in this batch
        windows_of[attempt.id] = rules.window
        if attempt.status == AttemptStatus.QUEUED:
            context.in_flight += 1
        accepted.append((attempt, customer))
        zones_of[attempt.id] = zones
    _advance_cursors(session, contexts, accepted)
    requests = [
        _start(
            a,
            customer,
            contexts[a.campaign_id],
            windows_of[a.id],
            zones_of[a.id],
            now,
            planner,
            evidence_of[a.id],
        )
        for a, customer in accepted
    ]
    write_changes(session, [attempt for attempt, _, _ in rows])
    if suppressed:
        close_suppressed_enrollments(session, suppressed, now)
    return requests, reports


def _recent_calls(
    session: Session, rows: Sequence[Any], since: datetime
) -> dict[uuid.UUID, list[datetime]]:
    """The batch's people's calls since ``since`` in any campaign, this batch's excluded."""
    customers = {customer.id for _, _, customer in rows}
    if not customers:
        return {}
    ours = [attempt.id for attempt, _, _ in rows]
    found: dict[uuid.UUID, list[datetime]] = {}
    for customer_id, at in session.execute(
        select(CallAttempt.customer_id, CallAttempt.dispatched_at).where(
            CallAttempt.customer_id.in_(customers),
            CallAttempt.dispatched_at > since,
            CallAttempt.id.not_in(ours),
        )
    ):
        if at is not None:
            found.setdefault(customer_id, []).append(at)
    return found


def _campaign_contexts(
    session: Session, campaign_ids: set[uuid.UUID], limits: DispatchLimits, default_provider: str
) -> dict[uuid.UUID, _CampaignContext]:
    if not campaign_ids:
        return {}
    campaigns = session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids))).all()
    agents = {
        agent.id: agent
        for agent in session.scalars(
            select(Agent).where(Agent.id.in_({c.agent_id for c in campaigns}))
        )
    }
    numbers = dict(
        session.execute(
            select(PhoneNumber.id, PhoneNumber.e164).where(
                PhoneNumber.id.in_({n for c in campaigns for n in c.phone_number_ids})
            )
        ).all()
    )
    in_flight = dict(
        session.execute(
            select(CallAttempt.campaign_id, func.count())
            .where(
                CallAttempt.campaign_id.in_(campaign_ids),
                CallAttempt.status.in_(IN_FLIGHT_ATTEMPT_STATUSES - {AttemptStatus.QUEUED}),
            )
            .group_by(CallAttempt.campaign_id)
        ).all()
    )
    return {
        c.id: _CampaignContext(
            campaign=c,
            window=window_of(c, limits.legal),
            agent=agents[c.agent_id],
            providers=agent_providers(agents[c.agent_id], default_provider),
            numbers=[numbers[i] for i in c.phone_number_ids if i in numbers],
            in_flight=in_flight.get(c.id, 0),
        )
        for c in campaigns
    }


def agent_providers(agent: Agent, default_provider: str) -> AgentProviders:
    """The agent's providers; one it does not name is the deployment's DIALER_PROVIDER."""
    return AgentProviders(
        primary=agent.provider or default_provider,
        agent_id=agent.provider_agent_id,
        fallback=agent.fallback_provider,
        fallback_agent_id=agent.fallback_provider_agent_id,
    )


def _place_routed(
    fleet: VoiceFleet, prepared: list[_Prepared], gate: _WindowGate
) -> list[Placement]:
    """Each request through its attempt's provider; the answers in the requests' order.

    What each provider answered feeds its health record: refusals that provably placed
    no call count towards failover, an accepted placement may close its circuit.
    """
    indexes_of: dict[str, list[int]] = {}
    for index, prep in enumerate(prepared):
        indexes_of.setdefault(prep.provider, []).append(index)
    answers: dict[int, Placement] = {}
    for name, indexes in indexes_of.items():
        try:
            adapter = fleet.adapter(name)
        except ProviderNotConfigured as exc:
            answers.update(dict.fromkeys(indexes, exc))
            continue
        placed = place_calls(adapter, [prepared[i].request for i in indexes], gate)
        answers.update(zip(indexes, placed, strict=True))
        _tell_health(fleet, name, placed)
    return [answers[index] for index in range(len(prepared))]


def _tell_health(fleet: VoiceFleet, provider: str, answers: Sequence[Placement]) -> None:
    refusals = sum(
        1
        for answer in answers
        if isinstance(answer, TransientProviderError)
        and not isinstance(answer, RateLimited)  # our own limiter: the provider was not asked
        and answer.nothing_placed
    )
    if refusals:
        fleet.health.refused(provider, refusals)
    if any(isinstance(answer, CallRecord) for answer in answers):
        fleet.health.placed(provider)


def _evidence(
    zones: ContactZones,
    rules: ContactRules,
    now: datetime,
    limits: DispatchLimits,
    recent_calls: list[datetime] | None,
    suppression_checked_at: datetime,
) -> dict[str, Any]:
    """Why this call is allowed, stored with the `dispatching` mark (issue 16)."""
    return call_evidence(
        zones=zones,
        rules=rules,
        checked_at=now,
        margin=limits.window_margin,
        calls_in_cap_period=len(recent_calls or ()),
        suppression_checked_at=suppression_checked_at,
    )


def _recheck(
    attempt: CallAttempt,
    enrollment_state: str,
    customer: Customer,
    context: _CampaignContext,
    window: CallWindow,
    zones: Sequence[ZoneInfo],
    now: datetime,
    limits: DispatchLimits,
) -> DispatchReport | None:
    """GUIDE rule 5: campaign running, window open, not opted out, caps not exceeded."""
    campaign = context.campaign
    if customer.opted_out or enrollment_state != EnrollmentState.ACTIVE:
        why = "customer opted out" if customer.opted_out else f"enrollment {enrollment_state}"
        _cancel(attempt, now, why)
        return DispatchReport(attempt.id, Verdict.CANCELED, why)
    if campaign.status != CampaignStatus.RUNNING:
        return _defer(attempt, now, f"campaign {campaign.status}")
    # The same test as the gate's, so an attempt the gate would hold back is not even marked.
    check = may_start_call(window, zones, now, limits.window_margin)
    if not check.allowed:
        return _defer(attempt, check.reopens or now + NEVER_OPENS_RETRY, "window closed")
    if attempt.status == AttemptStatus.QUEUED and context.in_flight >= campaign.concurrency:
        return _defer(attempt, now, "concurrency reached")
    return None


def _defer(attempt: CallAttempt, until: datetime, why: str) -> DispatchReport:
    attempt.status = AttemptStatus.PENDING
    attempt.queued_at = None
    attempt.scheduled_at = until
    return DispatchReport(attempt.id, Verdict.DEFERRED, why)


def _cancel(attempt: CallAttempt, now: datetime, why: str) -> None:
    attempt.status = AttemptStatus.CANCELED
    attempt.outcome = Outcome.CANCELED
    attempt.finished_at = now
    attempt.last_error = why


def _advance_cursors(
    session: Session,
    contexts: dict[uuid.UUID, _CampaignContext],
    accepted: list[tuple[CallAttempt, Customer]],
) -> None:
    """Reserve one round-robin position per new call, one statement per campaign."""
    needed = Counter(
        attempt.campaign_id
        for attempt, _ in accepted
        if attempt.external_from is None
        and contexts[attempt.campaign_id].campaign.phone_rotation_strategy
        == RotationStrategy.ROUND_ROBIN
    )
    for campaign_id, count in needed.items():
        upsert = insert(RotationCursor).values(campaign_id=campaign_id, position=count)
        stmt = upsert.on_conflict_do_update(
            index_elements=[RotationCursor.campaign_id],
            set_={"position": RotationCursor.position + count},
        ).returning(RotationCursor.position)
        contexts[campaign_id].cursor = session.execute(stmt).scalar_one() - count


def _start(
    attempt: CallAttempt,
    customer: Customer,
    context: _CampaignContext,
    window: CallWindow,
    zones: tuple[ZoneInfo, ...],
    now: datetime,
    planner: RoutePlanner,
    evidence: dict[str, Any],
) -> _Prepared:
    before = (attempt.delivery_attempts, attempt.dispatched_at)
    provider_before, evidence_before = attempt.provider, attempt.evidence
    attempt.evidence = evidence  # why this dial is allowed, written with the mark
    attempt.status = AttemptStatus.DISPATCHING
    attempt.delivery_attempts += 1
    attempt.dispatched_at = now
    attempt.external_to = customer.phone
    if attempt.external_from is None:  # a re-dispatch keeps its number
        attempt.external_from = _caller_id(context, attempt)
    # Sent once, an attempt keeps its provider: a re-send after a crash or a lost
    # answer must reach the one that may have the call. Only a refusal that placed
    # nothing frees it (_transient), for failover to route afresh.
    if attempt.provider is None:
        attempt.provider = planner.provider_for(context.providers)
    attempt.voicemail_action = context.campaign.voicemail_action  # the policy sent
    request = _request(attempt, customer, context)
    return _Prepared(
        attempt.id,
        request,
        window,
        zones,
        *before,
        attempt.provider,
        provider_before,
        evidence_before,
    )


def _hold_back(session: Session, held: list[tuple[_Prepared, datetime]]) -> list[DispatchReport]:
    """Undo the `dispatching` mark of requests never sent: pending at the next opening.

    Nothing reached the provider, so this was no try: the tries and the dispatch time
    go back to what they were, and the caller ID stays reserved for the next time.
    """
    attempts = {
        a.id: a
        for a in session.scalars(
            select(CallAttempt)
            .where(among(CallAttempt.id, [prep.attempt_id for prep, _ in held]))
            .with_for_update()
        )
    }
    reports = []
    for prep, reopens in held:
        attempt = attempts.get(prep.attempt_id)
        if (
            attempt is None or attempt.status != AttemptStatus.DISPATCHING
        ):  # the reaper got there first
            reports.append(DispatchReport(prep.attempt_id, Verdict.NOT_QUEUED))
            continue
        attempt.delivery_attempts = prep.delivery_attempts_before
        attempt.dispatched_at = prep.dispatched_at_before
        attempt.provider = prep.provider_before
        attempt.evidence = prep.evidence_before  # not dialed: no record of a dial
        reports.append(_defer(attempt, reopens, "window closing"))
    write_changes(session, attempts.values())
    return reports


def _give_back(
    session: Session, throttled: list[tuple[_Prepared, RateLimited]], now: datetime
) -> list[DispatchReport]:
    """Requests our own rate limiter refused: never sent, so no try and no outcome.

    The attempts go back to `queued` as they were before the mark (tries, dispatch
    time), for the task to send again after the wait; the reaper would find them too.
    Counting them as tries failed calls that were never placed, and the failure then
    counted as an unanswered call (a WhatsApp fallback after one real call).
    """
    attempts = _locked(session, [prep.attempt_id for prep, _ in throttled])
    reports = []
    for prep, refusal in throttled:
        attempt = attempts.get(prep.attempt_id)
        # The reaper got there first when it is no longer dispatching.
        if attempt is None or attempt.status != AttemptStatus.DISPATCHING:
            reports.append(DispatchReport(prep.attempt_id, Verdict.NOT_QUEUED))
            continue
        attempt.delivery_attempts = prep.delivery_attempts_before
        attempt.dispatched_at = prep.dispatched_at_before
        attempt.provider = prep.provider_before
        attempt.evidence = prep.evidence_before
        attempt.status, attempt.queued_at = AttemptStatus.QUEUED, now
        attempt.last_error = f"not sent: {refusal}"
        reports.append(
            DispatchReport(attempt.id, Verdict.THROTTLED, str(refusal), refusal.retry_after_seconds)
        )
    write_changes(session, attempts.values())
    return reports


def _locked(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, CallAttempt]:
    query = select(CallAttempt).where(among(CallAttempt.id, ids)).with_for_update()
    return {a.id: a for a in session.scalars(query)}


def _caller_id(context: _CampaignContext, attempt: CallAttempt) -> str | None:
    if not context.numbers:
        return None
    strategy = RotationStrategy(context.campaign.phone_rotation_strategy)
    cursor = context.cursor
    if strategy is RotationStrategy.ROUND_ROBIN:
        context.cursor += 1
    rng = random.Random(attempt.idempotency_key)
    return pick_caller_id(
        strategy, context.numbers, campaign_cursor=cursor, attempt_no=attempt.attempt_no, rng=rng
    ).number


def _request(
    attempt: CallAttempt, customer: Customer, context: _CampaignContext
) -> PlaceCallRequest:
    campaign, agent = context.campaign, context.agent
    assert attempt.provider is not None  # routed in _start
    values = template_values(customer, campaign, agent.name)
    call_context: dict[str, Any] = {
        "customer": values,
        "campaign": {"name": campaign.name, **campaign.variables},
    }
    if campaign.call_opening_message:
        call_context["opening_message"] = render(campaign.call_opening_message, values)
    call_context |= voicemail_context(campaign, values)
    return PlaceCallRequest(
        idempotency_key=attempt.idempotency_key,
        agent_id=context.providers.agent_id_at(attempt.provider),
        to=customer.phone or "",
        from_number=attempt.external_from,
        context=call_context,
        metadata={"attempt_id": str(attempt.id), "campaign_id": str(campaign.id)},
    )


def _record_placed(
    session: Session, placed: list[tuple[uuid.UUID, CallRecord]], now: datetime
) -> None:
    """The provider has the calls: `in_progress` until their events move them on."""
    batch = ResultBatch(session, now)
    attempts = batch.lock([attempt_id for attempt_id, _ in placed])
    for attempt_id, record in placed:
        attempt = attempts[attempt_id]
        attempt.conv_id = record.id
        if attempt.status == AttemptStatus.DISPATCHING:
            attempt.status = AttemptStatus.IN_PROGRESS
        batch.apply(attempt, record)
    batch.flush()


def voicemail_context(campaign: Campaign, values: Mapping[str, str | None]) -> dict[str, str]:
    """The campaign's voicemail policy as context keys every adapter passes on (the
    agent's variables): ``voicemail_action`` and, to leave one, ``voicemail_message``.
    Nothing when the campaign leaves voicemail to the agent's own setting."""
    action = campaign.voicemail_action
    if action is None:
        return {}
    if action is VoicemailAction.LEAVE_MESSAGE and campaign.voicemail_message:
        message = render_voicemail(campaign.voicemail_message, values)
        return {VOICEMAIL_ACTION_KEY: str(action), VOICEMAIL_MESSAGE_KEY: message}
    return {VOICEMAIL_ACTION_KEY: str(VoicemailAction.HANG_UP)}


def template_values(
    customer: Customer, campaign: Campaign, agent_name: str
) -> dict[str, str | None]:
    base = {
        "name": customer.name,
        "surname": customer.surname,
        "customer_id": customer.customer_id,
        "email": customer.email,
        "phone": customer.phone,
        "campaign_name": campaign.name,
        "agent_name": agent_name,
    }
    return {**campaign.variables, **(customer.fields or {}), **base}


def _transient(
    uow: UnitOfWork,
    attempt_id: uuid.UUID,
    now: datetime,
    limits: DispatchLimits,
    exc: TransientProviderError,
    *,
    reroutable: bool = False,
) -> DispatchReport:
    with uow() as session:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        attempt.last_error = f"transient: {exc}"
        if attempt.status != AttemptStatus.DISPATCHING:
            return DispatchReport(attempt_id, Verdict.NOT_QUEUED)
        log.warning(
            "call_dispatch_failed",
            attempt_id=str(attempt_id),
            campaign_id=str(attempt.campaign_id),
            reason=exc.kind,
            tries=attempt.delivery_attempts,
            permanent=False,
            error=str(exc),
        )
        if attempt.delivery_attempts >= limits.max_tries:
            _fail(
                session,
                attempt,
                now,
                f"gave up after {attempt.delivery_attempts} tries: {exc}",
                permanent=False,
            )
            return DispatchReport(attempt_id, Verdict.FAILED, str(exc))
        attempt.status = AttemptStatus.QUEUED  # the task retries it; the reaper would too
        attempt.queued_at = now
        if reroutable:  # no provider has a call: the next try may go elsewhere
            attempt.provider = None
    return DispatchReport(attempt_id, Verdict.RETRY, str(exc), exc.retry_after_seconds)


def _uncertain(
    uow: UnitOfWork, attempt_id: uuid.UUID, now: datetime, exc: PlacementUncertain
) -> DispatchReport:
    """The call may ring already: hold the attempt, never fail it into a retry (a 2nd call)."""
    with uow() as session:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        if attempt.status != AttemptStatus.DISPATCHING:
            return DispatchReport(attempt_id, Verdict.NOT_QUEUED)
        uncertain.hold(session, attempt, now, exc)
        campaign_id = str(attempt.campaign_id)
    return DispatchReport(
        attempt_id, Verdict.UNCERTAIN, str(exc), campaign_id=campaign_id, error=exc.code
    )


def _permanent(
    uow: UnitOfWork, attempt_id: uuid.UUID, now: datetime, exc: PermanentProviderError
) -> DispatchReport:
    with uow() as session:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        if attempt.status != AttemptStatus.DISPATCHING:
            return DispatchReport(attempt_id, Verdict.NOT_QUEUED)
        log.warning(
            "call_dispatch_failed",
            attempt_id=str(attempt_id),
            campaign_id=str(attempt.campaign_id),
            reason=exc.code,
            tries=attempt.delivery_attempts,
            permanent=True,
            error=str(exc),
        )
        attempt.provider_error_code = exc.code
        _fail(session, attempt, now, f"{exc.code}: {exc}", permanent=exc.code == "invalid_number")
    return DispatchReport(attempt_id, Verdict.FAILED, str(exc))


def _fail(
    session: Session, attempt: CallAttempt, now: datetime, reason: str, *, permanent: bool
) -> None:
    attempt.status = AttemptStatus.FAILED
    attempt.outcome = Outcome.FAILED
    attempt.finished_at = now
    attempt.last_error = reason
    finish_call(session, attempt, now, permanent_failure=permanent)
