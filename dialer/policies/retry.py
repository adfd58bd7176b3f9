"""The retry plan: when to call a customer again, and when to fall back to a message.

GUIDE section 3: ``call_attempt_delays`` is a list of minutes; attempt n+1 is due
``delays[n-1]`` minutes after attempt n finished unanswered, so a campaign makes at
most ``len(delays) + 1`` calls per enrollment. The due time computed here is the
earliest moment; the scheduler then moves it to the working window's next opening.

Only an unanswered outcome (no_answer, busy, voicemail, failed) earns another call.
An answered call ends calling: the enrollment closes as goal_met or unresolved.

Per outcome (issue 16, a campaign's ``retry_by_outcome``), an ``OutcomeRetries``
may give busy, no_answer, voicemail and failed their own delays (the wait after the
k-th call that ended so is ``delays[k-1]``, the last one repeating) and a limit of
calls ending so (``max_tries``: reached, the enrollment closes as not_answered);
``retry_voicemail`` false closes it on the first voicemail. The campaign's
``len(delays) + 1`` stays the cap on calls per round. ``stop_outcomes`` lists the
"never again" signals of a call's extraction (``StopSignal``): an opt-out closes the
enrollment as opted_out, a wrong number as failed, with no call and no fallback.
The default ``OutcomeRetries()`` gives exactly the decisions of the plain plan.

The fallback is a message on the campaign's *fallback channel* (``FallbackChannel``:
WhatsApp today), sent once after ``fallback_after_attempts`` unanswered calls. The
plan names the channel and never a particular one: a new channel is a new member of
``FallbackChannel`` and a message adapter, not a change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from dialer.errors import ValidationFailed
from dialer.policies.vocabulary import (
    UNANSWERED_OUTCOMES,
    EnrollmentState,
    FallbackChannel,
    Outcome,
    StopSignal,
)

# The outcomes a campaign may tune (every unanswered outcome).
TUNABLE_OUTCOMES: Final = UNANSWERED_OUTCOMES
MAX_OUTCOME_DELAYS: Final = 20
MAX_DELAY_MINUTES: Final = 60 * 24 * 30
MAX_TRIES_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    """One outcome's retry settings; None keeps the campaign's plain plan for it."""

    delays_minutes: tuple[int, ...] | None = None
    max_tries: int | None = None

    def check(self, outcome: Outcome) -> None:
        where = f"retry_by_outcome.{outcome}"
        if self.delays_minutes is not None:
            if not 1 <= len(self.delays_minutes) <= MAX_OUTCOME_DELAYS:
                raise ValidationFailed(
                    f"{where}.delays_minutes", f"give 1 to {MAX_OUTCOME_DELAYS} delays"
                )
            for delay in self.delays_minutes:
                if not _whole(delay) or not 0 <= delay <= MAX_DELAY_MINUTES:
                    raise ValidationFailed(
                        f"{where}.delays_minutes",
                        f"each delay must be a whole number 0..{MAX_DELAY_MINUTES}, got {delay!r}",
                    )
        tries = self.max_tries
        if tries is not None and (not _whole(tries) or not 1 <= tries <= MAX_TRIES_LIMIT):
            raise ValidationFailed(
                f"{where}.max_tries", f"must be a whole number 1..{MAX_TRIES_LIMIT}, got {tries!r}"
            )


DEFAULT_STOP_SIGNALS: Final = frozenset(StopSignal)


@dataclass(frozen=True, slots=True)
class OutcomeRetries:
    """A campaign's ``retry_by_outcome``; the defaults are today's plan."""

    rules: Mapping[Outcome, OutcomeRule] = field(default_factory=lambda: MappingProxyType({}))
    retry_voicemail: bool = True
    stop_outcomes: frozenset[StopSignal] = DEFAULT_STOP_SIGNALS

    def __post_init__(self) -> None:
        for outcome, rule in self.rules.items():
            if outcome not in TUNABLE_OUTCOMES:
                raise ValidationFailed(
                    f"retry_by_outcome.{outcome}", "only busy, no_answer, voicemail, failed"
                )
            rule.check(outcome)
        if StopSignal.OPT_OUT not in self.stop_outcomes:
            # A person's request not to be called is honoured whatever the campaign says.
            raise ValidationFailed(
                "retry_by_outcome.stop_outcomes", "must include opt_out (always honoured)"
            )

    def rule_for(self, outcome: Outcome) -> OutcomeRule:
        return self.rules.get(outcome, _PLAIN)


_PLAIN: Final = OutcomeRule()
OPT_OUT_REASON: Final = "opt-out in the call"
WRONG_NUMBER_REASON: Final = "wrong number"


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """A campaign's retry settings, validated on construction.

    ``fallback_channel`` is None when the campaign cannot send the fallback (no sender
    or no message on its fallback channel).
    """

    delays_minutes: tuple[int, ...]
    fallback_after_attempts: int
    fallback_channel: FallbackChannel | None
    by_outcome: OutcomeRetries = field(default_factory=OutcomeRetries)

    def __post_init__(self) -> None:
        for delay in self.delays_minutes:
            # bool is an int in Python; True minutes is a bug, not a delay.
            if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
                raise ValidationFailed(
                    "call_attempt_delays", f"each delay must be a whole number >= 0, got {delay!r}"
                )
        after = self.fallback_after_attempts
        if not isinstance(after, int) or isinstance(after, bool) or after < 1:
            # Named as the user sent it (seed 002's wire name).
            raise ValidationFailed(
                "whatsapp_after_attempts", f"must be an integer >= 1, got {after!r}"
            )


@dataclass(frozen=True, slots=True)
class NextStep:
    """What to do for an enrollment after one of its calls reached a terminal outcome.

    ``close_as`` is the enrollment's final state, or None while it stays active.
    ``next_call_at`` is the earliest time for the next call (before window adjustment).
    ``send_fallback`` is the channel to queue the fallback message on, or None.
    ``reason`` is a short human explanation for logs and the UI.
    """

    close_as: EnrollmentState | None
    next_call_at: datetime | None
    send_fallback: FallbackChannel | None
    reason: str


def max_call_attempts(plan: RetryPlan) -> int:
    """The first call plus one retry per delay."""
    return len(plan.delays_minutes) + 1


def next_call_due(plan: RetryPlan, attempts_made: int, finished_at: datetime) -> datetime | None:
    """When call ``attempts_made + 1`` is due, or None when all attempts are used."""
    _require_positive("attempts_made", attempts_made)
    _require_aware("finished_at", finished_at)
    if attempts_made >= max_call_attempts(plan):
        return None
    return finished_at + timedelta(minutes=plan.delays_minutes[attempts_made - 1])


def fallback_due(
    plan: RetryPlan, unanswered_calls: int, already_sent: bool
) -> FallbackChannel | None:
    """The fallback channel, once: enough unanswered calls, a channel, nothing sent yet."""
    if plan.fallback_channel is None or already_sent:
        return None
    if unanswered_calls < plan.fallback_after_attempts:
        return None
    return plan.fallback_channel


def first_call_after_message(plan: RetryPlan, sent_at: datetime) -> datetime:
    """With a message as first contact, the first call waits ``delays[0]`` minutes.

    With no delays configured the call is due at once (the scheduler still waits for
    the window to open): the campaign then makes a single call, and waiting some
    invented default would be a setting nobody chose.
    """
    _require_aware("sent_at", sent_at)
    first_delay = plan.delays_minutes[0] if plan.delays_minutes else 0
    return sent_at + timedelta(minutes=first_delay)


def decide_after_call(
    plan: RetryPlan,
    *,
    outcome: Outcome,
    attempts_made: int,
    unanswered_calls: int,
    fallback_sent: bool,
    goal_met: bool,
    permanent_failure: bool,
    finished_at: datetime,
    outcome_calls: int = 1,
    signals: frozenset[StopSignal] = frozenset(),
) -> NextStep:
    """Close the enrollment, plan its next call, and/or queue the fallback message.

    ``attempts_made``, ``unanswered_calls`` and ``outcome_calls`` (calls of this round
    that ended with ``outcome``) include the call that just ended; ``fallback_sent``
    is True when any message on the fallback channel (first contact or fallback)
    already went to this enrollment, so the fallback is sent at most once.
    ``signals`` are the call extraction's "never again" words (``stop_signals``).
    """
    _require_positive("attempts_made", attempts_made)
    _require_aware("finished_at", finished_at)
    stops = signals & plan.by_outcome.stop_outcomes
    if StopSignal.OPT_OUT in stops:
        # Before the goal: whatever was achieved, the person asked not to be called.
        return NextStep(EnrollmentState.OPTED_OUT, None, None, OPT_OUT_REASON)
    if goal_met:
        return NextStep(EnrollmentState.GOAL_MET, None, None, "goal met")
    if StopSignal.WRONG_NUMBER in stops:
        return NextStep(EnrollmentState.FAILED, None, None, WRONG_NUMBER_REASON)
    if permanent_failure:
        return NextStep(EnrollmentState.FAILED, None, None, "call cannot be placed")
    if outcome is Outcome.ANSWERED:
        return NextStep(EnrollmentState.UNRESOLVED, None, None, "answered, goal not met")
    if outcome is Outcome.CANCELED:
        # Cancellation comes from the campaign (complete) or an operator, who decides
        # the enrollment's fate; the retry plan has nothing to add.
        return NextStep(None, None, None, "attempt canceled")
    if outcome not in UNANSWERED_OUTCOMES:
        # rejected: the callee declined. Not a contact and not retried automatically;
        # resume(not_answered) is how a user asks to try again.
        return NextStep(EnrollmentState.NOT_ANSWERED, None, None, f"call {outcome}, no retry")
    _require_positive("outcome_calls", outcome_calls)
    send_fallback = fallback_due(plan, unanswered_calls, fallback_sent)
    stop = _outcome_stop(plan.by_outcome, outcome, outcome_calls)
    if stop is not None:
        return NextStep(EnrollmentState.NOT_ANSWERED, None, send_fallback, stop)
    return _after_unanswered(
        plan, outcome, attempts_made, outcome_calls, send_fallback, finished_at
    )


def _outcome_stop(retries: OutcomeRetries, outcome: Outcome, outcome_calls: int) -> str | None:
    """Why this outcome ends calling now, or None."""
    if outcome is Outcome.VOICEMAIL and not retries.retry_voicemail:
        return "voicemail, not retried (retry_voicemail off)"
    limit = retries.rule_for(outcome).max_tries
    if limit is not None and outcome_calls >= limit:
        return f"{outcome} {outcome_calls} times (max_tries {limit})"
    return None


def _after_unanswered(
    plan: RetryPlan,
    outcome: Outcome,
    attempts_made: int,
    outcome_calls: int,
    send_fallback: FallbackChannel | None,
    finished_at: datetime,
) -> NextStep:
    # The fallback fires whether or not calls continue, including on the last call.
    next_call_at = next_call_due(plan, attempts_made, finished_at)
    if next_call_at is None:
        reason = f"all {max_call_attempts(plan)} call attempts used, never answered"
        return NextStep(EnrollmentState.NOT_ANSWERED, None, send_fallback, reason)
    own = plan.by_outcome.rule_for(outcome).delays_minutes
    if own:
        next_call_at = finished_at + timedelta(minutes=own[min(outcome_calls, len(own)) - 1])
    reason = f"unanswered, call {attempts_made + 1} of {max_call_attempts(plan)} planned"
    return NextStep(None, next_call_at, send_fallback, reason)


def stop_signals(extraction: Mapping[str, object] | None) -> frozenset[StopSignal]:
    """The "never again" words a call's extraction carries: ``opt_out: true`` and
    ``wrong_number: true`` (a JSON true, or the text "true"/"yes": LLM extractions
    sometimes give strings)."""
    if not extraction:
        return frozenset()
    return frozenset(signal for signal in StopSignal if _is_yes(extraction.get(signal.value)))


def _is_yes(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in {"true", "yes"}


def _whole(value: object) -> bool:
    # bool is an int in Python; True minutes is a bug, not a delay.
    return isinstance(value, int) and not isinstance(value, bool)


def _require_positive(field: str, value: int) -> None:
    if value < 1:
        raise ValidationFailed(field, f"must be >= 1, got {value}")


def _require_aware(field: str, value: datetime) -> None:
    # A naive datetime would silently be read in the server's zone.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(field, "must be a timezone-aware datetime")


# Waits between re-sends of a dispatch chunk a provider (or our rate limit) refused.
DISPATCH_BACKOFF_SECONDS: tuple[float, ...] = (2, 5, 15, 30, 60)


def dispatch_backoff_seconds(
    redelivery: int, retry_after_seconds: float, ceiling_seconds: float
) -> float:
    """How long a refused chunk waits before it is sent again.

    ``redelivery`` counts the re-sends before this one. Each re-send is a new task
    (Celery's own retry counter stays 0), so the count travels with the task: without
    it every wait was the first one, and five tries were spent in ~13 s. The wait is
    at least the provider's (or the bucket's) Retry-After and at most the ceiling
    (half the broker's visibility timeout, GUIDE rule 6).
    """
    step = DISPATCH_BACKOFF_SECONDS[min(max(redelivery, 0), len(DISPATCH_BACKOFF_SECONDS) - 1)]
    return min(max(step, retry_after_seconds), ceiling_seconds)
