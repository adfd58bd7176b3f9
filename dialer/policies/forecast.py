"""Pre-launch forecast: a campaign's contacts run on a simulated clock (issue 16).

Pure: the caller passes the contacts (their zones, their window under the rule packs,
their facts), the campaign's retry plan and limits, and the call distribution as
plain numbers; nothing here reads a clock, a database or settings.

An event queue (a heap of ``(time, seq, kind, contact)``) drives the run. A *due*
event asks the real policies whether the contact may be called at that instant
(``classify_contact`` for the window and the rule packs, ``may_start_call`` for the
dispatch margin, ``cap_allows`` for the frequency caps), then the campaign's daily
cap and concurrency; a refused call is moved to when it could happen and the reason
is counted. A placed call draws its outcome and duration from a seeded RNG and ends
with an *end* event, where ``decide_after_call`` (the same function the result
handler uses) closes the enrollment or plans its next call.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from dialer.errors import ValidationFailed
from dialer.policies.plan import SKIPPED, ContactFacts, PlanBucket, classify_contact
from dialer.policies.retry import RetryPlan, decide_after_call, first_call_after_message
from dialer.policies.rule_packs import FrequencyCap, cap_allows
from dialer.policies.vocabulary import Outcome
from dialer.policies.window import CallWindow, may_start_call, next_opening_within_a_year

MAX_HORIZON_DAYS: Final = 60
DEFAULT_HORIZON_DAYS: Final = 30
MAX_FORECAST_CONTACTS: Final = 100_000
DEFAULT_SEED: Final = 16

Bounds = tuple[float, float]  # (low, high) seconds


class Deferral(StrEnum):
    """Why a due call was not placed at that instant (it is moved, not dropped)."""

    OUTSIDE_WINDOW = "outside_window"
    HOLIDAY = "holiday"
    CLOSED_DAY = "closed_day"
    PACK_HOURS = "pack_hours"
    FREQUENCY_CAP = "frequency_cap"
    DAILY_CAP = "daily_cap"
    CONCURRENCY = "concurrency"


_DEFERRAL_OF: Final[Mapping[PlanBucket, Deferral]] = {
    PlanBucket.LATER_TODAY: Deferral.OUTSIDE_WINDOW,
    PlanBucket.THIS_WEEK: Deferral.OUTSIDE_WINDOW,
    PlanBucket.LATER: Deferral.OUTSIDE_WINDOW,
    PlanBucket.HOLIDAY: Deferral.HOLIDAY,
    PlanBucket.CLOSED_DAY: Deferral.CLOSED_DAY,
    PlanBucket.PACK_HOURS: Deferral.PACK_HOURS,
}


@dataclass(frozen=True, slots=True)
class CallTiming:
    """How long a call with one outcome lasts: ringing/setup, then connected time."""

    setup_seconds: Bounds  # from placement to the end of ringing (or the failure)
    connected_seconds: Bounds = (0.0, 0.0)  # billed: a person or a machine on the line


@dataclass(frozen=True, slots=True)
class CallDistribution:
    """What a placed call does, as plain numbers (the service converts the sandbox's
    ``SimulationProfile``): outcome weights, per-outcome timing, price per started minute."""

    weights: Mapping[Outcome, float]
    timing: Mapping[Outcome, CallTiming]
    cost_per_minute_millicents: int = 0

    def __post_init__(self) -> None:
        if sum(self.weights.values()) <= 0 or min(self.weights.values(), default=0) < 0:
            raise ValidationFailed("simulation", "outcome rates must be >= 0, one above 0")
        missing = sorted(set(self.weights) - set(self.timing))
        if missing:
            raise ValidationFailed("simulation", f"no timing for outcome {missing[0]}")


@dataclass(frozen=True, slots=True)
class ForecastContact:
    """One enrolled contact, resolved by the caller: zones, window under its packs, facts."""

    ref: str
    zones: tuple[ZoneInfo, ...]
    window: CallWindow  # the campaign's window narrowed by the contact's rule packs
    facts: ContactFacts
    needs_location: bool = False
    caps: tuple[FrequencyCap, ...] = ()
    recent_calls: tuple[datetime, ...] = ()  # the person's call starts, any campaign
    calls_made: int = 0  # this round's calls already made (a resumed campaign)
    unanswered_calls: int = 0
    outcome_calls: Mapping[Outcome, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    campaign_window: CallWindow  # without the packs: tells a pack's hold from the hours
    timezone: ZoneInfo  # the daily cap counts calls per local day of this zone
    concurrency: int
    max_calls_per_day: int | None = None
    message_first: bool = False  # first contact is the fallback message, calls follow
    window_margin: timedelta = timedelta(seconds=5)


@dataclass
class ForecastResult:
    start: datetime
    horizon_end: datetime
    seed: int
    contacts: int = 0
    calls: int = 0
    calls_by_contact: list[int] = field(default_factory=list)  # contacts called at least once
    called_today: int = 0
    excluded: Counter[str] = field(default_factory=Counter)  # contacts never called, by reason
    deferrals: Counter[Deferral] = field(default_factory=Counter)  # due calls moved, by reason
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    closed_as: Counter[str] = field(default_factory=Counter)
    open_at_horizon: int = 0
    messages: int = 0
    cost_millicents: int = 0
    completed_at: datetime | None = None  # the last enrollment's close; None: not by horizon

    @property
    def calls_per_contact_mean(self) -> float:
        called = self.calls_by_contact
        return sum(called) / len(called) if called else 0.0

    @property
    def calls_per_contact_max(self) -> int:
        return max(self.calls_by_contact, default=0)

    @property
    def callable_today_share(self) -> float:
        return self.called_today / self.contacts if self.contacts else 0.0

    def to_dict(self) -> dict[str, object]:
        """The figures, as ``--json`` prints them and the table shows them."""
        return {
            "start": self.start.isoformat(),
            "horizon_end": self.horizon_end.isoformat(),
            "seed": self.seed,
            "contacts": self.contacts,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "open_at_horizon": self.open_at_horizon,
            "calls": self.calls,
            "contacts_called": len(self.calls_by_contact),
            "calls_per_contact_mean": round(self.calls_per_contact_mean, 2),
            "calls_per_contact_max": self.calls_per_contact_max,
            "called_today": self.called_today,
            "callable_today_share": round(self.callable_today_share, 4),
            "excluded": dict(sorted(self.excluded.items())),
            "deferrals": {str(k): v for k, v in sorted(self.deferrals.items())},
            "outcomes": {str(k): v for k, v in sorted(self.outcomes.items())},
            "closed_as": dict(sorted(self.closed_as.items())),
            "fallback_messages": self.messages,
            "cost_millicents": self.cost_millicents,
        }


def check_horizon(horizon_days: int) -> timedelta:
    """The run's length, refused beyond ``MAX_HORIZON_DAYS`` (holidays and clock changes
    are resolved for this year and the next, and a longer run says little)."""
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise ValidationFailed(
            "horizon_days", f"must be 1..{MAX_HORIZON_DAYS} days, got {horizon_days}"
        )
    return timedelta(days=horizon_days)


def forecast(
    contacts: Sequence[ForecastContact],
    plan: RetryPlan,
    limits: CampaignLimits,
    distribution: CallDistribution,
    *,
    start: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    seed: int = DEFAULT_SEED,
) -> ForecastResult:
    """Run every contact from ``start`` until all close or the horizon ends."""
    if len(contacts) > MAX_FORECAST_CONTACTS:
        raise ValidationFailed(
            "contacts",
            f"at most {MAX_FORECAST_CONTACTS} contacts per forecast, got {len(contacts)}",
        )
    if limits.concurrency < 1:
        raise ValidationFailed("concurrency", f"must be >= 1, got {limits.concurrency}")
    run = _Run(contacts, plan, limits, distribution, start, check_horizon(horizon_days), seed)
    run.seed_events()
    run.drain()
    return run.finish()


_DUE: Final = 0
_END: Final = 1
_HANDOFF: Final = 2  # a due event holding the line a finished call freed


@dataclass
class _State:
    calls_made: int
    unanswered: int
    outcome_calls: Counter[Outcome]
    recent: list[datetime]
    calls_here: int = 0  # calls this forecast placed
    fallback_sent: bool = False
    first_call: datetime | None = None
    closed: bool = False
    last_outcome: Outcome | None = None


class _Run:
    """One forecast run: the heap, the per-contact states and the campaign's counters."""

    def __init__(
        self,
        contacts: Sequence[ForecastContact],
        plan: RetryPlan,
        limits: CampaignLimits,
        distribution: CallDistribution,
        start: datetime,
        horizon: timedelta,
        seed: int,
    ) -> None:
        self.contacts, self.plan, self.limits, self.dist = contacts, plan, limits, distribution
        self.result = ForecastResult(start=start, horizon_end=start + horizon, seed=seed)
        self.rng = random.Random(seed)
        self.heap: list[tuple[datetime, int, int, int]] = []
        self.seq = 0
        self.in_flight = 0
        self.waiting: deque[int] = deque()  # due contacts held by the concurrency limit
        self.per_day: Counter[object] = Counter()
        self.last_close: datetime | None = None
        self.states = [_state_of(c) for c in contacts]

    def push(self, at: datetime, kind: int, index: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, index))

    def seed_events(self) -> None:
        start = self.result.start
        self.result.contacts = len(self.contacts)
        for index, contact in enumerate(self.contacts):
            standing = classify_contact(
                contact.window, contact.zones, contact.facts, start,
                needs_location=contact.needs_location,
                campaign_window=self.limits.campaign_window,
            )  # fmt: skip
            if standing.bucket in SKIPPED or standing.bucket is PlanBucket.CLOSED:
                self._exclude(index, str(standing.bucket))
            elif self.limits.message_first and self.plan.fallback_channel is not None:
                self.states[index].fallback_sent = True
                self.result.messages += 1
                self.push(first_call_after_message(self.plan, start), _DUE, index)
            else:
                self.push(start, _DUE, index)

    def drain(self) -> None:
        end = self.result.horizon_end
        while self.heap and self.heap[0][0] <= end:
            at, _, kind, index = heapq.heappop(self.heap)
            if kind == _END:
                self._end_call(index, at)
            else:
                self._due(index, at, handoff=kind == _HANDOFF)

    def finish(self) -> ForecastResult:
        result = self.result
        result.open_at_horizon = sum(1 for s in self.states if not s.closed)
        result.calls_by_contact = [s.calls_here for s in self.states if s.calls_here]
        if result.open_at_horizon == 0:
            result.completed_at = self.last_close or result.start
        return result

    # ------------------------------------------------------------------ due calls

    def _due(self, index: int, at: datetime, *, handoff: bool = False) -> None:
        contact, state = self.contacts[index], self.states[index]
        later = self._window_hold(contact, at) or self._cap_hold(contact, state, at)
        if later is None and self._daily_cap_full(at):
            later = (self._next_local_midnight(at), Deferral.DAILY_CAP)
        if later is not None:
            when, reason = later
            self.result.deferrals[reason] += 1
            self.push(when, _DUE, index)
            if handoff:
                self._release_waiting(at)  # the freed line passes to the next in line
            return
        if self.in_flight >= self.limits.concurrency:
            if handoff:
                self.waiting.appendleft(index)  # a due call took the line first
            else:
                self.result.deferrals[Deferral.CONCURRENCY] += 1
                self.waiting.append(index)
            return
        self._place(index, at)

    def _window_hold(
        self, contact: ForecastContact, at: datetime
    ) -> tuple[datetime, Deferral] | None:
        """Where the window (and the packs) move a due call; None when it may start now."""
        standing = classify_contact(
            contact.window, contact.zones, contact.facts, at,
            campaign_window=self.limits.campaign_window,
        )  # fmt: skip
        if standing.bucket is PlanBucket.NOW:
            # Dispatch refuses a call the window would close on before it rings.
            check = may_start_call(contact.window, contact.zones, at, self.limits.window_margin)
            if check.allowed:
                return None
            return (check.reopens or self.result.horizon_end + _AFTER, Deferral.OUTSIDE_WINDOW)
        reason = _DEFERRAL_OF.get(standing.bucket, Deferral.OUTSIDE_WINDOW)
        # No opening within a year: past the horizon, the contact stays open.
        return (standing.next_opening or self.result.horizon_end + _AFTER, reason)

    def _cap_hold(
        self, contact: ForecastContact, state: _State, at: datetime
    ) -> tuple[datetime, Deferral] | None:
        capped_until = cap_allows(contact.caps, state.recent, at)
        if capped_until is None:
            return None
        # As the scan does: wait until a call ages out, then for the window.
        later = next_opening_within_a_year(contact.window, contact.zones, capped_until)
        return (later or capped_until, Deferral.FREQUENCY_CAP)

    def _daily_cap_full(self, at: datetime) -> bool:
        cap = self.limits.max_calls_per_day
        return cap is not None and self.per_day[self._local_day(at)] >= cap

    def _local_day(self, at: datetime) -> object:
        return at.astimezone(self.limits.timezone).date()

    def _next_local_midnight(self, at: datetime) -> datetime:
        tomorrow = at.astimezone(self.limits.timezone).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(), tzinfo=self.limits.timezone)

    # ------------------------------------------------------------------ calls

    def _place(self, index: int, at: datetime) -> None:
        state, result = self.states[index], self.result
        outcome, seconds, cost = self._draw()
        state.calls_made += 1
        state.calls_here += 1
        state.recent.append(at)
        state.last_outcome = outcome
        if state.first_call is None:
            state.first_call = at
            if _same_local_day(self.contacts[index].zones[0], result.start, at):
                result.called_today += 1
        self.per_day[self._local_day(at)] += 1
        self.in_flight += 1
        result.calls += 1
        result.outcomes[outcome] += 1
        result.cost_millicents += cost
        self.push(at + timedelta(seconds=seconds), _END, index)

    def _draw(self) -> tuple[Outcome, float, int]:
        """Outcome, call length (s) and cost (milli-cents, per started connected minute)."""
        dist, rng = self.dist, self.rng
        outcomes = list(dist.weights)
        outcome = rng.choices(outcomes, weights=[dist.weights[o] for o in outcomes])[0]
        timing = dist.timing[outcome]
        setup = rng.uniform(*timing.setup_seconds)
        connected = rng.uniform(*timing.connected_seconds)
        cost = math.ceil(math.ceil(connected) / 60) * dist.cost_per_minute_millicents
        return outcome, setup + connected, cost

    def _end_call(self, index: int, at: datetime) -> None:
        self.in_flight -= 1
        self._release_waiting(at)
        state = self.states[index]
        outcome = state.last_outcome or Outcome.FAILED
        if outcome is not Outcome.ANSWERED:
            state.unanswered += 1
        state.outcome_calls[outcome] += 1
        step = decide_after_call(
            self.plan,
            outcome=outcome,
            attempts_made=state.calls_made,
            unanswered_calls=state.unanswered,
            fallback_sent=state.fallback_sent,
            goal_met=False,  # the forecast does not evaluate goals: answered = reached
            permanent_failure=False,
            finished_at=at,
            outcome_calls=state.outcome_calls[outcome],
        )
        if step.send_fallback is not None:
            state.fallback_sent = True
            self.result.messages += 1
        if step.close_as is not None:
            self._close(index, str(step.close_as), at)
        elif step.next_call_at is not None:
            self.push(step.next_call_at, _DUE, index)

    def _release_waiting(self, at: datetime) -> None:
        # A freed line goes to the contact that has waited longest, which re-checks all.
        if self.waiting:
            self.push(at, _HANDOFF, self.waiting.popleft())

    def _close(self, index: int, state_name: str, at: datetime) -> None:
        self.states[index].closed = True
        self.result.closed_as[state_name] += 1
        self.last_close = at if self.last_close is None else max(self.last_close, at)

    def _exclude(self, index: int, reason: str) -> None:
        self.states[index].closed = True
        self.result.excluded[reason] += 1


# Past the horizon: an event placed here is never processed (the contact stays open).
_AFTER: Final = timedelta(seconds=1)


def _state_of(contact: ForecastContact) -> _State:
    return _State(
        calls_made=contact.calls_made,
        unanswered=contact.unanswered_calls,
        outcome_calls=Counter(contact.outcome_calls),
        recent=list(contact.recent_calls),
    )


def _same_local_day(zone: ZoneInfo, start: datetime, at: datetime) -> bool:
    # "Today" is the contact's own local day, as in the plan's buckets.
    return start.astimezone(zone).date() == at.astimezone(zone).date()
