"""The retry plan: when to call a customer again, and when to fall back to a message.

GUIDE section 3: ``call_attempt_delays`` is a list of minutes; attempt n+1 is due
``delays[n-1]`` minutes after attempt n finished unanswered, so a campaign makes at
most ``len(delays) + 1`` calls per enrollment. The due time computed here is the
earliest moment; the scheduler then moves it to the working window's next opening.

Only an unanswered outcome (no_answer, busy, voicemail, failed) earns another call.
An answered call ends calling: the enrollment closes as goal_met or unresolved.

The fallback is a message on the campaign's *fallback channel* (``FallbackChannel``:
WhatsApp today), sent once after ``fallback_after_attempts`` unanswered calls. The
plan names the channel and never a particular one: a new channel is a new member of
``FallbackChannel`` and a message adapter, not a change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.errors import ValidationFailed
from dialer.policies.vocabulary import (
    UNANSWERED_OUTCOMES,
    EnrollmentState,
    FallbackChannel,
    Outcome,
)


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """A campaign's retry settings, validated on construction.

    ``fallback_channel`` is None when the campaign cannot send the fallback (no sender
    or no message on its fallback channel).
    """

    delays_minutes: tuple[int, ...]
    fallback_after_attempts: int
    fallback_channel: FallbackChannel | None

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
) -> NextStep:
    """Close the enrollment, plan its next call, and/or queue the fallback message.

    ``attempts_made`` and ``unanswered_calls`` include the call that just ended;
    ``fallback_sent`` is True when any message on the fallback channel (first contact
    or fallback) already went to this enrollment, so the fallback is sent at most once.
    """
    _require_positive("attempts_made", attempts_made)
    _require_aware("finished_at", finished_at)
    if goal_met:
        return NextStep(EnrollmentState.GOAL_MET, None, None, "goal met")
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
    return _after_unanswered(plan, attempts_made, unanswered_calls, fallback_sent, finished_at)


def _after_unanswered(
    plan: RetryPlan,
    attempts_made: int,
    unanswered_calls: int,
    fallback_sent: bool,
    finished_at: datetime,
) -> NextStep:
    # The fallback fires whether or not calls continue, including on the last call.
    send_fallback = fallback_due(plan, unanswered_calls, fallback_sent)
    next_call_at = next_call_due(plan, attempts_made, finished_at)
    if next_call_at is None:
        reason = f"all {max_call_attempts(plan)} call attempts used, never answered"
        return NextStep(EnrollmentState.NOT_ANSWERED, None, send_fallback, reason)
    reason = f"unanswered, call {attempts_made + 1} of {max_call_attempts(plan)} planned"
    return NextStep(None, next_call_at, send_fallback, reason)


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
